"""What a kata promises beyond its shapes, checked on every call a kata test makes.

- **Inputs untouched.** A tensor argument (or a tensor in a list, tuple or dict argument) must come
  back with the same values, the same `requires_grad` and the same `.grad`, unless the kata is
  declared in place for it: `@in_place("x")` under `@kata`.
- **Detached results.** A kata declared `@detached` (under `@kata`) returns tensors that are not
  attached to the autograd graph.
- **Arguments used.** While a run records (`recording()`), every call notes which arguments with a
  default were given another value, so a gate can show that each one is tested (katakit.branches).

The checks run only while `checking()` is on: the pytest plugin turns it on for each kata test
(not for benchmarks, where copying inputs would skew the timings). A broken promise is an
AssertionError whose message names the kata and the argument.
"""

import contextlib
import contextvars
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

F = TypeVar("F", bound=Callable[..., Any])

IN_PLACE = "__kata_in_place__"
DETACHED = "__kata_detached__"
# Above this many elements an input's values are not copied: its version counter still catches
# every in-place torch operation on it.
COPY_LIMIT = 4_000_000

_checking: contextvars.ContextVar[bool] = contextvars.ContextVar("katas_checking", default=False)
_recording: contextvars.ContextVar[dict[str, set[str]] | None] = contextvars.ContextVar("katas_recording", default=None)


class BrokenPromise(AssertionError):
    """A kata changed its input, or returned a tensor still attached to the graph."""


def in_place(*names: str) -> Callable[[F], F]:
    """Declare that a kata changes these arguments in place (its docstring says so)."""

    def declare(fn: F) -> F:
        setattr(fn, IN_PLACE, frozenset(names))
        return fn

    return declare


def detached(fn: F) -> F:
    """Declare that a kata returns tensors detached from the autograd graph (its docstring says so)."""
    setattr(fn, DETACHED, True)
    return fn


@contextlib.contextmanager
def checking() -> Iterator[None]:
    """Check the promises of every kata called inside this block."""
    token = _checking.set(True)
    try:
        yield
    finally:
        _checking.reset(token)


@contextlib.contextmanager
def recording(into: dict[str, set[str]]) -> Iterator[dict[str, set[str]]]:
    """Note, for every kata called inside this block (`module:qualname`), the arguments with a
    default that were given another value."""
    token = _recording.set(into)
    try:
        yield into
    finally:
        _recording.reset(token)


@dataclass
class _Input:
    label: str  # `x`, or `tensors[1]`
    tensor: torch.Tensor
    version: int
    requires_grad: bool
    grad: torch.Tensor | None
    grad_version: int | None
    values: torch.Tensor | None


def _tensors(name: str, value: object) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, torch.Tensor):
                yield f"{name}[{index}]", item
    elif isinstance(value, dict):  # a state dict
        for key, item in value.items():
            if isinstance(item, torch.Tensor):
                yield f"{name}[{key!r}]", item


def _snapshot(label: str, tensor: torch.Tensor) -> _Input:
    copy = None
    if tensor.numel() <= COPY_LIMIT and tensor.layout == torch.strided:
        with torch.no_grad():
            copy = tensor.detach().clone()
    grad = tensor.grad if tensor.is_leaf else None
    return _Input(
        label,
        tensor,
        tensor._version,
        tensor.requires_grad,
        grad,
        grad._version if grad is not None else None,
        copy,
    )


def _same_values(before: torch.Tensor, after: torch.Tensor) -> bool:
    if before.shape != after.shape or before.dtype != after.dtype:
        return False
    if before.is_floating_point() or before.is_complex():
        return bool(((before == after) | (before.isnan() & after.isnan())).all())
    return torch.equal(before, after)


def _change(watched: _Input) -> str | None:
    """What the kata did to an input, or None."""
    tensor = watched.tensor
    if tensor._version != watched.version or (
        watched.values is not None and not _same_values(watched.values, tensor.detach())
    ):
        return (
            f"changed its input `{watched.label}` in place: the caller's tensor holds other values after the call. "
            f"Work on a copy ({watched.label.split('[')[0]}.clone()) or with operations that return a new tensor "
            "(y = x * 2, not x *= 2 or x.mul_(2))."
        )
    if tensor.requires_grad != watched.requires_grad:
        return (
            f"switched `requires_grad` of its input `{watched.label}` from {watched.requires_grad} to "
            f"{tensor.requires_grad}: the caller's tensor must stay as it was. Differentiate with respect to a copy: "
            "x.detach().clone().requires_grad_()."
        )
    grad = tensor.grad if tensor.is_leaf else None
    if grad is not watched.grad or (grad is not None and grad._version != watched.grad_version):
        return (
            f"left a gradient in `{watched.label}.grad`: the caller's tensor must stay as it was. "
            "Take gradients of a copy (x.detach().clone().requires_grad_()), or with torch.autograd.grad."
        )
    return None


def _attached(result: object) -> list[str]:
    return [label for label, tensor in _tensors("the result", result) if tensor.requires_grad]


def call(fn: Callable[..., Any], signature: inspect.Signature, args: tuple, kwargs: dict, run: Callable[..., Any]):
    """`run(*args, **kwargs)`: kata `fn`, shape-checked; its promises checked when asked to."""
    record, check = _recording.get(), _checking.get()
    if record is None and not check:
        return run(*args, **kwargs)
    try:
        arguments = signature.bind(*args, **kwargs).arguments
    except TypeError:  # wrong arguments: let the call itself say so
        return run(*args, **kwargs)
    if record is not None:
        _record(fn, signature, arguments, record)
    if not check:
        return run(*args, **kwargs)
    changing: frozenset[str] = getattr(fn, IN_PLACE, frozenset())
    watched = [
        _snapshot(label, tensor)
        for name, value in arguments.items()
        if name not in changing
        for label, tensor in _tensors(name, value)
    ]
    result = run(*args, **kwargs)
    name = getattr(fn, "__qualname__", "the kata")
    for each in watched:
        change = _change(each)
        if change:
            raise BrokenPromise(f"{name} {change}")
    if getattr(fn, DETACHED, False):
        attached = _attached(result)
        if attached:
            raise BrokenPromise(
                f"{name} returned {', '.join(attached)} still attached to the autograd graph (requires_grad=True); "
                "its docstring promises detached tensors: return t.detach()."
            )
    return result


def _record(
    fn: Callable[..., Any], signature: inspect.Signature, arguments: dict[str, object], into: dict[str, set[str]]
) -> None:
    used = into.setdefault(f"{fn.__module__}:{fn.__qualname__}", set())
    for name, value in arguments.items():
        default = signature.parameters[name].default
        if default is not inspect.Parameter.empty and _differs(value, default):
            used.add(name)


def _differs(value: object, default: object) -> bool:
    """Whether `value` is another value than `default` (tensors and other objects: unless it is it)."""
    if value is default:
        return False
    numbers = (int, float)
    if isinstance(value, numbers) and isinstance(default, numbers) and not isinstance(value, bool):
        return value != default
    if isinstance(default, bool | str) and type(value) is type(default):
        return value != default
    return True
