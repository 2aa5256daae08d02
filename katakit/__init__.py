"""Tooling for mech-interp-katas: the shape checker, the implementation switch, stub generation
and the learner's command line. Nothing in here is a kata: learners edit `katas/NN_topic/` only."""

from katakit.shapes import kata

__all__ = ["kata"]
