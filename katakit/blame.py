"""Which failing katas fail on their own, and which wait on another: blame follows the calls.

A kata fails on its own when one of its failing tests calls no other failing kata. A kata whose
every failing test calls another failing kata waits on it, and on through the calls to the katas
that fail on their own (the root causes): a TransformerBlock test that fails after calling a wrong
LayerNorm waits on LayerNorm. The tests decide, never a guess: a kata whose failing tests call no
failing kata stays failed, and a circle of katas that only call each other stays failed too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from katakit.model import KataRef, TestRecord


def failing_katas(records: Iterable[TestRecord]) -> set[KataRef]:
    """The katas with a test that failed for a reason of its own (not a stub, not a broken file)."""
    return {ref for record in records if record.wrong and (ref := record.kata_ref) is not None}


def waiting(
    records: Iterable[TestRecord], order: Callable[[KataRef], Any] | None = None
) -> dict[KataRef, list[KataRef]]:
    """Each failing kata that waits on others: the katas, failing on their own, at the end of its
    calls, first in `order` (learning order) first."""
    records = list(records)
    failing = failing_katas(records)
    depends: dict[KataRef, set[KataRef]] = defaultdict(set)
    independent: set[KataRef] = set()
    for record in records:
        ref = record.kata_ref
        if ref is None or not record.wrong:
            continue
        others = (record.called - {ref}) & failing
        if others:
            depends[ref] |= others
        else:
            independent.add(ref)
    roots = failing - (set(depends) - independent)
    found: dict[KataRef, list[KataRef]] = {}
    for kata in set(depends) - roots:
        reached: set[KataRef] = set()
        seen, todo = {kata}, list(depends[kata])
        while todo:
            other = todo.pop()
            if other in seen:
                continue
            seen.add(other)
            if other in roots:
                reached.add(other)
            else:
                todo += depends.get(other, ())
        if reached:
            found[kata] = sorted(reached, key=order) if order else sorted(reached)
    return found
