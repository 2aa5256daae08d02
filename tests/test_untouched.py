"""`katas` answers "to do" for a topic nobody touched without running its tests: every kata still
its stub (compared as ast) can only raise NotImplementedError."""

import shutil
from pathlib import Path

import pytest

from katakit import runner, stubs
from katakit.model import State

ROOT = Path(__file__).resolve().parents[1]
TOPIC = "01_linear_algebra"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    for folder in ("katas", "reference"):
        shutil.copytree(ROOT / folder / TOPIC, tmp_path / folder / TOPIC)
    shutil.copy(ROOT / "curriculum.toml", tmp_path / "curriculum.toml")
    return tmp_path


def test_a_topic_of_stubs_is_untouched_and_comments_do_not_count(checkout: Path):
    learner = checkout / "katas" / TOPIC / "linear_algebra.py"
    assert stubs.untouched(checkout, TOPIC)
    learner.write_text(learner.read_text() + "\n# a note of the learner's\n")
    assert stubs.untouched(checkout, TOPIC), "a comment is not an attempt"


def test_an_attempted_kata_or_a_file_that_does_not_parse_is_touched(checkout: Path):
    learner = checkout / "katas" / TOPIC / "linear_algebra.py"
    source = learner.read_text()
    learner.write_text(source.replace("raise NotImplementedError", "return basis", 1))
    assert not stubs.untouched(checkout, TOPIC)
    learner.write_text(source + "\ndef broken(:\n")
    assert not stubs.untouched(checkout, TOPIC), "a SyntaxError must be run and reported, not hidden as to do"


def test_run_changed_runs_no_test_of_an_untouched_topic(checkout: Path, monkeypatch: pytest.MonkeyPatch):
    ran: list[list[str]] = []

    def run_tests(root: Path, topics: list[str], *args: object, **kwargs: object) -> runner.Run:
        ran.append(list(topics))
        return runner.Run([], 0.0, list(topics))

    monkeypatch.setattr(runner, "run_tests", run_tests)
    run = runner.run_changed(checkout, [TOPIC], "katas")
    assert ran == [] and run.records == [] and run.topics == [TOPIC], "no pytest run at all"
    runner.run_changed(checkout, [TOPIC], "reference")
    assert ran[-1] == [TOPIC], "the reference side is always run"


def test_a_kata_without_records_is_to_do():
    from katakit import catalog
    from katakit.status import classify

    found = catalog.read(ROOT, [TOPIC])
    assert {status.state for status in classify(found, [])} == {State.TODO}
