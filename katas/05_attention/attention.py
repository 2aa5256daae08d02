"""Attention: softmax, masks, scaled dot-product attention and multi-head self-attention."""

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from katakit import kata


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with TransformerLens' parameter names.

    Each head h reads the residual stream x through its own W_Q[h], W_K[h], W_V[h], attends with
    softmax(q k^T / sqrt(d_head)) (causal: a position sees itself and earlier positions only), and
    writes back through W_O[h]; the heads' outputs are summed, plus b_O.

    Shapes:
        W_Q, W_K, W_V: [n_heads, d_model, d_head]     b_Q, b_K, b_V: [n_heads, d_head]
        W_O: [n_heads, d_head, d_model]               b_O: [d_model]
        pattern(x): [batch, pos, d_model] -> [batch, n_heads, query_pos, key_pos]
        forward(x): [batch, pos, d_model] -> [batch, pos, d_model]

    Hints:
        1. Compute q, k, v for all heads at once with einops.einsum over d_model; keep the head axis.
        2. pattern = softmax over key_pos of (q k^T / sqrt(d_head)), masked to -inf above the diagonal
           when causal; then z = pattern @ v per head, and out = sum over heads of z @ W_O + b_O.
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

    @kata
    def pattern(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
        """The attention probabilities of every head: each row sums to 1 over key_pos."""
        raise NotImplementedError

    @kata
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Self-attention of x: sum over heads of (pattern @ v) @ W_O, plus b_O."""
        raise NotImplementedError
