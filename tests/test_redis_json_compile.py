"""The restore's fast compiler gives the same commands as the full parser, and leaves to
the full parser whatever it does not check itself."""

import json

import pytest

from engines.redis.json_compile import SLOW_ERRORS, compile_document, compile_line
from engines.redis.resp import encode_command

WHOLE_KEYS = [
    {"db": 0, "key": "s", "type": "string", "value": "Zoë \r\n $3"},
    {"db": 2, "key": "s", "type": "string", "value": "", "expires_at_ms": 1795906505445},
    {"db": 0, "key": "l", "type": "list", "value": ["a", "", "ü", "a"]},
    {"db": 0, "key": "t", "type": "set", "value": ["x", "y"], "expires_at_ms": 5},
    {"db": 0, "key": "h", "type": "hash", "value": [["f", "v"], ["g", ""]]},
    {"db": 0, "key": "z", "type": "zset", "value": [["a", "1.5"], ["b", "-inf"], ["c", "1e+20"]]},
    {"db": 1, "key": "x", "type": "stream", "value": {
        "entries": [["1-1", ["a", "b"]], ["2-0", ["c", "d", "e", "f"]]], "last_id": "5-0",
        "entries_added": 7, "max_deleted_id": "3-0", "groups": []}},
    {"db": 1, "key": "x", "type": "stream", "value": {
        "entries": [["0-1", ["a", "b"]]], "last_id": "0-0", "entries_added": 1,
        "max_deleted_id": "0-0", "groups": []}},
]  # fmt: skip

LEFT_TO_THE_PARSER = [
    {"db": 0, "key": {"base64": "/w=="}, "type": "string", "value": "x"},
    {"db": 0, "key": "h", "type": "hash", "value": [["a", {"base64": "AAA="}]]},
    {"db": 0, "key": "h", "type": "hash", "value": ["ab"]},
    {"db": 0, "key": "l", "type": "list", "value": ["a", 1]},
    {"db": 0, "key": "l", "type": "list", "value": []},
    {"db": 0, "key": "z", "type": "zset", "value": [["a", "nan"]]},
    {"db": 0, "key": "z", "type": "zset", "value": [["a", 1.5]]},
    {"db": 0, "key": "s", "type": "string", "value": "x", "expires_at_ms": None},
    {"db": 0, "key": "s", "type": "string", "value": "x", "part": 0},
    {"db": 0, "key": "s", "type": "string", "value": "x", "more": True},
    {"db": True, "key": "s", "type": "string", "value": "x"},
    {"db": 0, "key": "s", "type": "string", "value": "\ud800"},
    {"db": 0, "key": "x", "type": "stream", "value": {
        "entries": [["1-1", ["a", "b"]]], "last_id": "1-1", "entries_added": 1,
        "max_deleted_id": "0-0", "groups": [{"name": "g", "last_delivered_id": "0-0"}]}},
    {"db": 0, "key": "x", "type": "stream", "value": {
        "entries": [["1-1", ["a", "b"]]], "last_id": "1-1", "entries_added": 1,
        "max_deleted_id": "bad", "groups": []}},
    {"db": 0, "key": "m", "type": "module", "value": []},
]  # fmt: skip


def _full_parser(document, delete_first):
    db, key, kind, expires, _part, _more, commands = compile_line(document, 1)
    if kind != "string" and delete_first:
        commands.insert(0, encode_command("DEL", key))
    if expires is not None:
        commands.append(encode_command("PEXPIREAT", key, b"%d" % expires))
    return db, key, kind, expires, b"".join(commands), len(commands)


@pytest.mark.parametrize("delete_first", [True, False])
@pytest.mark.parametrize("document", WHOLE_KEYS, ids=lambda d: d["type"])
def test_fast_commands_are_the_full_parsers(document, delete_first):
    document = json.loads(json.dumps(document))
    assert compile_document(document, delete_first) == _full_parser(document, delete_first)


@pytest.mark.parametrize("document", LEFT_TO_THE_PARSER)
def test_what_the_fast_path_does_not_check_goes_to_the_full_parser(document):
    with pytest.raises(SLOW_ERRORS):
        compile_document(document, True)
