"""Assertions for kata tests whose failure messages a beginner can act on.

`assert_close` follows `torch.testing.assert_close` (same default tolerances per dtype) but is
written out here: torch's first call imports its distributed-tensor machinery, about 0.7 s of every
topic's test run, and its message does not say what the quantity was or what to fix.
"""

import torch
from torch import Tensor

# (rtol, atol) per dtype, as torch.testing.assert_close; exact for integers and booleans.
DEFAULT_TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.complex64: (1.3e-6, 1e-5),
    torch.complex128: (1e-7, 1e-7),
}


def assert_close(
    actual: object,
    expected: Tensor,
    *,
    what: str,
    hint: str = "",
    rtol: float | None = None,
    atol: float | None = None,
    check_dtype: bool = True,
    equal_nan: bool = False,
) -> None:
    """Assert that `actual` is a tensor of `expected`'s shape, dtype and values (within rtol, atol).

    `what` names the quantity ("the attention pattern"), `hint` the likely mistake ("softmax over
    the query axis instead of the key axis?").
    """
    advice = f"\nLikely mistake: {hint}" if hint else ""
    if not isinstance(actual, Tensor):
        raise AssertionError(f"{what} should be a tensor, got {type(actual).__name__}.{advice}")
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what} has shape {list(actual.shape)}, expected {list(expected.shape)}.{advice or ' Check the axes.'}"
        )
    if check_dtype and actual.dtype != expected.dtype:
        raise AssertionError(f"{what} has dtype {actual.dtype}, expected {expected.dtype}.{advice}")
    actual, expected = actual.detach().cpu(), expected.detach().cpu()
    if actual.dtype != expected.dtype:
        common = torch.promote_types(actual.dtype, expected.dtype)
        actual, expected = actual.to(common), expected.to(common)
    default_rtol, default_atol = DEFAULT_TOLERANCES.get(expected.dtype, (0.0, 0.0))
    rtol = default_rtol if rtol is None else rtol
    atol = default_atol if atol is None else atol
    close = torch.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan)
    if close.all():
        return
    wide = torch.complex128 if expected.is_complex() else torch.float64
    difference = (actual.to(wide) - expected.to(wide)).abs().nan_to_num(nan=float("inf"))
    worst = tuple(int(i) for i in torch.unravel_index(difference.argmax(), difference.shape))
    raise AssertionError(
        f"{what} is wrong: {int((~close).sum())} of {close.numel()} values differ (rtol={rtol:g}, atol={atol:g}).\n"
        f"The largest difference, {difference[worst].item():.3g}, is at index {list(worst)}: "
        f"got {actual[worst].item():.6g}, expected {expected[worst].item():.6g}.{advice}"
    )
