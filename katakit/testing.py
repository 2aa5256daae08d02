"""Assertions for kata tests whose failure messages a beginner can act on."""

import torch
from torch import Tensor


def assert_close(actual: object, expected: Tensor, *, what: str, hint: str = "", **tolerances) -> None:
    """Assert that `actual` is a tensor of `expected`'s shape and values.

    `what` names the quantity ("the attention pattern"), `hint` the likely mistake ("softmax over
    the query axis instead of the key axis?"); `tolerances` go to `torch.testing.assert_close`
    (atol, rtol, check_dtype, ...).
    """
    advice = f"\nLikely mistake: {hint}" if hint else ""
    if not isinstance(actual, Tensor):
        raise AssertionError(f"{what} should be a tensor, got {type(actual).__name__}.{advice}")
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what} has shape {list(actual.shape)}, expected {list(expected.shape)}.{advice or ' Check the axes.'}"
        )
    torch.testing.assert_close(
        actual, expected, msg=lambda default: f"{what} is wrong. {default}{advice}", **tolerances
    )
