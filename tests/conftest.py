"""The project's own tests run pytest and the `katas` command in subprocesses, some of them for tens
of seconds: they get a long pytest-timeout limit, instead of the 15 s that pyproject.toml gives
every kata test (a kata stuck in an endless loop). A test with a timeout marker of its own keeps it."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TIMEOUT = 600  # seconds


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.pluginmanager.hasplugin("timeout"):
        return  # pytest-timeout disabled (-p no:timeout): its marker is not registered
    for item in items:
        if item.path.is_relative_to(HERE) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TIMEOUT))
