"""Tests for katas/08_interpretability/processing.py: LayerNorm folding and centring, against torch and
TransformerLens.

The model is your topic 06 GPT2 holding a Hugging Face GPT-2 with a random value in EVERY parameter (LayerNorm
scales and shifts far from 1 and 0, every bias nonzero, b_U included, W_U untied from W_E), in float64, so that a weight
left out, a bias folded into the wrong place or a mean taken over the wrong axis changes the logits by far
more than rounding. The oracles: the logits of the model before processing (equal after folding and after
centring the writing weights; equal up to their mean over the vocabulary after centring the unembedding),
torch.nn.functional.layer_norm for a single fold, and the processed weights of TransformerLens' own
transformer_lens.weight_processing.ProcessWeights (version 4; HookedTransformer is gone from it), which
works on a state dict with our names, since ours are TransformerLens' names. Folding without centring gives
the same logits too (centring is free), so only the zero means and TransformerLens' weights catch it.

TransformerLens (an optional extra: `pip install -e '.[interp]'`) takes seconds to import, so only the tests
that compare with it import it, and they are skipped when it is not installed.
"""

import os

import pytest
import torch
import torch.nn.functional as F

from katakit.testing import assert_close, gpt2_from_hf, random_hf_gpt2

SEED = int(os.environ.get("KATAS_SEED", "0"))
BATCH, POS = 3, 11
HF_SIZES = {
    "n_layer": 2,
    "n_head": 6,
    "n_embd": 42,
    "n_inner": 80,
    "vocab_size": 97,
    "n_positions": 24,
    "layer_norm_epsilon": 1e-4,
}
OUR_SIZES = {
    "d_model": 42,
    "n_heads": 6,
    "d_head": 7,
    "d_mlp": 80,
    "n_layers": 2,
    "n_ctx": 24,
    "d_vocab": 97,
    "layer_norm_eps": 1e-4,
}
TL_MISSING = "pip install -e '.[interp]' installs TransformerLens"
TIGHT = {"atol": 1e-10, "rtol": 1e-10}
# ProcessWeights computes in float32 whatever the dtype it is given
TL_TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}
LAYER_NORMS = ["blocks.0.ln1", "blocks.0.ln2", "blocks.1.ln1", "blocks.1.ln2", "ln_final"]
READING = [f"blocks.{layer}.attn.W_{name}" for layer in range(2) for name in "QKV"]
READING += ["blocks.0.mlp.W_in", "blocks.1.mlp.W_in", "unembed.W_U"]
WRITING = ["embed.W_E", "pos_embed.W_pos"]
WRITING += [
    f"blocks.{layer}.{name}" for layer in range(2) for name in ("attn.W_O", "attn.b_O", "mlp.W_out", "mlp.b_out")
]


@pytest.fixture(scope="module")
def hf_model():
    return random_hf_gpt2(SEED, torch.float64, **HF_SIZES)


@pytest.fixture
def model(impl, hf_model):
    """Your topic 06 GPT2 with hf_model's weights, in float64, and an unembedding bias (GPT-2 has none)."""
    ours = gpt2_from_hf(impl.transformer, hf_model, **OUR_SIZES)
    with torch.no_grad():
        ours.unembed.b_U.copy_(torch.randn_like(ours.unembed.b_U) + 0.5)
    return ours


@pytest.fixture
def tokens():
    return torch.randint(0, HF_SIZES["vocab_size"], (BATCH, POS))


def logits(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens)


def weights(model) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def check_unchanged(model, before: dict[str, torch.Tensor], kata: str) -> None:
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, before[name])]
    assert not changed, f"{kata} changed the model it was given ({changed}): work on copy.deepcopy(model)"


def check_zero_mean(processed, names: list[str], axis: int, what: str, hint: str) -> None:
    state = processed.state_dict()
    for name in names:
        mean = state[name].mean(dim=axis)
        assert_close(mean, torch.zeros_like(mean), what=f"the mean of {name} over {what}", hint=hint, atol=1e-12)


def process_with_transformer_lens(model, step: str, **options) -> dict[str, torch.Tensor]:
    pytest.importorskip("transformer_lens", reason=TL_MISSING)
    from transformer_lens.weight_processing import ProcessWeights

    return getattr(ProcessWeights, step)(weights(model), model.cfg, **options)


def check_same_weights(processed, theirs: dict[str, torch.Tensor], hint: str = "") -> None:
    ours = processed.state_dict()
    assert set(theirs) == set(ours), f"expected the parameters {sorted(theirs)}, got {sorted(ours)}"
    for name, value in theirs.items():
        assert_close(ours[name], value.to(ours[name].dtype), what=f"{name}", hint=hint, **TL_TOLERANCE)


# --- fold_layer_norm_into ---------------------------------------------------------------------------


@pytest.mark.kata("fold_layer_norm_into")
@pytest.mark.parametrize("heads", [(), (3,), (2, 3)])
def test_fold_layer_norm_into_reads_the_normalised_input_as_before(impl, heads):
    d_model, d_out, eps = 5, 7, 1e-5
    w, b = torch.randn(d_model, dtype=torch.float64) + 1, torch.randn(d_model, dtype=torch.float64)
    W, bias = torch.randn(*heads, d_model, d_out, dtype=torch.float64), torch.randn(*heads, d_out, dtype=torch.float64)
    x = torch.randn(BATCH, POS, d_model, dtype=torch.float64) * 3 + 2
    folded_W, folded_bias = impl.fold_layer_norm_into(w, b, W, bias)
    assert folded_W.shape == W.shape and folded_bias.shape == bias.shape, (
        f"expected shapes {list(W.shape)} and {list(bias.shape)}, got {list(folded_W.shape)} and "
        f"{list(folded_bias.shape)}"
    )
    normalised_with, normalised = F.layer_norm(x, (d_model,), w, b, eps), F.layer_norm(x, (d_model,), eps=eps)
    read = "bpd,{h}do->bp{h}o".format(h="hk"[: len(heads)])
    expected = torch.einsum(read, normalised_with, W) + bias
    actual = torch.einsum(read, normalised, folded_W) + folded_bias
    assert_close(
        actual,
        expected,
        what="what the folded weights read from a LayerNorm without w and b",
        hint="(x_hat * w + b) @ W + bias = x_hat @ (w[:, None] * W) + (b @ W + bias): b is not scaled by w, and w "
        "scales the d_model axis of W (the second from the end)",
        **TIGHT,
    )


@pytest.mark.kata("fold_layer_norm_into")
def test_fold_layer_norm_into_centres_the_folded_weight(impl):
    w, b = torch.randn(5, dtype=torch.float64) + 1, torch.randn(5, dtype=torch.float64)
    W, bias = torch.randn(3, 5, 7, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    folded_W, _ = impl.fold_layer_norm_into(w, b, W, bias)
    mean = folded_W.mean(dim=-2)
    assert_close(
        mean,
        torch.zeros_like(mean),
        what="the folded weight's mean over d_model",
        hint="subtract the mean over the d_model axis (-2), after scaling by w",
        atol=1e-12,
    )
    shift = folded_W - w[:, None] * W  # centring adds the same row to every row
    assert_close(
        shift,
        shift[:, :1].expand_as(shift),
        what="folded W minus w[:, None] * W, row by row",
        **TIGHT,
    )


# --- fold_layer_norms -------------------------------------------------------------------------------


@pytest.mark.kata("fold_layer_norms")
def test_fold_layer_norms_keeps_the_logits(impl, model, tokens):
    before = weights(model)
    folded = impl.fold_layer_norms(model)
    check_unchanged(model, before, "fold_layer_norms")
    assert_close(
        logits(folded, tokens),
        logits(model, tokens),
        what="the logits of the folded model",
        hint="ln1 into W_Q, W_K, W_V and b_Q, b_K, b_V; ln2 into W_in and b_in; ln_final into W_U and b_U",
        **TIGHT,
    )


@pytest.mark.kata("fold_layer_norms")
def test_fold_layer_norms_leaves_layer_norms_that_only_normalise(impl, model):
    state = impl.fold_layer_norms(model).state_dict()
    for name in LAYER_NORMS:
        assert torch.equal(state[f"{name}.w"], torch.ones_like(state[f"{name}.w"])), f"{name}.w should be all 1"
        assert torch.equal(state[f"{name}.b"], torch.zeros_like(state[f"{name}.b"])), f"{name}.b should be all 0"


@pytest.mark.kata("fold_layer_norms")
def test_fold_layer_norms_centres_the_reading_weights(impl, model):
    check_zero_mean(
        impl.fold_layer_norms(model),
        READING,
        axis=-2,
        what="d_model",
        hint="fold_layer_norm_into centres every weight it folds; TransformerLens' fold_ln does the same",
    )


@pytest.mark.kata("fold_layer_norms")
@pytest.mark.timeout(120)  # importing TransformerLens takes seconds, more on a busy machine
def test_fold_layer_norms_as_transformer_lens_does(impl, model):
    theirs = process_with_transformer_lens(model, "fold_layer_norm")
    check_same_weights(
        impl.fold_layer_norms(model),
        theirs,
        hint="b is folded into every bias that reads the LayerNorm, b_K too, although no logit sees it there (b @ W_K "
        "adds the same number to all the scores of a query)",
    )


# --- center_writing_weights -------------------------------------------------------------------------


@pytest.mark.kata("center_writing_weights")
def test_center_writing_weights_keeps_the_logits(impl, model, tokens):
    before = weights(model)
    centred = impl.center_writing_weights(model)
    check_unchanged(model, before, "center_writing_weights")
    assert_close(
        logits(centred, tokens),
        logits(model, tokens),
        what="the logits after centring the writing weights (LayerNorms not folded)",
        hint="the mean over d_model (the last axis) is free; a mean over tokens, positions or heads is not",
        **TIGHT,
    )


@pytest.mark.kata("center_writing_weights")
def test_center_writing_weights_centres_every_writer_and_nothing_else(impl, model):
    before = weights(model)
    centred = impl.center_writing_weights(model)
    check_zero_mean(
        centred, WRITING, axis=-1, what="d_model", hint="W_E, W_pos, W_O, b_O, W_out and b_out, over their last axis"
    )
    untouched = [name for name in before if name not in WRITING]
    changed = [name for name in untouched if not torch.equal(centred.state_dict()[name], before[name])]
    assert not changed, f"only the writing weights should change, but so did {changed}"


@pytest.mark.kata("center_writing_weights")
@pytest.mark.timeout(120)
def test_center_writing_weights_as_transformer_lens_does(impl, model):
    theirs = process_with_transformer_lens(model, "center_writing_weights")
    check_same_weights(impl.center_writing_weights(model), theirs)


# --- center_unembed ---------------------------------------------------------------------------------


@pytest.mark.kata("center_unembed")
def test_center_unembed_shifts_each_position_s_logits_by_their_mean(impl, model, tokens):
    before = weights(model)
    centred = impl.center_unembed(model)
    check_unchanged(model, before, "center_unembed")
    original = logits(model, tokens)
    actual = logits(centred, tokens)
    assert_close(
        actual,
        original - original.mean(dim=-1, keepdim=True),
        what="the logits after centring the unembedding",
        hint="the mean over the vocabulary (W_U's last axis) of W_U and of b_U: over d_model, the shift differs "
        "from token to token, since ln_final's output (with its w and b) does not have mean 0",
        **TIGHT,
    )
    assert_close(actual.log_softmax(-1), original.log_softmax(-1), what="the log-probabilities", **TIGHT)


@pytest.mark.kata("center_unembed")
@pytest.mark.timeout(120)
def test_center_unembed_as_transformer_lens_does(impl, model):
    theirs = process_with_transformer_lens(model, "center_unembed")
    check_same_weights(impl.center_unembed(model), theirs)


# --- process_weights --------------------------------------------------------------------------------


@pytest.mark.kata("process_weights")
def test_process_weights_keeps_the_log_probabilities(impl, model, tokens):
    before = weights(model)
    processed = impl.process_weights(model)
    check_unchanged(model, before, "process_weights")
    check_zero_mean(processed, ["unembed.W_U", "unembed.b_U"], axis=-1, what="the vocabulary", hint="center_unembed")
    original = logits(model, tokens)
    assert_close(
        logits(processed, tokens),
        original - original.mean(dim=-1, keepdim=True),
        what="the logits of the processed model",
        hint="folding and centring the writing weights keep the logits, centring the unembedding takes away their "
        "mean over the vocabulary, and nothing else changes: does each of the three katas pass its own tests?",
        **TIGHT,
    )
    check_zero_mean(processed, WRITING, axis=-1, what="d_model", hint="center_writing_weights")


@pytest.mark.kata("process_weights")
@pytest.mark.timeout(120)
def test_process_weights_as_transformer_lens_does(impl, model):
    theirs = process_with_transformer_lens(
        model, "process_weights", fold_value_biases=False, refactor_factored_attn_matrices=False
    )
    check_same_weights(impl.process_weights(model), theirs, hint="fold_ln, center_writing_weights, center_unembed")
