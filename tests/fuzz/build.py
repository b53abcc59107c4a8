"""The C extensions compiled with AddressSanitizer and UndefinedBehaviorSanitizer into a
folder of their own, and the environment a Python process needs to load them."""

import os
import shutil
import subprocess
import sysconfig
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _extensions() -> dict[str, list[str]]:
    """Module name -> its C sources, read from pyproject.toml's ext-modules."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        modules = tomllib.load(file)["tool"]["setuptools"]["ext-modules"]
    return {module["name"]: module["sources"] for module in modules}


EXTENSIONS = _extensions()
FLAGS = [
    "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
    "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
]  # fmt: skip


def compiler() -> str | None:
    """A C compiler with the AddressSanitizer runtime, or None."""
    found = shutil.which(os.environ.get("CC", "gcc")) or shutil.which("cc")
    if found is None or asan_runtime(found) is None:
        return None
    return found


def asan_runtime(cc: str) -> str | None:
    """The path of the AddressSanitizer runtime to preload into Python (which is not
    built with it), or None when the compiler has none."""
    try:
        answer = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True,
                                text=True, timeout=30, check=False).stdout.strip()  # fmt: skip
    except OSError:
        return None
    return answer if os.path.isabs(answer) and os.path.exists(answer) else None


def library_path(folder: Path, module: str) -> Path:
    return folder / (module.rsplit(".", 1)[1] + sysconfig.get_config_var("EXT_SUFFIX"))


def build(folder: Path, cc: str) -> Path:
    """Every extension compiled into `folder`; raises CalledProcessError with the
    compiler's output when one does not compile."""
    folder.mkdir(parents=True, exist_ok=True)
    include = sysconfig.get_paths()["include"]
    for module, sources in EXTENSIONS.items():
        subprocess.run([cc, *FLAGS, f"-I{include}", *(str(ROOT / s) for s in sources), "-o",
                        str(library_path(folder, module))],
                       check=True, capture_output=True, text=True)  # fmt: skip
    return folder


def sanitizer_environment(cc: str) -> dict[str, str]:
    """For the process that loads the sanitized build. Python's allocator goes to malloc
    so that ASan sees every PyMem block; leaks are not reported (Python keeps objects
    alive at exit by design)."""
    runtime = asan_runtime(cc)
    assert runtime is not None
    return {
        **os.environ,
        "LD_PRELOAD": runtime,
        "PYTHONMALLOC": "malloc",
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:halt_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
    }
