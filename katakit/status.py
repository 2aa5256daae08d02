"""Where a learner stands: sort every kata into done, to do, failed, blocked or skipped, from the
records of its tests (`katakit.report`).

    done     every test that ran passed;
    failed   attempted but wrong: a test failed for another reason than NotImplementedError, its
             test module failed to collect, or the learner's file does not compile or import;
    blocked  its tests cannot run because an earlier topic's file it builds on is broken;
    skipped  the learner moved past it (`katas skip`) and it is not done;
    to do    otherwise (the stub still raises NotImplementedError).
Skipped tests (a GPU test on a machine without CUDA) count neither way.
"""

from collections import defaultdict
from dataclasses import dataclass

from katakit.catalog import Catalog, Kata

DONE, TODO, WRONG, BLOCKED, SKIPPED = "done", "to do", "failed", "blocked", "skipped"


@dataclass
class Status:
    kata: Kata
    status: str
    message: str = ""  # why it is wrong or blocked: the first failure
    where: str = ""  # the test (or file) that failed
    at: str = ""  # the learner's file:line where it went wrong, when known
    side: str = "katas"  # katas/ or reference/: whose file the kata was read from

    @property
    def file(self) -> str:
        """`katas/01_linear_algebra/linear_algebra.py`"""
        return f"{self.side}/{self.kata.topic}/{self.kata.module}.py"

    @property
    def location(self) -> str:
        """`katas/01_linear_algebra/linear_algebra.py:10`: clickable in editors and terminals."""
        return f"{self.file}:{self.kata.line}"


def _collection_error(record: dict) -> bool:
    return "::" not in record["nodeid"] and record["outcome"] in ("failed", "error")


def _blocked_elsewhere(record: dict, own_file: str) -> bool:
    """Whether the record's test could not run because of a broken file other than the kata's own."""
    blocker = record.get("blocked_by") or ""
    return bool(blocker) and not blocker.startswith(f"{own_file}:")


def classify(found: Catalog, records: list[dict], skipped: set[str] | frozenset[str] = frozenset()) -> list[Status]:
    """Each kata of the catalog with its status, in learning order. `skipped` holds `topic/name`:
    a kata skipped and not done shows as skipped, whatever else it would be."""
    by_kata: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    module_errors: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        if _collection_error(record):
            module_errors[(record["topic"], record["module"])].append(record)
        elif record.get("kata"):
            by_kata[(record["topic"], record["module"], record["kata"])].append(record)

    def status(kata: Kata) -> Status:
        module = (kata.topic, kata.module)
        own_file = f"{found.side}/{kata.topic}/{kata.module}.py"
        if module in found.broken:
            return Status(kata, WRONG, found.broken[module], own_file, found.broken[module].split(": ")[0])
        if module_errors.get(module):
            first = module_errors[module][0]
            return Status(kata, WRONG, f"the test file could not be loaded: {first['message']}", first["nodeid"])
        results = by_kata.get((kata.topic, kata.module, kata.name), [])
        blocked = [r for r in results if r.get("blocked_by")]
        if blocked and _blocked_elsewhere(blocked[0], own_file):
            return Status(kata, BLOCKED, f"blocked by {blocked[0]['blocked_by']}", blocked[0]["nodeid"])
        if blocked:  # its own file does not import: one error for the whole file
            return Status(kata, WRONG, blocked[0]["message"], own_file, blocked[0]["blocked_by"].split(" ")[0])
        wrong = [r for r in results if r["outcome"] in ("failed", "error") and not r["not_implemented"]]
        if wrong:
            first = wrong[0]
            return Status(kata, WRONG, first["message"], first["nodeid"], first.get("location") or "")
        if any(r["not_implemented"] for r in results) or not any(r["outcome"] == "passed" for r in results):
            return Status(kata, TODO)
        return Status(kata, DONE)

    statuses = [status(kata) for kata in found.katas]
    for each in statuses:
        each.side = found.side
        if each.status != DONE and f"{each.kata.topic}/{each.kata.name}" in skipped:
            each.status = SKIPPED
    return statuses


def unmatched_errors(found: Catalog, records: list[dict]) -> list[dict]:
    """Collection errors that belong to no kata module (a broken conftest.py, a stray file)."""
    modules = {(kata.topic, kata.module) for kata in found.katas}
    return [r for r in records if _collection_error(r) and (r["topic"], r["module"]) not in modules]


def next_kata(statuses: list[Status]) -> Status | None:
    """What to work on: the first kata that is attempted but wrong, else the first still to do."""
    for wanted in (WRONG, TODO):
        for status in statuses:
            if status.status == wanted:
                return status
    return None


def counts(statuses: list[Status]) -> dict[str, int]:
    tally = {DONE: 0, TODO: 0, WRONG: 0, BLOCKED: 0, SKIPPED: 0}
    for status in statuses:
        tally[status.status] += 1
    return tally
