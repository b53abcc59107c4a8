"""CLI subcommands; each module registers its commands and presents their results.

A module's `register(commands, words)` adds its commands to `commands`; `words` are the
command line's leading words (`restore postgres latest`), which a module whose commands
have commands of their own uses to register only the one named. A command line imports
only the modules of what it names, so `restore postgres` loads neither the files store
nor the scheduler and their engines before it starts.
"""

import importlib
from collections.abc import Mapping
from types import ModuleType


def modules_for(table: Mapping[str, str], word: str | None) -> list[ModuleType]:
    """The module of `table` registering `word`; all of them, in order, when `word` names
    none (no command yet, `--help`, or a misspelling that argparse will report)."""
    names = [table[word]] if word in table else list(dict.fromkeys(table.values()))
    return [importlib.import_module(name) for name in names]
