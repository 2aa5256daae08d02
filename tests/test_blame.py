"""Blame follows the calls: a kata whose failing tests call a kata that fails on its own waits on it.

The first tests decide from records (katakit.blame, katakit.status); the others run the real
`katas` command and plain pytest on copies of the repository with topics 05 and 06 solved (their
reference files copied over the stubs) and one mistake made in them; the real katas/ is never
touched. Each copy and its runs are shared by the tests of a scenario: a run costs seconds.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from katakit import blame, catalog, status
from katakit.model import KataRef, State, TestRecord

REAL = Path(__file__).resolve().parents[1]
TOPICS = ("05_attention", "06_transformer")
TRANSFORMER = "katas/06_transformer/transformer.py"
ATTENTION = "katas/05_attention/attention.py"


def _record(topic: str, kata: str, outcome: str = "failed", calls: tuple[str, ...] = ()) -> TestRecord:
    module = topic.split("_", 1)[1]
    return TestRecord(
        f"katas/{topic}/test_{module}.py::test_{kata}_{len(calls)}",
        topic,
        module,
        kata,
        outcome,
        message="AssertionError: no" if outcome == "failed" else "",
        calls=[str(KataRef(topic, module, kata)), *calls],
    )


def _ref(topic: str, kata: str) -> KataRef:
    return KataRef(topic, topic.split("_", 1)[1], kata)


def test_a_kata_waits_on_the_failing_kata_its_failing_tests_call():
    norm, block = _ref("06_transformer", "LayerNorm"), _ref("06_transformer", "TransformerBlock")
    softmax = _ref("05_attention", "stable_softmax")
    records = [
        _record("06_transformer", "LayerNorm"),
        _record("06_transformer", "TransformerBlock", calls=(str(norm),)),
        _record("06_transformer", "GPT2", calls=(str(norm), str(block))),
        _record("06_transformer", "Unembed", "passed", calls=(str(norm),)),
    ]
    assert blame.waiting(records) == {block: [norm], _ref("06_transformer", "GPT2"): [norm]}
    across = [_record("05_attention", "stable_softmax"), _record("06_transformer", "Attention", calls=(str(softmax),))]
    assert blame.waiting(across) == {_ref("06_transformer", "Attention"): [softmax]}, "across topics"


def test_a_failing_kata_that_calls_no_failing_kata_stays_failed():
    norm = _ref("06_transformer", "LayerNorm")
    alone = [_record("06_transformer", "LayerNorm"), _record("06_transformer", "gelu_new")]
    assert blame.waiting(alone) == {}, "another kata failing is no reason"
    one_own = [
        _record("06_transformer", "LayerNorm"),
        _record("06_transformer", "MLP", calls=(str(norm),)),
        _record("06_transformer", "MLP"),  # a failing test that calls no failing kata: MLP is wrong itself
    ]
    assert blame.waiting(one_own) == {}
    mlp = _ref("06_transformer", "MLP")
    circle = [
        _record("06_transformer", "LayerNorm", calls=(str(mlp),)),
        _record("06_transformer", "MLP", calls=(str(norm),)),
    ]
    assert blame.waiting(circle) == {}, "katas that only call each other: no root, so both stay failed"


def test_status_shows_waiting_katas_and_next_goes_to_the_root_cause():
    found = catalog.read(REAL, ["06_transformer"], "reference")
    norm = _ref("06_transformer", "LayerNorm")
    records = [
        _record("06_transformer", "config_from_hf", calls=(str(norm),)),
        _record("06_transformer", "LayerNorm"),
        _record("06_transformer", "TransformerBlock", calls=(str(norm),)),
    ]
    statuses = {each.kata.name: each for each in status.classify(found, records)}
    assert statuses["LayerNorm"].state is State.FAILED
    assert statuses["config_from_hf"].state is State.WAITING and statuses["TransformerBlock"].state is State.WAITING
    assert statuses["TransformerBlock"].waiting_text.startswith("waiting on LayerNorm (reference/06_transformer/")
    upcoming = status.next_kata(list(statuses.values()))
    assert upcoming is not None and upcoming.kata.name == "LayerNorm", "config_from_hf comes first, but is right"


# --- the real commands on copies --------------------------------------------------------------------


def _solved_copy(toy_repository, root: Path) -> Path:
    """Topics 05 and 06, solved: their reference files copied over the stubs."""
    toy_repository(root, real=TOPICS)
    for topic in TOPICS:
        for solution in (root / "reference" / topic).glob("*.py"):
            shutil.copy(solution, root / "katas" / topic / solution.name)
    return root


def _mistake(root: Path, learner: str, right: str, wrong: str) -> int:
    """Make a mistake in a learner file; the line it is on."""
    path = root / learner
    source = path.read_text(encoding="utf-8")
    assert source.count(right) == 1, right
    path.write_text(source.replace(right, wrong), encoding="utf-8")
    return source[: source.index(right)].count("\n") + 1


def _definition_line(root: Path, learner: str, name: str) -> int:
    lines = (root / learner).read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if re.match(rf"(class|def) {name}\b", line))


def _katas(root: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "katakit", *args, "--root", str(root)],
        cwd=root,
        env={**_clean_env(), "NO_COLOR": "1", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "KATAS_"))}


@pytest.fixture(scope="module")
def wrong_layer_norm(toy_repository, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """LayerNorm with the unbiased variance, 05 and 06 otherwise solved: `katas check`."""
    root = _solved_copy(toy_repository, tmp_path_factory.mktemp("layer_norm"))
    _mistake(root, TRANSFORMER, "centred.pow(2).mean(dim=-1, keepdim=True)", "x.var(dim=-1, keepdim=True)")
    code, out = _katas(root, "check")
    return root, code, out


def test_one_wrong_layer_norm_is_the_only_failure_and_the_katas_using_it_wait(wrong_layer_norm):
    root, code, out = wrong_layer_norm
    line = _definition_line(root, TRANSFORMER, "LayerNorm")
    failing = out.split("Attempted but failing")[1].split("Waiting on a kata that fails")[0]
    assert re.findall(r"  katas/\S+:\d+  (\w+)", failing) == ["LayerNorm"], out
    waiting = out.split("Waiting on a kata that fails")[1].split("Next:")[0]
    for kata in ("TransformerBlock", "GPT2", "config_from_hf"):
        assert re.search(rf"  {kata}  waiting on LayerNorm \({TRANSFORMER}:{line}\)", waiting), out
    assert "Next: LayerNorm" in out, out
    assert code == 1, "katas check: the waiting katas are not done"
    assert re.search(r"check: \d+ done, \d+ to do, 1 failed, [1-9]\d* waiting on a failing kata", out), out
    _, listing = _katas(root, "list", "06")
    assert re.search(r"\[failed\]\s+\S.*LayerNorm", listing) and re.search(r"\[waiting\]\s+\S.*GPT2", listing), listing
    assert f"waiting on LayerNorm ({TRANSFORMER}:{line})" in listing


@pytest.fixture(scope="module")
def softmax_on_the_wrong_axis(toy_repository, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """05's stable_softmax over the wrong axis, the rest of 05 and 06 solved: plain pytest on 06 (no
    saved results), then `katas`."""
    root = _solved_copy(toy_repository, tmp_path_factory.mktemp("softmax"))
    learner = root / ATTENTION  # as the hints suggest, the attention katas reuse the learner's softmax
    learner.write_text(learner.read_text().replace("scores.softmax(dim=-1)", "stable_softmax(scores)"))
    right = "return exponentials / exponentials.sum(dim=-1, keepdim=True)"
    _mistake(root, ATTENTION, right, "return exponentials / exponentials.sum(dim=0, keepdim=True)")
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "katas/06_transformer"],
        cwd=root,
        env={**_clean_env(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    _, out = _katas(root)
    return root, plain.stdout + plain.stderr, out


def test_a_wrong_softmax_in_05_makes_06_s_attention_wait_on_it(softmax_on_the_wrong_axis):
    root, plain, out = softmax_on_the_wrong_axis
    line = _definition_line(root, ATTENTION, "stable_softmax")
    assert f"waiting: Attention: waiting on stable_softmax ({ATTENTION}:{line})" in plain, plain
    assert "FAILURES" not in plain, "every failure of 06 waits on 05: none is shown in full (-vv shows them)"
    assert re.search(rf"  Attention  waiting on stable_softmax \({ATTENTION}:{line}\)", out), out
    assert "Next: stable_softmax" in out, out
