"""Tests for katas/05_attention/attention.py.

Oracles: torch.softmax, torch.tril/triu, torch.nn.functional.scaled_dot_product_attention,
torch.nn.MultiheadAttention with copied weights, and algebraic properties.
"""

from collections.abc import Callable
from typing import TypeVar

import einops
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from katakit.testing import assert_close, forbid

T = TypeVar("T")
F64 = torch.float64
# Distinct sizes everywhere, so a swapped axis is a shape error or a wrong value, never a silent match.
BATCH, HEADS, QUERIES, KEYS, D_HEAD, D_VALUE = 2, 3, 5, 4, 7, 6
FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
HALF_PRECISION = (torch.float16, torch.bfloat16)


def tril(n: int) -> torch.Tensor:
    return torch.ones(n, n, dtype=torch.bool).tril()


def with_default_device_elsewhere(call: Callable[[], T]) -> T:
    """Run `call` with CUDA as the default device: a tensor created without device= then lands on
    CUDA (an error without a GPU, a device mismatch with one), while device=x.device keeps it by x."""
    with torch.device("cuda"):
        try:
            return call()
        except NotImplementedError:
            raise
        except (AssertionError, RuntimeError) as error:
            raise AssertionError(
                f"creating a tensor without device= failed ({type(error).__name__}: {error}). Create helper tensors "
                "(masks) on the device of the input, e.g. device=scores.device, so the code also runs on a GPU."
            ) from error


def is_hidden(scores: torch.Tensor) -> torch.Tensor:
    """Masked scores: -inf, or a large negative number such as torch.finfo(dtype).min or -1e9."""
    return torch.isneginf(scores) | (scores <= -1e4)


# --- stable_softmax ---------------------------------------------------------------------------


SOFTMAXES = (
    torch.softmax,
    F.softmax,
    torch.Tensor.softmax,
    torch.special.softmax,
    torch.log_softmax,
    F.log_softmax,
    torch.Tensor.log_softmax,
    torch.special.log_softmax,
)


@pytest.mark.kata("stable_softmax")
def test_stable_softmax_matches_torch_over_the_last_axis(impl):
    x = 3 * torch.randn(2, 5, 7, dtype=F64)
    expected = torch.softmax(x, dim=-1)
    with forbid(*SOFTMAXES, reason="write the softmax out yourself, with exp, a max and a sum"):
        result = impl.stable_softmax(x)
    assert_close(
        result,
        expected,
        what="stable_softmax(x) for x of shape [2, 5, 7]",
        hint="normalising over the wrong axis? Sum over dim=-1 with keepdim=True.",
    )


@pytest.mark.kata("stable_softmax")
def test_stable_softmax_does_not_overflow_on_huge_scores(impl):
    x = torch.tensor([[1e4, 1e4 - 1.0, 1e4 - 3.0], [-1e4, -1e4 + 2.0, -1e4 - 1.0]])
    result = impl.stable_softmax(x)
    assert not result.isnan().any(), (
        f"stable_softmax of scores around +-1e4 gave {result.tolist()}: exp(1e4) overflows to inf and inf / inf is "
        "nan. Subtract each row's maximum before exponentiating."
    )
    # float32 scores near 1e4 are spaced 2^-10 ~ 1e-3 apart, so a correct softmax computed another way (e.g. through
    # logsumexp, which rounds near 1e4) can be off by ~5e-4; a missing max shift gives nan, caught above.
    assert_close(result, torch.softmax(x, dim=-1), what="stable_softmax of scores around +-1e4", atol=1e-3, rtol=0)


@pytest.mark.kata("stable_softmax")
@pytest.mark.parametrize("scale", [1e4, 1e-4])
def test_stable_softmax_of_scores_spread_far_from_one(impl, scale):
    """Scores that differ by about 1e4 within a row: shifting by anything but the row's maximum (its
    minimum, its mean) still exponentiates numbers of 1e4. And scores of 1e-4, all close together."""
    x = scale * torch.randn(2, 3, 5, dtype=F64)
    assert_close(
        impl.stable_softmax(x),
        torch.softmax(x, dim=-1),
        what=f"stable_softmax of float64 scores spread by {scale:g}",
        hint="subtract each row's MAXIMUM (keepdim=True): after the minimum or the mean exp still overflows",
    )


@pytest.mark.kata("stable_softmax")
def test_stable_softmax_gives_exactly_zero_to_minus_infinity(impl):
    x = torch.randn(3, 5, dtype=F64)
    x[:, 3:] = float("-inf")
    result = impl.stable_softmax(x)
    assert (result[:, 3:] == 0).all(), f"entries that were -inf should get probability 0, got {result[:, 3:]}"
    assert_close(result, torch.softmax(x, dim=-1), what="stable_softmax with -inf (masked) entries")


@pytest.mark.kata("stable_softmax")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_stable_softmax_keeps_any_float_dtype(impl, dtype):
    x = (3 * torch.randn(2, 5, 7, dtype=F64)).to(dtype)
    result = impl.stable_softmax(x)
    assert result.dtype == dtype, f"a {dtype} input should give a {dtype} softmax, got {result.dtype}"
    # x - max, exp, the sum and the quotient each round: a correct half-precision softmax is off by up to ~5 eps
    # (measured); 8 eps of float16 (8e-3) and bfloat16 (0.06) still catch a wrong axis (errors of ~0.3).
    tolerance = 8 * torch.finfo(dtype).eps if dtype in HALF_PRECISION else None
    assert_close(
        result,
        torch.softmax(x.double(), dim=-1).to(dtype),
        what=f"stable_softmax in {dtype}",
        atol=tolerance,
        rtol=0 if tolerance else None,
    )


# --- causal_mask --------------------------------------------------------------------------------


@pytest.mark.kata("causal_mask")
@pytest.mark.parametrize("seq_len", [1, 2, 5, 7])
def test_causal_mask_is_the_lower_triangle_with_the_diagonal(impl, seq_len):
    mask = impl.causal_mask(seq_len)
    expected = torch.ones(seq_len, seq_len, dtype=torch.bool).tril()
    assert mask.dtype == torch.bool, f"the mask should be boolean, got {mask.dtype}"
    assert torch.equal(mask, expected), (
        f"causal_mask({seq_len}) should be True where key <= query (a position sees itself):\n{expected.int()}\n"
        f"got\n{mask.int()}\nLikely mistake: the diagonal is missing (off by one) or the triangle is flipped."
    )
    assert torch.equal(~mask, torch.ones(seq_len, seq_len, dtype=torch.bool).triu(diagonal=1)), (
        "the hidden entries (False) should be exactly the strict upper triangle, triu(diagonal=1)"
    )


@pytest.mark.kata("causal_mask")
def test_causal_mask_is_created_on_the_requested_device(impl):
    mask = with_default_device_elsewhere(lambda: impl.causal_mask(5, device=torch.device("cpu")))
    assert mask.device.type == "cpu", (
        f"causal_mask(5, device=cpu) came back on {mask.device}: pass device=device to the factory"
    )
    mask = with_default_device_elsewhere(lambda: impl.causal_mask(4, device="cpu"))
    assert mask.device.type == "cpu", f"causal_mask(4, device='cpu') (a string) came back on {mask.device}"


@pytest.mark.kata("causal_mask")
def test_causal_mask_without_a_device_is_on_the_default_device(impl):
    with torch.device("cuda"):
        try:
            mask = impl.causal_mask(3)
        except NotImplementedError:  # a stub (NotImplementedError is a RuntimeError)
            raise
        except (AssertionError, RuntimeError):
            return  # no GPU here: the mask was asked for on the default device (CUDA), as it should be
    assert mask.device.type == "cuda", (
        f"with no device given and CUDA as torch's default device, the mask came back on {mask.device}: "
        "device=None means the default device, so pass device=device through unchanged (None included)"
    )


# --- attention_scores ---------------------------------------------------------------------------


@pytest.mark.kata("attention_scores")
def test_attention_scores_are_scaled_dot_products(impl):
    q = torch.randn(BATCH, HEADS, QUERIES, D_HEAD, dtype=F64)
    k = torch.randn(BATCH, HEADS, KEYS, D_HEAD, dtype=F64)
    assert_close(
        impl.attention_scores(q, k),
        q @ k.transpose(-2, -1) / D_HEAD**0.5,
        what="attention_scores(q, k) of shape [batch, heads, query_pos, key_pos]",
        hint="divide by sqrt(d_head) (not d_head, not sqrt(d_model)).",
    )


@pytest.mark.kata("attention_scores")
def test_attention_scores_agree_with_torch_attention_weights(impl):
    # With the identity as values, torch's attention returns its attention weights softmax(q k^T / sqrt(d)).
    q, k = torch.randn(HEADS, QUERIES, D_HEAD, dtype=F64), torch.randn(HEADS, KEYS, D_HEAD, dtype=F64)
    weights = F.scaled_dot_product_attention(q, k, torch.eye(KEYS, dtype=F64).expand(HEADS, KEYS, KEYS))
    assert_close(
        torch.softmax(impl.attention_scores(q, k), dim=-1),
        weights,
        what="softmax of your scores (for 3-d q, k without a batch axis)",
    )


@pytest.mark.kata("attention_scores")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_attention_scores_keep_any_float_dtype(impl, dtype):
    q, k = torch.randn(QUERIES, D_HEAD, dtype=F64).to(dtype), torch.randn(KEYS, D_HEAD, dtype=F64).to(dtype)
    scores = impl.attention_scores(q, k)
    assert scores.dtype == dtype, f"{dtype} q, k should give {dtype} scores, got {scores.dtype}"
    expected = q.double() @ k.double().T / D_HEAD**0.5
    # The scaling, the products and the result each round: a correct half-precision answer is off by up to ~2 eps
    # times the scale of the terms, sum_d |q_d k_d| / sqrt(d_head) (measured); allow 8. A missing or wrong scale
    # is off by a factor sqrt(7) or more.
    scale = (q.double().abs() @ k.double().abs().T / D_HEAD**0.5).max().item()
    tolerance = 8 * torch.finfo(dtype).eps * scale if dtype in HALF_PRECISION else None
    assert_close(
        scores,
        expected.to(dtype),
        what=f"attention_scores in {dtype}",
        atol=tolerance,
        rtol=0 if tolerance else None,
    )


# --- apply_causal_mask --------------------------------------------------------------------------


@pytest.mark.kata("apply_causal_mask")
def test_apply_causal_mask_hides_exactly_the_future(impl):
    scores = torch.randn(BATCH, HEADS, QUERIES, QUERIES, dtype=F64)
    original = scores.clone()
    masked = impl.apply_causal_mask(scores)
    future = torch.ones(QUERIES, QUERIES, dtype=torch.bool).triu(diagonal=1)
    assert torch.equal(scores, original), "apply_causal_mask modified its input in place: return a new tensor"
    assert is_hidden(masked[..., future]).all(), (
        "scores where key > query should be -inf (or a very large negative number), got\n"
        f"{masked[0, 0]}\nLikely mistake: mask flipped (tril vs triu), or ~ forgotten before masked_fill."
    )
    assert torch.equal(masked[..., ~future], scores[..., ~future]), (
        "scores where key <= query (the diagonal included) should be unchanged, got\n"
        f"{masked[0, 0]}\nLikely mistake: the diagonal is hidden too (off by one)."
    )


@pytest.mark.kata("apply_causal_mask")
def test_apply_causal_mask_then_softmax_is_torch_causal_attention(impl):
    q, k = torch.randn(HEADS, QUERIES, D_HEAD, dtype=F64), torch.randn(HEADS, QUERIES, D_HEAD, dtype=F64)
    identity = torch.eye(QUERIES, dtype=F64).expand(HEADS, QUERIES, QUERIES)
    weights = F.scaled_dot_product_attention(q, k, identity, is_causal=True)
    assert_close(
        torch.softmax(impl.apply_causal_mask(q @ k.transpose(-2, -1) / D_HEAD**0.5), dim=-1),
        weights,
        what="softmax of the causally masked scores",
    )


@pytest.mark.kata("apply_causal_mask")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_apply_causal_mask_works_in_any_float_dtype(impl, dtype):
    scores = torch.randn(HEADS, QUERIES, QUERIES, dtype=F64).to(dtype)
    masked = impl.apply_causal_mask(scores)
    assert masked.dtype == dtype, f"{dtype} scores should stay {dtype}, got {masked.dtype}"
    visible = tril(QUERIES)
    assert torch.equal(masked[..., visible], scores[..., visible]), (
        f"in {dtype}, the scores where key <= query should come back unchanged, got\n{masked[0]}\nLikely mistake: "
        "a fill value that overflows the dtype (-1e9 is -inf in float16) multiplied by 0 gives nan: select with "
        "torch.where or masked_fill instead of arithmetic with the mask"
    )
    probabilities = torch.softmax(masked.double(), dim=-1)
    assert not probabilities.isnan().any(), f"the {dtype} fill value gave nan: use float('-inf') or finfo(dtype).min"
    assert (probabilities.triu(diagonal=1) == 0).all(), f"in {dtype} the future should still get probability 0"


@pytest.mark.kata("apply_causal_mask")
def test_apply_causal_mask_works_on_any_device(impl):
    with_default_device_elsewhere(lambda: impl.apply_causal_mask(torch.randn(HEADS, QUERIES, QUERIES, device="cpu")))


# --- scaled_dot_product_attention ---------------------------------------------------------------


def qkv(queries: int = QUERIES, keys: int = KEYS, dtype: torch.dtype = F64) -> tuple[torch.Tensor, ...]:
    return (
        torch.randn(BATCH, HEADS, queries, D_HEAD, dtype=dtype),
        torch.randn(BATCH, HEADS, keys, D_HEAD, dtype=dtype),
        torch.randn(BATCH, HEADS, keys, D_VALUE, dtype=dtype),
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_attention_without_mask_matches_torch(impl):
    q, k, v = qkv()
    expected = F.scaled_dot_product_attention(q, k, v)
    with forbid(F.scaled_dot_product_attention, reason="build attention from your katas"):
        result = impl.scaled_dot_product_attention(q, k, v)
    assert_close(
        result,
        expected,
        what="attention(q, k, v) with 5 queries and 4 keys",
        hint="softmax over the key axis (dim=-1), scale 1/sqrt(d_head), then @ v.",
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_causal_attention_matches_torch(impl):
    q, k, v = qkv(keys=QUERIES)
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    with forbid(F.scaled_dot_product_attention, reason="build attention from your katas"):
        result = impl.scaled_dot_product_attention(q, k, v, causal=True)
    assert_close(
        result,
        expected,
        what="causal attention",
        hint="mask BEFORE the softmax (masking after it leaves rows that no longer sum to 1); keep the diagonal.",
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_attention_with_a_boolean_mask_matches_torch(impl):
    q, k, v = qkv()
    # Pinned, so that every seed hides some keys and keeps some: every query sees at least one key.
    mask = torch.tensor([[1, 0, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 0], [0, 1, 0, 0]], dtype=torch.bool)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    with forbid(F.scaled_dot_product_attention, reason="build attention from your katas"):
        result = impl.scaled_dot_product_attention(q, k, v, mask=mask)
    assert_close(
        result,
        expected,
        what="attention with a boolean mask (True = may attend)",
        hint="hide the keys where the mask is False: masked_fill(~mask, -inf), not masked_fill(mask, ...).",
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_attention_with_an_additive_mask_matches_torch(impl):
    q, k, v = qkv()
    bias = torch.randn(QUERIES, KEYS, dtype=F64)
    bias[1, 2:] = float("-inf")
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    with forbid(F.scaled_dot_product_attention, reason="build attention from your katas"):
        result = impl.scaled_dot_product_attention(q, k, v, mask=bias)
    assert_close(
        result,
        expected,
        what="attention with a float mask (added to the scores)",
        hint="a float mask is added to the scaled scores before the softmax.",
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_causal_attention_combined_with_a_boolean_mask(impl):
    q, k, v = qkv(keys=QUERIES)
    # Pinned: it hides some past keys (below the diagonal) and lets some future ones through (above it, where
    # only the causal mask hides them); the diagonal is kept, so every query sees a key.
    mask = torch.tensor(
        [[1, 1, 0, 1, 0], [0, 1, 1, 0, 0], [1, 0, 1, 1, 1], [1, 1, 0, 1, 0], [0, 1, 1, 0, 1]], dtype=torch.bool
    )
    assert_close(
        impl.scaled_dot_product_attention(q, k, v, causal=True, mask=mask),
        F.scaled_dot_product_attention(q, k, v, attn_mask=mask & tril(QUERIES)),
        what="causal attention with an extra boolean mask",
        hint="a key is hidden if EITHER the causal mask or the given mask hides it.",
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_attention_is_invariant_to_shuffling_keys_with_their_values(impl):
    q, k, v = qkv()
    shuffle = torch.tensor([2, 0, 3, 1])  # pinned: a random permutation is the identity for 1 seed in 24
    assert_close(
        impl.scaled_dot_product_attention(q, k[..., shuffle, :], v[..., shuffle, :]),
        impl.scaled_dot_product_attention(q, k, v),
        what="attention after permuting keys and values together",
    )


@pytest.mark.kata("scaled_dot_product_attention")
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_attention_keeps_any_float_dtype(impl, dtype):
    q, k, v = (t.to(dtype) for t in qkv(keys=QUERIES))
    bias = torch.randn(QUERIES, QUERIES, dtype=F64).to(dtype)
    # The oracle sees the same (rounded) inputs in float64, the causal mask folded into the bias.
    hidden = torch.zeros(QUERIES, QUERIES, dtype=F64).masked_fill(~tril(QUERIES), float("-inf"))
    expected = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=bias.double() + hidden)
    result = impl.scaled_dot_product_attention(q, k, v, causal=True, mask=bias)
    assert result.dtype == dtype, f"{dtype} inputs (and mask) should give a {dtype} output, got {result.dtype}"
    # The output averages v: a correct half-precision computation is off by up to ~1 eps times max |v| (measured);
    # allow 8. A wrong scale, mask or axis moves the averages by a good fraction of |v|.
    tolerance = 8 * torch.finfo(dtype).eps * v.double().abs().max().item() if dtype in HALF_PRECISION else None
    assert_close(
        result,
        expected.to(dtype),
        what=f"causal attention with a float mask in {dtype}",
        atol=tolerance,
        rtol=0 if tolerance else None,
    )


@pytest.mark.kata("scaled_dot_product_attention")
def test_attention_works_on_any_device(impl):
    q, k, v = qkv(keys=QUERIES, dtype=torch.float32)
    with_default_device_elsewhere(lambda: impl.scaled_dot_product_attention(q, k, v, causal=True))


# --- MultiHeadAttention -------------------------------------------------------------------------


def randomised(module: nn.Module) -> nn.Module:
    """Random weights AND biases (the biases start at zero, which would hide a forgotten bias)."""
    module = module.double()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(0.4 * torch.randn_like(parameter))
    return module


def torch_copy(ours: nn.Module, d_model: int, n_heads: int) -> nn.MultiheadAttention:
    """torch.nn.MultiheadAttention with our weights: Q, K, V rows stacked, each head-major."""
    theirs = nn.MultiheadAttention(d_model, n_heads, bias=True, batch_first=True, dtype=F64)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(
            torch.cat([einops.rearrange(w, "h m d -> (h d) m") for w in (ours.W_Q, ours.W_K, ours.W_V)])
        )
        theirs.in_proj_bias.copy_(torch.cat([b.flatten() for b in (ours.b_Q, ours.b_K, ours.b_V)]))
        theirs.out_proj.weight.copy_(einops.rearrange(ours.W_O, "h d m -> m (h d)"))
        theirs.out_proj.bias.copy_(ours.b_O)
    return theirs


@pytest.mark.kata("MultiHeadAttention")
def test_multi_head_attention_matches_torch_multihead_attention(impl):
    pos, n_heads, d_head = 7, 3, 5
    d_model = n_heads * d_head
    ours = randomised(impl.MultiHeadAttention(d_model, n_heads, d_head))
    theirs = torch_copy(ours, d_model, n_heads)
    x = torch.randn(BATCH, pos, d_model, dtype=F64)
    hidden = torch.ones(pos, pos, dtype=torch.bool).triu(diagonal=1)  # nn.MultiheadAttention: True = hidden
    expected, expected_pattern = theirs(x, x, x, attn_mask=hidden, average_attn_weights=False)
    with torch.no_grad():
        assert_close(
            ours.pattern(x),
            expected_pattern,
            what="MultiHeadAttention.pattern(x)",
            hint="scores divided by sqrt(d_head); b_Q and b_K added; softmax over key_pos; mask before the softmax.",
        )
        assert_close(
            ours(x),
            expected,
            what="MultiHeadAttention(x)",
            hint="did you add b_V and b_O, and sum the heads' outputs (einsum over n_heads and d_head)?",
        )


@pytest.mark.kata("MultiHeadAttention")
@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_attention_with_d_model_unrelated_to_d_head(impl, causal):
    pos, n_heads, d_head, d_model = 6, 3, 5, 7  # d_model != n_heads * d_head: allowed
    ours = randomised(impl.MultiHeadAttention(d_model, n_heads, d_head, causal=causal))
    x = torch.randn(BATCH, pos, d_model, dtype=F64)
    with torch.no_grad():
        q, k, v = (
            einops.einsum(x, w, "b p m, h m d -> b h p d") + b[:, None]
            for w, b in ((ours.W_Q, ours.b_Q), (ours.W_K, ours.b_K), (ours.W_V, ours.b_V))
        )
        z = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        expected = einops.einsum(z, ours.W_O, "b h p d, h d m -> b p m") + ours.b_O
        assert_close(
            ours(x),
            expected,
            what=f"MultiHeadAttention(d_model=7, n_heads=3, d_head=5, causal={causal})(x)",
            hint="the scale is 1/sqrt(d_head), and causal=False must not mask anything.",
        )


@pytest.mark.kata("MultiHeadAttention")
def test_multi_head_attention_pattern_is_a_causal_distribution(impl):
    ours = randomised(impl.MultiHeadAttention(d_model=11, n_heads=3, d_head=4))
    with torch.no_grad():
        pattern = ours.pattern(torch.randn(BATCH, 6, 11, dtype=F64))
    assert_close(pattern.sum(-1), torch.ones(BATCH, 3, 6, dtype=F64), what="row sums of the pattern")
    assert (pattern.triu(diagonal=1) == 0).all(), "the pattern should be exactly 0 above the diagonal (the future)"
    assert (pattern[..., tril(6)] > 0).all(), "every key up to and including the query should get some attention"


@pytest.mark.kata("MultiHeadAttention")
def test_non_causal_multi_head_attention_commutes_with_shuffling_positions(impl):
    ours = randomised(impl.MultiHeadAttention(d_model=11, n_heads=3, d_head=4, causal=False))
    x, shuffle = torch.randn(BATCH, 6, 11, dtype=F64), torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        assert_close(
            ours(x[:, shuffle]),
            ours(x)[:, shuffle],
            what="attention of shuffled positions",
        )


@pytest.mark.kata("MultiHeadAttention")
@pytest.mark.parametrize("dtype", HALF_PRECISION, ids=str)
def test_multi_head_attention_works_in_half_precision_and_on_any_device(impl, dtype):
    ours = impl.MultiHeadAttention(d_model=12, n_heads=3, d_head=4, init_range=0.5)
    x = torch.randn(BATCH, 6, 12)
    with torch.no_grad():
        expected = with_default_device_elsewhere(lambda: ours(x))  # float32: the other tests check its values
        result = ours.to(dtype)(x.to(dtype))
    assert result.dtype == dtype, f"a {dtype} module and input should give {dtype}, got {result.dtype}"
    # Rounding x, the weights and every intermediate to the dtype moves the outputs by up to ~3 eps times the
    # largest output (measured over 300 seeds); allow 8 eps of it. A fixed atol=rtol=0.05 failed 5% of the seeds.
    tolerance = 8 * torch.finfo(dtype).eps * expected.abs().max().item()
    assert_close(
        result.float(),
        expected,
        what=f"MultiHeadAttention in {dtype}",
        atol=tolerance,
        rtol=0,
    )


# --- interpretability: QK and OV circuits, reading patterns -------------------------------------


@pytest.mark.kata("qk_circuit")
def test_qk_circuit_gives_the_scores_without_biases(impl):
    n_heads, d_model, d_head = 3, 7, 2
    W_Q, W_K = torch.randn(n_heads, d_model, d_head, dtype=F64), torch.randn(n_heads, d_model, d_head, dtype=F64)
    queries, keys = torch.randn(QUERIES, d_model, dtype=F64), torch.randn(KEYS, d_model, dtype=F64)
    W_QK = impl.qk_circuit(W_Q, W_K)
    expected = einops.einsum(queries @ W_Q, keys @ W_K, "h q d, h k d -> h q k")
    assert_close(
        queries @ W_QK @ keys.T,
        expected,
        what="x W_QK x'^T for 5 query tokens x and 4 key tokens x'",
        hint="W_QK[h] = W_Q[h] @ W_K[h]^T, query side first (W_K[h] @ W_Q[h]^T is its transpose).",
    )
    rank = torch.linalg.matrix_rank(W_QK)
    assert (rank <= d_head).all(), f"each W_QK[h] has rank at most d_head={d_head}, got ranks {rank.tolist()}"


@pytest.mark.kata("ov_circuit")
def test_ov_circuit_is_what_a_head_writes_for_what_it_reads(impl):
    n_heads, d_model, d_head = 3, 7, 2
    W_V, W_O = torch.randn(n_heads, d_model, d_head, dtype=F64), torch.randn(n_heads, d_head, d_model, dtype=F64)
    tokens = torch.randn(KEYS, d_model, dtype=F64)
    assert_close(
        tokens @ impl.ov_circuit(W_V, W_O),
        (tokens @ W_V) @ W_O,
        what="x W_OV for 4 tokens x, every head",
        hint="W_OV[h] = W_V[h] @ W_O[h]: read with W_V first, write with W_O.",
    )


def hand_built_pattern(pos: int) -> torch.Tensor:
    """Causal patterns of 3 hand-built heads on one-hot positional residuals x = I.

    Head 0 is a previous-token head (W_Q = I, W_K shifts position j to j + 1, so query i matches
    key i - 1), head 1 attends to itself (W_K = I), head 2 is uniform (W_K = 0).
    """
    x = torch.eye(pos, dtype=F64)
    shift = torch.diag(torch.ones(pos - 1, dtype=F64), diagonal=1)  # row j -> direction j + 1
    W_Q = torch.eye(pos, dtype=F64).expand(3, pos, pos)
    W_K = 20 * torch.stack([shift, torch.eye(pos, dtype=F64), torch.zeros(pos, pos, dtype=F64)])
    scores = (x @ W_Q) @ (x @ W_K).transpose(-2, -1)
    pattern = torch.softmax(scores.masked_fill(~tril(pos), float("-inf")), dim=-1)
    return torch.stack([pattern, pattern.flip(0)])  # batch of 2: the second one lists the heads in reverse


@pytest.mark.kata("most_attended_key")
def test_most_attended_key_of_hand_built_heads(impl):
    pos = 6
    previous_token_head, self_head = torch.tensor([0, 0, 1, 2, 3, 4]), torch.arange(pos)
    result = impl.most_attended_key(hand_built_pattern(pos))
    assert result.shape == (2, 3, pos), f"expected one key position per [batch, head, query], got {result.shape}"
    for head, expected in ((0, previous_token_head), (1, self_head)):
        assert torch.equal(result[0, head], expected), (
            f"head {head} (hand-built {'previous-token' if head == 0 else 'self-attending'} head) attends most to "
            f"keys {expected.tolist()}, got {result[0, head].tolist()}\n"
            "Likely mistake: argmax over the query axis instead of the key axis (dim=-1)."
        )
    assert torch.equal(result[1], result[0].flip(0)), "the second batch element lists the same heads in reverse"


@pytest.mark.kata("most_attended_key")
def test_most_attended_key_of_random_patterns(impl):
    pattern = torch.softmax(torch.randn(BATCH, HEADS, QUERIES, KEYS), dim=-1)  # 5 queries, 4 keys: no axis coincides
    result = impl.most_attended_key(pattern)
    # torch.equal ignores dtypes: positions index other tensors (gather, take_along_dim), which want int64
    assert result.dtype == torch.int64, f"key positions are indices: int64, as argmax gives, got {result.dtype}"
    assert torch.equal(result, pattern.argmax(dim=-1)), (
        f"got {result[0, 0].tolist()} for pattern\n{pattern[0, 0]}\nwant the index of each row's maximum"
    )


@pytest.mark.kata("previous_token_score")
def test_previous_token_score_of_hand_built_heads(impl):
    pos = 6
    uniform = torch.tensor([1 / (i + 1) for i in range(1, pos)], dtype=F64).mean()  # row i spreads over i+1 keys
    result = impl.previous_token_score(hand_built_pattern(pos))
    expected_first = torch.tensor([1.0, 0.0, uniform.item()], dtype=F64)
    expected = (expected_first + expected_first.flip(0)) / 2  # batch 1 lists the heads in reverse
    assert_close(
        result,
        expected,
        what="previous_token_score of [previous-token, self, uniform] heads (averaged with the reverse order)",
        hint="use the diagonal just BELOW the main one (offset=-1), and average over the pos - 1 queries 1..pos-1.",
        atol=1e-6,
        rtol=0,
    )


@pytest.mark.kata("previous_token_score")
def test_previous_token_score_of_random_patterns(impl):
    pattern = torch.softmax(torch.randn(BATCH, HEADS, 7, 7, dtype=F64).masked_fill(~tril(7), float("-inf")), -1)
    expected = torch.stack([pattern[:, :, i, i - 1] for i in range(1, 7)]).mean(dim=(0, 1))
    assert_close(impl.previous_token_score(pattern), expected, what="previous_token_score of random causal patterns")


# --- ov_circuit_rank ----------------------------------------------------------------------------


@pytest.mark.kata("ov_circuit_rank")
def test_an_ov_circuit_has_rank_at_most_d_head(impl):
    n_heads, d_model, d_head = 3, 8, 2
    W_V, W_O = torch.randn(n_heads, d_model, d_head, dtype=F64), torch.randn(n_heads, d_head, d_model, dtype=F64)
    W_O[0, 0] = 0.0  # head 0 writes nothing for its first d_head direction: W_V alone would not show it
    with forbid(torch.linalg.matrix_rank, reason="count the singular values yourself"):
        ranks = impl.ov_circuit_rank(W_V, W_O)
    assert ranks.dtype == torch.int64, f"ranks are counts: int64, got {ranks.dtype}"
    assert ranks.tolist() == [d_head - 1] + [d_head] * (n_heads - 1), (
        f"each W_OV is {d_model} x {d_model} but factors through d_head = {d_head} dimensions: rank {d_head}, one "
        f"less for head 0, whose W_O has a zero row; got {ranks.tolist()}. The circuit is W_V @ W_O, both factors."
    )


@pytest.mark.kata("ov_circuit_rank")
def test_ov_circuit_rank_counts_singular_values_above_rtol_times_the_largest(impl):
    d_model, d_head = 6, 3
    W_O = torch.eye(d_head, d_model, dtype=F64).expand(5, d_head, d_model).clone()
    # per head, W_V's columns scale three directions: the singular values are exactly these scales
    scales = [[4.0, 2.0, 1.0], [4.0, 2.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.4, 0.2, 0.1]]
    W_V = torch.zeros(5, d_model, d_head, dtype=F64)
    W_V[:, :d_head, :] = torch.diag_embed(torch.tensor(scales, dtype=F64))
    expected = torch.linalg.matrix_rank(W_V @ W_O, rtol=0.2)
    assert impl.ov_circuit_rank(W_V, W_O, rtol=0.2).tolist() == expected.tolist() == [3, 2, 1, 0, 3], (
        "with rtol = 0.2, singular values (4, 2, 1) count 3, (4, 2, 0) count 2, (4, 0, 0) count 1, a zero "
        "circuit 0, and the small head (0.4, 0.2, 0.1) 3: compare with rtol times the head's own largest "
        "singular value, not the largest of all heads"
    )
    assert impl.ov_circuit_rank(W_V, W_O, rtol=0.25).tolist() == [2, 2, 1, 0, 2], (
        "with rtol = 0.25 the threshold of (4, 2, 1) is exactly 1: a singular value must be greater than it to count"
    )


# --- MultiHeadAttention's hook points -----------------------------------------------------------


def heads_of(attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The oracle's causal pattern [batch, n_heads, query, key] and values [batch, n_heads, key, d_head]."""
    q, k, v = (
        einops.einsum(x, w, "b p m, h m d -> b h p d") + b[:, None]
        for w, b in ((attn.W_Q, attn.b_Q), (attn.W_K, attn.b_K), (attn.W_V, attn.b_V))
    )
    scores = (q @ k.transpose(-1, -2) / k.shape[-1] ** 0.5).masked_fill(~tril(x.shape[1]), float("-inf"))
    return torch.softmax(scores, dim=-1), v


def run_with_forward_hooks(attn: nn.Module, x: torch.Tensor, **hooks: Callable) -> torch.Tensor:
    """attn(x) with hook(module, args, output) registered on the named submodules, removed afterwards."""
    handles = [getattr(attn, name).register_forward_hook(hook) for name, hook in hooks.items()]
    try:
        with torch.no_grad():
            return attn(x)
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.kata("MultiHeadAttention")
def test_multi_head_attention_passes_its_pattern_and_z_through_its_hook_points(impl):
    pos, n_heads, d_head, d_model = 5, 3, 4, 7
    ours = randomised(impl.MultiHeadAttention(d_model, n_heads, d_head))
    x = torch.randn(BATCH, pos, d_model, dtype=F64)
    pattern, v = heads_of(ours, x)
    seen: dict[str, list[torch.Tensor]] = {"hook_pattern": [], "hook_z": []}

    def record(name: str) -> Callable:
        return lambda module, args, output: seen[name].append(args[0])

    run_with_forward_hooks(ours, x, hook_pattern=record("hook_pattern"), hook_z=record("hook_z"))
    for name, count in ((name, len(seen[name])) for name in seen):
        assert count == 1, (
            f"one forward pass called self.{name} {count} times, expected once: pass the pattern through "
            "self.hook_pattern and z through self.hook_z in forward, and use what they return"
        )
    assert_close(
        seen["hook_pattern"][0],
        pattern,
        what="what self.hook_pattern received: the pattern [batch, n_heads, query_pos, key_pos]",
        hint="pass self.pattern(x) itself, before multiplying by v",
    )
    z = einops.rearrange(pattern @ v, "b h p d -> b p h d")
    assert seen["hook_z"][0].shape == z.shape, (
        f"self.hook_z should receive z as [batch, pos, n_heads, d_head] = {list(z.shape)} (TransformerLens' order), "
        f"got {list(seen['hook_z'][0].shape)}: rearrange pattern @ v to put pos before n_heads"
    )
    assert_close(seen["hook_z"][0], z, what="what self.hook_z received: z = pattern @ v, [batch, pos, n_heads, d_head]")


@pytest.mark.kata("MultiHeadAttention")
def test_multi_head_attention_goes_on_with_what_its_hook_points_return(impl):
    pos, n_heads, d_head, d_model = 5, 3, 4, 7
    ours = randomised(impl.MultiHeadAttention(d_model, n_heads, d_head))
    x = torch.randn(BATCH, pos, d_model, dtype=F64)
    pattern, v = heads_of(ours, x)
    uniform = (tril(pos) / tril(pos).sum(dim=-1, keepdim=True)).to(F64).expand(BATCH, n_heads, pos, pos)
    z, z_of_uniform = (einops.rearrange(p @ v, "b h p d -> b p h d") for p in (pattern, uniform))
    all_but_head_1 = (torch.arange(n_heads) != 1).to(F64)[:, None]  # [n_heads, 1]: broadcasts over d_head
    seen_z: list[torch.Tensor] = []

    def write(z: torch.Tensor) -> torch.Tensor:
        return einops.einsum(z, ours.W_O, "b p h d, h d m -> b p m") + ours.b_O

    def zero_head_1(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        seen_z.append(output)
        return output * all_but_head_1

    assert_close(
        run_with_forward_hooks(ours, x, hook_pattern=lambda module, args, output: uniform),
        write(z_of_uniform),
        what="MultiHeadAttention(x) with a hook on hook_pattern that returns a uniform causal pattern",
        hint="multiply v by what self.hook_pattern returns, not by the pattern you passed it",
    )
    assert_close(
        run_with_forward_hooks(ours, x, hook_z=zero_head_1),
        write(z * all_but_head_1),
        what="MultiHeadAttention(x) with a hook on hook_z that zeroes head 1",
        hint="contract what self.hook_z returns with W_O, not the z you passed it",
    )
    assert_close(
        run_with_forward_hooks(ours, x, hook_pattern=lambda module, args, output: uniform, hook_z=zero_head_1),
        write(z_of_uniform * all_but_head_1),
        what="MultiHeadAttention(x) with both hooks: the uniform pattern, then head 1 of its z zeroed",
    )
    assert_close(seen_z[-1], z_of_uniform, what="what self.hook_z received after hook_pattern replaced the pattern")
