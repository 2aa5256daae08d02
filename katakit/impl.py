"""The implementation switch: the kata tests run against `katas/` (yours) or `reference/`.

Topic folders are named `NN_topic`, which `import` statements cannot spell, so modules are loaded
with `importlib.import_module("katas.05_attention.attention")`. A kata module that builds on an
earlier topic imports it relatively, `import_module("..05_attention.attention", __package__)`, so
the switch carries over: katas import katas, reference imports reference.
"""

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType


def find_root(start: Path | None = None) -> Path:
    """The repository to work in: $KATAS_ROOT (the tools' tests point it at a copy), else the
    nearest folder up from `start` (the current one) with a `katas/` folder and a `pyproject.toml`,
    else the source tree katakit was installed from in editable mode."""
    if os.environ.get("KATAS_ROOT"):
        return Path(os.environ["KATAS_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "katas").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path(__file__).resolve().parent.parent


ROOT = find_root()
IMPLEMENTATIONS = ("katas", "reference")
ENV_VAR = "KATAS_IMPL"


class UnknownImplementation(ValueError):
    """Raised for an `--impl` or `KATAS_IMPL` that names neither `katas` nor `reference`."""


def from_env() -> str:
    """The implementation named by `KATAS_IMPL`, `katas` when it is unset."""
    choice = os.environ.get(ENV_VAR, "katas")
    if choice not in IMPLEMENTATIONS:
        raise UnknownImplementation(
            f"{ENV_VAR}={choice!r} is not an implementation: choose one of {', '.join(IMPLEMENTATIONS)}"
        )
    return choice


def load(implementation: str, topic: str, module: str) -> ModuleType:
    """Import `<implementation>/<topic>/<module>.py`, e.g. ("reference", "05_attention", "attention")."""
    if implementation not in IMPLEMENTATIONS:
        raise UnknownImplementation(f"{implementation!r}: choose one of {', '.join(IMPLEMENTATIONS)}")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"{implementation}.{topic}.{module}")


TEST_PREFIXES = ("test_", "benchmark_")


def module_name(test_file: Path) -> str:
    """The kata module a test file checks: `test_foo.py` and `benchmark_foo.py` check `foo.py`."""
    for prefix in TEST_PREFIXES:
        if test_file.stem.startswith(prefix):
            return test_file.stem.removeprefix(prefix)
    return test_file.stem


def module_under_test(test_file: Path, implementation: str) -> ModuleType:
    """The module a test file checks: `katas/01_x/test_foo.py` checks `<implementation>/01_x/foo.py`."""
    return load(implementation, test_file.parent.name, module_name(test_file))
