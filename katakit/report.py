"""A pytest plugin that records, for every kata test, which kata it checks and how it ended.

    pytest -p katakit.report --katas-report=results.json katas

writes a JSON list with one record per test (and one per test file that failed to collect):
{"nodeid", "topic", "module", "kata", "outcome", "not_implemented", "message"}, where outcome is
passed, failed, skipped or error, and not_implemented says whether the failure was a
NotImplementedError, i.e. an untouched stub. The contract check and the `katas` command read it.
"""

import json
from pathlib import Path

import pytest

from katakit.impl import module_name


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--katas-report", metavar="FILE", help="write one JSON record per kata test to FILE")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("katas_report")
    if target:
        config.pluginmanager.register(Recorder(Path(target)), "katakit-recorder")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    marker = item.get_closest_marker("kata")
    report.kata = marker.args[0] if marker else None
    report.not_implemented = call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError)
    return report


def _first_line(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr).strip().splitlines()[-1]


def _record(report: pytest.TestReport | pytest.CollectReport, outcome: str) -> dict:
    path = Path(report.fspath)
    return {
        "nodeid": report.nodeid,
        "topic": path.parent.name,
        "module": module_name(path),
        "kata": getattr(report, "kata", None),
        "outcome": outcome,
        "not_implemented": getattr(report, "not_implemented", False),
        "message": _first_line(report) if outcome in ("failed", "error") else "",
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
