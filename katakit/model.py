"""The types the tools pass each other: where a kata module's files are, what a kata's state is, and
one record per kata test.

    Module      a kata module (`06_transformer`, `transformer`): the only place its learner file,
                reference file and test file are spelled out;
    KataRef     one kata of a module (`06_transformer/transformer:LayerNorm`);
    State       done, to do, failed, waiting, blocked or skipped;
    TestRecord  how one kata test ended (katakit.plugin makes it, katakit.report writes it as JSON,
                katakit.status reads it).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

SIDES = ("katas", "reference")
PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"
# What opens the line of a failure message that names the learner's likely mistake: katakit.testing writes
# it; status and notebook show first a failure that has one; hints and mistakes read it.
LIKELY_MISTAKE = "Likely mistake:"


class State(enum.Enum):
    """Where a kata stands."""

    DONE = "done"  # every test that ran passed
    TODO = "to do"  # its stub still raises NotImplementedError (or no test ran)
    FAILED = "failed"  # attempted and wrong, on its own
    WAITING = "waiting"  # its failing tests call a kata that fails on its own: fix that one first
    BLOCKED = "blocked"  # an earlier topic's file it builds on does not compile or import
    SKIPPED = "skipped"  # moved past with `katas skip`, and not done

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, order=True)
class Module:
    """A kata module: `katas/<topic>/<name>.py`, its solutions and its tests."""

    topic: str  # 06_transformer
    name: str  # transformer

    def file(self, side: str = "katas") -> PurePosixPath:
        """`katas/06_transformer/transformer.py` (or under reference/), relative to the root."""
        return PurePosixPath(side, self.topic, f"{self.name}.py")

    @property
    def learner_file(self) -> PurePosixPath:
        return self.file("katas")

    @property
    def reference_file(self) -> PurePosixPath:
        return self.file("reference")

    @property
    def test_file(self) -> PurePosixPath:
        """`katas/06_transformer/test_transformer.py`"""
        return PurePosixPath("katas", self.topic, f"test_{self.name}.py")

    def at(self, root: Path, side: str = "katas") -> Path:
        """The file of `side` in the checkout `root`."""
        return root / self.file(side)


@dataclass(frozen=True, order=True)
class KataRef:
    """One kata: the top-level function or class `name` of a module."""

    topic: str
    module: str
    name: str

    @property
    def of(self) -> Module:
        return Module(self.topic, self.module)

    def __str__(self) -> str:
        return f"{self.topic}/{self.module}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> KataRef:
        """The inverse of str(): `06_transformer/transformer:LayerNorm`."""
        place, _, name = text.partition(":")
        topic, _, module = place.partition("/")
        return cls(topic, module, name)


@dataclass
class TestRecord:
    """How one kata test ended (or one test file that failed to collect: `kata` None, no `::` in nodeid).

    outcome          passed, failed, skipped or error (a failure outside the test's call: setup);
    not_implemented  the failure was a NotImplementedError raised in a learner's file (a stub);
    message          the failure's message, "" when it passed; for a blocked test the one-line
                     error, "katas/05_attention/attention.py:324: SyntaxError: ...";
    location         the learner's file:line where the failure happened, or None;
    blocked_by       "katas/05_attention/attention.py:324 (SyntaxError)": the learner file whose
                     syntax or import error stopped the test's module from importing, or None;
    needs            the other kata whose stub raised NotImplementedError (`MultiHeadAttention.forward`);
    waiting_on       the katas, failing on their own, that this failing test called (set once the
                     run knows which katas fail; katakit.status decides again over every topic);
    calls            every kata the test called, directly or through other katas (KataRef strings);
    timed_out        the test's kata ran past pytest-timeout's limit (an endless loop?);
    slow             the test is marked `slow` (a training): katakit.cache keeps it while its code holds;
    source           the line that blocks the module (with a caret under a syntax error).
    """

    __test__ = False  # not a test class, for pytest

    nodeid: str
    topic: str
    module: str
    kata: str | None
    outcome: str
    not_implemented: bool = False
    message: str = ""
    location: str | None = None
    blocked_by: str | None = None
    needs: str | None = None
    waiting_on: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    timed_out: bool = False
    slow: bool = False
    source: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome in (FAILED, ERROR)

    @property
    def wrong(self) -> bool:
        """Failed for a reason of its own: not a stub, not a broken file."""
        return self.failed and not self.not_implemented and not self.blocked_by

    @property
    def collection_error(self) -> bool:
        """A test file that failed to collect."""
        return "::" not in self.nodeid and self.failed

    @property
    def kata_ref(self) -> KataRef | None:
        return KataRef(self.topic, self.module, self.kata) if self.kata else None

    @property
    def called(self) -> set[KataRef]:
        return {KataRef.parse(text) for text in self.calls}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestRecord:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)
