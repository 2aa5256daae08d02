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
"""

import collections
import collections.abc
import contextlib
import contextvars
import functools
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

F = TypeVar("F", bound=Callable[..., Any])

IN_PLACE = "__kata_in_place__"
DETACHED = "__kata_detached__"
DIFFERENTIABLE = "__kata_differentiable__"
# Above this many elements an input's values are not copied: its version counter still catches
# every in-place torch operation on it.
COPY_LIMIT = 4_000_000
# The checker's own autograd.grad: a test may forbid the kata to call it (katakit.testing.forbid).
_autograd_grad = torch.autograd.grad
# rtol, atol (atol scaled by the largest magnitude of the answer) of a float answer computed again.
_TOLERANCES = {torch.float64: (1e-9, 1e-12), torch.float16: (1e-3, 1e-4), torch.bfloat16: (1e-2, 1e-3)}
_FLOAT32_TOLERANCE = (1e-5, 1e-6)
# Arguments a kata can be given again: nothing in them changes, whoever holds them.
_PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.layout)
_HOOKS = {
    "_forward_pre_hooks": "forward pre-hook",
    "_forward_hooks": "forward hook",
    "_backward_pre_hooks": "backward pre-hook",
    "_backward_hooks": "backward hook",
    "_forward_pre_hooks_with_kwargs": "forward pre-hook (with kwargs)",
    "_forward_hooks_with_kwargs": "forward hook (with kwargs)",
    "_forward_hooks_always_called": "forward hook (always called)",
}


@dataclass
class _Test:
    """One kata test: the katas whose first call has had the costly checks."""

    sampled: set[object] = field(default_factory=set)


_checking: contextvars.ContextVar[_Test | None] = contextvars.ContextVar("katas_checking", default=None)
_recording: contextvars.ContextVar[dict[str, set[str]] | None] = contextvars.ContextVar("katas_recording", default=None)


class BrokenPromise(AssertionError):
    """A kata changed an argument, returned a tensor still attached to the graph or one that cannot be
    differentiated, or gave another answer on the same inputs transformed."""


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


# --- arguments untouched ---------------------------------------------------------------------------


def _version(tensor: Tensor) -> int | None:
    try:
        return tensor._version
    except RuntimeError:  # an inference tensor (made under torch.inference_mode()) has no version counter
        return None


def same_values(before: Tensor, after: Tensor) -> bool:
    """Whether two tensors hold the same values exactly, of the same shape and dtype (NaN equals NaN)."""
    if before.shape != after.shape or before.dtype != after.dtype:
        return False
    if before.is_floating_point() or before.is_complex():
        return bool(((before == after) | (before.isnan() & after.isnan())).all())
    return torch.equal(before, after)


@dataclass
class _TensorWatch:
    label: str  # `x`, `tensors[1]`, or `model.blocks.0.attn.W_O` (weight=True)
    tensor: Tensor
    version: int | None
    requires_grad: bool
    grad: Tensor | None
    grad_version: int | None
    values: Tensor | None
    weight: bool

    @classmethod
    def of(cls, label: str, tensor: Tensor, copy: bool = True, weight: bool = False) -> "_TensorWatch":
        version = _version(tensor)
        values = None
        if (copy or version is None) and tensor.numel() <= COPY_LIMIT and tensor.layout == torch.strided:
            with torch.no_grad():
                values = tensor.detach().clone()
        grad = tensor.grad if tensor.is_leaf else None
        grad_version = _version(grad) if grad is not None else None
        return cls(label, tensor, version, tensor.requires_grad, grad, grad_version, values, weight)

    def change(self) -> str | None:
        """What the kata did to the tensor, or None."""
        tensor, label = self.tensor, self.label
        moved = self.version is not None and _version(tensor) != self.version
        differs = self.values is not None and not same_values(self.values, tensor.detach())
        if (moved or differs) and self.weight:
            if differs:
                return (
                    f"changed `{label}` in place: it holds other values after the call. Leave the caller's model as "
                    "it was: work on a copy (copy.deepcopy), or pass the change through the computation."
                )
            return (
                f"changed `{label}` during the call (in place, even if restored afterwards): any other user of the "
                "model meanwhile (a hook, autograd) sees the changed weight. Work on a copy, or pass the change "
                "through the computation."
            )
        if moved or differs:
            return (
                f"changed its input `{label}` in place: the caller's tensor holds other values after the call. "
                f"Work on a copy ({label.split('[')[0]}.clone()) or with operations that return a new tensor "
                "(y = x * 2, not x *= 2 or x.mul_(2))."
            )
        if tensor.requires_grad != self.requires_grad:
            return (
                f"switched `requires_grad` of its input `{label}` from {self.requires_grad} to "
                f"{tensor.requires_grad}: the caller's tensor must stay as it was. Differentiate with respect to a "
                "copy: x.detach().clone().requires_grad_()."
            )
        grad = tensor.grad if tensor.is_leaf else None
        if grad is not self.grad or (grad is not None and _version(grad) != self.grad_version):
            return (
                f"left a gradient in `{label}.grad`: the caller's tensor must stay as it was. "
                "Take gradients of a copy (x.detach().clone().requires_grad_()), or with torch.autograd.grad."
            )
        return None


def _dotted(label: str, name: str) -> str:
    return f"{label}.{name}" if name else label


@dataclass
class _Part:
    """A submodule as it was: its mode, its own parameters and buffers, and the keys of its hook dicts."""

    name: str
    module: nn.Module
    training: bool
    tensors: dict[str, Tensor | None]
    hooks: tuple[tuple[object, ...], ...]

    @classmethod
    def of(cls, name: str, module: nn.Module) -> "_Part":
        hooks = tuple(tuple(vars(module).get(kind, ())) for kind in _HOOKS)
        return cls(name, module, module.training, {**module._parameters, **module._buffers}, hooks)


@dataclass
class _ModuleWatch:
    label: str
    module: nn.Module
    parts: list[_Part]
    weights: list[_TensorWatch]

    @classmethod
    def of(cls, label: str, module: nn.Module, copy: bool) -> "_ModuleWatch":
        parts = [_Part.of(name, each) for name, each in module.named_modules()]
        weights = [
            _TensorWatch.of(_dotted(label, _dotted(part.name, key)), tensor, copy, weight=True)
            for part in parts
            for key, tensor in part.tensors.items()
            if tensor is not None
        ]
        return cls(label, module, parts, weights)

    def change(self) -> str | None:
        parts = [_Part.of(name, each) for name, each in self.module.named_modules()]
        befores = {part.name: part.module for part in self.parts}
        if [(part.name, part.module) for part in parts] != list(befores.items()):
            names = {part.name for part in parts} ^ set(befores)
            names |= {part.name for part in parts if befores.get(part.name, part.module) is not part.module}
            return (
                f"replaced, added or removed `{_dotted(self.label, min(names, key=len))}` of the caller's model: "
                "leave its modules as they were (work on a copy: copy.deepcopy)."
            )
        for before, after in zip(self.parts, parts, strict=True):
            keys = before.tensors.keys() | after.tensors.keys()
            replaced = sorted(key for key in keys if before.tensors.get(key) is not after.tensors.get(key))
            if replaced:
                return (
                    f"replaced, added or removed `{_dotted(self.label, _dotted(before.name, replaced[0]))}` of the "
                    "caller's model: leave its parameters and buffers as they were (work on a copy: copy.deepcopy)."
                )
        for weight in self.weights:
            change = weight.change()
            if change:
                return change
        for before, after in zip(self.parts, parts, strict=True):
            if before.training != after.training:
                now, was = ("training", "eval") if after.training else ("eval", "training")
                return (
                    f"left `{_dotted(self.label, after.name)}` in {now} mode (it was in {was} mode): put every "
                    "module back in the mode it was in (was_training = model.training, then "
                    "model.train(was_training))."
                )
        for before, after in zip(self.parts, parts, strict=True):
            for kind, old, new in zip(_HOOKS, before.hooks, after.hooks, strict=True):
                if old != new:
                    return _hooks_changed(_dotted(self.label, after.name), _HOOKS[kind], old, new)
        return None


def _hooks_changed(where: str, kind: str, before: tuple[object, ...], after: tuple[object, ...]) -> str:
    added, removed = len(set(after) - set(before)), len(set(before) - set(after))
    if added:
        return (
            f"left {added} {kind}{'s' if added > 1 else ''} on `{where}`: remove every hook you register before "
            "returning (handle.remove(), in a finally: block, so that it runs even when the forward pass raises)."
        )
    return (
        f"removed {removed} {kind}{'s' if removed > 1 else ''} from `{where}`, which the caller had registered: "
        "remove only the hooks you registered."
    )


def _same_object(before: object, after: object) -> bool:
    return before is after or (type(before) is type(after) and isinstance(before, _PLAIN) and before == after)


@dataclass
class _ContainerWatch:
    label: str
    container: dict | list
    items: dict[object, object]

    @classmethod
    def of(cls, label: str, container: dict | list) -> "_ContainerWatch":
        return cls(label, container, _items(container))

    def change(self) -> str | None:
        items, before = _items(self.container), self.items
        removed = [key for key in before if key not in items]
        added = [key for key in items if key not in before]
        replaced = [key for key in before if key in items and not _same_object(before[key], items[key])]
        if not (removed or added or replaced):
            return None
        if isinstance(self.container, dict):
            what = "; ".join(
                f"{verb} {', '.join(map(repr, keys))}"
                for verb, keys in (("removed", removed), ("added", added), ("replaced the item at", replaced))
                if keys
            )
            copy = f"dict({self.label})"
        elif removed or added:
            what, copy = f"its length went from {len(before)} to {len(items)}", f"list({self.label})"
        else:
            what, copy = f"replaced item {', '.join(map(str, replaced))}", f"list({self.label})"
        return (
            f"changed the caller's `{self.label}`: {what}. The caller's {type(self.container).__name__} must stay as "
            f"it was: work on a copy ({copy})."
        )


def _items(container: dict | list) -> dict[object, object]:
    return dict(container) if isinstance(container, dict) else dict(enumerate(container))


@dataclass
class _AttributesWatch:
    label: str
    holder: object
    attributes: dict[str, object]

    def change(self) -> str | None:
        after, before = vars(self.holder), self.attributes
        changed = sorted(
            name
            for name in before.keys() | after.keys()
            if name not in before or name not in after or not _same_object(before[name], after[name])
        )
        if not changed:
            return None
        return (
            f"changed the caller's `{self.label}`: {', '.join(changed)}. Leave the caller's object as it was: read "
            f"it, or change a copy (copy.copy({self.label}), dataclasses.replace)."
        )


def _tensors(name: str, value: object) -> Iterator[tuple[str, Tensor]]:
    if isinstance(value, Tensor):
        yield name, value
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, Tensor):
                yield f"{name}[{index}]", item
    elif isinstance(value, dict):  # a state dict
        for key, item in value.items():
            if isinstance(item, Tensor):
                yield f"{name}[{key!r}]", item


def _changes_by_design(value: object) -> bool:
    return (
        callable(value)
        or isinstance(value, type | types.ModuleType | torch.Generator | collections.abc.Iterator)
        or not hasattr(value, "__dict__")
    )


Watch = _TensorWatch | _ModuleWatch | _ContainerWatch | _AttributesWatch


def _watches(label: str, value: object, copy: bool) -> list[Watch]:
    if isinstance(value, nn.Module):
        return [_ModuleWatch.of(label, value, copy)]
    watches: list[Watch] = [_TensorWatch.of(name, tensor) for name, tensor in _tensors(label, value)]
    if isinstance(value, dict | list):
        watches.append(_ContainerWatch.of(label, value))
    elif not isinstance(value, Tensor | tuple) and not _changes_by_design(value):
        watches.append(_AttributesWatch(label, value, dict(vars(value))))
    return watches


def _watched(fn: Callable[..., Any], arguments: dict[str, object], copy: bool) -> list[Watch]:
    changing: frozenset[str] = getattr(fn, IN_PLACE, frozenset())
    watches = []
    for name, value in arguments.items():
        if name in changing:
            continue
        if name == "self" and (fn.__name__ == "__init__" or not isinstance(value, nn.Module)):
            continue  # an object's own methods change it by design; a module's forward does not
        watches += _watches(name, value, copy)
    return watches


# --- differentiable results ------------------------------------------------------------------------


def _is_differentiable(fn: Callable[..., Any], arguments: dict[str, object]) -> bool:
    if getattr(fn, DIFFERENTIABLE, False):
        return True
    return fn.__name__ == "forward" and isinstance(arguments.get("self"), nn.Module)


def _attached_floats(result: object) -> list[Tensor]:
    return [t for _, t in _tensors("", result) if t.requires_grad and t.is_floating_point()]


def _has_backward_hooks(arguments: dict[str, object]) -> bool:
    hooked = [nn.modules.module._global_backward_hooks, nn.modules.module._global_backward_pre_hooks]
    for value in arguments.values():
        if isinstance(value, nn.Module):
            hooked += [
                getattr(m, kind, {}) for m in value.modules() for kind in ("_backward_hooks", "_backward_pre_hooks")
            ]
    return any(hooked)


def _leaves(outputs: list[Tensor], arguments: Mapping[str, object]) -> list[Tensor]:
    """What autograd differentiates outputs with respect to: the leaves of the kata's part of the graph,
    and the arguments that are not leaves (the caller's part of the graph stays out of it)."""
    given = [t for name, value in arguments.items() for _, t in _tensors(name, value) if t.requires_grad]
    inputs = {id(t): t for t in given if t.grad_fn is not None}
    stops = {t.grad_fn for t in inputs.values()}
    seen: set[object] = set()
    nodes = [t.grad_fn for t in outputs]
    while nodes:
        node = nodes.pop()
        if node is None or node in seen or node in stops:
            continue
        seen.add(node)
        variable = getattr(node, "variable", None)  # an AccumulateGrad: a leaf
        if isinstance(variable, Tensor):
            inputs.setdefault(id(variable), variable)
        nodes.extend(following for following, _ in node.next_functions)
    return list(inputs.values())


def _backward_error(outputs: list[Tensor], arguments: Mapping[str, object]) -> str | None:
    """Why autograd cannot differentiate outputs, or None; it leaves no .grad behind."""
    inputs = _leaves(outputs, arguments)
    if not inputs:
        return None
    kept = [(t, t.grad) for t in inputs if not t.is_leaf and t.retains_grad]
    try:
        _autograd_grad(outputs, inputs, [torch.ones_like(t) for t in outputs], retain_graph=True, allow_unused=True)
    except RuntimeError as error:
        return str(error).strip().splitlines()[0].split(" Hint:")[0].rstrip(".")
    finally:
        for tensor, grad in kept:  # autograd.grad fills .grad of a tensor that retains it
            tensor.grad = grad
    return None


def _check_backward(name: str, outputs: list[Tensor], arguments: Mapping[str, object]) -> None:
    error = _backward_error(outputs, arguments)
    if error:
        raise BrokenPromise(
            f'{name}\'s result cannot be differentiated: autograd says "{error}". Its result is meant to be '
            "differentiated (a training step runs backward() through it). An in-place update of a tensor that "
            "autograd saved breaks it: write x = x + ... instead of x += ... (and x = x.clone() before x[i] = ...), "
            "and never edit a weight during the call."
        )


# --- transformed inputs ----------------------------------------------------------------------------


def _replayable(value: object) -> bool:
    if isinstance(value, (Tensor, *_PLAIN)):
        return True
    return isinstance(value, list | tuple) and all(_replayable(item) for item in value)


def _tensor_answer(result: object) -> bool:
    if isinstance(result, Tensor):
        return True
    return isinstance(result, list | tuple) and bool(result) and all(isinstance(item, Tensor) for item in result)


@functools.cache
def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
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
class _Batch:
    dim: str  # `*batch` or `...`
    names: list[str]  # the arguments whose annotation it leads
    annotation: str  # the first one's, as written


def _batch(hints: dict[str, Any], arguments: dict[str, object]) -> _Batch | None:
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
            return _Batch(variadic, names, written[variadic])
    return None


def _scattered(tensor: Tensor) -> Tensor:
    """The values of tensor, laid out in memory backwards with a gap after each: far from contiguous."""
    backwards = tensor.new_empty((*reversed(tensor.shape[1:]), 2 * tensor.shape[0]))
    view = backwards.permute(*reversed(range(tensor.dim())))[::2]
    with torch.no_grad():
        view.copy_(tensor)
    return view


def _rng_state() -> tuple[Tensor, list[Tensor] | None]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _set_rng_state(state: tuple[Tensor, list[Tensor] | None]) -> None:
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
class _Replay:
    """Calls the kata again with some arguments replaced, from the global RNG state of the first call."""

    run: Callable[..., Any]
    signature: inspect.Signature
    arguments: dict[str, object]
    rng: tuple[Tensor, list[Tensor] | None]

    def __call__(self, replaced: Mapping[str, object]) -> object:
        bound = inspect.BoundArguments(self.signature, collections.OrderedDict({**self.arguments, **replaced}))
        _set_rng_state(self.rng)
        with _unchecked():
            return self.run(*bound.args, **bound.kwargs)


def _listed(names: list[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def _check_contiguity(kata: str, replay: _Replay, result: object) -> None:
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
        return
    problem = _disagreement(replay, scattered, result)
    if problem is None:
        return
    if len(scattered) > 1:  # name the argument that is enough to show it
        for name, value in scattered.items():
            alone = _disagreement(replay, {name: value}, result)
            if alone is not None:
                scattered, problem = {name: value}, alone
                break
    names = list(scattered)
    raise BrokenPromise(
        f"{kata} gives another answer when {_listed(names)} {'is' if len(names) == 1 else 'are'} not contiguous "
        f"(the same values, with gaps between them in memory): {problem}. `.view` needs contiguous memory, "
        "`.reshape` does not; never rely on a tensor's strides or storage."
    )


def _disagreement(replay: _Replay, replaced: Mapping[str, object], expected: object) -> str | None:
    try:
        actual = replay(replaced)
    except Exception as error:  # noqa: BLE001 - the kata's own error is the answer to report
        said = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() else ""
        return f"it raised {type(error).__name__}: {said}"
    return None if _agree(expected, actual) else _difference(expected, actual)


def _check_batches(kata: str, replay: _Replay, result: object, batch: _Batch) -> None:
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
            raise BrokenPromise(
                f"{kata} gives another answer when {_listed(batch.names)} {how}: {problem}. Its annotation "
                f"`{batch.annotation}` allows any number of leading axes ({batch.dim}): index from the end "
                "(dim=-1, x.shape[-1], x.mT, einops' '...'), never from the front."
            )


def _map(result: object, fn: Callable[[Tensor], Tensor]) -> object:
    if isinstance(result, Tensor):
        return fn(result.detach())
    return [fn(item.detach()) for item in typing.cast(list, result)]


def _check_again(
    kata: str, replay: _Replay, result: object, batch: _Batch | None, drew: bool, grad_check: bool
) -> None:
    after = _rng_state()
    try:
        if grad_check:
            _check_differentiable_copies(kata, replay)
        _check_contiguity(kata, replay, result)
        if batch is not None and not drew:
            _check_batches(kata, replay, result, batch)
    finally:
        _set_rng_state(after)


def _check_differentiable_copies(kata: str, replay: _Replay) -> None:
    """A @differentiable kata called without gradients: call it on copies of its float tensors that
    require grad, and differentiate that."""
    copies = {
        name: value.detach().clone().requires_grad_()
        for name, value in replay.arguments.items()
        if isinstance(value, Tensor) and value.is_floating_point()
    }
    if not copies or torch.is_inference_mode_enabled():
        return
    try:
        with torch.enable_grad():
            result = replay(copies)
    except Exception as error:  # noqa: BLE001 - the kata's own error is the answer to report
        raise BrokenPromise(
            f"{kata} raised {type(error).__name__} when {_listed(list(copies))} "
            f"{'require' if len(copies) > 1 else 'requires'} grad: {str(error).strip()[:300]}. Its result is meant "
            "to be differentiated: work with the tensors as they are, without .numpy() or in-place edits of them."
        ) from error
    outputs = _attached_floats(result)
    if not outputs:
        raise BrokenPromise(
            f"{kata}'s result is not attached to the autograd graph of {_listed(list(copies))}, although "
            f"{'they require' if len(copies) > 1 else 'it requires'} grad: its result is meant to be differentiated. "
            "Stay in torch operations all the way "
            "(no .item(), .detach(), .tolist(), numpy or torch.no_grad() on the way)."
        )
    _check_backward(kata, outputs, copies)


# --- the call --------------------------------------------------------------------------------------


def _in_torch_func() -> bool:
    return bool(getattr(torch._C, "_are_functorch_transforms_active", lambda: False)())


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
    watches = _watched(fn, arguments, copy=first)
    replayable = first and not getattr(fn, IN_PLACE, None) and all(_replayable(value) for value in arguments.values())
    rng = _rng_state() if replayable else None
    result = run(*args, **kwargs)
    name = getattr(fn, "__qualname__", "the kata")
    for watch in watches:
        change = watch.change()
        if change:
            raise BrokenPromise(f"{name} {change}")
    if getattr(fn, DETACHED, False):
        attached = [label for label, tensor in _tensors("the result", result) if tensor.requires_grad]
        if attached:
            raise BrokenPromise(
                f"{name} returned {', '.join(attached)} still attached to the autograd graph (requires_grad=True); "
                "its docstring promises detached tensors: return t.detach()."
            )
    differentiable = first and _is_differentiable(fn, arguments)
    outputs = _attached_floats(result) if differentiable else []
    if outputs and not _has_backward_hooks(arguments):
        with _unchecked():
            _check_backward(name, outputs, arguments)
    if rng is not None and _tensor_answer(result):
        drew = not torch.equal(rng[0], torch.get_rng_state())
        grad_check = differentiable and not outputs and getattr(fn, DIFFERENTIABLE, False)
        _check_again(
            name, _Replay(run, signature, arguments, rng), result, _batch(_hints(fn), arguments), drew, grad_check
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
