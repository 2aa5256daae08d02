"""Tests for katas/07_training/optimisers.py: every optimiser step by step against its twin in torch.optim.

Each comparison builds the same parameters twice (three tensors of different shapes, float64), gives
both copies the same random gradient at every step, steps ours and torch's (foreach=False: the plain
per-tensor formulas) and compares the parameters after every step. The learning rate changes between
steps, as a schedule would change it. One gradient is tiny (about 1e-7) so that Adam's eps matters.

In float64 a correct optimiser agrees with torch to about 1e-15 (the operations come in another order);
the tolerance, 1e-10 relative, is far below the smallest mistake the tests must catch: a float32 state
for float64 parameters, or eps added inside Adam's square root, moves the parameters by 1e-8 or more.
"""

import math
import os

import jaxtyping
import pytest
import torch
import torch._dynamo  # noqa: F401  torch.optim's first optimiser imports it (seconds): do it here, not in a test
from torch import nn

from katakit.testing import assert_close, assert_no_symmetries

SEED = int(os.environ.get("KATAS_SEED", "0"))
SHAPES = [(3, 5), (7,), (2, 3, 4)]
# Gradient scale of each parameter: the last one is so small that Adam's eps is comparable to sqrt(v).
GRAD_SCALES = [1.0, 0.3, 1e-7]
N_STEPS = 5
LRS = [0.1, 0.05, 0.2, 0.03, 0.1]  # changed before each step, as a schedule would
TIGHT = {"rtol": 1e-10, "atol": 1e-13}
FLOAT32 = {"rtol": 1e-5, "atol": 1e-6}


def make_params(dtype: torch.dtype = torch.float64) -> list[nn.Parameter]:
    return [nn.Parameter(torch.randn(shape, dtype=dtype)) for shape in SHAPES]


def copies(params: list[nn.Parameter]) -> list[nn.Parameter]:
    return [nn.Parameter(p.detach().clone()) for p in params]


def make_grads(params: list[nn.Parameter], n_steps: int = N_STEPS) -> list[list[torch.Tensor]]:
    """A random gradient for every parameter at every step."""
    return [[scale * torch.randn_like(p) for p, scale in zip(params, GRAD_SCALES, strict=True)] for _ in range(n_steps)]


def torch_optimiser(name: str, params: list[nn.Parameter], **kwargs) -> torch.optim.Optimizer:
    return getattr(torch.optim, name)(params, foreach=False, **kwargs)


def run_side_by_side(
    ours,
    theirs: torch.optim.Optimizer,
    ours_params: list[nn.Parameter],
    their_params: list[nn.Parameter],
    *,
    name: str,
    hint: str,
    lrs: list[float] | None = LRS,
    without_grad: int | None = None,
    tolerance: dict = TIGHT,
    grads_in_place: bool = False,
) -> None:
    """Step both optimisers N_STEPS times with the same gradients and compare the parameters after each step.

    without_grad: the index of a parameter whose .grad stays None (both optimisers must skip it).
    grads_in_place: after the first step, write each new gradient into the .grad tensor already there, as
    zero_grad(set_to_none=False) followed by backward() does, instead of giving a new tensor.
    """
    grads = make_grads(ours_params)
    for step, step_grads in enumerate(grads):
        for i, (mine, yours, g) in enumerate(zip(ours_params, their_params, step_grads, strict=True)):
            if grads_in_place and step > 0 and i != without_grad:
                mine.grad.zero_().add_(g)
                yours.grad.zero_().add_(g)
                continue
            mine.grad = None if i == without_grad else g.clone()
            yours.grad = None if i == without_grad else g.clone()
        if lrs is not None:
            ours.lr = lrs[step]
            for group in theirs.param_groups:
                group["lr"] = lrs[step]
        result = ours.step()
        theirs.step()
        assert result is None, f"{name}.step() should return None, got {type(result).__name__}"
        for i, (mine, yours) in enumerate(zip(ours_params, their_params, strict=True)):
            assert_close(
                mine,
                yours,
                what=f"parameter {i} (shape {list(mine.shape)}) after step {step + 1} of {name}",
                hint=hint,
                **tolerance,
            )


# --- SGD -------------------------------------------------------------------------------------------------

SGD_EVERYTHING_HINT = (
    "weight decay goes into the gradient first, and that decayed gradient is what feeds the buffer and the Nesterov "
    "step"
)
SGD_CASES = {
    "plain": ({}, "p = p - lr * p.grad, with the lr of this step (ours.lr, which changes between steps)"),
    "momentum": (
        {"momentum": 0.9},
        "the buffer is the gradient itself on the first step, then momentum * buffer + gradient (no 1 - momentum "
        "factor: dampening is 0); the step uses the new buffer",
    ),
    "nesterov": (
        {"momentum": 0.8, "nesterov": True},
        "with Nesterov the step is gradient + momentum * (new buffer), not the buffer alone, nor the old buffer",
    ),
    "weight_decay": (
        {"weight_decay": 0.1},
        "weight decay adds weight_decay * p to the gradient before anything else",
    ),
    "everything": ({"momentum": 0.7, "nesterov": True, "weight_decay": 0.05}, SGD_EVERYTHING_HINT),
}


@pytest.mark.kata("SGD")
def test_sgd_keeps_momentum_buffers_of_the_parameters_dtype(impl):
    # Before the comparisons with torch: a float32 buffer for float64 parameters fails them all by about 1e-8,
    # and this test says why.
    params = make_params()
    ours = impl.SGD(params, lr=0.1, momentum=0.9)
    for step_grads in make_grads(params, n_steps=2):
        for p, g in zip(params, step_grads, strict=True):
            p.grad = g
        ours.step()
    for i, (p, buffer) in enumerate(zip(params, ours.momentum_buffers, strict=True)):
        assert buffer is not None, f"momentum_buffers[{i}] is still None after 2 steps: store the buffer"
        assert buffer.dtype == p.dtype and buffer.shape == p.shape, (
            f"momentum_buffers[{i}] is {buffer.dtype} {list(buffer.shape)}, expected {p.dtype} {list(p.shape)} like "
            "its parameter. Likely mistake: a buffer made with torch.zeros(shape), float32 whatever the parameter "
            "(and float32 momentum for float64 parameters loses precision): make it a copy of the gradient, g.clone()"
        )


@pytest.mark.kata("SGD")
@pytest.mark.parametrize("case", SGD_CASES)
def test_sgd_matches_torch_step_by_step(impl, case):
    kwargs, hint = SGD_CASES[case]
    params = make_params()
    theirs_params = copies(params)
    ours = impl.SGD(params, lr=LRS[0], **kwargs)
    theirs = torch_optimiser("SGD", theirs_params, lr=LRS[0], **kwargs)
    run_side_by_side(ours, theirs, params, theirs_params, name=f"SGD({kwargs})", hint=hint)


@pytest.mark.kata("SGD")
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_buffer_survives_gradients_written_in_place(impl, nesterov):
    # Without weight decay g is p.grad itself: a buffer that is not a copy of it IS the gradient tensor, and
    # the next zero_grad(set_to_none=False) + backward() overwrites the momentum with the new gradient.
    params = make_params()
    theirs_params = copies(params)
    ours = impl.SGD(params, lr=0.1, momentum=0.9, nesterov=nesterov)
    theirs = torch_optimiser("SGD", theirs_params, lr=0.1, momentum=0.9, nesterov=nesterov)
    run_side_by_side(
        ours,
        theirs,
        params,
        theirs_params,
        name="SGD(momentum=0.9) with each new gradient written into the old .grad tensor",
        hint="on its first step a parameter's buffer is a copy of g (g.clone()), never g itself: without weight "
        "decay g is p.grad, which the next backward() overwrites in place",
        grads_in_place=True,
    )


@pytest.mark.kata("SGD")
def test_sgd_skips_a_parameter_without_gradient(impl):
    params = make_params()
    theirs_params = copies(params)
    before = params[1].detach().clone()
    ours = impl.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1)
    theirs = torch_optimiser("SGD", theirs_params, lr=0.1, momentum=0.9, weight_decay=0.1)
    run_side_by_side(
        ours,
        theirs,
        params,
        theirs_params,
        name="SGD with parameter 1 never given a gradient",
        hint="a parameter whose .grad is None must be skipped (torch's rule), not decayed nor moved by momentum",
        without_grad=1,
    )
    assert torch.equal(params[1].detach(), before), "a parameter whose .grad is None must be left untouched"


@pytest.mark.kata("SGD")
@pytest.mark.parametrize("kwargs", [{}, {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}], ids=["plain", "all"])
def test_sgd_updates_the_parameters_in_place_and_leaves_the_gradients(impl, kwargs):
    params = make_params()
    objects = list(params)
    ours = impl.SGD(params, lr=0.1, **kwargs)
    given = []
    for _ in range(3):
        grads = [torch.randn_like(p) for p in params]
        given.append([(g, g.clone()) for g in grads])
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        before = [p.detach().clone() for p in params]
        ours.step()
        for i, (p, old) in enumerate(zip(params, before, strict=True)):
            assert p is objects[i] and ours.params[i] is objects[i], (
                "the optimiser must change the very tensors it was given (the model holds them), not replace them"
            )
            assert not torch.equal(p.detach(), old), (
                f"parameter {i} did not change: `p = p - lr * g` only rebinds a local name; update p in place "
                "(p.sub_(...), p -= ...) inside torch.no_grad()"
            )
            assert p.requires_grad and p.is_leaf and p.grad_fn is None, (
                f"parameter {i} is no longer a leaf that requires grad: update it in place under torch.no_grad()"
            )
    for step, pairs in enumerate(given):
        for i, (g, copy) in enumerate(pairs):
            assert torch.equal(g, copy), (
                f"the gradient of parameter {i} given at step {step + 1} was changed by later steps: the momentum "
                "buffer must be a copy of the gradient (g.clone()), and weight decay must not be added to p.grad "
                "in place"
            )


@pytest.mark.kata("SGD")
def test_sgd_works_in_float32(impl):
    params = make_params(torch.float32)
    theirs_params = copies(params)
    ours = impl.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    theirs = torch_optimiser("SGD", theirs_params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)
    run_side_by_side(
        ours,
        theirs,
        params,
        theirs_params,
        name="SGD on float32 parameters",
        hint=SGD_EVERYTHING_HINT,
        tolerance=FLOAT32,
    )


# --- Adam and AdamW ---------------------------------------------------------------------------------------

ADAM_HINT = (
    "m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2, both bias-corrected with 1 - beta^t where t = 1 on "
    "the first step, then p -= lr * m_hat / (sqrt(v_hat) + eps), eps outside the square root"
)
COUNTER_HINT = (
    "each optimiser counts its own steps (self.t), once per step: not a counter shared by all optimisers (a class "
    "attribute or a global), nor one per parameter update"
)
ADAM_L2_HINT = "Adam's weight decay is L2: add weight_decay * p to the gradient, before m and v see it"
BETAS_HINT = "use both betas from self.betas, in the averages and in the bias corrections"
EPS_HINT = "use self.eps, added to sqrt(v_hat), outside the square root, after the bias correction"
ADAM_CASES = {
    "lr": ({}, ADAM_HINT),
    "betas": ({"betas": (0.8, 0.99)}, BETAS_HINT),
    "eps": ({"eps": 1e-3}, EPS_HINT),
    "everything": ({"betas": (0.7, 0.95), "eps": 1e-6, "weight_decay": 0.1}, ADAM_L2_HINT),
}


@pytest.mark.kata("Adam")
def test_adam_with_its_defaults_matches_torch(impl):
    params = make_params()
    theirs_params = copies(params)
    ours = impl.Adam(params)
    theirs = torch_optimiser("Adam", theirs_params)
    run_side_by_side(ours, theirs, params, theirs_params, name="Adam()", hint=ADAM_HINT, lrs=None)


def check_two_stepping_in_turn(ours_class: type, torch_name: str) -> None:
    """Two optimisers of one class, stepping in turn, each match torch's: neither counts the other's steps."""
    first, second = make_params(), make_params()
    first_theirs, second_theirs = copies(first), copies(second)
    ours = [ours_class(first, lr=0.1), ours_class(second, lr=0.1)]
    theirs = [torch_optimiser(torch_name, first_theirs, lr=0.1), torch_optimiser(torch_name, second_theirs, lr=0.1)]
    grads = [make_grads(first), make_grads(second)]
    for step in range(N_STEPS):
        for k, (mine, yours) in enumerate([(first, first_theirs), (second, second_theirs)]):
            for p, q, g in zip(mine, yours, grads[k][step], strict=True):
                p.grad, q.grad = g.clone(), g.clone()
            ours[k].step()
            theirs[k].step()
        for k, (mine, yours) in enumerate([(first, first_theirs), (second, second_theirs)]):
            for i, (p, q) in enumerate(zip(mine, yours, strict=True)):
                assert_close(
                    p,
                    q,
                    what=f"parameter {i} of optimiser {k} after step {step + 1}, two {torch_name}s stepping in turn",
                    hint=COUNTER_HINT,
                    **TIGHT,
                )


@pytest.mark.kata("Adam")
def test_two_adams_count_their_own_steps(impl):
    check_two_stepping_in_turn(impl.Adam, "Adam")


@pytest.mark.kata("Adam")
@pytest.mark.parametrize("case", ADAM_CASES)
def test_adam_matches_torch_step_by_step(impl, case):
    kwargs, hint = ADAM_CASES[case]
    params = make_params()
    theirs_params = copies(params)
    ours = impl.Adam(params, lr=LRS[0], **kwargs)
    theirs = torch_optimiser("Adam", theirs_params, lr=LRS[0], **kwargs)
    run_side_by_side(ours, theirs, params, theirs_params, name=f"Adam({kwargs})", hint=hint)


def decay_runs(impl, ours_name: str, wd: float) -> tuple[list, list, list]:
    """Our optimiser `ours_name`, torch's Adam and torch's AdamW, all with weight_decay=wd, after N_STEPS steps."""
    params = make_params()
    adam_params, adamw_params = copies(params), copies(params)
    ours = getattr(impl, ours_name)(params, lr=0.1, weight_decay=wd)
    adam = torch_optimiser("Adam", adam_params, lr=0.1, weight_decay=wd)
    adamw = torch_optimiser("AdamW", adamw_params, lr=0.1, weight_decay=wd)
    for step_grads in make_grads(params):
        for group in (params, adam_params, adamw_params):
            for p, g in zip(group, step_grads, strict=True):
                p.grad = g.clone()
        ours.step()
        adam.step()
        adamw.step()
    return params, adam_params, adamw_params


def far_apart(a: list, b: list) -> bool:
    return any(not torch.allclose(x, y, **TIGHT) for x, y in zip(a, b, strict=True))


@pytest.mark.kata("Adam")
def test_adam_weight_decay_is_l2_in_the_gradient_not_decoupled(impl):
    ours, adam, adamw = decay_runs(impl, "Adam", wd=0.2)
    assert far_apart(adam, adamw), "the test's premise: torch's Adam and AdamW differ with weight decay"
    for i, (mine, expected) in enumerate(zip(ours, adam, strict=True)):
        assert_close(
            mine,
            expected,
            what=f"parameter {i} after {N_STEPS} steps of Adam(weight_decay=0.2)",
            hint=ADAM_L2_HINT,
            **TIGHT,
        )
    assert far_apart(ours, adamw), "Adam(weight_decay) came out as torch's AdamW: Adam's decay is L2, not decoupled"


@pytest.mark.kata("Adam")
def test_adam_skips_a_parameter_without_gradient(impl):
    params = make_params()
    theirs_params = copies(params)
    before = params[0].detach().clone()
    ours = impl.Adam(params, lr=0.1, weight_decay=0.1)
    theirs = torch_optimiser("Adam", theirs_params, lr=0.1, weight_decay=0.1)
    run_side_by_side(
        ours,
        theirs,
        params,
        theirs_params,
        name="Adam with parameter 0 never given a gradient",
        hint="a parameter whose .grad is None must be skipped, as torch does, and the step counter still moves "
        "once per step",
        without_grad=0,
    )
    assert torch.equal(params[0].detach(), before), "a parameter whose .grad is None must be left untouched"


@pytest.mark.kata("Adam")
def test_adam_updates_the_parameters_in_place_and_leaves_the_gradients(impl):
    params = make_params()
    objects = list(params)
    ours = impl.Adam(params, lr=0.1, weight_decay=0.1)
    grads = [torch.randn_like(p) for p in params]
    kept = [g.clone() for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    before = [p.detach().clone() for p in params]
    ours.step()
    for i, p in enumerate(params):
        assert p is objects[i] and ours.params[i] is objects[i], "change the very tensors given, do not replace them"
        assert not torch.equal(p.detach(), before[i]), (
            f"parameter {i} did not change: update it in place (p.sub_(...)) inside torch.no_grad()"
        )
        assert p.requires_grad and p.is_leaf and p.grad_fn is None, f"parameter {i} should stay a leaf"
        assert torch.equal(grads[i], kept[i]), (
            f"the gradient of parameter {i} changed: add weight_decay * p into a new tensor, not into p.grad in place"
        )


@pytest.mark.kata("Adam")
def test_adam_works_in_float32(impl):
    params = make_params(torch.float32)
    theirs_params = copies(params)
    ours = impl.Adam(params, lr=0.1, eps=1e-6, weight_decay=0.01)
    theirs = torch_optimiser("Adam", theirs_params, lr=0.1, eps=1e-6, weight_decay=0.01)
    run_side_by_side(
        ours, theirs, params, theirs_params, name="Adam on float32 parameters", hint=ADAM_HINT, tolerance=FLOAT32
    )


ADAMW_HINT = (
    "first p *= 1 - lr * weight_decay (this step's lr), then the plain Adam update with g = p.grad (no weight decay "
    "in the gradient)"
)
ADAMW_CASES = {
    "weight_decay": ({"weight_decay": 0.3}, ADAMW_HINT),
    "betas": ({"betas": (0.8, 0.99)}, BETAS_HINT),
    "eps": ({"eps": 1e-3}, EPS_HINT),
    "everything": ({"betas": (0.7, 0.95), "eps": 1e-6, "weight_decay": 0.1}, ADAMW_HINT),
}


@pytest.mark.kata("AdamW")
def test_adamw_with_its_defaults_matches_torch(impl):
    params = make_params()
    theirs_params = copies(params)
    ours = impl.AdamW(params)
    theirs = torch_optimiser("AdamW", theirs_params)
    assert ours.weight_decay == theirs.defaults["weight_decay"] == 0.01, "AdamW's default weight_decay is 0.01"
    run_side_by_side(ours, theirs, params, theirs_params, name="AdamW()", hint=ADAMW_HINT, lrs=None)


@pytest.mark.kata("AdamW")
def test_two_adamws_count_their_own_steps(impl):
    check_two_stepping_in_turn(impl.AdamW, "AdamW")


@pytest.mark.kata("AdamW")
@pytest.mark.parametrize("case", ADAMW_CASES)
def test_adamw_matches_torch_step_by_step(impl, case):
    kwargs, hint = ADAMW_CASES[case]
    params = make_params()
    theirs_params = copies(params)
    ours = impl.AdamW(params, lr=LRS[0], **kwargs)
    theirs = torch_optimiser("AdamW", theirs_params, lr=LRS[0], **kwargs)
    run_side_by_side(ours, theirs, params, theirs_params, name=f"AdamW({kwargs})", hint=hint)


@pytest.mark.kata("AdamW")
def test_adamw_decay_is_decoupled_not_l2(impl):
    ours, adam, adamw = decay_runs(impl, "AdamW", wd=0.2)
    assert far_apart(adam, adamw), "the test's premise: torch's Adam and AdamW differ with weight decay"
    for i, (mine, expected) in enumerate(zip(ours, adamw, strict=True)):
        assert_close(
            mine,
            expected,
            what=f"parameter {i} after {N_STEPS} steps of AdamW(weight_decay=0.2)",
            hint=ADAMW_HINT,
            **TIGHT,
        )
    assert far_apart(ours, adam), "AdamW came out as torch's Adam: its decay multiplies p, it is not in the gradient"


@pytest.mark.kata("AdamW")
def test_adamw_skips_a_parameter_without_gradient(impl):
    params = make_params()
    theirs_params = copies(params)
    before = params[2].detach().clone()
    ours = impl.AdamW(params, lr=0.1, weight_decay=0.1)
    theirs = torch_optimiser("AdamW", theirs_params, lr=0.1, weight_decay=0.1)
    run_side_by_side(
        ours,
        theirs,
        params,
        theirs_params,
        name="AdamW with parameter 2 never given a gradient",
        hint="a parameter whose .grad is None is skipped entirely, weight decay included (torch's rule)",
        without_grad=2,
    )
    assert torch.equal(params[2].detach(), before), "a parameter whose .grad is None must be left untouched"


@pytest.mark.kata("AdamW")
def test_adamw_updates_the_parameters_in_place_and_leaves_the_gradients(impl):
    params = make_params()
    objects = list(params)
    ours = impl.AdamW(params, lr=0.1, weight_decay=0.1)
    grads = [torch.randn_like(p) for p in params]
    kept = [g.clone() for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g
    before = [p.detach().clone() for p in params]
    ours.step()
    for i, p in enumerate(params):
        assert p is objects[i] and ours.params[i] is objects[i], "change the very tensors given, do not replace them"
        assert not torch.equal(p.detach(), before[i]), (
            f"parameter {i} did not change: update it in place (p.mul_(...), p.sub_(...)) inside torch.no_grad()"
        )
        assert p.requires_grad and p.is_leaf and p.grad_fn is None, f"parameter {i} should stay a leaf"
        assert torch.equal(grads[i], kept[i]), f"the gradient of parameter {i} changed: AdamW reads p.grad only"


@pytest.mark.kata("AdamW")
def test_adamw_works_in_float32(impl):
    params = make_params(torch.float32)
    theirs_params = copies(params)
    ours = impl.AdamW(params, lr=0.1, eps=1e-6, weight_decay=0.1)
    theirs = torch_optimiser("AdamW", theirs_params, lr=0.1, eps=1e-6, weight_decay=0.1)
    run_side_by_side(
        ours, theirs, params, theirs_params, name="AdamW on float32 parameters", hint=ADAMW_HINT, tolerance=FLOAT32
    )


# --- clip_grad_norm ---------------------------------------------------------------------------------------


NORM_HINT = "the global norm over all gradients, computed before scaling them (not the norm after, max_norm)"
SCALE_HINT = "one scale for every gradient, max_norm / (global norm + 1e-6): not each tensor by its own norm"


def params_with_grads(scales: list[float | None]) -> list[nn.Parameter]:
    """Parameters of SHAPES whose gradients have these scales (None: no gradient)."""
    params = make_params()
    for p, scale in zip(params, scales, strict=True):
        p.grad = None if scale is None else scale * torch.randn_like(p)
    return params


def clip_both(impl, scales: list[float | None], max_norm: float):
    """(our norm, our params, torch's norm, torch's params) after clipping the same gradients."""
    params = params_with_grads(scales)
    theirs = copies(params)
    for p, q in zip(params, theirs, strict=True):
        q.grad = None if p.grad is None else p.grad.clone()
    grad_objects = [p.grad for p in params]
    values = [p.detach().clone() for p in params]
    norm = impl.clip_grad_norm(params, max_norm)
    their_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm, foreach=False)
    for i, p in enumerate(params):
        assert p.grad is grad_objects[i], (
            f"params[{i}].grad is a new tensor: scale each gradient in place (g.mul_(scale)), as the docstring asks"
        )
        assert torch.equal(p.detach(), values[i]), f"clip_grad_norm changed parameter {i} itself: only grads change"
    return norm, params, their_norm, theirs


@pytest.mark.kata("clip_grad_norm")
@pytest.mark.parametrize("max_norm", [1.0, 0.05])
def test_clip_grad_norm_matches_torch_above_max_norm(impl, max_norm):
    norm, params, their_norm, theirs = clip_both(impl, [1.0, 2.0, 0.5], max_norm)
    assert their_norm > max_norm, "the test's premise: the gradients are clipped"
    assert_close(
        norm,
        their_norm,
        what="the returned norm",
        hint=NORM_HINT,
        **TIGHT,
    )
    for i, (p, q) in enumerate(zip(params, theirs, strict=True)):
        assert_close(
            p.grad,
            q.grad,
            what=f"params[{i}].grad after clipping",
            hint=SCALE_HINT,
            **TIGHT,
        )
    total_after = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))
    assert total_after <= max_norm, f"the global norm after clipping is {total_after:.6g}, above max_norm {max_norm}"


@pytest.mark.kata("clip_grad_norm")
def test_clip_grad_norm_leaves_small_gradients_alone(impl):
    norm, params, their_norm, theirs = clip_both(impl, [0.1, 0.2, 0.1], max_norm=100.0)
    assert_close(norm, their_norm, what="the returned norm", hint=NORM_HINT, **TIGHT)
    for i, (p, q) in enumerate(zip(params, theirs, strict=True)):
        assert_close(
            p.grad,
            q.grad,
            what=f"params[{i}].grad, whose global norm is already below max_norm",
            hint="the scale is clamped at 1: gradients within max_norm are never scaled up",
            **TIGHT,
        )


@pytest.mark.kata("clip_grad_norm")
def test_clip_grad_norm_of_tiny_gradients_keeps_the_epsilon(impl):
    # Norms of about 1e-4: torch's + 1e-6 in the denominator changes the scale by 1%.
    norm, params, their_norm, theirs = clip_both(impl, [1e-5, 2e-5, 1e-5], max_norm=1e-5)
    assert_close(norm, their_norm, what="the returned norm", hint=NORM_HINT, **TIGHT)
    for i, (p, q) in enumerate(zip(params, theirs, strict=True)):
        assert_close(
            p.grad,
            q.grad,
            what=f"params[{i}].grad after clipping tiny gradients",
            hint=SCALE_HINT,
            **TIGHT,
        )


@pytest.mark.kata("clip_grad_norm")
def test_clip_grad_norm_skips_parameters_without_gradient(impl):
    try:
        norm, params, their_norm, theirs = clip_both(impl, [3.0, None, 1.0], max_norm=0.5)
    except (TypeError, AttributeError) as error:
        if isinstance(error, jaxtyping.TypeCheckError):  # a wrong shape or dtype, which says so itself
            raise
        raise AssertionError(
            f"clip_grad_norm failed on parameters whose .grad is None: {error!r}. Likely mistake: skip the parameters "
            "whose .grad is None (torch's rule: they have no gradient to count or to scale)"
        ) from error
    assert params[1].grad is None, "a parameter without gradient keeps .grad None"
    assert_close(norm, their_norm, what="the returned norm", hint=NORM_HINT, **TIGHT)
    for i in (0, 2):
        assert_close(params[i].grad, theirs[i].grad, what=f"params[{i}].grad", hint=SCALE_HINT, **TIGHT)


# --- warmup_cosine_lr -------------------------------------------------------------------------------------


def torch_schedule(max_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> list[float]:
    """The lr torch's schedulers give optimiser steps 0 .. total_steps."""
    optimiser = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=max_lr)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps - warmup_steps, eta_min=min_lr)
    if warmup_steps > 0:
        warmup = torch.optim.lr_scheduler.LinearLR(
            optimiser, start_factor=1 / warmup_steps, end_factor=1.0, total_iters=warmup_steps - 1
        )
        schedule = torch.optim.lr_scheduler.SequentialLR(optimiser, [warmup, cosine], milestones=[warmup_steps])
    else:
        schedule = cosine
    lrs = []
    for _ in range(total_steps + 1):
        lrs.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
    return lrs


SCHEDULES = [(3e-3, 4, 13, 1e-4), (0.5, 1, 7, 0.0), (1e-3, 7, 50, 2e-5), (0.1, 0, 9, 0.01)]


@pytest.mark.kata("warmup_cosine_lr")
@pytest.mark.parametrize(("max_lr", "warmup_steps", "total_steps", "min_lr"), SCHEDULES)
def test_warmup_cosine_lr_matches_torch_schedulers(impl, max_lr, warmup_steps, total_steps, min_lr):
    expected = torch_schedule(max_lr, warmup_steps, total_steps, min_lr)
    for step, lr in enumerate(expected):
        got = impl.warmup_cosine_lr(step, max_lr, warmup_steps, total_steps, min_lr)
        assert math.isclose(got, lr, rel_tol=1e-9, abs_tol=1e-15), (
            f"warmup_cosine_lr(step={step}, max_lr={max_lr}, warmup_steps={warmup_steps}, total_steps={total_steps}, "
            f"min_lr={min_lr}) = {got!r}, torch's schedulers give {lr!r}. "
            + (
                "Likely mistake: the warm-up is max_lr * (step + 1) / warmup_steps: never 0 at step 0, max_lr at "
                "warmup_steps - 1"
                if step < warmup_steps
                else "Likely mistake: the cosine runs over the total_steps - warmup_steps steps after the warm-up, "
                "from max_lr down to min_lr (not to 0)"
            )
        )


@pytest.mark.kata("warmup_cosine_lr")
def test_warmup_cosine_lr_landmarks(impl):
    max_lr, warmup, total, min_lr = 6e-4, 10, 100, 6e-5

    def lr(step: int) -> float:
        return impl.warmup_cosine_lr(step, max_lr, warmup, total, min_lr)

    assert math.isclose(lr(0), max_lr / warmup), (
        f"step 0 should give max_lr / warmup_steps = {max_lr / warmup}, got {lr(0)}"
    )
    assert math.isclose(lr(warmup - 1), max_lr), (
        f"the warm-up should reach max_lr at its last step, got {lr(warmup - 1)}"
    )
    assert math.isclose(lr(warmup), max_lr), f"the cosine should start at max_lr at step warmup_steps, got {lr(warmup)}"
    middle = (warmup + total) // 2  # halfway through the decay
    assert math.isclose(lr(middle), (max_lr + min_lr) / 2), (
        "halfway through the decay the lr should be halfway between max_lr and min_lr: the cosine runs over the "
        f"total_steps - warmup_steps steps after the warm-up, got {lr(middle)}"
    )
    assert math.isclose(lr(total), min_lr), f"step total_steps should give min_lr = {min_lr}, got {lr(total)}"


@pytest.mark.kata("warmup_cosine_lr")
def test_warmup_cosine_lr_stays_at_min_lr_after_the_end(impl):
    for step in (14, 15, 20, 1000):
        got = impl.warmup_cosine_lr(step, 3e-3, 4, 13, 1e-4)
        assert got == 1e-4, (
            f"after total_steps (13) the lr stays at min_lr = 1e-4; step {step} gave {got!r} (torch's cosine would "
            "climb back up: this schedule does not)"
        )
    for step in (0, 3, 4, 13, 14):  # warm-up, its last step, the decay's first and last steps, after the end
        got = impl.warmup_cosine_lr(step, 3e-3, 4, 13)
        assert type(got) is float, f"step {step}: return a plain Python float, got {type(got).__name__} {got!r}"


# --- param_groups -----------------------------------------------------------------------------------------


class PerHeadModel(nn.Module):
    """Parameters named and shaped as in topic 06's GPT2 (TransformerLens's layout): per-head weights W_Q
    [n_heads, d_model, d_head] (3-D) and per-head biases b_Q [n_heads, d_head] (2-D, a bias all the same),
    LayerNorm's w and b, an embedding and an unembedding with a bias of its own (named without a dot). Every
    value is random and non-zero, every size distinct."""

    def __init__(self):
        super().__init__()
        n_heads, d_model, d_head, d_vocab, n_ctx = 2, 5, 3, 7, 4
        self.embed, self.pos_embed = nn.Module(), nn.Module()
        self.embed.W_E = nn.Parameter(torch.randn(d_vocab, d_model, dtype=torch.float64))
        self.pos_embed.W_pos = nn.Parameter(torch.randn(n_ctx, d_model, dtype=torch.float64))
        self.ln1 = nn.Module()
        self.ln1.w = nn.Parameter(1 + 0.3 * torch.randn(d_model, dtype=torch.float64))
        self.ln1.b = nn.Parameter(torch.randn(d_model, dtype=torch.float64))
        self.attn = nn.Module()
        self.attn.W_Q = nn.Parameter(torch.randn(n_heads, d_model, d_head, dtype=torch.float64))
        self.attn.b_Q = nn.Parameter(torch.randn(n_heads, d_head, dtype=torch.float64))
        self.attn.W_O = nn.Parameter(torch.randn(n_heads, d_head, d_model, dtype=torch.float64))
        self.attn.b_O = nn.Parameter(torch.randn(d_model, dtype=torch.float64))
        # At the top level, so that their names have no dot at all.
        self.W_U = nn.Parameter(torch.randn(d_model, d_vocab, dtype=torch.float64))
        self.b_U = nn.Parameter(torch.randn(d_vocab, dtype=torch.float64))


PER_HEAD_DECAYED = {"embed.W_E", "pos_embed.W_pos", "attn.W_Q", "attn.W_O", "W_U"}


def torch_layers_model() -> nn.Module:
    """torch's own layers, whose parameters are called weight and bias (every bias 1-D)."""
    model = nn.Sequential(nn.Embedding(7, 5), nn.LayerNorm(5), nn.Linear(5, 3), nn.Linear(3, 7)).double()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param))  # non-zero biases, LayerNorm gains away from 1
    return model


TORCH_LAYERS_DECAYED = {"0.weight", "2.weight", "3.weight"}


def check_groups(groups, model: nn.Module, decayed: set[str], weight_decay: float) -> None:
    """Exactly two groups in torch's format: the decayed parameters first, then the others, once each."""
    assert isinstance(groups, list) and len(groups) == 2, (
        f"param_groups should return a list of two groups (decayed, then not decayed), got {type(groups).__name__} "
        f"of {len(groups) if hasattr(groups, '__len__') else '?'}"
    )
    names = {id(param): name for name, param in model.named_parameters()}
    expected = [
        [name for name, _ in model.named_parameters() if name in decayed],
        [name for name, _ in model.named_parameters() if name not in decayed],
    ]
    for index, (group, wd, label) in enumerate(
        zip(groups, [weight_decay, 0.0], ["decayed", "not decayed"], strict=True)
    ):
        assert isinstance(group, dict) and set(group) == {"params", "weight_decay"}, (
            f"group {index} should be a dict with the keys 'params' and 'weight_decay' (torch.optim's format), got "
            f"{group!r:.80}"
        )
        assert type(group["params"]) is list, (
            f"group {index}'s params should be a list, got {type(group['params']).__name__} (torch.optim refuses a "
            "set, and a generator is used up by the first reader)"
        )
        assert type(group["weight_decay"]) is float and group["weight_decay"] == wd, (
            f"group {index} ({label}) should have weight_decay {wd!r} (a float), got {group['weight_decay']!r}"
        )
        got = [names.get(id(param), "<not a parameter of the model>") for param in group["params"]]
        assert got == expected[index], (
            f"group {index} ({label}) holds {got}, expected {expected[index]} in named_parameters() order. Likely "
            "mistake: decay the matrices and embeddings (2-D or more, not named b_...) by weight_decay, and nothing "
            "else: not the biases (b_Q is 2-D here), not LayerNorm's w and b; every parameter in exactly one group"
        )


@pytest.mark.kata("param_groups")
@pytest.mark.parametrize(
    ("make_model", "decayed"),
    [(PerHeadModel, PER_HEAD_DECAYED), (torch_layers_model, TORCH_LAYERS_DECAYED)],
    ids=["per_head_layout", "torch_layers"],
)
def test_param_groups_decay_the_matrices_only(impl, make_model, decayed):
    model = make_model()
    assert_no_symmetries(model, what=f"the test's {make_model.__name__}")
    check_groups(impl.param_groups(model, 0.3), model, decayed, 0.3)


@pytest.mark.kata("param_groups")
def test_param_groups_give_torch_adamw_the_same_steps(impl):
    ours, theirs = PerHeadModel(), PerHeadModel()
    theirs.load_state_dict(ours.state_dict())
    groups = impl.param_groups(ours, 0.2)
    oracle_groups = [
        {"params": [p for n, p in theirs.named_parameters() if n in PER_HEAD_DECAYED], "weight_decay": 0.2},
        {"params": [p for n, p in theirs.named_parameters() if n not in PER_HEAD_DECAYED], "weight_decay": 0.0},
    ]
    mine = torch.optim.AdamW(groups, lr=0.1, betas=(0.9, 0.95), foreach=False)
    yours = torch.optim.AdamW(oracle_groups, lr=0.1, betas=(0.9, 0.95), foreach=False)
    for step in range(3):
        for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        mine.step()
        yours.step()
        for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            assert_close(
                p,
                q,
                what=f"{name} after step {step + 1} of torch.optim.AdamW(param_groups(model, 0.2))",
                hint="decay the matrices and embeddings (2-D or more, not named b_...) by weight_decay, and nothing "
                "else: not the biases (b_Q is 2-D here), not LayerNorm's w and b; every parameter in exactly one group",
                **TIGHT,
            )
