"""Assertions for kata tests whose failure messages a beginner can act on: `assert_close`, and
`forbid` (a docstring's "do not call X") and `calls` (a docstring's "write it with einsum"); and
`random_hf_gpt2`, the Hugging Face GPT-2 oracle that topics 06 and 08 compare the learner's model with.

`assert_close` follows `torch.testing.assert_close` (same default tolerances per dtype) but is
written out here: torch's first call imports its distributed-tensor machinery, about 0.7 s of every
topic's test run, and its message does not say what the quantity was or what to fix.
"""

import ast
import contextlib
import inspect
import sys
import textwrap
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, NoReturn

import torch
from torch import Tensor

from katakit.model import LIKELY_MISTAKE

# (rtol, atol) per dtype, as torch.testing.assert_close; exact for integers and booleans.
DEFAULT_TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
    torch.complex64: (1.3e-6, 1e-5),
    torch.complex128: (1e-7, 1e-7),
}


DTYPE_MISTAKE = (
    f"{LIKELY_MISTAKE} a tensor made without the input's dtype (torch.zeros(n) and torch.tensor(0.5) are float32: "
    "pass dtype=x.dtype, or use torch.zeros_like(x)), or a .float()/.double()/.to(...) on the way."
)


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
    advice = f"\n{LIKELY_MISTAKE} {hint}" if hint else ""
    if not isinstance(actual, Tensor):
        raise AssertionError(f"{what} should be a tensor, got {type(actual).__name__}.{advice}")
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what} has shape {list(actual.shape)}, expected {list(expected.shape)}.{advice or ' Check the axes.'}"
        )
    if check_dtype and actual.dtype != expected.dtype:  # `hint` names a mistake in the values, not this one
        raise AssertionError(f"{what} has dtype {actual.dtype}, expected {expected.dtype}.\n{DTYPE_MISTAKE}")
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


class ForbiddenCall(AssertionError):
    """A kata called what its docstring asks it not to use."""


# Where torch's functions live: `forbid` replaces a target in each of these that holds it.
NAMESPACES = (
    "torch",
    "torch.linalg",
    "torch.autograd",
    "torch.autograd.functional",
    "torch.func",
    "torch.fft",
    "torch.special",
    "torch.nn.functional",
    "torch.optim",
)


KATA_MODULES = ("katas.", "reference.")
_ABSENT = object()


def _holders(target: object) -> list[tuple[object, str, str]]:
    """(owner, attribute, shown name) for every place `forbid` must replace `target`: torch's
    namespaces, torch.Tensor (a method of its C base is shadowed there), and the kata modules
    (which may have imported it by name)."""
    owners: list[tuple[object, str]] = [(sys.modules[name], name) for name in NAMESPACES if name in sys.modules]
    owners += [(torch.Tensor, "torch.Tensor"), (torch._C.TensorBase, "torch.Tensor")]
    owners += [(module, name) for name, module in list(sys.modules.items()) if name.startswith(KATA_MODULES)]
    found = []
    for owner, shown in owners:
        for attribute, value in list(vars(owner).items()):
            if value is target:
                found.append(
                    (torch.Tensor if owner is torch._C.TensorBase else owner, attribute, f"{shown}.{attribute}")
                )
    return found


@contextlib.contextmanager
def forbid(*targets: object, reason: str) -> Iterator[None]:
    """Inside the block, a call of any of `targets` (torch.linalg.svd, torch.Tensor.backward,
    torch.autograd.grad, ...) fails with a ForbiddenCall that names it and gives `reason`, the
    docstring's own words ("do the backward pass by hand"). Compute the oracles before the block.
    """
    replaced: list[tuple[object, str, object]] = []
    try:
        for target in targets:
            holders = _holders(target)
            if not holders:
                raise LookupError(f"forbid: cannot find where {target!r} lives, so a call could not be caught")
            for owner, attribute, shown in holders:

                def refuse(*args: object, _shown: str = shown, **kwargs: object) -> NoReturn:
                    raise ForbiddenCall(f"your kata called {_shown}, which it must not use: {reason}")

                replaced.append((owner, attribute, vars(owner).get(attribute, _ABSENT)))
                setattr(owner, attribute, refuse)
        yield
    finally:
        for owner, attribute, original in reversed(replaced):
            if original is _ABSENT:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


def calls(kata: Callable[..., object] | type) -> set[str]:
    """The dotted names of everything a kata's source calls (`torch.einsum`, `einops.rearrange`,
    `x.sum`), nested functions, comprehensions and lambdas included: read with `ast`, so the answer
    does not depend on the Python version's bytecode."""
    source = textwrap.dedent(inspect.getsource(kata if isinstance(kata, type) else inspect.unwrap(kata)))
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            parts = []
            function = node.func
            while isinstance(function, ast.Attribute):
                parts.append(function.attr)
                function = function.value
            if isinstance(function, ast.Name):
                parts.append(function.id)
            if parts:
                found.add(".".join(reversed(parts)))
    return found


def _random_gpt2_value(name: str, param: Tensor) -> Tensor:
    """A random value for a Hugging Face GPT-2 parameter, scaled so activations stay of order 1."""
    noise = torch.randn_like(param)
    if param.dim() == 1:
        is_scale = name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight"))
        return (1.0 if is_scale else 0.0) + 0.3 * noise
    if name.endswith(("wte.weight", "wpe.weight")):
        return noise
    fan_in = param.shape[1] if name == "lm_head.weight" else param.shape[0]  # Conv1D stores [in, out]
    return noise / fan_in**0.5


def random_hf_gpt2(seed: int, dtype: torch.dtype = torch.float32, **sizes: Any) -> Any:
    """A Hugging Face `GPT2LMHeadModel` (GPT2Config(**sizes), eager attention, in eval mode) with a random
    value in EVERY parameter: biases, LayerNorm scales and shifts, and an lm_head untied from wte. With
    Hugging Face's own initialisation (zero biases, LayerNorm at 1 and 0, lm_head tied to wte) a model that
    forgot a bias, skipped the LayerNorm affine or reused W_E.T as W_U would still match. The values come
    from `seed`, drawn in `dtype`; torch's global random state is left as it was. Imports transformers."""
    from transformers import GPT2Config, GPT2LMHeadModel

    untied_eager: dict[str, Any] = {"tie_word_embeddings": False, "attn_implementation": "eager"}
    config = GPT2Config(**sizes, **untied_eager, bos_token_id=None, eos_token_id=None)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config).eval().to(dtype)
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(_random_gpt2_value(name, param))
    assert model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr(), "lm_head should be untied"
    return model


def gpt2_from_hf(transformer: ModuleType, hf_model: Any, **our_sizes: Any) -> Any:
    """The learner's topic 06 `GPT2(Config(**our_sizes))` holding hf_model's weights, loaded through their
    own `convert_hf_state_dict`, in hf_model's dtype and in eval mode; its parameters require grad."""
    cfg = transformer.Config(**our_sizes)
    state_dict = {name: value.detach() for name, value in hf_model.state_dict().items()}
    model = transformer.GPT2(cfg).to(next(hf_model.parameters()).dtype)
    model.load_state_dict(transformer.convert_hf_state_dict(state_dict, cfg), strict=True)
    return model.eval()


def _symmetries_of_one(name: str, value: Tensor) -> list[str]:
    """What makes one parameter a blind spot: all zero, one value everywhere, the identity."""
    if value.numel() == 0:
        return []
    if not value.any():
        return [f"{name} is all zero"]
    found = []
    if value.numel() > 1 and bool((value == value.flatten()[0]).all()):
        found.append(f"{name} holds one value everywhere ({value.flatten()[0].item():g})")
    if value.dim() >= 2 and value.shape[-1] == value.shape[-2]:
        eye = torch.eye(value.shape[-1], dtype=value.dtype, device=value.device)
        if torch.equal(value, eye.expand_as(value)):
            found.append(f"{name} is the identity")
    return found


def _symmetries_between(name: str, value: Tensor, other_name: str, other: Tensor) -> list[str]:
    """What makes two parameters one: shared storage (tied), equal values, one the other's transpose."""
    if value.numel() == 0 or other.numel() == 0:
        return []
    if value.untyped_storage().data_ptr() == other.untyped_storage().data_ptr():
        return [f"{name} and {other_name} share storage (tied)"]
    if value.shape == other.shape and torch.equal(value, other):
        return [f"{name} equals {other_name}"]
    if value.dim() == other.dim() == 2 and value.shape == other.T.shape and torch.equal(value, other.T):
        return [f"{name} equals {other_name} transposed"]
    return []


def assert_no_symmetries(parameters: Any, *, what: str) -> None:
    """Assert that an oracle model breaks every symmetry a learner's mistake could hide behind: no parameter
    is all zero (a forgotten bias passes), holds one value everywhere (a LayerNorm at 1 and 0 passes without
    its affine step), or is the identity (a forgotten projection passes); no two parameters share storage,
    are equal, or are each other's transposes (a W_U tied to W_E.T passes for W_E.T).

    `parameters` is an nn.Module (its parameters, tied ones included) or a {name: tensor} dict; `what`
    names the model in the message ("test_attribution's GPT2")."""
    pairs = parameters.named_parameters(remove_duplicate=False) if isinstance(parameters, torch.nn.Module) else None
    named: list[tuple[str, Tensor]] = [
        (name, value.detach()) for name, value in (pairs if pairs is not None else dict(parameters).items())
    ]
    found = [problem for name, value in named for problem in _symmetries_of_one(name, value)]
    for i, (name, value) in enumerate(named):
        for other_name, other in named[i + 1 :]:
            found += _symmetries_between(name, value, other_name, other)
    if found:
        raise AssertionError(
            f"{what} has {len(found)} symmetries a wrong kata could pass through: {'; '.join(found)}. Give every "
            "parameter random values of its own (random_hf_gpt2 does; Hugging Face's GPT-2 has no b_U: "
            "random_b_U and with_b_U give the learner's model one)."
        )


def random_b_U(d_vocab: int, seed: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """A random, non-zero unembedding bias [d_vocab], of order 0.5, drawn from `seed` (torch's global random
    state is left alone). Hugging Face's GPT-2 has no b_U, so the learner's model converted from it has
    b_U = 0 and a kata that forgets b_U would pass: tests put this one in (with_b_U) and add it to every
    logit Hugging Face computes."""
    generator = torch.Generator().manual_seed(seed + 7919)
    values = 0.5 * torch.randn(d_vocab, generator=generator, dtype=torch.float64)
    return (values + 0.1 * values.sign()).to(dtype)  # at least 0.1 from zero, whatever the draw


def with_b_U(model: Any, b_U: Tensor) -> Any:
    """`model` (topic 06's GPT2, or any model with unembed.b_U) with its unembedding bias set to b_U, in
    place, without recording it in autograd; returns the model."""
    with torch.no_grad():
        model.unembed.b_U.copy_(b_U)
    return model
