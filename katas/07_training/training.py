"""Training a GPT-2 from scratch: shuffled epochs, random windows of text, nanoGPT's initialisation, the
training step, evaluation, the training loop with its learning-rate schedule, early stopping, and a
tiny character-level GPT-2 trained on the Python Language Reference.

The loss throughout is the cross-entropy of the model's logits at every position against `targets`,
the inputs shifted by one token (lm_windows and split_windows build both): each of the n_ctx
positions of a window predicts its next token, so no position is wasted. (06's next_token_loss
does the same on one sequence, dropping its last position, which has no target.)

Read or watch first (curriculum.toml's `reading`):
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building
  micrograd, the last part (the training loop: forward, zero the gradients, backward, update), the
  loop every kata here builds on:
  https://www.youtube.com/watch?v=VMj-3S1tku0
- Andrej Karpathy, Let's build GPT: from scratch, in code, spelled out, all of it: the
  character-level tokeniser, the train/validation split, random batches of contiguous windows, the
  training loop with AdamW, evaluating both losses every few steps, and sampling text from the
  trained model:
  https://www.youtube.com/watch?v=kCc8FmEb1nY
- Andrej Karpathy, Let's build the GPT Tokenizer, the byte-level BPE parts (UTF-8 bytes, counting
  pairs, merging, training, encoding and decoding), with its code, minbpe:
  https://www.youtube.com/watch?v=zduSFxRajkE
- Neel Nanda, transformer template notebook, its 'Training a Model' section: a tiny GPT-2 trained
  with AdamW on real text, its loss falling step by step:
  https://www.neelnanda.io/transformer-template
- fast.ai, Practical Deep Learning for Coders, lessons 1-5 if you want the longer road (the list
  calls it good but more than you need): overfitting, validation sets, learning rates and schedules:
  https://course.fast.ai/
"""

import copy
import dataclasses
import importlib
import math

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Int
from torch import Tensor, nn

from katakit import in_place, kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)
optimisers = importlib.import_module(".optimisers", __package__)
tokenisers = importlib.import_module(".tokenisers", __package__)

VALIDATION_FRACTION = 0.1


def load_corpus() -> tuple[str, str]:
    """Real English text, offline: (train_text, validation_text). Given, not a kata.

    The text is the Python Language Reference as shipped inside Python's standard library
    (`pydoc_data.topics.topics`, the pages `help()` shows: about 79 of them, some 465,000 characters),
    Copyright the Python Software Foundation, under the PSF License Agreement (the licence of Python
    itself). The pages are joined in sorted order of their names; the first 90% of the characters are
    the training text, the last 10% the validation text, so the split is the same on every run (it
    depends only on the Python version, whose documentation this is).
    """
    from pydoc_data.topics import topics

    text = "".join(topics[name] for name in sorted(topics))
    cut = int(len(text) * (1 - VALIDATION_FRACTION))
    return text[:cut], text[cut:]


@kata
def batch_indices(
    n: int, batch_size: int, generator: torch.Generator, drop_last: bool = False
) -> list[Int[Tensor, "_batch"]]:
    """One epoch of shuffled mini-batches: the indices 0 .. n-1 in a random order, cut into batches.

    Every index appears exactly once in the epoch, in batches of batch_size; the last batch holds what
    is left over (fewer than batch_size indices) unless drop_last is True, in which case it is dropped,
    as torch.utils.data.DataLoader does. All the randomness comes from `generator`, never from torch's
    global random state, so a seed reproduces the epoch; calling again with the same generator gives
    the next epoch, in another order. Draw the order as one torch.randperm(n, generator=generator) and cut
    it in order: then the epoch is exactly the one torch's DataLoader draws with the same generator
    (RandomSampler + BatchSampler), which the tests check. Every index is an int64 tensor element.

    Shapes:
        returns: a list of ceil(n / batch_size) index tensors (floor(n / batch_size) with drop_last),
                 each [batch_size] except perhaps the last

    Hints (the next one: katas hint batch_indices 2):
        1. Shuffle once, then cut: one random permutation of range(n) holds every index exactly once.
    """
    raise NotImplementedError


@kata
def lm_windows(
    tokens: Int[Tensor, "n"], n_ctx: int, batch_size: int, generator: torch.Generator
) -> tuple[Int[Tensor, "batch n_ctx"], Int[Tensor, "batch n_ctx"]]:
    """A training batch for a language model: batch_size windows of n_ctx consecutive tokens, each
    starting at a random position of `tokens`, and their targets, the same windows shifted one
    token to the right.

    targets[b, t] = tokens[start_b + t + 1] is the token that follows inputs[b, t] = tokens[start_b + t],
    so the window needs n_ctx + 1 tokens: every start from 0 to n - n_ctx - 1 (inclusive) must be
    possible, and nothing beyond. Draw the starts from `generator` (not torch's global random state),
    independently of each other (windows may overlap).

    Shapes:
        tokens: [n], the whole training text as token ids (n > n_ctx)
        returns: (inputs [batch_size, n_ctx], targets [batch_size, n_ctx])

    Hints (the next one: katas hint lm_windows 2):
        1. Count the valid starts with the target in mind: the last target of a window is n_ctx tokens
           after its start.
    """
    raise NotImplementedError


@kata
def split_windows(
    tokens: Int[Tensor, "n"], n_ctx: int
) -> tuple[Int[Tensor, "windows n_ctx"], Int[Tensor, "windows n_ctx"]]:
    """Cut `tokens` into consecutive, non-overlapping windows of n_ctx tokens, with their targets:
    every window shifted one token to the right. For evaluation, which must be the same every time.

    Window i covers tokens[i * n_ctx : (i + 1) * n_ctx] and its targets tokens[i * n_ctx + 1 : (i + 1) * n_ctx + 1].
    Take as many windows as fit: the targets of the last one need one token after it, so
    windows = (n - 1) // n_ctx; leftover tokens at the end are not used.

    Shapes:
        tokens: [n] (n > n_ctx)
        returns: (inputs [windows, n_ctx], targets [windows, n_ctx]), windows = (n - 1) // n_ctx

    Hints (the next one: katas hint split_windows 2):
        1. Take the first windows * n_ctx tokens for the inputs, and the same number starting one token
           later for the targets.
    """
    raise NotImplementedError


@kata
@in_place("model")
def init_gpt2_weights(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """Give a GPT2 from topic 06 the initialisation nanoGPT and Hugging Face's GPT2LMHeadModel use, in place.

    (It is often called GPT-2's initialisation, but OpenAI's released GPT-2 code drew W_pos with standard
    deviation 0.01, not 0.02; nanoGPT and Hugging Face use init_range for every matrix, as below.)

    Every weight matrix (the parameters whose name starts with W_: W_E, W_pos, W_Q, W_K, W_V, W_O,
    W_in, W_out, W_U) is drawn from a normal distribution with mean 0 and standard deviation
    cfg.init_range (0.02 for GPT-2), except the two that write into the residual stream, W_O and W_out:
    their standard deviation is also divided by sqrt(2 * n_layers). Each block adds two such outputs to
    the residual stream; with this scaling its variance at the end no longer grows with the depth
    (GPT-2 paper, section 2.3). Every bias (b_...) is zero; every LayerNorm has w = 1 and b = 0.
    Draw from `generator` (None: torch's global random state).

    Shapes:
        model: a transformer.GPT2, whose cfg gives init_range and n_layers
        returns: None (the parameters are overwritten in place)

    Hints (the next one: katas hint init_gpt2_weights 2):
        1. model.named_parameters() gives every parameter with its dotted name; the last part of the
           name (after the last dot) says what kind of parameter it is.
    """
    raise NotImplementedError


@kata
def evaluate(
    model: nn.Module, inputs: Int[Tensor, "windows pos"], targets: Int[Tensor, "windows pos"], batch_size: int
) -> float:
    """The model's mean cross-entropy loss over every position of every window, batch_size windows at a time.

    Evaluation changes nothing: run the model in eval mode (dropout and the like switched off) and
    without building the autograd graph (torch.no_grad()), then put the model back in the mode it was
    in (training or not). The mean is over all windows * pos predictions, whatever the batches: a
    shorter last batch must not weigh as much as a full one.

    Shapes:
        model: maps tokens [batch, pos] to logits [batch, pos, d_vocab]
        inputs, targets: [windows, pos], targets[w, t] the token that follows inputs[w, t]
        returns: a Python float

    Hints (the next one: katas hint evaluate 2):
        1. model.training says which mode the model is in now; model.train(mode) sets either mode.
    """
    raise NotImplementedError


@kata
@in_place("model", "optimiser")
def train_step(
    model: nn.Module,
    optimiser: object,
    inputs: Int[Tensor, "batch pos"],
    targets: Int[Tensor, "batch pos"],
    max_norm: float,
) -> float:
    """One step of training: the mean cross-entropy of the model on (inputs, targets), its gradients,
    clipped to a total norm of at most max_norm, and one step of the optimiser. Return the loss (before
    the step) as a float.

    In order: put the model in training mode, zero the gradients the previous step left (backward adds
    to .grad, it does not overwrite it), compute the loss, backpropagate, clip the gradients with your
    optimisers.clip_grad_norm, and step. Leave the clipped gradients in .grad (zero them at the start of
    the next step, not at the end of this one). The optimiser is your optimisers.AdamW, a torch.optim
    optimiser or any object with zero_grad() and step() over the model's parameters: use only those two.

    Shapes:
        inputs, targets: [batch, pos], targets[b, t] the token that follows inputs[b, t]
        returns: a Python float

    Hints (the next one: katas hint train_step 2):
        1. Clipping changes the gradients the step uses, so it must come between backward and step.
    """
    raise NotImplementedError


class EarlyStopping:
    """Early stopping: keep a copy of the weights with the best validation loss so far, and say when
    `patience` evaluations in a row have not improved on it by more than min_delta.

    update(model, val_loss) is called after each evaluation. A loss more than min_delta below the best so
    far (val_loss < best_loss - min_delta, strictly) is an improvement: remember it as best_loss, store a
    copy of the model's state_dict in best_state, and reset the count. Otherwise, even when the loss is
    a little lower than the best, count one more evaluation without improvement, and keep best_loss and
    best_state as they are. Return True (stop) once that count reaches patience.

    Why min_delta: a validation loss is measured on a finite text, so it wobbles by a small amount from one
    evaluation to the next even when the model no longer gets better. With min_delta = 0 such a wobble
    downwards resets the count, and training can run on for a long time on noise; min_delta (of the order
    of that noise) says how much better counts as better. min_delta = 0 is the plain rule.

    The copy must be a real copy: model.state_dict() holds the model's own tensors, which the next
    optimiser steps keep changing, so a stored state_dict that is not copied silently becomes the
    latest weights instead of the best ones.

    Shapes:
        update(model, val_loss): returns a bool, True when training should stop
        best_state: parameter name -> tensor, copies of the best weights (None before the first update)

    Hints (the next one: katas hint EarlyStopping 2):
        1. Three attributes carry the state between calls: best_loss, best_state and
           evals_without_improvement.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = patience
        self.min_delta = min_delta
        self.best_loss = math.inf
        self.best_state: dict[str, Tensor] | None = None
        self.evals_without_improvement = 0

    @kata
    def update(self, model: nn.Module, val_loss: float) -> bool:
        """Record one evaluation's loss; return True when training should stop."""
        raise NotImplementedError


@kata
@in_place("model", "early_stopping")
def train(
    model: nn.Module,
    train_tokens: Int[Tensor, "n_train"],
    val_tokens: Int[Tensor, "n_val"],
    steps: int,
    batch_size: int,
    n_ctx: int,
    max_lr: float,
    warmup_steps: int,
    eval_every: int,
    generator: torch.Generator,
    max_norm: float = 1.0,
    early_stopping: EarlyStopping | None = None,
    weight_decay: float = 0.1,
    min_lr: float | None = None,
) -> dict[str, list[float]]:
    """Train a language model: `steps` steps of AdamW on random windows of train_tokens, with a warm-up
    and cosine learning-rate schedule, clipped gradients, and the validation loss every eval_every steps.

    The optimiser is set up as nanoGPT trains GPT-2, following the GPT-3 paper: AdamW with weight_decay on
    the weight matrices only, optimisers.GroupedAdamW(optimisers.param_groups(model, weight_decay),
    betas=(0.9, 0.95)). beta2 = 0.95 instead of the default 0.999: v, the running mean of the squared
    gradient, then forgets in about 20 steps rather than 1000, so when a rare large gradient arrives
    (frequent in language models, whose batches differ a lot) v catches up within a few steps instead of
    staying small and letting the update blow up; it makes large-model training more stable.

    Before each step (step = 0 .. steps - 1) set the optimiser's lr to optimisers.warmup_cosine_lr(step,
    max_lr, warmup_steps, steps, min_lr), where min_lr None means max_lr / 10: the learning rate decays
    to a tenth of its peak, not to 0 (a step at almost no learning rate is a wasted step; GPT-3's paper
    and nanoGPT decay to 10%). Then draw a batch with lm_windows(train_tokens, n_ctx, batch_size,
    generator) and run train_step. After every eval_every steps (when step + 1 is a multiple of
    eval_every), evaluate on every window of val_tokens (split_windows, then evaluate with batch_size).
    With early_stopping, hand it each validation loss and stop when it says so; at the end, whether it
    stopped training or not, load its best_state into the model.

    Returns the history: "train_loss" (each step's loss), "lr" (each step's learning rate),
    "val_loss" (each evaluation's loss) and "val_step" (the number of steps done at each evaluation),
    every entry a Python float.

    Shapes:
        train_tokens: [n_train], val_tokens: [n_val], token ids
        returns: dict with lists "train_loss" and "lr" (one entry per step), "val_loss" and "val_step"

    Hints (the next one: katas hint train 2):
        1. Every piece is a kata you have written: this one only calls them in order, in one loop.
    """
    raise NotImplementedError


@kata
def train_gpt(
    train_text: str,
    val_text: str,
    cfg: transformer.Config,
    steps: int,
    batch_size: int,
    max_lr: float,
    generator: torch.Generator,
) -> tuple[nn.Module, tokenisers.CharTokeniser, dict[str, list[float]]]:
    """The capstone: train a character-level GPT-2 (your topic-06 GPT2) on train_text.

    Build a CharTokeniser on train_text + val_text (so that every character of either has a token id),
    encode both texts into int64 tensors, build a GPT2 from cfg with d_vocab replaced by the tokeniser's
    vocab_size (dataclasses.replace), give it GPT-2's initialisation (init_gpt2_weights, with
    generator), and train it: train with n_ctx = cfg.n_ctx, warmup_steps = steps // 10,
    eval_every = steps // 5, the same generator, the default max_norm and no early stopping.
    Return the model, the tokeniser and the history.

    Shapes:
        cfg: the model's sizes (its d_vocab is ignored)
        returns: (model, tokeniser, history), history as train returns it

    Hints (the next one: katas hint train_gpt 2):
        1. Four steps: tokeniser, token tensors, model, training.
    """
    raise NotImplementedError
