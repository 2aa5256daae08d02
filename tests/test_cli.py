"""The learner's loop through the `katas` command: progress and its cache, one kata's tests, hints,
solutions, reset and skip, check (with its tamper check), and the entry points.

Every test that runs kata tests works on a temporary copy of the repository (never the real
katas/): topic 01_linear_algebra as shipped, plus two toy topics written here (09_toy, and 10_later
which builds on it), so that these tests stay fast and do not depend on topics still being written.
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from katakit import cache, catalog, cli, manifest, names, runner, status, stubs, workspace
from katakit.model import State, TestRecord

REAL = Path(__file__).resolve().parents[1]
TOY, LATER = "09_toy", "10_later"

TOY_REFERENCE = '''"""A toy topic for the tests of the command line."""

from katakit import kata


@kata
def double(x: float) -> float:
    """Return twice `x`.

    Shapes:
        x: a number
        returns: a number

    Hints:
        1. What does twice mean?
        2. Add it to itself.
    """
    return 2 * x


@kata
def halve(x: float) -> float:
    """Return half of `x`.

    Shapes:
        x: a number
        returns: a number

    Hints:
        1. The opposite of double.
        2. Share it between two.
        3. Division.
    """
    return x / 2
'''

TOY_TEST = """import pytest


@pytest.mark.kata("double")
def test_double(impl):
    assert impl.double(3.0) == 6.0, "double(3) should be 6"


@pytest.mark.kata("double")
def test_double_negative(impl):
    assert impl.double(-1.0) == -2.0, "double(-1) should be -2"


@pytest.mark.kata("halve")
def test_halve(impl):
    assert impl.halve(3.0) == 1.5, "halve(3) should be 1.5"
"""

LATER_REFERENCE = '''"""A topic that builds on the toy topic."""

import importlib

from katakit import kata

toy = importlib.import_module("..09_toy.toy", __package__)


@kata
def quadruple(x: float) -> float:
    """Return four times `x`, with the toy topic's double.

    Shapes:
        x: a number
        returns: a number

    Hints:
        1. Twice twice.
        2. Call double on double's result.
    """
    return toy.double(toy.double(x))
'''

LATER_TEST = """import pytest


@pytest.mark.kata("quadruple")
def test_quadruple(impl):
    assert impl.quadruple(1.0) == 4.0
"""

TOY_ZH = """
[double]
task = "返回 `x` 的两倍。"
hints = ["两倍是什么意思？", "把它和自己相加。"]

[halve]
task = "返回 `x` 的一半。"
hints = ["double 的反面。", "把它分成两份。", "除法。"]
"""

CURRICULUM = """
[[topic]]
folder = "01_linear_algebra"
modules = ["linear_algebra"]

[[topic]]
folder = "09_toy"
modules = ["toy"]

[topic.katas]
double = { difficulty = 1, minutes = 5 }
halve = { difficulty = 2, minutes = 25 }

[[topic]]
folder = "10_later"
modules = ["later"]
needs = ["09_toy"]
"""


@pytest.fixture(scope="session")
def pristine(toy_repository, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository (katakit/ too, as in a fork) with topic 01 as shipped and the toy topics."""
    toys = [
        toy_repository.Topic(TOY, "toy", reference=TOY_REFERENCE, tests=TOY_TEST),
        toy_repository.Topic(LATER, "later", reference=LATER_REFERENCE, tests=LATER_TEST),
    ]
    root = toy_repository(tmp_path_factory.mktemp("pristine"), toys, real=["01_linear_algebra"], curriculum=CURRICULUM)
    (root / "reference" / TOY / "zh.toml").write_text(TOY_ZH, encoding="utf-8")
    manifest.write(root)
    return root


@pytest.fixture
def repo(toy_repository, pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the pristine copy, for a test that edits files."""
    root = toy_repository.copy(pristine, tmp_path / "repo")
    for name in ("KATAS_IMPL", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS", "KATAS_SEED"):
        monkeypatch.delenv(name, raising=False)
    return root


def katas(root: Path, *args: str, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run the `katas` command in-process on `root`; returns (exit code, stdout, stderr)."""
    code = cli.main([*args, "--root", str(root)])
    out, err = capsys.readouterr()
    return code, out, err


def edit_kata(root: Path, topic: str, module: str, name: str, body: str) -> None:
    """Replace the stub body of kata `name` by `body` (one line, indented like the stub)."""
    path = root / "katas" / topic / f"{module}.py"
    source = path.read_text()
    start = source.index(f"def {name}(")
    at = source.index("raise NotImplementedError", start)
    path.write_text(source[:at] + body + source[at + len("raise NotImplementedError") :])


def line_of(root: Path, topic: str, module: str, text: str) -> int:
    lines = (root / "katas" / topic / f"{module}.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def first_kata_line() -> str:
    source = (REAL / "katas/01_linear_algebra/linear_algebra.py").read_text()
    first = catalog.katas_in(source, "01_linear_algebra", "linear_algebra")
    return f"katas/01_linear_algebra/linear_algebra.py:{first[0].line}"


# --- progress ------------------------------------------------------------------------------------


def test_untouched_stubs_show_nothing_done_the_first_kata_and_pass_the_check(repo, capsys):
    code, out, err = katas(repo, capsys=capsys)
    assert code == 0
    assert "running the tests of 01_linear_algebra, 09_toy..." in err, "a line before the wait"
    assert "katas: 01_linear_algebra, 09_toy: " in err and "re-checking 10_later..." in err, "their verdict first"
    total = len(catalog.read(repo).katas)
    assert re.search(rf"all topics\s+\[\.+\]\s+0/{total} done", out), out
    assert "Next: coordinates_in_basis  (01_linear_algebra)" in out
    assert first_kata_line() in out, "the next kata's file:line, clickable in editors"
    assert "Return the coordinates of `v`" in out, "the next kata's task"
    assert "failed" not in out.split("Next:")[0].split("all topics")[1], "nothing is attempted yet"
    assert "katas hint coordinates_in_basis" in out and "katas test coordinates_in_basis" in out
    code, out, _ = katas(repo, "check", capsys=capsys)
    assert code == 0, f"nothing attempted, nothing wrong:\n{out}"


def test_reference_shows_everything_done_and_passes_the_strict_check(repo, capsys):
    code, out, err = katas(repo, "--impl=reference", "check", "--strict", capsys=capsys)
    total = len(catalog.read(repo).katas)
    assert code == 0, out + err
    assert f"{total}/{total} done (100%)" in out and f"All {total} katas done" in out, out
    assert "reference/" in out.splitlines()[0], "says whose code was tested"


def test_strict_check_fails_while_katas_are_still_to_do(repo, capsys):
    code, out, _ = katas(repo, "check", "--strict", "toy", capsys=capsys)
    assert code == 1 and "--strict" in out and "01_linear_algebra" not in out


@pytest.mark.parametrize("spelled", ["09", "9", "toy", "09_toy", "katas/09_toy/", "TOY"])
def test_a_topic_can_be_named_several_ways(spelled):
    assert names.resolve_topic(spelled, ["01_linear_algebra", TOY]) == TOY


def test_an_unknown_topic_lists_close_matches(repo, capsys):
    code, _, err = katas(repo, "lineer_algebra", capsys=capsys)
    assert code == 2
    assert "No topic 'lineer_algebra'" in err and "linear_algebra" in err


# --- the cache: instant status while nothing changed ----------------------------------------------


def test_nothing_changed_answers_from_saved_results_and_a_save_reruns_only_its_topics(repo, capsys, monkeypatch):
    katas(repo, capsys=capsys)
    ran: list[list[str]] = []
    real_run = runner.run_tests

    def recording(root: Path, topics: list[str], *args, **kwargs) -> runner.Run:
        ran.append(list(topics))
        return real_run(root, topics, *args, **kwargs)

    monkeypatch.setattr(runner, "run_tests", recording)
    code, out, err = katas(repo, capsys=capsys)
    assert code == 0 and ran == [], "nothing changed: no pytest run"
    assert "saved results" in out.splitlines()[0] and "running" not in err
    edit_kata(repo, TOY, "toy", "double", "return 2 * x")
    _, out, _ = katas(repo, capsys=capsys)
    assert ran == [[TOY]], (
        "the saved topic runs again; the topic built on it is re-checked too, but its katas are all still "
        "stubs, so they are to do without a pytest run"
    )
    assert re.search(r"09_toy\s+\[#+\.+\]\s+1/2\s+done", out), out
    (repo / "katas" / TOY / "test_toy.py").write_text(TOY_TEST + "\n# a changed test\n")
    katas(repo, TOY, capsys=capsys)
    assert ran[-1] == [TOY], "a changed test file counts as a change"
    monkeypatch.setenv("KATAS_SEED", "7")
    katas(repo, TOY, capsys=capsys)
    assert len(ran) == 3, "another seed is another result"


def test_the_fingerprint_covers_the_topics_a_topic_builds_on_and_katakit(repo):
    before = cache.fingerprint(repo, LATER, "katas")
    edit_kata(repo, TOY, "toy", "halve", "return x / 2")
    after_toy = cache.fingerprint(repo, LATER, "katas")
    assert after_toy != before, "10_later imports 09_toy"
    assert cache.fingerprint(repo, "01_linear_algebra", "katas") == cache.fingerprint(
        repo, "01_linear_algebra", "katas"
    )
    (repo / "katakit" / "testing.py").write_text((repo / "katakit" / "testing.py").read_text() + "\n")
    assert cache.fingerprint(repo, LATER, "katas") != after_toy


# --- what a failure looks like in `katas` ----------------------------------------------------------


def test_check_fails_once_an_attempted_kata_is_wrong(repo, capsys, monkeypatch):
    edit_kata(repo, "01_linear_algebra", "linear_algebra", "coordinates_in_basis", "return v * 2")
    edit_kata(repo, TOY, "toy", "double", "return 2 * x")
    summary = repo / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, _ = katas(repo, "check", capsys=capsys)
    assert code == 1
    file, line = first_kata_line().split(":")
    assert f"::error file={file},line={line}::coordinates_in_basis: AssertionError" in out, "an annotation on the PR"
    wrong = out.split("Attempted but failing")[1]
    assert f"{first_kata_line()}  coordinates_in_basis" in wrong
    assert "AssertionError" in wrong, "the first failure message"
    assert re.search(r"09_toy\s+\[#+\.+\]\s+1/2\s+done\s+1 to do", out), "a right kata counts as done"
    table = summary.read_text()
    assert "| `01_linear_algebra` |" in table and "| `09_toy` | 1/2 | 1 | 0 |" in table, table
    assert "coordinates_in_basis" in table.split("### Attempted but failing")[1]


def test_the_next_kata_is_the_one_attempted_but_wrong_with_its_failure(repo, capsys):
    edit_kata(repo, TOY, "toy", "halve", "return x / 3")
    _, out, _ = katas(repo, TOY, capsys=capsys)
    nxt = out.split("Next:")[1]
    assert nxt.startswith(" halve"), out
    assert "It fails:" in nxt and "halve(3) should be 1.5" in nxt


def test_a_runtime_error_shows_the_learners_own_file_and_line(repo, capsys):
    edit_kata(repo, TOY, "toy", "halve", "return x.halved()")
    _, out, _ = katas(repo, TOY, capsys=capsys)
    line = line_of(repo, TOY, "toy", "return x.halved()")
    assert f"at katas/09_toy/toy.py:{line}" in out.split("Next:")[1], out
    assert "AttributeError" in out


def test_a_syntax_error_is_one_message_and_topics_built_on_it_are_blocked(repo, capsys):
    toy = repo / "katas" / TOY / "toy.py"
    broken_line = line_of(repo, TOY, "toy", "def halve")
    toy.write_text(toy.read_text().replace("def halve(x", "def halve((x"))
    code, out, _ = katas(repo, "check", capsys=capsys)
    assert code == 1
    assert out.count(f"katas/09_toy/toy.py:{broken_line}: SyntaxError") == 1, out
    assert "all 2 katas of this file" in out
    assert re.search(rf"10_later .* blocked by katas/09_toy/toy.py:{broken_line} \(SyntaxError\)", out), out
    assert re.search(r"01_linear_algebra\s+\[\.+\]\s+0/\d+\s+done", out), "topic 01 still ran"
    _, listing, _ = katas(repo, "list", TOY, capsys=capsys)
    assert f"katas/09_toy/toy.py:{broken_line}" in listing, "the learner's line, even though the file is broken"


def test_an_import_error_is_one_message_with_the_line_of_the_bad_import(repo, capsys):
    toy = repo / "katas" / TOY / "toy.py"
    toy.write_text(toy.read_text().replace("from katakit import kata", "from katakit import kata\nimport numpyy"))
    _, out, _ = katas(repo, TOY, LATER, capsys=capsys)
    line = line_of(repo, TOY, "toy", "import numpyy")
    assert "ModuleNotFoundError" in out and f"katas/09_toy/toy.py:{line}" in out, out
    assert "all 2 katas of this file" in out
    assert "10_later" in out and "blocked by katas/09_toy/toy.py" in out


def test_an_endless_loop_is_stopped_and_reported(repo, capsys, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "--timeout=2")
    edit_kata(repo, TOY, "toy", "double", "while True:\n        pass")
    code, out, err = katas(repo, "check", TOY, capsys=capsys)
    assert code == 1
    assert "running the tests of 09_toy" in err
    assert "double" in out and "did not finish within 2" in out, out


def _record(kata: str | None, outcome: str, not_implemented: bool = False, **extra: Any) -> TestRecord:
    """A record as katakit.plugin makes it, for a test of the toy topic."""
    failed = outcome in ("failed", "error")
    return TestRecord(
        **{
            "nodeid": f"katas/09_toy/test_toy.py::test_{kata}_{outcome}",
            "topic": TOY,
            "module": "toy",
            "kata": kata,
            "outcome": outcome,
            "not_implemented": not_implemented,
            "message": ("NotImplementedError" if not_implemented else "AssertionError: no") if failed else "",
            **extra,
        }
    )


def test_a_kata_is_done_to_do_failed_blocked_or_skipped_from_its_test_records(pristine):
    found = catalog.read(pristine, [TOY])

    def statuses(*records: TestRecord, skipped: frozenset[str] = frozenset()) -> list[State | None]:
        return [each.state for each in status.classify(found, list(records), skipped)]

    done, todo, failed = State.DONE, State.TODO, State.FAILED
    assert statuses(_record("double", "passed"), _record("halve", "failed", True)) == [done, todo]
    assert statuses(_record("double", "passed"), _record("double", "failed"), _record("halve", "error")) == [failed] * 2
    assert statuses(_record("double", "skipped"), _record("double", "passed")) == [done, todo], "skips do not count"
    assert statuses(_record("double", "skipped")) == [todo, todo], "no test ran: nothing shows it done"
    assert statuses(_record("double", "passed"), _record("double", "failed", True)) == [todo, todo], "partly done"
    collection = _record(None, "error", nodeid="katas/09_toy/test_toy.py")
    classified = status.classify(found, [collection, _record("double", "passed")])
    assert [s.state for s in classified] == [failed, failed], "a test file that does not load fails its katas"
    assert "could not be loaded" in classified[0].message
    elsewhere = _record("double", "error", blocked_by="katas/05_x/x.py:3 (SyntaxError)")
    own = _record("halve", "error", blocked_by="katas/09_toy/toy.py:3 (SyntaxError)")
    assert statuses(elsewhere, own) == [State.BLOCKED, failed], "blocked by another file; broken in its own"
    skipped = frozenset({f"{TOY}/halve", f"{TOY}/double"})
    assert statuses(_record("double", "passed"), _record("halve", "failed"), skipped=skipped) == [
        done,
        State.SKIPPED,
    ], "a skipped kata shows as skipped unless it is done"


# --- one kata at a time ----------------------------------------------------------------------------


def test_katas_test_runs_exactly_one_katas_tests(repo, capfd):
    edit_kata(repo, TOY, "toy", "double", "return 2 * x")
    code = cli.main(["test", "double", "--root", str(repo)])
    out, _ = capfd.readouterr()
    assert code == 0, out
    assert "2 passed" in out and "halve" not in out.split("--kata double")[-1], out
    code = cli.main(["test", "halve", "--root", str(repo)])
    out, _ = capfd.readouterr()
    assert code == 1 and "double" not in out.split("--kata halve")[-1], out


# --- hints, solutions, reset and skip --------------------------------------------------------------


@pytest.fixture(scope="module")
def real_katas() -> list[catalog.Kata]:
    return catalog.read(REAL).katas


@pytest.mark.parametrize("kata", catalog.read(REAL, side="reference").katas, ids=lambda k: f"{k.topic}.{k.name}")
def test_the_stub_shows_hint_one_and_katas_hint_reveals_the_rest_one_at_a_time(kata, capsys, real_katas):
    stub = next(each for each in real_katas if (each.topic, each.name) == (kata.topic, kata.name))
    total = len(kata.hints)
    assert total >= 2
    assert stub.hints == kata.hints[:1], "the stub's docstring holds hint 1 only"
    assert f"katas hint {kata.name} 2" in stub.docstring, "and says how to see the next one"
    code, first, _ = katas(REAL, "hint", f"{kata.topic}/{kata.name}", capsys=capsys)
    assert code == 0
    assert f"Hint 1 of {total}:" in first and "Hint 2 of" not in first
    assert f"katas hint {kata.name} 2" in first, "tells how to get the next hint"
    _, last, _ = katas(REAL, "hint", f"{kata.module}.{kata.name}", str(total), capsys=capsys)
    assert f"Hint {total} of {total}:" in last and "last hint" in last
    assert kata.hints[-1].split()[0] in last, "the later hints come from reference/"
    assert f"katas solution {kata.name}" in last


@pytest.mark.parametrize(
    ("how", "env"),
    [(["--lang", "zh"], {}), ([], {"KATAS_LANG": "zh"}), ([], {"LANG": "zh_CN.UTF-8", "LC_ALL": ""})],
    ids=["--lang zh", "KATAS_LANG", "locale"],
)
def test_tasks_and_hints_in_chinese(repo, capsys, monkeypatch, how, env):
    for name in ("KATAS_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, _ = katas(repo, "hint", "halve", "2", *how, capsys=capsys)
    assert code == 0 and "返回 `x` 的一半。" in out and "double 的反面。" in out and "把它分成两份。" in out
    assert "Return half" not in out and "Hint 2 of 3:" in out
    _, out, _ = katas(repo, TOY, *how, capsys=capsys)
    assert "Next: double" in out and "返回 `x` 的两倍。" in out


def test_english_unless_asked_and_english_where_a_translation_is_missing(repo, capsys, monkeypatch):
    for name in ("KATAS_LANG", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    _, out, _ = katas(repo, "hint", "halve", capsys=capsys)
    assert "Return half of `x`." in out and "The opposite of double." in out
    _, out, _ = katas(repo, "hint", "quadruple", "--lang", "zh", capsys=capsys)
    assert "Return four times `x`" in out, "10_later has no zh.toml: English"


def test_hint_names_resolve_and_unknown_names_get_close_matches(capsys):
    for spelled in ("gram_schmidt", "linear_algebra.gram_schmidt", "01_linear_algebra/gram_schmidt", "01/gram_schmidt"):
        code, out, _ = katas(REAL, "hint", spelled, capsys=capsys)
        assert code == 0 and out.startswith("gram_schmidt"), spelled
    code, out, err = katas(REAL, "hint", "gram_schmit", capsys=capsys)
    assert code == 2 and not out
    assert "No kata 'gram_schmit'" in err and "gram_schmidt" in err


def test_the_solution_waits_for_an_attempt_unless_forced(repo, capsys):
    code, out, err = katas(repo, "solution", "halve", capsys=capsys)
    assert code == 1 and not out and "You have not tried halve yet" in err and "--force" in err
    code, out, _ = katas(repo, "solution", "halve", "--force", capsys=capsys)
    assert code == 0 and "return x / 2" in out and "def halve" in out and "reference/09_toy/toy.py" in out
    edit_kata(repo, TOY, "toy", "halve", "return x")
    code, out, _ = katas(repo, "solution", "halve", capsys=capsys)
    assert code == 0 and "return x / 2" in out


def test_reset_puts_one_kata_back_and_keeps_a_backup(repo, capsys):
    edit_kata(repo, TOY, "toy", "double", "return x + x")
    edit_kata(repo, TOY, "toy", "halve", "return x / 2")
    edited = (repo / "katas" / TOY / "toy.py").read_text()
    code, out, _ = katas(repo, "reset", "halve", capsys=capsys)
    assert code == 0 and "halve is a stub again" in out
    source = (repo / "katas" / TOY / "toy.py").read_text()
    assert "return x + x" in source, "the other kata stays as the learner wrote it"
    assert "return x / 2" not in source and stubs.attempted(source) == ["double"]
    backup = re.search(r"Your file as it was: (\S+)", out).group(1)
    assert (repo / backup).read_text() == edited, "the learner's version, whole, in .katas/backups/"
    assert backup.startswith(".katas/backups/")
    code, out, _ = katas(repo, "reset", "halve", capsys=capsys)
    assert code == 0 and "nothing to reset" in out


def test_skip_moves_next_past_a_kata_and_unskip_brings_it_back(repo, capsys):
    katas(repo, TOY, capsys=capsys)
    code, out, _ = katas(repo, "skip", "double", capsys=capsys)
    assert code == 0 and "katas unskip double" in out
    _, out, _ = katas(repo, TOY, capsys=capsys)
    assert "Next: halve" in out and re.search(r"09_toy .* 1 skipped", out), out
    katas(repo, "unskip", "double", capsys=capsys)
    _, out, _ = katas(repo, TOY, capsys=capsys)
    assert "Next: double" in out and "skipped" not in out


def test_list_shows_every_kata_in_order(repo, capsys):
    code, out, _ = katas(repo, "list", capsys=capsys)
    assert code == 0
    names_in_order = [kata.name for kata in catalog.read(repo).katas]
    positions = [out.index(f"  {name} ") for name in names_in_order]
    assert positions == sorted(positions)
    code, out, _ = katas(repo, "list", TOY, "--status", "--impl=reference", capsys=capsys)
    assert code == 0 and out.count("[done]") == 2
    assert "09_toy  (about 0.5 h)" in out, "the topic's time, from curriculum.toml"
    assert re.search(r"\*    5 min  double", out) and re.search(r"\*\*  25 min  halve", out), out


# --- never lose a learner's work: stub regeneration -------------------------------------------------


def test_stubs_write_refuses_to_overwrite_a_solved_kata_and_backs_up_with_force(repo, capsys):
    edit_kata(repo, TOY, "toy", "double", "return x + x")
    solved = (repo / "katas" / TOY / "toy.py").read_text()
    (repo / "reference" / TOY / "toy.py").write_text(TOY_REFERENCE.replace("What does twice", "What is twice"))
    assert stubs.main(["--write", "--root", str(repo)]) == 1
    _, err = capsys.readouterr()
    assert "katas/09_toy/toy.py: double" in err and "--force" in err and "Nothing was written" in err
    assert (repo / "katas" / TOY / "toy.py").read_text() == solved, "nothing overwritten"
    assert stubs.main(["--write", "--root", str(repo), "--force"]) == 0
    out, _ = capsys.readouterr()
    folder = re.search(r"the files it replaced are in (\S+)/", out).group(1)
    assert (repo / folder / "katas" / TOY / "toy.py").read_text() == solved
    assert "What is twice" in (repo / "katas" / TOY / "toy.py").read_text()
    assert (repo / ".katas" / ".gitignore").read_text() == "*\n", "git never picks up the backups"


def test_backups_never_overwrite_each_other(repo):
    file = repo / "katas" / TOY / "toy.py"
    first = workspace.backup(repo, [file])
    file.write_text("changed\n")
    second = workspace.backup(repo, [file])
    assert first != second and (second / "katas" / TOY / "toy.py").read_text() == "changed\n"


# --- tamper check ----------------------------------------------------------------------------------


def test_check_warns_naming_a_changed_test_file_and_strict_fails(repo, capsys):
    test_file = repo / "katas" / TOY / "test_toy.py"
    test_file.write_text(test_file.read_text().replace("== 6.0", "is not None"))
    code, _, err = katas(repo, "check", TOY, capsys=capsys)
    assert code == 0, "a changed test is a warning, not a failure"
    assert "katas/09_toy/test_toy.py: changed since it was shipped" in err
    code, out, _ = katas(repo, "--impl=reference", "check", "--strict", TOY, capsys=capsys)
    assert code == 1 and "differ from the shipped ones" in out


@pytest.mark.parametrize(
    "added", ["katas/09_toy/conftest.py", "katas/conftest.py", "pytest.ini", "katakit/extra.py"], ids=str
)
def test_check_flags_an_added_file_that_can_change_the_verdict(repo, capsys, added):
    (repo / added).write_text("# could skip every test\n")
    code, _, err = katas(repo, "--impl=reference", "check", TOY, capsys=capsys)
    assert code == 0 and f"{added}: not a shipped file" in err
    code, _, err = katas(repo, "--impl=reference", "check", "--strict", TOY, capsys=capsys)
    assert code == 1 and f"{added}: not a shipped file" in err


# --- entry points ----------------------------------------------------------------------------------


def test_python_m_katakit_and_the_console_script_run_in_the_learners_repository(repo):
    env = {key: value for key, value in os.environ.items() if key != "KATAS_IMPL"}
    result = subprocess.run(
        [sys.executable, "-m", "katakit", "hint", "double"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Hint 1 of 2:" in result.stdout and "katas/09_toy/toy.py" in result.stdout
    script = Path(sys.executable).parent / "katas"
    if script.exists():
        result = subprocess.run([str(script), "--help"], cwd=repo, env=env, capture_output=True, text=True)
        assert result.returncode == 0
        for command in cli.COMMANDS:
            assert command in result.stdout
    assert not (REAL / "katas" / "__main__.py").exists(), "katas/ holds only what a learner edits"
