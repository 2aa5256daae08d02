"""Differentiable results: autograd runs back through a kata's result to every leaf of its part of
the graph, with torch.autograd.grad, leaving no `.grad` anywhere (for katakit.promises)."""

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from katakit.arguments import tensors

# The checker's own autograd.grad: a test may forbid the kata to call it (katakit.testing.forbid).
_autograd_grad = torch.autograd.grad


def is_differentiable(fn: Callable[..., Any], arguments: dict[str, object], declared: bool) -> bool:
    """Whether a call's result is meant to be differentiated: declared so, or a module's forward."""
    if declared:
        return True
    return fn.__name__ == "forward" and isinstance(arguments.get("self"), nn.Module)


def attached_floats(result: object) -> list[Tensor]:
    return [t for _, t in tensors("", result) if t.requires_grad and t.is_floating_point()]


def has_backward_hooks(arguments: dict[str, object]) -> bool:
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
    given = [t for name, value in arguments.items() for _, t in tensors(name, value) if t.requires_grad]
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


def problem(name: str, outputs: list[Tensor], arguments: Mapping[str, object]) -> str | None:
    """What goes wrong when autograd differentiates kata `name`'s outputs, in the learner's terms, or None."""
    error = _backward_error(outputs, arguments)
    if error:
        return (
            f'{name}\'s result cannot be differentiated: autograd says "{error}". Its result is meant to be '
            "differentiated (a training step runs backward() through it). An in-place update of a tensor that "
            "autograd saved breaks it: write x = x + ... instead of x += ... (and x = x.clone() before x[i] = ...), "
            "and never edit a weight during the call."
        )
    return None
