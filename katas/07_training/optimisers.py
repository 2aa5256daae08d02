"""The optimisers that train a transformer, written out by hand: SGD with momentum and Nesterov, Adam,
AdamW, the parameter groups that decay only the weight matrices, gradient clipping by global norm, and the
warm-up-then-cosine learning-rate schedule.

Each one does exactly what its twin in torch does (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW,
torch.nn.utils.clip_grad_norm_, a SequentialLR of LinearLR and CosineAnnealingLR), and the tests check
them step by step against those twins. An optimiser here holds a plain list of parameters (tensors with
requires_grad and a .grad) and one learning rate, `lr`, that a schedule may change between steps.

Read or watch first (curriculum.toml's `reading`):
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building micrograd,
  the last part (the training loop: forward, zero the gradients, backward, update), the loop every
  kata here builds on:
  https://www.youtube.com/watch?v=VMj-3S1tku0
- Andrej Karpathy, Let's build GPT: from scratch, in code, spelled out, all of it: the character-level
  tokeniser, the train/validation split, random batches of contiguous windows, the training loop with
  AdamW, evaluating both losses every few steps, and sampling text from the trained model:
  https://www.youtube.com/watch?v=kCc8FmEb1nY
- Andrej Karpathy, Let's build the GPT Tokenizer, the byte-level BPE parts (UTF-8 bytes, counting
  pairs, merging, training, encoding and decoding), with its code, minbpe:
  https://www.youtube.com/watch?v=zduSFxRajkE
- Neel Nanda, transformer template notebook, its 'Training a Model' section: a tiny GPT-2 trained with
  AdamW on real text, its loss falling step by step:
  https://www.neelnanda.io/transformer-template
- fast.ai, Practical Deep Learning for Coders, lessons 1-5 if you want the longer road (the list calls
  it good but more than you need): overfitting, validation sets, learning rates and schedules:
  https://course.fast.ai/
"""

import math
from collections.abc import Iterable
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

from katakit import in_place, kata


class Optimiser:
    """What every optimiser below shares (given): the parameters as a list, the learning rate `lr`
    (a plain attribute: a schedule sets it before each step), and zero_grad.

    zero_grad does what torch's does by default (set_to_none=True): every .grad becomes None, so the
    next backward() writes fresh gradients instead of adding to the old ones.
    """

    def __init__(self, params: Iterable[Float[Tensor, "..."]], lr: float):
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        """Forget every gradient (set .grad to None), as torch.optim.Optimizer.zero_grad() does."""
        for p in self.params:
            p.grad = None


class SGD(Optimiser):
    """Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay: torch.optim.SGD
    (with dampening=0).

    For every parameter p whose gradient g = p.grad is not None (a parameter without a gradient is left
    alone), with the current lr:

        g = g + weight_decay * p                 (L2 regularisation, folded into the gradient)
        b = g                  on p's first step (b: p's momentum buffer, kept between steps)
        b = momentum * b + g   on the steps after
        g = g + momentum * b   with Nesterov, else g = b
        p = p - lr * g         in place

    With momentum=0 this is plain gradient descent. The update changes each parameter tensor itself (the
    model holds those very tensors), outside autograd: the step is not part of any computation to
    differentiate. It must not change the gradients.

    Shapes:
        params: a list of tensors of any shapes (float32 or float64), each with requires_grad
        step(): updates every parameter in place; returns None

    Hints (the next one: katas hint SGD 2):
        1. torch refuses an in-place change of a tensor that requires grad while autograd records; and
           `p = p - ...` only rebinds a local name: the model never sees it. Find the context manager that
           switches autograd off, and the in-place methods (names ending with an underscore).
    """

    def __init__(
        self,
        params: Iterable[Float[Tensor, "..."]],
        lr: float,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.momentum_buffers: list[Tensor | None] = [None] * len(self.params)

    @kata
    def step(self) -> None:
        """Update every parameter that has a gradient by one SGD step (see the class docstring)."""
        raise NotImplementedError


class Adam(Optimiser):
    """Adam with L2 weight decay: torch.optim.Adam.

    Adam keeps two running averages per parameter: m, of the gradient (the direction), and v, of the
    squared gradient (its scale, elementwise). Both start at zero, so early on they are biased towards
    zero; dividing by 1 - beta^t corrects that. t counts this optimiser's steps: 1 on the first step.
    For every parameter p whose gradient g = p.grad is not None (the others are left alone), with the
    current lr:

        g = g + weight_decay * p                       (L2, as torch.optim.Adam: folded into g)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)       in place

    (torch counts t per parameter, so a parameter that skips steps for lack of a gradient counts fewer;
    with one counter per optimiser the two agree whenever every parameter that steps at all steps
    every time.)

    Shapes:
        params: a list of tensors of any shapes (float32 or float64), each with requires_grad
        step(): updates every parameter in place, and m, v and t; returns None

    Hints (the next one: katas hint Adam 2):
        1. The step counter belongs to the optimiser and moves once per step, before it is used: the very
           first step corrects with t = 1 (with t = 0 the correction divides by zero).
    """

    def __init__(
        self,
        params: Iterable[Float[Tensor, "..."]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(params, lr)
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0  # steps taken so far
        self.m = [torch.zeros_like(p) for p in self.params]  # running mean of the gradient
        self.v = [torch.zeros_like(p) for p in self.params]  # running mean of its square

    @kata
    def step(self) -> None:
        """Update every parameter that has a gradient by one Adam step (see the class docstring)."""
        raise NotImplementedError


class AdamW(Adam):
    """AdamW, Adam with decoupled weight decay: torch.optim.AdamW, the optimiser GPT-2 is trained with.

    Adam's L2 decay goes through m and v, so Adam rescales it like any gradient: a weight with large
    gradients barely decays. AdamW instead shrinks every weight directly by the same factor, then takes a
    plain Adam step (no weight_decay in the gradient). For every parameter p whose gradient is not None,
    with the current lr:

        p = p * (1 - lr * weight_decay)                 in place, before the Adam update
        then Adam's update with g = p.grad as it is (m, v, bias correction, eps: all as in Adam)

    Shapes:
        params: a list of tensors of any shapes (float32 or float64), each with requires_grad
        step(): updates every parameter in place, and m, v and t; returns None

    Hints (the next one: katas hint AdamW 2):
        1. Start from your Adam step: only the place of weight_decay changes.
    """

    def __init__(
        self,
        params: Iterable[Float[Tensor, "..."]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ):
        super().__init__(params, lr, betas, eps, weight_decay)

    @kata
    def step(self) -> None:
        """Update every parameter that has a gradient by one AdamW step (see the class docstring)."""
        raise NotImplementedError


@kata
def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Split the model's parameters into the two groups GPT-2 is trained with: the weight matrices and
    embeddings, decayed by weight_decay, and the rest (biases, LayerNorm's gains and shifts), not decayed.

    Weight decay pulls every weight towards 0 a little at each step: a matrix that only grows where the
    gradient keeps asking for it generalises better. A LayerNorm gain or a bias is different: one number
    per feature that sets its scale or its offset, whose natural value is 1 (a gain) or anything at all (a
    bias), not 0. Decaying a gain drags every feature's scale down for no reason; decaying a bias stops it
    from taking the value the data asks for. They are also too few to overfit. So nanoGPT's
    configure_optimizers decays the 2-D tensors only, with weight decay 0.1 (the value of the GPT-3 paper).

    The rule: a parameter is decayed when it has at least 2 dimensions (nanoGPT's `p.dim() >= 2`), unless
    it is a bias: the last part of its name (after the last dot) starts with "b_". The exception is for
    your GPT2: its b_Q, b_K and b_V are [n_heads, d_head] (TransformerLens's layout, one bias per head),
    2-D although they are biases; in Hugging Face's layout every bias is 1-D and nanoGPT needs no exception.

    The groups are in torch.optim's format, so torch.optim.AdamW(param_groups(model, 0.1)) works, as does
    GroupedAdamW below. Every parameter of model.named_parameters() is in exactly one group.

    Shapes:
        model: any nn.Module (your GPT2, or one of torch's layers, whose biases are 1-D)
        returns: [{"params": decayed, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}],
                 in that order; each params a list (torch.optim refuses a set) in named_parameters() order,
                 either of them possibly empty

    Hints (the next one: katas hint param_groups 2):
        1. model.named_parameters() gives every parameter with its dotted name; a tensor's .dim() counts
           its dimensions.
    """
    raise NotImplementedError


class GroupedAdamW:
    """AdamW over parameter groups (given): what torch.optim.AdamW(groups, lr, betas, eps) does with groups
    that differ only in their weight_decay, such as param_groups returns. It holds one of your AdamW per
    group, with that group's weight_decay. `lr` reads and sets the learning rate of every group at once, so a
    schedule sets it as it would for one optimiser; zero_grad and step act on every group. (Each AdamW counts
    its own steps; since they all step together, that is torch's count.)
    """

    def __init__(
        self,
        groups: list[dict[str, Any]],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.optimisers = [AdamW(group["params"], lr, betas, eps, group["weight_decay"]) for group in groups]
        self.lr = lr

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = value
        for optimiser in self.optimisers:
            optimiser.lr = value

    def zero_grad(self) -> None:
        for optimiser in self.optimisers:
            optimiser.zero_grad()

    def step(self) -> None:
        for optimiser in self.optimisers:
            optimiser.step()


@kata
@in_place("params")
def clip_grad_norm(params: list[Float[Tensor, "..."]], max_norm: float) -> Float[Tensor, ""]:
    """Scale all the gradients, in place, so that their global L2 norm is at most max_norm; return the
    global norm they had before: torch.nn.utils.clip_grad_norm_.

    The global norm treats all the gradients as one long vector: the square root of the sum of the squares
    of every element of every gradient. Parameters whose .grad is None are skipped (at least one has a
    gradient). Every gradient is multiplied by the same factor

        scale = min(max_norm / (total_norm + 1e-6), 1)

    so gradients already within max_norm are (all but) unchanged, never scaled up, and the direction of
    the whole update is kept. The parameters themselves do not change.

    Shapes:
        params: a list of tensors of any shapes, each with a .grad of its shape (or None)
        returns: [], the global norm of the gradients before clipping

    Hints (the next one: katas hint clip_grad_norm 2):
        1. The global norm is the norm of the vector of the per-tensor norms.
    """
    raise NotImplementedError


@kata
def warmup_cosine_lr(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate of optimiser step `step` (counted from 0): a linear warm-up to max_lr, then a
    cosine decay to min_lr, then min_lr for good.

    With W = warmup_steps and T = total_steps (0 <= W < T):
    - step < W: lr = max_lr * (step + 1) / W. Step 0 gives max_lr / W (never 0: a step at lr 0 is a
      wasted step), and step W - 1 gives max_lr.
    - W <= step <= T: lr = min_lr + (max_lr - min_lr) * (1 + cos(pi * (step - W) / (T - W))) / 2, half a
      cosine over the T - W steps after the warm-up: max_lr at step W, min_lr at step T.
    - step > T: lr = min_lr.
    This is build-nanogpt's schedule, and, up to step T, torch's SequentialLR of LinearLR(start_factor=1 / W,
    total_iters=W - 1) and CosineAnnealingLR(T_max=T - W, eta_min=min_lr) with milestones=[W] (torch's
    cosine would climb back up after T).

    Shapes:
        step, warmup_steps, total_steps: plain ints
        returns: a float

    Hints (the next one: katas hint warmup_cosine_lr 2):
        1. Three cases: during the warm-up, during the decay, after the end. Check step 0, step W - 1, step
           W and step T against the description.
    """
    raise NotImplementedError
