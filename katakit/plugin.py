"""The kata tests' pytest plugin: quiet, teaching output for `pytest katas/NN_topic`.

Registered by the root conftest.py, so it runs with every pytest run of this repository. For a
test marked `@pytest.mark.kata("name")` it

    - reports a stub that still raises NotImplementedError as "to do" (letter T), one summary line
      per kata with the file:line to edit, instead of a traceback through the kata's docstring;
    - shortens a real failure to the test's message, the learner's file:line and the test's line
      (frames of katakit, jaxtyping, typeguard, pytest and torch hidden, chained exceptions left out);
    - reports a learner module that does not compile or import ONCE (file:line, error, the offending
      line), and each test it stops as "blocked by katas/05_attention/attention.py:324 (SyntaxError)"
      (letter B; one summary line per test file, per test with -v);
    - turns pytest-timeout's failure into "<kata> did not finish within 15 s: an endless loop ...?"
      and fails the kata's further tests at once instead of waiting out each timeout;
    - makes the kata's name a keyword (`-k stable_softmax`) and adds `--kata NAME`.

To-do and blocked tests still count as failed (exit code 1): a kata stays red until it passes. Any
explicit `--tb=...` (or `--full-trace`) turns the shortened output off: pytest's own, complete
report, with to-do and blocked tests as ordinary failures and errors.

Whatever the output, every test report carries what `katakit.report` records for the `katas`
command: kata, not_implemented and katas_message, katas_blocked_by, katas_location, katas_timed_out
(TestReport has a `location` of its own).
"""

from __future__ import annotations

import ast
import contextlib
import json
import linecache
import os
import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from katakit import promises
from katakit.repo import SIDES, module_name

TODO, BLOCKED = "to do", "blocked"
# Set by the `impl` fixture (conftest.py) on the error that stopped the module under test from importing.
BLOCKING = "_katas_blocks_the_module"
# pytest-timeout's failure message: "Timeout (>15.0s) from pytest-timeout."
_TIMEOUT = re.compile(r"Timeout \(>([0-9.eE+-]+)s\)")
ENDLESS = "{kata} did not finish within {seconds} s: an endless loop (a while loop whose condition never changes)?"
_HIDDEN_PARTS = {"site-packages", "dist-packages", "katakit"}


def mark_blocking(error: BaseException) -> None:
    """Mark `error`, raised while importing the module under test, as blocking that module's tests."""
    # An exception that takes no attributes is reported as a plain error.
    with contextlib.suppress(AttributeError, TypeError):
        setattr(error, BLOCKING, True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kata",
        action="append",
        default=[],
        metavar="NAME",
        help="run only the tests of the kata NAME (repeatable), e.g. --kata stable_softmax",
    )
    parser.addoption(
        "--katas-arguments",
        metavar="FILE",
        help="write to FILE, for each kata, the arguments with a default that the tests gave another value",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Katas(config), "katakit-katas")


def _explicit_traceback_style(config: pytest.Config) -> bool:
    """Whether the user chose a traceback style (--tb=..., --full-trace), on the command line or in addopts."""
    if config.option.tbstyle != "auto" or getattr(config.option, "fulltrace", False):
        return True
    arguments = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    arguments += config.getini("addopts")
    return any(arg == "--tb" or arg.startswith("--tb=") or arg in ("--full-trace", "--fulltrace") for arg in arguments)


@dataclass(frozen=True)
class Definition:
    """A top-level def or class of a learner file, decorators included."""

    name: str
    first: int  # first line, decorators included
    line: int  # the `def`/`class` line
    last: int


@dataclass
class Blocking:
    """The error that stopped a learner module from importing, as the learner should read it."""

    where: str  # katas/05_attention/attention.py:324
    kind: str  # SyntaxError
    message: str  # invalid syntax
    source: list[str]  # the offending line (and a caret under a syntax error)

    @property
    def one_line(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"

    @property
    def blocked_by(self) -> str:
        return f"{self.where} ({self.kind})"


@dataclass
class Failure:
    """A failed test, explained: what `katakit.report` records, and what the learner sees."""

    message: str
    not_implemented: bool = False
    blocked_by: str | None = None
    location: str | None = None
    timed_out: bool = False
    needs: str | None = None  # the other kata's stub that raised NotImplementedError
    source: list[str] = field(default_factory=list)  # the line that blocks the module
    longrepr: object = None  # the report to show instead of pytest's (compact mode only)


class Katas:
    """The plugin's state for one pytest run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = config.rootpath
        # Learner modules are imported from the resolved root (katakit.repo.root_of_test): both spellings count.
        self.roots = list(dict.fromkeys([config.rootpath, config.rootpath.resolve()]))
        self.compact = not _explicit_traceback_style(config)
        # (test file, kata) -> the test that timed out, and the learner's line it was running
        self.timed_out: dict[tuple[str, str], tuple[str, str | None]] = {}
        self.after_timeout: set[str] = set()  # nodeids failed at once because their kata had timed out
        self._relative: dict[str, str | None] = {}
        # kata (module:qualname) -> the arguments with a default it was given another value for
        self.arguments: dict[str, set[str]] | None = {} if config.getoption("katas_arguments") else None
        self._definitions: dict[str, list[Definition]] = {}

    # --- selection --------------------------------------------------------------------------------

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        name = _kata(item)
        if name:
            item.extra_keyword_matches.add(name)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        wanted = set(config.getoption("kata") or ())
        if not wanted:
            return
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        for item in items:
            (keep if _kata(item) in wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    # --- running ----------------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        name = _kata(item)
        if name and (str(item.path), name) in self.timed_out:
            self.after_timeout.add(item.nodeid)
            pytest.fail(f"{name} already timed out in {self.timed_out[(str(item.path), name)][0]}", pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        with self._promises(item):
            return (yield)

    @contextlib.contextmanager
    def _promises(self, item: pytest.Item):
        """Check the katas' promises (katakit.promises) in a kata test, and record the arguments
        they are called with when asked to (--katas-arguments)."""
        with contextlib.ExitStack() as stack:
            if _kata(item) and item.get_closest_marker("benchmark") is None:
                stack.enter_context(promises.checking())
            if self.arguments is not None:
                stack.enter_context(promises.recording(self.arguments))
            yield

    def pytest_sessionfinish(self) -> None:
        target = self.config.getoption("katas_arguments")
        if target and self.arguments is not None:
            used = {kata: sorted(names) for kata, names in sorted(self.arguments.items())}
            Path(target).write_text(json.dumps(used, indent=1) + "\n", encoding="utf-8")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        failure = None
        excinfo = call.excinfo
        if excinfo is not None and call.when in ("setup", "call") and not excinfo.errisinstance(pytest.skip.Exception):
            try:
                failure = self._explain(item, excinfo)
            except Exception:  # a failure this plugin cannot explain is still a failure, reported by pytest
                failure = None
        if failure is not None and failure.longrepr is not None:
            # pytest would format its own long report (the kata's docstring, the repr of every tensor
            # argument) only for it to be replaced: most of a stub run's time. Hand it ours instead.
            shown = failure.longrepr
            item.__dict__["repr_failure"] = lambda _excinfo: shown
            item.__dict__["_repr_failure_py"] = lambda _excinfo, style=None: shown
        try:
            report = yield
        finally:
            item.__dict__.pop("repr_failure", None)
            item.__dict__.pop("_repr_failure_py", None)
        report.kata = _kata(item)
        report.not_implemented = False
        report.katas_blocked_by = None
        report.katas_location = None
        report.katas_timed_out = False
        report.katas_message = None
        if failure is not None and report.failed:
            report.not_implemented = failure.not_implemented
            report.katas_blocked_by = failure.blocked_by
            report.katas_location = failure.location
            report.katas_timed_out = failure.timed_out
            report.katas_message = failure.message
            report.katas_needs = failure.needs
            report.katas_source = failure.source
        return report

    def _explain(self, item: pytest.Item, excinfo: pytest.ExceptionInfo) -> Failure:
        """What went wrong, in the learner's terms, and (in compact mode) the report to show."""
        error = excinfo.value
        kata = _kata(item)
        compact = self.compact and kata is not None
        if item.nodeid in self.after_timeout:
            location = self.timed_out.get((str(item.path), kata), ("", None))[1] if kata else None
            return Failure(str(error), location=location, timed_out=True)
        if getattr(error, BLOCKING, False):
            blocking = self._blocking(item, excinfo)
            return Failure(
                blocking.one_line,
                blocked_by=blocking.blocked_by,
                location=blocking.where if ":" in blocking.where else None,
                source=blocking.source,
                longrepr=f"blocked by {blocking.blocked_by}" if compact else None,
            )
        entries = list(excinfo.traceback)
        learner = [entry for entry in entries if self._learner_file(entry.path)]
        if isinstance(error, NotImplementedError) and entries and self._learner_file(entries[-1].path):
            location = self._where(entries[-1])
            return Failure(
                excinfo.exconly(tryshort=True),
                not_implemented=True,
                location=location,
                needs=self._needs(item, entries[-1]),
                longrepr=f"to do: {kata} ({location})" if compact else None,
            )
        timeout = _TIMEOUT.match(str(error)) if isinstance(error, pytest.fail.Exception) else None
        if timeout and kata:
            location = self._where(learner[-1]) if learner else None
            message = ENDLESS.format(kata=kata, seconds=f"{float(timeout.group(1)):g}")
            stopped = f"Stopped at {location}." if location else ""
            self.timed_out[(str(item.path), kata)] = (item.name, location)
            shown = [message, stopped] if stopped else [message]
            return Failure(
                f"{message} {stopped}".strip(),
                location=location,
                timed_out=True,
                longrepr=self._short(excinfo, replace_message=shown) if compact else None,
            )
        your_code = None
        if learner:
            location = self._where(learner[-1])
        else:
            your_code = self._kata_function(excinfo) or self._kata_definition(item, kata)
            location = your_code[0] if your_code else None
        trailer = f"your code: {your_code[0]} ({your_code[1]})" if your_code else None
        return Failure(
            excinfo.exconly(tryshort=True),
            location=location,
            longrepr=self._short(excinfo, trailer=trailer) if compact else None,
        )

    # --- the short report -------------------------------------------------------------------------

    def _shown(self, entry) -> bool:
        """Whether a traceback entry is worth a learner's eyes: a file of this repository, not katakit's."""
        relative = self._relative_path(entry.path)
        if relative is None:
            return False
        parts = relative.split("/")
        return not any(part.startswith(".") or part in _HIDDEN_PARTS for part in parts)

    def _short(
        self, excinfo: pytest.ExceptionInfo, trailer: str | None = None, replace_message: list[str] | None = None
    ):
        """pytest's short report of the failure, through the learner's and the test's frames only,
        without the chained exceptions; None when none of the frames is ours (pytest's report says more)."""
        shown = [entry for entry in excinfo.traceback if self._shown(entry)]
        if not shown:
            return None
        try:
            absolute = Path.cwd() != self.root
        except OSError:
            absolute = True
        short = excinfo.getrepr(
            style="short",
            chain=False,
            abspath=absolute,
            tbfilter=lambda info: info.traceback.filter(self._shown),
            showlocals=bool(self.config.getoption("showlocals", False)),
            funcargs=False,
        )
        traceback = getattr(short, "reprtraceback", None)
        entries = getattr(traceback, "reprentries", None)
        if traceback is None or not entries:
            return None
        if len(shown) == len(entries):  # a statement over several lines (an assert_close(...) call) in full
            for entry, lines in zip(shown, entries, strict=True):
                statement = _statement(entry)
                if len(statement) > 1:
                    lines.lines = [f"    {line}" for line in statement] + [
                        line for line in lines.lines if line.startswith("E   ")
                    ]
        if replace_message is not None:
            last = entries[-1]
            last.lines = [line for line in last.lines if not line.startswith("E   ")]
            last.lines += [f"E   {line}" for line in replace_message]
            if short.reprcrash is not None:
                short.reprcrash.message = replace_message[0]
        if trailer and not traceback.extraline:
            traceback.extraline = trailer
        return short

    # --- what the traceback says ------------------------------------------------------------------

    def _relative_path(self, path: Path | str) -> str | None:
        """`katas/05_attention/attention.py` for a file in the repository, None for one outside it."""
        key = str(path)
        if key not in self._relative:
            relative = None
            if isinstance(path, Path) or os.path.isabs(key):
                for root in self.roots:
                    with contextlib.suppress(ValueError):
                        relative = Path(key).relative_to(root).as_posix()
                        break
            self._relative[key] = relative
        return self._relative[key]

    def _learner_file(self, path: Path | str) -> bool:
        """A learner's file: a .py under katas/ or reference/ that is not a test (nor a benchmark, nor a conftest)."""
        relative = self._relative_path(path)
        if relative is None or not relative.endswith(".py"):
            return False
        parts = relative.split("/")
        name = parts[-1]
        return parts[0] in SIDES and not name.startswith(("test_", "benchmark_")) and name != "conftest.py"

    def _where(self, entry) -> str:
        return f"{self._relative_path(entry.path)}:{entry.lineno + 1}"

    def _definitions_of(self, path: Path) -> list[Definition]:
        key = str(path)
        if key not in self._definitions:
            found: list[Definition] = []
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                tree = None
            for node in tree.body if tree else ():
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    found.append(Definition(node.name, first, node.lineno, node.end_lineno or node.lineno))
            self._definitions[key] = found
        return self._definitions[key]

    def _learner_module(self, item: pytest.Item) -> Path | None:
        """The module under test of a kata test: `<side>/<topic>/<module>.py`."""
        path = Path(item.path)
        if path.parent.parent.name != "katas":
            return None
        side = getattr(self.config.option, "impl", None)
        return self.root / (side if side in SIDES else "katas") / path.parent.name / f"{module_name(path)}.py"

    def _needs(self, item: pytest.Item, entry) -> str | None:
        """The stub that raised, when it is not the test's own kata: `MultiHeadAttention.forward`."""
        code = entry.frame.code.raw
        name = getattr(code, "co_qualname", code.co_name)
        line = entry.lineno + 1
        owner = next((d.name for d in self._definitions_of(Path(entry.path)) if d.first <= line <= d.last), None)
        kata = _kata(item)
        own_file = self._learner_module(item)
        if owner == kata and (
            own_file is None
            or self._relative_path(entry.path) == self._relative_path(own_file)
            or not own_file.is_file()
        ):
            return None
        return name if owner is None or name.split(".")[0] == owner else f"{owner} ({name})"

    def _kata_function(self, excinfo: pytest.ExceptionInfo) -> tuple[str, str] | None:
        """The learner's function whose return value jaxtyping rejected, from jaxtyping's own frame
        (its `fn`): the function has returned, so it is on no stack."""
        for entry in reversed(excinfo.traceback):
            if self._shown(entry):
                break  # the error came from the test's own code
            try:
                fn = entry.frame.f_locals.get("fn")
            except Exception:
                continue
            code = getattr(fn, "__code__", None)
            if code is not None and self._learner_file(code.co_filename):
                relative = self._relative_path(code.co_filename)
                line = code.co_firstlineno
                for definition in self._definitions_of(Path(code.co_filename)):
                    if definition.first == line:
                        line = definition.line  # the `def` line, not its decorator's
                        break
                else:
                    line = _skip_decorators(code.co_filename, line)
                return f"{relative}:{line}", getattr(fn, "__qualname__", code.co_name)
        return None

    def _kata_definition(self, item: pytest.Item, kata: str | None) -> tuple[str, str] | None:
        """Where the test's kata is defined in the module under test: `katas/01_x/x.py:17`."""
        module = self._learner_module(item)
        if not kata or module is None:
            return None
        for definition in self._definitions_of(module):
            if definition.name == kata:
                return f"{self._relative_path(module)}:{definition.line}", kata
        return None

    def _blocking(self, item: pytest.Item, excinfo: pytest.ExceptionInfo) -> Blocking:
        error = excinfo.value
        kind = type(error).__name__
        if isinstance(error, SyntaxError) and error.filename:
            path = self._relative_path(os.path.abspath(error.filename)) or error.filename
            where = f"{path}:{error.lineno}" if error.lineno else path
            return Blocking(where, kind, str(error.msg), _syntax_source(error))
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        learner = [entry for entry in excinfo.traceback if self._learner_file(entry.path)]
        if learner:
            entry = learner[-1]
            source = linecache.getline(str(entry.path), entry.lineno + 1).strip()
            return Blocking(self._where(entry), kind, message, [f"    {source}"] if source else [])
        module = self._learner_module(item)
        where = (self._relative_path(module) if module is not None else None) or item.nodeid.split("::")[0]
        return Blocking(where, kind, message, [])

    # --- the terminal -----------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        if not self.compact or not report.failed or report.when not in ("setup", "call"):
            return None
        if getattr(report, "not_implemented", False) and getattr(report, "kata", None):
            return TODO, "T", ("TO DO", {"yellow": True})
        if getattr(report, "katas_blocked_by", None):
            return BLOCKED, "B", ("BLOCKED", {"red": True})
        if report.nodeid in self.after_timeout:
            return "failed", "F", "FAILED"
        return None

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.compact:
            return
        self._summarise_blocked(terminalreporter, terminalreporter.stats.get(BLOCKED, []))
        self._summarise_todo(terminalreporter, terminalreporter.stats.get(TODO, []))

    def _summarise_blocked(self, terminal, reports: list) -> None:
        if not reports:
            return
        terminal.write_sep("=", "blocked: a learner file does not compile or import", red=True, bold=True)
        by_error: dict[str, list] = {}
        for report in reports:
            by_error.setdefault(report.katas_message, []).append(report)
        for message, blocked in by_error.items():
            terminal.write_line(message, red=True, bold=True)
            for line in getattr(blocked[0], "katas_source", []):
                terminal.write_line(line)
            if terminal.verbosity > 0:  # each test on a line of its own
                for report in blocked:
                    terminal.write_line(f"{report.nodeid}: blocked by {report.katas_blocked_by}")
                continue
            per_file: dict[str, int] = {}
            for report in blocked:
                test_file = report.nodeid.split("::")[0]
                per_file[test_file] = per_file.get(test_file, 0) + 1
            for test_file, count in per_file.items():
                tests = "1 test" if count == 1 else f"{count} tests"
                terminal.write_line(f"{test_file}: {tests} blocked by {blocked[0].katas_blocked_by}")

    def _summarise_todo(self, terminal, reports: list) -> None:
        katas: dict[tuple[str, str], pytest.TestReport] = {}
        for report in reports:
            katas.setdefault((report.nodeid.split("::")[0], report.kata), report)
        if not katas:
            return
        terminal.write_sep("=", "to do: these stubs still raise NotImplementedError", yellow=True)
        for (_, kata), report in katas.items():
            needs = getattr(report, "katas_needs", None)
            where = f"needs {needs}, {report.katas_location}" if needs else report.katas_location
            terminal.write_line(f"to do: {kata} ({where})")
        terminal.write_line("Replace the `raise NotImplementedError` at that line with your code, then run pytest.")


def _kata(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("kata")
    return marker.args[0] if marker is not None and marker.args else None


def _statement(entry, most: int = 8) -> list[str]:
    """The source of a traceback entry's whole statement, dedented, at most `most` lines."""
    try:
        lines = textwrap.dedent(str(entry.statement)).rstrip().splitlines()
    except Exception:
        return []
    return lines if len(lines) <= most else [*lines[: most - 1], "..."]


def _skip_decorators(filename: str, line: int) -> int:
    """The `def` line of a function whose code starts at its first decorator."""
    for number in range(line, line + 20):
        text = linecache.getline(filename, number).strip()
        if text and not text.startswith("@"):
            return number
    return line


def _syntax_source(error: SyntaxError) -> list[str]:
    """The line of a syntax error, with a caret under the offending text."""
    text = (error.text or "").rstrip("\n")
    if not text.strip():
        return []
    stripped = text.lstrip()
    indent = len(text) - len(stripped)
    lines = [f"    {stripped.rstrip()}"]
    if error.offset:
        start = max(0, error.offset - 1 - indent)
        end_offset = getattr(error, "end_offset", None)
        same_line = getattr(error, "end_lineno", error.lineno) == error.lineno
        width = end_offset - error.offset if end_offset and same_line and end_offset > error.offset else 1
        lines.append("    " + " " * start + "^" * width)
    return lines
