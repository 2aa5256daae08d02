"""Tooling for mech-interp-katas: the shape checker, the implementation switch, the pytest plugin,
stub generation and the learner's `katas` command. Nothing in here is a kata: learners edit
`katas/NN_topic/` only. CONTRIBUTING.md has the map of its modules.

`kata` (the decorator every kata carries) is imported on first use, so that tools which do not
check shapes (the `katas` command) start without importing jaxtyping.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from katakit.shapes import kata

__all__ = ["kata"]


def __getattr__(name: str) -> Any:
    if name == "kata":
        from katakit.shapes import kata

        return kata
    raise AttributeError(f"module 'katakit' has no attribute {name!r}")
