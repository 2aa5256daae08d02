"""Arguments untouched: a watch on each argument of a kata call, and what the kata did to it.

A tensor (also one in a list, tuple or dict): the same values, `requires_grad` and `.grad`. An
`nn.Module`: every parameter and buffer keeps its values and its version counter (which moves at an
in-place edit, even one undone before the return), every submodule its `training` flag and its hooks.
A dict or a list: the same keys, holding the same objects. Any other object (a config): the same
attributes (`vars`), compared shallowly. A watch's `change()` says, in the learner's terms, what
changed, or None (katakit.promises raises it).
"""

import collections.abc
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

# Above this many elements an input's values are not copied: its version counter still catches
# every in-place torch operation on it.
COPY_LIMIT = 4_000_000
# Values that nothing changes, whoever holds them: compared by value, and a kata can be given them again.
PLAIN = (bool, int, float, complex, str, bytes, type(None), torch.dtype, torch.device, torch.layout)
_HOOKS = {
    "_forward_pre_hooks": "forward pre-hook",
    "_forward_hooks": "forward hook",
    "_backward_pre_hooks": "backward pre-hook",
    "_backward_hooks": "backward hook",
    "_forward_pre_hooks_with_kwargs": "forward pre-hook (with kwargs)",
    "_forward_hooks_with_kwargs": "forward hook (with kwargs)",
    "_forward_hooks_always_called": "forward hook (always called)",
}


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
    return before is after or (type(before) is type(after) and isinstance(before, PLAIN) and before == after)


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


def tensors(name: str, value: object) -> Iterator[tuple[str, Tensor]]:
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
    watches: list[Watch] = [_TensorWatch.of(name, tensor) for name, tensor in tensors(label, value)]
    if isinstance(value, dict | list):
        watches.append(_ContainerWatch.of(label, value))
    elif not isinstance(value, Tensor | tuple) and not _changes_by_design(value):
        watches.append(_AttributesWatch(label, value, dict(vars(value))))
    return watches


def watched(fn: Callable[..., Any], arguments: dict[str, object], changing: frozenset[str], copy: bool) -> list[Watch]:
    """A watch on each argument of a call of `fn` but those it changes by design: `changing` (declared
    in place) and `self` of `__init__` or of a method of a class that is not a module."""
    watches = []
    for name, value in arguments.items():
        if name in changing:
            continue
        if name == "self" and (fn.__name__ == "__init__" or not isinstance(value, nn.Module)):
            continue  # an object's own methods change it by design; a module's forward does not
        watches += _watches(name, value, copy)
    return watches
