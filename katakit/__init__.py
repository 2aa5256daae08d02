"""Tooling for mech-interp-katas: the shape checker, the implementation switch, the pytest plugin,
stub generation and the learner's `katas` command. Nothing in here is a kata: learners edit
`katas/NN_topic/` only. CONTRIBUTING.md has the map of its modules.

`kata` (the decorator every kata carries), and `in_place`, `detached` and `differentiable` (what a
kata declares about its arguments and results, katakit.promises) are imported on first use, so that tools which
do not check shapes (the `katas` command) start without importing jaxtyping or torch. `check`
runs a kata's tests on a function written in a notebook (katakit.notebook).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from katakit.notebook import check
    from katakit.promises import detached, differentiable, in_place
    from katakit.shapes import kata

__all__ = ["check", "detached", "differentiable", "in_place", "kata"]


def __getattr__(name: str) -> Any:
    if name == "kata":
        from katakit.shapes import kata

        return kata
    if name == "check":
        from katakit.notebook import check

        return check
    if name in ("in_place", "detached", "differentiable"):
        from katakit import promises

        return getattr(promises, name)
    raise AttributeError(f"module 'katakit' has no attribute {name!r}")
