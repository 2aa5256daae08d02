"""Hints teach, they never give the solution away: no hint quotes its kata's solution code.

A learner's stub shows hint 1 only; `katas hint NAME 2` (and 3) reveal the next ones, and the solution
itself is shown on request only (`katas solution NAME`). So every kata has 2 or 3 hints, escalating
from a nudge to the key idea, and none of them contains a line of the reference solution or one of
its calls with their arguments. The solutions are read from `reference/` with `ast`: no reference
module is imported.
"""

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from katakit import catalog

ROOT = Path(__file__).resolve().parents[1]
MIN_HINTS, MAX_HINTS = 2, 3
# Code shorter than this once normalised (`x=a+b`, `x.sum()`) is too generic to count as a leak.
MIN_LEAK_CHARS = 8


KATAS = catalog.read(ROOT, side="reference").katas


def _normalise(text: str) -> str:
    """Drop whitespace and backticks, so that `torch.eye( n )` in a hint matches `torch.eye(n)`."""
    return re.sub(r"[\s`]", "", text)


def _solution_functions(source: str, name: str) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    """The `@kata` function `name` of a module, or the `@kata` methods of its class `name` (the
    other methods of a class kata, such as `__init__`, are given to the learner)."""
    for node in ast.parse(source).body:
        if getattr(node, "name", None) != name:
            continue
        if isinstance(node, ast.ClassDef):
            return [child for child in node.body if catalog.is_kata(child)]
        if catalog.is_kata(node):
            return [node]
    raise LookupError(f"no kata named {name!r} in the source")


def _names_only(node: ast.expr | None) -> bool:
    """`x`, `self.count`, `mean, variance`: values that only name things, computing nothing."""
    if isinstance(node, ast.Name | ast.Constant):
        return True
    if isinstance(node, ast.Attribute):
        return _names_only(node.value)
    if isinstance(node, ast.Tuple):
        return all(_names_only(element) for element in node.elts)
    return False


def solution_code(source: str, name: str) -> list[str]:
    """The code of kata `name` that no hint may quote, normalised (a leading `return ` dropped, all
    whitespace removed) and at least `MIN_LEAK_CHARS` long: every statement of its solution, nested
    ones included (docstrings excluded), and every call made with arguments, such as
    `torch.linalg.solve(basis,v)`. A statement that only names values (`return self.count`) computes
    nothing and is left out, so that a hint can mention a variable."""
    found: list[str] = []
    for function in _solution_functions(source, name):
        body = function.body[1:] if ast.get_docstring(function) is not None else function.body
        for top in body:
            for node in ast.walk(top):
                if isinstance(node, ast.Return | ast.Expr) and _names_only(node.value):
                    continue
                if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                    continue  # a docstring, of a nested function
                is_call_with_arguments = isinstance(node, ast.Call) and bool(node.args or node.keywords)
                if not (isinstance(node, ast.stmt) or is_call_with_arguments):
                    continue
                segment = ast.get_source_segment(source, node) or ""
                code = _normalise(segment.removeprefix("return "))
                if len(code) >= MIN_LEAK_CHARS and code not in found:
                    found.append(code)
    return found


def leaks(source: str, name: str, hints: list[str]) -> list[tuple[int, str]]:
    """(hint number, code) for every piece of solution code that a hint of kata `name` quotes;
    `source` is the module's source text and hint 1 is `hints[0]`."""
    code = solution_code(source, name)
    return [
        (number, piece) for number, hint in enumerate(hints, start=1) for piece in code if piece in _normalise(hint)
    ]


@cache
def _reference_source(topic: str, module: str) -> str:
    return (ROOT / "reference" / topic / f"{module}.py").read_text(encoding="utf-8")


def _where(kata: catalog.Kata) -> str:
    return f"reference/{kata.topic}/{kata.module}.py::{kata.name}"


IDS = [f"{kata.topic}.{kata.name}" for kata in KATAS]


def test_every_kata_of_reference_is_checked():
    assert len(KATAS) >= 100, f"expected the whole catalog of reference/, found {len(KATAS)} katas"


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_a_kata_has_two_or_three_hints(kata: catalog.Kata):
    count = len(kata.hints)
    assert MIN_HINTS <= count <= MAX_HINTS, (
        f"{_where(kata)} has {count} hints: give {MIN_HINTS} to {MAX_HINTS} (a nudge, the key idea, "
        "optionally the closest nudge short of code) under `Hints:`, numbered `1.`, `2.`, `3.`"
    )


@pytest.mark.parametrize("kata", KATAS, ids=IDS)
def test_no_hint_quotes_the_solution(kata: catalog.Kata):
    leaked = leaks(_reference_source(kata.topic, kata.module), kata.name, kata.hints)
    assert not leaked, "\n".join(
        f"{_where(kata)}: hint {number} gives away the solution code `{code}`; describe the idea instead"
        for number, code in leaked
    )


FAKE_SOURCE = '''
from katakit import kata


@kata
def identity(n: int):
    """Return the n x n identity matrix.

    Hints:
        1. Which matrix leaves every vector unchanged?
        2. Just `return torch.eye( n )`.
    """
    return torch.eye(n)


class Counter:
    """Count up.

    Hints:
        1. Keep a running total in self.count.
        2. Add with self.count += by, then return self.count.
    """

    def __init__(self):
        self.count = 0

    @kata
    def step(self, by: int):
        """Add `by`; return the total."""
        self.count += by
        return self.count


@kata
def normalise(v):
    """Return v / |v|.

    Hints:
        1. Divide by the length.
        2. torch.linalg.vector_norm(v) is the length.
    """
    return v / torch.linalg.vector_norm(v)
'''


def test_the_check_flags_a_hint_that_quotes_the_solution():
    identity, counter, normalise = catalog.katas_in(FAKE_SOURCE, "00_fake", "fake")
    # a whole statement, whatever the whitespace and backticks around it
    assert leaks(FAKE_SOURCE, identity.name, identity.hints) == [(2, "torch.eye(n)")]
    # a statement of a class kata's @kata method; naming the attribute alone is fine
    assert leaks(FAKE_SOURCE, counter.name, counter.hints) == [(2, "self.count+=by")]
    # a call with its arguments, inside a longer statement
    assert leaks(FAKE_SOURCE, normalise.name, normalise.hints) == [(2, "torch.linalg.vector_norm(v)")]


def test_the_check_passes_hints_that_only_name_the_idea():
    hints = ["Which matrix leaves every vector unchanged?", "Look for it in the 'Creation Ops' of torch's docs."]
    assert leaks(FAKE_SOURCE, "identity", hints) == []
    assert leaks(FAKE_SOURCE, "normalise", ["Divide by the length.", "torch.linalg.vector_norm gives it."]) == []
    # the given `__init__` of a class kata is not solution code
    assert "self.count=0" not in solution_code(FAKE_SOURCE, "Counter")
