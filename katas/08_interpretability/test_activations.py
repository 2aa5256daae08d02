"""Tests for katas/08_interpretability/activations.py: caches and hooks against Hugging Face's GPT-2.

The oracle is a Hugging Face GPT2LMHeadModel with a random value in EVERY parameter (biases, LayerNorm
scales and shifts, an unembedding untied from the embedding), loaded into your topic 06 GPT2 through your
own convert_hf_state_dict. Its `output_hidden_states` are the residual stream before each block (the last
one comes AFTER ln_f: it is ln_final.hook_normalized, not a resid_post) and its `output_attentions` the
patterns; everything else is read with forward hooks on its own modules (attn.c_proj's input is z with
the heads side by side, ln_2's input is resid_mid, ...). Everything runs in float64, compared at float64's
default tolerance: a LayerNorm scale without its eps (1e-4 here) is off by 5e-5.

run_with_hooks is checked with oracles by weights: zeroing one head's z is the same as zeroing that
head's rows of W_O, a uniform causal pattern is what a head with zero queries computes, adding a vector to
the residual stream after block 0 is what a larger MLP bias of block 0 does.

The attention scores are checked on patterns built so that each score is exactly 0 or 1, and on random
causal patterns against the definition written as a loop.
"""

import copy
import os

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close, gpt2_from_hf, random_b_U, random_hf_gpt2, with_b_U

SEED = int(os.environ.get("KATAS_SEED", "0"))
BATCH, POS = 3, 11
N_LAYERS, N_HEADS, D_MODEL, D_HEAD, D_MLP, D_VOCAB, N_CTX, EPS = 2, 6, 42, 7, 80, 97, 24, 1e-4
HF_SIZES = {
    "n_layer": N_LAYERS,
    "n_head": N_HEADS,
    "n_embd": D_MODEL,
    "n_inner": D_MLP,
    "vocab_size": D_VOCAB,
    "n_positions": N_CTX,
    "layer_norm_epsilon": EPS,
}
OUR_SIZES = {
    "d_model": D_MODEL,
    "n_heads": N_HEADS,
    "d_head": D_HEAD,
    "d_mlp": D_MLP,
    "n_layers": N_LAYERS,
    "n_ctx": N_CTX,
    "d_vocab": D_VOCAB,
    "layer_norm_eps": EPS,
}
# Hugging Face's GPT-2 has no unembedding bias: your model gets this random one, and every logit Hugging Face
# computes gets it added, so that a run that loses b_U on the way shows.
B_U = random_b_U(D_VOCAB, SEED, torch.float64)

# Every name of the cache, its shape, and the likely mistake when it differs from Hugging Face's.
SHAPES = {
    "resid": [BATCH, POS, D_MODEL],
    "scale": [BATCH, POS, 1],
    "pattern": [BATCH, N_HEADS, POS, POS],
    "z": [BATCH, POS, N_HEADS, D_HEAD],
}
NAMES = {
    "hook_embed": ("resid", "the output of model.embed"),
    "hook_pos_embed": ("resid", "the output of model.pos_embed"),
    "ln_final.hook_scale": ("scale", "the output of ln_final.hook_scale: sqrt(biased variance of its INPUT + eps)"),
    "ln_final.hook_normalized": ("resid", "what ln_final returns (after w and b)"),
}
for _layer in range(N_LAYERS):
    NAMES |= {
        f"blocks.{_layer}.hook_resid_pre": ("resid", "the INPUT of block l"),
        f"blocks.{_layer}.ln1.hook_scale": ("scale", "the output of ln1.hook_scale: sqrt(var of ln1's INPUT + eps)"),
        f"blocks.{_layer}.ln1.hook_normalized": ("resid", "what ln1 returns (after w and b)"),
        f"blocks.{_layer}.attn.hook_pattern": (
            "pattern",
            "the output of attn.hook_pattern, through which 05's forward passes attn.pattern of ln1's output",
        ),
        f"blocks.{_layer}.attn.hook_z": (
            "z",
            "the output of attn.hook_z, through which 05's forward passes z = pattern @ (x W_V + b_V) in "
            "[batch, pos, n_heads, d_head] order (not heads first); b_V forgotten?",
        ),
        f"blocks.{_layer}.hook_attn_out": ("resid", "the output of attn (not yet added to the residual stream)"),
        f"blocks.{_layer}.hook_resid_mid": ("resid", "resid_pre + attn_out: ln2's INPUT, not its output"),
        f"blocks.{_layer}.ln2.hook_scale": ("scale", "the output of ln2.hook_scale: sqrt(var of ln2's INPUT + eps)"),
        f"blocks.{_layer}.ln2.hook_normalized": ("resid", "what ln2 returns (after w and b)"),
        f"blocks.{_layer}.hook_mlp_out": ("resid", "the output of mlp"),
        f"blocks.{_layer}.hook_resid_post": ("resid", "the OUTPUT of block l (before ln_final, for the last block)"),
    }


@pytest.fixture(scope="module")
def hf() -> GPT2LMHeadModel:
    """A small Hugging Face GPT-2 in float64 with random values in every parameter, built once."""
    return random_hf_gpt2(SEED, torch.float64, **HF_SIZES)


def ours_from(impl, hf_model: GPT2LMHeadModel) -> nn.Module:
    """Your topic 06 GPT2 with Hugging Face's weights, through your convert_hf_state_dict, and the random
    unembedding bias B_U; its parameters require grad, as a model's do."""
    return with_b_U(gpt2_from_hf(impl.transformer, hf_model, **OUR_SIZES), B_U)


@pytest.fixture
def ours(impl, hf) -> nn.Module:
    return ours_from(impl, hf)


def random_tokens() -> torch.Tensor:
    return torch.randint(0, D_VOCAB, (BATCH, POS))


def hf_run(hf_model: GPT2LMHeadModel, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hugging Face's logits (+ B_U) and every activation of the cache, under TransformerLens' names."""
    found: dict[str, torch.Tensor] = {}
    handles = []

    def keep(module: nn.Module, input_name: str | None = None, output_name: str | None = None) -> None:
        def hook(module, args, output):
            if input_name:
                found[input_name] = args[0]
            if output_name:
                found[output_name] = output[0] if isinstance(output, tuple) else output

        handles.append(module.register_forward_hook(hook))

    def keep_layer_norm(ln: nn.LayerNorm, prefix: str) -> None:
        def hook(ln, args, output):
            variance = args[0].var(dim=-1, unbiased=False, keepdim=True)
            found[f"{prefix}.hook_scale"] = (variance + ln.eps).sqrt()
            found[f"{prefix}.hook_normalized"] = output

        handles.append(ln.register_forward_hook(hook))

    gpt = hf_model.transformer
    keep(gpt.wte, output_name="hook_embed")
    keep(gpt.wpe, output_name="hook_pos_embed")
    for layer, block in enumerate(gpt.h):
        prefix = f"blocks.{layer}"
        keep(block, output_name=f"{prefix}.hook_resid_post")
        keep(block.attn.c_proj, input_name=f"{prefix}.attn.hook_z", output_name=f"{prefix}.hook_attn_out")
        keep(block.ln_2, input_name=f"{prefix}.hook_resid_mid")
        keep(block.mlp, output_name=f"{prefix}.hook_mlp_out")
        keep_layer_norm(block.ln_1, f"{prefix}.ln1")
        keep_layer_norm(block.ln_2, f"{prefix}.ln2")
    keep_layer_norm(gpt.ln_f, "ln_final")
    try:
        with torch.no_grad():
            output = hf_model(tokens, output_hidden_states=True, output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    found["hook_pos_embed"] = found["hook_pos_embed"].expand(tokens.shape[0], -1, -1)
    for layer in range(N_LAYERS):
        found[f"blocks.{layer}.hook_resid_pre"] = output.hidden_states[layer]
        found[f"blocks.{layer}.attn.hook_pattern"] = output.attentions[layer]
        z = found[f"blocks.{layer}.attn.hook_z"]
        found[f"blocks.{layer}.attn.hook_z"] = z.unflatten(-1, (N_HEADS, D_HEAD))  # heads side by side
    # hidden_states has n_layers + 1 entries: the last is AFTER ln_f, not the last block's output
    assert torch.equal(output.hidden_states[-1], found["ln_final.hook_normalized"])
    return output.logits + B_U, found


def hooks_left(model: nn.Module) -> list[str]:
    """Every module of the model that still has a hook, and how many."""
    left = []
    for name, module in model.named_modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            count = len(getattr(module, kind))
            if count:
                left.append(f"{name or 'model'}.{kind} ({count})")
    return left


def assert_matches_hf_cache(cache: dict, expected: dict, where: str) -> None:
    missing = sorted(expected.keys() - cache.keys())
    assert not missing, (
        f"{where} has no entries {missing}. The names are TransformerLens' hook names, all of them for every layer "
        "(see the module docstring); the pattern and z are the outputs of attn.hook_pattern and attn.hook_z, which "
        "05's MultiHeadAttention.forward must pass them through, and a LayerNorm's scale and output those of "
        "ln.hook_scale and ln.hook_normalized, which 06's LayerNorm.forward must pass them through."
    )
    for name, (kind, hint) in NAMES.items():
        assert list(cache[name].shape) == SHAPES[kind], (
            f"{where}[{name!r}] has shape {list(cache[name].shape)}, expected {SHAPES[kind]} "
            f"(batch {BATCH}, pos {POS}, n_heads {N_HEADS}, d_head {D_HEAD}, d_model {D_MODEL}). It is {hint}."
        )
        assert_close(cache[name], expected[name], what=f"{where}[{name!r}]", hint=f"it is {hint}")


# --- register_cache_hooks ---------------------------------------------------------------------------


@pytest.mark.kata("register_cache_hooks")
def test_register_cache_hooks_fills_the_cache_when_the_model_runs(impl, hf, ours):
    tokens = random_tokens()
    expected_logits, expected = hf_run(hf, tokens)
    cache = {}
    handles = impl.register_cache_hooks(ours, cache)
    try:
        assert cache == {}, f"the cache holds {sorted(cache)} before the model ran: only register the hooks"
        with torch.no_grad():
            logits = ours(tokens)
    finally:
        for handle in handles:
            handle.remove()
    assert_close(logits, expected_logits, what="the logits with the hooks in place", hint="a hook changed an output?")
    assert_matches_hf_cache(cache, expected, "the cache")


@pytest.mark.kata("register_cache_hooks")
def test_register_cache_hooks_returns_every_handle(impl, ours):
    ours.embed.register_forward_hook(lambda module, args, output: None)  # somebody else's hook
    handles = impl.register_cache_hooks(ours, {})
    assert isinstance(handles, list) and handles, "return the list of the handles register_forward_hook gave you"
    for handle in handles:
        handle.remove()
    left = hooks_left(ours)
    assert left == ["embed._forward_hooks (1)"], (
        f"after removing every handle you returned, hooks are left on {left} (expected only the one the test "
        "registered on embed): return the handle of EVERY hook you register, and leave other hooks alone."
    )


@pytest.mark.kata("register_cache_hooks")
def test_register_cache_hooks_stores_detached_tensors(impl, ours):
    cache = {}
    handles = impl.register_cache_hooks(ours, cache)
    try:
        ours(random_tokens())  # with gradients on: the parameters require grad
    finally:
        for handle in handles:
            handle.remove()
    attached = sorted(name for name, value in cache.items() if value.requires_grad)
    assert cache and not attached, (
        f"{attached} are still attached to the autograd graph: a cache keeps the whole graph of the forward pass "
        "alive. Store value.detach()."
    )


# --- run_with_cache ---------------------------------------------------------------------------------


@pytest.mark.kata("run_with_cache")
def test_run_with_cache_matches_hf_logits_and_activations(impl, hf, ours):
    tokens = random_tokens()
    expected_logits, expected = hf_run(hf, tokens)
    logits, cache = impl.run_with_cache(ours, tokens)
    assert_close(logits, expected_logits, what="the logits run_with_cache returns", hint="return what the model gave")
    assert_matches_hf_cache(cache, expected, "run_with_cache's cache")


@pytest.mark.kata("run_with_cache")
def test_run_with_cache_gives_detached_tensors(impl, ours):
    _, cache = impl.run_with_cache(ours, random_tokens())
    attached = sorted(name for name, value in cache.items() if value.requires_grad)
    assert cache and not attached, f"{attached} are attached to the autograd graph: store them detached"


@pytest.mark.kata("run_with_cache")
def test_run_with_cache_leaves_no_hook_behind(impl, ours):
    first_tokens, second_tokens = random_tokens(), random_tokens()
    ours.ln_final.register_forward_hook(lambda module, args, output: None)  # somebody else's hook
    _, first = impl.run_with_cache(ours, first_tokens)
    kept = {name: value.clone() for name, value in first.items()}
    left = hooks_left(ours)
    assert left == ["ln_final._forward_hooks (1)"], (
        f"after run_with_cache, hooks are left on {left} (expected only the test's own, on ln_final): remove every "
        "hook you registered (handle.remove()), and only those."
    )
    impl.run_with_cache(ours, second_tokens)
    changed = sorted(name for name, value in first.items() if not torch.equal(value, kept[name]))
    assert not changed, f"a second run changed the first run's cache at {changed}: a hook of the first call is alive"


class Boom(Exception):
    """What the test's own hook raises in the middle of the forward pass."""


@pytest.mark.kata("run_with_cache")
def test_run_with_cache_removes_its_hooks_when_the_forward_pass_raises(impl, ours):
    def explode(module, args, output):
        raise Boom("the forward pass failed")

    handle = ours.blocks[1].mlp.register_forward_hook(explode)
    with pytest.raises(Boom):
        impl.run_with_cache(ours, random_tokens())
    handle.remove()
    left = hooks_left(ours)
    assert not left, (
        f"the forward pass raised, and hooks were left on {left}: remove them in a `finally:` block, which runs "
        "whether or not the model raised"
    )


# --- run_with_hooks ---------------------------------------------------------------------------------

HOOK_NAMES = ["hook_embed", "hook_pos_embed"] + [
    f"blocks.{layer}.{name}"
    for layer in range(N_LAYERS)
    for name in [
        "hook_resid_pre",
        "attn.hook_pattern",
        "attn.hook_z",
        "hook_attn_out",
        "hook_mlp_out",
        "hook_resid_post",
    ]
]


def hf_logits(hf_model: GPT2LMHeadModel, tokens: torch.Tensor) -> torch.Tensor:
    """Hugging Face's logits, plus the unembedding bias B_U your model has and Hugging Face's has not."""
    with torch.no_grad():
        return hf_model(tokens).logits + B_U


def edited(hf_model: GPT2LMHeadModel, edit) -> GPT2LMHeadModel:
    """A copy of the Hugging Face model whose weights `edit` changed (in place, without gradients)."""
    model = copy.deepcopy(hf_model)
    with torch.no_grad():
        edit(model.transformer)
    return model


def causal_uniform(pattern: torch.Tensor) -> torch.Tensor:
    """The pattern of a head whose scores are all equal: query i spreads 1 / (i + 1) over keys 0..i."""
    pos = pattern.shape[-1]
    allowed = torch.ones(pos, pos, dtype=pattern.dtype).tril()
    return (allowed / allowed.sum(dim=-1, keepdim=True)).expand_as(pattern)


def zero_z_head(head: int):
    def hook(z: torch.Tensor) -> torch.Tensor:
        keep = torch.ones(z.shape[-2], 1, dtype=z.dtype)
        keep[head] = 0
        return z * keep  # z is [batch, pos, n_heads, d_head]: head is the third axis

    return hook


def zero_q(gpt, layer: int) -> None:
    """Zero the queries of every head of a layer: all scores 0, so a uniform causal pattern."""
    gpt.h[layer].attn.c_attn.weight[:, :D_MODEL] = 0
    gpt.h[layer].attn.c_attn.bias[:D_MODEL] = 0


def zero_w_o_rows(gpt, layer: int, head: int) -> None:
    """Zero head `head`'s rows of the output projection: whatever its z, it writes nothing."""
    gpt.h[layer].attn.c_proj.weight[head * D_HEAD : (head + 1) * D_HEAD] = 0


@pytest.mark.kata("run_with_hooks")
def test_run_with_hooks_hands_every_hook_its_activation(impl, hf, ours):
    tokens = random_tokens()
    expected_logits, expected = hf_run(hf, tokens)
    seen = {}

    def record(name: str):
        def hook(activation: torch.Tensor) -> torch.Tensor:
            seen[name] = activation.detach().clone()
            return activation

        return hook

    with torch.no_grad():
        logits = impl.run_with_hooks(ours, tokens, {name: record(name) for name in HOOK_NAMES})
    never = sorted(set(HOOK_NAMES) - seen.keys())
    assert not never, f"the hooks {never} were never called: support every name of the docstring, for every layer"
    assert_close(
        logits,
        expected_logits,
        what="the logits when every hook returns what it received",
        hint="a hook that returns its input must change nothing",
    )
    for name in HOOK_NAMES:
        kind, hint = NAMES[name]
        assert list(seen[name].shape) == SHAPES[kind], (
            f"the hook {name!r} received shape {list(seen[name].shape)}, expected {SHAPES[kind]}: it is {hint}"
        )
        assert_close(seen[name], expected[name], what=f"what the hook {name!r} received", hint=f"it is {hint}")


def add_vector(vector: torch.Tensor):
    return lambda activation: activation + vector


# (hooks to apply, the same change made to Hugging Face's weights), built from a random vector.
def weight_oracles(vector: torch.Tensor) -> dict[str, tuple[dict, object]]:
    def zero_attention_outputs(gpt):
        for block in gpt.h:
            block.attn.c_proj.weight.zero_()
            block.attn.c_proj.bias.zero_()

    def add_to_mlp_bias(layer: int):
        def edit(gpt):
            gpt.h[layer].mlp.c_proj.bias += vector

        return edit

    def add_to_wpe(gpt):
        gpt.wpe.weight += vector

    def scale_wte(gpt):
        gpt.wte.weight *= 2

    def zero_mlp(gpt):
        gpt.h[0].mlp.c_proj.weight.zero_()
        gpt.h[0].mlp.c_proj.bias.zero_()

    return {
        "hook_embed doubled": ({"hook_embed": lambda x: 2 * x}, scale_wte),
        "hook_pos_embed plus a vector": ({"hook_pos_embed": add_vector(vector)}, add_to_wpe),
        "blocks.0.hook_resid_pre plus a vector": ({"blocks.0.hook_resid_pre": add_vector(vector)}, add_to_wpe),
        "every hook_attn_out zeroed (no attention)": (
            {f"blocks.{layer}.hook_attn_out": torch.zeros_like for layer in range(N_LAYERS)},
            zero_attention_outputs,
        ),
        "blocks.0.hook_mlp_out zeroed": ({"blocks.0.hook_mlp_out": torch.zeros_like}, zero_mlp),
        "blocks.0.hook_resid_post plus a vector": (
            {"blocks.0.hook_resid_post": add_vector(vector)},
            add_to_mlp_bias(0),
        ),
        "blocks.1.hook_resid_pre plus a vector": (
            {"blocks.1.hook_resid_pre": add_vector(vector)},
            add_to_mlp_bias(0),
        ),
        "blocks.1.hook_resid_post (the last) plus a vector": (
            {"blocks.1.hook_resid_post": add_vector(vector)},
            add_to_mlp_bias(1),
        ),
        "blocks.0.attn.hook_z with head 4 zeroed": (
            {"blocks.0.attn.hook_z": zero_z_head(4)},
            lambda gpt: zero_w_o_rows(gpt, 0, 4),
        ),
        "blocks.1.attn.hook_pattern uniform causal": (
            {"blocks.1.attn.hook_pattern": causal_uniform},
            lambda gpt: zero_q(gpt, 1),
        ),
    }


ORACLE_IDS = list(weight_oracles(torch.zeros(D_MODEL)))


@pytest.mark.kata("run_with_hooks")
@pytest.mark.parametrize("case", ORACLE_IDS)
def test_run_with_hooks_equals_the_same_change_made_to_the_weights(impl, hf, ours, case):
    tokens = random_tokens()
    hooks, edit = weight_oracles(torch.randn(D_MODEL, dtype=torch.float64))[case]
    expected = hf_logits(edited(hf, edit), tokens)
    with torch.no_grad():
        actual = impl.run_with_hooks(ours, tokens, hooks)
    assert_close(
        actual,
        expected,
        what=f"the logits with {case}",
        hint="the hook's return value must replace the activation for the rest of the forward pass (a forward "
        "hook returns the new output; a pre-hook returns the new inputs as a tuple); z is [batch, pos, n_heads, "
        "d_head], the pattern [batch, n_heads, query_pos, key_pos]",
    )


@pytest.mark.kata("run_with_hooks")
def test_run_with_hooks_applies_pattern_then_z_then_attn_out_in_one_layer(impl, hf, ours):
    tokens = random_tokens()
    seen = {}

    def double_and_record(attn_out: torch.Tensor) -> torch.Tensor:
        seen["attn_out"] = attn_out.detach().clone()
        return 2 * attn_out

    def oracle_edits(gpt):
        zero_q(gpt, 1)
        zero_w_o_rows(gpt, 1, 2)

    oracle = edited(hf, oracle_edits)
    _, expected_activations = hf_run(oracle, tokens)

    def doubled_attention(gpt):
        oracle_edits(gpt)
        gpt.h[1].attn.c_proj.weight *= 2
        gpt.h[1].attn.c_proj.bias *= 2

    expected = hf_logits(edited(hf, doubled_attention), tokens)
    hooks = {
        "blocks.1.hook_attn_out": double_and_record,  # listed first: the order of the dict must not matter
        "blocks.1.attn.hook_z": zero_z_head(2),
        "blocks.1.attn.hook_pattern": causal_uniform,
    }
    with torch.no_grad():
        actual = impl.run_with_hooks(ours, tokens, hooks)
    assert "attn_out" in seen, "the hook on blocks.1.hook_attn_out was never called"
    assert_close(
        seen["attn_out"],
        expected_activations["blocks.1.hook_attn_out"],
        what="what hook_attn_out received when the same layer's pattern and z are hooked too",
    )
    assert_close(actual, expected, what="the logits with pattern, z and attn_out of layer 1 hooked")


@pytest.mark.kata("run_with_hooks")
def test_run_with_hooks_without_hooks_gives_the_plain_logits(impl, hf, ours):
    tokens = random_tokens()
    with torch.no_grad():
        actual = impl.run_with_hooks(ours, tokens, {})
    assert_close(actual, hf_logits(hf, tokens), what="run_with_hooks(model, tokens, {})")
    assert not hooks_left(ours), f"hooks left on {hooks_left(ours)}"


@pytest.mark.kata("run_with_hooks")
@pytest.mark.parametrize("name", ["blocks.0.hook_resid_pr", f"blocks.{N_LAYERS}.hook_resid_pre", "hook_tokens"])
def test_run_with_hooks_refuses_an_unknown_name_before_running(impl, ours, name):
    runs = []
    handle = ours.embed.register_forward_hook(lambda module, args, output: runs.append(1))
    hooks = {"hook_embed": lambda x: x, name: lambda x: x}
    with pytest.raises((KeyError, ValueError)) as raised:
        impl.run_with_hooks(ours, random_tokens(), hooks)
    assert name in str(raised.value), f"the error should name the unknown hook {name!r}; it said: {raised.value}"
    assert not runs, "the model ran although a hook name was unknown: check every name first"
    handle.remove()
    assert not hooks_left(ours), f"after refusing {name!r}, hooks are left on {hooks_left(ours)}"


@pytest.mark.kata("run_with_hooks")
def test_run_with_hooks_leaves_no_hook_behind(impl, ours):
    ours.unembed.register_forward_hook(lambda module, args, output: None)  # somebody else's hook
    impl.run_with_hooks(ours, random_tokens(), {name: (lambda x: x) for name in HOOK_NAMES})
    left = hooks_left(ours)
    assert left == ["unembed._forward_hooks (1)"], (
        f"after run_with_hooks, hooks are left on {left} (expected only the test's own, on unembed): remove every "
        "hook you registered, and only those"
    )


@pytest.mark.kata("run_with_hooks")
@pytest.mark.parametrize("failing", ["blocks.1.hook_mlp_out", "blocks.1.attn.hook_z"])
def test_run_with_hooks_removes_its_hooks_when_a_hook_raises(impl, ours, failing):
    def explode(activation):
        raise Boom("a hook failed")

    hooks = {name: (lambda x: x) for name in HOOK_NAMES} | {failing: explode}
    with pytest.raises(Boom):
        impl.run_with_hooks(ours, random_tokens(), hooks)
    left = hooks_left(ours)
    assert not left, f"a hook raised, and hooks were left on {left}: remove them in a `finally:` block"


# --- attention_pattern ------------------------------------------------------------------------------


@pytest.mark.kata("attention_pattern")
@pytest.mark.parametrize("layer", range(N_LAYERS))
def test_attention_pattern_rebuilds_hf_attentions_from_resid_pre(impl, hf, ours, layer):
    tokens = random_tokens()
    with torch.no_grad():
        output = hf(tokens, output_hidden_states=True, output_attentions=True)
    resid_pre, expected = output.hidden_states[layer], output.attentions[layer]
    block = ours.blocks[layer]

    def refuse(*args, **kwargs):
        raise AssertionError("attention_pattern called attn.pattern or attn itself: compute it from the weights")

    block.attn.pattern = refuse  # an instance attribute hides the method
    block.attn.forward = refuse
    with torch.no_grad():
        actual = impl.attention_pattern(resid_pre, block.ln1, block.attn)
    assert_close(
        actual,
        expected,
        what=f"attention_pattern of layer {layer}",
        hint="ln1 applied first? scores divided by sqrt(d_head)? b_Q and b_K added? future keys (above the "
        "diagonal) masked with -inf, softmax over key_pos (the last axis)?",
    )


# --- repeated_tokens --------------------------------------------------------------------------------


@pytest.mark.kata("repeated_tokens")
def test_repeated_tokens_is_a_random_sequence_followed_by_itself(impl):
    batch, seq_len, d_vocab = 3, 7, 50
    tokens = impl.repeated_tokens(batch, seq_len, d_vocab, torch.Generator().manual_seed(SEED))
    assert tokens.shape == (batch, 2 * seq_len), f"shape {list(tokens.shape)}, expected [{batch}, {2 * seq_len}]"
    assert tokens.dtype == torch.int64, f"dtype {tokens.dtype}: token ids are int64 (torch.long), as randint gives"
    assert torch.equal(tokens[:, seq_len:], tokens[:, :seq_len]), (
        f"the second half of each row should repeat its first half:\n{tokens}"
    )
    assert len({tuple(row) for row in tokens[:, :seq_len].tolist()}) == batch, (
        f"rows repeat each other:\n{tokens}\nDraw every row at random, not one row copied over the batch"
    )


@pytest.mark.kata("repeated_tokens")
def test_repeated_tokens_draws_every_id_of_the_vocabulary_uniformly(impl):
    batch, seq_len, d_vocab = 20, 500, 5
    tokens = impl.repeated_tokens(batch, seq_len, d_vocab, torch.Generator().manual_seed(SEED))
    low, high = int(tokens.min()), int(tokens.max())
    assert low == 0 and high == d_vocab - 1, (
        f"token ids run from {low} to {high}, expected 0 to {d_vocab - 1}: every id of the vocabulary can be drawn, "
        "and torch.randint's upper bound is excluded (randint(0, d_vocab))"
    )
    frequencies = torch.bincount(tokens[:, :seq_len].flatten(), minlength=d_vocab).double() / (batch * seq_len)
    tolerance = 5 * ((1 / d_vocab) * (1 - 1 / d_vocab) / (batch * seq_len)) ** 0.5  # five standard deviations
    assert ((frequencies - 1 / d_vocab).abs() <= tolerance).all(), (
        f"token frequencies {frequencies.numpy().round(3)}, expected {1 / d_vocab} each: draw uniformly"
    )


@pytest.mark.kata("repeated_tokens")
def test_repeated_tokens_draws_from_the_generator_only(impl):
    seed = int(torch.randint(0, 2**31, ()))
    first = impl.repeated_tokens(4, 9, 1000, torch.Generator().manual_seed(seed))
    torch.manual_seed(seed + 1)  # another global random state must not matter
    second = impl.repeated_tokens(4, 9, 1000, torch.Generator().manual_seed(seed))
    assert torch.equal(first, second), (
        "the same generator seed gave different tokens: draw all randomness from `generator` (torch.randint "
        "takes generator=...), not from torch's global random state"
    )
    other = impl.repeated_tokens(4, 9, 1000, torch.Generator().manual_seed(seed + 1))
    assert not torch.equal(first, other), "another generator seed gave the same tokens: draw them from `generator`"


# --- duplicate_token_scores, induction_scores ----------------------------------------------------------

SEQ_LEN, SCORE_BATCH = 5, 2  # patterns of 2 * SEQ_LEN = 10 positions, N_HEADS heads


def random_causal_pattern(batch: int, n_heads: int, pos: int) -> torch.Tensor:
    """Random attention patterns, each head and sequence its own: softmax of random causally masked scores."""
    scores = 2 * torch.randn(batch, n_heads, pos, pos, dtype=torch.float64)
    future = torch.ones(pos, pos, dtype=torch.bool).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1)


def stripe(pos: int, offset: int, first_query: int) -> torch.Tensor:
    """A [pos, pos] pattern in which query q attends only to key q - offset, from first_query on; the queries
    before first_query attend only to themselves."""
    pattern = torch.zeros(pos, pos, dtype=torch.float64)
    for query in range(pos):
        pattern[query, query - offset if query >= first_query else query] = 1.0
    return pattern


def scores_by_loop(pattern: torch.Tensor, pairs: list[tuple[int, int]]) -> torch.Tensor:
    """Mean over the batch and the (query, key) pairs of pattern[:, :, query, key]: the definition."""
    return torch.stack([pattern[:, :, query, key] for query, key in pairs]).mean(dim=(0, 1))


def duplicate_pairs(seq_len: int) -> list[tuple[int, int]]:
    return [(query, query - seq_len) for query in range(seq_len, 2 * seq_len)]


def induction_pairs(seq_len: int) -> list[tuple[int, int]]:
    return [(query, query - seq_len + 1) for query in range(seq_len, 2 * seq_len)]


# One head of each kind, then a random one: the scores of each kind of head are known exactly.
HEAD_KINDS = ["previous-token", "duplicate-token", "induction", "self"]


def zoo_pattern() -> torch.Tensor:
    pos = 2 * SEQ_LEN
    heads = [stripe(pos, 1, 1), stripe(pos, SEQ_LEN, SEQ_LEN), stripe(pos, SEQ_LEN - 1, SEQ_LEN), stripe(pos, 0, 0)]
    return torch.stack(heads).expand(SCORE_BATCH, -1, -1, -1)


ZOO_HINTS = {
    "duplicate_token_scores": "queries seq_len .. 2 seq_len - 1, each to key q - seq_len (the same token one "
    "copy earlier), not q - seq_len + 1 (that is induction)",
    "induction_scores": "queries seq_len .. 2 seq_len - 1, each to key q - seq_len + 1; not query seq_len - 1 "
    "(offset by one?), not key q - seq_len (that is a duplicate-token head)",
}
ZOO_EXPECTED = {
    "duplicate_token_scores": [0.0, 1.0, 0.0, 0.0],
    "induction_scores": [0.0, 0.0, 1.0, 0.0],
}


def call_score(impl, kata: str, pattern: torch.Tensor, seq_len: int) -> torch.Tensor:
    return getattr(impl, kata)(pattern, seq_len)


def check_zoo(impl, kata: str) -> None:
    actual = call_score(impl, kata, zoo_pattern(), SEQ_LEN)
    expected = torch.tensor(ZOO_EXPECTED[kata], dtype=torch.float64)
    assert_close(
        actual,
        expected,
        what=f"{kata} of heads that attend exactly as a {', a '.join(HEAD_KINDS)} head (in that order)",
        hint=ZOO_HINTS[kata],
    )


def check_random(impl, kata: str, pairs: list[tuple[int, int]]) -> None:
    pattern = random_causal_pattern(SCORE_BATCH, N_HEADS, 2 * SEQ_LEN)
    assert_close(
        call_score(impl, kata, pattern, SEQ_LEN),
        scores_by_loop(pattern, pairs),
        what=f"{kata} of random causal patterns",
        hint=ZOO_HINTS[kata] + "; a mean over the batch and those queries, one score per head",
    )


@pytest.mark.kata("duplicate_token_scores")
def test_duplicate_token_scores_of_heads_of_every_kind(impl):
    check_zoo(impl, "duplicate_token_scores")


@pytest.mark.kata("duplicate_token_scores")
def test_duplicate_token_scores_of_random_patterns(impl):
    check_random(impl, "duplicate_token_scores", duplicate_pairs(SEQ_LEN))


@pytest.mark.kata("induction_scores")
def test_induction_scores_of_heads_of_every_kind(impl):
    check_zoo(impl, "induction_scores")


@pytest.mark.kata("induction_scores")
def test_induction_scores_of_random_patterns(impl):
    check_random(impl, "induction_scores", induction_pairs(SEQ_LEN))


@pytest.mark.kata("induction_scores")
def test_induction_scores_leave_out_the_query_before_the_second_copy(impl):
    # every head attends from query seq_len - 1 to key 0 (the stripe's one step too early) and nowhere else
    pos = 2 * SEQ_LEN
    pattern = torch.eye(pos, dtype=torch.float64)
    pattern[SEQ_LEN - 1] = 0
    pattern[SEQ_LEN - 1, 0] = 1
    actual = impl.induction_scores(pattern.expand(SCORE_BATCH, N_HEADS, -1, -1), SEQ_LEN)
    assert_close(
        actual,
        torch.zeros(N_HEADS, dtype=torch.float64),
        what="induction_scores when only query seq_len - 1 (not one of seq_len .. 2 seq_len - 1) attends",
    )


@pytest.mark.kata("repeated_tokens")
def test_repeated_tokens_keep_the_rng_contract(impl):
    check_rng_contract(
        lambda generator: impl.repeated_tokens(4, 9, 1000, generator),
        what="repeated_tokens",
        independent={"rows": lambda tokens: tokens, "tokens of a row's first half": lambda tokens: tokens[0, :9]},
        sampler="torch.randint",
    )
