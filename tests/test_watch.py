"""`katas watch`: a save re-runs the saved topic and the topics built on it, and redraws.

Runs the real command in a subprocess on a temporary copy holding two toy topics (10_later builds
on 09_toy, as curriculum.toml declares), saves a kata, and reads what it prints.
"""

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from katakit.watch import EVERY_TOPIC, changed_topics, to_rerun

TOY = '''from katakit import kata


@kata
def double(x: float) -> float:
    """Return twice `x`.

    Hints:
        1. Twice.
        2. Add it to itself.
    """
    return 2 * x
'''
LATER = '''import importlib

from katakit import kata

toy = importlib.import_module("..09_toy.toy", __package__)


@kata
def quadruple(x: float) -> float:
    """Return four times `x`.

    Hints:
        1. Twice twice.
        2. double(double(x)).
    """
    return 4 * x
'''
TESTS = {
    "toy": 'import pytest\n\n\n@pytest.mark.kata("double")\ndef test_double(impl):\n'
    "    assert impl.double(3.0) == 6.0\n",
    "later": 'import pytest\n\n\n@pytest.mark.kata("quadruple")\ndef test_quadruple(impl):\n'
    "    assert impl.quadruple(1.0) == 4.0\n",
}
CURRICULUM = """
[[topic]]
folder = "09_toy"
modules = ["toy"]

[[topic]]
folder = "10_later"
modules = ["later"]
needs = ["09_toy"]

[[topic]]
folder = "11_apart"
modules = ["apart"]
"""


@pytest.fixture
def repo(toy_repository, tmp_path: Path) -> Path:
    toys = [
        toy_repository.Topic(topic, module, reference=reference, tests=TESTS.get(module, TESTS["toy"]))
        for topic, module, reference in [
            ("09_toy", "toy", TOY),
            ("10_later", "later", LATER),
            ("11_apart", "apart", TOY),
        ]
    ]
    return toy_repository(tmp_path / "repo", toys, curriculum=CURRICULUM)


def test_a_change_reruns_its_topic_and_the_topics_built_on_it(repo):
    katas = repo / "katas"
    assert changed_topics(repo, {str(katas / "09_toy" / "toy.py")}) == {"09_toy"}
    assert changed_topics(repo, {str(katas / "__init__.py")}) == {EVERY_TOPIC}
    scope = ["09_toy", "10_later", "11_apart"]
    assert to_rerun(repo, {"09_toy"}, scope) == ["09_toy", "10_later"]
    assert to_rerun(repo, {"10_later"}, scope) == ["10_later"]
    assert to_rerun(repo, {EVERY_TOPIC}, scope) == scope
    assert to_rerun(repo, {"09_toy"}, ["11_apart"]) == [], "only the topics being watched"


class Output:
    """Reads a process's stdout on a thread, so the test can wait for a line with a timeout."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.seen.append(line)
            if re.search(pattern, line):
                return line
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s; got:\n{''.join(self.seen)}")


def test_watch_reruns_a_saved_topic_and_stops_cleanly_on_ctrl_c(repo):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    command = [sys.executable, "-m", "katakit", "watch", "--root", str(repo)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = Output(process)
    toy = repo / "katas" / "09_toy" / "toy.py"
    try:
        output.wait_for(r"katas watch: .* ran 09_toy, 10_later, 11_apart in")
        output.wait_for(r"09_toy\s+\[\.+\]\s+0/1\s+done")
        time.sleep(0.5)  # let the watcher settle before the save
        toy.write_text(toy.read_text().replace("raise NotImplementedError", "return 2 * x"))
        output.wait_for(r"katas watch: .* ran 09_toy in .*; re-checking 10_later")  # the saved topic first
        output.wait_for(r"09_toy\s+\[#+\]\s+1/1\s+done")
        output.wait_for(r"katas watch: .* ran 10_later in")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "Ctrl-C ends watch mode with exit code 0"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.2)
    while not output.lines.empty():
        output.seen.append(output.lines.get())
    assert "Traceback" not in "".join(output.seen)
    assert "Stopped watching." in "".join(output.seen)
    assert "return 2 * x" in toy.read_text() and "raise NotImplementedError" not in toy.read_text(), (
        "watch never writes the learner's files"
    )


SLOW_TEST = """from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.kata("quadruple")
def test_quadruple_trained(impl):
    runs = Path(__file__).with_name("runs.txt")
    runs.write_text((runs.read_text() if runs.exists() else "") + "x")
    assert impl.quadruple(1.0) == 4.0
"""


def test_a_slow_test_runs_again_only_when_the_code_it_called_changed(repo, monkeypatch, capsys):
    from katakit import cli

    for name in ("KATAS_IMPL", "KATAS_SEED"):
        monkeypatch.delenv(name, raising=False)
    for topic, module in (("09_toy", "toy"), ("10_later", "later")):
        shutil.copy(repo / "reference" / topic / f"{module}.py", repo / "katas" / topic / f"{module}.py")
    (repo / "katas" / "10_later" / "test_later.py").write_text(SLOW_TEST)
    learner, runs = repo / "katas" / "10_later" / "later.py", repo / "katas" / "10_later" / "runs.txt"

    def katas() -> str:
        assert cli.main(["10", "--root", str(repo)]) == 0
        return capsys.readouterr().out

    assert "1/1 done" in katas() and runs.read_text() == "x"
    learner.write_text(learner.read_text().replace("    return 4 * x", "    # four times\n    return 4 * x"))
    learner.write_text(learner.read_text().replace("Return four times `x`.", "Return x, four times."))
    assert "1/1 done" in katas() and runs.read_text() == "x", "a comment and a docstring do not retrain"
    toy = repo / "katas" / "09_toy" / "toy.py"
    toy.write_text(toy.read_text().replace("return 2 * x", "return x + x"))
    assert "1/1 done" in katas() and runs.read_text() == "x", "nor does a kata the training does not call"
    learner.write_text(learner.read_text().replace("    return 4 * x", "    return x * 4"))
    assert "1/1 done" in katas() and runs.read_text() == "xx", "its own code changed: it trains again"
