"""Tests for katas/07_training/training.py: batches, windows, GPT-2's initialisation, the training step,
evaluation, the training loop, early stopping, and a tiny GPT-2 trained on real text.

Oracles: torch.utils.data's RandomSampler and BatchSampler (the batches), slicing by hand (the windows),
statistics with tolerances derived from the sample size (the initialisation), gradient descent written
out with torch.nn.utils.clip_grad_norm_ and F.cross_entropy (the training step), the same loop written
out with your AdamW (the loop; test_optimisers.py checks AdamW against torch.optim.AdamW), and the
unigram entropy of the validation text (the capstone: a model that learned nothing beyond the
letter frequencies cannot beat it).

Most tests train a test double, TinyLM: a bigram table whose logits also depend on whether it is in
training mode and which notes, on every call, whether autograd was recording. That makes the mode a
kata runs the model in, and whether it tracks gradients, visible in the results.
"""

import copy
import dataclasses
import itertools
import math
import os
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import BatchSampler, RandomSampler

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close, assert_no_symmetries

SEED = int(os.environ.get("KATAS_SEED", "0"))
D_VOCAB = 11


class TinyLM(nn.Module):
    """A bigram language model test double: logits = table[token] + bias, plus a fixed shift in training mode
    (standing in for dropout, which makes a model behave differently in training and in eval mode). The table
    is a matrix (weight decay applies), the bias a vector (no weight decay); both random and non-zero."""

    def __init__(self, d_vocab: int = D_VOCAB):
        super().__init__()
        self.table = nn.Parameter(torch.randn(d_vocab, d_vocab))
        self.bias = nn.Parameter(torch.randn(d_vocab))
        self.register_buffer("train_shift", 2 * torch.randn(d_vocab))
        self.grad_enabled: list[bool] = []  # torch.is_grad_enabled() at every call
        self.modes: list[bool] = []  # self.training at every call
        self.batch_sizes: list[int] = []  # len(tokens) at every call

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        self.modes.append(self.training)
        self.batch_sizes.append(len(tokens))
        logits = self.table[tokens] + self.bias
        return logits + self.train_shift if self.training else logits


def cross_entropy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of model(inputs) against targets over every position (the oracle's loss)."""
    logits = model(inputs)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


@pytest.fixture(autouse=True)
def one_thread():
    """Every model here is tiny: it trains fastest on one thread, and other processes busy on the same cores
    then do not slow it down tenfold (two threads of torch wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def generator(seed: int = SEED) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_tokens(n: int, d_vocab: int = D_VOCAB) -> torch.Tensor:
    return torch.randint(0, d_vocab, (n,))


def parameters_of(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


def global_grad_norm(model: nn.Module) -> float:
    """The L2 norm of all the model's gradients together."""
    return math.sqrt(sum(p.grad.square().sum().item() for p in model.parameters() if p.grad is not None))


# batch_indices ---------------------------------------------------------------------------------------


@pytest.mark.kata("batch_indices")
@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last"), [(23, 5, False), (23, 5, True), (20, 5, True), (3, 7, False)]
)
def test_batch_indices_match_torch_random_and_batch_samplers(impl, n, batch_size, drop_last):
    ours = impl.batch_indices(n, batch_size, generator(), drop_last=drop_last)
    torchs = list(BatchSampler(RandomSampler(range(n), generator=generator()), batch_size, drop_last))
    sizes = [len(batch) for batch in ours]
    assert sizes == [len(batch) for batch in torchs], (
        f"n={n}, batch_size={batch_size}, drop_last={drop_last}: batch sizes {sizes}, expected "
        f"{[len(batch) for batch in torchs]}. Every batch is full except perhaps the last, which holds what is "
        "left over, and is dropped only with drop_last (and only if it is short)."
    )
    dtypes = {batch.dtype for batch in ours}
    assert dtypes <= {torch.int64}, f"the batches hold {dtypes}: index tensors are int64, as torch.randperm gives them"
    seen = torch.cat(ours).tolist() if ours else []
    if not drop_last:
        assert sorted(seen) == list(range(n)), (
            f"the epoch holds the indices {sorted(seen)}: every index 0..{n - 1} must appear exactly once. "
            "Shuffle a permutation, do not draw indices independently."
        )
    assert [batch.tolist() for batch in ours] == torchs, (
        "the batches differ from torch's RandomSampler + BatchSampler given a generator with the same seed: "
        "draw one torch.randperm(n) from the generator and cut it in order."
    )


@pytest.mark.kata("batch_indices")
def test_batch_indices_use_only_the_generator(impl):
    global_state = torch.get_rng_state()
    first = impl.batch_indices(29, 4, generator(SEED))
    assert torch.equal(torch.get_rng_state(), global_state), (
        "batch_indices changed torch's global random state: draw from the generator argument only"
    )
    torch.manual_seed(SEED + 100)
    again = impl.batch_indices(29, 4, generator(SEED))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True)), (
        "the same generator seed gave another epoch: the shuffle must come from the generator argument"
    )
    other = impl.batch_indices(29, 4, generator(SEED + 1))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True)), (
        "two different generator seeds gave the same epoch: is the order shuffled at all?"
    )


@pytest.mark.kata("batch_indices")
def test_batch_indices_shuffle_each_epoch_anew(impl):
    shared = generator()
    first = torch.cat(impl.batch_indices(31, 6, shared))
    second = torch.cat(impl.batch_indices(31, 6, shared))
    assert not torch.equal(first, second), (
        "two epochs drawn from the same generator came in the same order: draw a new permutation each call "
        "(do not re-seed the generator, and do not reuse an order computed once)"
    )
    assert not torch.equal(first, torch.arange(31)), "the epoch is not shuffled: the indices came back in order"


# lm_windows -----------------------------------------------------------------------------------------


@pytest.mark.kata("lm_windows")
def test_lm_windows_are_contiguous_with_targets_shifted_by_one(impl):
    n, n_ctx, batch_size = 40, 7, 5
    tokens = torch.arange(100, 100 + n)  # the value tells the position: tokens[i] = 100 + i
    inputs, targets = impl.lm_windows(tokens, n_ctx, batch_size, generator())
    assert inputs.shape == (batch_size, n_ctx) and targets.shape == (batch_size, n_ctx), (
        f"shapes {tuple(inputs.shape)}, {tuple(targets.shape)}; expected ({batch_size}, {n_ctx}) for both"
    )
    assert inputs.dtype == targets.dtype == torch.int64, (
        f"inputs and targets are {inputs.dtype} and {targets.dtype}: take them from the int64 tokens "
        "(F.cross_entropy wants int64 targets)"
    )
    starts = inputs[:, :1]
    assert torch.equal(inputs, starts + torch.arange(n_ctx)), (
        f"each input row should be n_ctx consecutive tokens of the text; got rows {inputs.tolist()}"
    )
    assert_close(
        targets,
        inputs + 1,
        what="targets (the tokens that follow the inputs)",
        hint="targets are the same window moved one token to the right, not the inputs themselves",
    )


@pytest.mark.kata("lm_windows")
def test_lm_windows_can_start_anywhere_a_whole_window_and_its_target_fit(impl):
    n_ctx = 5
    n = n_ctx + 4  # four valid starts: 0, 1, 2, 3 (start 3's last target is tokens[n - 1])
    tokens = torch.arange(n)
    try:
        inputs, targets = impl.lm_windows(tokens, n_ctx, 300, generator())
    except IndexError as error:
        raise AssertionError(
            f"lm_windows indexed beyond the end of the tokens ({error}): the last start is n - n_ctx - 1, "
            "because the targets reach one token past the window"
        ) from error
    starts = set(inputs[:, 0].tolist())
    assert starts == {0, 1, 2, 3}, (
        f"in 300 windows of {n_ctx} from {n} tokens the starts were {sorted(starts)}, expected every one of "
        "[0, 1, 2, 3] (each has probability 1/4; missing one by chance has probability below 1e-35). "
        "Off by one: torch.randint's upper bound is exclusive."
    )
    assert int(targets.max()) <= n - 1


@pytest.mark.kata("lm_windows")
def test_lm_windows_use_only_the_generator(impl):
    tokens = random_tokens(50)
    global_state = torch.get_rng_state()
    first = impl.lm_windows(tokens, 6, 4, generator(SEED))
    assert torch.equal(torch.get_rng_state(), global_state), (
        "lm_windows changed torch's global random state: draw the starts from the generator argument"
    )
    torch.manual_seed(SEED + 100)
    again = impl.lm_windows(tokens, 6, 4, generator(SEED))
    assert torch.equal(first[0], again[0]), "the same generator seed gave other windows: use the generator"
    shared = generator(SEED)
    one, two = impl.lm_windows(tokens, 6, 4, shared)[0], impl.lm_windows(tokens, 6, 4, shared)[0]
    assert not torch.equal(one, two), "two batches drawn one after the other from one generator were the same"


# split_windows --------------------------------------------------------------------------------------


@pytest.mark.kata("split_windows")
@pytest.mark.parametrize("n", [29, 28, 31, 8])
def test_split_windows_cover_the_tokens_in_order(impl, n):
    n_ctx = 7
    tokens = random_tokens(n, d_vocab=1000)
    windows = (n - 1) // n_ctx
    expected_inputs = torch.stack([tokens[i * n_ctx : (i + 1) * n_ctx] for i in range(windows)])
    expected_targets = torch.stack([tokens[i * n_ctx + 1 : (i + 1) * n_ctx + 1] for i in range(windows)])
    inputs, targets = impl.split_windows(tokens, n_ctx)
    assert inputs.dtype == targets.dtype == torch.int64, (
        f"inputs and targets are {inputs.dtype} and {targets.dtype}: keep the tokens' int64 (F.cross_entropy wants "
        "int64 targets)"
    )
    assert inputs.shape == (windows, n_ctx), (
        f"{n} tokens with n_ctx={n_ctx} make {windows} windows (the last target needs one token after its window), "
        f"got shape {tuple(inputs.shape)}"
    )
    assert_close(inputs, expected_inputs, what="inputs", hint="window i is tokens[i * n_ctx : (i + 1) * n_ctx]")
    assert_close(targets, expected_targets, what="targets", hint="the targets start one token later than the inputs")


# init_gpt2_weights ----------------------------------------------------------------------------------

INIT_SIZES = {
    "d_model": 48,
    "n_heads": 4,
    "d_head": 12,
    "d_mlp": 96,
    "n_layers": 3,
    "n_ctx": 20,
    "d_vocab": 53,
    "init_range": 0.05,
}


def initialised(impl, gen: torch.Generator | None) -> nn.Module:
    """A GPT2 whose every parameter was first set to 3.0, then initialised by the kata."""
    model = impl.transformer.GPT2(impl.transformer.Config(**INIT_SIZES))
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(3.0)
    global_state = torch.get_rng_state()
    assert impl.init_gpt2_weights(model, gen) is None, "init_gpt2_weights works in place and returns None"
    assert gen is None or torch.equal(torch.get_rng_state(), global_state), (
        "with a generator, init_gpt2_weights must not touch torch's global random state (pass the generator to "
        "every draw)"
    )
    return model


def pooled(model: nn.Module, kind: str) -> torch.Tensor:
    """Every parameter whose name ends with `.kind`, flattened and concatenated."""
    return torch.cat([p.detach().flatten() for name, p in model.named_parameters() if name.endswith("." + kind)])


@pytest.mark.kata("init_gpt2_weights")
def test_init_gpt2_weights_draws_normal_weights_with_gpt2s_scales(impl):
    model = initialised(impl, None)
    init_range, n_layers = INIT_SIZES["init_range"], INIT_SIZES["n_layers"]
    residual = init_range / math.sqrt(2 * n_layers)
    expected_std = {"W_E": init_range, "W_pos": init_range, "W_Q": init_range, "W_K": init_range}
    expected_std |= {"W_V": init_range, "W_in": init_range, "W_U": init_range, "W_O": residual, "W_out": residual}
    for kind, std in expected_std.items():
        values = pooled(model, kind)
        count = values.numel()
        # Standard errors: of the mean, std / sqrt(N); of the sample std, about std / sqrt(2N); of a
        # proportion p, sqrt(p (1 - p) / N). Five of them: a correct initialisation fails about once in
        # a million runs.
        mean, sample_std = values.mean().item(), values.std().item()
        assert abs(mean) < 5 * std / math.sqrt(count), f"{kind}: mean {mean:.2e}, expected 0"
        scale_hint = {
            "W_O": "W_O writes into the residual stream: divide its std by sqrt(2 * n_layers)",
            "W_out": "W_out writes into the residual stream: divide its std by sqrt(2 * n_layers)",
        }.get(kind, "only W_O and W_out are scaled down; every other matrix uses cfg.init_range itself")
        assert abs(sample_std / std - 1) < 5 / math.sqrt(2 * count), (
            f"{kind}: standard deviation {sample_std:.4g}, expected {std:.4g} (init_range={init_range}, "
            f"n_layers={n_layers}). {scale_hint}"
        )
        tail, p = (values.abs() > 2 * std).float().mean().item(), 0.0455  # P(|Z| > 2) for a normal
        assert abs(tail - p) < 5 * math.sqrt(p * (1 - p) / count), (
            f"{kind}: {tail:.2%} of the values lie beyond 2 standard deviations; a normal distribution puts "
            f"{p:.2%} there. Draw from a normal distribution (a uniform one with the same std has none there)."
        )


@pytest.mark.kata("init_gpt2_weights")
def test_init_gpt2_weights_zeroes_biases_and_resets_layer_norms(impl):
    model = initialised(impl, generator())
    for name, param in model.named_parameters():
        kind = name.rsplit(".", 1)[-1]
        if kind.startswith("b"):
            assert torch.all(param == 0), f"{name} should be all zeros after the initialisation, got {param[:3]}..."
        elif kind == "w":
            assert torch.all(param == 1), f"{name} (a LayerNorm scale) should be all ones, got {param[:3]}..."
        else:
            assert not torch.any(param == 3.0), f"{name} kept its old values: every W_ matrix is drawn afresh"


@pytest.mark.kata("init_gpt2_weights")
@pytest.mark.parametrize("seeded", [True, False], ids=["generator", "global"])
def test_init_gpt2_weights_ties_no_two_parameters(impl, seeded):
    model = initialised(impl, generator() if seeded else None)
    storages: dict[int, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        pointer = param.untyped_storage().data_ptr()
        assert pointer not in storages, (
            f"{name} shares its memory with {storages[pointer]}: the two are tied, so a step on one moves the other. "
            "Draw each parameter in place into its own tensor (GPT2's W_U is not W_E.T here)"
        )
        storages[pointer] = name
    matrices = [(name, param.detach()) for name, param in model.named_parameters() if param.dim() >= 2]
    matrices = [(name, param) for name, param in matrices if not name.rsplit(".", 1)[-1].startswith("b")]
    for (name, param), (other_name, other) in itertools.combinations(matrices, 2):
        for view, how in [(other, ""), (other.transpose(-1, -2), " transposed")]:
            assert view.shape != param.shape or not torch.equal(param, view), (
                f"{name} equals {other_name}{how}: every matrix is drawn on its own (one draw per parameter from "
                "the same generator, not a copy of another, nor a generator seeded afresh for each)"
            )


@pytest.mark.kata("init_gpt2_weights")
def test_init_gpt2_weights_draw_from_the_generator(impl):
    first = parameters_of(initialised(impl, generator(SEED)))
    again = parameters_of(initialised(impl, generator(SEED)))
    for name, value in first.items():
        assert torch.equal(value, again[name]), f"{name}: the same generator seed gave other weights"


# evaluate -------------------------------------------------------------------------------------------


@pytest.mark.kata("evaluate")
@pytest.mark.parametrize("was_training", [True, False])
def test_evaluate_averages_over_every_prediction_in_eval_mode(impl, was_training):
    model = TinyLM().train(was_training)
    windows, pos = 7, 5
    inputs, targets = torch.randint(0, D_VOCAB, (windows, pos)), torch.randint(0, D_VOCAB, (windows, pos))
    with torch.no_grad():
        expected = cross_entropy(copy.deepcopy(model).eval(), inputs, targets).item()
        training_loss = cross_entropy(copy.deepcopy(model).train(), inputs, targets).item()
    model.modes.clear()
    loss = impl.evaluate(model, inputs, targets, 3)  # batches of 3, 3 and 1 windows
    assert type(loss) is float, f"evaluate should return a Python float, got {type(loss).__name__}"
    assert model.batch_sizes[-len(model.modes) :] == [3, 3, 1], (
        f"evaluate ran the model on batches of {model.batch_sizes[-len(model.modes) :]} windows, expected [3, 3, 1] "
        "with batch_size=3: batch_size windows at a time (it bounds the memory of one forward pass)"
    )
    assert model.modes and not any(model.modes), (
        "the model ran in training mode during evaluate: call model.eval() first"
        + (f" (its loss would be {training_loss:.4f} instead of {expected:.4f})" if was_training else "")
    )
    assert model.training == was_training, (
        f"the model was {'in training' if was_training else 'in eval'} mode before evaluate and is "
        f"{'in training' if model.training else 'in eval'} mode after it: put it back as it was"
    )
    assert_close(
        torch.tensor(loss),
        torch.tensor(expected),
        what="the mean loss over all 7 windows, evaluated in batches of 3",
        hint="average over every prediction: a mean of the batch means weighs the last, shorter batch too much",
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.kata("evaluate")
def test_evaluate_builds_no_autograd_graph(impl):
    model = TinyLM()
    inputs, targets = torch.randint(0, D_VOCAB, (4, 6)), torch.randint(0, D_VOCAB, (4, 6))
    impl.evaluate(model, inputs, targets, 4)
    assert model.grad_enabled and not any(model.grad_enabled), (
        "the model ran with autograd recording: evaluate inside torch.no_grad(), which saves the memory and "
        "time of a graph nobody will backpropagate through"
    )
    assert model.table.grad is None, "evaluate left gradients in the model: it must not call backward"


# train_step -----------------------------------------------------------------------------------------


def oracle_step(model: nn.Module, optimiser, inputs, targets, max_norm: float) -> float:
    model.train()
    optimiser.zero_grad()
    loss = cross_entropy(model, inputs, targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    optimiser.step()
    return loss.item()


class PlainSGD:
    """Plain gradient descent, p = p - lr * p.grad, with the two methods train_step may use. (Written out
    here rather than taken from torch.optim, whose first step imports torch._dynamo: seconds.)"""

    def __init__(self, params, lr: float):
        self.params, self.lr = list(params), lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        with torch.no_grad():
            for p in self.params:
                if p.grad is not None:
                    p -= self.lr * p.grad


STEP_HINT = (
    "zero the old gradients first (backward adds to .grad), and clip all the model's gradients together between "
    "backward and step"
)


@pytest.mark.kata("train_step")
def test_train_step_matches_a_step_written_out(impl):
    ours = TinyLM().eval()  # train_step must switch it to training mode
    theirs = copy.deepcopy(ours)
    our_optimiser, their_optimiser = PlainSGD(ours.parameters(), lr=0.5), PlainSGD(theirs.parameters(), lr=0.5)
    max_norm = 0.3  # far below the gradient's norm: clipping changes every step
    for step in range(3):
        inputs, targets = torch.randint(0, D_VOCAB, (3, 5)), torch.randint(0, D_VOCAB, (3, 5))
        expected = oracle_step(theirs, their_optimiser, inputs, targets, max_norm)
        loss = impl.train_step(ours, our_optimiser, inputs, targets, max_norm)
        assert type(loss) is float, f"train_step should return a Python float, got {type(loss).__name__}"
        assert_close(
            torch.tensor(loss),
            torch.tensor(expected),
            what=f"the loss of step {step + 1}",
            hint="the loss in training mode (model.train()), before the optimiser's step",
            atol=1e-5,
            rtol=1e-5,
        )
        for name in ("table", "bias"):
            assert_close(
                getattr(ours, name).detach(),
                getattr(theirs, name).detach(),
                what=f"the {name} after step {step + 1} (gradient descent, lr 0.5, max_norm {max_norm})",
                hint=STEP_HINT,
                atol=1e-5,
                rtol=1e-5,
            )


@pytest.mark.kata("train_step")
def test_train_step_leaves_the_clipped_gradients(impl):
    model = TinyLM()
    inputs, targets = torch.randint(0, D_VOCAB, (3, 5)), torch.randint(0, D_VOCAB, (3, 5))
    probe = copy.deepcopy(model)
    cross_entropy(probe, inputs, targets).backward()
    unclipped = global_grad_norm(probe)
    max_norm = unclipped / 4
    impl.train_step(model, PlainSGD(model.parameters(), lr=0.1), inputs, targets, max_norm)
    assert model.table.grad is not None, "train_step left no gradient: zero the gradients at the start, not the end"
    assert_close(
        torch.tensor(global_grad_norm(model)),
        torch.tensor(max_norm),
        what=f"the gradient's norm after train_step with max_norm={max_norm:.3g} (unclipped {unclipped:.3g})",
        hint=STEP_HINT,
        atol=1e-6,
        rtol=1e-4,
    )


# EarlyStopping --------------------------------------------------------------------------------------


@pytest.mark.kata("EarlyStopping")
def test_early_stopping_keeps_a_copy_of_the_best_weights_and_stops_after_patience(impl):
    model = TinyLM()
    stopper = impl.EarlyStopping(patience=3)
    losses = [3.0, 2.0, 2.5, 1.0, 1.5, 1.0, 1.2]  # best at index 3; index 5 only ties it
    expected_stops = [False, False, False, False, False, False, True]
    best_weights = None
    for index, (loss, expected) in enumerate(zip(losses, expected_stops, strict=True)):
        with torch.no_grad():
            model.table.add_(torch.randn_like(model.table))  # an optimiser step changes the weights in place
        if index == losses.index(min(losses)):
            best_weights = model.table.detach().clone()
        stop = stopper.update(model, loss)
        seen = losses[: index + 1]
        assert stop == expected, (
            f"after the losses {seen} with patience 3, update returned {stop}, expected {expected}. "
            "Only a loss strictly below the best so far is an improvement (an equal one is not), an "
            "improvement resets the count, and training stops once patience evaluations in a row did not improve."
        )
    assert stopper.best_loss == min(losses), f"best_loss is {stopper.best_loss}, expected {min(losses)}"
    assert stopper.best_state is not None and set(stopper.best_state) == set(model.state_dict()), (
        f"best_state should be the model's whole state_dict, with the keys {sorted(model.state_dict())} (its buffers "
        f"too), from the best evaluation; got {None if stopper.best_state is None else sorted(stopper.best_state)}"
    )
    assert_close(
        stopper.best_state["table"],
        best_weights,
        what="best_state['table'], the weights when the loss was best",
        hint="store a copy (copy.deepcopy or .clone()): model.state_dict() shares the model's tensors, which "
        "later steps keep changing; and a loss that only ties the best is no improvement",
    )


@pytest.mark.kata("EarlyStopping")
def test_early_stopping_counts_only_improvements_larger_than_min_delta(impl):
    model = TinyLM()
    stopper = impl.EarlyStopping(patience=2, min_delta=0.5)
    # 3.0 is the first best; 2.75 is lower, but not by more than 0.5; 2.25 is: it resets the count. Then 1.875
    # is not enough, nor is 1.75 (exactly 2.25 - 0.5, not strictly below): two in a row, stop.
    losses = [3.0, 2.75, 2.25, 1.875, 1.75]
    expected_stops = [False, False, False, False, True]
    expected_best = [3.0, 3.0, 2.25, 2.25, 2.25]
    best_weights = None
    for index, (loss, expected) in enumerate(zip(losses, expected_stops, strict=True)):
        with torch.no_grad():
            model.table.add_(torch.randn_like(model.table))
        if loss in (3.0, 2.25):
            best_weights = model.table.detach().clone()
        stop = stopper.update(model, loss)
        assert stop == expected and stopper.best_loss == expected_best[index], (
            f"after the losses {losses[: index + 1]} with patience 2 and min_delta 0.5, update returned {stop} and "
            f"best_loss is {stopper.best_loss}; expected {expected} and {expected_best[index]}. An improvement is "
            "a loss below best_loss - min_delta; a smaller drop counts as no improvement and changes neither "
            "best_loss nor best_state"
        )
    assert_close(
        stopper.best_state["table"],
        best_weights,
        what="best_state['table'] after the losses 3.0, 2.75, 2.25, 1.875, 1.75 with min_delta 0.5",
        hint="the weights of the last real improvement (2.25): a drop of at most min_delta stores nothing",
    )
    plain = impl.EarlyStopping(patience=2)
    assert plain.min_delta == 0.0, f"min_delta defaults to 0.0, got {plain.min_delta!r}"
    assert [plain.update(model, loss) for loss in [3.0, 2.75, 2.5, 2.5]] == [False, False, False, False], (
        "with min_delta 0 (the default) every strictly lower loss is an improvement"
    )


# train ----------------------------------------------------------------------------------------------

TRAIN = {"steps": 12, "batch_size": 3, "n_ctx": 5, "max_lr": 0.05, "warmup_steps": 3, "eval_every": 4}


class GroupsByHand:
    """Your AdamW (checked against torch.optim.AdamW in test_optimisers.py) on each group of TinyLM by hand, with
    GPT-2's betas: the table (a matrix) decayed by weight_decay, the bias (a vector) not at all."""

    def __init__(self, impl, model: nn.Module, weight_decay: float):
        self.optimisers = [
            impl.optimisers.AdamW([model.table], betas=(0.9, 0.95), weight_decay=weight_decay),
            impl.optimisers.AdamW([model.bias], betas=(0.9, 0.95), weight_decay=0.0),
        ]

    def set_lr(self, lr: float) -> None:
        for optimiser in self.optimisers:
            optimiser.lr = lr

    def zero_grad(self) -> None:
        for optimiser in self.optimisers:
            optimiser.zero_grad()

    def step(self) -> None:
        for optimiser in self.optimisers:
            optimiser.step()


# train's defaults (weight decay 0.1, min_lr = max_lr / 10), and other values given.
OPTIMISER_CASES = {"defaults": {}, "given": {"weight_decay": 0.3, "min_lr": 0.02}}


@pytest.mark.kata("train")
def test_train_sets_the_groups_the_schedule_and_clips_before_each_step(impl, monkeypatch):
    model = TinyLM()
    seen = []  # (names of its parameters, weight_decay, betas, lr, the global gradient norm) at every AdamW step
    max_norm, weight_decay, min_lr = 0.05, 0.3, 0.02

    class SpyAdamW(impl.optimisers.AdamW):
        def step(self, *args, **kwargs):
            names = tuple(name for name, p in model.named_parameters() if any(p is q for q in self.params))
            seen.append((names, self.weight_decay, tuple(self.betas), self.lr, global_grad_norm(model)))
            return super().step(*args, **kwargs)

    monkeypatch.setattr(impl.optimisers, "AdamW", SpyAdamW)
    config = TRAIN | {"max_norm": max_norm, "weight_decay": weight_decay, "min_lr": min_lr}
    impl.train(model, random_tokens(60), random_tokens(23), **config, generator=generator())
    steps = TRAIN["steps"]
    groups = {names: (wd, betas) for names, wd, betas, _, _ in seen}
    expected_groups = {("table",): (weight_decay, (0.9, 0.95)), ("bias",): (0.0, (0.9, 0.95))}
    assert groups == expected_groups, (
        f"train's optimiser stepped these groups (parameters: (weight_decay, betas)): {groups}; expected "
        f"{expected_groups}: GroupedAdamW(param_groups(model, weight_decay), betas=(0.9, 0.95)) with train's "
        "weight_decay, the matrix decayed and the bias not"
    )
    expected = [
        impl.optimisers.warmup_cosine_lr(s, TRAIN["max_lr"], TRAIN["warmup_steps"], steps, min_lr) for s in range(steps)
    ]
    for names in expected_groups:
        lrs = [lr for group, _, _, lr, _ in seen if group == names]
        assert len(lrs) == steps, f"the optimiser of {names} stepped {len(lrs)} times in {steps} steps of training"
        assert_close(
            torch.tensor(lrs),
            torch.tensor(expected),
            what=f"the lr of the group {names} at each of its steps",
            hint="set the optimiser's lr to warmup_cosine_lr(step, ..., min_lr) before every train_step; recording "
            "it is not enough",
        )
    norms = [norm for *_, norm in seen]
    assert max(norms) <= max_norm * (1 + 1e-4), (
        f"the gradients' global norm reached {max(norms):.3g} when the optimiser stepped, above max_norm={max_norm}: "
        "clip (optimisers.clip_grad_norm) after backward and before the step, with the max_norm given to train"
    )


@pytest.mark.kata("train")
@pytest.mark.parametrize("case", OPTIMISER_CASES)
def test_train_matches_a_loop_written_with_torch(impl, case):
    options = OPTIMISER_CASES[case]
    weight_decay, min_lr = options.get("weight_decay", 0.1), options.get("min_lr", TRAIN["max_lr"] / 10)
    train_tokens, val_tokens = random_tokens(60), random_tokens(23)
    ours = TinyLM().eval()
    assert_no_symmetries(ours, what="the test's TinyLM")
    theirs = copy.deepcopy(ours)
    max_norm = 0.5
    history = impl.train(ours, train_tokens, val_tokens, **TRAIN, generator=generator(), max_norm=max_norm, **options)

    steps, n_ctx, batch_size = TRAIN["steps"], TRAIN["n_ctx"], TRAIN["batch_size"]
    optimiser = GroupsByHand(impl, theirs, weight_decay)
    windows = (len(val_tokens) - 1) // n_ctx
    val_inputs = val_tokens[: windows * n_ctx].view(windows, n_ctx)
    val_targets = val_tokens[1 : windows * n_ctx + 1].view(windows, n_ctx)
    gen = generator()
    expected = {"train_loss": [], "lr": [], "val_loss": [], "val_step": []}
    for step in range(steps):
        lr = impl.optimisers.warmup_cosine_lr(step, TRAIN["max_lr"], TRAIN["warmup_steps"], steps, min_lr)
        optimiser.set_lr(lr)
        inputs, targets = impl.lm_windows(train_tokens, n_ctx, batch_size, gen)
        expected["train_loss"].append(oracle_step(theirs, optimiser, inputs, targets, max_norm))
        expected["lr"].append(lr)
        if (step + 1) % TRAIN["eval_every"] == 0:
            with torch.no_grad():
                expected["val_loss"].append(cross_entropy(theirs.eval(), val_inputs, val_targets).item())
            expected["val_step"].append(float(step + 1))

    assert set(history) == set(expected), f"history has the keys {sorted(history)}, expected {sorted(expected)}"
    for key, values in history.items():
        kinds = {type(value).__name__ for value in values}
        assert type(values) is list and kinds <= {"float"}, (
            f"history[{key!r}] should be a list of Python floats, got a {type(values).__name__} of {sorted(kinds)}"
        )
    assert history["val_step"] == expected["val_step"], (
        f"evaluated after the steps {history['val_step']}, expected {expected['val_step']} (every eval_every steps)"
    )
    hints = {
        "lr": f"before each step, the learning rate is warmup_cosine_lr(step, max_lr, warmup_steps, steps, min_lr), "
        f"here with min_lr {min_lr:g} ({'given' if 'min_lr' in options else 'max_lr / 10 when min_lr is None'})",
        "train_loss": "each step: a fresh lm_windows batch from the generator, then train_step with max_norm; the "
        f"optimiser is GroupedAdamW(param_groups(model, weight_decay={weight_decay}), betas=(0.9, 0.95))",
        "val_loss": "evaluate on every split_windows window of the validation tokens",
    }
    for key, hint in hints.items():
        assert_close(
            torch.tensor(history[key]),
            torch.tensor(expected[key]),
            what=f"history[{key!r}]",
            hint=hint,
            atol=1e-4,
            rtol=1e-4,
        )
    for name in ("table", "bias"):
        assert_close(
            getattr(ours, name).detach(),
            getattr(theirs, name).detach(),
            what=f"the trained {name}",
            hint=hints["train_loss"],
            atol=1e-4,
            rtol=1e-4,
        )


@pytest.mark.kata("train")
def test_train_stops_early_and_restores_the_best_weights(impl):
    # The validation text runs the training text's cycle backwards: the better the model learns the
    # training bigrams, the worse it predicts validation, so the validation loss soon rises.
    cycle = torch.arange(D_VOCAB)
    train_tokens, val_tokens = cycle.repeat(8), cycle.flip(0).repeat(3)
    model = TinyLM()
    with torch.no_grad():
        model.table.mul_(0.01)
        model.bias.mul_(0.01)
    stopper = impl.EarlyStopping(patience=2)
    config = TRAIN | {"steps": 60, "eval_every": 2, "max_lr": 0.2}
    history = impl.train(model, train_tokens, val_tokens, **config, generator=generator(), early_stopping=stopper)
    evaluations = config["steps"] // config["eval_every"]
    assert len(history["val_loss"]) < evaluations, (
        f"train ran all {evaluations} evaluations although the validation loss rose: stop when early_stopping.update "
        f"returns True (validation losses: {[round(v, 3) for v in history['val_loss']]})"
    )
    assert len(history["train_loss"]) == int(history["val_step"][-1]), "train kept stepping after it should stop"
    windows = (len(val_tokens) - 1) // config["n_ctx"]
    with torch.no_grad():
        final = cross_entropy(
            model.eval(),
            val_tokens[: windows * config["n_ctx"]].view(windows, -1),
            val_tokens[1 : windows * config["n_ctx"] + 1].view(windows, -1),
        ).item()
    assert_close(
        torch.tensor(final),
        torch.tensor(min(history["val_loss"])),
        what="the validation loss of the model train returned",
        hint="the best validation loss: load early_stopping.best_state into the model at the end",
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.kata("train")
def test_train_restores_the_best_weights_even_when_it_never_stopped(impl):
    # The same falling-then-rising validation loss, with a patience too long to ever stop.
    cycle = torch.arange(D_VOCAB)
    train_tokens, val_tokens = cycle.repeat(8), cycle.flip(0).repeat(3)
    model = TinyLM()
    with torch.no_grad():
        model.table.mul_(0.01)
        model.bias.mul_(0.01)
    config = TRAIN | {"steps": 30, "eval_every": 2, "max_lr": 0.2}
    stopper = impl.EarlyStopping(patience=100)
    history = impl.train(model, train_tokens, val_tokens, **config, generator=generator(), early_stopping=stopper)
    assert len(history["train_loss"]) == config["steps"], "with patience 100, train should run every step"
    best = min(history["val_loss"])
    assert history["val_loss"][-1] > best + 1e-3, "the test's premise: the validation loss rose after its best"
    windows = (len(val_tokens) - 1) // config["n_ctx"]
    with torch.no_grad():
        final = cross_entropy(
            model.eval(),
            val_tokens[: windows * config["n_ctx"]].view(windows, -1),
            val_tokens[1 : windows * config["n_ctx"] + 1].view(windows, -1),
        ).item()
    assert_close(
        torch.tensor(final),
        torch.tensor(best),
        what="the validation loss of the model train returned (early stopping given, never fired)",
        hint="load early_stopping.best_state into the model at the end whenever early_stopping is given, not only "
        "when it stopped training",
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.kata("train")
def test_a_large_model_overfits_a_tiny_training_text(impl):
    # 300 characters of training text, far too few for a bigram table of 60 x 60 logits: it learns their
    # bigrams by heart, gives every bigram it never saw next to no probability, and so does worse on text
    # it never saw than a uniform guess over the characters (log of their number).
    train_text, val_text = impl.load_corpus()
    train_text, val_text = train_text[10_000:10_300], val_text[:1_000]
    chars = sorted(set(train_text + val_text))
    ids = {c: i for i, c in enumerate(chars)}
    train_tokens = torch.tensor([ids[c] for c in train_text])
    val_tokens = torch.tensor([ids[c] for c in val_text])
    model = TinyLM(len(chars))
    with torch.no_grad():
        model.table.zero_()  # a uniform guess to start with
        model.bias.zero_()
        model.train_shift.zero_()  # the same model in both modes, so the gap is overfitting alone
    config = {"steps": 60, "batch_size": 8, "n_ctx": 16, "max_lr": 0.3, "warmup_steps": 5, "eval_every": 30}
    history = impl.train(model, train_tokens, val_tokens, **config, generator=generator())
    train_loss = sum(history["train_loss"][-10:]) / 10
    val_loss, uniform = history["val_loss"][-1], math.log(len(chars))
    assert val_loss > train_loss + 2.0 and val_loss > uniform, (
        f"after {config['steps']} steps on 300 characters the training loss is {train_loss:.2f} and the validation "
        f"loss {val_loss:.2f} (a uniform guess: {uniform:.2f}): the model should have overfitted, its training loss "
        "far below its validation loss. Is train training on train_tokens and evaluating on val_tokens?"
    )


# train_gpt ------------------------------------------------------------------------------------------

# The capstone's model: 2 layers of width 64, 32 characters of context (about 115,000 parameters).
TINY_GPT = {"d_model": 64, "n_heads": 4, "d_head": 16, "d_mlp": 256, "n_layers": 2, "n_ctx": 32}


@pytest.mark.kata("train_gpt")
def test_train_gpt_builds_tokeniser_and_model_and_is_reproducible(impl):
    train_text, val_text = impl.load_corpus()
    # A character that only the validation text has: the tokeniser must know it too.
    train_text, val_text = train_text[:3_000], val_text[:500] + "\u00b0"
    assert "\u00b0" not in train_text
    cfg = impl.transformer.Config(d_model=24, n_heads=3, d_head=8, d_mlp=40, n_layers=2, n_ctx=16, d_vocab=1)
    torch.manual_seed(SEED + 1)
    given = dataclasses.replace(cfg)
    model, tokeniser, history = impl.train_gpt(train_text, val_text, cfg, 10, 4, 1e-3, generator())
    assert cfg == given, f"train_gpt changed the caller's cfg to {cfg}: build the model's own with dataclasses.replace"
    vocabulary = set(train_text + val_text)
    assert tokeniser.vocab_size == len(vocabulary) == model.cfg.d_vocab, (
        f"the tokeniser knows {tokeniser.vocab_size} characters and the model {model.cfg.d_vocab}; the two texts use "
        f"{len(vocabulary)}: build the tokeniser on both texts and size the model's d_vocab by it"
    )
    assert (model.cfg.d_model, model.cfg.n_ctx) == (cfg.d_model, cfg.n_ctx), "build the model from cfg"
    assert len(history["train_loss"]) == 10 and history["val_step"] == [2.0, 4.0, 6.0, 8.0, 10.0], (
        f"{len(history['train_loss'])} steps, evaluations after {history['val_step']}: expected 10 steps, "
        "evaluated after every second one (eval_every = steps // 5)"
    )
    schedule = [impl.optimisers.warmup_cosine_lr(step, 1e-3, 1, 10, 1e-4) for step in range(10)]
    assert_close(
        torch.tensor(history["lr"]),
        torch.tensor(schedule),
        what="the learning rates of 10 steps with max_lr 1e-3",
        hint="train with warmup_steps = steps // 10, and train's default min_lr (max_lr / 10)",
    )
    torch.manual_seed(SEED + 2)  # another global random state: the generator alone must decide everything
    again, _, _ = impl.train_gpt(train_text, val_text, cfg, 10, 4, 1e-3, generator())
    for (name, param), other in zip(model.named_parameters(), again.parameters(), strict=True):
        assert torch.equal(param, other), (
            f"{name} differs between two runs with the same generator seed: initialise the model with "
            "init_gpt2_weights(model, generator) (GPT2's constructor draws from the global random state), and "
            "pass the generator on to train"
        )


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.kata("train_gpt")
def test_train_gpt_learns_more_than_letter_frequencies(impl):
    train_text, val_text = impl.load_corpus()
    val_text = val_text[:8_000]
    cfg = impl.transformer.Config(**TINY_GPT, d_vocab=1)
    steps = 200
    model, tokeniser, history = impl.train_gpt(train_text, val_text, cfg, steps, 16, 3e-3, generator())

    vocabulary = set(train_text + val_text)
    assert len(history["train_loss"]) == steps and len(history["val_loss"]) == 5, (
        f"{len(history['train_loss'])} training steps and {len(history['val_loss'])} evaluations; expected {steps} "
        "and 5 (eval_every = steps // 5)"
    )
    counts = Counter(val_text)
    unigram_entropy = -sum(c / len(val_text) * math.log(c / len(val_text)) for c in counts.values())
    final = history["val_loss"][-1]
    assert final < unigram_entropy - 0.4, (
        f"validation loss {final:.3f} nats after {steps} steps; a model that knows only how frequent each character "
        f"is scores {unigram_entropy:.3f}. Expected at least 0.4 below it: is the model trained (lr schedule, "
        "init_gpt2_weights, the whole training text)?"
    )

    prompt = torch.tensor([tokeniser.encode("def ")] * 2)
    sampled = impl.transformer.generate_sampled(model, prompt, 20, generator=generator())  # 24 <= n_ctx
    for row in sampled.tolist():
        text = tokeniser.decode(row)
        assert len(text) == 24 and text.startswith("def ") and set(text) <= vocabulary, f"sampled text {text!r}"


# The RNG contract of every kata that draws (katakit.randomness) -------------------------------------


@pytest.mark.kata("batch_indices")
def test_batch_indices_keep_the_rng_contract(impl):
    def epoch(drop_last):
        return lambda generator: impl.batch_indices(29, 4, generator, drop_last=drop_last)

    check_rng_contract(
        {"drop_last=False": epoch(False), "drop_last=True": epoch(True)}, what="batch_indices", sampler="torch.randperm"
    )


@pytest.mark.kata("lm_windows")
def test_lm_windows_keep_the_rng_contract(impl):
    tokens = torch.arange(10_000)  # the value tells the position: a window's first input is its start

    def starts(windows):
        return windows[0][:, 0]

    check_rng_contract(
        lambda generator: impl.lm_windows(tokens, 6, 20, generator),
        what="lm_windows",
        independent={
            "window starts": starts,
            "steps between consecutive window starts": lambda windows: starts(windows).diff(),
        },
        sampler="torch.randint",
    )


@pytest.mark.kata("init_gpt2_weights")
def test_init_gpt2_weights_keep_the_rng_contract(impl):
    def weights(generator):
        with torch.random.fork_rng(devices=[]):  # GPT2's constructor draws from the global state; the kata must not
            model = impl.transformer.GPT2(impl.transformer.Config(**INIT_SIZES))
        impl.init_gpt2_weights(model, generator)
        return parameters_of(model)

    with torch.random.fork_rng(devices=[]):
        model = impl.transformer.GPT2(impl.transformer.Config(**INIT_SIZES))
    shapes = {name: p.shape for name, p in model.named_parameters() if name.rsplit(".", 1)[-1].startswith("W_")}
    names = list(shapes)
    same_shape = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if shapes[a] == shapes[b]]
    check_rng_contract(
        weights,
        what="init_gpt2_weights",
        global_rng=True,
        independent={f"{a} and {b}": lambda p, a=a, b=b: [p[a], p[b]] for a, b in same_shape},
        sampler="nn.init.normal_",
    )


@pytest.mark.kata("train")
def test_train_keeps_the_rng_contract(impl):
    base, train_tokens, val_tokens = TinyLM(), random_tokens(60), random_tokens(23)
    config = TRAIN | {"steps": 4, "eval_every": 2, "warmup_steps": 1}

    def trained(early_stopping):
        def run(generator):
            model = copy.deepcopy(base)
            stopper = impl.EarlyStopping(patience=1) if early_stopping else None
            history = impl.train(model, train_tokens, val_tokens, **config, generator=generator, early_stopping=stopper)
            return history, parameters_of(model)

        return run

    check_rng_contract(
        {"early_stopping=None": trained(False), "early_stopping=EarlyStopping(1)": trained(True)},
        what="train",
        sampler="lm_windows",
    )


@pytest.mark.kata("train_gpt")
def test_train_gpt_keeps_the_rng_contract(impl):
    train_text, val_text = impl.load_corpus()
    train_text, val_text = train_text[:1_000], val_text[:41]  # 5 validation windows: evaluation is cheap
    cfg = impl.transformer.Config(d_model=12, n_heads=2, d_head=6, d_mlp=20, n_layers=1, n_ctx=8, d_vocab=1)

    def trained(generator):
        model, _, history = impl.train_gpt(train_text, val_text, cfg, 5, 2, 1e-3, generator)
        return parameters_of(model), history

    # Building the GPT2 draws its first weights from the global state, as the docstring's recipe does;
    # init_gpt2_weights then overwrites every one of them, so only the generator decides the result.
    check_rng_contract(trained, what="train_gpt", global_untouched=False, sampler="init_gpt2_weights and train")


@pytest.mark.kata("train_gpt")
def test_train_gpt_hands_its_one_rng_to_init_and_then_to_train(impl):
    train_text, val_text = impl.load_corpus()
    train_text, val_text = train_text[:1_000], val_text[:41]  # 5 validation windows: evaluation is cheap
    cfg = impl.transformer.Config(d_model=12, n_heads=2, d_head=6, d_mlp=20, n_layers=1, n_ctx=8, d_vocab=1)
    seed = int(torch.randint(0, 2**31, ()))
    model, tokeniser, history = impl.train_gpt(train_text, val_text, cfg, 5, 2, 1e-3, generator(seed))
    shared = generator(seed)  # the oracle: the docstring's recipe, one generator drawn by init, then by train
    with torch.random.fork_rng(devices=[]):
        twin = impl.transformer.GPT2(model.cfg)
    impl.init_gpt2_weights(twin, shared)
    train_tokens, val_tokens = (
        torch.tensor(tokeniser.encode(text), dtype=torch.long) for text in (train_text, val_text)
    )
    expected = impl.train(
        twin, train_tokens, val_tokens, 5, 2, cfg.n_ctx, 1e-3, warmup_steps=0, eval_every=1, generator=shared
    )
    assert_close(
        torch.tensor(history["train_loss"]),
        torch.tensor(expected["train_loss"]),
        what="the training losses of train_gpt",
        hint="one generator for everything: init_gpt2_weights(model, generator), then train(..., generator=generator) "
        "with the same one, which goes on where the initialisation left it (not a new or re-seeded generator)",
    )
