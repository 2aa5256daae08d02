"""Tests for katas/08_interpretability/reverse_engineering.py: the induction circuit taken apart.

Every kata is checked twice. On small random attention-only models (every bias nonzero, distinct sizes) and
on constructed weights whose answer is known, against oracles written here from the definitions:
torch.nn.functional.scaled_dot_product_attention for the attention (given the identity as values it returns
the pattern itself), torch.linalg.eigvals, torch.nn.functional.cross_entropy and avg_pool1d. And on the
capstone model your train_induction_model trained (conftest.py's capstone fixture: trained once per session,
shared with test_induction.py): the slow tests check that each analysis finds in it what the Framework
paper and the Induction Heads paper describe.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from katakit.testing import assert_close

BATCH = 3


def causal_pattern(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The causal attention pattern of queries and keys [..., pos, d_head]: scaled_dot_product_attention
    with the identity as values returns it."""
    eye = torch.eye(q.shape[-2], dtype=q.dtype).expand(*q.shape[:-1], q.shape[-2])
    return F.scaled_dot_product_attention(q, k, eye, is_causal=True)


def run_oracle(model: nn.Module, tokens: torch.Tensor, patched: dict | None = None):
    """The forward pass written out: (logits, components of the stream before each layer and at the end, the
    pattern and z of every layer). patched[(layer, head)] replaces that head's z."""
    with torch.no_grad():
        components = [model.embed.W_E[tokens], model.pos_embed.W_pos[: tokens.shape[1]].expand(len(tokens), -1, -1)]
        streams, patterns, zs = [], [], []
        for layer, block in enumerate(model.blocks):
            streams.append(torch.stack(components))
            attn, x = block.attn, torch.stack(components).sum(dim=0)
            q = torch.einsum("bpd,hde->bhpe", x, attn.W_Q) + attn.b_Q[:, None]
            k = torch.einsum("bpd,hde->bhpe", x, attn.W_K) + attn.b_K[:, None]
            v = torch.einsum("bpd,hde->bhpe", x, attn.W_V) + attn.b_V[:, None]
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [batch, n_heads, pos, d_head]
            for (patched_layer, head), value in (patched or {}).items():
                if patched_layer == layer:
                    z[:, head] = value
            patterns.append(causal_pattern(q, k))
            zs.append(z)
            components += list(torch.einsum("bhpe,hed->hbpd", z, attn.W_O))
            components.append(attn.b_O.expand_as(x))
        streams.append(torch.stack(components))
        logits = streams[-1].sum(dim=0) @ model.unembed.W_U + model.unembed.b_U
    return logits, streams, patterns, zs


def logit_difference(logits, correct, incorrect, position) -> torch.Tensor:
    batch = torch.arange(len(correct))
    return (logits[batch, position, correct] - logits[batch, position, incorrect]).mean()


def other_tokens(tokens: torch.Tensor, d_vocab: int) -> torch.Tensor:
    """A token different from each of `tokens`."""
    return (tokens + torch.randint(1, d_vocab, tokens.shape)) % d_vocab


# --- positional_pattern -----------------------------------------------------------------------------


@pytest.mark.kata("positional_pattern")
def test_positional_pattern_is_the_attention_of_positions_alone(impl, small_model):
    model = small_model()
    attn = model.blocks[0].attn
    W_pos = torch.randn(model.cfg.n_ctx, model.cfg.d_model, dtype=torch.float64)
    q = torch.einsum("pd,hde->hpe", W_pos, attn.W_Q.detach())
    k = torch.einsum("pd,hde->hpe", W_pos, attn.W_K.detach())
    pattern = impl.positional_pattern(W_pos, attn)
    assert pattern.shape == (model.cfg.n_heads, model.cfg.n_ctx, model.cfg.n_ctx), (
        f"positional_pattern gave shape {tuple(pattern.shape)}; expected [n_heads, pos, pos]: W_pos on both sides, "
        "W_pos W_Q W_K^T W_pos^T"
    )
    assert_close(
        pattern,
        causal_pattern(q, k),
        what="the positional pattern of every head",
        hint="score (W_pos[q] W_Q[h]) . (W_pos[k] W_K[h]), rows the query position; divide by sqrt(d_head), set "
        "the keys after the query to -inf and take the softmax over the keys; no biases",
    )


def previous_token_weights(small_model, previous: int) -> nn.Module:
    """A model whose layer-0 heads, by position alone, attend to the current token (head `previous` - 1),
    the previous one (head `previous`) and the one two back (the remaining head). Token t is embedded as
    position 2t, so that by their token embeddings alone the heads would look 0, 2 and 4 back: the one
    looking two back would seem to be the previous-token head."""
    n_ctx, d_model, d_head = 13, 16, 14
    model = small_model(1, n_ctx=n_ctx, d_model=d_model, d_head=d_head, n_heads=3)
    W_pos = torch.linalg.qr(torch.randn(d_model, n_ctx, dtype=torch.float64))[0].T  # orthonormal rows
    pad = torch.eye(n_ctx, d_head, dtype=torch.float64)
    offsets = {(previous - 1) % 3: 0, previous: 1, (previous + 1) % 3: 2}
    with torch.no_grad():
        model.pos_embed.W_pos.copy_(W_pos)
        model.embed.W_E.copy_(0.5 * W_pos[2 * torch.arange(model.cfg.d_vocab)])
        for head, offset in offsets.items():
            looks_back = torch.eye(n_ctx, dtype=torch.float64).roll(-offset, dims=1).tril()  # [q, q - offset] = 1
            model.blocks[0].attn.W_Q[head] = 10 * W_pos.T @ pad
            model.blocks[0].attn.W_K[head] = 10 * W_pos.T @ looks_back.T @ pad
    return model


@pytest.mark.kata("positional_pattern")
def test_positional_pattern_shows_a_constructed_previous_token_head(impl, small_model):
    model = previous_token_weights(small_model, previous=1)
    pattern = impl.positional_pattern(model.pos_embed.W_pos, model.blocks[0].attn)
    queries = torch.arange(1, 13)
    looking_back = pattern[1, queries, queries - 1]
    assert looking_back.min() > 0.99, (
        f"head 1 was built so that position q scores key q - 1 highest, yet its positional pattern gives key q - 1 "
        f"only {looking_back.min().item():.3f} at some query: rows are queries, columns keys (not the transpose)"
    )
    diagonal = pattern[0].diagonal()
    assert diagonal.min() > 0.99, (
        f"head 0 was built to attend to its own position, yet its positional pattern gives it {diagonal.min():.3f}"
    )


# --- previous_token_head_from_weights ---------------------------------------------------------------


@pytest.mark.kata("previous_token_head_from_weights")
@pytest.mark.parametrize("previous", [1, 2])
def test_previous_token_head_from_weights_of_constructed_heads(impl, small_model, previous):
    found = impl.previous_token_head_from_weights(previous_token_weights(small_model, previous))
    assert type(found) is int and found == previous, (
        f"the layer-0 heads were built to look 0, 1 and 2 positions back by position alone, with head {previous} "
        f"looking one back; previous_token_head_from_weights gave {found!r}. The highest previous-token score of "
        "the positional pattern (positions, not tokens: W_pos, not W_E), as a Python int"
    )


@pytest.mark.kata("previous_token_head_from_weights")
def test_previous_token_head_from_weights_of_random_heads(impl, small_model):
    model = small_model(2, n_heads=5, d_head=3, d_model=15)
    W_pos = model.pos_embed.W_pos.detach()
    attn = model.blocks[0].attn
    q = torch.einsum("pd,hde->hpe", W_pos, attn.W_Q.detach())
    k = torch.einsum("pd,hde->hpe", W_pos, attn.W_K.detach())
    queries = torch.arange(1, model.cfg.n_ctx)
    scores = causal_pattern(q, k)[:, queries, queries - 1].mean(dim=-1)
    assert impl.previous_token_head_from_weights(model) == int(scores.argmax()), (
        f"the previous-token scores of the positional patterns of layer 0's heads are "
        f"{[round(s, 3) for s in scores.tolist()]}: return the index of the highest"
    )


# --- diagonal_top1_accuracy -------------------------------------------------------------------------


@pytest.mark.kata("diagonal_top1_accuracy")
def test_diagonal_top1_accuracy_reads_the_rows(impl):
    matrix = torch.tensor(
        [
            [5.0, 1.0, 0.0, 0.0, 0.0],  # the diagonal wins
            [9.0, 0.5, 0.0, 0.0, 0.0],  # column 0 wins
            [0.0, 0.0, 3.0, 1.0, 0.0],  # the diagonal wins
            [0.0, 0.0, 0.0, 4.0, 8.0],  # column 4 wins
            [0.0, 0.0, 0.0, 0.0, 1.0],  # the diagonal wins
        ],
        dtype=torch.float64,
    )
    accuracy = impl.diagonal_top1_accuracy(matrix)
    assert accuracy.dtype == torch.float64, f"the accuracy came back {accuracy.dtype}: the dtype of matrix"
    assert_close(
        accuracy,
        torch.tensor(0.6, dtype=torch.float64),
        what="the top-1 accuracy of a matrix whose diagonal wins rows 0, 2 and 4",
        hint="for each ROW, is its largest entry on the diagonal? (the columns' winners give 0.4 here)",
    )


@pytest.mark.kata("diagonal_top1_accuracy")
def test_diagonal_top1_accuracy_of_random_and_copying_matrices(impl):
    matrix = torch.randn(7, 7)
    expected = (matrix.argmax(dim=1) == torch.arange(7)).float().mean()
    assert_close(impl.diagonal_top1_accuracy(matrix), expected, what="the top-1 accuracy of a random matrix")
    copying = matrix + 100 * torch.eye(7)
    assert impl.diagonal_top1_accuracy(copying).item() == 1.0, "a matrix whose diagonal wins every row scores 1"


# --- ov_copying -------------------------------------------------------------------------------------


@pytest.mark.kata("ov_copying")
def test_ov_copying_of_every_head(impl, small_model):
    model = small_model(2, d_vocab=13)
    for layer, block in enumerate(model.blocks):
        for head in range(model.cfg.n_heads):
            with torch.no_grad():
                ov = model.embed.W_E @ block.attn.W_V[head] @ block.attn.W_O[head] @ model.unembed.W_U
            eigenvalues = torch.linalg.eigvals(ov)
            score, accuracy = impl.ov_copying(model, layer, head)
            assert_close(
                score,
                eigenvalues.real.sum() / eigenvalues.abs().sum(),
                what=f"the copying score of head {head} of layer {layer}",
                hint="the full OV circuit W_E W_V[head] W_O[head] W_U of that layer's attention, then "
                "circuits.copying_score",
            )
            assert_close(
                accuracy,
                (ov.argmax(dim=1) == torch.arange(13)).double().mean(),
                what=f"the top-1 accuracy of the diagonal of head {head} of layer {layer}'s full OV circuit",
            )


@pytest.mark.kata("ov_copying")
@pytest.mark.parametrize("sign", [1, -1])
def test_ov_copying_of_a_head_that_copies_or_suppresses(impl, small_model, sign):
    model = small_model(1, d_model=6, d_head=6, n_heads=2, d_vocab=13)
    with torch.no_grad():
        W_E = torch.randn(13, 6, dtype=torch.float64)
        model.embed.W_E.copy_(W_E / W_E.norm(dim=1, keepdim=True))
        model.unembed.W_U.copy_(model.embed.W_E.T)
        model.blocks[0].attn.W_V[1] = torch.eye(6)
        model.blocks[0].attn.W_O[1] = sign * torch.eye(6)
    score, accuracy = impl.ov_copying(model, 0, 1)
    assert_close(
        score,
        torch.tensor(float(sign), dtype=torch.float64),
        what=f"the copying score of a head whose full OV circuit is {'+' if sign > 0 else '-'}W_E W_E^T",
    )
    assert accuracy.item() == (1.0 if sign > 0 else 0.0), (
        f"the head raises (sign {sign}) the logit of the very token it attends to more than any other (unit rows, "
        f"tied unembedding): the diagonal's top-1 accuracy is {1 if sign > 0 else 0}, not {accuracy.item()}"
    )


# --- k_composition_circuit --------------------------------------------------------------------------


@pytest.mark.kata("k_composition_circuit")
def test_k_composition_circuit_of_every_pair_of_heads(impl, small_model):
    model = small_model(2, d_vocab=13)
    attn0, attn1 = model.blocks[0].attn, model.blocks[1].attn
    with torch.no_grad():
        for previous in range(model.cfg.n_heads):
            for head in range(model.cfg.n_heads):
                queries = model.embed.W_E @ attn1.W_Q[head]  # [query token, d_head]
                moved = model.embed.W_E @ attn0.W_V[previous] @ attn0.W_O[previous]  # what the key position holds
                keys = moved @ attn1.W_K[head]  # [key's previous token, d_head]
                assert_close(
                    impl.k_composition_circuit(model, previous, head),
                    queries @ keys.T,
                    what=f"the K-composition circuit of head {previous} of layer 0 into head {head} of layer 1",
                    hint="rows: the query's token, read by W_Q; columns: the key's previous token, moved by layer 0's "
                    "W_V W_O and then read by W_K. The OV circuit goes on the key side, not the query side",
                )


# --- stream_components ------------------------------------------------------------------------------


@pytest.mark.kata("stream_components")
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_stream_components_of_every_layer(impl, small_model, layer):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 9))
    _, cache = impl.activations.run_with_cache(model, tokens)
    expected = run_oracle(model, tokens)[1][layer]
    components = impl.stream_components(cache, model, layer)
    assert components.shape == expected.shape, (
        f"stream_components(layer={layer}) gave {tuple(components.shape)}; expected {tuple(expected.shape)}: embed, "
        "pos_embed, then every head and the b_O of each layer before `layer`"
    )
    assert_close(
        components,
        expected,
        what=f"the components of the residual stream before block {layer}",
        hint="head h of layer l writes z[:, :, h] @ W_O[h] (z is [batch, pos, n_heads, d_head]); b_O comes after "
        "the layer's heads, expanded to [batch, pos, d_model]",
    )
    name = f"blocks.{layer}.hook_resid_pre" if layer < 2 else "blocks.1.hook_resid_post"
    assert_close(components.sum(dim=0), cache[name], what=f"the sum of the components, which is {name}")


# --- attention_score_split --------------------------------------------------------------------------


@pytest.mark.kata("attention_score_split")
@pytest.mark.parametrize("layer", [0, 1])
def test_attention_score_split_adds_up_to_the_pattern(impl, small_model, layer):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 9))
    _, streams, patterns, _ = run_oracle(model, tokens)
    for head in range(model.cfg.n_heads):
        split = impl.attention_score_split(model, tokens, layer, head)
        allowed = torch.ones(9, 9, dtype=torch.bool).tril()
        assert_close(
            split.sum(dim=0).masked_fill(~allowed, float("-inf")).softmax(dim=-1),
            patterns[layer][:, head],
            what=f"the softmax over the allowed keys of the summed contributions to head {head} of layer {layer}",
            hint="the scores are q . k / sqrt(d_head), with the query whole (x W_Q + b_Q) and the key split by "
            "component (c W_K, no b_K); forgetting the scale, or b_Q, changes the pattern",
        )


@pytest.mark.kata("attention_score_split")
def test_attention_score_split_credits_each_component(impl, small_model):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (BATCH, 9))
    streams = run_oracle(model, tokens)[1]
    attn = model.blocks[1].attn
    head = 2
    with torch.no_grad():
        query = streams[1].sum(dim=0) @ attn.W_Q[head] + attn.b_Q[head]  # [batch, pos, d_head]
        keys = streams[1] @ attn.W_K[head]  # [component, batch, pos, d_head]
        expected = torch.einsum("bqe,cbke->cbqk", query, keys) / math.sqrt(model.cfg.d_head)
    assert_close(
        impl.attention_score_split(model, tokens, 1, head),
        expected,
        what="the contribution of each component of the key's stream to head 2 of layer 1's scores",
        hint="stream_components(cache, model, layer) in its order; each component's keys c W_K[head], scored "
        "against the whole query and divided by sqrt(d_head); nothing masked",
    )


# --- logit_attribution ------------------------------------------------------------------------------


@pytest.mark.kata("logit_attribution")
def test_logit_attribution_adds_up_to_the_logit_difference(impl, small_model):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (5, 9))
    correct, incorrect = tokens[:, -1], other_tokens(tokens[:, -1], model.cfg.d_vocab)
    logits, streams, _, _ = run_oracle(model, tokens)
    attribution = impl.logit_attribution(model, tokens, correct, incorrect, -2)
    with torch.no_grad():
        direction = model.unembed.W_U[:, correct] - model.unembed.W_U[:, incorrect]  # [d_model, batch]
        expected = torch.einsum("cbd,db->cb", streams[-1][:, :, -2], direction)
    assert_close(
        attribution,
        expected,
        what="the direct logit attribution of every component at position -2",
        hint="the final stream's components (stream_components with layer = n_layers) at `position`, dotted with "
        "W_U[:, correct[b]] - W_U[:, incorrect[b]] for each sequence b",
    )
    batch = torch.arange(5)
    bias = model.unembed.b_U[correct] - model.unembed.b_U[incorrect]
    assert_close(
        attribution.sum(dim=0) + bias,
        logits[batch, -2, correct] - logits[batch, -2, incorrect],
        what="the contributions plus the difference of b_U, which is the model's logit difference",
    )


# --- head_patching ----------------------------------------------------------------------------------


@pytest.mark.kata("head_patching")
def test_head_patching_of_every_head(impl, small_model):
    model = small_model(2)
    clean = torch.randint(0, model.cfg.d_vocab, (5, 9))
    corrupted = clean.clone()
    corrupted[:, 3] = other_tokens(clean[:, 3], model.cfg.d_vocab)
    correct, incorrect = clean[:, -1], corrupted[:, 3]
    clean_logits, _, _, clean_zs = run_oracle(model, clean)
    corrupted_logits = run_oracle(model, corrupted)[0]
    clean_diff = logit_difference(clean_logits, correct, incorrect, -2)
    corrupted_diff = logit_difference(corrupted_logits, correct, incorrect, -2)
    expected = torch.zeros(2, model.cfg.n_heads, dtype=torch.float64)
    for layer in range(2):
        for head in range(model.cfg.n_heads):
            patched = run_oracle(model, corrupted, {(layer, head): clean_zs[layer][:, head]})[0]
            expected[layer, head] = (logit_difference(patched, correct, incorrect, -2) - corrupted_diff) / (
                clean_diff - corrupted_diff
            )
    assert_close(
        impl.head_patching(model, clean, corrupted, correct, incorrect, -2),
        expected,
        what="the logit difference each head recovers when patched from the clean run into the corrupted one",
        hint="entry [layer, head]: attribution.patch_head(model, clean, corrupted, layer, head), then "
        "logit_diff_recovered of its logits against the clean and corrupted runs' logits",
    )


# --- in_context_learning_score ----------------------------------------------------------------------


@pytest.mark.kata("in_context_learning_score")
@pytest.mark.parametrize(("early", "late"), [(2, 8), (1, 9), (6, 3)])
def test_in_context_learning_score_is_a_difference_of_losses(impl, small_model, early, late):
    model = small_model(2)
    tokens = torch.randint(0, model.cfg.d_vocab, (5, 10))
    logits = run_oracle(model, tokens)[0]

    def loss_of_token(t):
        return F.cross_entropy(logits[:, t - 1], tokens[:, t])

    assert_close(
        impl.in_context_learning_score(model, tokens, early, late),
        loss_of_token(late) - loss_of_token(early),
        what=f"the loss on the token at {late} minus the loss on the token at {early}",
        hint="the token at position t is predicted by the logits at t - 1 (no BOS here: position 0 is a real "
        "token); late minus early, each averaged over the batch",
    )


# --- phase_change_step ------------------------------------------------------------------------------


def window_drops_oracle(losses: list[float], window: int) -> torch.Tensor:
    """The drop at each t = window .. len - window, with avg_pool1d as the running mean."""
    means = F.avg_pool1d(torch.tensor(losses, dtype=torch.float64)[None, None], window, stride=1)[0, 0]
    return means[:-window] - means[window:]


def curve_with_a_phase_change(change: int) -> list[float]:
    """A plateau, a sudden drop at `change`, then a slow decline to the end, noisy, with one spike."""
    steps = torch.arange(1000, dtype=torch.float64)
    curve = 3 - 1.2 * torch.sigmoid((steps - change) / 10) - 3e-4 * steps + 0.02 * torch.randn(1000)
    curve[150] += 1.5  # one bad batch: the steepest single-step drop is right after it
    return curve.tolist()


@pytest.mark.kata("phase_change_step")
@pytest.mark.parametrize("change", [400, 650])
def test_phase_change_step_finds_the_steepest_smoothed_drop(impl, change):
    losses = curve_with_a_phase_change(change)
    found = impl.phase_change_step(losses, 50)
    expected = int(window_drops_oracle(losses, 50).argmax()) + 50
    assert type(found) is int, f"phase_change_step returned {type(found).__name__}: a Python int"
    assert abs(found - change) <= 10, (
        f"the loss drops suddenly around step {change}, the minimum is at the end "
        f"({min(range(1000), key=losses.__getitem__)}) "
        f"and one spike at step 150 gives the largest single-step drop; phase_change_step found {found}. The "
        "steepest drop of the smoothed curve, not the lowest loss nor the largest drop between two single steps"
    )
    assert found == expected, (
        f"phase_change_step found {found}, expected {expected}: t where mean(losses[t - window : t]) - "
        "mean(losses[t : t + window]) is largest (t is the first step of the second window)"
    )


@pytest.mark.kata("phase_change_step")
def test_phase_change_step_on_a_flat_curve_is_the_first_step_it_can_be(impl):
    assert impl.phase_change_step([1.0] * 12, 3) == 3, (
        "on a flat curve every drop is 0: return the first t that has a full window on each side, t = window"
    )


# --- on the capstone model --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(impl, capstone):
    """The capstone model (conftest.py), held-out repeated tokens, their seq_len, and the model's two heads as
    your find_heads names them."""
    previous, induction = impl.induction.find_heads(capstone.model, capstone.tokens, capstone.seq_len)
    return capstone.model, capstone.losses, capstone.tokens, capstone.seq_len, previous, induction


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("previous_token_head_from_weights")
def test_trained_previous_token_head_is_seen_in_the_weights(impl, trained):
    model, _, _, _, previous, _ = trained
    found = impl.previous_token_head_from_weights(model)
    assert found == previous, (
        f"from its weights alone, head {found} of layer 0 looks most at the previous position; from the patterns on "
        f"real tokens, find_heads says head {previous}. A previous-token head looks back by position: is W_pos on "
        "both sides of the circuit, with the scale, the mask and the softmax?"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("ov_copying")
def test_trained_induction_head_copies(impl, trained):
    model, _, _, _, _, induction = trained
    score, accuracy = impl.ov_copying(model, 1, induction)
    assert score.item() > 0.7, f"the induction head's full OV circuit should copy: copying score {score.item():.2f}"
    assert accuracy.item() > 0.3, (
        f"for {accuracy.item():.0%} of the tokens the induction head raises their own logit most; expected over 30% "
        f"(a random head: about {1 / model.cfg.d_vocab:.0%})"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("k_composition_circuit")
def test_trained_induction_head_matches_the_query_with_the_keys_previous_token(impl, trained):
    model, _, _, _, previous, induction = trained
    circuit = impl.k_composition_circuit(model, previous, induction)
    accuracy = (circuit.argmax(dim=1) == torch.arange(model.cfg.d_vocab)).float().mean().item()
    assert accuracy > 0.7, (
        f"through the previous-token head {previous}, the induction head {induction} scores the key whose previous "
        f"token is the query's own token highest for only {accuracy:.0%} of the tokens; expected over 70%. Rows "
        "are the query's token, columns the key's previous token"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("attention_score_split")
def test_trained_induction_stripe_comes_from_the_previous_token_head(impl, trained):
    model, _, tokens, seq_len, previous, induction = trained
    split = impl.attention_score_split(model, tokens, 1, induction)
    queries = torch.arange(seq_len, 2 * seq_len)
    stripe = split[:, :, queries, queries - seq_len + 1].mean(dim=(1, 2))
    labels = ["embed", "pos_embed", *(f"L0H{h}" for h in range(model.cfg.n_heads)), "L0 b_O"]
    assert stripe.argmax().item() == 2 + previous, (
        f"on the induction stripe (query q, key q - seq_len + 1), the components of the key's stream contribute "
        f"{dict(zip(labels, [round(s, 2) for s in stripe.tolist()], strict=True))} to the induction head's score; "
        f"expected the previous-token head L0H{previous} to contribute most: K-composition"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("logit_attribution")
def test_trained_logit_difference_comes_from_layer_1(impl, trained):
    model, _, tokens, _, _, induction = trained
    correct = tokens[:, -1]
    incorrect = other_tokens(correct, model.cfg.d_vocab)
    attribution = impl.logit_attribution(model, tokens, correct, incorrect, -2).mean(dim=1)
    n_heads = model.cfg.n_heads
    layer_1 = attribution[3 + n_heads : 3 + 2 * n_heads]
    assert layer_1.sum() > 0.6 * attribution.sum(), (
        f"the layer-1 heads add {layer_1.sum().item():.2f} of the {attribution.sum().item():.2f} of logit difference "
        "the components add on a repeated token; expected most of it (over 60%): layer 1 holds the induction heads"
    )
    assert layer_1[induction] > attribution[: 3 + n_heads].max(), (
        f"the induction head {induction} adds {layer_1[induction].item():.2f}, less than a component of the "
        f"embeddings or layer 0 ({attribution[: 3 + n_heads].max().item():.2f})"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("head_patching")
def test_trained_patching_recovers_the_answer_through_layer_1(impl, trained):
    model, _, tokens, seq_len, _, induction = trained
    corrupted = tokens.clone()
    # The earlier copy of the last token changes: the induction head now finds and copies another token.
    corrupted[:, seq_len - 1] = other_tokens(tokens[:, -1], model.cfg.d_vocab)
    recovered = impl.head_patching(model, tokens, corrupted, tokens[:, -1], corrupted[:, seq_len - 1], -2)
    assert recovered[0].abs().max() < 0.2, (
        f"patching a layer-0 head recovers {recovered[0].tolist()} of the logit difference; expected little "
        "(under 0.2): the changed token is not where their outputs matter"
    )
    assert recovered[1].sum() > 0.6 and recovered[1, induction] > recovered[0].max(), (
        f"patching the layer-1 heads one at a time recovers {recovered[1].tolist()}: they should carry most of the "
        f"answer together, and the induction head {induction} more than any layer-0 head"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("in_context_learning_score")
def test_trained_model_learns_in_context(impl, trained):
    model, _, tokens, seq_len, _, _ = trained
    score = impl.in_context_learning_score(model, tokens, 5, seq_len + 5).item()
    log_vocab = math.log(model.cfg.d_vocab)
    assert score < -0.5 * log_vocab, (
        f"the loss on a token of the repeated half minus the loss on its first occurrence is {score:.2f}; expected "
        f"below {-0.5 * log_vocab:.2f}: the first is a guess among {model.cfg.d_vocab}, the second a copy"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.kata("phase_change_step")
def test_trained_loss_curve_has_a_phase_change(impl, trained):
    _, losses, _, _, _, _ = trained
    window = 100
    found = impl.phase_change_step(losses, window)
    assert found == int(window_drops_oracle(losses, window).argmax()) + window, (
        f"on the capstone's loss curve phase_change_step found {found}, not the steepest drop of the running mean"
    )
    before, after = sum(losses[found - window : found]) / window, sum(losses[found : found + window]) / window
    assert before - after > 0.1 and found < len(losses) - 2 * window, (
        f"around step {found} the loss goes from {before:.2f} to {after:.2f} (mean of {window} steps): expected a "
        "sudden drop well before the end of training, not the lowest point of the curve"
    )
