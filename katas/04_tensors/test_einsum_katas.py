"""Tests for katas/04_tensors/einsum_katas.py: each contraction against the plain torch op it replaces."""

import pytest
import torch
import torch.nn.functional as F

from katakit.testing import assert_close, calls


def example_inputs() -> dict[str, tuple[torch.Tensor, ...]]:
    """One valid call per kata, with distinct sizes for distinct axes."""
    return {
        "trace": (torch.randn(5, 5),),
        "matrix_vector": (torch.randn(3, 5), torch.randn(5)),
        "matrix_matrix": (torch.randn(3, 5), torch.randn(5, 7)),
        "inner": (torch.randn(5), torch.randn(5)),
        "outer": (torch.randn(3), torch.randn(5)),
        "batched_matmul": (torch.randn(2, 3, 5), torch.randn(2, 5, 7)),
        "bilinear_form": (torch.randn(2, 3), torch.randn(3, 5), torch.randn(2, 5)),
        "attention_scores": (torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4)),
        "weighted_values": (torch.randn(2, 3, 5, 7).softmax(-1), torch.randn(2, 3, 7, 4)),
        "contract_two_axes": (torch.randn(2, 3, 5), torch.randn(3, 5, 7)),
        "batched_diagonal": (torch.randn(2, 5, 5),),
        "column_sums": (torch.randn(3, 5),),
    }


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.kata(name)) for name in example_inputs()])
def test_the_kata_is_written_with_einsum(impl, name):
    kata = getattr(impl, name)
    kata(*example_inputs()[name])  # first make it work: an unwritten kata fails here, with NotImplementedError
    # Read from the source with ast (nested functions, comprehensions and lambdas included): torch.einsum,
    # einops.einsum, or an einsum imported by name all count.
    called = sorted(calls(kata))
    assert any(call.split(".")[-1] == "einsum" for call in called), (
        f"{name} gives the right shapes but does not call einsum (it calls {', '.join(called) or 'nothing'}). "
        "This kata is about einsum: write it with torch.einsum or einops.einsum."
    )


@pytest.mark.kata("trace")
def test_trace_matches_torch_trace(impl):
    a = torch.randn(5, 5)
    assert_close(
        impl.trace(a), torch.trace(a), what="the trace", hint="'ii->' sums the diagonal; 'ij->' sums every entry"
    )


@pytest.mark.kata("matrix_vector")
def test_matrix_vector_matches_matmul(impl):
    a, x = torch.randn(3, 5), torch.randn(5)
    assert_close(
        impl.matrix_vector(a, x),
        a @ x,
        what="a @ x",
        hint="x's index is a's column index (the same letter): sum over it, keep the row index",
    )


@pytest.mark.kata("matrix_matrix")
def test_matrix_matrix_matches_matmul(impl):
    a, b = torch.randn(3, 5), torch.randn(5, 7)
    assert_close(
        impl.matrix_matrix(a, b),
        a @ b,
        what="a @ b",
        hint="the shared (summed) index is a's second axis and b's first: the same letter in both",
    )


@pytest.mark.kata("inner")
def test_inner_matches_dot(impl):
    x, y = torch.randn(5), torch.randn(5)
    assert_close(impl.inner(x, y), torch.dot(x, y), what="the inner product", hint="same index on both, none kept")


@pytest.mark.kata("outer")
def test_outer_matches_torch_outer(impl):
    x, y = torch.randn(3), torch.randn(5)
    assert_close(impl.outer(x, y), torch.outer(x, y), what="the outer product")


@pytest.mark.kata("batched_matmul")
def test_batched_matmul_matches_bmm(impl):
    a, b = torch.randn(2, 3, 5), torch.randn(2, 5, 7)
    assert_close(
        impl.batched_matmul(a, b),
        torch.bmm(a, b),
        what="the batched product",
        hint="one batch letter in a, b and the result: a letter of its own sums over the batch",
    )


@pytest.mark.kata("bilinear_form")
def test_bilinear_form_matches_functional_bilinear(impl):
    x, a, y = torch.randn(2, 3), torch.randn(3, 5), torch.randn(2, 5)
    assert_close(
        impl.bilinear_form(x, a, y),
        F.bilinear(x, y, a[None]).squeeze(-1),
        what="x^T A y",
        hint="x shares A's first index, y its second, and x and y the batch index (the same letter in each pair)",
    )


@pytest.mark.kata("bilinear_form")
def test_bilinear_form_of_basis_vectors_picks_an_entry(impl):
    a = torch.randn(3, 5)
    x, y = torch.eye(3)[[0, 2]], torch.eye(5)[[4, 1]]
    assert_close(
        impl.bilinear_form(x, a, y),
        torch.stack([a[0, 4], a[2, 1]]),
        what="e_i^T A e_j, which should be A[i, j]",
        hint="x shares A's first index, y its second, and x and y the batch index (the same letter in each pair)",
    )


@pytest.mark.kata("attention_scores")
def test_attention_scores_match_q_matmul_k_transposed(impl):
    q, k = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4)
    assert_close(
        impl.attention_scores(q, k),
        q @ k.transpose(-1, -2),
        what="the attention scores",
        hint="sum over d_head only, keep q_pos before k_pos, and do not scale here",
    )


@pytest.mark.kata("weighted_values")
def test_weighted_values_match_pattern_matmul_v(impl):
    pattern, v = torch.randn(2, 3, 5, 7).softmax(-1), torch.randn(2, 3, 7, 4)
    assert_close(
        impl.weighted_values(pattern, v),
        pattern @ v,
        what="the pattern-weighted values",
        hint="sum over the key position, the index the pattern and v share",
    )


@pytest.mark.kata("contract_two_axes")
def test_contract_two_axes_matches_tensordot(impl):
    a, b = torch.randn(2, 3, 5), torch.randn(3, 5, 7)
    assert_close(
        impl.contract_two_axes(a, b),
        torch.tensordot(a, b, dims=([1, 2], [0, 1])),
        what="the contraction over j and k",
        hint="a's last two axes are b's first two: share both letters (ijk,jkl), so both are summed",
    )


@pytest.mark.kata("batched_diagonal")
def test_batched_diagonal_matches_torch_diagonal(impl):
    a = torch.randn(2, 5, 5)
    assert_close(
        impl.batched_diagonal(a),
        torch.diagonal(a, dim1=-2, dim2=-1),
        what="the diagonals",
        hint="repeat the matrix index on the left, keep it once on the right",
    )


@pytest.mark.kata("column_sums")
def test_column_sums_match_sum_over_rows(impl):
    x = torch.randn(3, 5)
    assert_close(impl.column_sums(x), x.sum(dim=0), what="the column sums")
