"""What a kata promises beyond its shapes, checked on the calls a kata test makes.

- **Arguments untouched.** Every argument comes back as the caller gave it, unless the kata is
  declared in place for it, as its docstring says: `@in_place("x")` under `@kata`.
  - A tensor (also one in a list, tuple or dict): the same values, `requires_grad` and `.grad`.
  - An `nn.Module` (`self` too, in a method of a module such as `forward`): every parameter and buffer
    keeps its values and its version counter (which moves at an in-place edit, even one undone before
    the return: whoever used the model meanwhile saw it), every submodule its `training` flag and its
    forward and backward hooks.
  - A dict or a list: the same keys, holding the same objects.
  - Any other object (a config): the same attributes (`vars`), compared shallowly.
  Not watched, as they change by design: a torch.Generator, an iterator, a function, and `self` of
  `__init__` or of a method of a class that is not a module (an optimiser's `step`).
- **Detached results.** A kata declared `@detached` returns tensors that are not attached to the
  autograd graph.
- **Differentiable results.** The result of `forward` of a module, and of a kata declared
  `@differentiable` (a loss, a patched run: its docstring means it to be differentiated), can be
  differentiated: autograd runs back through it to every leaf, leaving no `.grad` anywhere (not when a
  module has backward hooks, which would run). A `@differentiable` kata whose inputs did not require
  grad is called again on copies that do.
- **Transformed inputs.** A kata that can be called again (not in place; tensors, numbers, strings
  and sequences of them as arguments; a tensor or a sequence of tensors as result) is called again
  with every tensor argument non-contiguous (the same values; not one that requires grad or holds a
  single element), and, where the annotations of some
  arguments and of the result start with the same variadic dim (`*batch`, `...`), with one more
  leading axis (`torch.stack([x, x])`) and as a batch of one (`x.unsqueeze(0)`): the answers must agree
  (allclose for floats, equal otherwise). Each call again starts from the global RNG state the first
  call started from, and the RNG is left as the first call left it; a kata that drew from the global
  RNG is not given a batch of another size, whose draws could not agree.
- **Arguments used.** While a run records (`recording()`), every call notes which arguments with a
  default were given another value, so a gate can show that each one is tested (katakit.branches).

The checks run only while `checking()` is on: the pytest plugin turns it on for each kata test (not
for benchmarks, where copying inputs would skew the timings). The costly ones (copies of a module's
weights, the backward pass, the calls again) run on the first call of each kata in a test, and not
inside torch.func's transforms. A broken promise is an AssertionError whose message names the kata
and the argument.

One module per job: katakit.arguments watches the arguments, katakit.backward differentiates the
result, katakit.replays calls the kata again on transformed inputs; this one declares and decides.
"""

import contextlib
import contextvars
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from katakit import arguments as arguments_watch
from katakit import backward, replays

F = TypeVar("F", bound=Callable[..., Any])

IN_PLACE = "__kata_in_place__"
DETACHED = "__kata_detached__"
DIFFERENTIABLE = "__kata_differentiable__"


class BrokenPromise(AssertionError):
    """A kata changed an argument, returned a tensor still attached to the graph or one that cannot be
    differentiated, or gave another answer on the same inputs transformed."""


@dataclass
class _Test:
    """One kata test: the katas whose first call has had the costly checks."""

    sampled: set[object] = field(default_factory=set)


_checking: contextvars.ContextVar[_Test | None] = contextvars.ContextVar("katas_checking", default=None)
_recording: contextvars.ContextVar[dict[str, set[str]] | None] = contextvars.ContextVar("katas_recording", default=None)


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


def differentiable(fn: F) -> F:
    """Declare that a kata's result is meant to be differentiated (a loss, a forward pass with hooks)."""
    setattr(fn, DIFFERENTIABLE, True)
    return fn


@contextlib.contextmanager
def checking() -> Iterator[None]:
    """Check the promises of every kata called inside this block (one kata test)."""
    token = _checking.set(_Test())
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


@contextlib.contextmanager
def _unchecked() -> Iterator[None]:
    """The checker's own calls: the katas they reach are not checked again."""
    token = _checking.set(None)
    try:
        yield
    finally:
        _checking.reset(token)


# --- the call --------------------------------------------------------------------------------------


def _in_torch_func() -> bool:
    return bool(getattr(torch._C, "_are_functorch_transforms_active", lambda: False)())


def _unchecked_run(run: Callable[..., Any]) -> Callable[..., Any]:
    """`run`, its calls the checker's own: the katas they reach are not checked again."""

    def quietly(*args: Any, **kwargs: Any) -> Any:
        with _unchecked():
            return run(*args, **kwargs)

    return quietly


def call(fn: Callable[..., Any], signature: inspect.Signature, args: tuple, kwargs: dict, run: Callable[..., Any]):
    """`run(*args, **kwargs)`: kata `fn`, shape-checked; its promises checked when asked to."""
    record, test = _recording.get(), _checking.get()
    if record is None and test is None:
        return run(*args, **kwargs)
    try:
        arguments = signature.bind(*args, **kwargs).arguments
    except TypeError:  # wrong arguments: let the call itself say so
        return run(*args, **kwargs)
    if record is not None:
        _record(fn, signature, arguments, record)
    if test is None:
        return run(*args, **kwargs)
    # The costly checks, once per kata and test; not inside torch.func's transforms (vmap, grad), whose
    # tensors stand for a batch or a tangent that the checker's own calls would not see.
    first = fn not in test.sampled and not _in_torch_func()
    if first:
        test.sampled.add(fn)
    watches = arguments_watch.watched(fn, arguments, getattr(fn, IN_PLACE, frozenset()), copy=first)
    replayable = (
        first and not getattr(fn, IN_PLACE, None) and all(replays.replayable(value) for value in arguments.values())
    )
    rng = replays.rng_state() if replayable else None
    result = run(*args, **kwargs)
    name = getattr(fn, "__qualname__", "the kata")
    for watch in watches:
        change = watch.change()
        if change:
            raise BrokenPromise(f"{name} {change}")
    if getattr(fn, DETACHED, False):
        attached = [label for label, tensor in arguments_watch.tensors("the result", result) if tensor.requires_grad]
        if attached:
            raise BrokenPromise(
                f"{name} returned {', '.join(attached)} still attached to the autograd graph (requires_grad=True); "
                "its docstring promises detached tensors: return t.detach()."
            )
    differentiable = first and backward.is_differentiable(fn, arguments, getattr(fn, DIFFERENTIABLE, False))
    outputs = backward.attached_floats(result) if differentiable else []
    if outputs and not backward.has_backward_hooks(arguments):
        with _unchecked():
            problem = backward.problem(name, outputs, arguments)
        if problem:
            raise BrokenPromise(problem)
    if rng is not None and replays.tensor_answer(result):
        drew = not torch.equal(rng[0], torch.get_rng_state())
        grad_check = differentiable and not outputs and getattr(fn, DIFFERENTIABLE, False)
        replay = replays.Replay(_unchecked_run(run), signature, arguments, rng)
        problem = replays.problem(
            name, replay, result, replays.batch_of(replays.hints(fn), arguments), drew, grad_check
        )
        if problem:
            raise BrokenPromise(problem)
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
