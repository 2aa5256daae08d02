"""Tests for katas/08_interpretability/induction.py: an attention-only model, its training, and the induction
circuit it learns.

The fast tests check each kata on small random models against oracles written here from the definitions:
the forward pass with torch.nn.functional.scaled_dot_product_attention, the loss with
torch.nn.functional.cross_entropy, the training loop with torch.optim.AdamW. Their weights are drawn large
(init_range 1) so that the heads attend sharply and differ from each other.

The slow tests are the capstone: your train_induction_model trains the model once per session
(conftest.py's capstone fixture, shared with test_reverse_engineering.py; a minute at most on a laptop's CPU), then
your katas find the induction circuit in it and check it on sequences it never saw: a previous-token head in
layer 0, an induction head in layer 1 that reads it through its keys (K-composition, well above the score of
random weights), a loss on the repeated half close to its floor, and ablations that take the improvement
away again.
"""

import copy
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close

SEED = int(os.environ.get("KATAS_SEED", "0"))
# The first AdamW of a process imports much of PyTorch's compiler machinery: seconds on a busy machine. Pay for
# it here, while the tests are collected, rather than inside a test's 15-second limit.
torch.optim.AdamW([nn.Parameter(torch.zeros(1))])
BATCH, SEQ_LEN = 3, 5  # pos = 2 * SEQ_LEN = 10


def attention_oracle(attn: nn.Module, x: torch.Tensor, keep: torch.Tensor | None = None):
    """(output, pattern) of an attention layer, written from the definition; keep[h] = 0 silences head h."""
    q = torch.einsum("bpd,hde->bhpe", x, attn.W_Q) + attn.b_Q[:, None]
    k = torch.einsum("bpd,hde->bhpe", x, attn.W_K) + attn.b_K[:, None]
    v = torch.einsum("bpd,hde->bhpe", x, attn.W_V) + attn.b_V[:, None]
    z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [batch, n_heads, pos, d_head]
    pos = x.shape[1]
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    pattern = scores.masked_fill(torch.ones(pos, pos, dtype=torch.bool).triu(1), float("-inf")).softmax(dim=-1)
    if keep is not None:
        z = z * keep[None, :, None, None]
    return torch.einsum("bhpe,hed->bpd", z, attn.W_O) + attn.b_O, pattern


def forward_oracle(model: nn.Module, tokens: torch.Tensor, silenced: tuple[int, int] | None = None):
    """(logits, [pattern of every layer]) of an attention-only model, with one (layer, head) silenced."""
    with torch.no_grad():
        residual = model.embed.W_E[tokens] + model.pos_embed.W_pos[: tokens.shape[1]]
        patterns = []
        for layer, block in enumerate(model.blocks):
            keep = None
            if silenced is not None and silenced[0] == layer:
                keep = torch.ones(block.attn.W_Q.shape[0], dtype=residual.dtype)
                keep[silenced[1]] = 0
            out, pattern = attention_oracle(block.attn, block.ln1(residual), keep)
            patterns.append(pattern)
            residual = residual + out
        logits = model.ln_final(residual) @ model.unembed.W_U + model.unembed.b_U
    return logits, patterns


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in model.named_parameters()}


# --- AttnOnlyTransformer ----------------------------------------------------------------------------


@pytest.mark.kata("AttnOnlyTransformer")
@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_attn_only_forward_matches_the_definition(impl, small_model, n_layers):
    model = small_model(n_layers)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 11))
    assert_close(
        model(tokens),
        forward_oracle(model, tokens)[0],
        what=f"the logits of a {n_layers}-layer attention-only model",
        hint="embed + pos_embed, then residual = residual + attn(ln1(residual)) for every block (each block adds "
        "to the stream, it does not replace it), then unembed(ln_final(residual))",
    )


@pytest.mark.kata("AttnOnlyTransformer")
def test_attn_only_forward_calls_ln1_and_ln_final(impl, small_model):
    model = small_model(2)
    for block in model.blocks:
        block.ln1 = nn.LayerNorm(model.cfg.d_model, dtype=torch.float64)
    model.ln_final = nn.LayerNorm(model.cfg.d_model, dtype=torch.float64)
    with torch.no_grad():
        for module in [*(block.ln1 for block in model.blocks), model.ln_final]:
            module.weight.copy_(1 + 0.5 * torch.randn(model.cfg.d_model))
            module.bias.copy_(0.5 * torch.randn(model.cfg.d_model))
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 11))
    assert_close(
        model(tokens),
        forward_oracle(model, tokens)[0],
        what="the logits with LayerNorms put in place of the identities ln1 and ln_final",
        hint="each attention reads block.ln1(residual), and the unembedding reads self.ln_final(residual): call "
        "them even though they are identities in this model",
    )


def attention_only_hook_names(n_layers: int) -> set[str]:
    per_layer = ["hook_resid_pre", "hook_attn_out", "hook_resid_post", "attn.hook_pattern", "attn.hook_z"]
    names = {f"blocks.{layer}.{name}" for layer in range(n_layers) for name in per_layer}
    return {"hook_embed", "hook_pos_embed"} | names


@pytest.mark.kata("AttnOnlyTransformer")
def test_run_with_hooks_changes_an_attention_only_model(impl, small_model):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 11))

    def zero_head_2(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z[:, :, :2], torch.zeros_like(z[:, :, 2:3]), z[:, :, 3:]], dim=2)

    assert_close(
        impl.activations.run_with_hooks(model, tokens, {"blocks.1.attn.hook_z": zero_head_2}),
        forward_oracle(model, tokens, silenced=(1, 2))[0],
        what="the logits with head 2 of layer 1 zeroed through blocks.1.attn.hook_z",
    )
    with torch.no_grad():
        zero_stream = torch.zeros(BATCH, 11, model.cfg.d_model, dtype=torch.float64)
        after_zero_stream = attention_oracle(model.blocks[1].attn, zero_stream)[0]
        expected = after_zero_stream @ model.unembed.W_U + model.unembed.b_U
    assert_close(
        impl.activations.run_with_hooks(model, tokens, {"blocks.0.hook_resid_post": torch.zeros_like}),
        expected,
        what="the logits with the residual stream after block 0 replaced by zeros (blocks.0.hook_resid_post)",
        hint="a block's output is hook_resid_post: AttnOnlyTransformer.forward must call each block as a module "
        "(block(residual)) for a hook on it to run",
    )
    with pytest.raises((KeyError, ValueError)):
        impl.activations.run_with_hooks(model, tokens, {"blocks.0.hook_mlp_out": torch.zeros_like})


@pytest.mark.kata("AttnOnlyTransformer")
def test_run_with_cache_reads_an_attention_only_model(impl, small_model):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 11))
    logits, cache = impl.activations.run_with_cache(model, tokens)
    expected = attention_only_hook_names(2)
    assert set(cache) == expected, (
        f"run_with_cache on an AttnOnlyTransformer recorded {sorted(set(cache) - expected)} that it should not and "
        f"missed {sorted(expected - set(cache))}. The model has no ln2 and no mlp, and identities for ln1 and "
        "ln_final, so it has none of their names (as in TransformerLens); resid_pre and resid_post are a block's "
        "input and output, seen only if forward calls each block as a module (block(residual))"
    )
    assert_close(logits, forward_oracle(model, tokens)[0], what="the logits run_with_cache returns")
    with torch.no_grad():
        residual = model.embed.W_E[tokens] + model.pos_embed.W_pos[: tokens.shape[1]]
        for layer, block in enumerate(model.blocks):
            out, pattern = attention_oracle(block.attn, residual)
            z_out = torch.einsum("bphe,hed->bpd", cache[f"blocks.{layer}.attn.hook_z"], block.attn.W_O) + block.attn.b_O
            for name, actual, value in [
                ("hook_resid_pre", cache[f"blocks.{layer}.hook_resid_pre"], residual),
                ("attn.hook_pattern", cache[f"blocks.{layer}.attn.hook_pattern"], pattern),
                ("hook_attn_out", cache[f"blocks.{layer}.hook_attn_out"], out),
                ("attn.hook_z @ W_O + b_O", z_out, out),
                ("hook_resid_post", cache[f"blocks.{layer}.hook_resid_post"], residual + out),
            ]:
                assert_close(actual, value, what=f"blocks.{layer}.{name} of an attention-only model")
            residual = residual + out


# --- attention_patterns -----------------------------------------------------------------------------


@pytest.mark.kata("attention_patterns")
def test_attention_patterns_of_every_layer(impl, small_model):
    model = small_model(3)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 11))
    patterns = impl.attention_patterns(model, tokens)
    assert patterns.shape == (3, BATCH, model.cfg.n_heads, 11, 11), (
        f"attention_patterns gave shape {tuple(patterns.shape)}, expected [n_layers, batch, n_heads, query_pos, "
        f"key_pos] = {(3, BATCH, model.cfg.n_heads, 11, 11)}: stack the layers' patterns along a new first axis"
    )
    for layer, expected in enumerate(forward_oracle(model, tokens)[1]):
        assert_close(
            patterns[layer],
            expected,
            what=f"the attention pattern of layer {layer}",
            hint="the pattern of a layer is computed from the residual stream that reaches it: embeddings plus "
            "the outputs of all the layers before (move the stream forward after recording each pattern)",
        )


# --- train_induction_model --------------------------------------------------------------------------


def train_oracle(impl, model, steps, batch, min_seq_len, max_seq_len, lr, generator):
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        seq_len = int(torch.randint(min_seq_len, max_seq_len + 1, (), generator=generator))
        tokens = impl.activations.repeated_tokens(batch, seq_len, model.cfg.d_vocab, generator)
        logits = model(tokens)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


@pytest.mark.kata("train_induction_model")
def test_train_induction_model_is_adamw_on_repeated_tokens(impl, small_model):
    model = small_model(2, init_range=0.3)
    twin = copy.deepcopy(model)
    args = {"steps": 4, "batch": 3, "min_seq_len": 2, "max_seq_len": 5, "lr": 0.05}
    losses = impl.train_induction_model(model, **args, generator=torch.Generator().manual_seed(SEED))
    expected = train_oracle(impl, twin, **args, generator=torch.Generator().manual_seed(SEED))
    assert isinstance(losses, list) and len(losses) == args["steps"], (
        f"train_induction_model returned {type(losses).__name__} of length {len(losses)}; expected a list of one float "
        f"per step ({args['steps']})"
    )
    assert all(isinstance(loss, float) for loss in losses), "each loss should be a Python float: loss.item()"
    assert_close(
        torch.tensor(losses),
        torch.tensor(expected),
        what="the loss of every step",
        hint="per step: seq_len from torch.randint(min_seq_len, max_seq_len + 1, (), generator=generator), then "
        "activations.repeated_tokens(batch, seq_len, d_vocab, generator), next_token_loss, then zero_grad, "
        "backward, step of ONE AdamW(lr=lr) created before the loop. Without zero_grad the gradients pile up.",
        atol=1e-6,
        rtol=1e-6,
    )
    for name, value in parameters(twin).items():
        assert_close(
            dict(model.named_parameters())[name].detach(),
            value,
            what=f"the trained parameter {name}",
            hint="train the model you are given, in place, with torch.optim.AdamW(model.parameters(), lr=lr)",
            atol=1e-6,
            rtol=1e-6,
        )


@pytest.mark.kata("train_induction_model")
def test_train_induction_model_draws_every_length_in_the_range(impl, small_model):
    model = small_model(1, init_range=0.3, n_ctx=20)
    lengths = []
    hook = model.embed.register_forward_pre_hook(lambda module, args: lengths.append(args[0].shape[1] // 2))
    try:
        impl.train_induction_model(model, 12, 2, 3, 4, 1e-3, torch.Generator().manual_seed(SEED))
    finally:
        hook.remove()
    assert set(lengths) == {3, 4}, (
        f"over 12 steps with min_seq_len 3 and max_seq_len 4 the model saw the seq_lens {sorted(set(lengths))}; "
        "expected both 3 and 4: max_seq_len is included (torch.randint's upper bound is not)"
    )


# --- find_heads -------------------------------------------------------------------------------------


@pytest.mark.kata("find_heads")
def test_find_heads_takes_the_best_head_of_each_layer(impl, small_model, repeated):
    for trial in range(6):
        model = small_model(2, n_heads=5)
        tokens = repeated(model.cfg.d_vocab, 7, SEQ_LEN)
        patterns = forward_oracle(model, tokens)[1]
        queries = torch.arange(1, 2 * SEQ_LEN)
        previous = patterns[0][:, :, queries, queries - 1].mean(dim=(0, 2))
        queries = torch.arange(SEQ_LEN, 2 * SEQ_LEN)
        induction = patterns[1][:, :, queries, queries - SEQ_LEN + 1].mean(dim=(0, 2))
        expected = (int(previous.argmax()), int(induction.argmax()))
        found = impl.find_heads(model, tokens, SEQ_LEN)
        assert found == expected, (
            f"model {trial}: find_heads gave {found}; the previous-token scores of layer 0 are "
            f"{[round(s, 3) for s in previous.tolist()]} and the induction scores of layer 1 "
            f"{[round(s, 3) for s in induction.tolist()]}, so expected {expected}. The highest score (argmax, not "
            "argmin), the previous-token score on layer 0's pattern and the induction score on layer 1's."
        )
        assert all(type(head) is int for head in found), f"find_heads returned {found!r}: Python ints, with .item()"


# --- repeated_half_loss -----------------------------------------------------------------------------


def repeated_half_oracle(model, tokens, seq_len, silenced=None):
    logits = forward_oracle(model, tokens, silenced)[0]
    return F.cross_entropy(logits[:, seq_len:-1].flatten(0, 1), tokens[:, seq_len + 1 :].flatten())


@pytest.mark.kata("repeated_half_loss")
def test_repeated_half_loss_counts_the_predictable_predictions(impl, small_model, repeated):
    model = small_model(2)
    tokens = repeated(model.cfg.d_vocab, BATCH, SEQ_LEN)
    assert_close(
        impl.repeated_half_loss(model, tokens, SEQ_LEN),
        repeated_half_oracle(model, tokens, SEQ_LEN),
        what="the mean loss of the predictions made at positions seq_len .. 2 seq_len - 2",
        hint="logits[:, t] predicts tokens[:, t + 1]; keep t = seq_len .. 2 * seq_len - 2 (not the whole sequence, "
        "and not the prediction of the token at seq_len, made from the first half)",
    )


@pytest.mark.kata("repeated_half_loss")
@pytest.mark.parametrize("layer", [0, 1])
def test_repeated_half_loss_ablates_the_head_it_is_given(impl, small_model, repeated, layer):
    model = small_model(2)
    before = parameters(model)
    tokens = repeated(model.cfg.d_vocab, BATCH, SEQ_LEN)
    for head in range(model.cfg.n_heads):
        assert_close(
            impl.repeated_half_loss(model, tokens, SEQ_LEN, ablate=(layer, head)),
            repeated_half_oracle(model, tokens, SEQ_LEN, silenced=(layer, head)),
            what=f"the repeated-half loss with head {head} of layer {layer} zero-ablated",
            hint="ablate=(layer, head): a hook on blocks.{layer}.attn.hook_z that returns z with z[:, :, head] zeroed "
            "(z is [batch, pos, n_heads, d_head]; the head contributes nothing, b_O stays)",
        )
    for name, value in before.items():
        assert torch.equal(dict(model.named_parameters())[name].detach(), value), (
            f"repeated_half_loss changed the caller's {name}: ablate with a hook on hook_z, never with the weights"
        )


@pytest.mark.kata("repeated_half_loss")
def test_repeated_half_loss_ablates_through_run_with_hooks(impl, small_model, repeated, monkeypatch):
    model = small_model(2)
    tokens = repeated(model.cfg.d_vocab, BATCH, SEQ_LEN)
    calls = []
    real = impl.activations.run_with_hooks

    def spy(model, tokens, hooks):
        calls.append(sorted(hooks))
        return real(model, tokens, hooks)

    monkeypatch.setattr(impl.activations, "run_with_hooks", spy)
    impl.repeated_half_loss(model, tokens, SEQ_LEN, ablate=(1, 2))
    assert ["blocks.1.attn.hook_z"] in calls, (
        f"repeated_half_loss(ablate=(1, 2)) called activations.run_with_hooks with the hook names {calls}; expected "
        "one call with a hook on blocks.1.attn.hook_z, the topic's ablation hook"
    )


# --- the capstone: an induction head you trained ----------------------------------------------------

PREVIOUS_TOKEN_THRESHOLD, INDUCTION_THRESHOLD = 0.3, 0.5


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("train_induction_model")
def test_trained_model_predicts_the_repeated_half(impl, capstone):
    model, losses, tokens, seq_len = capstone
    log_vocab = math.log(model.cfg.d_vocab)
    with torch.no_grad():
        logits = model(tokens)
    nll = -logits.log_softmax(dim=-1)[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    first_half = nll[:, : seq_len - 1].mean().item()
    repeated_half = nll[:, seq_len:].mean().item()
    assert repeated_half < 0.25 * log_vocab, (
        f"after training, the loss on the repeated half of held-out sequences is {repeated_half:.2f} nats; expected "
        f"under {0.25 * log_vocab:.2f} (a quarter of log(d_vocab) = {log_vocab:.2f}, the loss of a uniform guess). "
        f"The training losses went {losses[0]:.2f} -> {losses[-1]:.2f}: is every step one AdamW step on a fresh "
        "batch, with the gradients zeroed in between?"
    )
    assert first_half > 0.8 * log_vocab, (
        f"the loss on the first half of random held-out sequences is {first_half:.2f} nats, yet nothing there can "
        f"be predicted: expected about log(d_vocab) = {log_vocab:.2f} or more. Did the model see its test data?"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("find_heads")
def test_trained_model_has_a_previous_token_head_and_an_induction_head(impl, capstone):
    model, _, tokens, seq_len = capstone
    previous, induction = impl.find_heads(model, tokens, seq_len)
    patterns = impl.attention_patterns(model, tokens)
    queries = torch.arange(1, 2 * seq_len)
    previous_score = patterns[0, :, previous, queries, queries - 1].mean().item()
    queries = torch.arange(seq_len, 2 * seq_len)
    induction_score = patterns[1, :, induction, queries, queries - seq_len + 1].mean().item()
    assert induction_score > INDUCTION_THRESHOLD, (
        f"head {induction} of layer 1, the one find_heads chose, gives on average {induction_score:.2f} of its "
        f"attention to the token after the earlier copy of the current one; expected above {INDUCTION_THRESHOLD}. "
        "If the model predicts the repeated half, look at the patterns of every head: is find_heads picking the "
        "best one, of the right layer?"
    )
    assert previous_score > PREVIOUS_TOKEN_THRESHOLD, (
        f"head {previous} of layer 0, the one find_heads chose, attends to the previous token with weight "
        f"{previous_score:.2f} on average; expected above {PREVIOUS_TOKEN_THRESHOLD}"
    )

    k_composition = impl.circuits.composition_scores(model.blocks[0].attn, model.blocks[1].attn, "k")
    q_composition = impl.circuits.composition_scores(model.blocks[0].attn, model.blocks[1].attn, "q")
    pair = k_composition[previous, induction].item()
    reads_most = k_composition[:, induction].argmax().item()
    assert reads_most == previous, (
        f"of the layer-0 heads, the induction head {induction} reads head {reads_most} most through its keys, not "
        f"the previous-token head {previous}: K-composition of each layer-0 head with it: "
        f"{k_composition[:, induction].tolist()}"
    )
    # Layer 1 usually grows several induction heads reading the same previous-token head, so another of them may
    # compose with it a little more: the pair is among the largest of all, not necessarily the very largest.
    assert pair >= 0.9 * k_composition.max().item(), (
        f"the K-composition of the previous-token head {previous} with the induction head {induction} is "
        f"{pair:.3f}, the largest of all pairs is {k_composition.max().item():.3f}: the induction head's keys "
        f"should read what the previous-token head writes more than any other pair does (all pairs:\n{k_composition})"
    )
    assert pair > 3 * q_composition[previous, induction].item(), (
        f"the K-composition of the pair ({pair:.3f}) should be far larger than its Q-composition "
        f"({q_composition[previous, induction].item():.3f}): the previous token matters to the keys, not the queries"
    )
    # A composition score only says how well two heads' weights line up, and random weights line up a little
    # too (about 0.17 at these sizes): read the pair against heads of the same shapes with random weights.
    random_layers = [impl.transformer.Attention(model.cfg) for _ in range(2)]
    with torch.no_grad():
        for param in (param for attn in random_layers for param in attn.parameters()):
            param.normal_()
    baseline = impl.circuits.composition_scores(*random_layers, "k").mean().item()
    assert pair > 1.5 * baseline, (
        f"the K-composition of the pair ({pair:.3f}) should stand well above that of random weights of the same "
        f"shapes ({baseline:.3f} on average)"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("repeated_half_loss")
def test_ablating_the_induction_circuit_takes_the_improvement_away(impl, capstone):
    model, _, tokens, seq_len = capstone
    log_vocab = math.log(model.cfg.d_vocab)
    previous, induction = impl.find_heads(model, tokens, seq_len)
    clean = impl.repeated_half_loss(model, tokens, seq_len).item()
    without_induction = impl.repeated_half_loss(model, tokens, seq_len, ablate=(1, induction)).item()
    without_previous = impl.repeated_half_loss(model, tokens, seq_len, ablate=(0, previous)).item()
    assert without_induction > 2.5 * clean, (
        f"the repeated-half loss is {clean:.2f} nats, and {without_induction:.2f} with the induction head (layer 1, "
        f"head {induction}) ablated: expected at least 2.5 times as much. Does ablate=(1, head) zero that head of "
        "layer 1?"
    )
    # Layer 1 usually holds several induction heads that back each other up, but one previous-token head
    # feeds them all: without it, most of what the repeat taught the model is lost.
    lost = (without_previous - clean) / (log_vocab - clean)
    assert lost > 0.4, (
        f"ablating the previous-token head (layer 0, head {previous}) raises the repeated-half loss from {clean:.2f} "
        f"to {without_previous:.2f} nats, {lost:.0%} of the way back to a uniform guess (log(d_vocab) = "
        f"{log_vocab:.2f}); expected over 40%. Does ablate=(0, head) zero that head of layer 0?"
    )


@pytest.mark.kata("train_induction_model")
def test_train_induction_model_keeps_the_rng_contract(impl, small_model):
    base = small_model(1, init_range=0.3)

    def trained(min_seq_len, max_seq_len):
        def run(generator):
            model, batches = copy.deepcopy(base), []
            model.embed.register_forward_pre_hook(lambda module, args: batches.append(args[0].clone()))
            losses = impl.train_induction_model(model, 3, 2, min_seq_len, max_seq_len, 0.05, generator)
            return losses, parameters(model), batches

        return run

    check_rng_contract(
        {"seq_len 2..5": trained(2, 5), "seq_len 4..4": trained(4, 4)},
        what="train_induction_model",
        independent={"batches of the 3 steps": lambda result: result[2]},
        sampler="torch.randint and activations.repeated_tokens",
    )
