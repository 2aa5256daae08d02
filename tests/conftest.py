"""Shared by the project's own tests.

They run pytest and the `katas` command in subprocesses, some of them for tens of seconds: they get a
long pytest-timeout limit, instead of the 15 s that pyproject.toml gives every kata test (a kata stuck
in an endless loop). A test with a timeout marker of its own keeps it.

Many of them also need a repository of their own to run in: `toy_repository` builds one, with toy
topics written by the test, real topics copied from this checkout, or both.
"""

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from katakit import catalog, stubs
from katakit.model import SIDES

HERE = Path(__file__).resolve().parent
REAL = HERE.parent
TIMEOUT = 600  # seconds


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        return  # pytest-timeout disabled (-p no:timeout): its marker is not registered
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUT))


@dataclass(frozen=True)
class ToyTopic:
    """A topic a test writes: one kata module (its solution in reference/), its tests, and the learner's file."""

    folder: str  # 09_toy
    module: str  # toy
    reference: str  # reference/<folder>/<module>.py
    tests: str  # katas/<folder>/test_<module>.py
    learner: str | None = None  # katas/<folder>/<module>.py; None: the stub of `reference`


# For shutil.copytree: what a run leaves behind is not copied.
NO_CACHE = shutil.ignore_patterns("__pycache__", ".pytest_cache", ".katas")


class ToyRepository:
    """`toy_repository(root, toys, real=..., curriculum=..., with_katakit=...)`: a repository at `root` with
    this checkout's conftest.py and pyproject.toml, katas/ and reference/, the `toys`, the `real` topics
    copied (both sides, as shipped), and a curriculum.toml: `curriculum`, or else the real topics' own
    entries followed by one plain entry per toy. katakit/ is copied too, as in a fork, unless
    `with_katakit` is False (then the installed one runs)."""

    Topic = ToyTopic

    def __call__(
        self,
        root: Path,
        toys: Sequence[ToyTopic] = (),
        *,
        real: Sequence[str] = (),
        curriculum: str | None = None,
        with_katakit: bool = True,
    ) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for name in ("conftest.py", "pyproject.toml"):
            shutil.copy(REAL / name, root / name)
        (root / catalog.CURRICULUM).write_text(
            self._curriculum(real, toys) if curriculum is None else curriculum, encoding="utf-8"
        )
        if with_katakit:
            shutil.copytree(REAL / "katakit", root / "katakit", ignore=NO_CACHE)
        for side in SIDES:
            (root / side).mkdir(exist_ok=True)
            shutil.copy(REAL / side / "__init__.py", root / side / "__init__.py")
            for topic in real:
                shutil.copytree(REAL / side / topic, root / side / topic, ignore=NO_CACHE)
        for toy in toys:
            for side in SIDES:
                (root / side / toy.folder).mkdir()
            (root / "reference" / toy.folder / f"{toy.module}.py").write_text(toy.reference)
            learner = stubs.stub_source(toy.reference) if toy.learner is None else toy.learner
            (root / "katas" / toy.folder / f"{toy.module}.py").write_text(learner)
            (root / "katas" / toy.folder / f"test_{toy.module}.py").write_text(toy.tests)
        return root

    @staticmethod
    def copy(built: Path, target: Path) -> Path:
        """A fresh copy of a repository built here, without what its runs left behind."""
        shutil.copytree(built, target, ignore=NO_CACHE)
        return target

    @staticmethod
    def _curriculum(real: Sequence[str], toys: Sequence[ToyTopic]) -> str:
        blocks = (REAL / catalog.CURRICULUM).read_text(encoding="utf-8").split("[[topic]]")[1:]
        kept = [f"[[topic]]{block}" for block in blocks if any(f'folder = "{topic}"' in block for topic in real)]
        written = [f'[[topic]]\nfolder = "{toy.folder}"\nmodules = ["{toy.module}"]\n' for toy in toys]
        return "\n".join(kept + written)


@pytest.fixture(scope="session")
def toy_repository() -> ToyRepository:
    return ToyRepository()
