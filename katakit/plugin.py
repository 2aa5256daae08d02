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
    - records which katas each test calls (katakit.calls), and at the end reports a kata whose
      failing tests all call a kata that fails on its own as waiting on it, one summary line per kata
      (katakit.blame; the full failures with -vv);
    - shows first, of a kata's failures, one whose message names a likely mistake, and counts the
      others ("and 7 more failures of Adam.step: -vv shows them");
    - turns pytest-timeout's failure into "<kata> did not finish within 15 s: an endless loop ...?"
      and fails the kata's further tests at once instead of waiting out each timeout;
    - makes the kata's name a keyword (`-k stable_softmax`) and adds `--kata NAME`.

To-do, blocked and waiting tests still count as failed (exit code 1): a kata stays red until it
passes. Any explicit `--tb=...` (or `--full-trace`) turns the shortened output off: pytest's own,
complete report, with to-do and blocked tests as ordinary failures and errors.

Whatever the output, every test report carries its katakit.model.TestRecord (`katas_record`),
which katakit.report writes down for the `katas` command. The work is split by job: katakit.explain
explains a failure, katakit.tracebacks shortens it, katakit.summary writes the terminal's summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from katakit import calls, promises
from katakit.explain import BLOCKING, Explainer, Failure, kata_of
from katakit.model import ERROR, TestRecord
from katakit.repo import module_name
from katakit.summary import Summary

RECORD = "katas_record"  # the TestRecord on each test report
_CALLS = pytest.StashKey[set[str]]()


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


def katas_of(config: pytest.Config) -> Katas:
    """This run's plugin state."""
    plugin = config.pluginmanager.get_plugin("katakit-katas")
    assert isinstance(plugin, Katas)
    return plugin


def _explicit_traceback_style(config: pytest.Config) -> bool:
    """Whether the user chose a traceback style (--tb=..., --full-trace), on the command line or in addopts."""
    if config.option.tbstyle != "auto" or getattr(config.option, "fulltrace", False):
        return True
    arguments = [*config.invocation_params.args, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    arguments += config.getini("addopts")
    return any(arg == "--tb" or arg.startswith("--tb=") or arg in ("--full-trace", "--fulltrace") for arg in arguments)


class Katas:
    """The plugin's state for one pytest run: selection, promises and calls, one record per test."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.compact = not _explicit_traceback_style(config)
        self.explainer = Explainer(config, self.compact)
        self.summary = Summary(config, self.explainer)
        # kata (module:qualname) -> the arguments with a default it was given another value for
        self.arguments: dict[str, set[str]] | None = {} if config.getoption("katas_arguments") else None
        self.records: dict[str, TestRecord] = {}  # nodeid -> the first phase that did not pass
        self._fixture_calls: dict[Any, set[str]] = {}  # fixture definition -> the katas its setup called

    # --- selection --------------------------------------------------------------------------------

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        name = kata_of(item)
        if name:
            item.extra_keyword_matches.add(name)

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        wanted = set(config.getoption("kata") or ())
        if not wanted:
            return
        keep: list[pytest.Item] = []
        drop: list[pytest.Item] = []
        for item in items:
            (keep if kata_of(item) in wanted else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    # --- running: promises and calls --------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        already = self.explainer.timed_out_before(item)
        if already:
            pytest.fail(already, pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any) -> Generator[None, Any, Any]:
        """Note the katas a fixture calls (a model trained once for a module's tests): each test
        that uses the fixture called them."""
        with calls.recording(self._fixture_calls.setdefault(fixturedef, set())):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, Any, Any]:
        with self._promises(item), calls.recording(item.stash.setdefault(_CALLS, set())):
            return (yield)

    @contextlib.contextmanager
    def _promises(self, item: pytest.Item) -> Iterator[None]:
        """Check the katas' promises (katakit.promises) in a kata test, and record the arguments
        they are called with when asked to (--katas-arguments)."""
        with contextlib.ExitStack() as stack:
            if kata_of(item) and item.get_closest_marker("benchmark") is None:
                stack.enter_context(promises.checking())
            if self.arguments is not None:
                stack.enter_context(promises.recording(self.arguments))
            yield

    def _calls_of(self, item: pytest.Item) -> list[str]:
        """Every kata the test called, in its body or in the fixtures it uses."""
        in_test: set[str] = item.stash.setdefault(_CALLS, set())
        called = set(in_test)
        info = getattr(item, "_fixtureinfo", None)
        for definitions in getattr(info, "name2fixturedefs", {}).values():
            for definition in definitions:
                called |= self._fixture_calls.get(definition, set())
        return sorted(called)

    # --- one record per test ----------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        failure = None
        excinfo = call.excinfo
        if excinfo is not None and call.when in ("setup", "call") and not excinfo.errisinstance(pytest.skip.Exception):
            try:
                failure = self.explainer.explain(item, excinfo, self._calls_of(item))
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
        record = self._record(report, kata_of(item), failure if report.failed else None)
        record.calls = self._calls_of(item)
        record.slow = item.get_closest_marker("slow") is not None
        setattr(report, RECORD, record)
        return report

    @staticmethod
    def _record(
        report: pytest.TestReport | pytest.CollectReport, kata: str | None, failure: Failure | None
    ) -> TestRecord:
        """The record of one phase of a test (setup, call, teardown) or of a test file's collection."""
        path = Path(report.fspath)
        in_call = isinstance(report, pytest.TestReport) and report.when == "call"
        outcome = report.outcome if in_call or report.skipped or report.passed else ERROR
        record = TestRecord(report.nodeid, path.parent.name, module_name(path), kata, outcome)
        if not report.failed:
            return record
        if failure is None:
            crash = getattr(report.longrepr, "reprcrash", None)
            lines = str(report.longrepr).strip().splitlines()
            record.message = crash.message if crash is not None else (lines[-1] if lines else "")
            return record
        record.message = failure.message
        record.not_implemented = failure.not_implemented
        record.blocked_by = failure.blocked_by
        record.location = failure.location
        record.timed_out = failure.timed_out
        record.needs = failure.needs
        record.source = failure.source
        return record

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record: TestRecord | None = getattr(report, RECORD, None)
        earlier = self.records.get(report.nodeid)
        if record is None or (earlier is not None and earlier.outcome != "passed"):
            return
        if report.when == "call" or report.skipped or report.failed:
            self.records[report.nodeid] = record

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.records[report.nodeid] = self._record(report, None, None)

    # --- the end of the run -----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        if not self.compact:
            return None
        return self.summary.teststatus(report, getattr(report, RECORD, None))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self) -> None:
        """Decide which katas wait on another (now that every test has run), before the records are
        written (katakit.report) and the terminal's summary is drawn."""
        self.summary.finish(list(self.records.values()), self.compact)
        target = self.config.getoption("katas_arguments")
        if target and self.arguments is not None:
            used = {kata: sorted(names) for kata, names in sorted(self.arguments.items())}
            Path(target).write_text(json.dumps(used, indent=1) + "\n", encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.compact:
            self.summary.write(terminalreporter)
