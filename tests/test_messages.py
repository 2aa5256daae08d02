"""The message that names the mistake comes first: of a kata's failures, one whose message names a
likely mistake is shown, the others counted; Python's "Did you mean" survives; a tensor returned
for a bool says `.item()`."""

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from katakit import catalog, explain, kata, status
from katakit.model import State, TestRecord

REAL = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("code", "suggestion"),
    [
        ("from einops import rearange", "Did you mean: 'rearrange'?"),
        ("torch.linalg.invv", "Did you mean: 'inv'?"),
        ("lenn([])", "Did you mean: 'len'?"),
    ],
)
def test_python_s_did_you_mean_is_kept(code, suggestion):
    with pytest.raises((ImportError, AttributeError, NameError)) as info:
        exec(code, {"torch": torch})
    message, shown = explain._message(info)
    assert message.endswith(suggestion) and shown == suggestion


def test_a_tensor_returned_for_a_bool_says_item():
    @kata
    def positive(x: float) -> bool:
        return torch.tensor(x) > 0  # type: ignore[return-value]  # the mistake under test

    with pytest.raises(TypeError, match=r"(?s)Expected type: bool\..*\.item\(\)"):
        positive(1.0)


def test_the_status_message_is_the_failure_that_names_a_mistake():
    found = catalog.read(REAL, ["02_probability"], "reference")
    name = found.katas[0].name

    def failure(number: int, message: str) -> TestRecord:
        nodeid = f"katas/02_probability/test_probability.py::test_{number}"
        return TestRecord(nodeid, "02_probability", "probability", name, "failed", message=message)

    records = [failure(1, "AssertionError: wrong"), failure(2, "AssertionError: off\nLikely mistake: n - 1")]
    first = status.classify(found, records)[0]
    assert first.state is State.FAILED and "Likely mistake" in first.message


TOY = '''from katakit import kata


@kata
def double(x: float) -> float:
    """Return twice `x`.

    Hints:
        1. Twice.
        2. Add it to itself.
    """
    raise NotImplementedError
'''
TESTS = """import pytest

from katakit.testing import assert_close


@pytest.mark.kata("double")
def test_one(impl):
    assert impl.double(1.0) == 2.0, "double(1) should be 2"


@pytest.mark.kata("double")
def test_two(impl):
    assert impl.double(2.0) == 4.0, "double(2) should be 4"


@pytest.mark.kata("double")
def test_named(impl):
    import torch

    assert_close(torch.tensor(impl.double(3.0)), torch.tensor(6.0), what="double(3)", hint="three times is not twice")
"""


def _toy_repository(toy_repository, tmp_path: Path, source: str, tests: str) -> Callable[..., str]:
    """A repository with one topic, 09_toy, whose learner file is `source`; returns a function that
    runs plain pytest on it and gives its output."""
    toy = toy_repository.Topic("09_toy", "toy", reference=source, tests=tests, learner=source)
    root = toy_repository(tmp_path / "repo", [toy])
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "KATAS_"))}

    def pytest_output(*args: str) -> str:
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "katas/09_toy", *args]
        done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        return done.stdout + done.stderr

    return pytest_output


def test_a_kata_s_failure_that_names_a_mistake_comes_first_and_the_others_are_counted(toy_repository, tmp_path):
    pytest_output = _toy_repository(
        toy_repository, tmp_path, TOY.replace("raise NotImplementedError", "return 3 * x"), TESTS
    )
    out = pytest_output()
    assert re.findall(r"^_+ (test_\w+) _+$", out, re.M) == ["test_named"], out
    assert "Likely mistake: three times is not twice" in out
    assert "and 2 more failures of double: -vv shows them" in out
    assert re.search(r"1 failed, 2 more failed", out), out
    verbose = pytest_output("-vv")
    assert sorted(re.findall(r"^_+ (test_\w+) _+$", verbose, re.M)) == ["test_named", "test_one", "test_two"]


TWO = '''from katakit import kata


@kata
def double(x: float) -> float:
    """Return twice `x`.

    Hints:
        1. Twice.
        2. Add it to itself.
    """
    return x + x


@kata
def quadruple(x: float) -> float:
    """Return four times `x`, with double.

    Hints:
        1. Twice twice.
        2. double(double(x)).
    """
    return double(double(x)) + 1.0
'''
TWO_TESTS = """import pytest


@pytest.mark.kata("double")
def test_double(impl):
    assert impl.double(1.5) == 3.0, "double(1.5) should be 3"


@pytest.mark.kata("quadruple")
def test_quadruple(impl):
    assert impl.quadruple(1.5) == 6.0, "quadruple(1.5) should be 6"
"""


def test_a_failure_checked_through_other_katas_names_them(toy_repository, tmp_path):
    out = _toy_repository(toy_repository, tmp_path, TWO, TWO_TESTS)()
    assert "quadruple(1.5) should be 6" in out, out
    assert "this test also runs your double: their own tests say whether a mistake is theirs" in out, out
