"""Katas in a notebook (Colab, Jupyter, VS Code): run a kata's real tests against code written in a cell.

    from katakit import check
    check("stable_softmax", stable_softmax)

`check` runs the kata's own tests from `katas/NN_topic/test_<module>.py`, through pytest and the
kata plugin, with the notebook's function (or class) standing in for the one in the learner's
file, prints the same teaching messages as `pytest` does, and a last line saying whether it passes
(with the task and hint 1 in the learner's language when it does not). It returns True when every
test passes; with $KATAS_CHECK_STRICT=1 (the notebooks' CI run) a failing check raises instead.

The notebooks in notebooks/ mark each kata cell with the tag `kata` and its name in the cell's
metadata (`"kata": "05_attention/stable_softmax"`). `python -m katakit.notebook fill DEST` writes copies whose
kata cells hold the reference solutions, for CI to run them green; `python -m katakit.notebook sync`
rewrites the committed notebooks' kata cells from the stubs after a docstring changed.
"""

import argparse
import contextlib
import inspect
import json
import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from katakit import catalog, i18n
from katakit import impl as implementations
from katakit.names import resolve_kata
from katakit.repo import find_root, source_file
from katakit.stubs import definition

STRICT = "KATAS_CHECK_STRICT"
KATA_TAG = "kata"


class KataFailed(AssertionError):
    """A `check` that did not pass, raised only under $KATAS_CHECK_STRICT=1."""


class _Tally:
    """A pytest plugin counting the kata's test outcomes."""

    def __init__(self) -> None:
        self.passed = self.failed = self.skipped = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.failed:
            self.failed += 1
        elif report.skipped and report.when in ("setup", "call"):
            self.skipped += 1


def _stand_in(learner: types.ModuleType, katas: list[str], name: str, candidate: object) -> types.ModuleType:
    """The learner's module, with `candidate` as its `name`, and the notebook's own versions of the
    module's other katas where the notebook defines them (a notebook's train_linear_model builds the
    notebook's LinearModel); functions are shape-checked like katas where they are annotated."""
    module = types.ModuleType(learner.__name__, learner.__doc__)
    module.__dict__.update(vars(learner))
    home = sys.modules.get(getattr(candidate, "__module__", ""), None)
    defined = vars(home) if home is not None and home is not learner else {}
    for kata_name in katas:
        found = candidate if kata_name == name else defined.get(kata_name)
        if found is not None:
            setattr(module, kata_name, _checked(found))
    return module


def _checked(candidate: object) -> object:
    if inspect.isfunction(candidate) and candidate.__annotations__ and not hasattr(candidate, "__wrapped__"):
        from katakit.shapes import kata

        return kata(candidate)
    return candidate


@contextlib.contextmanager
def _testing(module: types.ModuleType) -> Iterator[None]:
    with mock.patch.object(implementations, "module_under_test", lambda test_file, implementation: module):
        yield


def check(name: str, candidate: object, *, root: Path | None = None, lang: str | None = None) -> bool:
    """Run kata `name`'s tests against `candidate`; print what went wrong, and a pass line."""
    root = (root or find_root()).resolve()
    kata = resolve_kata(name, catalog.read(root).katas)
    learner = implementations.load("katas", kata.topic, kata.module, root)
    test_file = root / "katas" / kata.topic / f"test_{kata.module}.py"
    tally = _Tally()
    arguments = [str(test_file), "--kata", kata.name, "--impl=katas", "-q", "--no-header", "-p", "no:cacheprovider"]
    siblings = [each.name for each in catalog.read(root, [kata.topic]).katas if each.module == kata.module]
    with _testing(_stand_in(learner, siblings, kata.name, candidate)):
        pytest.main([*arguments, f"--rootdir={root}"], plugins=[tally])
    total = tally.passed + tally.failed
    if tally.failed == 0 and tally.passed:
        print(f"{kata.name}: all {tally.passed} tests pass. Well done!")
        return True
    chosen = i18n.language(lang)
    english = resolve_kata(f"{kata.topic}/{kata.name}", catalog.read(root, [kata.topic], "reference").katas).hints
    text = i18n.text(root, kata, chosen, english)
    print(f"{kata.name}: {tally.failed} of {total} tests fail; the messages above say why.")
    print(f"\n{text.task}\n\nHint 1: {text.hints[0] if text.hints else '-'}  (katas hint {kata.name} 2: the next)")
    if os.environ.get(STRICT) == "1":
        raise KataFailed(f"{kata.name}: {tally.failed} of {total} tests fail")
    return False


def _with_kata_cells(notebook: Path, root: Path, side: str) -> dict:
    """The notebook's JSON with every kata cell holding that kata's definition from `side`
    (katas: the stub, for the committed notebooks; reference: the solution, for CI)."""
    content = json.loads(notebook.read_text(encoding="utf-8"))
    katas = catalog.read(root, side="reference").katas
    for cell in content["cells"]:
        name = cell.get("metadata", {}).get(KATA_TAG)
        if cell["cell_type"] != "code" or not name:
            continue
        kata = resolve_kata(name, katas)
        source = source_file(root, side, kata.topic, kata.module).read_text(encoding="utf-8")
        cell["source"] = definition(source, kata.name).rstrip("\n").splitlines(keepends=True)
    return content


def _write(content: dict, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def fill(notebook: Path, destination: Path, root: Path) -> Path:
    """Write `notebook` to `destination` with every kata cell holding the reference solution."""
    return _write(_with_kata_cells(notebook, root, "reference"), destination / notebook.name)


def sync(notebook: Path, root: Path) -> bool:
    """Rewrite the kata cells of a committed notebook from the current stubs; whether it changed."""
    before = notebook.read_text(encoding="utf-8")
    _write(_with_kata_cells(notebook, root, "katas"), notebook)
    return notebook.read_text(encoding="utf-8") != before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.notebook", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="the repository (default: found from here)")
    commands = parser.add_subparsers(dest="command", required=True)
    filling = commands.add_parser("fill", help="copies of notebooks/*.ipynb with the reference solutions in")
    filling.add_argument("destination", type=Path)
    commands.add_parser("sync", help="rewrite the kata cells of notebooks/*.ipynb from the stubs (maintainers)")
    options = parser.parse_args(argv)
    root = (options.root or find_root()).resolve()
    for notebook in sorted((root / "notebooks").glob("*.ipynb")):
        if options.command == "fill":
            print(f"filled {fill(notebook, options.destination, root)}")
        elif sync(notebook, root):
            print(f"synced {notebook.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
