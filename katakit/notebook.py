"""Katas in a notebook (Colab, Jupyter, VS Code): run a kata's real tests against code written in a cell.

    from katakit import check
    check("stable_softmax", stable_softmax)

`check` runs the kata's own tests from `katas/NN_topic/test_<module>.py`, through pytest and the
kata plugin, with the notebook's function (or class) standing in for the one in the learner's
file. It prints one line for a stub that still raises NotImplementedError ("to do: stable_softmax
(your cell, line 9)"); for a wrong answer, the teaching message of one failed test (one whose
message names the likely mistake, if any) with the line of the learner's cell it concerns, a line
for each other failed test, and the task and hint 1 in the learner's language; for a right one, a
line. It returns True when every test passes; with $KATAS_CHECK_STRICT=1 (the notebooks' CI run)
a check that does not pass raises instead.

A notebook whose katas build on other modules (08's reverse engineering calls activations,
circuits and 06's transformer) imports them with `kata_module("08_interpretability/circuits")`:
yours, from katas/. `check` runs the tests against your module too, with the notebook's katas in
place of its stubs.

The notebooks in notebooks/ mark each kata cell with the tag `kata` and its name in the cell's
metadata (`"kata": "05_attention/stable_softmax"`). `python -m katakit.maintain notebook fill DEST` writes copies whose
kata cells hold the reference solutions, for CI to run them green, with a first cell that sets
$KATAS_IMPL to reference: the katas the filled cells build on are the stubs in katas/, so
`kata_module` and `check` take them from reference/ too. `python -m katakit.maintain notebook sync`
rewrites the committed notebooks' kata cells from the stubs after a docstring changed.
"""

import argparse
import contextlib
import inspect
import io
import json
import linecache
import os
import re
import sys
import types
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from katakit import catalog, i18n
from katakit import impl as implementations
from katakit.model import LIKELY_MISTAKE
from katakit.names import resolve_kata
from katakit.repo import find_root, is_test_file, source_file
from katakit.stubs import definition

STRICT = "KATAS_CHECK_STRICT"
KATA_TAG = "kata"


class KataFailed(AssertionError):
    """A `check` that did not pass, raised only under $KATAS_CHECK_STRICT=1."""


@dataclass(frozen=True)
class _Failure:
    """A failed test as `check` shows it."""

    test: str  # the test's name
    report: str  # pytest's report, shortened by the kata plugin, naming the notebook's code
    message: str  # the first line of the error: what one line says of it

    @property
    def names_a_mistake(self) -> bool:
        """Whether the test's message guesses the mistake (assert_close's `hint`)."""
        return LIKELY_MISTAKE in self.report


class _Verdicts:
    """A pytest plugin keeping what `check` shows of a kata's tests: each failure's report (naming
    the learner's own code, not the stub in katas/), one "to do" line per stub that still raises
    NotImplementedError, and the warnings the tests raised."""

    def __init__(self, kata: str, notebook: list[object], root: Path) -> None:
        self.kata = kata
        self.defined = _defined_at(notebook[0]) if notebook else None  # where the kata checked is
        # the files (or cells) the notebook's katas are defined in
        self.notebook_files = {found[0] for found in map(_defined_at, notebook) if found}
        self.root = root
        self.passed = self.skipped = 0
        self.todo: dict[str, None] = {}  # the to-do lines, each once, in order
        self.failures: list[_Failure] = []
        self.warnings: list[str] = []

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed and call.excinfo is not None:
            todo = self._todo(call.excinfo)
            if todo:
                self.todo.setdefault(todo)
            else:
                self.failures.append(self._failure(report, call.excinfo))
        elif report.passed and report.when == "call":
            self.passed += 1
        elif report.skipped and report.when in ("setup", "call"):
            self.skipped += 1
        return report

    def pytest_warning_recorded(self, warning_message: warnings.WarningMessage) -> None:
        self.warnings.append(f"warning: {warning_message.category.__name__}: {warning_message.message}")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.failures.append(_Failure(report.nodeid, report.longreprtext, _first_error(report.longreprtext)))

    def _in_notebook(self, filename: str) -> bool:
        return filename in self.notebook_files or bool(_CELL.search(filename))

    def _in_katas(self, filename: str) -> bool:
        """A learner file (katas/NN_topic/<module>.py, not a test): another topic's stub raises there."""
        path = Path(filename)
        return path.is_absolute() and path.is_relative_to(self.root / "katas") and not is_test_file(path)

    def _todo(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
        """ "to do: stable_softmax (your cell, line 9)" for a stub's NotImplementedError, else None."""
        if not isinstance(excinfo.value, NotImplementedError) or not excinfo.traceback:
            return None
        raised = excinfo.traceback[-1]
        filename = str(raised.path)
        if not (self._in_notebook(filename) or self._in_katas(filename)):
            return None  # a NotImplementedError of torch's, say: a failure like any other
        code = raised.frame.code.raw
        function = getattr(code, "co_qualname", code.co_name)
        where = _place(filename, raised.lineno + 1, self.root)
        needs = "" if function.split(".")[0] == self.kata else f"needs {function}, "
        return f"to do: {self.kata} ({needs}{where})"

    def _failure(self, report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException]) -> _Failure:
        """The test's report as pytest's kata plugin shortened it, with "your code:" naming the
        notebook's line rather than the stub's."""
        lines = [line for line in report.longreprtext.splitlines() if not line.startswith("your code: ")]
        ours = [entry for entry in excinfo.traceback if self._in_notebook(str(entry.path))]
        if ours:
            entry = ours[-1]
            code = entry.frame.code.raw
            function = getattr(code, "co_qualname", code.co_name)
            lines.append(f"your code: {_place(str(entry.path), entry.lineno + 1, self.root)} ({function})")
            source = linecache.getline(str(entry.path), entry.lineno + 1).strip()
            if source:
                lines.append(f"    {source}")
        elif self.defined:
            lines.append(f"your code: {_place(*self.defined, self.root)} ({self.kata})")
        name = report.head_line or report.nodeid
        text = "\n".join([f" {name} ".center(72, "_"), *lines])
        return _Failure(name, text, _first_error(report.longreprtext) or excinfo.exconly(tryshort=True))

    def shown(self, everything: bool) -> list[str]:
        """What to print of the failures: in full, the first whose message names a mistake (else the
        first); a line each for the others, unless `everything`."""
        if everything or len(self.failures) < 2:
            return [failure.report for failure in self.failures]
        first = next((failure for failure in self.failures if failure.names_a_mistake), self.failures[0])
        others = [failure for failure in self.failures if failure is not first]
        return [
            first.report,
            f"and {len(others)} more failing test{'s' if len(others) > 1 else ''} "
            "(check(..., everything=True) shows every report):",
            *(f"  {failure.test}: {failure.message[:120]}" for failure in others),
        ]


def _first_error(report: str) -> str:
    """The first `E   ` line of a pytest report, without its prefix."""
    return next((line[4:].strip() for line in report.splitlines() if line.startswith("E   ")), "")


# The file name IPython gives a cell: /tmp/ipykernel_1234/1598372311.py (ipykernel 6 and later),
# <ipython-input-3-0a1b2c3d4e5f> (earlier, as on older Colab kernels).
_CELL = re.compile(r"[/\\]ipykernel_\d+[/\\]|^<ipython-input-")


def _place(filename: str, line: int, root: Path) -> str:
    """Where a line of the learner's code is, as the learner finds it: `your cell, line 3` in a
    notebook, else the file (relative to the repository or the current folder) and line."""
    if _CELL.search(filename):
        return f"your cell, line {line}"
    path = Path(filename)
    if path.is_absolute():
        for base in (root, Path.cwd()):
            if path.is_relative_to(base):
                return f"{path.relative_to(base).as_posix()}:{line}"
    return f"{filename}:{line}"


def _defined_at(candidate: object) -> tuple[str, int] | None:
    """The file (or cell) and line where the notebook's `candidate` is defined, from its code
    objects: the `def` line of a function (past `@kata`), the `class` line of a class."""
    if inspect.isclass(candidate):
        codes = [
            method.__code__
            for method in map(inspect.unwrap, vars(candidate).values())
            if inspect.isfunction(method) and method.__qualname__.startswith(f"{candidate.__qualname__}.")
        ]
        if not codes:
            return None
        first = min(codes, key=lambda code: code.co_firstlineno)
        return first.co_filename, _class_line(first.co_filename, first.co_firstlineno, candidate.__name__)
    code = getattr(inspect.unwrap(candidate), "__code__", None) if callable(candidate) else None
    if code is None:
        return None
    return code.co_filename, _def_line(code.co_filename, code.co_firstlineno)


def _def_line(filename: str, line: int) -> int:
    """The `def` line of a function whose code starts at its first decorator."""
    for number in range(line, line + 20):
        text = linecache.getline(filename, number).lstrip()
        if text.startswith(("def ", "async def ")):
            return number
    return line


def _class_line(filename: str, method_line: int, name: str) -> int:
    """The `class` line above a class's first method."""
    for number in range(method_line, 0, -1):
        if linecache.getline(filename, number).lstrip().startswith(f"class {name}"):
            return number
    return method_line


def _stand_in(
    learner: types.ModuleType, katas: list[str], name: str, candidate: object
) -> tuple[types.ModuleType, list[object]]:
    """The learner's module, with `candidate` as its `name`, and the notebook's own versions of the
    module's other katas where the notebook defines them (a notebook's train_linear_model builds the
    notebook's LinearModel); functions are shape-checked like katas where they are annotated. Also
    the notebook's katas it holds, `candidate` first."""
    module = types.ModuleType(learner.__name__, learner.__doc__)
    module.__dict__.update(vars(learner))
    home = sys.modules.get(getattr(candidate, "__module__", ""), None)
    defined = vars(home) if home is not None and home is not learner else {}
    notebook = [candidate]
    for kata_name in katas:
        found = candidate if kata_name == name else defined.get(kata_name)
        if found is not None:
            setattr(module, kata_name, _checked(found))
            notebook += [found] if found is not candidate else []
    return module, notebook


def _checked(candidate: object) -> object:
    if inspect.isfunction(candidate) and candidate.__annotations__ and not hasattr(candidate, "__wrapped__"):
        from katakit.shapes import kata

        return kata(candidate)
    return candidate


@contextlib.contextmanager
def _testing(module: types.ModuleType) -> Iterator[None]:
    with mock.patch.object(implementations, "module_under_test", lambda test_file, implementation: module):
        yield


def kata_module(name: str, *, root: Path | None = None) -> types.ModuleType:
    """The kata module `name` ("08_interpretability/circuits"), for a notebook whose katas build on it:
    yours, katas/08_interpretability/circuits.py, unless $KATAS_IMPL says reference (a filled notebook)."""
    root = (root or find_root()).resolve()
    topic, _, module = name.partition("/")
    return implementations.load(implementations.from_env(), topic, module, root)


def check(
    name: str, candidate: object, *, root: Path | None = None, lang: str | None = None, everything: bool = False
) -> bool:
    """Run kata `name`'s tests against `candidate`; print what went wrong (the report of one failed
    test, a line for each other one; `everything`: all their reports), and a pass line.

    The tests run against your module in katas/ with the notebook's katas in place of its stubs (and
    the katas it builds on, yours too); where $KATAS_IMPL says reference (a filled notebook), against
    reference/'s module instead."""
    root = (root or find_root()).resolve()
    kata = resolve_kata(name, catalog.read(root).katas)
    side = implementations.from_env()
    learner = implementations.load(side, kata.topic, kata.module, root)
    test_file = root / "katas" / kata.topic / f"test_{kata.module}.py"
    siblings = [each.name for each in catalog.read(root, [kata.topic]).katas if each.module == kata.module]
    module, notebook = _stand_in(learner, siblings, kata.name, candidate)
    verdicts = _Verdicts(kata.name, notebook, root)
    exit_code, pytest_output = _run_pytest(
        root, [str(test_file), "--kata", kata.name, f"--impl={side}"], verdicts, module
    )
    if exit_code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):  # pytest could not run the tests
        print(pytest_output, end="")
    for shown in verdicts.shown(everything):
        print(shown)
    for line in verdicts.warnings:
        print(line)
    total = verdicts.passed + len(verdicts.failures)
    if not verdicts.failures and not verdicts.todo and verdicts.passed:
        print(f"{kata.name}: all {verdicts.passed} tests pass. Well done!")
        return True
    if verdicts.todo and not verdicts.failures:
        for line in verdicts.todo:
            print(f"{line}: replace the `raise NotImplementedError` there, then run the cell again.")
    else:
        chosen = i18n.language(lang)
        english = resolve_kata(f"{kata.topic}/{kata.name}", catalog.read(root, [kata.topic], "reference").katas).hints
        text = i18n.text(root, kata, chosen, english)
        print(f"{kata.name}: {len(verdicts.failures)} of {total} tests fail; the messages above say why.")
        print(f"\n{text.task}\n\nHint 1: {text.hints[0] if text.hints else '-'}  (katas hint {kata.name} 2: the next)")
    if os.environ.get(STRICT) == "1":
        raise KataFailed(f"{kata.name}: {len(verdicts.failures)} failed, {len(verdicts.todo)} to do of {total} tests")
    return False


def _run_pytest(root: Path, arguments: list[str], verdicts: "_Verdicts", module: types.ModuleType) -> tuple[int, str]:
    """Run pytest in this process on `arguments`, with `module` as the module under test; its exit
    code, and what it printed (shown only when it could not run the tests: `verdicts` keeps the rest).

    pytest marks for assertion rewriting the packages of every plugin it finds through entry points;
    jaxtyping and typeguard ship one each, and a notebook has imported both (`from katakit import
    kata`) before it calls `check`, so pytest would warn twice, on every call, that it cannot
    rewrite them. `check` needs none of those plugins: it turns their loading off and loads the one
    the kata tests use, pytest-timeout, by name."""
    printed = io.StringIO()
    with (
        _testing(module),
        mock.patch.dict(os.environ, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}),
        contextlib.redirect_stdout(printed),
    ):
        exit_code = pytest.main(
            [*arguments, "-p", "pytest_timeout", "-p", "no:cacheprovider", f"--rootdir={root}"], plugins=[verdicts]
        )
    return int(exit_code), printed.getvalue()


Notebook = dict[str, Any]  # a notebook's JSON


def _with_kata_cells(notebook: Path, root: Path, side: str) -> Notebook:
    """The notebook's JSON with every kata cell holding that kata's definition from `side`
    (katas: the stub, for the committed notebooks; reference: the solution, for CI)."""
    content: Notebook = json.loads(notebook.read_text(encoding="utf-8"))
    katas = catalog.read(root, side="reference").katas
    for cell in content["cells"]:
        name = cell.get("metadata", {}).get(KATA_TAG)
        if cell["cell_type"] != "code" or not name:
            continue
        kata = resolve_kata(name, katas)
        source = source_file(root, side, kata.topic, kata.module).read_text(encoding="utf-8")
        cell["source"] = definition(source, kata.name).rstrip("\n").splitlines(keepends=True)
    return content


def _write(content: Notebook, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


# The first cell of a filled notebook: its kata cells are reference/'s, so are the katas they build on.
FILLED = f"""# Filled by `python -m katakit.maintain notebook fill`: the kata cells hold the reference solutions,
# and the katas they build on come from reference/ too (kata_module and check read ${implementations.ENV_VAR}).
import os

os.environ["{implementations.ENV_VAR}"] = "reference"
"""


def fill(notebook: Path, destination: Path, root: Path) -> Path:
    """Write `notebook` to `destination` with every kata cell holding the reference solution, after a
    first cell that points kata_module and check at reference/."""
    content = _with_kata_cells(notebook, root, "reference")
    source = FILLED.splitlines(keepends=True)
    first: Notebook = {
        "cell_type": "code",
        "execution_count": None,
        "id": "filled",
        "metadata": {},
        "outputs": [],
        "source": source,
    }
    content["cells"].insert(0, first)
    return _write(content, destination / notebook.name)


def sync(notebook: Path, root: Path) -> bool:
    """Rewrite the kata cells of a committed notebook from the current stubs; whether it changed."""
    before = notebook.read_text(encoding="utf-8")
    _write(_with_kata_cells(notebook, root, "katas"), notebook)
    return notebook.read_text(encoding="utf-8") != before


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.maintain notebook", description=__doc__.split("\n\n")[0])
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
