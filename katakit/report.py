"""A pytest plugin that records, for every kata test, which kata it checks and how it ended.

    pytest -p katakit.report --katas-report=results.json katas

writes a JSON list with one record per test (and one per test file that failed to collect):
{"nodeid", "topic", "module", "kata", "outcome", "not_implemented", "message", "blocked_by",
"location", "timed_out"}, where
    outcome          passed, failed, skipped or error (a failure outside the test's call: setup);
    not_implemented  whether the failure was a NotImplementedError raised in a learner's file, i.e.
                     an untouched stub;
    message          the failure's message ("" when the test passed or was skipped); for a blocked
                     test the one-line error, "katas/05_attention/attention.py:324: SyntaxError: ...";
    blocked_by       the learner file:line whose syntax or import error stopped the test's module
                     from importing, "katas/05_attention/attention.py:324 (SyntaxError)", or null;
    location         the learner's file:line where the failure happened, or null;
    timed_out        whether the test's kata ran past pytest-timeout's limit (an endless loop?).
The contract check and the `katas` command read it. What each failure means is worked out by
katakit.plugin (registered by the root conftest.py); this module only writes it down.
"""

import json
from pathlib import Path

import pytest

from katakit.repo import module_name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--katas-report", metavar="FILE", help="write one JSON record per kata test to FILE")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("katas_report")
    if target:
        config.pluginmanager.register(Recorder(Path(target)), "katakit-recorder")


def _first_line(report: pytest.TestReport | pytest.CollectReport) -> str:
    explained = getattr(report, "katas_message", None)
    if explained:
        return explained
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]


def _record(report: pytest.TestReport | pytest.CollectReport, outcome: str) -> dict:
    path = Path(report.fspath)
    failed = outcome in ("failed", "error")
    return {
        "nodeid": report.nodeid,
        "topic": path.parent.name,
        "module": module_name(path),
        "kata": getattr(report, "kata", None),
        "outcome": outcome,
        "not_implemented": getattr(report, "not_implemented", False),
        "message": _first_line(report) if failed else "",
        "blocked_by": getattr(report, "katas_blocked_by", None) if failed else None,
        "location": getattr(report, "katas_location", None) if failed else None,
        "timed_out": getattr(report, "katas_timed_out", False) if failed else False,
    }


class Recorder:
    """Collects one record per test, keeping the first phase that did not pass."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.records: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        earlier = self.records.get(report.nodeid)
        if earlier is not None and earlier["outcome"] != "passed":
            return
        if report.when == "call" or report.skipped:
            self.records[report.nodeid] = _record(report, report.outcome)
        elif report.failed:
            self.records[report.nodeid] = _record(report, "error")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.records[report.nodeid] = _record(report, "error")

    def pytest_sessionfinish(self) -> None:
        self.target.write_text(json.dumps(list(self.records.values()), indent=1))
