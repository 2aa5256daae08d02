"""What a learner sees from plain `pytest katas/NN_topic` (katakit/plugin.py): a line per kata still to
do, a short teaching report per real failure, a syntax or import error once, an endless loop stopped.

Each test reads the output of the real `python -m pytest`, run on a copy of the repository (topics
01, 05 and 06) in which a few katas are answered, right or wrong; the real katas/ is never touched.
The copies and the runs are shared by the tests of this module: each run costs seconds.
"""

import ast
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[1]
TOPICS = ("01_linear_algebra", "05_attention", "06_transformer")
LINEAR_ALGEBRA = "katas/01_linear_algebra/linear_algebra.py"
ATTENTION = "katas/05_attention/attention.py"
TIMEOUT = 2  # seconds, for the endless kata (instead of pyproject's 15)


@dataclass
class Run:
    code: int
    output: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()

    def failure(self, test: str, lines: int = 25) -> str:
        """The first `lines` lines of a test's section under FAILURES."""
        heading = re.compile(rf"^_+ {re.escape(test)} _+$")
        for number, line in enumerate(self.lines):
            if heading.match(line):
                return "\n".join(self.lines[number + 1 : number + 1 + lines])
        raise AssertionError(f"no failure section for {test} in:\n{self.output}")


def pytest_run(root: Path, *args: str) -> Run:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "KATAS_"))}
    env["COLUMNS"] = "120"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(done.returncode, done.stdout + done.stderr, time.perf_counter() - started)


def function(path: Path, name: str) -> ast.FunctionDef:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise AssertionError(f"no function {name} in {path}")


def stub_line(path: Path, name: str) -> int:
    """The line of `raise NotImplementedError` in the stub `name`."""
    raises = [node for node in ast.walk(function(path, name)) if isinstance(node, ast.Raise)]
    return raises[-1].lineno


def answer(path: Path, name: str, *body: str) -> int:
    """Replace the stub's `raise NotImplementedError` by `body`; returns the line of its first statement."""
    line = stub_line(path, name)
    lines = path.read_text().splitlines()
    indent = lines[line - 1][: len(lines[line - 1]) - len(lines[line - 1].lstrip())]
    lines[line - 1 : line] = [indent + statement for statement in body]
    path.write_text("\n".join(lines) + "\n")
    return line


def kata_tests(kata: str) -> set[str]:
    """The test functions of topic 01 marked @pytest.mark.kata(kata)."""
    found = set()
    for node in ast.parse((REAL / "katas/01_linear_algebra/test_linear_algebra.py").read_text()).body:
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and ast.unparse(decorator.func) == "pytest.mark.kata"
                    and ast.literal_eval(decorator.args[0]) == kata
                ):
                    found.add(node.name)
    return found


def collected(run: Run) -> set[str]:
    """The test functions listed by `--collect-only -q`."""
    return {match.group(1) for match in re.finditer(r"::(\w+)(\[[^\]]*\])?$", run.output, re.MULTILINE)}


# --- the untouched stubs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pristine(toy_repository, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_repository(tmp_path_factory.mktemp("pristine"), real=TOPICS)


@pytest.fixture(scope="module")
def stubs_run(pristine: Path) -> Run:
    return pytest_run(pristine, "katas/01_linear_algebra")


def test_untouched_stubs_give_one_line_per_kata(pristine: Path, stubs_run: Run):
    assert stubs_run.code == 1, stubs_run.output  # still red: a stub is not a pass
    assert len(stubs_run.lines) <= 200, stubs_run.output
    line = stub_line(pristine / LINEAR_ALGEBRA, "coordinates_in_basis")
    assert f"to do: coordinates_in_basis ({LINEAR_ALGEBRA}:{line})" in stubs_run.lines
    assert sum(entry.startswith("to do: coordinates_in_basis ") for entry in stubs_run.lines) == 1
    docstring = ast.get_docstring(function(pristine / LINEAR_ALGEBRA, "coordinates_in_basis"))
    assert docstring
    assert docstring.splitlines()[0] not in stubs_run.output
    assert "FAILURES" not in stubs_run.output
    assert re.search(r"\d+ to do in ", stubs_run.lines[-1])


def test_an_explicit_tb_option_gives_pytest_s_full_report(pristine: Path):
    run = pytest_run(pristine, "katas/01_linear_algebra", "--kata", "coordinates_in_basis", "--tb=long")
    docstring = ast.get_docstring(function(pristine / LINEAR_ALGEBRA, "coordinates_in_basis"))
    assert docstring and run.code == 1
    assert "FAILURES" in run.output
    assert docstring.splitlines()[0] in run.output
    assert "to do:" not in run.output


@pytest.mark.parametrize("selection", [["-k", "coordinates_in_basis"], ["--kata", "coordinates_in_basis"]])
def test_one_kata_at_a_time(pristine: Path, selection: list[str]):
    run = pytest_run(pristine, "katas/01_linear_algebra", "--collect-only", "-q", *selection)
    assert run.code == 0, run.output
    assert collected(run) == kata_tests("coordinates_in_basis")


# --- answered katas: right, wrong, the wrong shape, an endless loop ---------------------------------


@dataclass
class Answered:
    root: Path
    run: Run
    records: list[dict]
    durations: dict[str, float]  # test name -> seconds, from pytest's junit XML
    lines: dict[str, int]  # what to find where in the learner's file


@pytest.fixture(scope="module")
def answered(toy_repository, tmp_path_factory: pytest.TempPathFactory) -> Answered:
    root = toy_repository(tmp_path_factory.mktemp("answered"), real=TOPICS)
    learner = root / LINEAR_ALGEBRA
    lines = {
        "solved": answer(learner, "change_of_basis_matrix", "return torch.linalg.solve(basis_b, basis_a)"),
        "wrong": answer(learner, "map_in_basis", "return basis @ matrix @ torch.linalg.inv(basis)"),
        "shape": answer(learner, "coordinates_in_basis", "return torch.linalg.solve(basis, v)[:, None]"),
        "endless": answer(learner, "has_orthonormal_columns", "while True:", "    pass"),
        "uses a stub": answer(
            learner,
            "rank_k_approximation_error",
            "return torch.linalg.norm(matrix - low_rank_approximation(matrix, k))",
        ),
    }
    for kata in ("map_in_basis", "coordinates_in_basis"):
        lines[f"def {kata}"] = function(learner, kata).lineno
    lines["low_rank_approximation stub"] = stub_line(learner, "low_rank_approximation")
    run = pytest_run(
        root,
        "katas/01_linear_algebra",
        f"--timeout={TIMEOUT}",
        "-p",
        "katakit.report",
        "--katas-report=records.json",
        "--junitxml=junit.xml",
    )
    durations = {
        case.get("name", ""): float(case.get("time", "0"))
        for case in ElementTree.parse(root / "junit.xml").iter("testcase")
    }
    records = json.loads((root / "records.json").read_text())
    return Answered(root, run, records, durations, lines)


def _records(answered: Answered, kata: str) -> list[dict]:
    return [record for record in answered.records if record["kata"] == kata]


def test_a_solved_kata_passes_while_the_others_are_to_do(answered: Answered):
    assert answered.run.code == 1
    assert {record["outcome"] for record in _records(answered, "change_of_basis_matrix")} == {"passed"}
    assert "to do: change_of_basis_matrix" not in answered.run.output
    assert "to do: gram_schmidt (" in answered.run.output


def test_a_wrong_kata_gets_a_short_teaching_report(answered: Answered):
    section = answered.run.failure("test_map_in_basis_acts_on_coordinates")
    assert "AssertionError: the mapped vectors" in section
    assert "Likely mistake: the map in the new basis is P^-1 M P, not P M P^-1" in section
    assert f"{LINEAR_ALGEBRA}:{answered.lines['def map_in_basis']}" in section  # the learner's code
    assert re.search(r"katas/01_linear_algebra/test_linear_algebra.py:\d+: in test_map_in_basis_acts", section)
    assert '"""' not in section and "Hints:" not in section  # no docstring
    (record,) = [r for r in answered.records if r["nodeid"].endswith("::test_map_in_basis_acts_on_coordinates")]
    assert record["outcome"] == "failed" and not record["not_implemented"] and not record["timed_out"]
    assert record["message"].startswith("AssertionError: the mapped vectors")
    assert record["location"] == f"{LINEAR_ALGEBRA}:{answered.lines['def map_in_basis']}"
    assert record["blocked_by"] is None


def test_a_wrong_shape_shows_jaxtyping_s_message_not_typeguard_s_source(answered: Answered):
    section = answered.run.failure("test_coordinates_rebuild_the_vector")
    assert "TypeCheckError: Type-check error whilst checking the return value" in section
    assert "Expected type: Float[Tensor, 'd']" in section
    assert "d=5" in section  # the size jaxtyping bound the dimension to
    assert f"{LINEAR_ALGEBRA}:{answered.lines['def coordinates_in_basis']}" in section
    assert re.search(r"katas/01_linear_algebra/test_linear_algebra.py:\d+: in test_coordinates_rebuild", section)
    full = answered.run.failure("test_coordinates_rebuild_the_vector", lines=60)
    full = full.split("\n_____")[0]  # up to the next test's section
    assert "typeguard/" not in full and "jaxtyping/" not in full and "The above exception" not in full


def test_a_kata_that_calls_a_stub_is_to_do_and_names_the_stub(answered: Answered):
    line = answered.lines["low_rank_approximation stub"]
    expected = f"to do: rank_k_approximation_error (needs low_rank_approximation, {LINEAR_ALGEBRA}:{line})"
    assert expected in answered.run.lines


def test_an_endless_loop_is_stopped_once_with_its_line(answered: Answered):
    names = kata_tests("has_orthonormal_columns")
    tests = [name for name in answered.durations if name.split("[")[0] in names]  # in the order they ran
    first = tests[0]
    section = answered.run.failure(first)
    assert (
        f"has_orthonormal_columns did not finish within {TIMEOUT} s: "
        "an endless loop (a while loop whose condition never changes)?"
    ) in section
    assert f"{LINEAR_ALGEBRA}:{answered.lines['endless']}" in section  # the `while True:` it was stuck in
    others = [name for name in tests if name != first]
    for name in others:
        assert answered.run.failure(name, lines=1) == f"has_orthonormal_columns already timed out in {first}"
    spent = sum(answered.durations[name] for name in tests)
    assert spent < TIMEOUT + 1.5, f"{len(tests)} tests took {spent:.1f} s: each waited for the timeout"
    records = _records(answered, "has_orthonormal_columns")
    assert all(record["timed_out"] for record in records)
    assert records[0]["location"] == f"{LINEAR_ALGEBRA}:{answered.lines['endless']}"
    assert records[0]["message"].startswith("has_orthonormal_columns did not finish within")


# --- a learner file that does not compile or import -------------------------------------------------


@dataclass
class Broken:
    run: Run
    records: list[dict]
    syntax_line: int
    import_line: int


@pytest.fixture(scope="module")
def broken(toy_repository, tmp_path_factory: pytest.TempPathFactory) -> Broken:
    root = toy_repository(tmp_path_factory.mktemp("broken"), real=TOPICS)
    attention = root / ATTENTION
    answer(attention, "stable_softmax", "retrun x.softmax(dim=-1)")
    try:
        compile(attention.read_text(), str(attention), "exec")
    except SyntaxError as error:
        syntax_line = error.lineno or 0
    else:
        raise AssertionError("the broken attention.py compiles")
    learner = root / LINEAR_ALGEBRA
    lines = learner.read_text().splitlines()
    import_line = lines.index("import torch") + 2
    lines.insert(import_line - 1, "import numpyy")
    learner.write_text("\n".join(lines) + "\n")
    run = pytest_run(
        root,
        "katas/01_linear_algebra",
        "katas/05_attention",
        "katas/06_transformer",
        "-p",
        "katakit.report",
        "--katas-report=records.json",
    )
    return Broken(run, json.loads((root / "records.json").read_text()), syntax_line, import_line)


def test_a_syntax_error_is_reported_once_and_blocks_the_topics_built_on_it(broken: Broken):
    where = f"{ATTENTION}:{broken.syntax_line}"
    assert broken.run.code == 1
    assert broken.run.output.count(f"{where}: SyntaxError") == 1, broken.run.output
    assert "retrun x.softmax(dim=-1)" in broken.run.output
    blocked = f"blocked by {where} (SyntaxError)"
    assert any(
        line.startswith("katas/06_transformer/test_transformer.py") and blocked in line for line in broken.run.lines
    )
    assert "FAILURES" not in broken.run.output and "ERRORS" not in broken.run.output
    for topic in ("05_attention", "06_transformer"):
        records = [record for record in broken.records if record["topic"] == topic and "::" in record["nodeid"]]
        assert records and all(record["blocked_by"] == f"{where} (SyntaxError)" for record in records)
        assert all(record["message"].startswith(f"{where}: SyntaxError: ") for record in records)
        assert all(record["outcome"] == "error" and not record["not_implemented"] for record in records)


def test_an_import_error_is_reported_once_with_its_line(broken: Broken):
    where = f"{LINEAR_ALGEBRA}:{broken.import_line}"
    assert broken.run.output.count(f"{where}: ModuleNotFoundError: No module named 'numpyy'") == 1, broken.run.output
    assert "    import numpyy" in broken.run.lines
    records = [record for record in broken.records if record["topic"] == "01_linear_algebra"]
    assert records and all(record["blocked_by"] == f"{where} (ModuleNotFoundError)" for record in records)
    assert all(record["location"] == where for record in records)
