"""Attention: softmax, masks, scaled dot-product attention and multi-head self-attention.

Conventions used throughout this module:
- Scores and patterns are indexed [..., query_pos, key_pos]: row i says how much query i looks at
  each key.
- A boolean mask is True where a query MAY attend to a key (the convention of
  torch.nn.functional.scaled_dot_product_attention, of torch.tril and of TransformerLens). Beware:
  torch.nn.MultiheadAttention uses the opposite convention (True = hidden).

Read or watch first (curriculum.toml's `reading`):
- Jay Alammar, The Illustrated Transformer, the sections 'Self-Attention at a High Level', 'Self-
  Attention in Detail', 'Matrix Calculation of Self-Attention' and 'The Beast With Many Heads',
  and in 'The Decoder Side' the masking of future positions before the softmax:
  https://jalammar.github.io/illustrated-transformer/
- Neel Nanda, What is a transformer (video), the part on attention: queries, keys and values,
  attention patterns, causal masking, heads moving information between positions:
  https://www.neelnanda.io/transformer-tutorial
- Neel Nanda, Mechanistic Interpretability Explainer & Glossary, the entries on attention heads,
  attention patterns, the QK and OV circuits and previous-token heads, for qk_circuit, ov_circuit
  and previous_token_score:
  https://dynalist.io/d/n2ZWtnoYHrU1s4vnFSAQ519J#z=pndoEIqJ6GPvC1yENQkEfZYR
"""

import einops
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from katakit import differentiable, kata


@kata
@differentiable
def stable_softmax(x: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch n"]:
    """Softmax over the last axis that does not overflow: scores of 1e4 must not give nan.

    softmax(x)_i = exp(x_i) / sum_j exp(x_j). In floating point exp(1e4) is inf, and inf / inf is
    nan, so compute it in a form that never exponentiates a large positive number. Entries equal
    to -inf (masked scores) must come out as exactly 0. Write it out yourself: do not call a
    softmax or log_softmax of torch.

    Works for any float dtype: the result has the dtype of x, accurate to a few units of its
    precision (scores near 1e4 are themselves only known to about 1e-3 in float32).

    Shapes:
        x: [*batch, n]
        returns: [*batch, n], each row (over the last axis) non-negative and summing to 1

    Hints:
        1. softmax(x) does not change if you subtract the same constant from every entry of a row.
        2. Subtract each row's maximum, keeping its axis so that it broadcasts, before exponentiating: the
           largest exponent is then exp(0) = 1. Keep the axis of the row sums too when you divide by them.
    """
    shifted = x - x.amax(dim=-1, keepdim=True)
    exponentials = shifted.exp()
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


@kata
def causal_mask(seq_len: int, device: torch.device | str | None = None) -> Bool[Tensor, "query_pos key_pos"]:
    """The causal mask of a sequence: True where query i may attend to key j, that is where j <= i.

    A decoder (GPT-2) predicts token i+1 from tokens 0..i, so position i must not look at later
    positions. Position i does see itself: the diagonal is True.

    Create the mask on `device` (None means the default device) so that it can be combined with
    scores living on a GPU.

    Shapes:
        returns: [seq_len, seq_len], boolean; row = query position, column = key position

    Hints:
        1. Draw the 4 x 4 mask: which triangle is True, and is the diagonal in it?
        2. True is the lower triangle, diagonal included: torch has a function that keeps the lower triangle
           of a matrix and zeroes the rest.
        3. Apply it to a square of True values, created as booleans directly on `device`.
    """
    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()


@kata
@differentiable
def attention_scores(
    q: Float[Tensor, "*batch query_pos d_head"], k: Float[Tensor, "*batch key_pos d_head"]
) -> Float[Tensor, "*batch query_pos key_pos"]:
    """The attention scores q k^T / sqrt(d_head): the dot product of every query with every key.

    The leading *batch axes (batch, head, ...) are carried along: each head has its own queries
    and keys. Dividing by sqrt(d_head) keeps the scores of unit-variance q, k at unit variance, so
    the softmax does not saturate as d_head grows. Works for any float dtype: the scores have the
    dtype of q and k.

    Shapes:
        q: [*batch, query_pos, d_head]
        k: [*batch, key_pos, d_head]
        returns: [*batch, query_pos, key_pos], entry [..., i, j] = q_i . k_j / sqrt(d_head)

    Hints:
        1. Which axis is summed over? Which two axes survive, in which order?
        2. Transpose the last two axes of k (not its batch axes) and take the matrix product, which broadcasts
           over *batch; einops.einsum with "..." for the batch axes works too.
        3. Divide by the square root of d_head, the last axis of q (the size of a head, not of the model).
           Scaling q before the product is cheaper than scaling the [query_pos, key_pos] result.
    """
    return (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)


@kata
@differentiable
def apply_causal_mask(scores: Float[Tensor, "*batch query_pos key_pos"]) -> Float[Tensor, "*batch query_pos key_pos"]:
    """Hide the future: set the scores where key > query to -inf (or a very large negative number).

    This happens BEFORE the softmax, so that the hidden keys get probability exactly 0 and each row
    still sums to 1. Return a new tensor: do not modify `scores` in place. Works for any float
    dtype (bfloat16 included) and any device.

    Shapes:
        scores: [*batch, query_pos, key_pos] with query_pos == key_pos
        returns: [*batch, query_pos, key_pos], equal to scores where the causal mask is True

    Hints:
        1. Build the mask with your causal_mask on scores.device; it broadcasts over *batch.
        2. torch.where picks each entry from one of two sources by a condition; Tensor.masked_fill writes a
           value where its mask is True: mind which one wants the causal mask and which its negation (~).
        3. Fill with negative infinity, which every float dtype can hold, or with the most negative value of
           the scores' dtype (torch.finfo).
    """
    visible = causal_mask(scores.shape[-1], device=scores.device)
    return torch.where(visible, scores, float("-inf"))


@kata
@differentiable
def scaled_dot_product_attention(
    q: Float[Tensor, "*batch query_pos d_head"],
    k: Float[Tensor, "*batch key_pos d_head"],
    v: Float[Tensor, "*batch key_pos d_value"],
    causal: bool = False,
    mask: Bool[Tensor, "query_pos key_pos"] | Float[Tensor, "query_pos key_pos"] | None = None,
) -> Float[Tensor, "*batch query_pos d_value"]:
    """Scaled dot-product attention: softmax(q k^T / sqrt(d_head) + masking) @ v.

    Each query gets a weighted average of the values, weighted by the softmax over the keys of its
    scores. `causal=True` hides the future (needs query_pos == key_pos). `mask`, like the
    attn_mask of torch.nn.functional.scaled_dot_product_attention, is either boolean (True = may
    attend, False = hidden) or float (added to the scores, e.g. 0 or -inf). A key is hidden if the
    causal mask or `mask` hides it. Build it from your katas, without calling
    torch.nn.functional.scaled_dot_product_attention. Works for any float dtype (q, k, v and a
    float `mask` of one dtype, which the result keeps) and on any device.

    Shapes:
        q: [*batch, query_pos, d_head]
        k: [*batch, key_pos, d_head]
        v: [*batch, key_pos, d_value]
        mask: [query_pos, key_pos] (broadcast over *batch), or None
        returns: [*batch, query_pos, d_value]

    Hints:
        1. Reuse your katas: attention_scores, then the masks, then a softmax over the KEY axis,
           then multiply by v. Mask before the softmax, never after.
        2. A boolean mask is applied like the causal one (keep the scores where it is True, -inf
           elsewhere); a float mask is simply added. torch.softmax(dim=-1) and @ do the rest.
    """
    scores = attention_scores(q, k)
    if causal:
        scores = apply_causal_mask(scores)
    if mask is not None:
        scores = torch.where(mask, scores, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return scores.softmax(dim=-1) @ v


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with TransformerLens' parameter names.

    Each head h reads the residual stream x through its own W_Q[h], W_K[h], W_V[h] (plus biases),
    attends with softmax(q k^T / sqrt(d_head)) (causal: a position sees itself and earlier
    positions only), and writes back through W_O[h]; the heads' outputs are summed, plus b_O.
    d_model need not equal n_heads * d_head. (Puzzle: b_K never changes the pattern. Why?)
    It works in any float dtype (the module cast with .to(dtype), and x of that dtype) and on any
    device.

    forward passes the pattern through self.hook_pattern and z (each head's pattern @ v, before W_O) through
    self.hook_z, and goes on with what they return. They are identity modules, TransformerLens' hook points:
    they change nothing, but topic 08 attaches forward hooks to them to read the pattern and z as the model
    runs (its cache) and to replace them (its ablations), without computing the attention twice.

    Shapes:
        W_Q, W_K, W_V: [n_heads, d_model, d_head]     b_Q, b_K, b_V: [n_heads, d_head]
        W_O: [n_heads, d_head, d_model]               b_O: [d_model]
        pattern(x): [batch, pos, d_model] -> [batch, n_heads, query_pos, key_pos]
        forward(x): [batch, pos, d_model] -> [batch, pos, d_model]
        what hook_pattern receives: [batch, n_heads, query_pos, key_pos], the pattern forward uses
        what hook_z receives: [batch, pos, n_heads, d_head] (TransformerLens' order), the z forward uses

    Hints:
        1. Give q, k and v a head axis in front of pos: then your attention_scores and apply_causal_mask work
           on all heads at once.
        2. Project x with one einops.einsum per weight, contracting d_model and keeping n_heads; a bias
           [n_heads, d_head] needs a size-1 axis for pos to broadcast.
        3. pattern is the softmax over key_pos of the scores, causally masked when self.causal. forward
           passes it through self.hook_pattern, multiplies what comes back by v, head by head, puts pos before
           n_heads (einops.rearrange) and passes that z through self.hook_z, then contracts what comes back with
           W_O over both n_heads and d_head (which sums the heads) and adds b_O.
    """

    def __init__(self, d_model: int, n_heads: int, d_head: int, causal: bool = True, init_range: float = 0.02):
        super().__init__()
        self.causal = causal
        self.W_Q = nn.Parameter(torch.randn(n_heads, d_model, d_head) * init_range)
        self.W_K = nn.Parameter(torch.randn(n_heads, d_model, d_head) * init_range)
        self.W_V = nn.Parameter(torch.randn(n_heads, d_model, d_head) * init_range)
        self.W_O = nn.Parameter(torch.randn(n_heads, d_head, d_model) * init_range)
        self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_K = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_V = nn.Parameter(torch.zeros(n_heads, d_head))
        self.b_O = nn.Parameter(torch.zeros(d_model))
        # TransformerLens' hook points: identity modules that forward passes the pattern and z through.
        self.hook_pattern = nn.Identity()
        self.hook_z = nn.Identity()

    @kata
    def pattern(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
        """The attention probabilities of every head: each row sums to 1 over key_pos."""
        project = "batch pos d_model, n_heads d_model d_head -> batch n_heads pos d_head"
        q = einops.einsum(x, self.W_Q, project) + self.b_Q[:, None]
        k = einops.einsum(x, self.W_K, project) + self.b_K[:, None]
        scores = attention_scores(q, k)
        if self.causal:
            scores = apply_causal_mask(scores)
        return scores.softmax(dim=-1)

    @kata
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Self-attention of x: sum over heads of (pattern @ v) @ W_O, plus b_O, with the pattern passed
        through self.hook_pattern and z ([batch, pos, n_heads, d_head]) through self.hook_z."""
        project = "batch pos d_model, n_heads d_model d_head -> batch n_heads pos d_head"
        v = einops.einsum(x, self.W_V, project) + self.b_V[:, None]
        pattern = self.hook_pattern(self.pattern(x))
        z = self.hook_z(einops.rearrange(pattern @ v, "batch n_heads pos d_head -> batch pos n_heads d_head"))
        out = einops.einsum(z, self.W_O, "batch pos n_heads d_head, n_heads d_head d_model -> batch pos d_model")
        return out + self.b_O


@kata
def qk_circuit(
    W_Q: Float[Tensor, "n_heads d_model d_head"], W_K: Float[Tensor, "n_heads d_model d_head"]
) -> Float[Tensor, "n_heads d_model d_model"]:
    """The QK circuit of every head: W_QK[h] = W_Q[h] W_K[h]^T, a d_model x d_model bilinear form.

    Without biases, the (unscaled) score of a query token x against a key token x' is
    (x W_Q[h]) . (x' W_K[h]) = x W_QK[h] x'^T: one matrix says which pairs of residual-stream
    directions attend to each other, independently of the basis chosen for the d_head space.

    Shapes:
        W_Q, W_K: [n_heads, d_model, d_head]
        returns: [n_heads, d_model, d_model], rows indexed by the query side, columns by the key side

    Hints:
        1. The result is d_model x d_model, so d_head is the axis summed over.
        2. One einops.einsum summing over d_head and keeping n_heads; W_Q gives the rows. Swapping
           W_Q and W_K gives the transpose, which is a different circuit.
    """
    return einops.einsum(W_Q, W_K, "n_heads q_side d_head, n_heads k_side d_head -> n_heads q_side k_side")


@kata
def ov_circuit(
    W_V: Float[Tensor, "n_heads d_model d_head"], W_O: Float[Tensor, "n_heads d_head d_model"]
) -> Float[Tensor, "n_heads d_model d_model"]:
    """The OV circuit of every head: W_OV[h] = W_V[h] W_O[h], what the head writes for what it reads.

    Without biases, a head that attends fully to a token x adds x W_OV[h] to the residual stream
    (the row-vector convention x @ W used throughout this repository).

    Shapes:
        W_V: [n_heads, d_model, d_head]
        W_O: [n_heads, d_head, d_model]
        returns: [n_heads, d_model, d_model], rows indexed by what is read, columns by what is written

    Hints:
        1. Per head it is one matrix product; the head axis is a batch axis.
        2. torch's matrix product treats every axis before the last two as a batch axis, so no loop over heads
           is needed (einops.einsum summing over d_head works too); what is read comes first.
    """
    return W_V @ W_O


@kata
def ov_circuit_rank(
    W_V: Float[Tensor, "n_heads d_model d_head"], W_O: Float[Tensor, "n_heads d_head d_model"], rtol: float = 1e-6
) -> Int[Tensor, " n_heads"]:
    """The rank of each head's OV circuit W_V[h] W_O[h], counted from its singular values.

    W_OV is d_model x d_model, but it factors through the head's d_head dimensions, so its rank
    is at most d_head: a head can only move a d_head-dimensional subspace of what it reads into
    the residual stream. The singular value decomposition says which: the right singular vectors
    of the largest singular values are what it writes most strongly. Count the singular values
    greater than rtol times the largest one of the same head (none when W_OV is zero); do not
    call torch.linalg.matrix_rank.

    Shapes:
        W_V: [n_heads, d_model, d_head]
        W_O: [n_heads, d_head, d_model]
        returns: [n_heads] (int64), the rank of each head's OV circuit

    Hints:
        1. Build the circuits as in ov_circuit, then ask for the singular values only: torch.linalg has a
           function that skips the singular vectors, and it works on a batch of matrices.
        2. Compare each head's singular values with rtol times that head's largest (keep the axis for the
           comparison to broadcast), then count the ones that pass.
    """
    singular_values = torch.linalg.svdvals(W_V @ W_O)
    largest = singular_values.amax(dim=-1, keepdim=True)
    return (singular_values > rtol * largest).sum(dim=-1)


@kata
def most_attended_key(
    pattern: Float[Tensor, "batch n_heads query_pos key_pos"],
) -> Int[Tensor, "batch n_heads query_pos"]:
    """For every query position of every head, the key position it attends to most.

    Reading attention patterns is the first step of most circuit analyses: a previous-token head
    answers i - 1 at every position i > 0, an induction head points just after the previous
    occurrence of the current token.

    Shapes:
        pattern: [batch, n_heads, query_pos, key_pos], probabilities over key_pos
        returns: [batch, n_heads, query_pos], integer key positions

    Hints:
        1. Over which axis of the pattern do you look for the maximum?
        2. You want the position of the maximum, not its value: look in the 'Reduction Ops' list of torch's
           docs for the arg-version of max.
    """
    return pattern.argmax(dim=-1)


@kata
def previous_token_score(pattern: Float[Tensor, "batch n_heads query_pos key_pos"]) -> Float[Tensor, "n_heads"]:
    """How much of a previous-token head each head is: its mean attention from position i to i - 1.

    Average pattern[b, h, i, i - 1] over the batch and over the query positions i = 1 ... pos - 1
    (position 0 has no previous token). A perfect previous-token head scores 1.

    Shapes:
        pattern: [batch, n_heads, pos, pos], causal attention probabilities
        returns: [n_heads]

    Hints:
        1. The entries [i, i - 1] form a diagonal of the [pos, pos] pattern: which one, above or
           below the main diagonal? How many entries does it have?
        2. torch.diagonal takes an offset and the two axes that hold the matrices, and returns that diagonal
           as a new last axis.
        3. Then average over the batch and over that new axis, which leaves one number per head.
    """
    return torch.diagonal(pattern, offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))
