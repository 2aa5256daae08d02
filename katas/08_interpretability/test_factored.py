"""Tests for katas/08_interpretability/factored.py: eigenvalues and SVD of a low-rank product from its factors.

On small sizes the oracle is the dense computation: torch.linalg.eigvals and torch.linalg.svd of the product
itself, and a product built with chosen eigenvalues (complex ones included). At GPT-2 small's sizes the
product cannot be formed (50257 x 50257), so the answer is checked against properties that need only the
factors: the sum of the eigenvalues is the trace, (A * B^T).sum(); the sum of their squares is the trace of
the square; an SVD rebuilds A B on random probe vectors, A (B X), and its singular values' squares add up to
the squared Frobenius norm. While the kata runs at that size, a torch dispatch mode refuses to create any
tensor larger than the largest input: the dense product, a complete QR or a full SVD fail before any memory
is spent on them.
"""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from katakit.testing import assert_close

D_VOCAB, D_MODEL, D_HEAD = 50257, 768, 64  # GPT-2 small


def randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64)


aten = torch.ops.aten
MATRIX_PRODUCTS = {aten.mm, aten.addmm, aten.bmm, aten.baddbmm}


def result_size(func, args, kwargs) -> int:
    """How many elements func(*args, **kwargs) will return, worked out from the shapes before it runs, for
    the operations that could build something large: matrix products, QR and SVD, elementwise broadcasts.
    Any other operation: 0 (its result is checked once computed)."""
    tensors = [value for value in tree_leaves((args, kwargs)) if isinstance(value, torch.Tensor)]
    packet = func.overloadpacket
    if packet in MATRIX_PRODUCTS:
        left, right = tensors[-2:]
        return left.shape[:-1].numel() * right.shape[-1]
    if packet is aten.linalg_qr and (args[1] if len(args) > 1 else kwargs.get("mode", "reduced")) == "complete":
        return tensors[0].shape[-2] ** 2
    if packet is aten._linalg_svd and (args[1] if len(args) > 1 else kwargs.get("full_matrices", False)):
        return max(tensors[0].shape[-2:]) ** 2
    if torch.Tag.pointwise in func.tags and tensors:
        return torch.broadcast_shapes(*(tensor.shape for tensor in tensors)).numel()
    return 0


class NothingLargerThan(TorchDispatchMode):
    """Inside the block, a torch operation whose result would have more than `limit` elements fails: before
    it runs when result_size can tell, otherwise as soon as it returns."""

    def __init__(self, limit: int, why: str):
        super().__init__()
        self.limit, self.why = limit, why

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.check(func, result_size(func, args, kwargs))
        result = func(*args, **kwargs)
        for tensor in tree_leaves(result):
            if isinstance(tensor, torch.Tensor):
                self.check(func, tensor.numel())
        return result

    def check(self, func, size: int) -> None:
        if size > self.limit:
            raise AssertionError(
                f"your kata asked {func} for a tensor of {size:,} elements, more than the {self.limit:,} of the "
                f"largest input: {self.why}"
            )


def at_scale(kata, small: tuple[torch.Tensor, ...], large: tuple[torch.Tensor, ...], why: str):
    """kata(*large), refusing any result larger than its largest input. It is called on the small inputs first:
    the promise checks run their own calls of a kata (on copies of its inputs) at its first call in a test."""
    kata(*small)
    with NothingLargerThan(max(tensor.numel() for tensor in large), why):
        return kata(*large)


def matched(actual: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """actual reordered to line up with expected: each expected eigenvalue takes the nearest one left."""
    left = list(range(actual.shape[0]))
    order = []
    for value in expected:
        nearest = min(left, key=lambda i: abs(actual[i] - value).item())
        order.append(nearest)
        left.remove(nearest)
    return actual[order]


def largest(eigenvalues: torch.Tensor, count: int) -> torch.Tensor:
    return eigenvalues[eigenvalues.abs().argsort(descending=True)[:count]]


# --- factored_eigenvalues ---------------------------------------------------------------------------


@pytest.mark.kata("factored_eigenvalues")
@pytest.mark.parametrize(("n", "r"), [(7, 3), (11, 5)])
def test_factored_eigenvalues_are_the_nonzero_eigenvalues_of_the_product(impl, n, r):
    A, B = randn(n, r), randn(r, n)
    actual = impl.factored_eigenvalues(A, B)
    assert actual.shape == (r,), f"expected the r = {r} eigenvalues that can be nonzero, got shape {list(actual.shape)}"
    assert actual.is_complex(), "return the eigenvalues complex, as torch.linalg.eigvals does: some may be"
    expected = largest(torch.linalg.eigvals(A @ B), r)  # the other n - r are zero, up to rounding
    assert_close(
        matched(actual, expected),
        expected,
        what=f"the nonzero eigenvalues of the {n} x {n} product A B",
        hint="eig(AB) and eig(BA) share their nonzero eigenvalues: take those of the small r x r product B A, with "
        "torch.linalg.eigvals (B A is not symmetric: eigvalsh or the singular values lose their signs and phases)",
    )


def chosen_spectrum_factors(n: int, reals: list[float], pairs: list[tuple[float, float]]):
    """A [n, r] and B [r, n] whose product is P diag(D, 0) P^-1: its nonzero eigenvalues are `reals` and
    r e^(+-i theta) for each (r, theta) of `pairs`, and B A = D, a block-diagonal matrix that is not symmetric."""
    blocks = [torch.tensor([[value]], dtype=torch.float64) for value in reals]
    eigenvalues = [complex(value) for value in reals]
    for radius, angle in pairs:
        c, s = radius * math.cos(angle), radius * math.sin(angle)
        blocks.append(torch.tensor([[c, -s], [s, c]], dtype=torch.float64))
        eigenvalues += [complex(c, s), complex(c, -s)]
    D = torch.block_diag(*blocks)
    r = D.shape[0]
    P = randn(n, n) + 3 * torch.eye(n, dtype=torch.float64)
    return P[:, :r] @ D, torch.linalg.inv(P)[:r], torch.tensor(eigenvalues, dtype=torch.complex128)


@pytest.mark.kata("factored_eigenvalues")
def test_factored_eigenvalues_of_a_product_with_chosen_eigenvalues(impl):
    A, B, expected = chosen_spectrum_factors(9, reals=[2.5, -1.5], pairs=[(1.2, 2.0), (0.7, 0.6)])
    actual = impl.factored_eigenvalues(A, B)
    assert actual.shape == expected.shape, f"expected {expected.shape[0]} eigenvalues, got shape {list(actual.shape)}"
    assert_close(
        matched(actual, expected),
        expected,
        what="the eigenvalues of a product built with eigenvalues 2.5, -1.5, 1.2 e^(+-2i), 0.7 e^(+-0.6i)",
    )


@pytest.mark.kata("factored_eigenvalues")
def test_factored_eigenvalues_do_not_depend_on_the_side(impl):
    # (A B)^T = B^T A^T is the product of the factors B^T [n, r] and A^T [r, n]: the same eigenvalues
    A, B = randn(8, 3), randn(3, 8)
    actual, transposed = impl.factored_eigenvalues(A, B), impl.factored_eigenvalues(B.T, A.T)
    assert_close(
        matched(transposed, actual),
        actual,
        what="the eigenvalues of (A B)^T, from its factors B^T and A^T (a matrix and its transpose have the same)",
    )


@pytest.mark.kata("factored_eigenvalues")
@pytest.mark.timeout(60)
def test_factored_eigenvalues_at_gpt2_scale_from_the_factors_alone(impl):
    A, B = randn(D_VOCAB, D_HEAD) / D_HEAD**0.5, randn(D_HEAD, D_VOCAB) / D_VOCAB**0.5
    trace = (A * B.T).sum()  # trace(A B) = sum_ij A[i, j] B[j, i]
    small = B @ A
    trace_of_square = (small * small.T).sum()  # trace((A B)^2) = trace((B A)^2)
    why = "the n x n product A B is never needed, nor anything else of its size"
    eigenvalues = at_scale(impl.factored_eigenvalues, (randn(7, 3), randn(3, 7)), (A, B), why)
    assert eigenvalues.shape == (D_HEAD,), f"expected {D_HEAD} eigenvalues, got shape {list(eigenvalues.shape)}"
    assert_close(eigenvalues.sum().real, trace, what="the sum of the eigenvalues, trace(A B)")
    assert_close(
        eigenvalues.sum().imag,
        torch.zeros((), dtype=torch.float64),
        what="the imaginary part of the sum of the eigenvalues (they come in conjugate pairs)",
        atol=1e-9,
    )
    assert_close(
        (eigenvalues**2).sum().real,
        trace_of_square,
        what="the sum of the squared eigenvalues, trace((A B)^2)",
    )


# --- factored_svd -----------------------------------------------------------------------------------


def check_svd(A, B, U, S, Vh, r: int) -> None:
    """U, S, Vh are a thin SVD of A B: orthonormal, non-negative and descending, and U diag(S) Vh = A B."""
    m, n = A.shape[0], B.shape[1]
    shapes = [list(U.shape), list(S.shape), list(Vh.shape)]
    assert shapes == [[m, r], [r], [r, n]], f"expected U [{m}, {r}], S [{r}], Vh [{r}, {n}], got {shapes}"
    identity = torch.eye(r, dtype=torch.float64)
    assert_close(U.T @ U, identity, what="U^T U", hint="Q_A U: the columns of U must be orthonormal", atol=1e-9)
    assert_close(Vh @ Vh.T, identity, what="Vh Vh^T", hint="(Q_B V)^T: the rows of Vh must be orthonormal", atol=1e-9)
    assert bool((S >= 0).all()) and bool((S[:-1] >= S[1:]).all()), f"S should be descending and >= 0, got {S}"
    probes = randn(n, 5)
    assert_close(
        U @ (S[:, None] * (Vh @ probes)),
        A @ (B @ probes),
        what="U diag(S) Vh applied to random vectors, against A (B x)",
        hint="A B = Q_A (R_A R_B^T) Q_B^T: the SVD of the r x r core R_A R_B^T (not R_B^T R_A, nor B A: their singular "
        "values are not those of A B), then Q_A on the left and Q_B^T on the right",
        atol=1e-9,
    )


@pytest.mark.kata("factored_svd")
@pytest.mark.parametrize(("m", "r", "n"), [(7, 3, 5), (5, 2, 11)])
def test_factored_svd_is_the_svd_of_the_product(impl, m, r, n):
    A, B = randn(m, r), randn(r, n)
    U, S, Vh = impl.factored_svd(A, B)
    check_svd(A, B, U, S, Vh, r)
    assert_close(
        S,
        torch.linalg.svdvals(A @ B)[:r],
        what=f"the singular values of the {m} x {n} product A B",
    )
    dense_U, _, dense_Vh = torch.linalg.svd(A @ B, full_matrices=False)
    signs = (dense_U[:, :r] * U).sum(0).sign()  # singular vectors are defined up to a sign each
    assert_close(U * signs, dense_U[:, :r], what="the left singular vectors (up to their signs)", atol=1e-9)
    assert_close(Vh * signs[:, None], dense_Vh[:r], what="the right singular vectors (up to their signs)", atol=1e-9)


@pytest.mark.kata("factored_svd")
@pytest.mark.timeout(60)
def test_factored_svd_at_gpt2_scale_from_the_factors_alone(impl):
    A, B = randn(D_VOCAB, D_HEAD) / D_HEAD**0.5, randn(D_HEAD, D_MODEL * 3)  # m, r, n all different
    why = "QR (reduced, not complete) of A and of B^T, then the SVD of an r x r matrix: nothing m x n, m x m or n x n"
    U, S, Vh = at_scale(impl.factored_svd, (randn(7, 3), randn(3, 5)), (A, B), why)
    check_svd(A, B, U, S, Vh, D_HEAD)
    squared_norm = ((A.T @ A) * (B @ B.T)).sum()  # ||A B||_F^2 = trace(B^T A^T A B)
    assert_close(
        (S**2).sum(),
        squared_norm,
        what="the sum of the squared singular values, the squared Frobenius norm of A B",
    )


# --- factored_copying_score -------------------------------------------------------------------------


def ov_weights(d_vocab: int, d_model: int, d_head: int, dtype: torch.dtype = torch.float64):
    return (
        torch.randn(d_vocab, d_model, dtype=dtype),
        torch.randn(d_model, d_head, dtype=dtype) / d_model**0.5,
        torch.randn(d_head, d_model, dtype=dtype) / d_head**0.5,
        torch.randn(d_model, d_vocab, dtype=dtype) / d_model**0.5,
    )


def dense_copying_score(matrix: torch.Tensor) -> torch.Tensor:
    eigenvalues = torch.linalg.eigvals(matrix)
    return eigenvalues.real.sum() / eigenvalues.abs().sum()


@pytest.mark.kata("factored_copying_score")
def test_factored_copying_score_is_the_score_of_the_full_ov_circuit(impl):
    W_E, W_V, W_O, W_U = ov_weights(13, 7, 3)
    actual = impl.factored_copying_score(W_E, W_V, W_O, W_U)
    assert actual.shape == (), f"expected a 0-d tensor, got shape {list(actual.shape)}"
    assert_close(
        actual,
        dense_copying_score(W_E @ W_V @ W_O @ W_U),
        what="the copying score of the 13 x 13 full OV circuit",
        hint="the circuit is W_E W_V W_O W_U; its nonzero eigenvalues are those of W_O W_U W_E W_V, in that "
        "cyclic order (W_V W_O W_U W_E is the same cycle; W_E W_U or W_U W_E with W_V W_O in between is not)",
        atol=1e-9,
    )


@pytest.mark.kata("factored_copying_score")
def test_factored_copying_score_of_a_copying_and_a_suppressing_head(impl):
    # W_U = W_E^+ makes W_E W_V W_O W_U a projection scaled by +-2 when W_V W_O = +-2 I on d_head directions
    W_E = randn(13, 7)
    W_U = torch.linalg.pinv(W_E)
    W_V = torch.linalg.qr(randn(7, 3)).Q
    for sign in (1.0, -1.0):
        actual = impl.factored_copying_score(W_E, W_V, 2 * sign * W_V.T, W_U)
        assert_close(
            actual,
            torch.tensor(sign, dtype=torch.float64),
            what=f"the copying score of a head whose full OV circuit is {2 * sign:+g} times a projection",
        )


@pytest.mark.kata("factored_copying_score")
@pytest.mark.timeout(60)
def test_factored_copying_score_runs_at_gpt2_scale(impl):
    W_E, W_V, W_O, W_U = ov_weights(D_VOCAB, D_MODEL, D_HEAD, torch.float32)
    A, B = W_E @ W_V, W_O @ W_U  # the circuit's nonzero eigenvalues are those of B A (checked on small sizes)
    expected = dense_copying_score(B.double() @ A.double())
    why = "the d_vocab x d_vocab circuit (10 GB) is never needed: group the weights into two thin factors"
    actual = at_scale(impl.factored_copying_score, ov_weights(13, 7, 3), (W_E, W_V, W_O, W_U), why)
    assert_close(
        actual.double(),
        expected,
        what="the copying score of a GPT-2-sized full OV circuit",
        atol=1e-4,
        rtol=1e-4,
    )
