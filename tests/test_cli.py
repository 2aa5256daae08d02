"""The learner's loop: `katas` (progress, next kata), `katas hint`, `katas watch`, `katas check`.

Every test that runs kata tests works on a temporary copy of the repository (never the real
katas/): topic 01_linear_algebra as shipped, plus a two-kata toy topic written here, so that these
tests stay fast and do not depend on topics still being written.
"""

import ast
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

from katakit import catalog, cli, impl, manifest, names, progress, stubs
from katakit.progress import affected_topics, read_catalog
from katakit.watch import EVERY_TOPIC, changed_topics

REAL = impl.ROOT
TOY = "09_toy"

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
        2. Multiply by two.
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
        2. Divide by two.
    """
    return x / 2
'''

TOY_TEST = """import pytest


@pytest.mark.kata("double")
def test_double(impl):
    assert impl.double(3.0) == 6.0, "double(3) should be 6"


@pytest.mark.kata("halve")
def test_halve(impl):
    assert impl.halve(3.0) == 1.5, "halve(3) should be 1.5"
"""


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository (katakit/ too, as in a fork) with topic 01 as shipped and the toy topic."""
    root = tmp_path_factory.mktemp("pristine")
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(REAL / name, root / name)
    shutil.copytree(REAL / "katakit", root / "katakit", ignore=_no_cache)
    for side in ("katas", "reference"):
        (root / side).mkdir()
        shutil.copy(REAL / side / "__init__.py", root / side / "__init__.py")
        shutil.copytree(REAL / side / "01_linear_algebra", root / side / "01_linear_algebra", ignore=_no_cache)
        (root / side / TOY).mkdir()
    shutil.copy(REAL / "katas" / "__main__.py", root / "katas" / "__main__.py")
    (root / "reference" / TOY / "toy.py").write_text(TOY_REFERENCE)
    (root / "katas" / TOY / "toy.py").write_text(stubs.stub_source(TOY_REFERENCE))
    (root / "katas" / TOY / "test_toy.py").write_text(TOY_TEST)
    return root


def _no_cache(folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name in ("__pycache__", ".pytest_cache")]


@pytest.fixture
def repo(pristine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the pristine copy, for a test that edits files."""
    root = tmp_path / "repo"
    shutil.copytree(pristine, root, ignore=_no_cache)
    for name in (impl.ENV_VAR, "KATAS_ROOT", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"):
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
    later = path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))


def first_kata_line() -> str:
    first = catalog.katas_in((REAL / "katas/01_linear_algebra/linear_algebra.py").read_text(), "01", "linear_algebra")
    return f"katas/01_linear_algebra/linear_algebra.py:{first[0].line}"


# --- progress ------------------------------------------------------------------------------------


def test_untouched_stubs_show_nothing_done_the_first_kata_and_pass_the_check(repo, capsys):
    code, out, _ = katas(repo, capsys=capsys)
    assert code == 0
    total = len(read_catalog(repo).katas)
    assert re.search(rf"all topics\s+\[\.+\]\s+0/{total} done", out), out
    assert "Next: coordinates_in_basis  (01_linear_algebra)" in out
    assert first_kata_line() in out, "the next kata's file:line, clickable in editors"
    assert "Return the coordinates of `v`" in out, "the next kata's task"
    assert "failed" not in out.split("Next:")[0].split("all topics")[1], "nothing is attempted yet"
    assert "katas hint coordinates_in_basis" in out
    code, out, _ = katas(repo, "check", capsys=capsys)
    assert code == 0, f"nothing attempted, nothing wrong:\n{out}"


def test_reference_shows_everything_done_and_passes_the_strict_check(repo, capsys):
    code, out, _ = katas(repo, "--impl=reference", "check", "--strict", capsys=capsys)
    total = len(read_catalog(repo).katas)
    assert code == 0, out
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


# --- check ---------------------------------------------------------------------------------------


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


def test_a_syntax_error_fails_its_file_with_file_and_line_and_other_topics_still_run(repo, capsys):
    toy = repo / "katas" / TOY / "toy.py"
    lines = toy.read_text().splitlines()
    broken_line = next(n for n, line in enumerate(lines, 1) if line.startswith("def halve"))
    lines[broken_line - 1] = lines[broken_line - 1].replace("(x", "((x")
    toy.write_text("\n".join(lines) + "\n")
    code, out, _ = katas(repo, "check", capsys=capsys)
    assert code == 1
    assert f"katas/09_toy/toy.py:{broken_line}: SyntaxError" in out, out
    assert "all 2 katas of this file" in out
    assert re.search(r"01_linear_algebra\s+\[\.+\]\s+0/\d+\s+done", out), "topic 01 still ran"
    _, listing, _ = katas(repo, "list", TOY, capsys=capsys)
    assert f"katas/09_toy/toy.py:{broken_line}" in listing, "the learner's line, even though the file is broken"


def _record(kata: str | None, outcome: str, not_implemented: bool = False, nodeid: str = "") -> dict:
    """A record as katakit.report writes it, for a test of the toy topic."""
    failed = outcome in ("failed", "error")
    return {
        "nodeid": nodeid or f"katas/09_toy/test_toy.py::test_{kata}_{outcome}",
        "topic": TOY,
        "module": "toy",
        "kata": kata,
        "outcome": outcome,
        "not_implemented": not_implemented,
        "message": ("NotImplementedError" if not_implemented else "AssertionError: no") if failed else "",
    }


def test_a_kata_is_done_to_do_or_failed_from_its_test_records(pristine):
    found = read_catalog(pristine, [TOY])

    def status(*records: dict) -> list[str]:
        return [each.status for each in progress.classify(found, list(records))]

    done, todo, failed = progress.DONE, progress.TODO, progress.WRONG
    assert status(_record("double", "passed"), _record("halve", "failed", True)) == [done, todo]
    assert status(_record("double", "passed"), _record("double", "failed"), _record("halve", "error")) == [failed] * 2
    assert status(_record("double", "skipped"), _record("double", "passed")) == [done, todo], "skips do not count"
    assert status(_record("double", "skipped")) == [todo, todo], "no test ran: nothing shows it done"
    assert status(_record("double", "passed"), _record("double", "failed", True)) == [todo, todo], "partly done"
    collection = _record(None, "error", nodeid="katas/09_toy/test_toy.py")
    statuses = progress.classify(found, [collection, _record("double", "passed")])
    assert [s.status for s in statuses] == [failed, failed], "a test file that does not load fails its katas"
    assert "could not be loaded" in statuses[0].message


# --- hints ---------------------------------------------------------------------------------------


def _body_lines(kata: catalog.Kata) -> list[str]:
    """The lines of the solution's code (docstrings left out), long enough to be telling."""
    source = (REAL / "reference" / kata.topic / f"{kata.module}.py").read_text()
    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == kata.name)
    code = []
    for function in [node] if not isinstance(node, ast.ClassDef) else node.body:
        body = getattr(function, "body", [])
        has_docstring = body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
        for statement in body[1:] if has_docstring else body:
            code += ast.get_source_segment(source, statement).splitlines()
    return [line.strip() for line in code if len(line.strip()) > 25]


@pytest.fixture(scope="module")
def real_catalog() -> progress.Catalog:
    return read_catalog(REAL)


@pytest.mark.parametrize("kata", catalog.all_katas("reference"), ids=lambda k: f"{k.topic}.{k.name}")
def test_hints_come_one_level_at_a_time_and_never_show_the_solution(kata, capsys, monkeypatch, real_catalog):
    monkeypatch.setattr(cli, "read_catalog", lambda root, *args, **kwargs: real_catalog)  # read once, not 2 x 145 times
    total = len(kata.hints)
    assert total >= 2
    code, first, _ = katas(REAL, "hint", f"{kata.topic}/{kata.name}", capsys=capsys)
    assert code == 0
    assert f"Hint 1 of {total}:" in first and "Hint 2 of" not in first
    assert f"katas hint {kata.name} 2" in first, "tells how to get the next hint"
    _, last, _ = katas(REAL, "hint", f"{kata.module}.{kata.name}", str(total), capsys=capsys)
    assert f"Hint {total} of {total}:" in last and "last hint" in last
    leaked = [line for line in _body_lines(kata) if line in last]
    assert not leaked, f"the hints print solution code: {leaked}"


def test_hint_names_resolve_and_unknown_names_get_close_matches(capsys):
    for spelled in ("gram_schmidt", "linear_algebra.gram_schmidt", "01_linear_algebra/gram_schmidt", "01/gram_schmidt"):
        code, out, _ = katas(REAL, "hint", spelled, capsys=capsys)
        assert code == 0 and out.startswith("gram_schmidt"), spelled
    code, out, err = katas(REAL, "hint", "gram_schmit", capsys=capsys)
    assert code == 2 and not out
    assert "No kata 'gram_schmit'" in err and "gram_schmidt" in err


def test_list_shows_every_kata_in_order(repo, capsys):
    code, out, _ = katas(repo, "list", capsys=capsys)
    assert code == 0
    names = [kata.name for kata in read_catalog(repo).katas]
    positions = [out.index(f"  {name} ") for name in names]
    assert positions == sorted(positions)
    code, out, _ = katas(repo, "list", TOY, "--status", "--impl=reference", capsys=capsys)
    assert code == 0 and out.count("[done]") == 2


# --- tamper check --------------------------------------------------------------------------------


def test_check_warns_naming_a_changed_test_file(repo, capsys):
    manifest.write(repo)
    assert not manifest.differences(repo)
    test_file = repo / "katas" / TOY / "test_toy.py"
    test_file.write_text(test_file.read_text().replace("== 6.0", "is not None"))
    code, _, err = katas(repo, "check", TOY, capsys=capsys)
    assert code == 0, "a changed test is a warning, not a failure"
    assert "katas/09_toy/test_toy.py: changed since it was shipped" in err


# --- watch ---------------------------------------------------------------------------------------


def test_changes_rerun_their_topic_and_the_topics_built_on_it(repo):
    before = {"01_linear_algebra/linear_algebra.py": (1, 1), "09_toy/toy.py": (1, 1)}
    assert changed_topics(before, {**before, "09_toy/toy.py": (2, 1)}) == {TOY}
    assert changed_topics(before, {**before, "__init__.py": (1, 1)}) == {EVERY_TOPIC}
    assert changed_topics(before, before) == set()
    later = repo / "katas" / "10_later"
    later.mkdir()
    (later / "later.py").write_text('toy = importlib.import_module("..09_toy.toy", __package__)\n')
    assert affected_topics(repo, {TOY}) == {TOY, "10_later"}
    assert affected_topics(repo, {"01_linear_algebra"}) == {"01_linear_algebra"}


class Output:
    """Reads a process's stdout on a thread, so the test can wait for a line with a timeout."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(process,), daemon=True).start()

    def _pump(self, process: subprocess.Popen) -> None:
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
    command = [sys.executable, "-m", "katakit.cli", "watch", TOY, "--root", str(repo), "--interval", "0.1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = Output(process)
    try:
        output.wait_for(r"katas watch: .* ran 09_toy in")
        output.wait_for(r"09_toy\s+\[\.+\]\s+0/2\s+done")
        edit_kata(repo, TOY, "toy", "double", "return 2 * x")
        output.wait_for(r"katas watch: .* ran 09_toy in")
        output.wait_for(r"09_toy\s+\[#+\.+\]\s+1/2\s+done")
        output.wait_for(r"Next: halve")
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
    assert (
        stubs.stub_source(TOY_REFERENCE).replace("raise NotImplementedError", "return 2 * x", 1)
        == (repo / "katas" / TOY / "toy.py").read_text()
    ), "watch never writes the learner's files"


# --- entry points --------------------------------------------------------------------------------


def test_python_m_katas_and_the_console_script_run_in_the_learners_repository(repo):
    env = {key: value for key, value in os.environ.items() if key not in ("KATAS_ROOT", impl.ENV_VAR)}
    result = subprocess.run(
        [sys.executable, "-m", "katas", "hint", "double"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "Hint 1 of 2:" in result.stdout and "katas/09_toy/toy.py" in result.stdout
    script = Path(sys.executable).parent / "katas"
    if script.exists():
        result = subprocess.run([str(script), "--help"], cwd=repo, env=env, capture_output=True, text=True)
        assert result.returncode == 0
        for command in ("progress", "hint", "watch", "check", "list"):
            assert command in result.stdout
