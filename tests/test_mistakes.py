"""The mistakes gate (katakit/mistakes.py): every declared mistake can be made, every hint of the kata
tests is named by one or listed as debt, hints are followed through names, and the gate finds a hint
when the mistake is made, and says so when it is not shown first or not at all."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from katakit import hints, mistakes

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_mistake_can_be_made_and_names_one_hint():
    declared = mistakes.read_declarations(ROOT)
    problems, named = mistakes.check_declarations(ROOT, declared)
    assert not problems, "\n".join(problems)
    assert len(named) >= len({m.topic for m in declared})


def test_every_hint_is_named_by_a_declared_mistake_or_listed_as_debt():
    _, named = mistakes.check_declarations(ROOT, mistakes.read_declarations(ROOT))
    problems = mistakes.check_coverage(ROOT, named)
    assert not problems, "\n".join(problems)


FLOWS = """
import pytest
from katakit.testing import assert_close

CONSTANT = "a module constant"
BY_KIND = {"a": "a dict value", "b": "another dict value"}


def helper(x, hint=""):
    assert_close(x, x, what="x", hint=hint)


@pytest.mark.parametrize(("n", "hint"), [(1, "from parametrize"), pytest.param(2, "from a param", id="two")])
def test_one(impl, n, hint):
    helper(n, hint=hint or "after or")
    helper(n, hint=CONSTANT + "; and more")
    assert_close(n, n, what="n", hint=BY_KIND["a"])
    cases = {"x": "from a loop over items"}
    for name, text in cases.items():
        assert_close(n, n, what=name, hint=text)
    for (name, text), got in zip([("y", "from a zip")], [n], strict=True):
        assert_close(got, got, what=name, hint=text)
    assert n, f"n is {n}\\nLikely mistake: written in a message, {n} placeholder"
"""


def test_hints_are_followed_through_parameters_constants_dicts_and_loops(tmp_path):
    path = tmp_path / "katas" / "09_toy" / "test_toy.py"
    path.parent.mkdir(parents=True)
    path.write_text(FLOWS)
    found = {hint.text for hint in hints.hints_in(path, tmp_path)}
    assert found == {
        "from parametrize",
        "from a param",
        "after or",
        "a module constant; and more",
        "a dict value",
        "another dict value",
        "from a loop over items",
        "from a zip",
        "written in a message, {n} placeholder",
    }


def test_a_hint_that_cannot_be_followed_is_refused(tmp_path):
    path = tmp_path / "katas" / "09_toy" / "test_toy.py"
    path.parent.mkdir(parents=True)
    path.write_text("def test_x(impl):\n    assert_close(1, 1, what='x', hint=make_hint())\n")
    with pytest.raises(hints.Unresolved, match=r"test_toy.py:2: cannot tell which hints `make_hint\(\)` holds"):
        hints.hints_in(path, tmp_path)


TOY = '''from jaxtyping import Float
from torch import Tensor

from katakit import kata


@kata
def row_sums(x: Float[Tensor, "rows columns"]) -> Float[Tensor, "..."]:
    """Sum each row of `x`.

    Shapes:
        x: [rows, columns]
        returns: [rows]

    Hints:
        1. Which axis?
        2. The last one.
    """
    return x.sum(dim=-1, keepdim=False) * 1.0 + 0.0
'''
TESTS = """import pytest
import torch

from katakit.testing import assert_close


@pytest.mark.kata("row_sums")
def test_row_sums(impl):
    x = torch.randn(3, 5, dtype=torch.float64)
    assert_close(impl.row_sums(x), x.sum(dim=-1), what="row_sums(x)", hint="summed over the wrong axis?")


@pytest.mark.kata("row_sums")
def test_row_sums_of_ones(impl):
    x = torch.ones(3, 5, dtype=torch.float64)
    assert_close(impl.row_sums(x), x.sum(dim=-1), what="row sums of ones", hint="a sum counts every column")
"""
DECLARED = """
[[mistake]]
kata = "row_sums"
replace = "keepdim=False"
by = "keepdim=True"
says = "summed over the wrong axis"

[[mistake]]
kata = "row_sums"
replace = "keepdim=False"
by = "keepdim=True"
says = "a sum counts every column"

[[mistake]]
kata = "row_sums"
replace = "* 1.0"
by = "* 1.0000000000000002"
says = "summed over the wrong axis"
"""


@pytest.fixture
def toy(toy_repository, tmp_path: Path) -> Path:
    topic = toy_repository.Topic("09_toy", "toy", reference=TOY, tests=TESTS, learner=TOY)
    root = toy_repository(tmp_path / "repo", [topic], with_katakit=False)
    (root / "tests" / "mistakes").mkdir(parents=True)
    (root / "tests" / "mistakes" / "09_toy.toml").write_text(DECLARED)
    return root


def test_a_replace_that_is_not_in_the_kata_exactly_once_is_refused(toy):
    twice = mistakes.Mistake("09_toy", "row_sums", ".0", ".5", "summed", where="here")
    with pytest.raises(mistakes.Invalid, match="occurs 2 times"):
        mistakes.edited(toy, twice)
    in_the_docstring_only = mistakes.Mistake("09_toy", "row_sums", "Which axis?", "?", "summed", where="here")
    with pytest.raises(mistakes.Invalid, match="occurs 0 times"):
        mistakes.edited(toy, in_the_docstring_only)
    unknown = mistakes.Mistake("09_toy", "row_sums", "dim=-1", "dim=0", "no such hint", where="here")
    with pytest.raises(mistakes.Invalid, match="which no hint of its tests holds"):
        mistakes.named_hint(unknown, hints.hints_in(toy / "katas" / "09_toy" / "test_toy.py", toy))


@pytest.mark.parametrize("children", [[], ["--no-fork"]], ids=["forked", "fresh-interpreters"])
def test_the_gate_makes_each_mistake_and_finds_its_hint_first_or_says_why_not(toy, children):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "KATAS_"))}
    command = [sys.executable, "-m", "katakit.maintain", "mistakes", "--root", str(toy), *children]
    done = subprocess.run(command, cwd=toy, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "09_toy.toml:2:" not in out, out  # the wrong axis, named first: passes
    only_verbose = (
        "tests/mistakes/09_toy.toml:8: row_sums: 'keepdim=False' -> 'keepdim=True': 'a sum counts every column' "
        "shows only with -vv: the report shown first says:\n"
        "    Likely mistake: summed over the wrong axis?\n"
    )
    assert only_verbose in out, out
    assert "09_toy.toml:14: row_sums: '* 1.0' -> '* 1.0000000000000002': the tests pass with this mistake" in out, out
    assert "1 of 3 mistakes brought up the hint that names them" in out, out


def test_a_report_without_any_likely_mistake_line_is_shown_by_its_end():
    """A run whose plain report names no mistake at all (a crash, a timeout) is shown by pytest's summary."""
    mistake = mistakes.Mistake("09_toy", "row_sums", "dim=-1", "dim=0", "summed over the wrong axis", where="here")
    report = "lots of output\n" * 30 + "FAILED katas/09_toy/test_toy.py::test_named - Failed: Timeout >15.0s\n"
    shown = mistakes.explain(mistakes.Outcome(mistake, "only -vv", 1.0, output=report))
    assert "(no Likely mistake line; the report ends:)" in shown, shown
    assert "FAILED katas/09_toy/test_toy.py::test_named - Failed: Timeout >15.0s" in shown, shown
    assert shown.count("lots of output") == 14, shown  # the last 15 lines, not all of them
