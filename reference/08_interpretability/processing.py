"""TransformerLens' weight processing, by hand: fold every LayerNorm's w and b into the weights that read it,
centre the weights that write to the residual stream, and centre the unembedding. The processed model
computes the same log-probabilities, and its weights are easier to read.

TransformerLens' HookedTransformer.from_pretrained (up to version 3) processed the weights of every model it
loaded by default (fold_ln, center_writing_weights, center_unembed); in version 4, TransformerBridge.
boot_transformers loads them as they are, and its enable_compatibility_mode() or process_weights() (the same
three options, all on by default) processes them. The W_Q, W_U and W_E a researcher reads in ARENA's
exercises are these processed weights, not GPT-2's own. Three facts make the processing free:
- A LayerNorm is x -> x_hat * w + b, with x_hat = (x - mean(x)) / scale. What reads it is linear,
  y = LN(x) @ W + bias = x_hat @ (w[:, None] * W) + (b @ W + bias): w can move into the rows of W, and b into
  the bias, leaving a LayerNorm without w and b (TransformerLens' LayerNormPre; topic 06's LayerNorm with
  w = 1 and b = 0 computes the same).
- x_hat has mean 0 over d_model, so x_hat @ W does not change when the same row is added to every row of W:
  the reading weights can be centred over d_model (their mean over the d_model axis subtracted) for free.
- Every reader of the residual stream starts with a LayerNorm, which subtracts the mean over d_model: the
  component of the residual stream along (1, 1, ..., 1) is never read. So every weight and bias that writes
  to it (W_E, W_pos, W_O, b_O, W_out, b_out) can lose its mean over d_model for free. And softmax does not
  change when the same number is added to every logit: W_U and b_U can lose their mean over the vocabulary,
  which changes each logit by the same amount at each position, and no log-probability.
Fold without centring and the logits still agree: centring is a second, separate step, free only thanks to
the LayerNorm's own mean subtraction.

What `hook_normalized` holds depends on the convention, and this is where readers of TransformerLens trip:
- this topic's cache (activations.run_with_cache), and TransformerLens' HookedTransformer loaded with
  fold_ln=False: the LayerNorm's output, AFTER w and b;
- HookedTransformer.from_pretrained with its defaults (fold_ln=True, LayerNormPre) and the version-4
  TransformerBridge, processed or not: x_hat, BEFORE w and b (after processing there are none left: they
  are in W_Q, W_in, W_U...). On a model processed by process_weights below, our LayerNorms have w = 1 and
  b = 0, so our hook_normalized is x_hat too, and the two conventions agree.
This is also why TransformerLens' direct logit attribution has no w step (attribution's
direct_logit_attribution has one): on the processed model, the final LayerNorm is only "subtract the mean,
divide by hook_scale" (cache.apply_ln_to_stack), and ln_final's w already sits in the rows of W_U, its b in
b_U, the same for every input, so it is nobody's contribution.

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

import copy
import importlib

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from katakit import kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)


@kata
def fold_layer_norm_into(
    w: Float[Tensor, "d_model"],
    b: Float[Tensor, "d_model"],
    W: Float[Tensor, "*heads d_model d_out"],
    bias: Float[Tensor, "*heads d_out"],
) -> tuple[Float[Tensor, "*heads d_model d_out"], Float[Tensor, "*heads d_out"]]:
    """Fold a LayerNorm's w and b into a weight W and bias that read its output, and centre the folded weight.

    Return (W', bias') such that x_hat @ W' + bias' equals (x_hat * w + b) @ W + bias for every x_hat of
    mean 0 over d_model (what a LayerNorm without w and b outputs), with W' of mean 0 over its d_model axis:
    W' is W with row i scaled by w[i], then its mean over the d_model axis subtracted. W may have leading
    axes, as W_Q [n_heads, d_model, d_head] with bias b_Q [n_heads, d_head]; W_in [d_model, d_mlp] and W_U
    [d_model, d_vocab] have none.

    Shapes:
        w, b: [d_model], the LayerNorm's scale and shift
        W: [*heads, d_model, d_out]   bias: [*heads, d_out]
        returns: (W' [*heads, d_model, d_out], bias' [*heads, d_out])

    Hints:
        1. Expand (x_hat * w + b) @ W + bias: one term still has x_hat in it (that is W'), the others do not
           (that is bias'). Is b multiplied by w?
        2. w scales the d_model axis of W, which is the second from the end, not the last. b @ W contracts
           that same axis: einops.einsum with "..." for the leading axes does it for every head at once.
    """
    folded_bias = bias + einops.einsum(b, W, "d_model, ... d_model d_out -> ... d_out")
    folded = w[:, None] * W
    return folded - folded.mean(dim=-2, keepdim=True), folded_bias


@kata
def fold_layer_norms(model: nn.Module) -> nn.Module:
    """A copy of the model with every LayerNorm's w and b folded into the weights that read it, and the
    LayerNorms left with w = 1 and b = 0: the same logits, from LayerNorms that only normalise.

    ln1 of each block is read by the attention's W_Q, W_K and W_V (biases b_Q, b_K, b_V), ln2 by the MLP's
    W_in (b_in), ln_final by the unembedding's W_U (b_U): fold each with fold_layer_norm_into, which also
    centres the folded weights over d_model, as TransformerLens' fold_ln does. The given model is left as
    it was: work on copy.deepcopy(model), under torch.no_grad().

    Shapes:
        model: topic 06's GPT2
        returns: a GPT2 with the same config, whose LayerNorms have w = 1 and b = 0

    Hints:
        1. Three LayerNorms per model to walk through (two per block, one at the end); each is read by the
           weights of the module that follows it.
        2. Write the folded values into the copy's parameters with .copy_(), and only then set the
           LayerNorm's w and b to 1 and 0 (.fill_, .zero_): folding W_K after zeroing b would lose b.
    """
    folded = copy.deepcopy(model)

    def fold(layer_norm: nn.Module, module: nn.Module, weights: list[tuple[str, str]]) -> None:
        for weight_name, bias_name in weights:
            weight, bias = getattr(module, weight_name), getattr(module, bias_name)
            new_weight, new_bias = fold_layer_norm_into(layer_norm.w, layer_norm.b, weight, bias)
            weight.copy_(new_weight)
            bias.copy_(new_bias)
        layer_norm.w.fill_(1.0)
        layer_norm.b.zero_()

    with torch.no_grad():
        for block in folded.blocks:
            fold(block.ln1, block.attn, [("W_Q", "b_Q"), ("W_K", "b_K"), ("W_V", "b_V")])
            fold(block.ln2, block.mlp, [("W_in", "b_in")])
        fold(folded.ln_final, folded.unembed, [("W_U", "b_U")])
    return folded


@kata
def center_writing_weights(model: nn.Module) -> nn.Module:
    """A copy of the model whose weights and biases that write to the residual stream have mean 0 over d_model.

    They are the token and positional embeddings W_E and W_pos, and in every block the attention's W_O and
    b_O and the MLP's W_out and b_out: from each, subtract its mean over its d_model axis (the last one),
    so that every vector it writes has components that add up to 0. The logits do not change, folded
    LayerNorms or not: every reader of the residual stream is a LayerNorm, which subtracts that mean
    itself. The given model is left as it was.

    Shapes:
        model: topic 06's GPT2
        returns: a GPT2 with the same config

    Hints:
        1. Row t of W_E is what token t writes: its mean over d_model is what goes. Which axis of W_O
           [n_heads, d_head, d_model] and of W_out [d_mlp, d_model] is d_model?
        2. Six kinds of parameters, and the biases count: b_O and b_out are written at every position.
    """
    centred = copy.deepcopy(model)
    with torch.no_grad():
        writing = [centred.embed.W_E, centred.pos_embed.W_pos]
        for block in centred.blocks:
            writing += [block.attn.W_O, block.attn.b_O, block.mlp.W_out, block.mlp.b_out]
        for weight in writing:
            weight.sub_(weight.mean(dim=-1, keepdim=True))
    return centred


@kata
def center_unembed(model: nn.Module) -> nn.Module:
    """A copy of the model whose unembedding W_U and b_U have mean 0 over the vocabulary.

    Subtract from every row of W_U its mean over the vocabulary, and from b_U its mean. Every logit of a
    position then changes by the same amount (the logits lose their mean over the vocabulary), so the
    softmax, the log-probabilities and every logit difference stay as they were; a logit is now read
    relative to the average logit. The given model is left as it was.

    Shapes:
        model: topic 06's GPT2 (unembed.W_U [d_model, d_vocab], unembed.b_U [d_vocab])
        returns: a GPT2 with the same config

    Hints:
        1. Which axis of W_U runs over the vocabulary? Its mean over d_model is not free unless what W_U
           reads has mean 0.
        2. The logits are x @ W_U + b_U: work out what subtracting each mean does to logit t, and check
           that it does not depend on t.
    """
    centred = copy.deepcopy(model)
    with torch.no_grad():
        for weight in (centred.unembed.W_U, centred.unembed.b_U):
            weight.sub_(weight.mean(dim=-1, keepdim=True))
    return centred


@kata
def process_weights(model: nn.Module) -> nn.Module:
    """A copy of the model processed as TransformerLens processes the models it loads: fold the LayerNorms,
    centre the writing weights, centre the unembedding, in that order.

    The result has TransformerLens' processed weights (transformer_lens.weight_processing.ProcessWeights.
    process_weights with fold_ln, center_writing_weights and center_unembed, and fold_value_biases=False),
    LayerNorms with w = 1 and b = 0, the same log-probabilities as the model, and logits that differ from
    the model's by their mean over the vocabulary. The given model is left as it was.

    Shapes:
        model: topic 06's GPT2
        returns: a GPT2 with the same config

    Hints:
        1. Three katas of this module, each returning a new model: pass each one's result to the next.
        2. The order in the docstring is TransformerLens'; here it does not change the result. Folding
           touches the reading weights, centring the writing ones, and centring W_U over the vocabulary
           commutes with folding ln_final into it.
    """
    return center_unembed(center_writing_weights(fold_layer_norms(model)))
