"""Transformed inputs: a kata called again on the same values laid out otherwise (not contiguous)
or batched otherwise (one more leading axis, a batch of one) must give the same answer; and a
@differentiable kata called without gradients is called again on copies that require grad (for
katakit.promises). Each call again starts from the global RNG state the first call started from.
"""

import collections
import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from katakit import backward
from katakit.arguments import PLAIN

# rtol, atol (atol scaled by the largest magnitude of the answer) of a float answer computed again.
_TOLERANCES = {torch.float64: (1e-9, 1e-12), torch.float16: (1e-3, 1e-4), torch.bfloat16: (1e-2, 1e-3)}
_FLOAT32_TOLERANCE = (1e-5, 1e-6)


def replayable(value: object) -> bool:
    if isinstance(value, (Tensor, *PLAIN)):
        return True
    return isinstance(value, list | tuple) and all(replayable(item) for item in value)


def tensor_answer(result: object) -> bool:
    if isinstance(result, Tensor):
        return True
    return isinstance(result, list | tuple) and bool(result) and all(isinstance(item, Tensor) for item in result)


@functools.cache
def hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that cannot be resolved: no transform relies on it
        return {}


def _arrays(annotation: object) -> list[Any]:
    """The jaxtyping array types in an annotation (`Float[Tensor, "*batch d"]`, inside `| None` or tuple[...])."""
    if isinstance(getattr(annotation, "dims", None), tuple) and hasattr(annotation, "dim_str"):
        return [annotation]
    return [array for argument in typing.get_args(annotation) for array in _arrays(argument)]


def _variadic(dim: object) -> str | None:
    kind = type(dim).__name__
    if kind == "_NamedVariadicDim":
        return f"*{dim.name}"  # type: ignore[attr-defined]
    return "..." if kind == "_AnonymousVariadicDim" else None


@dataclass
class Batch:
    dim: str  # `*batch` or `...`
    names: list[str]  # the arguments whose annotation it leads
    annotation: str  # the first one's, as written


def batch_of(hints: dict[str, Any], arguments: dict[str, object]) -> Batch | None:
    """The variadic dim that leads the annotations of some tensor arguments and of every tensor of the
    result, and appears nowhere else in the signature; None if there is none."""
    leading: dict[str, list[str]] = {}
    written: dict[str, str] = {}
    elsewhere: set[str] = set()
    for name, value in arguments.items():
        for array in _arrays(hints.get(name)):
            for index, dim in enumerate(array.dims):
                variadic = _variadic(dim)
                if variadic is not None and index == 0 and isinstance(value, Tensor):
                    if name not in leading.setdefault(variadic, []):
                        leading[variadic].append(name)
                    written.setdefault(variadic, array.dim_str)
                elif variadic is not None:
                    elsewhere.add(variadic)
    results = [array.dims for array in _arrays(hints.get("return"))]
    for variadic, names in leading.items():
        if variadic in elsewhere or not results:
            continue
        if all(
            dims and _variadic(dims[0]) == variadic and variadic not in map(_variadic, dims[1:]) for dims in results
        ):
            return Batch(variadic, names, written[variadic])
    return None


def _scattered(tensor: Tensor) -> Tensor:
    """The values of tensor, laid out in memory backwards with a gap after each: far from contiguous."""
    backwards = tensor.new_empty((*reversed(tensor.shape[1:]), 2 * tensor.shape[0]))
    view = backwards.permute(*reversed(range(tensor.dim())))[::2]
    with torch.no_grad():
        view.copy_(tensor)
    return view


def rng_state() -> tuple[Tensor, list[Tensor] | None]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple[Tensor, list[Tensor] | None]) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


def _agree(expected: object, actual: object) -> bool:
    if isinstance(expected, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(expected)
            and all(_agree(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if not isinstance(expected, Tensor) or not isinstance(actual, Tensor):
        return False
    expected, actual = expected.detach(), actual.detach()
    if (expected.shape, expected.dtype, expected.device) != (actual.shape, actual.dtype, actual.device):
        return False
    if not (expected.is_floating_point() or expected.is_complex()):
        return torch.equal(expected, actual)
    rtol, atol = _TOLERANCES.get(expected.dtype, _FLOAT32_TOLERANCE)
    finite = expected[expected.isfinite()]
    scale = max(1.0, float(finite.abs().max())) if finite.numel() else 1.0
    return torch.allclose(actual, expected, rtol=rtol, atol=atol * scale, equal_nan=True)


def _difference(expected: object, actual: object) -> str:
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple) and len(expected) == len(actual):
        return next(
            f"item {i}: {_difference(e, a)}"
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            if not _agree(e, a)
        )
    if not isinstance(expected, Tensor) or not isinstance(actual, Tensor):
        return f"it returned {type(actual).__name__} instead of {type(expected).__name__}"
    if expected.shape != actual.shape:
        return f"it returned shape {list(actual.shape)} instead of {list(expected.shape)}"
    if expected.dtype != actual.dtype:
        return f"it returned {actual.dtype} instead of {expected.dtype}"
    wide = torch.complex128  # holds every dtype's values, bools included
    gap = (actual.detach().to(wide) - expected.detach().to(wide)).abs().nan_to_num(nan=float("inf")).max()
    return f"the values differ by up to {float(gap):.3g}"


@dataclass
class Replay:
    """Calls the kata again with some arguments replaced, from the global RNG state of the first call."""

    run: Callable[..., Any]
    signature: inspect.Signature
    arguments: dict[str, object]
    rng: tuple[Tensor, list[Tensor] | None]

    def __call__(self, replaced: Mapping[str, object]) -> object:
        bound = inspect.BoundArguments(self.signature, collections.OrderedDict({**self.arguments, **replaced}))
        set_rng_state(self.rng)
        return self.run(*bound.args, **bound.kwargs)


def _listed(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _contiguity_problem(kata: str, replay: Replay, result: object) -> str | None:
    scattered = {
        name: _scattered(value)
        for name, value in replay.arguments.items()
        if isinstance(value, Tensor)
        and value.dim() > 0
        and value.numel() > 1
        and not value.requires_grad
        and value.layout == torch.strided
    }
    if not scattered:
        return None
    problem = _disagreement(replay, scattered, result)
    if problem is None:
        return None
    if len(scattered) > 1:  # name the argument that is enough to show it
        for name, value in scattered.items():
            alone = _disagreement(replay, {name: value}, result)
            if alone is not None:
                scattered, problem = {name: value}, alone
                break
    names = list(scattered)
    return (
        f"{kata} gives another answer when {_listed(names)} {'is' if len(names) == 1 else 'are'} not contiguous "
        f"(the same values, with gaps between them in memory): {problem}. `.view` needs contiguous memory, "
        "`.reshape` does not; never rely on a tensor's strides or storage."
    )


def _disagreement(replay: Replay, replaced: Mapping[str, object], expected: object) -> str | None:
    try:
        actual = replay(replaced)
    except Exception as error:  # noqa: BLE001 - the kata's own error is the answer to report
        said = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else ""
        return f"it raised {type(error).__name__}: {said}"
    return None if _agree(expected, actual) else _difference(expected, actual)


def _batch_problem(kata: str, replay: Replay, result: object, batch: Batch) -> str | None:
    given = {name: typing.cast(Tensor, replay.arguments[name]).detach() for name in batch.names}
    several = len(given) > 1
    transforms = (
        (
            {name: torch.stack([value, value]) for name, value in given.items()},
            _map(result, lambda t: torch.stack([t, t])),
            f"{'have' if several else 'has'} one more leading (batch) axis (torch.stack([x, x]){' each' * several})",
        ),
        (
            {name: value.unsqueeze(0) for name, value in given.items()},
            _map(result, lambda t: t.unsqueeze(0)),
            f"{'are' if several else 'is'} a batch of one (x.unsqueeze(0){' each' * several})",
        ),
    )
    for replaced, expected, how in transforms:
        problem = _disagreement(replay, replaced, expected)
        if problem is not None:
            return (
                f"{kata} gives another answer when {_listed(batch.names)} {how}: {problem}. Its annotation "
                f"`{batch.annotation}` allows any number of leading axes ({batch.dim}): index from the end "
                "(dim=-1, x.shape[-1], x.mT, einops' '...'), never from the front."
            )
    return None


def _map(result: object, fn: Callable[[Tensor], Tensor]) -> object:
    if isinstance(result, Tensor):
        return fn(result.detach())
    return [fn(item.detach()) for item in typing.cast(list, result)]


def problem(kata: str, replay: Replay, result: object, batch: Batch | None, drew: bool, grad_check: bool) -> str | None:
    """What goes wrong when kata `kata` is called again: on copies that require grad (`grad_check`), on
    non-contiguous inputs, and, when it did not draw from the global RNG (`drew`), batched otherwise; or
    None. The global RNG is left as the first call left it."""
    after = rng_state()
    try:
        return (
            (_differentiable_copies_problem(kata, replay) if grad_check else None)
            or _contiguity_problem(kata, replay, result)
            or (_batch_problem(kata, replay, result, batch) if batch is not None and not drew else None)
        )
    finally:
        set_rng_state(after)


def _differentiable_copies_problem(kata: str, replay: Replay) -> str | None:
    """A @differentiable kata called without gradients: call it on copies of its float tensors that
    require grad, and differentiate that."""
    copies = {
        name: value.detach().clone().requires_grad_()
        for name, value in replay.arguments.items()
        if isinstance(value, Tensor) and value.is_floating_point()
    }
    if not copies or torch.is_inference_mode_enabled():
        return None
    try:
        with torch.enable_grad():
            result = replay(copies)
    except Exception as error:  # noqa: BLE001 - the kata's own error is the answer to report
        return (
            f"{kata} raised {type(error).__name__} when {_listed(list(copies))} "
            f"{'require' if len(copies) > 1 else 'requires'} grad: {str(error).strip()[:300]}. Its result is meant "
            "to be differentiated: work with the tensors as they are, without .numpy() or in-place edits of them."
        )
    outputs = backward.attached_floats(result)
    if not outputs:
        return (
            f"{kata}'s result is not attached to the autograd graph of {_listed(list(copies))}, although "
            f"{'they require' if len(copies) > 1 else 'it requires'} grad: its result is meant to be differentiated. "
            "Stay in torch operations all the way "
            "(no .item(), .detach(), .tolist(), numpy or torch.no_grad() on the way)."
        )
    return backward.problem(kata, outputs, copies)
