"""Tests for katas/06_transformer/transformer.py: every component against its twin in Hugging Face's GPT-2.

The Hugging Face models here get a random value in EVERY parameter: biases, LayerNorm scales and
shifts, and an unembedding untied from the embedding. With Hugging Face's own initialisation (zero
biases, LayerNorm weight 1 and bias 0, lm_head tied to wte) a model that forgot a bias, skipped the
LayerNorm affine or reused W_E.T as W_U would still match.

Components are compared in float64 at float64's default tolerance (rtol = atol = 1e-7): the smallest
mistakes they must catch move the output by far more (the exact GELU instead of GPT-2's tanh one by up
to 5e-4; eps outside the square root, or the default eps instead of the config's, by 1e-5 or more),
while a correct float64 solution computed another way stays within 1e-12, and one with sqrt(2 / pi)
written to 7 digits within 3e-8. The whole model is compared in float32, with a tolerance of its own.
"""

import copy
import dataclasses
import os
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.activations import NewGELUActivation

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close, random_hf_gpt2

SEED = int(os.environ.get("KATAS_SEED", "0"))
BATCH, POS = 3, 11

# Two small GPT-2s in which every dimension has its own size (batch 3 and pos 11 included).
HF_SIZES = {
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 64, "vocab_size": 100, "n_positions": 32},
    "other": {
        "n_layer": 3,
        "n_head": 6,
        "n_embd": 42,
        "n_inner": 80,
        "vocab_size": 97,
        "n_positions": 24,
        "layer_norm_epsilon": 1e-4,
        "initializer_range": 0.05,
    },
}
# The same models in our Config's terms (written out by hand: the tests do not rely on config_from_hf).
OUR_SIZES = {
    "tiny": {
        "d_model": 64,
        "n_heads": 4,
        "d_head": 16,
        "d_mlp": 256,
        "n_layers": 2,
        "n_ctx": 32,
        "d_vocab": 100,
        "layer_norm_eps": 1e-5,
        "init_range": 0.02,
    },
    "other": {
        "d_model": 42,
        "n_heads": 6,
        "d_head": 7,
        "d_mlp": 80,
        "n_layers": 3,
        "n_ctx": 24,
        "d_vocab": 97,
        "layer_norm_eps": 1e-4,
        "init_range": 0.05,
    },
}
BOTH = pytest.mark.parametrize("size", ["tiny", "other"])
# The whole model in float32: a correct GPT2 matches Hugging Face's logits (of size about 4) to about
# 2e-6, float32 rounding through every layer; the smallest mistake the model tests must catch, the
# exact GELU instead of gelu_new, moves them by about 4e-4. 1e-4 lies between the two.
MODEL_TOLERANCE = {"atol": 1e-4, "rtol": 1e-4}
NOT_CACHED = "GPT-2 small weights are not in the local Hugging Face cache; this test never downloads"


@pytest.fixture(scope="module")
def hf_models() -> dict[str, GPT2LMHeadModel]:
    """Both Hugging Face models in float32, built once for the module."""
    return {size: random_hf_gpt2(SEED, **HF_SIZES[size]) for size in HF_SIZES}


@pytest.fixture(scope="module")
def hf64_models(hf_models) -> dict[str, GPT2LMHeadModel]:
    """The same models in float64, for component tests with tight tolerances."""
    return {size: copy.deepcopy(model).double() for size, model in hf_models.items()}


def our_config(impl, size: str):
    return impl.Config(**OUR_SIZES[size])


def causal_mask(pos: int, dtype: torch.dtype) -> torch.Tensor:
    """The additive mask Hugging Face's eager attention expects: -inf above the diagonal, [1, 1, q, k]."""
    return torch.full((pos, pos), float("-inf"), dtype=dtype).triu(1)[None, None]


# Hugging Face's parameters in our names, with Hugging Face's own layout: c_attn's output is [q | k | v],
# each of them the heads side by side (GPT2Attention views it as [..., n_heads, d_head]).
def split_heads(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[..., n_heads * d_head] -> [n_heads, ..., d_head]."""
    return weight.unflatten(-1, (n_heads, -1)).movedim(-2, 0)


def attention_params(hf_attn: nn.Module, n_heads: int) -> dict[str, torch.Tensor]:
    d_model = hf_attn.c_proj.weight.shape[0]
    q, k, v = hf_attn.c_attn.weight.split(d_model, dim=-1)
    b_q, b_k, b_v = hf_attn.c_attn.bias.split(d_model, dim=-1)
    return {
        "W_Q": split_heads(q, n_heads),
        "W_K": split_heads(k, n_heads),
        "W_V": split_heads(v, n_heads),
        "b_Q": split_heads(b_q, n_heads),
        "b_K": split_heads(b_k, n_heads),
        "b_V": split_heads(b_v, n_heads),
        "W_O": hf_attn.c_proj.weight.unflatten(0, (n_heads, -1)),
        "b_O": hf_attn.c_proj.bias,
    }


def layer_norm_params(hf_ln: nn.LayerNorm) -> dict[str, torch.Tensor]:
    return {"w": hf_ln.weight, "b": hf_ln.bias}


def mlp_params(hf_mlp: nn.Module) -> dict[str, torch.Tensor]:
    return {
        "W_in": hf_mlp.c_fc.weight,
        "b_in": hf_mlp.c_fc.bias,
        "W_out": hf_mlp.c_proj.weight,
        "b_out": hf_mlp.c_proj.bias,
    }


def prefixed(prefix: str, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": value for name, value in params.items()}


def block_params(hf_block: nn.Module, n_heads: int) -> dict[str, torch.Tensor]:
    return (
        prefixed("ln1", layer_norm_params(hf_block.ln_1))
        | prefixed("attn", attention_params(hf_block.attn, n_heads))
        | prefixed("ln2", layer_norm_params(hf_block.ln_2))
        | prefixed("mlp", mlp_params(hf_block.mlp))
    )


def model_params(hf: GPT2LMHeadModel) -> dict[str, torch.Tensor]:
    n_heads, lm_head = hf.config.n_head, hf.lm_head.weight
    params = {"embed.W_E": hf.transformer.wte.weight, "pos_embed.W_pos": hf.transformer.wpe.weight}
    for layer, block in enumerate(hf.transformer.h):
        params |= prefixed(f"blocks.{layer}", block_params(block, n_heads))
    return params | {
        "ln_final.w": hf.transformer.ln_f.weight,
        "ln_final.b": hf.transformer.ln_f.bias,
        "unembed.W_U": lm_head.T,
        "unembed.b_U": torch.zeros(lm_head.shape[0], dtype=lm_head.dtype),
    }


def loaded(module: nn.Module, params: dict[str, torch.Tensor]) -> nn.Module:
    """module with params copied in; strict, so a missing or misnamed parameter fails with its name."""
    module.load_state_dict({name: value.detach() for name, value in params.items()}, strict=True)
    return module.eval()


def random_tokens(d_vocab: int, batch: int = BATCH, pos: int = POS) -> torch.Tensor:
    return torch.randint(0, d_vocab, (batch, pos))


# --- config_from_hf ---------------------------------------------------------------------------------


@pytest.mark.kata("config_from_hf")
def test_config_from_hf_of_gpt2_small_is_the_default_config(impl):
    ours = impl.config_from_hf(GPT2Config())
    assert ours == impl.Config(), (
        f"config_from_hf(GPT2Config()) gave {ours}, expected GPT-2 small, {impl.Config()}. "
        "Compare field by field with Hugging Face's names in the docstring."
    )


@pytest.mark.kata("config_from_hf")
@BOTH
def test_config_from_hf_reads_every_field(impl, size):
    ours = impl.config_from_hf(GPT2Config(**HF_SIZES[size]))
    expected = our_config(impl, size)
    assert ours == expected, (
        f"config_from_hf({HF_SIZES[size]}) gave {ours}, expected {expected}. "
        "Is n_inner (d_mlp) honoured when it is set, and d_head = n_embd // n_head?"
    )


@pytest.mark.kata("config_from_hf")
@pytest.mark.parametrize("size", ["gpt2 small", "tiny", "other"])
def test_config_from_hf_gives_int_sizes(impl, size):
    hf_config = GPT2Config() if size == "gpt2 small" else GPT2Config(**HF_SIZES[size])
    ours = impl.config_from_hf(hf_config)
    # 64.0 == 64, so the comparisons above cannot see a size computed as a float: check the types
    wrong = [
        f"{field.name} = {getattr(ours, field.name)!r} ({type(getattr(ours, field.name)).__name__}, "
        f"Config declares {field.type.__name__})"
        for field in dataclasses.fields(ours)
        if type(getattr(ours, field.name)) is not field.type
    ]
    assert not wrong, (
        f"config_from_hf gave {'; '.join(wrong)}. A size must be an int: torch.randn(4, 16.0) fails. "
        "d_head = n_embd // n_head (integer division), not n_embd / n_head."
    )


@pytest.mark.kata("config_from_hf")
def test_config_from_hf_reads_any_object_with_those_attributes(impl):
    hf_config = types.SimpleNamespace(
        n_embd=42,
        n_head=6,
        n_inner=None,
        n_layer=3,
        n_positions=24,
        vocab_size=97,
        layer_norm_epsilon=1e-4,
        initializer_range=0.05,
    )
    ours = impl.config_from_hf(hf_config)
    expected = impl.Config(**(OUR_SIZES["other"] | {"d_mlp": 4 * 42}))
    assert ours == expected, (
        f"config_from_hf({hf_config}) gave {ours}, expected {expected}. Read only the attributes the "
        "docstring names (n_embd, n_head, ...), not GPT2Config's aliases (hidden_size, ...) or methods; "
        "n_inner=None means 4 * n_embd."
    )


@pytest.mark.kata("config_from_hf")
def test_a_gpt2_built_from_config_from_hf_runs_hf_weights(impl, hf_models):
    hf = hf_models["tiny"]  # n_inner is None there: config_from_hf computes d_mlp as well as d_head
    cfg = impl.config_from_hf(hf.config)  # what loading the real GPT-2 small does, offline
    ours = loaded(impl.GPT2(cfg), model_params(hf))
    tokens = random_tokens(hf.config.vocab_size)
    with torch.no_grad():
        actual, expected = ours(tokens), hf(tokens).logits
    assert_close(
        actual,
        expected,
        what="the logits of GPT2(config_from_hf(hf.config))",
        hint="(the GPT2 tests pass?) a field of the config differs from Hugging Face's: see the other config tests",
        **MODEL_TOLERANCE,
    )


# --- LayerNorm --------------------------------------------------------------------------------------


@pytest.mark.kata("LayerNorm")
@BOTH
def test_layer_norm_matches_hf_ln_1(impl, hf64_models, size):
    hf_ln = hf64_models[size].transformer.h[1].ln_1
    ours = loaded(impl.LayerNorm(our_config(impl, size)).double(), layer_norm_params(hf_ln))
    x = 2.0 + 3.0 * torch.randn(BATCH, POS, hf_ln.weight.shape[0], dtype=torch.float64)
    assert_close(
        ours(x),
        hf_ln(x),
        what="LayerNorm(x)",
        hint="unbiased variance (divide by d_model - 1)? mean not subtracted? w or b not applied? eps must come from "
        "cfg.layer_norm_eps and be added to the variance, inside the square root",
    )


@pytest.mark.kata("LayerNorm")
def test_layer_norm_puts_the_config_eps_inside_the_square_root(impl):
    cfg = impl.Config(d_model=13, layer_norm_eps=1e-3)
    ours = impl.LayerNorm(cfg).double()
    with torch.no_grad():
        ours.w.copy_(1 + 0.3 * torch.randn(13))
        ours.b.copy_(0.3 * torch.randn(13))
    x = 0.01 * torch.randn(BATCH, POS, 13, dtype=torch.float64)  # variance 1e-4, comparable to eps
    assert_close(
        ours(x),
        F.layer_norm(x, (13,), ours.w, ours.b, eps=1e-3),
        what="LayerNorm(x) of a low-variance x",
        hint="eps must come from cfg.layer_norm_eps and be added to the variance, inside the square root",
    )


@pytest.mark.kata("LayerNorm")
@pytest.mark.parametrize(("dtype", "offset", "atol"), [(torch.float32, 1e4, 5e-2), (torch.float64, 1e8, 1e-5)])
def test_layer_norm_of_vectors_far_from_the_origin(impl, dtype, offset, atol):
    """Unit spread around a large offset: x^2 is offset^2, and mean(x^2) - mean(x)^2 loses every digit
    of the variance. A correct float32 LayerNorm (F.layer_norm too) is up to ~1e-2 off here (rounding
    of the mean at 1e4, ulp 1e-3), float64 ~2e-7 at 1e8: the tolerances leave a margin of 4 and more."""
    cfg = impl.Config(d_model=7)
    ours = impl.LayerNorm(cfg).to(dtype)
    with torch.no_grad():
        ours.w.copy_(1 + 0.3 * torch.randn(7))
        ours.b.copy_(0.3 * torch.randn(7))
    x = (offset + torch.randn(BATCH, POS, 7, dtype=torch.float64)).to(dtype)
    expected = F.layer_norm(x.double(), (7,), ours.w.double(), ours.b.double(), eps=cfg.layer_norm_eps)
    assert_close(
        ours(x),
        expected.to(dtype),
        what=f"LayerNorm(x) in {dtype} of x = {offset:g} + noise",
        hint="centre first, then average the squares of the centred x: mean(x^2) - mean(x)^2 cancels catastrophically",
        atol=atol,
        rtol=0.0,
    )


def random_layer_norm(impl, d_model: int, eps: float) -> nn.Module:
    """A float64 LayerNorm with w and b away from 1 and 0, so that a hook point passed y before w and b shows."""
    ours = impl.LayerNorm(impl.Config(d_model=d_model, layer_norm_eps=eps)).double()
    with torch.no_grad():
        ours.w.copy_(1 + 0.3 * torch.randn(d_model))
        ours.b.copy_(0.3 * torch.randn(d_model))
    return ours


def run_with_forward_hooks(module: nn.Module, x: torch.Tensor, **hooks) -> torch.Tensor:
    """module(x) with hook(module, args, output) registered on the named submodules, removed afterwards."""
    handles = [getattr(module, name).register_forward_hook(hook) for name, hook in hooks.items()]
    try:
        with torch.no_grad():
            return module(x)
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.kata("LayerNorm")
def test_layer_norm_passes_its_scale_and_output_through_its_hook_points(impl):
    d_model, eps = 13, 1e-3
    ours = random_layer_norm(impl, d_model, eps)
    x = 2.0 + 0.05 * torch.randn(BATCH, POS, d_model, dtype=torch.float64)  # variance comparable to eps
    seen: dict[str, list[torch.Tensor]] = {"hook_scale": [], "hook_normalized": []}

    def record(name: str):
        return lambda module, args, output: seen[name].append(args[0])

    run_with_forward_hooks(ours, x, hook_scale=record("hook_scale"), hook_normalized=record("hook_normalized"))
    for name, count in ((name, len(seen[name])) for name in seen):
        assert count == 1, (
            f"one forward pass called self.{name} {count} times, expected once: pass the scale through "
            "self.hook_scale and y through self.hook_normalized in forward, and use what they return"
        )
    scale = (x.var(dim=-1, unbiased=False, keepdim=True) + eps).sqrt()
    assert seen["hook_scale"][0].shape == scale.shape, (
        f"self.hook_scale should receive the scale as [batch, pos, 1] = {list(scale.shape)}, got "
        f"{list(seen['hook_scale'][0].shape)}: reduce over d_model with keepdim=True"
    )
    assert_close(
        seen["hook_scale"][0],
        scale,
        what="what self.hook_scale received: sqrt(var(x) + eps), [batch, pos, 1]",
        hint="the square root of the variance plus eps, not the variance, nor 1 / scale",
    )
    assert_close(
        seen["hook_normalized"][0],
        F.layer_norm(x, (d_model,), ours.w, ours.b, eps=eps),
        what="what self.hook_normalized received: y = (x - mean) / scale * w + b",
        hint="pass y after w and b (what LayerNorm returns), not (x - mean) / scale",
    )


@pytest.mark.kata("LayerNorm")
def test_layer_norm_goes_on_with_what_its_hook_points_return(impl):
    d_model, eps = 13, 1e-3
    ours = random_layer_norm(impl, d_model, eps)
    x = 2.0 + 0.05 * torch.randn(BATCH, POS, d_model, dtype=torch.float64)
    y = F.layer_norm(x, (d_model,), ours.w, ours.b, eps=eps)
    # Doubling the scale halves the normalised x: y becomes (y - b) / 2 + b.
    y_of_doubled_scale = (y - ours.b) / 2 + ours.b
    flipped: list[torch.Tensor] = []

    def flip(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        flipped.append(output)
        return output.flip(-1)

    assert_close(
        run_with_forward_hooks(ours, x, hook_scale=lambda module, args, output: 2 * output),
        y_of_doubled_scale,
        what="LayerNorm(x) with a hook on hook_scale that doubles the scale",
        hint="divide the centred x by what self.hook_scale returns, not by the scale you passed it",
    )
    assert_close(
        run_with_forward_hooks(ours, x, hook_normalized=flip),
        y.flip(-1),
        what="LayerNorm(x) with a hook on hook_normalized that reverses d_model",
        hint="return what self.hook_normalized returns, not the y you passed it",
    )
    assert_close(
        run_with_forward_hooks(ours, x, hook_scale=lambda module, args, output: 2 * output, hook_normalized=flip),
        y_of_doubled_scale.flip(-1),
        what="LayerNorm(x) with both hooks: the scale doubled, then d_model reversed",
    )
    assert_close(flipped[-1], y_of_doubled_scale, what="what self.hook_normalized received after hook_scale doubled")


# --- Embed, PosEmbed --------------------------------------------------------------------------------


@pytest.mark.kata("Embed")
def test_embed_matches_hf_wte(impl, hf_models):
    wte = hf_models["tiny"].transformer.wte
    ours = loaded(impl.Embed(our_config(impl, "tiny")), {"W_E": wte.weight})
    tokens = random_tokens(100)
    assert_close(ours(tokens), wte(tokens), what="Embed(tokens)", hint="look up rows of W_E with the token ids")


@pytest.mark.kata("PosEmbed")
@BOTH
def test_pos_embed_matches_hf_wpe_of_the_positions(impl, hf_models, size):
    wpe = hf_models[size].transformer.wpe
    ours = loaded(impl.PosEmbed(our_config(impl, size)), {"W_pos": wpe.weight})
    tokens = random_tokens(OUR_SIZES[size]["d_vocab"])  # POS < n_ctx: only the first POS rows are used
    expected = wpe(torch.arange(POS)).expand(BATCH, POS, -1)
    assert_close(
        ours(tokens),
        expected,
        what="PosEmbed(tokens)",
        hint="index W_pos by position 0..pos-1 (never by token id), the same rows for every sequence",
    )


# --- Attention --------------------------------------------------------------------------------------


@pytest.mark.kata("Attention")
def test_attention_is_topic_05_attention_sized_by_the_config(impl):
    cfg = impl.Config(d_model=12, n_heads=5, d_head=7, init_range=0.5)
    ours = impl.Attention(cfg)
    assert isinstance(ours, impl.attention.MultiHeadAttention), "Attention should build on topic 05's class"
    shapes = {name: list(param.shape) for name, param in ours.named_parameters()}
    expected = {
        **dict.fromkeys(["W_Q", "W_K", "W_V"], [5, 12, 7]),
        **dict.fromkeys(["b_Q", "b_K", "b_V"], [5, 7]),
        "W_O": [5, 7, 12],
        "b_O": [12],
    }
    assert shapes == expected, f"parameter shapes {shapes}, expected {expected}: take d_head from cfg.d_head"
    spread = ours.W_Q.std().item()
    assert 0.4 < spread < 0.6, f"W_Q has std {spread:.3f}, expected about cfg.init_range = 0.5: pass init_range on"


@pytest.mark.kata("Attention")
@BOTH
def test_attention_matches_hf_gpt2_attention(impl, hf64_models, size):
    hf_attn = hf64_models[size].transformer.h[1].attn
    cfg = our_config(impl, size)
    ours = loaded(impl.Attention(cfg).double(), attention_params(hf_attn, cfg.n_heads))
    x = torch.randn(BATCH, POS, cfg.d_model, dtype=torch.float64)
    expected, _ = hf_attn(x, attention_mask=causal_mask(POS, torch.float64))
    assert_close(
        ours(x),
        expected,
        what="Attention(x)",
        hint="not causal? (pass causal=True) or the wrong sizes from cfg?",
    )


# --- gelu_new, MLP ----------------------------------------------------------------------------------


@pytest.mark.kata("gelu_new")
def test_gelu_new_is_the_tanh_approximation(impl):
    x = torch.linspace(-6, 6, 3 * 5 * 7, dtype=torch.float64).reshape(3, 5, 7)
    hint = "the exact GELU (erf) differs by up to 5e-4: GPT-2 uses the tanh formula; check sqrt(2 / pi), 0.044715"
    assert_close(impl.gelu_new(x), NewGELUActivation()(x), what="gelu_new(x)", hint=hint)
    assert_close(impl.gelu_new(x), F.gelu(x, approximate="tanh"), what="gelu_new(x)", hint=hint)


@pytest.mark.kata("MLP")
@BOTH
def test_mlp_matches_hf_gpt2_mlp(impl, hf64_models, size):
    hf_mlp = hf64_models[size].transformer.h[1].mlp
    cfg = our_config(impl, size)
    ours = loaded(impl.MLP(cfg).double(), mlp_params(hf_mlp))
    x = torch.randn(BATCH, POS, cfg.d_model, dtype=torch.float64)
    assert_close(
        ours(x),
        hf_mlp(x),
        what="MLP(x)",
        hint="exact GELU instead of GPT-2's tanh GELU (gelu_new)? a bias forgotten?",
    )


# --- TransformerBlock -------------------------------------------------------------------------------


@pytest.mark.kata("TransformerBlock")
@BOTH
def test_block_matches_hf_gpt2_block(impl, hf64_models, size):
    hf_block = hf64_models[size].transformer.h[1]
    cfg = our_config(impl, size)
    ours = loaded(impl.TransformerBlock(cfg).double(), block_params(hf_block, cfg.n_heads))
    x = torch.randn(BATCH, POS, cfg.d_model, dtype=torch.float64)
    assert_close(
        ours(x),
        hf_block(x, attention_mask=causal_mask(POS, torch.float64)),
        what="TransformerBlock(x)",
        hint="the block is pre-LN, x + attn(ln1(x)), then + mlp(ln2(that)); if LayerNorm, Attention or MLP fail "
        "their own tests, fix them first: this test runs them",
    )


# --- Unembed ----------------------------------------------------------------------------------------


@pytest.mark.kata("Unembed")
def test_unembed_matches_hf_lm_head_plus_its_bias(impl, hf64_models):
    lm_head = hf64_models["tiny"].lm_head  # Hugging Face's has no bias: ours gets a random one on top
    b_U = torch.randn(100, dtype=torch.float64)
    ours = loaded(impl.Unembed(our_config(impl, "tiny")).double(), {"W_U": lm_head.weight.T, "b_U": b_U})
    x = torch.randn(BATCH, POS, 64, dtype=torch.float64)
    assert_close(ours(x), lm_head(x) + b_U, what="Unembed(x)", hint="b_U not added? W_U used transposed?")


# --- GPT2 -------------------------------------------------------------------------------------------


@pytest.mark.kata("GPT2")
@BOTH
def test_gpt2_logits_match_hf_gpt2(impl, hf_models, size):
    hf = hf_models[size]
    ours = loaded(impl.GPT2(our_config(impl, size)), model_params(hf))
    tokens = random_tokens(hf.config.vocab_size)
    with torch.no_grad():
        actual, expected = ours(tokens), hf(tokens).logits
    assert_close(
        actual,
        expected,
        what="GPT2(tokens), the logits",
        hint="(components pass alone?) token + positional embedding, every block in order, ln_final, unembed",
        **MODEL_TOLERANCE,
    )


# --- split_c_attn -----------------------------------------------------------------------------------


@pytest.mark.kata("split_c_attn")
@BOTH
def test_split_c_attn_gives_each_head_its_queries_keys_and_values(impl, hf_models, size):
    c_attn = hf_models[size].transformer.h[0].attn.c_attn
    n_heads, d_model = HF_SIZES[size]["n_head"], HF_SIZES[size]["n_embd"]
    W, b = impl.split_c_attn(c_attn.weight.detach(), n_heads), impl.split_c_attn(c_attn.bias.detach(), n_heads)
    d_head = d_model // n_heads
    assert W.shape == (3, n_heads, d_model, d_head), f"weight split to {list(W.shape)}"
    assert b.shape == (3, n_heads, d_head), f"bias split to {list(b.shape)}"
    x = torch.randn(BATCH, POS, d_model)
    with torch.no_grad():  # what GPT2Attention does: one matmul, split into q | k | v, view each as heads
        fused = c_attn(x).split(d_model, dim=-1)
    for index, name in enumerate(["queries", "keys", "values"]):
        expected = fused[index].unflatten(-1, (n_heads, d_head))
        actual = torch.einsum("bpm,hmd->bphd", x, W[index]) + b[index]
        assert_close(
            actual,
            expected,
            what=f"the {name} of every head (index {index} of the split)",
            hint="order along c_attn's last axis is q, k, v; within each, heads side by side: (n_heads d_head)",
            # float32 sums in another order than the fused matmul differ by ~1e-6; a wrong split by ~1
            atol=1e-5,
            rtol=1e-5,
        )


# --- convert_hf_state_dict --------------------------------------------------------------------------


@pytest.mark.kata("convert_hf_state_dict")
def test_convert_gives_every_parameter_its_hf_value(impl, hf_models):
    hf = hf_models["other"]
    converted = impl.convert_hf_state_dict(hf.state_dict(), our_config(impl, "other"))
    expected = model_params(hf)
    missing, extra = sorted(expected.keys() - converted.keys()), sorted(converted.keys() - expected.keys())
    assert not missing and not extra, f"missing keys {missing}, unexpected keys {extra}"
    for name, value in expected.items():
        assert_close(
            converted[name],
            value.detach(),
            what=f"converted[{name!r}]",
            hint="W_U is lm_head.weight.T (not W_E.T); W_O rows are (n_heads d_head); b_U is zeros",
        )


@pytest.mark.kata("convert_hf_state_dict")
def test_convert_leaves_the_hf_state_dict_as_it_was(impl, hf_models):
    state_dict = hf_models["tiny"].state_dict()  # its tensors share their memory with the model's parameters
    before = {name: (value.clone(), value.shape) for name, value in state_dict.items()}
    impl.convert_hf_state_dict(state_dict, our_config(impl, "tiny"))
    assert list(state_dict) == list(before), (
        f"the caller's state dict lost or gained keys: {sorted(before.keys() ^ state_dict.keys())}. "
        "Build a new dict; do not pop from or add to the one you are given."
    )
    changed = [
        name
        for name, (value, shape) in before.items()
        if state_dict[name].shape != shape or not torch.equal(state_dict[name], value)
    ]
    assert not changed, (
        f"the caller's tensors {changed} were changed in place (transposed with .t_(), or written into): "
        "read them and return new tensors or views (.T, einops.rearrange)"
    )


@pytest.mark.kata("convert_hf_state_dict")
def test_converted_weights_load_strictly_and_reproduce_hf_logits(impl, hf_models):
    hf = hf_models["tiny"]
    cfg = our_config(impl, "tiny")
    ours = loaded(impl.GPT2(cfg), impl.convert_hf_state_dict(hf.state_dict(), cfg))
    tokens = random_tokens(hf.config.vocab_size)
    with torch.no_grad():
        assert_close(ours(tokens), hf(tokens).logits, what="the logits of the converted model", **MODEL_TOLERANCE)


@pytest.mark.kata("convert_hf_state_dict")
def test_real_gpt2_small_weights_reproduce_hf_logits(impl):
    try:
        hf = GPT2LMHeadModel.from_pretrained("gpt2", local_files_only=True, attn_implementation="eager").eval()
    except OSError:  # what an offline hub raises for a model it does not hold
        pytest.skip(NOT_CACHED)
    cfg = impl.config_from_hf(hf.config)
    ours = loaded(impl.GPT2(cfg), impl.convert_hf_state_dict(hf.state_dict(), cfg))
    tokens = random_tokens(cfg.d_vocab, batch=2, pos=17)
    with torch.no_grad():  # real logits reach about 100 in size, after 12 layers of float32 rounding
        assert_close(ours(tokens), hf(tokens).logits, what="GPT-2 small's logits", atol=1e-3, rtol=1e-4)


# --- next_token_loss --------------------------------------------------------------------------------


@pytest.mark.kata("next_token_loss")
def test_next_token_loss_matches_hf_loss_with_labels(impl, hf_models):
    hf = hf_models["tiny"]
    tokens = random_tokens(hf.config.vocab_size)
    with torch.no_grad():
        output = hf(tokens, labels=tokens)  # Hugging Face shifts the labels inside
    assert_close(
        impl.next_token_loss(output.logits, tokens),
        output.loss,
        what="next_token_loss",
        hint="position t predicts token t + 1: drop the last logits and the first token; then a mean (not a sum) over "
        "batch and the pos - 1 predicted positions, of -log softmax at the next token",
    )


@pytest.mark.kata("next_token_loss")
def test_next_token_loss_is_the_mean_shifted_cross_entropy(impl):
    logits = 3 * torch.randn(2, 5, 7, dtype=torch.float64)
    tokens = torch.randint(0, 7, (2, 5))
    expected = F.cross_entropy(logits[:, :-1].reshape(-1, 7), tokens[:, 1:].reshape(-1))
    assert_close(
        impl.next_token_loss(logits, tokens),
        expected,
        what="next_token_loss",
        hint="a mean (not a sum) over batch and the pos - 1 predicted positions, of -log softmax at the next token",
    )


# --- generate_greedy, generate_sampled --------------------------------------------------------------


class Bigram(nn.Module):
    """A stand-in language model: the logits at a position depend only on the token there."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens]


class LogitsOf(nn.Module):
    """A Hugging Face model that returns bare logits, like ours."""

    def __init__(self, hf: GPT2LMHeadModel):
        super().__init__()
        self.hf = hf

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.hf(tokens).logits


def greedy_chain(table: torch.Tensor, last: torch.Tensor, n_new: int) -> torch.Tensor:
    """The greedy continuation of a bigram model, from each row's last token."""
    chain = [last]
    for _ in range(n_new):
        chain.append(table[chain[-1]].argmax(dim=-1))
    return torch.stack(chain[1:], dim=1)


@pytest.fixture(scope="module")
def hf_greedy(hf_models) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts for the tiny model, and Hugging Face's greedy decoding of them: 6 more tokens each."""
    hf = hf_models["tiny"]
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        prompt = random_tokens(hf.config.vocab_size, pos=5)
    expected = hf.generate(
        prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=6, do_sample=False, pad_token_id=0
    )
    return prompt, expected


@pytest.mark.kata("generate_greedy")
def test_generate_greedy_matches_hf_generate(impl, hf_models, hf_greedy):
    prompt, expected = hf_greedy
    actual = impl.generate_greedy(LogitsOf(hf_models["tiny"]), prompt, 6)
    assert actual.shape == expected.shape, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    assert torch.equal(actual, expected), (
        f"greedy tokens differ from Hugging Face's generate(do_sample=False):\n{actual}\nexpected\n{expected}\n"
        "Run the model on the whole sequence so far (not only the last token) and take the LAST position's logits."
    )


@pytest.mark.kata("generate_greedy")
def test_generate_greedy_follows_the_argmax_of_the_last_position(impl):
    table = torch.randn(13, 13)
    prompt = torch.randint(0, 13, (BATCH, 4))
    actual = impl.generate_greedy(Bigram(table), prompt, 5)
    assert actual.shape == (BATCH, 4 + 5), f"shape {list(actual.shape)}: return the prompt followed by the new tokens"
    assert torch.equal(actual[:, :4], prompt), "the prompt should come back unchanged at the start"
    # torch.equal ignores dtypes: token ids stay int64, which F.cross_entropy needs as targets
    assert actual.dtype == torch.int64, f"the tokens came back as {actual.dtype}: keep the prompt's int64"
    expected = greedy_chain(table, prompt[:, -1], 5)
    assert torch.equal(actual[:, 4:], expected), (
        f"generated {actual[:, 4:].tolist()}, expected {expected.tolist()}: use the logits at the LAST position"
    )


@pytest.mark.kata("generate_sampled")
def test_generate_sampled_is_reproducible_with_a_seeded_generator(impl):
    model, prompt = Bigram(torch.randn(13, 13)), torch.randint(0, 13, (BATCH, 4))
    seed = int(torch.randint(0, 2**31, ()))
    first = impl.generate_sampled(model, prompt, 8, generator=torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 1)  # a different global state must not matter
    second = impl.generate_sampled(model, prompt, 8, generator=torch.Generator().manual_seed(seed))
    assert first.shape == (BATCH, 4 + 8), f"shape {list(first.shape)}: return the prompt followed by the new tokens"
    assert torch.equal(first[:, :4], prompt), "the prompt should come back unchanged at the start"
    assert first.dtype == torch.int64, f"the tokens came back as {first.dtype}: keep the prompt's int64"
    assert torch.equal(first, second), "the same generator seed gave different tokens: draw from `generator`"
    torch.manual_seed(seed)
    third = impl.generate_sampled(model, prompt, 8)
    torch.manual_seed(seed)
    fourth = impl.generate_sampled(model, prompt, 8)
    assert torch.equal(third, fourth), (
        "without a generator, the same torch.manual_seed gave different tokens: with generator=None, sample from "
        "torch's default generator (what torch.multinomial(..., generator=None) does)"
    )


@pytest.mark.kata("generate_sampled")
def test_generate_sampled_with_top_k_1_is_hf_greedy_decoding(impl, hf_models, hf_greedy):
    prompt, expected = hf_greedy
    model = LogitsOf(hf_models["tiny"])
    actual = impl.generate_sampled(model, prompt, 6, temperature=1.7, top_k=1, generator=torch.Generator())
    assert actual.shape == expected.shape, f"shape {list(actual.shape)}, expected {list(expected.shape)}"
    assert torch.equal(actual, expected), (
        f"top_k=1 sampled\n{actual}\nexpected Hugging Face's greedy decoding\n{expected}\nWith top_k=1 only the "
        "largest logit keeps a non-zero probability. Run the model on the whole sequence so far and take the LAST "
        "position's logits."
    )


# Two rows of a bigram table, pinned so that each mistake below moves a sampled frequency by at least four
# times its tolerance, whatever the seed: well-separated logits, and the row after token 2 a permutation of
# the row after token 5 shifted up by 3, so that its top-k threshold is higher (one threshold for the
# whole batch, instead of one per row, keeps too many tokens there). With 10,000 samples a row:
# multiplying by the temperature or ignoring it, keeping top_k - 1 or top_k + 1 tokens.
PINNED_LOGITS = torch.tensor([0.3, -1.2, 1.9, 0.8, -0.4, 1.1, -2.0, 1.5, 0.0, -0.8, 0.6])
PINNED_ROWS = {5: PINNED_LOGITS, 2: PINNED_LOGITS[[7, 2, 9, 0, 5, 10, 3, 8, 1, 4, 6]] + 3.0}


@pytest.mark.kata("generate_sampled")
@pytest.mark.parametrize(
    ("temperature", "top_k"),
    [(0.6, 4), (2.5, None), (None, 3)],
    ids=["temperature-and-top_k", "temperature-alone", "top_k-alone"],
)
def test_generate_sampled_frequencies_follow_the_tempered_top_k_softmax(impl, temperature, top_k):
    n_per_row, vocab = 10_000, 11
    table = torch.randn(vocab, vocab)
    prompt = torch.randint(0, vocab, (len(PINNED_ROWS) * n_per_row, 3))
    for group, (token, logits) in enumerate(PINNED_ROWS.items()):
        table[token] = logits
        prompt[group * n_per_row : (group + 1) * n_per_row, -1] = token  # these rows ask what follows token
    # None: leave the argument out, so that it keeps its default
    arguments = {
        name: value for name, value in {"temperature": temperature, "top_k": top_k}.items() if value is not None
    }
    if top_k is not None:  # otherwise torch's default generator, seeded by the autouse fixture
        arguments["generator"] = torch.Generator().manual_seed(int(torch.randint(0, 2**31, ())))
    sampled = impl.generate_sampled(Bigram(table), prompt, 1, **arguments)
    assert sampled.shape == (prompt.shape[0], 4), f"shape {list(sampled.shape)}, expected {[prompt.shape[0], 4]}"
    for group, (token, logits) in enumerate(PINNED_ROWS.items()):
        last = sampled[group * n_per_row : (group + 1) * n_per_row, -1]
        frequencies = torch.bincount(last, minlength=vocab).double() / n_per_row
        tempered = logits.double() / (temperature or 1.0)
        kept = tempered.topk(top_k or vocab).indices
        expected = torch.zeros(vocab, dtype=torch.float64)
        expected[kept] = tempered[kept].softmax(dim=-1)
        outside = [t for t in range(vocab) if frequencies[t] > 0 and expected[t] == 0]
        assert not outside, (
            f"after token {token}, sampled tokens {outside} that are not among its top {top_k}: keep exactly top_k "
            "logits of EACH row (a threshold per row, the k-th largest of that row)"
        )
        # five standard deviations of each binomial frequency: each strays that far less than once in a million
        tolerance = 5 * (expected * (1 - expected) / n_per_row).sqrt() + 1e-9
        assert ((frequencies - expected).abs() <= tolerance).all(), (
            f"after token {token}, sampled frequencies {frequencies.numpy().round(3)} do not match "
            f"softmax(top-k logits / temperature) {expected.numpy().round(3)} (temperature {temperature or 1.0}, "
            f"top_k {top_k}): divide the logits by temperature (not multiply), before the softmax, with or "
            "without top_k; keep the top_k largest logits (not one fewer or more)"
        )


@pytest.mark.kata("generate_sampled")
def test_generate_sampled_keeps_the_rng_contract_in_every_branch(impl):
    model = Bigram(0.3 * torch.randn(13, 13))  # nearly flat: two seeds or two rows hardly ever sample alike
    prompt = torch.randint(0, 13, (1, 3)).repeat(7, 1)  # seven copies of one prompt, each continued on its own

    def sampled(**options):
        return lambda generator: impl.generate_sampled(model, prompt, 8, generator=generator, **options)

    check_rng_contract(
        {"top_k=None": sampled(temperature=1.3), "top_k=4": sampled(top_k=4)},
        what="generate_sampled",
        global_rng=True,
        independent={"continuations of one prompt": lambda tokens: tokens[:, 3:]},
        sampler="torch.multinomial",
    )
