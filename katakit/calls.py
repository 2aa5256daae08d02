"""Which katas a test calls, directly or through other katas.

The `@kata` wrapper (katakit.shapes) notes every call while `recording()` is on; the pytest plugin
turns it on around each kata test, and blame follows these calls (katakit.blame): a test of
TransformerBlock that fails after calling a LayerNorm whose own tests fail waits on LayerNorm.
A kata is named by where it is defined: `06_transformer/transformer:LayerNorm` (KataRef's form).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from katakit.model import SIDES, KataRef

_recording: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("katas_calls", default=None)
_names: dict[Any, str | None] = {}


@contextlib.contextmanager
def recording(into: set[str]) -> Iterator[set[str]]:
    """Add to `into` every kata called inside this block."""
    token = _recording.set(into)
    try:
        yield into
    finally:
        _recording.reset(token)


def note(fn: Callable[..., Any]) -> None:
    """Note a call of kata `fn`, when a block records."""
    into = _recording.get()
    if into is None:
        return
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    if code not in _names:
        _names[code] = _kata_of(code.co_filename, getattr(fn, "__qualname__", code.co_name))
    name = _names[code]
    if name is not None:
        into.add(name)


def _kata_of(filename: str, qualname: str) -> str | None:
    """`06_transformer/transformer:LayerNorm` for `LayerNorm.forward` in `.../katas/06_transformer/transformer.py`."""
    path = Path(filename)
    if len(path.parts) < 3 or path.parent.parent.name not in SIDES:
        return None
    return str(KataRef(path.parent.name, path.stem, qualname.split(".")[0]))
