"""Tests for katas/08_interpretability/attribution.py: decompositions, the logit lens, attribution, ablation and
patching, against Hugging Face's GPT-2.

The oracle is a Hugging Face GPT2LMHeadModel in float64 with a random value in EVERY parameter (biases,
LayerNorm scales and shifts, an unembedding untied from the embedding), loaded into your topic 06 GPT2
through your own convert_hf_state_dict. The caches handed to decompose_resid and logit_lens are read off
Hugging Face's model with forward hooks (attn.c_proj's input is z with the heads side by side), not made
by your run_with_cache, so these katas are checked on their own.

Ablations and patches are checked against the same change made to Hugging Face's model by hand: zeroing
a head's rows of W_O, replacing its slice of c_proj's input, changing one input token (at layer 0 the
residual stream at position p depends on token p only), or replacing a block's input. Everything is
compared at float64's default tolerance (rtol = atol = 1e-7): a correct solution stays within 1e-12.
"""

import copy
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel

from katakit.testing import assert_close, gpt2_from_hf, random_b_U, random_hf_gpt2, with_b_U

SEED = int(os.environ.get("KATAS_SEED", "0"))
# Every named dimension has its own size: batch 6, pos 9, n_layers 3 (4 logit-lens entries), n_heads 5,
# d_head 7, d_model 35, d_mlp 44, d_vocab 53, and 2 + 3 * (5 + 2) = 23 components.
BATCH, POS = 6, 9
N_LAYERS, N_HEADS, D_HEAD, D_MLP, D_VOCAB, N_CTX, EPS = 3, 5, 7, 44, 53, 13, 1e-4
D_MODEL = N_HEADS * D_HEAD
N_COMPONENTS = 2 + N_LAYERS * (N_HEADS + 2)
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
# computes gets it added by hand, so that a logit lens or a loss that forgets b_U shows.
B_U = random_b_U(D_VOCAB, SEED, torch.float64)


@pytest.fixture(scope="module")
def hf() -> GPT2LMHeadModel:
    """A small Hugging Face GPT-2 in float64 with random values in every parameter, built once."""
    return random_hf_gpt2(SEED, torch.float64, **HF_SIZES)


def ours_from(impl, hf_model: GPT2LMHeadModel) -> nn.Module:
    """Your topic 06 GPT2 with Hugging Face's weights, through your convert_hf_state_dict, and the random
    unembedding bias B_U."""
    return with_b_U(gpt2_from_hf(impl.transformer, hf_model, **OUR_SIZES), B_U)


@pytest.fixture
def ours(impl, hf) -> nn.Module:
    return ours_from(impl, hf)


def random_tokens() -> torch.Tensor:
    return torch.randint(0, D_VOCAB, (BATCH, POS))


def different_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """Tokens that differ from `tokens` at every place."""
    return (tokens + torch.randint(1, D_VOCAB, tokens.shape)) % D_VOCAB


def hf_run(hf_model: GPT2LMHeadModel, tokens: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Hugging Face's logits (+ B_U) and the activations these katas read, under TransformerLens' names."""
    found: dict[str, torch.Tensor] = {}
    handles = []

    def keep(module: nn.Module, input_name: str | None = None, output_name: str | None = None) -> None:
        def hook(module, args, output):
            if input_name:
                found[input_name] = args[0]
            if output_name:
                found[output_name] = output[0] if isinstance(output, tuple) else output

        handles.append(module.register_forward_hook(hook))

    gpt = hf_model.transformer
    keep(gpt.wte, output_name="hook_embed")
    keep(gpt.wpe, output_name="hook_pos_embed")
    for layer, block in enumerate(gpt.h):
        prefix = f"blocks.{layer}"
        keep(block, input_name=f"{prefix}.hook_resid_pre", output_name=f"{prefix}.hook_resid_post")
        keep(block.attn.c_proj, input_name=f"{prefix}.attn.hook_z", output_name=f"{prefix}.hook_attn_out")
        keep(block.mlp, output_name=f"{prefix}.hook_mlp_out")
    keep(gpt.ln_f, input_name="final_resid")
    try:
        with torch.no_grad():
            logits = hf_model(tokens).logits
    finally:
        for handle in handles:
            handle.remove()
    found["hook_pos_embed"] = found["hook_pos_embed"].expand(tokens.shape[0], -1, -1)
    for layer in range(N_LAYERS):
        z = found[f"blocks.{layer}.attn.hook_z"]
        found[f"blocks.{layer}.attn.hook_z"] = z.unflatten(-1, (N_HEADS, D_HEAD))  # heads side by side
    final = found.pop("final_resid")
    assert torch.equal(final, found[f"blocks.{N_LAYERS - 1}.hook_resid_post"])
    found["ln_final.hook_scale"] = (final.var(dim=-1, unbiased=False, keepdim=True) + EPS).sqrt()
    return logits + B_U, found


def hf_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The mean next-token cross-entropy, with torch's own cross_entropy."""
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


def hf_logits(hf_model: GPT2LMHeadModel, tokens: torch.Tensor, hooks: dict | None = None) -> torch.Tensor:
    """Hugging Face's logits + B_U, with forward pre-hooks {module: hook} on its modules while it runs."""
    handles = [module.register_forward_pre_hook(hook) for module, hook in (hooks or {}).items()]
    try:
        with torch.no_grad():
            return hf_model(tokens).logits + B_U
    finally:
        for handle in handles:
            handle.remove()


def replace_head_input(head: int, new_slice):
    """A pre-hook on attn.c_proj that replaces head `head`'s slice of its input (z, heads side by side)."""
    columns = slice(head * D_HEAD, (head + 1) * D_HEAD)

    def hook(module, args):
        z = args[0].clone()
        z[..., columns] = new_slice(z[..., columns])
        return (z,)

    return hook


def hooks_left(model: nn.Module) -> list[str]:
    left = []
    for name, module in model.named_modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks"):
            if getattr(module, kind):
                left.append(f"{name or 'model'}.{kind}")
    return left


def logit_diffs(logits: torch.Tensor, correct: torch.Tensor, incorrect: torch.Tensor, position: int) -> torch.Tensor:
    """logits[b, position, correct[b]] - logits[b, position, incorrect[b]], one sequence at a time."""
    return torch.stack(
        [logits[b, position, correct[b]] - logits[b, position, incorrect[b]] for b in range(logits.shape[0])]
    )


# --- decompose_resid -----------------------------------------------------------------------------------


def expected_labels() -> list[str]:
    labels = ["embed", "pos_embed"]
    for layer in range(N_LAYERS):
        labels += [f"L{layer}H{head}" for head in range(N_HEADS)] + [f"L{layer} b_O", f"L{layer} mlp"]
    return labels


def decompose(impl, hf, ours) -> tuple[torch.Tensor, list[str], dict[str, torch.Tensor]]:
    _, cache = hf_run(hf, random_tokens())
    result = impl.decompose_resid(cache, ours)
    assert isinstance(result, tuple) and len(result) == 2, "decompose_resid returns a pair (components, labels)"
    components, labels = result
    assert list(labels) == expected_labels(), (
        f"the labels should be {expected_labels()}, got {list(labels)}: embed, pos_embed, then per layer its heads "
        "in order, 'L{l} b_O', 'L{l} mlp'"
    )
    assert list(components.shape) == [N_COMPONENTS, BATCH, POS, D_MODEL], (
        f"components should be [component={N_COMPONENTS}, batch={BATCH}, pos={POS}, d_model={D_MODEL}], got "
        f"{list(components.shape)}"
    )
    return components, labels, cache


@pytest.mark.kata("decompose_resid")
def test_decompose_resid_components_sum_to_the_final_residual_stream(impl, hf, ours):
    components, _, cache = decompose(impl, hf, ours)
    assert_close(
        components.sum(dim=0),
        cache[f"blocks.{N_LAYERS - 1}.hook_resid_post"],
        what="the sum of the components",
        hint="every layer's b_O is a component of its own (the heads' outputs do not include it); "
        "did you forget it, or an MLP, or pos_embed?",
    )


@pytest.mark.kata("decompose_resid")
def test_decompose_resid_heads_and_b_O_sum_to_each_layers_attention_output(impl, hf, ours):
    components, labels, cache = decompose(impl, hf, ours)
    for layer in range(N_LAYERS):
        mine = [i for i, label in enumerate(labels) if label.startswith(f"L{layer}H") or label == f"L{layer} b_O"]
        assert_close(
            components[mine].sum(dim=0),
            cache[f"blocks.{layer}.hook_attn_out"],
            what=f"layer {layer}'s heads plus its b_O",
            hint="head h writes z[:, :, h] @ W_O[h]; do the heads of layer l use layer l's W_O and b_O?",
        )


@pytest.mark.kata("decompose_resid")
def test_decompose_resid_gives_every_component_its_own_output(impl, hf, ours):
    components, labels, cache = decompose(impl, hf, ours)
    expected = {"embed": cache["hook_embed"], "pos_embed": cache["hook_pos_embed"]}
    for layer, block in enumerate(hf.transformer.h):
        z = cache[f"blocks.{layer}.attn.hook_z"]
        weight = block.attn.c_proj.weight.detach().unflatten(0, (N_HEADS, D_HEAD))  # [n_heads, d_head, d_model]
        for head in range(N_HEADS):
            expected[f"L{layer}H{head}"] = z[:, :, head] @ weight[head]
        expected[f"L{layer} b_O"] = block.attn.c_proj.bias.detach().expand(BATCH, POS, D_MODEL)
        expected[f"L{layer} mlp"] = cache[f"blocks.{layer}.hook_mlp_out"]
    for i, label in enumerate(labels):
        assert_close(
            components[i],
            expected[label],
            what=f"component {i} ({label!r})",
            hint="head h reads z[:, :, h] (the head axis of z is the third) and W_O[h] (the first axis of W_O)",
        )


# --- logit_lens --------------------------------------------------------------------------------------------


@pytest.mark.kata("logit_lens")
def test_logit_lens_last_entry_is_the_models_logits(impl, hf, ours):
    logits, cache = hf_run(hf, random_tokens())
    lens = impl.logit_lens(cache, ours)
    assert list(lens.shape) == [N_LAYERS + 1, BATCH, POS, D_VOCAB], (
        f"the logit lens should be [n_layers + 1 = {N_LAYERS + 1}, batch, pos, d_vocab], got {list(lens.shape)}"
    )
    assert_close(
        lens[-1],
        logits,
        what="the last entry of the logit lens",
        hint="the final residual stream goes through ln_final, then the unembedding (W_U and b_U)",
    )


@pytest.mark.kata("logit_lens")
def test_logit_lens_reads_each_block_input_through_the_real_layer_norm(impl, hf, ours):
    logits, cache = hf_run(hf, random_tokens())
    lens = impl.logit_lens(cache, ours)
    with torch.no_grad():
        for layer in range(N_LAYERS):
            resid_pre = cache[f"blocks.{layer}.hook_resid_pre"]
            assert_close(
                lens[layer],
                hf.lm_head(hf.transformer.ln_f(resid_pre)) + B_U,
                what=f"logit lens entry {layer}",
                hint="entry l reads the INPUT of block l (resid_pre), through ln_final itself, which computes "
                "each residual stream's own mean and scale (not the final stream's ln_final.hook_scale)",
            )


# --- direct_logit_attribution --------------------------------------------------------------------------------

N_PARTS, POSITION = 4, 5  # the random decompositions below have 4 parts; the answer position is 5 (not -1)


def random_parts(resid: torch.Tensor, n_parts: int) -> torch.Tensor:
    """n_parts random tensors that sum to resid (each has a mean over d_model far from 0)."""
    parts = torch.randn(n_parts - 1, *resid.shape, dtype=resid.dtype) + torch.randn(n_parts - 1, 1, 1, 1)
    return torch.cat([parts, (resid - parts.sum(dim=0))[None]])


def dla_setup(hf):
    tokens = random_tokens()
    logits, cache = hf_run(hf, tokens)
    correct, incorrect = torch.randint(0, D_VOCAB, (BATCH,)), torch.randint(0, D_VOCAB, (BATCH,))
    resid = cache[f"blocks.{N_LAYERS - 1}.hook_resid_post"]
    return logits, cache, resid, correct, incorrect


def leftover(hf, correct: torch.Tensor, incorrect: torch.Tensor) -> torch.Tensor:
    """ln_final.b . (W_U[:, correct] - W_U[:, incorrect]) + b_U[correct] - b_U[incorrect], by hand."""
    W_U = hf.lm_head.weight.detach().T
    return hf.transformer.ln_f.bias.detach() @ (W_U[:, correct] - W_U[:, incorrect]) + B_U[correct] - B_U[incorrect]


@pytest.mark.kata("direct_logit_attribution")
def test_direct_logit_attribution_sums_to_the_logit_difference(impl, hf, ours):
    logits, cache, resid, correct, incorrect = dla_setup(hf)
    parts = random_parts(resid, N_PARTS)
    dla = impl.direct_logit_attribution(parts, cache["ln_final.hook_scale"], ours, correct, incorrect, POSITION)
    assert list(dla.shape) == [N_PARTS, BATCH], f"expected [component={N_PARTS}, batch={BATCH}], got {list(dla.shape)}"
    assert_close(
        dla.sum(dim=0) + leftover(hf, correct, incorrect),
        logit_diffs(logits, correct, incorrect, POSITION),
        what=f"the sum of the attributions + the leftover (ln_final.b and b_U terms), at position {POSITION}",
        hint="centre each component over d_model (the LayerNorm subtracts the mean first), divide by the GIVEN "
        "scale at that position (not one recomputed from each component), multiply by ln_final.w, then dot with "
        "W_U[:, correct] - W_U[:, incorrect]; ln_final.b belongs to no component; correct[b] and incorrect[b] "
        "belong to sequence b",
    )


@pytest.mark.kata("direct_logit_attribution")
def test_direct_logit_attribution_holds_the_scale_fixed(impl, hf, ours):
    _, cache, resid, correct, incorrect = dla_setup(hf)
    parts = random_parts(resid, N_PARTS)
    scale = cache["ln_final.hook_scale"]
    dla = impl.direct_logit_attribution(parts, scale, ours, correct, incorrect, POSITION)
    tripled = impl.direct_logit_attribution(3 * parts, scale, ours, correct, incorrect, POSITION)
    assert_close(
        tripled,
        3 * dla,
        what="the attributions of components three times as large (the scale held fixed: linear)",
    )


@pytest.mark.kata("direct_logit_attribution")
def test_direct_logit_attribution_ignores_what_layer_norm_removes(impl, hf, ours):
    _, cache, resid, correct, incorrect = dla_setup(hf)
    parts = random_parts(resid, N_PARTS)
    shifted = parts + torch.randn(N_PARTS, BATCH, POS, 1, dtype=parts.dtype)  # a constant along d_model
    args = (cache["ln_final.hook_scale"], ours, correct, incorrect, POSITION)
    assert_close(
        impl.direct_logit_attribution(shifted, *args),
        impl.direct_logit_attribution(parts, *args),
        what="the attributions of components shifted by a constant along d_model",
    )


@pytest.mark.kata("direct_logit_attribution")
def test_direct_logit_attribution_of_one_component_by_hand(impl, hf, ours):
    _, cache, resid, correct, incorrect = dla_setup(hf)
    parts = random_parts(resid, N_PARTS)
    scale = cache["ln_final.hook_scale"]
    dla = impl.direct_logit_attribution(parts, scale, ours, correct, incorrect, -1)
    W_U, w = hf.lm_head.weight.detach(), hf.transformer.ln_f.weight.detach()
    expected = torch.empty(N_PARTS, BATCH, dtype=torch.float64)
    for c in range(N_PARTS):
        for b in range(BATCH):
            x = parts[c, b, POS - 1]
            expected[c, b] = ((x - x.mean()) / scale[b, POS - 1] * w) @ (W_U[correct[b]] - W_U[incorrect[b]])
    assert_close(
        dla,
        expected,
        what="the attributions at position -1 (the last)",
    )


# --- ablate_head -------------------------------------------------------------------------------------------


@pytest.mark.kata("ablate_head")
@pytest.mark.parametrize(("layer", "head"), [(0, 3), (2, 1)])
def test_ablate_head_zero_is_the_head_with_its_W_O_rows_zeroed(impl, hf, ours, layer, head):
    tokens = random_tokens()
    edited = copy.deepcopy(hf)
    with torch.no_grad():
        edited.transformer.h[layer].attn.c_proj.weight[head * D_HEAD : (head + 1) * D_HEAD] = 0
    expected = hf_loss(hf_logits(edited, tokens), tokens)
    loss = impl.ablate_head(ours, tokens, layer, head)
    assert_close(
        loss,
        expected,
        what=f"the loss with head {head} of layer {layer} zero-ablated (kind='zero', the default)",
        hint="zero z[:, :, head] (z is [batch, pos, n_heads, d_head]) of layer `layer` only, via run_with_hooks, "
        "then topic 06's next_token_loss",
    )


@pytest.mark.kata("ablate_head")
@pytest.mark.parametrize(("layer", "head"), [(1, 4), (2, 0)])
def test_ablate_head_mean_replaces_z_by_its_batch_mean_at_each_position(impl, hf, ours, layer, head):
    tokens = random_tokens()
    batch_mean = replace_head_input(head, lambda z: z.mean(dim=0, keepdim=True).expand_as(z))
    expected = hf_loss(hf_logits(hf, tokens, {hf.transformer.h[layer].attn.c_proj: batch_mean}), tokens)
    loss = impl.ablate_head(ours, tokens, layer, head, kind="mean")
    assert_close(
        loss,
        expected,
        what=f"the loss with head {head} of layer {layer} mean-ablated",
        hint="z[b, p, head] becomes the mean of z[:, p, head] over the BATCH (dim 0), a different mean at each "
        "position; not a mean over positions or over everything",
    )


@pytest.mark.kata("ablate_head")
@pytest.mark.parametrize("kind", ["zero", "mean"])
def test_ablate_head_leaves_the_model_as_it_was(impl, hf, ours, kind):
    tokens = random_tokens()
    before = {name: value.clone() for name, value in ours.state_dict().items()}
    impl.ablate_head(ours, tokens, 1, 2, kind=kind)
    changed = [name for name, value in ours.state_dict().items() if not torch.equal(value, before[name])]
    assert not changed, f"ablate_head changed the model's parameters {changed}: ablate through a hook, not the weights"
    assert not hooks_left(ours), f"ablate_head left hooks behind: {hooks_left(ours)}"
    with torch.no_grad():
        assert_close(ours(tokens), hf_logits(hf, tokens), what="the model's logits after ablate_head")


@pytest.mark.kata("ablate_head")
def test_ablate_head_refuses_an_unknown_kind(impl, ours):
    with pytest.raises(ValueError):
        impl.ablate_head(ours, random_tokens(), 0, 0, kind="resample")


# --- patch_residual ----------------------------------------------------------------------------------------


@pytest.mark.kata("patch_residual")
@pytest.mark.parametrize("position", [0, 4, -1])
def test_patch_residual_at_layer_0_is_changing_that_one_token(impl, hf, ours, position):
    clean = random_tokens()
    corrupted = different_tokens(clean)
    expected_tokens = corrupted.clone()
    expected_tokens[:, position] = clean[:, position]
    logits = impl.patch_residual(ours, clean, corrupted, 0, position)
    assert_close(
        logits,
        hf_logits(hf, expected_tokens),
        what=f"the logits with resid_pre of block 0 patched at position {position}",
        hint="before block 0 the residual stream at position p is embed + pos_embed of token p alone: patching it "
        "must equal running the corrupted tokens with token p made clean. Patch only that position, in the INPUT "
        "of block `layer` (its resid_pre, not its resid_post), with the clean run's vector at the same position.",
    )


@pytest.mark.kata("patch_residual")
@pytest.mark.parametrize(("layer", "position"), [(1, 6), (2, 2)])
def test_patch_residual_replaces_the_input_of_that_block(impl, hf, ours, layer, position):
    clean = random_tokens()
    corrupted = different_tokens(clean)
    _, clean_cache = hf_run(hf, clean)
    clean_resid = clean_cache[f"blocks.{layer}.hook_resid_pre"]

    def patch(module, args):
        resid = args[0].clone()
        resid[:, position] = clean_resid[:, position]
        return (resid, *args[1:])

    logits = impl.patch_residual(ours, clean, corrupted, layer, position)
    assert_close(
        logits,
        hf_logits(hf, corrupted, {hf.transformer.h[layer]: patch}),
        what=f"the logits with resid_pre of block {layer} patched at position {position}",
    )


@pytest.mark.kata("patch_residual")
@pytest.mark.parametrize("layer", [0, 2])
def test_patch_residual_where_only_one_token_differs_recovers_the_clean_answer(impl, hf, ours, layer):
    clean, position = random_tokens(), 3
    corrupted = clean.clone()
    corrupted[:, position] = different_tokens(clean)[:, position]
    logits = impl.patch_residual(ours, clean, corrupted, layer, position)
    assert_close(
        logits[:, : position + 1],
        hf_logits(hf, clean)[:, : position + 1],
        what=f"the logits at positions 0..{position} after patching block {layer} at position {position}",
    )


@pytest.mark.kata("patch_residual")
def test_patch_residual_changes_nothing_before_the_patched_position(impl, hf, ours):
    clean, position = random_tokens(), 6
    corrupted = different_tokens(clean)
    logits = impl.patch_residual(ours, clean, corrupted, 1, position)
    assert_close(
        logits[:, :position],
        hf_logits(hf, corrupted)[:, :position],
        what=f"the logits before position {position} after patching block 1 at position {position}",
    )


# --- patch_head --------------------------------------------------------------------------------------------


@pytest.mark.kata("patch_head")
@pytest.mark.parametrize(("layer", "head"), [(0, 2), (2, 4)])
def test_patch_head_writes_the_clean_z_of_that_head_only(impl, hf, ours, layer, head):
    clean = random_tokens()
    corrupted = different_tokens(clean)
    _, clean_cache = hf_run(hf, clean)
    clean_z = clean_cache[f"blocks.{layer}.attn.hook_z"][:, :, head]
    patch = replace_head_input(head, lambda z: clean_z)
    logits = impl.patch_head(ours, clean, corrupted, layer, head)
    assert_close(
        logits,
        hf_logits(hf, corrupted, {hf.transformer.h[layer].attn.c_proj: patch}),
        what=f"the logits with head {head} of layer {layer} patched",
        hint="replace z[:, :, head] (the third axis) of layer `layer` at every position with the clean run's, "
        "and leave the other heads corrupted",
    )


def each_kata(*cases: str) -> list:
    """pytest parameters for tests shared by several katas, each marked with its own kata (the first word)."""
    return [pytest.param(case, marks=pytest.mark.kata(case.split()[0]), id=case) for case in cases]


@pytest.mark.parametrize("kata", each_kata("patch_residual", "patch_head"))
def test_patching_leaves_no_hook_behind(impl, hf, ours, kata):
    clean = random_tokens()
    corrupted = different_tokens(clean)
    getattr(impl, kata)(ours, clean, corrupted, 1, 1)
    assert not hooks_left(ours), f"{kata} left hooks behind: {hooks_left(ours)}"
    with torch.no_grad():
        assert_close(ours(corrupted), hf_logits(hf, corrupted), what=f"the model's logits after {kata}")


# --- logit_diff_recovered ----------------------------------------------------------------------------------


def three_logits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return tuple(torch.randn(BATCH, POS, D_VOCAB, dtype=torch.float64) for _ in range(3))


@pytest.mark.kata("logit_diff_recovered")
def test_logit_diff_recovered_is_a_ratio_of_batch_means(impl):
    patched, clean, corrupted = three_logits()
    correct, incorrect = torch.randint(0, D_VOCAB, (BATCH,)), torch.randint(0, D_VOCAB, (BATCH,))
    position = 2
    means = [logit_diffs(logits, correct, incorrect, position).mean() for logits in (patched, clean, corrupted)]
    expected = (means[0] - means[2]) / (means[1] - means[2])
    assert_close(
        impl.logit_diff_recovered(patched, clean, corrupted, correct, incorrect, position),
        expected,
        what="the fraction of the logit difference recovered",
        hint="(patched - corrupted) / (clean - corrupted) of the BATCH MEANS of logit[correct] - logit[incorrect] "
        "at `position` (not a mean of per-sequence ratios)",
    )


@pytest.mark.kata("logit_diff_recovered")
def test_logit_diff_recovered_is_1_for_the_clean_run_and_0_for_the_corrupted_one(impl):
    _, clean, corrupted = three_logits()
    correct, incorrect = torch.randint(0, D_VOCAB, (BATCH,)), torch.randint(0, D_VOCAB, (BATCH,))
    one = torch.tensor(1.0, dtype=torch.float64)
    for patched, expected in [(clean, one), (corrupted, 0 * one)]:
        assert_close(
            impl.logit_diff_recovered(patched, clean, corrupted, correct, incorrect, -1),
            expected,
            what="the fraction recovered by a patched run equal to the "
            + ("clean run" if expected == 1 else "corrupted run"),
        )


# --- the hooks of ablate_head, patch_residual and patch_head ------------------------------------------------


def spied_run_with_hooks(run_with_hooks, edited_in_place: list[str]):
    """run_with_hooks whose every hook is watched: the name of each hook that changed the activation it was
    handed (in place) is appended to edited_in_place."""

    def run(model, tokens, hooks):
        def watched(name, hook_fn):
            def hook(activation):
                before = activation.detach().clone()
                result = hook_fn(activation)
                if not torch.equal(activation.detach(), before):
                    edited_in_place.append(name)
                return result

            return hook

        return run_with_hooks(model, tokens, {name: watched(name, fn) for name, fn in hooks.items()})

    return run


@pytest.mark.parametrize("kata", each_kata("ablate_head zero", "ablate_head mean", "patch_residual", "patch_head"))
def test_hooks_return_a_new_tensor_and_leave_the_activation_they_receive_alone(impl, ours, monkeypatch, kata):
    edited_in_place: list[str] = []
    monkeypatch.setattr(
        impl.activations, "run_with_hooks", spied_run_with_hooks(impl.activations.run_with_hooks, edited_in_place)
    )
    clean = random_tokens()
    corrupted = different_tokens(clean)
    if kata.startswith("ablate_head"):
        impl.ablate_head(ours, clean, 1, 2, kind=kata.split()[1])
    elif kata == "patch_residual":
        impl.patch_residual(ours, clean, corrupted, 1, 4)
    else:
        impl.patch_head(ours, clean, corrupted, 1, 3)
    assert not edited_in_place, (
        f"{kata.split()[0]}'s hook changed the activation it received ({edited_in_place}) in place: anything else "
        "holding that tensor (a cache, another hook, autograd) sees the change. Edit a copy (.clone()) and return it"
    )
