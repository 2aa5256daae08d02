"""Where a learner stands: the State of every kata (katakit.model), from the records of its tests.

    done     every test that ran passed;
    failed   attempted but wrong on its own: a test failed for another reason than
             NotImplementedError without calling a failing kata, its test module failed to
             collect, or the learner's file does not compile or import;
    waiting  attempted, but every failing test calls another kata that fails on its own
             (katakit.blame): fix that one first;
    blocked  its tests cannot run because an earlier topic's file it builds on is broken;
    skipped  the learner moved past it (`katas skip`) and it is not done;
    to do    otherwise (the stub still raises NotImplementedError).
Skipped tests (a GPU test on a machine without CUDA) count neither way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

from katakit import blame
from katakit.catalog import Catalog, Kata
from katakit.model import LIKELY_MISTAKE, KataRef, Module, State, TestRecord

NAMES_A_MISTAKE = (LIKELY_MISTAKE, "Hint:", "hint:")


@dataclass
class Status:
    kata: Kata
    state: State | None  # None: not known (not run)
    message: str = ""  # why it is wrong or blocked: the first failure
    where: str = ""  # the test (or file) that failed
    at: str = ""  # the learner's file:line where it went wrong, when known
    side: str = "katas"  # katas/ or reference/: whose file the kata was read from
    waiting_on: list[Kata] = field(default_factory=list)  # the katas failing on their own it waits on

    @property
    def file(self) -> str:
        """`katas/01_linear_algebra/linear_algebra.py`"""
        return Module(self.kata.topic, self.kata.module).file(self.side).as_posix()

    @property
    def location(self) -> str:
        """`katas/01_linear_algebra/linear_algebra.py:10`: clickable in editors and terminals."""
        return f"{self.file}:{self.kata.line}"

    def place_of(self, kata: Kata) -> str:
        return f"{Module(kata.topic, kata.module).file(self.side).as_posix()}:{kata.line}"

    @property
    def waiting_text(self) -> str:
        """`waiting on LayerNorm (katas/06_transformer/transformer.py:84)`"""
        return "waiting on " + ", ".join(f"{kata.name} ({self.place_of(kata)})" for kata in self.waiting_on)


def _blocked_elsewhere(record: TestRecord, own_file: str) -> bool:
    """Whether the record's test could not run because of a broken file other than the kata's own."""
    blocker = record.blocked_by or ""
    return bool(blocker) and not blocker.startswith(f"{own_file}:")


def names_a_mistake(record: TestRecord | None) -> bool:
    """Whether a failure's message names a likely mistake (assert_close's `hint`)."""
    return record is not None and any(text in record.message for text in NAMES_A_MISTAKE)


def classify(found: Catalog, records: list[TestRecord], skipped: Collection[str] = frozenset()) -> list[Status]:
    """Each kata of the catalog with its status, in learning order. `skipped` holds `topic/name`:
    a kata skipped and not done shows as skipped, whatever else it would be."""
    by_kata: dict[tuple[str, str, str], list[TestRecord]] = defaultdict(list)
    module_errors: dict[tuple[str, str], list[TestRecord]] = defaultdict(list)
    for record in records:
        if record.collection_error:
            module_errors[(record.topic, record.module)].append(record)
        elif record.kata:
            by_kata[(record.topic, record.module, record.kata)].append(record)
    katas = {KataRef(kata.topic, kata.module, kata.name): kata for kata in found.katas}
    order = {ref: number for number, ref in enumerate(katas)}
    waits = blame.waiting(records, lambda ref: (order.get(ref, len(order)),))

    def status(kata: Kata) -> Status:
        module = (kata.topic, kata.module)
        own_file = Module(kata.topic, kata.module).file(found.side).as_posix()
        if module in found.broken:
            return Status(kata, State.FAILED, found.broken[module], own_file, found.broken[module].split(": ")[0])
        if module_errors.get(module):
            first = module_errors[module][0]
            return Status(kata, State.FAILED, f"the test file could not be loaded: {first.message}", first.nodeid)
        results = by_kata.get((kata.topic, kata.module, kata.name), [])
        blocked = [r for r in results if r.blocked_by]
        if blocked and _blocked_elsewhere(blocked[0], own_file):
            return Status(kata, State.BLOCKED, f"blocked by {blocked[0].blocked_by}", blocked[0].nodeid)
        if blocked:  # its own file does not import: one error for the whole file
            where = (blocked[0].blocked_by or "").split(" ")[0]
            return Status(kata, State.FAILED, blocked[0].message, own_file, where)
        wrong = [r for r in results if r.failed and not r.not_implemented]
        if wrong:
            first = next((r for r in wrong if names_a_mistake(r)), wrong[0])
            roots = [katas[ref] for ref in waits.get(KataRef(kata.topic, kata.module, kata.name), []) if ref in katas]
            state = State.WAITING if roots else State.FAILED
            return Status(kata, state, first.message, first.nodeid, first.location or "", waiting_on=roots)
        if any(r.not_implemented for r in results) or not any(r.outcome == "passed" for r in results):
            return Status(kata, State.TODO)
        return Status(kata, State.DONE)

    statuses = [status(kata) for kata in found.katas]
    for each in statuses:
        each.side = found.side
        if each.state is not State.DONE and f"{each.kata.topic}/{each.kata.name}" in skipped:
            each.state = State.SKIPPED
    return statuses


def unmatched_errors(found: Catalog, records: list[TestRecord]) -> list[TestRecord]:
    """Collection errors that belong to no kata module (a broken conftest.py, a stray file)."""
    modules = {(kata.topic, kata.module) for kata in found.katas}
    return [r for r in records if r.collection_error and (r.topic, r.module) not in modules]


def next_kata(statuses: list[Status]) -> Status | None:
    """What to work on: the first kata that fails on its own (the root cause of those waiting on
    it), else the first still to do."""
    for wanted in (State.FAILED, State.TODO):
        for status in statuses:
            if status.state is wanted:
                return status
    return None


def counts(statuses: list[Status]) -> dict[State, int]:
    tally = dict.fromkeys(State, 0)
    for status in statuses:
        if status.state is not None:
            tally[status.state] += 1
    return tally
