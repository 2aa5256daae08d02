"""Attribution: which parts of your GPT-2 produce a prediction? Split the residual stream into the outputs
of its components, read it through the unembedding at every layer (the logit lens), credit every component
with its share of a logit difference (direct logit attribution), knock a head out (ablation), and copy
activations from one run into another (activation patching).

Everything here reads the cache of activations.run_with_cache, or changes a forward pass with
activations.run_with_hooks; the names are TransformerLens' hook names (activations' module docstring).

The residual stream is a sum. The final residual stream (the last block's resid_post) is exactly
    embed + pos_embed + sum over layers l of (the output of every head of l + b_O of l + the MLP output of l)
where head h of layer l writes z[:, :, h] @ W_O[h] (z: cache["blocks.{l}.attn.hook_z"]). Only the final
LayerNorm stands between that sum and the logits, and it is linear once its scale is known: freeze the
scale the real forward pass used (cache["ln_final.hook_scale"]), and every component's contribution to a
logit can be read off on its own.

A logit difference, logit(correct token) - logit(incorrect token) at one position, is the usual measure: it
asks "how much more does the model prefer the right answer than a given wrong one?", and everything that
shifts all logits equally cancels out of it.

Read or watch first (curriculum.toml's `reading`):
- Elhage, Nanda, Olsson et al., A Mathematical Framework for Transformer Circuits, all of it: the
  residual stream as a sum of each component's output, attention heads as independent QK and OV
  circuits, the full OV and QK circuits through the embedding and unembedding, Q-, K- and
  V-composition between layers, and the induction heads of a two-layer attention-only model:
  https://transformer-circuits.pub/2021/framework/index.html
- Olsson, Elhage, Nanda et al., In-context Learning and Induction Heads, the definition of an
  induction head (prefix matching and copying, on repeated random tokens) and the first arguments:
  https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html
- Neel Nanda, Mechanistic Interpretability Explainer & Glossary, the entries on the logit lens,
  direct logit attribution, ablation, activation patching, induction heads and composition, to look
  terms up as you go:
  https://dynalist.io/d/n2ZWtnoYHrU1s4vnFSAQ519J#z=pndoEIqJ6GPvC1yENQkEfZYR
- TransformerLens, the library researchers use to do all of this on real models: its hook names are
  the names of this topic's cache:
  https://transformerlensorg.github.io/TransformerLens/
"""

import importlib

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from katakit import differentiable, kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)
activations = importlib.import_module(".activations", __package__)


@kata
def decompose_resid(
    cache: dict[str, Float[Tensor, "..."]], model: nn.Module
) -> tuple[Float[Tensor, "component batch pos d_model"], list[str]]:
    """Split the final residual stream (cache["blocks.{n_layers - 1}.hook_resid_post"]) into the outputs of
    the components that wrote it, and return them stacked, with a label for each.

    The components, in this order, with these labels:
        "embed"       cache["hook_embed"]
        "pos_embed"   cache["hook_pos_embed"]
        then for every layer l = 0, 1, ...:
        "L{l}H{h}"    head h's output z[:, :, h] @ W_O[h], for h = 0 .. n_heads - 1 (z: blocks.{l}.attn.hook_z)
        "L{l} b_O"    the attention's output bias b_O (the same vector at every batch and position)
        "L{l} mlp"    cache["blocks.{l}.hook_mlp_out"]
    so 2 + n_layers * (n_heads + 2) of them, e.g. "embed", "pos_embed", "L0H0", "L0H1", "L0 b_O", "L0 mlp",
    "L1H0", ... for two heads. They add up to the final residual stream, and the heads of layer l plus its
    b_O add up to cache["blocks.{l}.hook_attn_out"]. (TransformerLens' cache.decompose_resid splits per layer,
    attention and MLP outputs without heads; its per-head split is cache.stack_head_results.)

    Shapes:
        cache: activations.run_with_cache's cache of `model` (names and shapes: activations' module docstring)
        model: topic 06's GPT2 (read blocks[l].attn.W_O [n_heads, d_head, d_model] and b_O [d_model])
        returns: (components [component, batch, pos, d_model], labels: list of component strings)

    Hints (the next one: katas hint decompose_resid 2):
        1. Build two lists side by side, one of [batch, pos, d_model] tensors and one of labels, layer by
           layer, and stack the tensors at the end.
    """
    raise NotImplementedError


@kata
def logit_lens(cache: dict[str, Float[Tensor, "..."]], model: nn.Module) -> Float[Tensor, "layer batch pos d_vocab"]:
    """The logit lens: what would the model predict if it stopped before block l? Apply the model's final
    LayerNorm and its unembedding to the residual stream before every block (resid_pre of blocks 0 ..
    n_layers - 1), and to the final residual stream (resid_post of the last block): n_layers + 1 entries.

    Use the real LayerNorm, model.ln_final itself: it computes the mean and the scale of each residual
    stream it is given (not the scale the final residual stream had). The last entry is then exactly the
    model's logits.

    Shapes:
        cache: activations.run_with_cache's cache of `model`
        model: topic 06's GPT2 (call model.ln_final and model.unembed)
        returns: [n_layers + 1, batch, pos, d_vocab]; entry l reads resid_pre of block l, the last one
                 resid_post of the last block

    Hints (the next one: katas hint logit_lens 2):
        1. The logits are unembed(ln_final(final residual stream)): do the same to each earlier residual.
    """
    raise NotImplementedError


@kata
def direct_logit_attribution(
    components: Float[Tensor, "component batch pos d_model"],
    scale: Float[Tensor, "batch pos 1"],
    model: nn.Module,
    correct: Int[Tensor, "batch"],
    incorrect: Int[Tensor, "batch"],
    position: int,
) -> Float[Tensor, "component batch"]:
    """Direct logit attribution: how much each component adds, directly, to the logit difference
    logit[correct] - logit[incorrect] at `position` (one pair of tokens per sequence).

    The final LayerNorm maps the residual stream r to (r - mean(r)) / scale * w + b (ln_final's w and b),
    and the logits are that @ W_U + b_U. Hold the scale fixed at the value the real forward pass used
    (`scale`, which is cache["ln_final.hook_scale"]): then the map is affine, and the contribution of
    component c of sequence b is
        ((c - mean(c)) / scale) * w  .  (W_U[:, correct[b]] - W_U[:, incorrect[b]])
    with c its vector at `position`, the mean over d_model, and "." the dot product over d_model.
    What no component owns is left over: the LayerNorm's shift and the unembedding's bias,
        b . (W_U[:, correct[b]] - W_U[:, incorrect[b]])  +  b_U[correct[b]] - b_U[incorrect[b]],
    so that, for components that sum to the final residual stream (decompose_resid), the sum over the
    components plus that leftover is exactly the model's logit difference.

    Shapes:
        components: [component, batch, pos, d_model], e.g. decompose_resid's
        scale: [batch, pos, 1], cache["ln_final.hook_scale"]
        model: topic 06's GPT2 (read ln_final.w and unembed.W_U)
        correct, incorrect: [batch], a token id for each sequence
        position: the position whose logits are compared (Python indexing: -1 is the last)
        returns: [component, batch]

    Hints (the next one: katas hint direct_logit_attribution 2):
        1. Work at `position` only, and do to each component what the LayerNorm does to the residual
           stream, with the scale you are given (never a scale computed from the component itself).
    """
    raise NotImplementedError


@kata
@differentiable
def ablate_head(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], layer: int, head: int, kind: str = "zero"
) -> Float[Tensor, ""]:
    """The model's loss on `tokens` (06's next_token_loss) with one attention head knocked out.

    The head's z (cache name blocks.{layer}.attn.hook_z, [batch, pos, n_heads, d_head]) is replaced,
    through activations.run_with_hooks, before W_O reads it:
        kind="zero": z[:, :, head] becomes 0, so the head writes nothing (its part of b_O stays: it belongs to
                     no head);
        kind="mean": z[b, p, head] becomes the mean of z[:, p, head] over the batch, for every b and p (its
                     average output at that position, whatever the sequence);
    any other kind raises a ValueError. Every other head, and every other layer, runs as usual. The model
    is left as it was (run_with_hooks removes its hooks; change no weight), and so is the z your hook
    receives: return a new tensor, never an edit of z in place (anything else holding that tensor, a cache or
    another hook, would see the change).

    Shapes:
        model: topic 06's GPT2
        tokens: [batch, pos]
        layer, head: which head (0-based)
        kind: "zero" or "mean"
        returns: [] (a scalar loss)

    Hints (the next one: katas hint ablate_head 2):
        1. Write the hook: it receives z of the whole layer and returns a copy in which only one head's
           slice is replaced (the head axis is the third one, not the second).
    """
    raise NotImplementedError


@kata
@differentiable
def patch_residual(
    model: nn.Module,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    layer: int,
    position: int,
) -> Float[Tensor, "batch pos d_vocab"]:
    """Activation patching of the residual stream: run the model on `corrupted_tokens`, but with the
    residual stream before block `layer` (blocks.{layer}.hook_resid_pre) at `position` taken from a run on
    `clean_tokens` (the same position of the same sequence). Return the logits of the patched run.

    Every other position, and every other layer, computes as usual from what it receives: the patched
    vector flows on through the later blocks. If the model's answer recovers, what decides it was in that
    residual stream at that position. Your hook returns a new tensor: it never edits the residual stream it
    receives in place (that tensor is also the previous block's output, which anything else may hold).

    Shapes:
        model: topic 06's GPT2
        clean_tokens, corrupted_tokens: [batch, pos], row b of one is a variant of row b of the other
        layer: the block whose input is patched (0 .. n_layers - 1)
        position: the patched position (Python indexing)
        returns: [batch, pos, d_vocab]

    Hints (the next one: katas hint patch_residual 2):
        1. Two runs: one with activations.run_with_cache on the clean tokens, to read the clean residual
           stream, one with activations.run_with_hooks on the corrupted tokens, to write it.
    """
    raise NotImplementedError


@kata
@differentiable
def patch_head(
    model: nn.Module,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    layer: int,
    head: int,
) -> Float[Tensor, "batch pos d_vocab"]:
    """Activation patching of one attention head: run the model on `corrupted_tokens`, but with head
    `head` of layer `layer` writing what it wrote on `clean_tokens`: its z (blocks.{layer}.attn.hook_z) at
    every position taken from the clean run. Return the logits of the patched run.

    The other heads of that layer keep their corrupted z; the later layers compute from the patched
    residual stream. As in patch_residual, the hook returns a new tensor and leaves the z it receives as it
    was.

    Shapes:
        model: topic 06's GPT2
        clean_tokens, corrupted_tokens: [batch, pos]
        layer, head: which head (0-based)
        returns: [batch, pos, d_vocab]

    Hints (the next one: katas hint patch_head 2):
        1. The same two runs as patch_residual, on a different hook name.
    """
    raise NotImplementedError


@kata
def logit_diff_recovered(
    patched_logits: Float[Tensor, "batch pos d_vocab"],
    clean_logits: Float[Tensor, "batch pos d_vocab"],
    corrupted_logits: Float[Tensor, "batch pos d_vocab"],
    correct: Int[Tensor, "batch"],
    incorrect: Int[Tensor, "batch"],
    position: int,
) -> Float[Tensor, ""]:
    """How much of the clean run's logit difference a patch brings back: 1 when the patched run is as good
    as the clean one, 0 when it is no better than the corrupted one.

    For each of the three runs take the logit difference logits[b, position, correct[b]] -
    logits[b, position, incorrect[b]] of every sequence b and average it over the batch: patched, clean
    and corrupted. Return (patched - corrupted) / (clean - corrupted), a ratio of the batch means (not a
    mean of per-sequence ratios, which a sequence with clean close to corrupted would blow up).

    Shapes:
        patched_logits, clean_logits, corrupted_logits: [batch, pos, d_vocab]
        correct, incorrect: [batch], a token id for each sequence
        position: the answer position (Python indexing: -1 is the last)
        returns: [] (a scalar; can be below 0 or above 1)

    Hints (the next one: katas hint logit_diff_recovered 2):
        1. Compute the same number three times, once per run: stacking the three logits tensors lets you
           do it once.
    """
    raise NotImplementedError
