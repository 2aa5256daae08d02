"""GPT-2 from scratch: the config, LayerNorm, embeddings, attention, MLP, blocks, unembedding, the
whole model, loading Hugging Face's GPT-2 weights, the language-modelling loss and generation.

Parameter names follow TransformerLens (W_E, W_pos, W_Q, ..., W_U), so what you build here reads like
the models you will later take apart.

Read or watch first (curriculum.toml's `reading`):
- Neel Nanda, Implementing GPT-2 From Scratch (video), all of it: LayerNorm, the embeddings,
  attention, the MLP, the block, the unembedding and the full model, each checked against GPT-2,
  then the loss:
  https://www.neelnanda.io/transformer-tutorial-2
- Neel Nanda, the template notebook that goes with the video: the same components with the same
  parameter names (W_E, W_pos, W_Q, ..., W_U) as this topic, with its own tests:
  https://www.neelnanda.io/transformer-template
- Nelson Elhage, Transformers for Software Engineers, all of it: the residual stream as the
  model's state, attention (which mixes positions) and the MLP (which does not), embedding and
  unembedding:
  https://blog.nelhage.com/post/transformers-for-software-engineers/
- Neel Nanda, Mechanistic Interpretability Explainer & Glossary, the transformer entries (residual
  stream, LayerNorm, embedding and unembedding, logits), to look terms up while you build:
  https://dynalist.io/d/n2ZWtnoYHrU1s4vnFSAQ519J#z=pndoEIqJ6GPvC1yENQkEfZYR
"""

import importlib
from dataclasses import dataclass

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from katakit import differentiable, kata

attention = importlib.import_module("..05_attention.attention", __package__)


@dataclass
class Config:
    """GPT-2's hyperparameters; the defaults are GPT-2 small (124M parameters)."""

    d_model: int = 768
    n_heads: int = 12
    d_head: int = 64
    d_mlp: int = 3072
    n_layers: int = 12
    n_ctx: int = 1024
    d_vocab: int = 50257
    layer_norm_eps: float = 1e-5
    init_range: float = 0.02


@kata
def config_from_hf(hf_config: object) -> Config:
    """Translate a Hugging Face `GPT2Config` into our `Config`.

    Hugging Face names the same hyperparameters differently: n_embd (d_model), n_head (n_heads),
    n_inner (d_mlp, where None means 4 * n_embd), n_layer (n_layers), n_positions (n_ctx),
    vocab_size (d_vocab), layer_norm_epsilon (layer_norm_eps), initializer_range (init_range).
    It has no head size of its own: every head gets an equal share of n_embd. Every size comes back an
    int, as Config declares (our modules pass them to torch.randn, which refuses 16.0).

    Shapes:
        hf_config: a transformers.GPT2Config (any object with the attributes above)
        returns: Config

    Hints (the next one: katas hint config_from_hf 2):
        1. Read each attribute off hf_config and pass it to Config by keyword.
    """
    raise NotImplementedError


class LayerNorm(nn.Module):
    """Layer normalisation: centre each position's vector, scale it to unit variance, then apply the
    learned per-feature scale w and shift b.

    y = (x - mean(x)) / sqrt(var(x) + eps) * w + b, with mean and var over d_model, per position.

    forward passes the scale, sqrt(var(x) + eps), through self.hook_scale and y through self.hook_normalized,
    and goes on with what they return: it divides by the scale hook_scale returned, and returns what
    hook_normalized returned. They are identity modules, TransformerLens' hook points, like 05's hook_pattern
    and hook_z: they change nothing, but topic 08 reads each LayerNorm's scale and output from them as the
    model runs (its cache) without computing the LayerNorm twice.

    Shapes:
        w, b: [d_model]
        forward(x): [batch, pos, d_model] -> [batch, pos, d_model]
        what hook_scale receives: [batch, pos, 1], the scale forward divides the centred x by
        what hook_normalized receives: [batch, pos, d_model], y (after w and b)

    Hints (the next one: katas hint LayerNorm 2):
        1. Reduce over the last axis only, with keepdim=True so the statistics broadcast back.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))
        # TransformerLens' hook points: identity modules that forward passes the scale and the output through.
        self.hook_scale = nn.Identity()
        self.hook_normalized = nn.Identity()

    @kata
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """Normalise every position of x over d_model, then scale by w and shift by b, with the scale
        sqrt(var + eps) passed through self.hook_scale and the result through self.hook_normalized."""
        raise NotImplementedError


class Embed(nn.Module):
    """Token embedding: row t of W_E is the vector that token id t starts the residual stream with.

    Shapes:
        W_E: [d_vocab, d_model]
        forward(tokens): [batch, pos] (int) -> [batch, pos, d_model]

    Hints (the next one: katas hint Embed 2):
        1. No arithmetic: this is a table lookup.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.randn(cfg.d_vocab, cfg.d_model) * cfg.init_range)

    @kata
    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        """The embedding vector of every token."""
        raise NotImplementedError


class PosEmbed(nn.Module):
    """Learned positional embedding: row p of W_pos is added at position p, whatever the token there.

    Shapes:
        W_pos: [n_ctx, d_model]
        forward(tokens): [batch, pos] (int) -> [batch, pos, d_model], the same for every sequence

    Hints (the next one: katas hint PosEmbed 2):
        1. Only the number of positions in tokens matters, never the token ids themselves.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_pos = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) * cfg.init_range)

    @kata
    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        """The positional embedding of positions 0 .. pos-1, for every sequence of the batch."""
        raise NotImplementedError


class Attention(attention.MultiHeadAttention):
    """GPT-2's causal self-attention is the MultiHeadAttention you wrote in topic 05, sized by the config.

    Only the constructor is new: build 05's MultiHeadAttention with the config's widths, causal, with
    the config's init_range. forward and pattern are inherited unchanged.

    Shapes:
        W_Q, W_K, W_V: [n_heads, d_model, d_head]     b_Q, b_K, b_V: [n_heads, d_head]
        W_O: [n_heads, d_head, d_model]               b_O: [d_model]
        forward(x): [batch, pos, d_model] -> [batch, pos, d_model]

    Hints (the next one: katas hint Attention 2):
        1. 05's MultiHeadAttention already creates every parameter: what does its constructor need, and where
           in cfg is each value?
    """

    @kata
    def __init__(self, cfg: Config) -> None:
        """Create the attention parameters for cfg (see the class docstring)."""
        raise NotImplementedError


@kata
@differentiable
def gelu_new(x: Float[Tensor, "*shape"]) -> Float[Tensor, "*shape"]:
    """GPT-2's activation: the tanh approximation of GELU, elementwise.

    gelu_new(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))).
    The exact GELU, x * Phi(x), differs from it by up to about 5e-4: enough to make a GPT-2 loaded with
    real weights drift away from its published outputs.

    Shapes:
        x: any shape
        returns: the shape of x

    Hints (the next one: katas hint gelu_new 2):
        1. Write the formula above with torch operations; it is elementwise, so no axis to think about.
    """
    raise NotImplementedError


class MLP(nn.Module):
    """GPT-2's feed-forward layer, applied to every position on its own: a linear map up to d_mlp, the
    tanh GELU, a linear map back down to d_model.

    mlp(x) = gelu_new(x @ W_in + b_in) @ W_out + b_out

    Shapes:
        W_in: [d_model, d_mlp]   b_in: [d_mlp]   W_out: [d_mlp, d_model]   b_out: [d_model]
        forward(x): [batch, pos, d_model] -> [batch, pos, d_model]

    Hints (the next one: katas hint MLP 2):
        1. Two einops.einsum contractions (over d_model, then over d_mlp), each followed by its bias.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_in = nn.Parameter(torch.randn(cfg.d_model, cfg.d_mlp) * cfg.init_range)
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
        self.W_out = nn.Parameter(torch.randn(cfg.d_mlp, cfg.d_model) * cfg.init_range)
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model))

    @kata
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """The MLP of every position of x."""
        raise NotImplementedError


class TransformerBlock(nn.Module):
    """One GPT-2 block: attention, then the MLP, each reading a LayerNorm of the residual stream and
    adding its output back to it (pre-LN).

    resid_mid = x + attn(ln1(x));   resid_post = resid_mid + mlp(ln2(resid_mid))

    Shapes:
        forward(x): [batch, pos, d_model] -> [batch, pos, d_model]

    Hints (the next one: katas hint TransformerBlock 2):
        1. The residual stream itself is never normalised: only what each sublayer reads is.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.ln1 = LayerNorm(cfg)
        self.attn = Attention(cfg)
        self.ln2 = LayerNorm(cfg)
        self.mlp = MLP(cfg)

    @kata
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        """The residual stream after this block."""
        raise NotImplementedError


class Unembed(nn.Module):
    """The unembedding: turn the final residual stream into logits over the vocabulary.

    GPT-2 itself ties W_U to W_E.T and has no bias; we keep W_U and b_U as parameters of their own so
    the same code serves models that do not tie them.

    Shapes:
        W_U: [d_model, d_vocab]   b_U: [d_vocab]
        forward(x): [batch, pos, d_model] -> [batch, pos, d_vocab]

    Hints (the next one: katas hint Unembed 2):
        1. One contraction over d_model.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_U = nn.Parameter(torch.randn(cfg.d_model, cfg.d_vocab) * cfg.init_range)
        self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))

    @kata
    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab"]:
        """The logits of every position."""
        raise NotImplementedError


class GPT2(nn.Module):
    """The whole GPT-2: tokens in, next-token logits out.

    residual = embed(tokens) + pos_embed(tokens); then every block in turn; then ln_final; then unembed.
    The logits at position t are the model's prediction for the token at position t + 1.

    Shapes:
        forward(tokens): [batch, pos] (int) -> [batch, pos, d_vocab]

    Hints (the next one: katas hint GPT2 2):
        1. Token and positional embeddings are added, not concatenated.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.embed = Embed(cfg)
        self.pos_embed = PosEmbed(cfg)
        self.blocks = nn.ModuleList([TransformerBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = LayerNorm(cfg)
        self.unembed = Unembed(cfg)

    @kata
    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab"]:
        """The logits of every position of every sequence."""
        raise NotImplementedError


@kata
def split_c_attn(
    c_attn: Float[Tensor, "*d_model qkv_width"], n_heads: int
) -> Float[Tensor, "3 n_heads *d_model d_head"]:
    """Split Hugging Face's fused query-key-value parameter into per-head W_Q, W_K, W_V (or b_Q, b_K, b_V).

    GPT-2's c_attn computes queries, keys and values in one go: its weight is [d_model, 3 * d_model],
    applied as x @ weight + bias. Along the last axis come all of the queries, then all of the keys, then
    all of the values; within each, head 0's d_head features, then head 1's, and so on. The same function
    serves the weight [d_model, 3 * d_model] and the bias [3 * d_model] (no d_model axis).

    Shapes:
        c_attn: [d_model, 3 * d_model] (the weight) or [3 * d_model] (the bias)
        returns: [3, n_heads, d_model, d_head] or [3, n_heads, d_head]; index 0 is Q, 1 is K, 2 is V

    Hints (the next one: katas hint split_c_attn 2):
        1. Read the last axis as three nested groups: which one varies slowest, which fastest?
    """
    raise NotImplementedError


@kata
def convert_hf_state_dict(
    hf_state_dict: dict[str, Float[Tensor, "..."]], cfg: Config
) -> dict[str, Float[Tensor, "..."]]:
    """Convert the state dict of a Hugging Face GPT2LMHeadModel into our GPT2's parameters.

    Hugging Face's keys start with "transformer." (wte, wpe, h.{layer}.ln_1, .attn.c_attn, .attn.c_proj,
    .ln_2, .mlp.c_fc, .mlp.c_proj, ln_f) plus "lm_head.weight". Its linear layers are Conv1D: the weight
    is stored [in_features, out_features] and applied as x @ weight + bias, already the layout of our
    W_in and W_out. LayerNorms store weight and bias (our w and b). lm_head is an nn.Linear without
    bias, stored [d_vocab, d_model]. Return a dict that our GPT2(cfg).load_state_dict(..., strict=True)
    accepts: keys like "embed.W_E", "blocks.0.attn.W_Q", "blocks.0.ln1.w", "unembed.b_U".

    Shapes:
        hf_state_dict: Hugging Face's names -> tensors (c_attn.weight [d_model, 3 * d_model],
                       c_proj.weight of attention [d_model, d_model], lm_head.weight [d_vocab, d_model])
        returns: our names -> tensors of the shapes our modules declare

    Hints (the next one: katas hint convert_hf_state_dict 2):
        1. Print GPT2(cfg).state_dict() shapes next to the Hugging Face ones and pair them up, layer by layer.
    """
    raise NotImplementedError


@kata
@differentiable
def next_token_loss(logits: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, ""]:
    """The language-modelling loss: mean cross-entropy of predicting each token from the positions before it.

    The logits at position t predict the token at position t + 1, so the last position has nothing to
    predict and the first token is never predicted. Average over the batch and the remaining pos - 1
    positions.

    Shapes:
        logits: [batch, pos, d_vocab], the model's output on tokens
        tokens: [batch, pos]
        returns: [] (a scalar)

    Hints (the next one: katas hint next_token_loss 2):
        1. Shift: drop the last position of the logits and the first token, then compare them one to one.
    """
    raise NotImplementedError


@kata
def generate_greedy(model: nn.Module, tokens: Int[Tensor, "batch pos"], n_new: int) -> Int[Tensor, "batch total"]:
    """Extend every prompt by n_new tokens, each time appending the most likely next token.

    model maps tokens [batch, pos] to logits [batch, pos, d_vocab] (our GPT2, or anything that does the
    same). Run it on the whole sequence so far at every step (no caching); no gradients are needed.

    Shapes:
        tokens: [batch, pos], the prompts
        returns: [batch, pos + n_new], the prompts followed by the generated tokens

    Hints (the next one: katas hint generate_greedy 2):
        1. Only the logits at the last position predict the next token.
    """
    raise NotImplementedError


@kata
def generate_sampled(
    model: nn.Module,
    tokens: Int[Tensor, "batch pos"],
    n_new: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "batch total"]:
    """Extend every prompt by n_new tokens sampled from the model, with temperature and top-k.

    At each step take the last position's logits, divide them by temperature (below 1 sharpens the
    distribution, above 1 flattens it), keep only the top_k largest (when top_k is given; the others get
    probability 0), and sample the next token from the softmax. Draw all randomness from `generator`, so
    that the same seed gives the same text (generator=None: torch's default generator, which
    torch.manual_seed seeds).

    Shapes:
        tokens: [batch, pos], the prompts
        returns: [batch, pos + n_new], the prompts followed by the sampled tokens

    Hints (the next one: katas hint generate_sampled 2):
        1. A logit set to -inf gets probability 0 after the softmax. The k-th largest logit of each row
           (the smallest of its topk values) is the threshold: keep what is at least that.
    """
    raise NotImplementedError
