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

from katakit.repo import SIDES, module_name, root_of_test

IMPLEMENTATIONS = SIDES
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


def load(implementation: str, topic: str, module: str, root: Path) -> ModuleType:
    """Import `<root>/<implementation>/<topic>/<module>.py`, e.g. ("reference", "05_attention", "attention")."""
    if implementation not in IMPLEMENTATIONS:
        raise UnknownImplementation(f"{implementation!r}: choose one of {', '.join(IMPLEMENTATIONS)}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"{implementation}.{topic}.{module}")


def module_under_test(test_file: Path, implementation: str) -> ModuleType:
    """The module a test file checks: `katas/01_x/test_foo.py` checks `<implementation>/01_x/foo.py`."""
    return load(implementation, test_file.parent.name, module_name(test_file), root_of_test(test_file))
