"""A failure's traceback shortened to what a learner should read (for katakit.explain).

pytest's short report, through the learner's and the test's frames only (frames of katakit,
jaxtyping, typeguard, pytest and torch hidden), without chained exceptions, a statement over
several lines (an `assert_close(...)` call) shown whole.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest

HIDDEN_PARTS = {"site-packages", "dist-packages", "katakit"}


def short(
    excinfo: pytest.ExceptionInfo[BaseException],
    shown: Callable[[Any], bool],
    absolute: bool,
    showlocals: bool = False,
    trailer: str | None = None,
    replace_message: list[str] | None = None,
    suggestion: str | None = None,
) -> Any:
    """pytest's short report of the failure through the entries `shown` keeps; None when it keeps
    none (pytest's report says more). `replace_message` replaces the error's lines; `suggestion`
    (Python's "Did you mean") is added to them; `trailer` goes last ("your code: ...")."""
    kept = [entry for entry in excinfo.traceback if shown(entry)]
    if not kept:
        return None
    report = excinfo.getrepr(
        style="short",
        chain=False,
        abspath=absolute,
        tbfilter=lambda info: info.traceback.filter(shown),
        showlocals=showlocals,
        funcargs=False,
    )
    traceback = getattr(report, "reprtraceback", None)
    entries = getattr(traceback, "reprentries", None)
    if traceback is None or not entries:
        return None
    if len(kept) == len(entries):  # a statement over several lines (an assert_close(...) call) in full
        for entry, lines in zip(kept, entries, strict=True):
            statement = _statement(entry)
            if len(statement) > 1:
                lines.lines = [f"    {line}" for line in statement] + [
                    line for line in lines.lines if line.startswith("E   ")
                ]
    last = entries[-1]
    if replace_message is not None:
        last.lines = [line for line in last.lines if not line.startswith("E   ")]
        last.lines += [f"E   {line}" for line in replace_message]
        if report.reprcrash is not None:
            report.reprcrash.message = replace_message[0]
    elif suggestion:
        last.lines.append(f"E   {suggestion}")
    if trailer and not traceback.extraline:
        traceback.extraline = trailer
    return report


def _statement(entry: Any, most: int = 8) -> list[str]:
    """The source of a traceback entry's whole statement, dedented, at most `most` lines."""
    try:
        lines = textwrap.dedent(str(entry.statement)).rstrip().splitlines()
    except Exception:
        return []
    return lines if len(lines) <= most else [*lines[: most - 1], "..."]
