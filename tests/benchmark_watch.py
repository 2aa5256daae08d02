"""How long a learner waits between saving a kata file and `katas watch` redrawing, per topic, and
how long `katas` takes when nothing changed. A timing, not a check: nothing asserts on speed.

    pytest -m benchmark tests/benchmark_watch.py -s -p no:cacheprovider

It copies the repository (the untouched stubs) to a temporary folder, starts `katas watch` there,
then saves each topic's first learner file in turn and times the save -> "ran ..." line.
"""

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from katakit import catalog

REAL = Path(__file__).resolve().parents[1]


def _copy(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", ".katas")
    for name in ("conftest.py", "pyproject.toml", catalog.CURRICULUM):
        shutil.copy(REAL / name, target / name)
    for folder in ("katakit", "katas", "reference"):
        shutil.copytree(REAL / folder, target / folder, ignore=ignore)
    return target


def _lines(process: subprocess.Popen) -> "queue.Queue[tuple[float, str]]":
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put((time.perf_counter(), line))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_run(lines: "queue.Queue[tuple[float, str]]", timeout: float = 120) -> tuple[float, str]:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            when, line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        if "katas watch:" in line and " ran " in line:
            return when, line.strip()
    raise AssertionError("watch did not redraw in time")


@pytest.mark.benchmark
def test_save_to_redraw_per_topic_and_status_from_the_cache(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env.pop("KATAS_ROOT", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "katakit", "watch", "--root", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = _lines(process)
    try:
        when, line = _wait_for_run(lines)
        print(f"\nwatch start (imports, then every topic): {when - started:.2f} s  [{line}]")
        for topic in catalog.curriculum(root):
            time.sleep(1.0)
            learner = root / "katas" / topic.folder / f"{topic.modules[0]}.py"
            saved = time.perf_counter()
            learner.write_text(learner.read_text() + "\n")
            when, line = _wait_for_run(lines)
            print(f"save -> redraw {topic.folder}: {when - saved:.2f} s  [{line}]")
    finally:
        process.terminate()
        process.wait(timeout=30)
    command = [sys.executable, "-m", "katakit", "--root", str(root)]
    begin = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    print(f"katas with nothing changed: {time.perf_counter() - begin:.2f} s  [{result.stdout.splitlines()[0]}]")
