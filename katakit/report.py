"""A pytest plugin that writes, for every kata test, how it ended: one katakit.model.TestRecord each.

    pytest -p katakit.report --katas-report=results.json katas

writes a JSON list with one record per test (and one per test file that failed to collect), in
TestRecord's JSON form (its docstring says what each field means). The contract check and the
`katas` command read it. What each failure means, and which katas wait on another, is worked out
by katakit.plugin (registered by the root conftest.py); this module only writes it down.
"""

import json
from pathlib import Path

import pytest

from katakit.model import TestRecord


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--katas-report", metavar="FILE", help="write one JSON record per kata test to FILE")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("katas_report")
    if target:
        config.pluginmanager.register(Recorder(config, Path(target)), "katakit-recorder")


def write(target: Path, records: list[TestRecord]) -> None:
    target.write_text(json.dumps([record.to_json() for record in records], indent=1), encoding="utf-8")


def read(source: Path) -> list[TestRecord]:
    return [TestRecord.from_json(data) for data in json.loads(source.read_text(encoding="utf-8"))]


class Recorder:
    """Writes the records katakit.plugin kept, once the run is over."""

    def __init__(self, config: pytest.Config, target: Path) -> None:
        self.config = config
        self.target = target

    @pytest.hookimpl(trylast=True)  # after katakit.plugin has decided which katas wait on another
    def pytest_sessionfinish(self) -> None:
        from katakit.plugin import katas_of

        write(self.target, list(katas_of(self.config).records.values()))
