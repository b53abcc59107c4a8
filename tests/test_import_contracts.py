"""The import-linter contracts in pyproject.toml (run by scripts/test.sh) name every
engine module: one added later falls under `engine-below-verbs` or is named above it."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The verbs themselves, and the scheduler that runs them on a schedule.
ABOVE_THE_VERBS = {"engines.actions", "engines.scheduling.scheduler"}


def contract(contract_id: str) -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (found,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == contract_id]
    return found


def children(package: Path, name: str) -> set[str]:
    """The modules and packages directly inside `package`."""
    return {
        f"{name}.{path.stem}"
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }


def test_every_engine_module_is_below_the_verbs_unless_named_above_them():
    engine = children(ROOT / "engines", "engines") - {"engines.scheduling"}
    engine |= children(ROOT / "engines" / "scheduling", "engines.scheduling")
    below = contract("engine-below-verbs")
    assert set(below["source_modules"]) == engine - ABOVE_THE_VERBS
    assert set(below["forbidden_modules"]) == ABOVE_THE_VERBS


def test_the_console_presentation_covers_the_screens_and_widgets():
    presentation = set(contract("console-through-access")["source_modules"])
    assert {"jarvis_tui.app", "jarvis_tui.screens", "jarvis_tui.widgets"} <= presentation
    for module in presentation:
        path = ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module
