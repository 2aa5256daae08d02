"""Tests for katas/08_interpretability/circuits.py: circuits by closed forms and algebraic properties.

Every oracle here is either the definition followed one token (or one pair of tokens) at a time, a
matrix built so that the answer is known in closed form (eigenvalues chosen, rank-1 products, heads that
write into and read from chosen coordinates of the residual stream), or an invariance (scaling, a change
of basis). Every named dimension has its own size, so a product in the wrong order fails on its shapes.
The pictures are parsed back: the HTML page with Python's html.parser, the text line by line.
"""

import builtins
import html.parser
import io
import math
import os

import pytest
import torch
from torch import nn

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close

SEED = int(os.environ.get("KATAS_SEED", "0"))
D_VOCAB, D_MODEL, D_HEAD = 13, 7, 3
SHADES = " .:-=+*#%@"


class Heads(nn.Module):
    """A bare attention layer: only the weights the circuits read, in TransformerLens' layout."""

    def __init__(self, n_heads: int, d_model: int, d_head: int):
        super().__init__()
        self.W_Q = nn.Parameter(torch.randn(n_heads, d_model, d_head, dtype=torch.float64))
        self.W_K = nn.Parameter(torch.randn(n_heads, d_model, d_head, dtype=torch.float64))
        self.W_V = nn.Parameter(torch.randn(n_heads, d_model, d_head, dtype=torch.float64))
        self.W_O = nn.Parameter(torch.randn(n_heads, d_head, d_model, dtype=torch.float64))


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


# --- full_ov_circuit --------------------------------------------------------------------------------


@pytest.mark.kata("full_ov_circuit")
def test_full_ov_circuit_follows_each_token_through_the_head(impl):
    W_E, W_V, W_O, W_U = (
        randn(D_VOCAB, D_MODEL),
        randn(D_MODEL, D_HEAD),
        randn(D_HEAD, D_MODEL),
        randn(D_MODEL, D_VOCAB),
    )
    actual = impl.full_ov_circuit(W_E, W_V, W_O, W_U)
    for token in range(D_VOCAB):
        embedded = W_E[token]  # the residual stream of a position holding this token
        written = (embedded @ W_V) @ W_O  # what the head writes when it attends there fully
        assert_close(
            actual[token],
            written @ W_U,
            what=f"row {token} of the full OV circuit (the logits raised when the head attends to token {token})",
            hint="the order is W_E, W_V, W_O, W_U (row vectors, x @ W); W_U, not W_E.T, unembeds",
        )


@pytest.mark.kata("full_ov_circuit")
def test_full_ov_circuit_is_the_product_in_any_association_order(impl):
    W_E, W_V, W_O, W_U = (
        randn(D_VOCAB, D_MODEL),
        randn(D_MODEL, D_HEAD),
        randn(D_HEAD, D_MODEL),
        randn(D_MODEL, D_VOCAB),
    )
    actual = impl.full_ov_circuit(W_E, W_V, W_O, W_U)
    assert actual.shape == (D_VOCAB, D_VOCAB), f"expected [d_vocab, d_vocab] = {[D_VOCAB, D_VOCAB]}, got {actual.shape}"
    assert_close(actual, W_E @ (W_V @ (W_O @ W_U)), what="the full OV circuit")
    rank = torch.linalg.matrix_rank(actual).item()
    assert rank <= D_HEAD, f"the full OV circuit has rank {rank}, but a head with d_head = {D_HEAD} cannot exceed it"


# --- copying_score ----------------------------------------------------------------------------------


@pytest.mark.kata("copying_score")
@pytest.mark.parametrize("n", [1, 5])
def test_copying_score_of_plus_and_minus_identity(impl, n):
    identity = torch.eye(n, dtype=torch.float64)
    plus, minus = impl.copying_score(identity), impl.copying_score(-identity)
    assert plus.shape == (), f"copying_score should return a 0-d tensor, got shape {tuple(plus.shape)}"
    assert_close(plus, torch.tensor(1.0, dtype=torch.float64), what="copying_score(I)", hint="sum(Re λ) / sum(|λ|)")
    assert_close(
        minus,
        torch.tensor(-1.0, dtype=torch.float64),
        what="copying_score(-I)",
        hint="a head that suppresses what it reads scores -1: is there an abs in the numerator? Or singular values "
        "(svdvals, never negative) in place of the eigenvalues (torch.linalg.eigvals)?",
    )


@pytest.mark.kata("copying_score")
@pytest.mark.parametrize("theta", [0.4, 2.0, 3.0])
def test_copying_score_of_a_rotation_is_its_cosine(impl, theta):
    c, s = math.cos(theta), math.sin(theta)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    assert_close(
        impl.copying_score(rotation),
        torch.tensor(c, dtype=torch.float64),
        what=f"copying_score of a rotation by {theta}",
        hint="its eigenvalues are cos(θ) ± i sin(θ), of modulus 1. The symmetric part (M + M^T) / 2 = cos(θ) I "
        "has other eigenvalues: use those of the matrix itself, and their moduli, not their real parts, below",
    )


@pytest.mark.kata("copying_score")
def test_copying_score_uses_eigenvalues_not_singular_values(impl):
    # upper triangular: the eigenvalues are the diagonal, 2 and 1; the singular values are not
    matrix = torch.tensor([[2.0, 5.0], [0.0, 1.0]], dtype=torch.float64)
    assert_close(
        impl.copying_score(matrix),
        torch.tensor(1.0, dtype=torch.float64),
        what="copying_score([[2, 5], [0, 1]]), eigenvalues 2 and 1",
    )


def known_spectrum_matrix(n_real: int, n_pairs: int) -> tuple[torch.Tensor, float]:
    """A random real matrix P D P^-1 with chosen eigenvalues, and its copying score in closed form."""
    reals = randn(n_real) * 2
    radii, angles = randn(n_pairs).abs() + 0.5, torch.rand(n_pairs, dtype=torch.float64) * math.pi
    blocks = [r.reshape(1, 1) for r in reals]
    for r, a in zip(radii, angles, strict=True):  # eigenvalues r e^{±ia}
        blocks.append(r * torch.stack([torch.stack([a.cos(), -a.sin()]), torch.stack([a.sin(), a.cos()])]))
    D = torch.block_diag(*blocks)
    P = randn(D.shape[0], D.shape[0]) + 3 * torch.eye(D.shape[0], dtype=torch.float64)
    real_parts = reals.sum() + 2 * (radii * angles.cos()).sum()
    moduli = reals.abs().sum() + 2 * radii.sum()
    return P @ D @ torch.linalg.inv(P), (real_parts / moduli).item()


@pytest.mark.kata("copying_score")
def test_copying_score_of_a_matrix_with_known_complex_eigenvalues(impl):
    matrix, expected = known_spectrum_matrix(n_real=3, n_pairs=2)
    assert_close(
        impl.copying_score(matrix),
        torch.tensor(expected, dtype=torch.float64),
        what="copying_score of P D P^-1 with chosen (partly complex) eigenvalues",
        hint="sum of the real parts over the sum of the moduli (.abs() of the complex eigenvalues), over ALL of them",
        atol=1e-9,
        rtol=1e-9,
    )


@pytest.mark.kata("copying_score")
def test_copying_score_is_invariant_under_change_of_basis_and_scaling(impl):
    matrix = randn(6, 6)
    P = randn(6, 6) + 3 * torch.eye(6, dtype=torch.float64)
    score = impl.copying_score(matrix)
    for other, what in [(P @ matrix @ torch.linalg.inv(P), "P M P^-1"), (3.5 * matrix, "3.5 M")]:
        assert_close(
            impl.copying_score(other),
            score,
            what=f"copying_score({what})",
            atol=1e-9,
            rtol=1e-9,
        )
    assert -1 <= score <= 1, f"a copying score lies in [-1, 1], got {score.item()}"


@pytest.mark.kata("copying_score")
def test_copying_score_keeps_the_dtype_of_its_matrix(impl):
    matrix = torch.randn(4, 4)
    score = impl.copying_score(matrix)
    assert score.dtype == torch.float32, (
        f"copying_score of a float32 matrix came back {score.dtype}: eigenvalues are complex, "
        "take the real result back to the matrix's dtype"
    )


# --- full_qk_circuit --------------------------------------------------------------------------------


@pytest.mark.kata("full_qk_circuit")
def test_full_qk_circuit_scores_every_pair_of_tokens(impl):
    W_E, W_Q, W_K = randn(D_VOCAB, D_MODEL), randn(D_MODEL, D_HEAD), randn(D_MODEL, D_HEAD)
    actual = impl.full_qk_circuit(W_E, W_Q, W_K)
    assert actual.shape == (D_VOCAB, D_VOCAB), f"expected [d_vocab, d_vocab] = {[D_VOCAB, D_VOCAB]}, got {actual.shape}"
    for query_token in (0, 4, D_VOCAB - 1):
        query = W_E[query_token] @ W_Q
        expected = torch.stack([query @ (W_E[key_token] @ W_K) for key_token in range(D_VOCAB)])
        assert_close(
            actual[query_token],
            expected,
            what=f"row {query_token} of the full QK circuit (query token {query_token} against every key token)",
            hint="rows are the query side: W_E W_Q (W_E W_K)^T; swapping W_Q and W_K gives the transpose",
        )


@pytest.mark.kata("full_qk_circuit")
def test_full_qk_circuit_with_zero_keys_scores_nothing(impl):
    W_E, W_Q = randn(D_VOCAB, D_MODEL), randn(D_MODEL, D_HEAD)
    W_K = torch.zeros(D_MODEL, D_HEAD, dtype=torch.float64)
    actual = impl.full_qk_circuit(W_E, W_Q, W_K)
    assert torch.equal(actual, torch.zeros(D_VOCAB, D_VOCAB, dtype=torch.float64)), (
        "with W_K = 0 every key is 0, so every score is 0; something other than W_Q W_K^T was used"
    )


# --- composition_score ------------------------------------------------------------------------------


@pytest.mark.kata("composition_score")
def test_composition_score_of_rank_one_matrices_is_the_cosine_between_them(impl):
    a, b, c, d = randn(D_MODEL), randn(D_MODEL), randn(D_MODEL), randn(D_MODEL)
    W_A, W_B = torch.outer(a, b), torch.outer(c, d)  # W_A W_B = (b . c) a d^T
    expected = (b @ c).abs() / (b.norm() * c.norm())
    assert_close(
        impl.composition_score(W_A, W_B),
        expected,
        what="composition_score(a b^T, c d^T) = |cos(b, c)|",
        hint="||W_A W_B||_F / (||W_A||_F ||W_B||_F): the norm of the product over the product of the norms",
    )


@pytest.mark.kata("composition_score")
def test_composition_score_of_identities_uses_the_frobenius_norm(impl):
    identity = torch.eye(D_MODEL, dtype=torch.float64)
    assert_close(
        impl.composition_score(identity, identity),
        torch.tensor(1 / math.sqrt(D_MODEL), dtype=torch.float64),
        what=f"composition_score(I, I) in dimension {D_MODEL}, sqrt(d) / (sqrt(d) sqrt(d))",
        hint="the Frobenius norm (torch.linalg.matrix_norm's default), not the spectral norm (ord=2)",
    )


@pytest.mark.kata("composition_score")
def test_composition_score_reads_what_w_a_writes_into_the_rows_of_w_b(impl):
    # W_A writes only into coordinates 0..2 (its columns), W_B reads only coordinates 3.. (its rows)
    W_A, W_B = randn(D_MODEL, D_MODEL), randn(D_MODEL, D_MODEL)
    W_A[:, 3:] = 0
    W_B[:3, :] = 0
    score = impl.composition_score(W_A, W_B)
    assert score.abs() < 1e-12, (
        f"W_A writes into directions W_B does not read, so the score is 0, got {score.item():.4f}: "
        "is the product W_A @ W_B (what W_A writes, then what W_B reads of it), not W_B @ W_A?"
    )


@pytest.mark.kata("composition_score")
def test_composition_score_ignores_scale_and_stays_in_0_1(impl):
    W_A, W_B = randn(D_MODEL, D_MODEL), randn(D_MODEL, D_MODEL)
    score = impl.composition_score(W_A, W_B)
    assert score.shape == (), f"composition_score should return a 0-d tensor, got shape {tuple(score.shape)}"
    assert 0 <= score <= 1, f"||AB|| <= ||A|| ||B||, so the score lies in [0, 1]; got {score.item()}"
    assert_close(
        impl.composition_score(2.5 * W_A, 0.3 * W_B),
        score,
        what="composition_score(2.5 W_A, 0.3 W_B)",
    )


# --- composition_scores -----------------------------------------------------------------------------

HEADS0, HEADS1, D_MODEL_C, D_HEAD_C = 3, 5, 11, 2


def expected_scores(attn0: Heads, attn1: Heads, kind: str) -> torch.Tensor:
    """The Framework paper's composition scores, pair by pair, in the x @ W convention."""
    scores = torch.zeros(attn0.W_Q.shape[0], attn1.W_Q.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for i in range(attn0.W_Q.shape[0]):
            W_OV = attn0.W_V[i] @ attn0.W_O[i]  # what head i writes, for what it reads
            for j in range(attn1.W_Q.shape[0]):
                W_QK = attn1.W_Q[j] @ attn1.W_K[j].T
                W_B = {"q": W_QK, "k": W_QK.T, "v": attn1.W_V[j] @ attn1.W_O[j]}[kind]
                product = torch.linalg.matrix_norm(W_OV @ W_B)
                scores[i, j] = product / (torch.linalg.matrix_norm(W_OV) * torch.linalg.matrix_norm(W_B))
    return scores


KIND_HINTS = {
    "q": "Q-composition: head j's QUERY reads x W_OV[i]; the score of that query against a key k is "
    "(x W_OV[i]) W_Q[j] (k W_K[j])^T: what follows x W_OV[i]?",
    "k": "K-composition: head j's KEY reads x W_OV[i]; the score of a query q against it is "
    "(q W_Q[j]) (x W_OV[i] W_K[j])^T, a number equal to its transpose: write it with x W_OV[i] first",
    "v": "V-composition: W_OV[i] @ W_V[j] @ W_O[j]; every OV circuit is W_V @ W_O, in that order",
}


@pytest.mark.kata("composition_scores")
@pytest.mark.parametrize("kind", ["q", "k", "v"])
def test_composition_scores_match_the_framework_definition(impl, kind):
    attn0, attn1 = Heads(HEADS0, D_MODEL_C, D_HEAD_C), Heads(HEADS1, D_MODEL_C, D_HEAD_C)
    actual = impl.composition_scores(attn0, attn1, kind)
    assert actual.shape == (HEADS0, HEADS1), (
        f"expected [heads0, heads1] = {[HEADS0, HEADS1]} (earlier layer's heads first), got {list(actual.shape)}"
    )
    assert_close(
        actual, expected_scores(attn0, attn1, kind), what=f"composition_scores(kind={kind!r})", hint=KIND_HINTS[kind]
    )


def zero_except(tensor: torch.Tensor, rows: slice | None = None, cols: slice | None = None) -> torch.Tensor:
    """tensor with only the given rows (or columns) of its last two axes left non-zero."""
    mask = torch.zeros_like(tensor)
    if rows is not None:
        mask[..., rows, :] = 1
    if cols is not None:
        mask[..., :, cols] = 1
    return tensor * mask


@pytest.mark.kata("composition_scores")
def test_composition_scores_see_which_side_reads_what_was_written(impl):
    # d_model = 8 split into four 2-dimensional subspaces. In the earlier layer head 0 writes into K_SPACE,
    # head 1 into Q_SPACE, head 2 into V_SPACE. In the later layer head 0 reads K_SPACE with its keys only,
    # head 1 reads Q_SPACE with its queries only, head 2 reads V_SPACE with its values only; everything else
    # they read comes from ELSEWHERE, which nobody writes to.
    K_SPACE, Q_SPACE, V_SPACE, ELSEWHERE = slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)
    attn0, attn1 = Heads(3, 8, 2), Heads(3, 8, 2)
    with torch.no_grad():
        for head, space in enumerate([K_SPACE, Q_SPACE, V_SPACE]):
            attn0.W_O[head] = zero_except(attn0.W_O[head], cols=space)
        for head, (q, k, v) in enumerate(
            [(ELSEWHERE, K_SPACE, ELSEWHERE), (Q_SPACE, ELSEWHERE, ELSEWHERE), (ELSEWHERE, ELSEWHERE, V_SPACE)]
        ):
            attn1.W_Q[head] = zero_except(attn1.W_Q[head], rows=q)
            attn1.W_K[head] = zero_except(attn1.W_K[head], rows=k)
            attn1.W_V[head] = zero_except(attn1.W_V[head], rows=v)
    reads = {"k": 0, "q": 1, "v": 2}  # which later head reads, through this side, what which earlier head wrote
    for kind, reader in reads.items():
        scores = impl.composition_scores(attn0, attn1, kind)
        for i in range(3):
            for j in range(3):
                score = scores[i, j].item()
                if i == j == reader:
                    assert score > 0.05, (
                        f"{kind.upper()}-composition: later head {j} reads with its {kind} side exactly the subspace "
                        f"earlier head {i} writes into, yet the score is {score:.4f}. {KIND_HINTS[kind]}"
                    )
                else:
                    assert abs(score) < 1e-12, (
                        f"{kind.upper()}-composition [{i}, {j}] should be 0 (head {j} does not read with its "
                        f"{kind} side what head {i} writes), got {score:.4f}. A score that uses W_Q where W_K "
                        f"belongs (or the reverse) lands here. {KIND_HINTS[kind]}"
                    )


@pytest.mark.kata("composition_scores")
def test_composition_scores_ignore_the_scale_of_the_weights(impl):
    attn0, attn1 = Heads(HEADS0, D_MODEL_C, D_HEAD_C), Heads(HEADS1, D_MODEL_C, D_HEAD_C)
    before = {kind: impl.composition_scores(attn0, attn1, kind) for kind in "qkv"}
    with torch.no_grad():
        attn0.W_V.mul_(3.0)
        attn1.W_Q.mul_(0.5)
        attn1.W_O.mul_(7.0)
    for kind in "qkv":
        assert_close(
            impl.composition_scores(attn0, attn1, kind),
            before[kind],
            what=f"composition_scores(kind={kind!r}) after scaling W_V of the earlier layer, W_Q and W_O of the later",
        )


@pytest.mark.kata("composition_scores")
def test_composition_scores_reject_an_unknown_kind(impl):
    attn0, attn1 = Heads(HEADS0, D_MODEL_C, D_HEAD_C), Heads(HEADS1, D_MODEL_C, D_HEAD_C)
    with pytest.raises(ValueError):
        impl.composition_scores(attn0, attn1, "o")


# --- composition_baseline -----------------------------------------------------------------------------


def random_scores(d_model: int, d_head: int, n: int) -> torch.Tensor:
    """n composition scores of random OV- and QK-shaped products, in float64: the definition, drawn by the test."""
    W_V, W_Q, W_K = (torch.randn(n, d_model, d_head, dtype=torch.float64) for _ in range(3))
    W_O = torch.randn(n, d_head, d_model, dtype=torch.float64)
    W_A, W_B = W_V @ W_O, W_Q @ W_K.mT
    norm = torch.linalg.matrix_norm
    return norm(W_A @ W_B) / (norm(W_A) * norm(W_B))


@pytest.mark.kata("composition_baseline")
# (3, 2) with many samples: there W_B = W_Q W_K^T and W_B = W_Q alone (a random d_model x d_head matrix) differ
# by 0.008 in the mean score, eleven standard errors.
@pytest.mark.parametrize(("d_model", "d_head", "n"), [(11, 2, 6000), (6, 5, 6000), (3, 2, 200_000)])
def test_composition_baseline_is_the_mean_score_of_random_low_rank_weights(impl, d_model, d_head, n):
    actual = impl.composition_baseline(d_model, d_head, n, torch.Generator().manual_seed(SEED))
    assert actual.shape == () and actual.dtype == torch.float32, (
        f"composition_baseline should return a 0-d float32 tensor, got shape {tuple(actual.shape)}, {actual.dtype}"
    )
    oracle = random_scores(d_model, d_head, n)
    # both are means of n scores of the same distribution: five standard errors of their difference
    tolerance = 5 * oracle.std().item() * (2 / n) ** 0.5
    expected = oracle.mean().item()
    assert abs(actual.item() - expected) <= tolerance, (
        f"composition_baseline({d_model}, {d_head}) = {actual.item():.4f}, but the mean score of random weights of "
        f"those shapes is {expected:.4f} (within {tolerance:.4f}). W_A = W_V W_O and W_B = W_Q W_K^T are products "
        "through d_head dimensions (full d_model x d_model random matrices score higher), every entry standard normal "
        "(torch.randn, not torch.rand), averaged over all n_samples draws"
    )


@pytest.mark.kata("composition_baseline")
def test_composition_baseline_draws_from_its_generator(impl):
    check_rng_contract(lambda generator: impl.composition_baseline(7, 3, 20, generator), what="composition_baseline")


@pytest.mark.kata("composition_baseline")
def test_composition_scores_of_random_heads_are_read_against_the_baseline(impl):
    # random heads compose at about the baseline: a score alone says little, its excess over the baseline more
    attn0, attn1 = Heads(HEADS0, D_MODEL_C, D_HEAD_C), Heads(HEADS1, D_MODEL_C, D_HEAD_C)
    baseline = impl.composition_baseline(D_MODEL_C, D_HEAD_C, 4000, torch.Generator().manual_seed(SEED)).item()
    scores = torch.cat([expected_scores(attn0, attn1, kind).flatten() for kind in "qkv"])
    assert 0.1 < baseline < 1 and abs(scores.mean().item() - baseline) < 0.1, (
        f"random heads (d_model {D_MODEL_C}, d_head {D_HEAD_C}) score {scores.mean().item():.3f} on average; the "
        f"baseline should be close to that, and well above 0, but it is {baseline:.4f}"
    )


# --- pattern_html -----------------------------------------------------------------------------------


class Page(html.parser.HTMLParser):
    """Collects a page's tags, the text of each <th>, and the attributes of each <td>."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.headers: list[str] = []
        self.cells: list[dict[str, str | None]] = []
        self.in_header = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "th":
            self.headers.append("")
            self.in_header = True
        elif tag == "td":
            self.cells.append(dict(attrs))

    def handle_endtag(self, tag):
        if tag == "th":
            self.in_header = False

    def handle_data(self, data):
        if self.in_header:
            self.headers[-1] += data


def causal_pattern(pos: int) -> torch.Tensor:
    scores = 2 * torch.randn(pos, pos)
    return scores.masked_fill(torch.ones(pos, pos, dtype=torch.bool).triu(1), float("-inf")).softmax(dim=-1)


def read_page(path) -> tuple[str, Page]:
    text = path.read_text(encoding="utf-8")
    page = Page()
    page.feed(text)
    page.close()
    return text, page


@pytest.mark.kata("pattern_html")
def test_pattern_html_writes_a_table_of_every_value(impl, tmp_path):
    tokens = ["The", " cat", " sat", " on", " the", " mat", "."]
    pattern = causal_pattern(len(tokens))
    path = tmp_path / "pattern.html"
    returned = impl.pattern_html(pattern, tokens, path)
    assert returned == path, f"pattern_html should return the path it wrote, got {returned!r}"
    assert path.exists(), f"pattern_html did not write {path}"
    text, page = read_page(path)
    assert "html" in page.tags and "table" in page.tags, (
        f"expected an <html> page with a <table>, found tags {page.tags}"
    )
    n = len(tokens)
    assert len(page.cells) == n * n, (
        f"expected {n} x {n} = {n * n} <td> cells, one per (query, key), got {len(page.cells)}"
    )
    titles = [cell.get("title") for cell in page.cells]
    assert all(title is not None for title in titles), "every <td> needs a title attribute holding its value"
    values = torch.tensor([float(title) for title in titles]).reshape(n, n)
    assert_close(
        values,
        pattern,
        what="the titles of the <td> cells, row by row",
        hint="one row per query, one cell per key, in order; the value with 4 decimals",
        atol=6e-5,
        rtol=0,
    )
    expected_headers = [""] + tokens + tokens  # the corner, the keys, then each row's query
    assert page.headers == expected_headers, (
        f"expected the <th> cells {expected_headers} (an empty corner, the key tokens, then each row's query "
        f"token), got {page.headers}"
    )


@pytest.mark.kata("pattern_html")
def test_pattern_html_colours_cells_by_value(impl, tmp_path):
    tokens = ["a", "b", "c", "d", "e"]
    pattern = causal_pattern(len(tokens))
    _, page = read_page(impl.pattern_html(pattern, tokens, tmp_path / "pattern.html"))
    styles = [cell.get("style") or "" for cell in page.cells]
    assert all("background" in style for style in styles), f"every <td> should set its background colour: {styles}"
    flat = pattern.flatten()
    strongest, weakest = styles[flat.argmax()], styles[flat.argmin()]
    assert strongest != weakest, (
        f"the strongest cell ({flat.max():.4f}) and the weakest ({flat.min():.4f}) have the same style {strongest!r}: "
        "a heat map's colour follows the value"
    )


@pytest.mark.kata("pattern_html")
def test_pattern_html_escapes_tokens(impl, tmp_path):
    tokens = ["<b>", "&amp;", "&", '"q"', "a<br>b", "</table>", "café"]
    pattern = causal_pattern(len(tokens))
    _, page = read_page(impl.pattern_html(pattern, tokens, tmp_path / "escaped.html"))
    assert page.headers == [""] + tokens + tokens, (
        f"the tokens should come back from the page as they were, {tokens}, but the <th> cells read {page.headers} "
        f"(tags found: {sorted(set(page.tags))}). A token is text, not markup: html.escape it"
    )
    assert "b" not in page.tags and "br" not in page.tags, "a token became an HTML tag: escape the tokens"
    assert len(page.cells) == len(tokens) ** 2, "a token broke the table: escape the tokens"


@pytest.mark.kata("pattern_html")
def test_pattern_html_writes_utf_8_whatever_the_locale(impl, tmp_path, monkeypatch):
    # a machine whose locale encoding is Windows' cp1252: a file opened for text without an encoding gets it
    real_open = io.open

    def open_on_windows(file, mode="r", buffering=-1, encoding=None, *args, **kwargs):
        if "b" not in mode and encoding in (None, "locale"):
            encoding = "cp1252"
        return real_open(file, mode, buffering, encoding, *args, **kwargs)

    monkeypatch.setattr(io, "open", open_on_windows)
    monkeypatch.setattr(builtins, "open", open_on_windows)
    tokens = ["café", " naïve", " €"]
    path = impl.pattern_html(causal_pattern(len(tokens)), tokens, tmp_path / "utf8.html")
    monkeypatch.undo()
    try:
        _, page = read_page(path)
    except UnicodeDecodeError as error:
        raise AssertionError(
            f"the page is not UTF-8 ({error}): on a machine whose locale is not UTF-8 (Windows), a file written "
            "without an encoding gets the locale's. Say encoding=\"utf-8\", as the page's <meta charset> does"
        ) from None
    assert page.headers == [""] + tokens + tokens, f"the tokens came back as {page.headers}, expected {tokens}"


class Loads(html.parser.HTMLParser):
    """What a page would fetch from elsewhere: <link> tags, src/href-like attributes that are not a fragment
    or data, and url(...) or @import in its styles. Text and other attributes (xmlns names a namespace, it
    loads nothing) are not loads."""

    FETCHING = ("src", "href", "srcset", "data", "action", "poster", "background")

    def __init__(self):
        super().__init__()
        self.loads: list[str] = []
        self.in_style = False

    def check_style(self, text: str) -> None:
        lowered = text.lower().replace(" ", "")
        if "@import" in lowered or ("url(" in lowered and "url(data:" not in lowered.replace("'", "").replace('"', "")):
            self.loads.append(f"style {text.strip()[:60]!r}")

    def handle_starttag(self, tag, attrs):
        self.in_style = tag == "style"
        if tag == "link":
            self.loads.append(f"<link {attrs}>")
        for name, value in attrs:
            value = value or ""
            if name in self.FETCHING and value and not value.startswith(("#", "data:")):
                self.loads.append(f"<{tag} {name}={value!r}>")
            if name == "style":
                self.check_style(value)

    def handle_endtag(self, tag):
        if tag == "style":
            self.in_style = False

    def handle_data(self, data):
        if self.in_style:
            self.check_style(data)


def external_loads(text: str) -> list[str]:
    parser = Loads()
    parser.feed(text)
    parser.close()
    return parser.loads


@pytest.mark.kata("pattern_html")
def test_pattern_html_references_nothing_external(impl, tmp_path):
    tokens = ["x", "y", "z"]
    text, _ = read_page(impl.pattern_html(causal_pattern(3), tokens, tmp_path / "offline.html"))
    loads = external_loads(text)
    assert not loads, (
        f"the page loads {loads} from elsewhere: it must work offline, with everything (style included) in the file"
    )


# --- pattern_text -----------------------------------------------------------------------------------


def shade_choices(value: float) -> set[str]:
    """The shade of a value; both neighbours when it lies within rounding of a boundary."""
    indices = {min(int((value + delta) * len(SHADES)), len(SHADES) - 1) for delta in (-1e-6, 0.0, 1e-6)}
    return {SHADES[max(index, 0)] for index in indices}


@pytest.mark.kata("pattern_text")
def test_pattern_text_draws_a_line_per_query(impl):
    tokens = ["The", " cat", " sat", " on", " the", " mat", "."]
    pattern = causal_pattern(len(tokens))
    text = impl.pattern_text(pattern, tokens)
    lines = text.split("\n")
    n, width = len(tokens), max(len(token) for token in tokens)
    assert len(lines) == n, f"expected {n} lines (one per query, no trailing newline), got {len(lines)}: {text!r}"
    for i, (line, token) in enumerate(zip(lines, tokens, strict=True)):
        assert len(line) == width + 1 + n, (
            f"line {i} should be the token right-aligned to width {width}, a space, then {n} shades: got {line!r}"
        )
        assert line[:width] == token.rjust(width) and line[width] == " ", (
            f"line {i} should start with {token.rjust(width)!r} and a space, got {line!r}"
        )
        for key, (char, value) in enumerate(zip(line[width + 1 :], pattern[i].tolist(), strict=True)):
            assert char in shade_choices(value), (
                f"line {i}, key {key}: value {value:.4f} should be drawn {sorted(shade_choices(value))}, got {char!r}. "
                "The shade index is int(value * len(SHADES)), capped at the last one"
            )


@pytest.mark.kata("pattern_text")
def test_pattern_text_blanks_the_future_and_darkens_the_strongest(impl):
    tokens = ["a", "bb", "c", "dddd", "e"]
    n = len(tokens)
    pattern = causal_pattern(n)
    lines = impl.pattern_text(pattern, tokens).split("\n")
    for i, line in enumerate(lines):
        shades = line[-n:]
        assert shades[i + 1 :] == " " * (n - 1 - i), (
            f"row {i}: the keys after the query are masked, draw them blank: {line!r}"
        )
        strongest = int(pattern[i].argmax())
        darkest = max(SHADES.index(char) for char in shades)
        assert SHADES.index(shades[strongest]) == darkest, (
            f"row {i}: the strongest key ({strongest}, {pattern[i, strongest]:.3f}) should get the row's darkest "
            f"character, got {shades!r}"
        )


@pytest.mark.kata("pattern_text")
def test_pattern_text_of_certain_attention_is_the_darkest_shade(impl):
    tokens = ["x", "y", "z", "w"]
    text = impl.pattern_text(torch.eye(4), tokens)
    expected = "\n".join(
        f"{token} " + "".join("@" if k == q else " " for k in range(4)) for q, token in enumerate(tokens)
    )
    assert text == expected, (
        f"the identity pattern should draw '@' on the diagonal (a value of 1 is the last shade, not past the end) "
        f"and blanks elsewhere:\n{expected}\ngot:\n{text}"
    )
