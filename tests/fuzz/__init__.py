"""Fuzzing the C extensions under AddressSanitizer and UndefinedBehaviorSanitizer.

build.py compiles them into a folder of their own (never over the .so files in the
tree); run.py, started in a subprocess with the sanitizer runtime preloaded, loads them
from there under their real names and checks each against its oracle (json_to_resp.py,
rdb_walk.py, archive_chunks.py); corpus.py writes the real inputs they mutate (RDBs
from redis-server, a JSON export, pg_dump output). tests/test_fuzz_native.py runs a few
hundred cases of each; scripts/fuzz.sh the long run.
"""
