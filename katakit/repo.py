"""Where things live in a checkout: the repository root, and which file under katas/ is what.

    katas/NN_topic/<module>.py           a learner file (the stubs, edited by the learner)
    katas/NN_topic/test_<module>.py      its tests; benchmark_<module>.py its timings
    reference/NN_topic/<module>.py       the solutions, file for file

Nothing here is global state: every function takes the root it works on.
"""

from pathlib import Path

from katakit.model import SIDES as SIDES  # katas/ and reference/, re-exported
from katakit.model import Module

TEST_PREFIXES = ("test_", "benchmark_")


def find_root(start: Path | None = None) -> Path:
    """The repository to work in: the nearest folder up from `start` (the current one) with a
    `katas/` folder and a `pyproject.toml`, else the source tree katakit was installed from in
    editable mode."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "katas").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return Path(__file__).resolve().parent.parent


def module_name(test_file: Path) -> str:
    """The kata module a test file checks: `test_foo.py` and `benchmark_foo.py` check `foo.py`."""
    for prefix in TEST_PREFIXES:
        if test_file.stem.startswith(prefix):
            return test_file.stem.removeprefix(prefix)
    return test_file.stem


def is_test_file(path: Path) -> bool:
    return path.name.startswith(TEST_PREFIXES)


def root_of_test(test_file: Path) -> Path:
    """The checkout a kata test file belongs to: `<root>/katas/NN_topic/test_x.py`."""
    return test_file.resolve().parents[2]


def source_file(root: Path, side: str, topic: str, module: str) -> Path:
    """`<root>/<side>/<topic>/<module>.py`."""
    return Module(topic, module).at(root, side)
