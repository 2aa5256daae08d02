"""Tests for katas/01_linear_algebra/linear_algebra.py.

Oracles: torch.linalg (solve, inv, qr, eig, eigvals, eigh, svd, svdvals, pinv, lstsq, matrix_power,
matrix_rank) and algebraic identities. Matrices are float64 so that tolerances stay tight, and they
are built with a known spectrum where the test needs one.
"""

import math
from collections.abc import Callable
from typing import TypeVar

import pytest
import torch
from torch import Tensor

from katakit.randomness import check_rng_contract
from katakit.testing import assert_close, calls, forbid

F64 = torch.float64
T = TypeVar("T")


def random_orthogonal(n: int) -> Tensor:
    """A random n x n orthogonal matrix (the Q of a QR decomposition)."""
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=F64))
    return q


def well_conditioned(n: int) -> Tensor:
    """A random invertible n x n matrix that is far from singular and far from orthogonal."""
    return torch.randn(n, n, dtype=F64) + 3 * torch.eye(n, dtype=F64)


def with_eigenvalues(eigenvalues: list[float]) -> tuple[Tensor, Tensor]:
    """A non-symmetric matrix A = P diag(eigenvalues) P^-1 and its eigenbasis P."""
    basis = well_conditioned(len(eigenvalues))
    return basis @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ torch.linalg.inv(basis), basis


def symmetric_with_eigenvalues(eigenvalues: list[float]) -> Tensor:
    """A symmetric matrix Q diag(eigenvalues) Q^T with a random orthogonal Q."""
    q = random_orthogonal(len(eigenvalues))
    return q @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ q.T


def with_default_device_elsewhere(call: Callable[[], T]) -> T:
    """Run `call` with CUDA as the default device: a helper tensor created without device= then lands on CUDA (an
    error without a GPU, a device mismatch with one), while device=matrix.device keeps it next to the input."""
    with torch.device("cuda"):
        try:
            return call()
        except NotImplementedError:  # a stub, not a device problem (NotImplementedError is a RuntimeError)
            raise
        except (AssertionError, RuntimeError) as error:
            raise AssertionError(
                f"a tensor created without device= failed ({type(error).__name__}: {error}). Create helper tensors "
                "(the identity, the start vector) on the device of the input, device=matrix.device, so the code also "
                "runs on a GPU."
            ) from error


def sign_aligned(v: Tensor, reference: Tensor) -> Tensor:
    """`v` times +1 or -1, whichever points it the same way as `reference` (eigenvectors have no sign)."""
    return v if torch.dot(v, reference) >= 0 else -v


# --- coordinates_in_basis ---------------------------------------------------------------------------


@pytest.mark.kata("coordinates_in_basis")
def test_coordinates_rebuild_the_vector(impl):
    basis = torch.randn(5, 5, dtype=F64)
    v = torch.randn(5, dtype=F64)
    c = impl.coordinates_in_basis(basis, v)
    assert_close(basis @ c, v, what="basis @ coordinates", hint="solving with basis.T (basis vectors as rows)?")


@pytest.mark.kata("coordinates_in_basis")
def test_a_basis_vector_has_one_hot_coordinates(impl):
    basis = torch.randn(5, 5, dtype=F64)
    assert_close(
        impl.coordinates_in_basis(basis, basis[:, 2]),
        torch.eye(5, dtype=F64)[2],
        what="the coordinates of the third basis vector (column 2)",
    )


# --- change_of_basis_matrix -------------------------------------------------------------------------


@pytest.mark.kata("change_of_basis_matrix")
def test_from_the_standard_basis_the_change_is_the_inverse(impl):
    identity, basis = torch.eye(5, dtype=F64), torch.randn(5, 5, dtype=F64)
    assert_close(
        impl.change_of_basis_matrix(identity, basis),
        torch.linalg.inv(basis),
        what="change_of_basis_matrix(standard basis, B)",
        hint="from standard coordinates to B-coordinates is B^-1: is your product the wrong way round?",
    )
    assert_close(
        impl.change_of_basis_matrix(basis, identity),
        basis,
        what="change_of_basis_matrix(A, standard basis)",
        hint="A-coordinates become standard coordinates by multiplying with A itself",
    )


@pytest.mark.kata("change_of_basis_matrix")
def test_change_of_basis_describes_the_same_vectors(impl):
    basis_a, basis_b = torch.randn(5, 5, dtype=F64), torch.randn(5, 5, dtype=F64)
    coords_a = torch.randn(5, 3, dtype=F64)  # three vectors, one per column, in A-coordinates
    coords_b = impl.change_of_basis_matrix(basis_a, basis_b) @ coords_a
    assert_close(
        basis_b @ coords_b,
        basis_a @ coords_a,
        what="the vectors rebuilt from their B-coordinates",
        hint="T goes from A to B: T = B^-1 A, not A B^-1 (and bases are columns, not rows)",
    )


# --- map_in_basis -----------------------------------------------------------------------------------


@pytest.mark.kata("map_in_basis")
def test_similar_matrices_share_eigenvalues_trace_and_determinant(impl):
    matrix = symmetric_with_eigenvalues([4.0, 2.0, -1.0, 0.5, -3.0])
    new_matrix = impl.map_in_basis(matrix, well_conditioned(5))
    assert_close(
        torch.linalg.eigvals(new_matrix).real.sort().values,
        torch.linalg.eigvalsh(matrix),
        what="the sorted eigenvalues of the map in the new basis",
        hint="a change of basis conjugates: P^-1 M P. A product like M P alone changes the eigenvalues",
    )
    assert_close(torch.trace(new_matrix), torch.trace(matrix), what="the trace")
    assert_close(torch.linalg.det(new_matrix), torch.linalg.det(matrix), what="the determinant")


@pytest.mark.kata("map_in_basis")
def test_map_in_basis_acts_on_coordinates(impl):
    matrix, basis = torch.randn(5, 5, dtype=F64), well_conditioned(5)
    coords = torch.randn(5, 3, dtype=F64)
    new_matrix = impl.map_in_basis(matrix, basis)
    assert_close(
        basis @ (new_matrix @ coords),
        matrix @ (basis @ coords),
        what="the mapped vectors, computed in the new basis and brought back to standard coordinates",
        hint="the map in the new basis is P^-1 M P, not P M P^-1",
    )


@pytest.mark.kata("map_in_basis")
def test_an_eigenbasis_makes_the_map_diagonal(impl):
    eigenvalues = [2.0, -1.0, 0.5, 3.0, -2.5]
    matrix, eigenbasis = with_eigenvalues(eigenvalues)
    assert_close(
        impl.map_in_basis(matrix, eigenbasis),
        torch.diag(torch.tensor(eigenvalues, dtype=F64)),
        what="the map expressed in its own eigenbasis",
    )


# --- has_orthonormal_columns ------------------------------------------------------------------------


@pytest.mark.kata("has_orthonormal_columns")
def test_a_tall_matrix_with_orthonormal_columns_is_accepted(impl):
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    assert impl.has_orthonormal_columns(q) is True, (
        "a [7, 3] Q from torch.linalg.qr has orthonormal columns but you said no. Check Q^T Q (k x k), "
        "not Q Q^T (n x n): the rows of a tall matrix are never orthonormal."
    )


@pytest.mark.kata("has_orthonormal_columns")
def test_orthogonal_columns_of_the_wrong_length_are_rejected(impl):
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    stretched = q * torch.tensor([1.0, 2.0, 1.0], dtype=F64)
    assert impl.has_orthonormal_columns(stretched) is False, (
        "column 1 has length 2, yet you said the columns are orthonormal. Check the diagonal of Q^T Q too "
        "(orthoNORMAL: perpendicular AND of length 1)."
    )


@pytest.mark.kata("has_orthonormal_columns")
def test_unit_columns_that_are_not_perpendicular_are_rejected(impl):
    columns = torch.randn(7, 3, dtype=F64)
    unit = columns / torch.linalg.vector_norm(columns, dim=0)
    assert impl.has_orthonormal_columns(unit) is False, (
        "these columns have length 1 but are not perpendicular, yet you said yes. Check the off-diagonal "
        "entries of Q^T Q (the dot products between different columns), not only the lengths."
    )


@pytest.mark.kata("has_orthonormal_columns")
def test_a_wide_matrix_with_orthonormal_rows_is_rejected(impl):
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    assert impl.has_orthonormal_columns(q.T) is False, (
        "a [3, 7] matrix with orthonormal ROWS: 7 columns in 3 dimensions cannot be orthonormal. "
        "Did you test the rows (Q Q^T) instead of the columns (Q^T Q)?"
    )


@pytest.mark.kata("has_orthonormal_columns")
def test_orthonormality_is_checked_up_to_the_tolerance(impl):
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    nudged = q + 1e-9 * torch.randn(7, 3, dtype=F64)
    assert impl.has_orthonormal_columns(nudged) is True, (
        "off by 1e-9 should pass with the default atol=1e-6: floating point is never exact, do not use =="
    )
    assert impl.has_orthonormal_columns(nudged, atol=1e-12) is False, (
        "off by 1e-9 should fail with atol=1e-12: use the `atol` argument (and rtol=0)"
    )
    lengthened = q * (1 + 1e-7)
    assert impl.has_orthonormal_columns(lengthened, atol=1e-12) is False, (
        "columns of length 1 + 1e-7 should fail with atol=1e-12: pass rtol=0 to torch.allclose, whose default "
        "rtol=1e-5 would add a relative tolerance on the diagonal"
    )
    q32, _ = torch.linalg.qr(torch.randn(7, 3))
    assert impl.has_orthonormal_columns(q32) is True, "a float32 Q from torch.linalg.qr should pass with atol=1e-6"


@pytest.mark.kata("has_orthonormal_columns")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64], ids=str)
def test_orthonormality_in_any_float_dtype(impl, dtype):
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    # Rounding Q to `dtype` and the product Q^T Q each cost a few eps of the dtype: 10 eps is plenty, while the
    # stretched column below is off by 1.5^2 - 1 = 1.25 > 10 eps of every dtype (bfloat16: 0.078).
    atol = 10 * torch.finfo(dtype).eps
    assert impl.has_orthonormal_columns(q.to(dtype), atol=atol) is True, (
        f"a {dtype} Q with orthonormal columns should pass with atol={atol:g}: build the identity in the dtype of "
        "`matrix` (torch.eye(k, dtype=matrix.dtype, ...))"
    )
    stretched = q * torch.tensor([1.0, 1.5, 1.0], dtype=F64)
    assert impl.has_orthonormal_columns(stretched.to(dtype), atol=atol) is False, (
        f"in {dtype}, a column of length 1.5 should be rejected with atol={atol:g}"
    )


@pytest.mark.kata("has_orthonormal_columns")
def test_orthonormality_on_any_device(impl):
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    assert with_default_device_elsewhere(lambda: impl.has_orthonormal_columns(q)) is True


@pytest.mark.kata("has_orthonormal_columns")
def test_the_tolerance_applies_entry_by_entry(impl):
    # Columns whose Q^T Q is I + 8e-4 off the diagonal: every entry is within atol=1e-3 of the identity,
    # but the whole difference is not (Frobenius norm sqrt(6) * 8e-4 = 2e-3, spectral norm 1.6e-3).
    off = 8e-4
    gram = (1 - off) * torch.eye(3, dtype=F64) + off * torch.ones(3, 3, dtype=F64)
    q, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    matrix = q @ torch.linalg.cholesky(gram).T  # matrix^T matrix = L L^T = gram
    assert impl.has_orthonormal_columns(matrix, atol=1e-3) is True, (
        "every entry of Q^T Q is within atol=1e-3 of the identity (the dot products are 8e-4), so the answer is "
        "yes: compare entry by entry (torch.allclose, or the largest absolute difference), not the norm of Q^T Q - I"
    )
    assert impl.has_orthonormal_columns(matrix, atol=5e-4) is False, (
        "the dot products between columns are 8e-4 > atol=5e-4: the answer is no. Use the `atol` argument."
    )


# --- gram_schmidt -----------------------------------------------------------------------------------

QR = (
    torch.linalg.qr,
    torch.qr,
    torch.Tensor.qr,
    torch.geqrf,
    torch.Tensor.geqrf,
    torch.linalg.householder_product,
    torch.orgqr,
)


@pytest.mark.kata("gram_schmidt")
def test_gram_schmidt_spans_the_same_space(impl):
    vectors = torch.randn(7, 3, dtype=F64)
    q = impl.gram_schmidt(vectors)
    # The least-squares fit of the input columns by the output columns: exact when they span the same space,
    # whether or not the output columns are orthonormal (the next test checks that).
    fit = q @ torch.linalg.lstsq(q, vectors, driver="gelsd").solution
    assert_close(
        fit,
        vectors,
        what="the input columns fitted by the output columns (least squares)",
        hint="each output column must be built from the input columns (input column j minus projections)",
    )


@pytest.mark.kata("gram_schmidt")
def test_gram_schmidt_columns_are_orthonormal(impl):
    q = impl.gram_schmidt(torch.randn(7, 3, dtype=F64))
    assert_close(
        q.T @ q,
        torch.eye(3, dtype=F64),
        what="Q^T Q of the Gram-Schmidt output",
        hint="off the diagonal: subtract projections onto the already orthonormalised columns, not the "
        "original ones; on the diagonal: normalise every column to length 1",
    )


@pytest.mark.kata("gram_schmidt")
def test_gram_schmidt_matches_qr_up_to_the_signs(impl):
    vectors = torch.randn(7, 3, dtype=F64)
    q, r = torch.linalg.qr(vectors)
    with forbid(*QR, reason="build the basis by Gram-Schmidt, column by column, not with a QR routine"):
        result = impl.gram_schmidt(vectors)
    assert_close(
        result,
        q * torch.sign(torch.diagonal(r)),
        what="the Gram-Schmidt basis (QR's Q with diag(R) > 0)",
        hint="process the columns left to right, and keep each one pointing along its input column",
    )


# --- gram_matrix_in_basis ---------------------------------------------------------------------------


@pytest.mark.kata("gram_matrix_in_basis")
def test_gram_matrix_in_a_general_basis(impl):
    basis, vectors = well_conditioned(5), torch.randn(3, 5, dtype=F64)
    # c_i = P^-1 x_i, so c_i . c_j = x_i^T (P P^T)^-1 x_j
    expected = vectors @ torch.linalg.inv(basis @ basis.T) @ vectors.T
    assert_close(
        impl.gram_matrix_in_basis(basis, vectors),
        expected,
        what="the dot products of the coordinates",
        hint="coordinates solve basis @ c = x (do not multiply by the basis); vectors are rows, basis vectors columns",
    )


@pytest.mark.kata("gram_matrix_in_basis")
def test_an_orthonormal_basis_preserves_dot_products_and_norms(impl):
    rotation, vectors = random_orthogonal(5), torch.randn(3, 5, dtype=F64)
    gram = impl.gram_matrix_in_basis(rotation, vectors)
    assert_close(
        gram,
        vectors @ vectors.T,
        what="the Gram matrix in an orthonormal basis",
    )
    assert_close(torch.diagonal(gram), torch.linalg.vector_norm(vectors, dim=1) ** 2, what="the squared norms")


@pytest.mark.kata("gram_matrix_in_basis")
def test_a_general_basis_changes_dot_products(impl):
    basis = well_conditioned(5) @ torch.diag(torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0], dtype=F64))
    vectors = torch.randn(3, 5, dtype=F64)
    gram = impl.gram_matrix_in_basis(basis, vectors)
    assert not torch.allclose(gram, vectors @ vectors.T, atol=1e-3), (
        "in a non-orthogonal basis the coordinates' dot products should differ from the vectors' own: "
        "did you forget to change to the basis first?"
    )


# --- power_iteration --------------------------------------------------------------------------------


EIGENSOLVERS = (
    torch.linalg.eigh,
    torch.linalg.eigvalsh,
    torch.linalg.eig,
    torch.linalg.eigvals,
    torch.linalg.svd,
    torch.linalg.svdvals,
    torch.svd,
    torch.Tensor.svd,
    torch.lobpcg,
)


def check_dominant_eigenpair(impl, matrix: Tensor, num_iterations: int, hint: str = "") -> None:
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    dominant = torch.argmax(eigenvalues.abs())
    with forbid(*EIGENSOLVERS, reason="find the eigenpair by power iteration: multiply and normalise, repeatedly"):
        value, vector = impl.power_iteration(matrix, num_iterations)
    assert_close(
        value,
        eigenvalues[dominant],
        what="the dominant eigenvalue",
        hint=hint or "use the Rayleigh quotient v . (M v) of the unit vector: the norm of M v loses the sign",
    )
    assert_close(
        sign_aligned(vector, eigenvectors[:, dominant]),
        eigenvectors[:, dominant],
        what="the dominant eigenvector (sign aligned)",
        hint=hint or "normalise after every step, and return the vector with length 1",
    )


@pytest.mark.kata("power_iteration")
def test_power_iteration_finds_the_dominant_eigenpair(impl):
    check_dominant_eigenpair(impl, symmetric_with_eigenvalues([1.0, 5.0, -2.0, 0.5, 2.5, -0.3, 0.1]), 200)


@pytest.mark.kata("power_iteration")
def test_power_iteration_keeps_the_sign_of_a_negative_eigenvalue(impl):
    check_dominant_eigenpair(impl, symmetric_with_eigenvalues([1.0, -6.0, 2.0, 0.5, 3.0, -0.3, 0.1]), 200)


@pytest.mark.kata("power_iteration")
def test_power_iteration_does_not_overflow_on_large_eigenvalues(impl):
    matrix = symmetric_with_eigenvalues([1.0, -6.0, 2.0, 0.5, 3.0, -0.3, 0.1]) * 1000
    value, vector = impl.power_iteration(matrix, 300)
    assert torch.isfinite(vector).all() and torch.isfinite(value), (
        "6000^300 overflows float64: normalise the vector after EVERY multiplication, not only at the end"
    )
    check_dominant_eigenpair(impl, matrix, 300)


@pytest.mark.kata("power_iteration")
def test_power_iteration_returns_a_unit_vector_even_without_iterations(impl):
    matrix = symmetric_with_eigenvalues([1.0, 5.0, -2.0, 0.5, 2.5])
    _, vector = impl.power_iteration(matrix, 0)
    assert_close(
        torch.linalg.vector_norm(vector),
        torch.tensor(1.0, dtype=F64),
        what="the length of the vector after num_iterations=0",
        hint="the eigenvector is always returned with length 1: normalise the random start vector too",
    )


@pytest.mark.kata("power_iteration")
def test_power_iteration_works_on_any_device(impl):
    matrix = symmetric_with_eigenvalues([1.0, 5.0, -2.0, 0.5, 2.5])
    with_default_device_elsewhere(lambda: impl.power_iteration(matrix, 3))


@pytest.mark.kata("power_iteration")
def test_power_iteration_starts_from_a_random_vector(impl):
    # The dominant eigenvector (0, 1, -1, 0, 0) / sqrt(2) is orthogonal to the all-ones vector and to e_0, e_4:
    # started there, the iteration only finds it through round-off, which grows by 5 / 4.5 per step:
    # from 1e-16 to about 1e-5 in 240 steps. From a random start the error shrinks by 0.9 per step: 1e-11.
    dominant = torch.tensor([0.0, 1.0, -1.0, 0.0, 0.0], dtype=F64) / 2**0.5
    basis, _ = torch.linalg.qr(torch.cat([dominant[:, None], torch.randn(5, 4, dtype=F64)], dim=1))
    matrix = basis @ torch.diag(torch.tensor([5.0, 4.5, 1.0, -0.5, 0.2], dtype=F64)) @ basis.T
    hint = "start from a RANDOM vector (torch.randn): a fixed start (ones, e_0) misses an orthogonal eigenvector"
    check_dominant_eigenpair(impl, matrix, 240, hint=hint)


# --- diagonalize ------------------------------------------------------------------------------------

UNSORTED_EIGENVALUES = [2.0, -3.0, 0.5, 4.0, -1.0]


@pytest.mark.kata("diagonalize")
def test_diagonalize_sorts_the_eigenvalues_descending(impl):
    matrix, _ = with_eigenvalues(UNSORTED_EIGENVALUES)
    eigenvalues, _ = impl.diagonalize(matrix)
    assert_close(
        eigenvalues,
        torch.tensor(sorted(UNSORTED_EIGENVALUES, reverse=True), dtype=F64),
        what="the eigenvalues",
        hint="torch.linalg.eig returns them unsorted (and complex): take .real and sort descending",
    )


@pytest.mark.kata("diagonalize")
def test_diagonalize_pairs_each_eigenvalue_with_a_unit_eigenvector(impl):
    matrix, _ = with_eigenvalues(UNSORTED_EIGENVALUES)
    eigenvalues, eigenvectors = impl.diagonalize(matrix)
    assert_close(
        matrix @ eigenvectors,
        eigenvectors * eigenvalues,
        what="A V (column i should be lambda_i v_i)",
        hint="reorder the eigenvector COLUMNS with the same permutation as the eigenvalues",
    )
    assert_close(
        torch.linalg.vector_norm(eigenvectors, dim=0), torch.ones(5, dtype=F64), what="the eigenvector lengths"
    )


@pytest.mark.kata("diagonalize")
def test_diagonalize_rebuilds_the_matrix(impl):
    matrix, _ = with_eigenvalues(UNSORTED_EIGENVALUES)
    eigenvalues, eigenvectors = impl.diagonalize(matrix)
    assert_close(
        eigenvectors @ torch.diag(eigenvalues) @ torch.linalg.inv(eigenvectors),
        matrix,
        what="V diag(lambda) V^-1",
    )


# --- matrix_power_via_eigen -------------------------------------------------------------------------

MATRIX_POWER = (torch.linalg.matrix_power, torch.matrix_power, torch.Tensor.matrix_power)


@pytest.mark.kata("matrix_power_via_eigen")
@pytest.mark.parametrize("k", [0, 1, 3, 6, -2])
def test_matrix_power_via_eigen_matches_matrix_power(impl, k):
    matrix, _ = with_eigenvalues([1.5, -2.0, 0.5, 3.0, -0.8])
    expected = torch.linalg.matrix_power(matrix, k)
    with forbid(*MATRIX_POWER, reason="go through the eigendecomposition A = V diag(lambda) V^-1"):
        result = impl.matrix_power_via_eigen(matrix, k)
    assert_close(
        result,
        expected,
        what=f"A^{k}",
        hint="V diag(lambda ** k) V^-1: powers of the eigenvalues (not k * lambda), and V^-1, not V^T",
    )


@pytest.mark.kata("matrix_power_via_eigen")
def test_matrix_power_via_eigen_uses_the_eigendecomposition(impl):
    matrix, _ = with_eigenvalues([1.5, -2.0, 0.5, 3.0, -0.8])
    impl.matrix_power_via_eigen(matrix, 2)
    called = calls(impl.matrix_power_via_eigen)
    assert any(name.split(".")[-1] in ("diagonalize", "eig") for name in called), (
        f"matrix_power_via_eigen calls {sorted(called)}: it should go through the eigendecomposition, with your "
        "diagonalize (or torch.linalg.eig), not multiply A by itself k times"
    )


# --- symmetric_eigendecomposition -------------------------------------------------------------------


def random_symmetric(n: int) -> Tensor:
    x = torch.randn(n, n, dtype=F64)
    return x + x.T


@pytest.mark.kata("symmetric_eigendecomposition")
def test_symmetric_eigenvalues_are_real_and_descending(impl):
    matrix = random_symmetric(6)
    eigenvalues, _ = impl.symmetric_eigendecomposition(matrix)
    assert_close(
        eigenvalues,
        torch.linalg.eigvalsh(matrix).flip(0),
        what="the eigenvalues",
        hint="torch.linalg.eigh returns them in ASCENDING order: reverse them",
    )


@pytest.mark.kata("symmetric_eigendecomposition")
def test_symmetric_eigenvectors_are_orthonormal_eigenvectors(impl):
    matrix = random_symmetric(6)
    eigenvalues, q = impl.symmetric_eigendecomposition(matrix)
    assert_close(q.T @ q, torch.eye(6, dtype=F64), what="Q^T Q")
    assert_close(
        matrix @ q,
        q * eigenvalues,
        what="S Q (column i should be lambda_i q_i)",
        hint="reverse the eigenvector COLUMNS (dim 1) together with the eigenvalues, not the rows",
    )


@pytest.mark.kata("symmetric_eigendecomposition")
def test_symmetric_eigendecomposition_rebuilds_the_matrix(impl):
    matrix = random_symmetric(6)
    eigenvalues, q = impl.symmetric_eigendecomposition(matrix)
    assert_close(q @ torch.diag(eigenvalues) @ q.T, matrix, what="Q diag(lambda) Q^T")


# --- svd_via_eigh -----------------------------------------------------------------------------------


@pytest.mark.kata("svd_via_eigh")
def test_svd_via_eigh_singular_values(impl):
    matrix = torch.randn(7, 3, dtype=F64)
    _, singular_values, _ = impl.svd_via_eigh(matrix)
    assert_close(
        singular_values,
        torch.linalg.svdvals(matrix),
        what="the singular values",
        hint="the eigenvalues of A^T A are the SQUARED singular values, and they must come in descending order",
    )


@pytest.mark.kata("svd_via_eigh")
def test_svd_via_eigh_with_singular_values_below_one(impl):
    u, _ = torch.linalg.qr(torch.randn(7, 3, dtype=F64))
    spectrum = torch.tensor([2.0, 0.5, 0.05], dtype=F64)
    matrix = u @ torch.diag(spectrum) @ random_orthogonal(3).T
    # Squaring costs accuracy: eigh(A^T A) is off by ~eps * 4, so s = 0.05 by ~eps * 4 / (2 * 0.05), still 1e-14.
    _, singular_values, _ = impl.svd_via_eigh(matrix)
    assert_close(
        singular_values,
        spectrum,
        what="the singular values",
        hint="the eigenvalues of A^T A are the SQUARED singular values, and they must come in descending order",
    )


@pytest.mark.kata("svd_via_eigh")
def test_svd_via_eigh_singular_vectors_are_orthonormal(impl):
    matrix = torch.randn(7, 3, dtype=F64)
    u, _, v = impl.svd_via_eigh(matrix)
    assert_close(v.T @ v, torch.eye(3, dtype=F64), what="V^T V")
    assert_close(u.T @ u, torch.eye(3, dtype=F64), what="U^T U", hint="divide column i of A V by s_i")


@pytest.mark.kata("svd_via_eigh")
def test_svd_via_eigh_rebuilds_the_matrix(impl):
    matrix = torch.randn(7, 3, dtype=F64)
    u, s, v = impl.svd_via_eigh(matrix)
    assert_close(
        u @ torch.diag(s) @ v.T,
        matrix,
        what="U diag(S) V^T",
        hint="return V (eigenvectors of A^T A as columns), and U = A V / S, column by column",
    )


@pytest.mark.kata("svd_via_eigh")
def test_svd_via_eigh_does_not_call_torch_svd(impl):
    matrix = torch.randn(7, 3, dtype=F64)
    expected = torch.linalg.svdvals(matrix)
    svds = (torch.linalg.svd, torch.linalg.svdvals, torch.svd, torch.Tensor.svd, torch.svd_lowrank)
    with forbid(*svds, reason="build the SVD from torch.linalg.eigh(A^T A)"):
        _, singular_values, _ = impl.svd_via_eigh(matrix)
    assert_close(singular_values, expected, what="the singular values")


# --- low_rank_approximation -------------------------------------------------------------------------

SHAPES = [(7, 3), (4, 6)]


@pytest.mark.kata("low_rank_approximation")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_full_rank_approximation_is_the_matrix(impl, shape):
    matrix = torch.randn(*shape, dtype=F64)
    assert_close(
        impl.low_rank_approximation(matrix, min(shape)),
        matrix,
        what="the rank-min(m, n) approximation",
        hint="with every singular value kept, U diag(S) Vh must give A back",
    )


@pytest.mark.kata("low_rank_approximation")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_rank_zero_approximation_is_zero(impl, shape):
    assert_close(
        impl.low_rank_approximation(torch.randn(*shape, dtype=F64), 0),
        torch.zeros(*shape, dtype=F64),
        what="the rank-0 approximation",
        hint="k = 0 keeps no singular value: the sum of no rank-1 pieces is the zero matrix",
    )


@pytest.mark.kata("low_rank_approximation")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("k", [1, 2])
def test_low_rank_error_is_eckart_young(impl, shape, k):
    matrix = torch.randn(*shape, dtype=F64)
    approximation = impl.low_rank_approximation(matrix, k)
    tail = torch.linalg.svdvals(matrix)[k:]
    assert_close(
        torch.linalg.matrix_norm(matrix - approximation),
        torch.sqrt(torch.sum(tail**2)),
        what=f"the Frobenius error of the rank-{k} approximation",
        hint="keep the k LARGEST singular values with their singular vectors: columns of U, rows of Vh",
    )


@pytest.mark.kata("low_rank_approximation")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_low_rank_approximation_has_rank_k(impl, shape):
    matrix = torch.randn(*shape, dtype=F64)
    for k in (1, 2):
        rank = torch.linalg.matrix_rank(impl.low_rank_approximation(matrix, k)).item()
        assert rank == k, f"the rank-{k} approximation has rank {rank}: keep exactly k singular values (off by one?)"


# --- rank_k_approximation_error ---------------------------------------------------------------------


@pytest.mark.kata("rank_k_approximation_error")
@pytest.mark.parametrize("k", [0, 1, 3, 4])
def test_rank_k_error_matches_the_truncated_svd(impl, k):
    matrix = torch.randn(4, 6, dtype=F64)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    truncated = u[:, :k] @ torch.diag(s[:k]) @ vh[:k]
    assert_close(
        impl.rank_k_approximation_error(matrix, k),
        torch.linalg.matrix_norm(matrix - truncated),
        what=f"the rank-{k} error",
        hint="sqrt of the sum of squares of the DROPPED singular values s[k], s[k+1], ...: mind the sqrt and "
        "the first dropped index",
    )


# --- pseudo_inverse ---------------------------------------------------------------------------------


def rank_deficient(m: int, n: int, rank: int) -> Tensor:
    return torch.randn(m, rank, dtype=F64) @ torch.randn(rank, n, dtype=F64)


PINV = (torch.linalg.pinv, torch.pinverse, torch.Tensor.pinverse, torch.linalg.lstsq)


@pytest.mark.kata("pseudo_inverse")
@pytest.mark.parametrize("shape", [(7, 3), (3, 5)], ids=str)
def test_pseudo_inverse_of_a_full_rank_matrix(impl, shape):
    matrix = torch.randn(*shape, dtype=F64)
    expected = torch.linalg.pinv(matrix)
    with forbid(*PINV, reason="build A+ from the SVD of A"):
        result = impl.pseudo_inverse(matrix)
    assert_close(
        result,
        expected,
        what="the pseudo-inverse",
        hint="A+ = V diag(1/S) U^T: invert the singular values, transpose the roles of U and V",
    )


def with_singular_values_4_1_half_0() -> Tensor:
    """A [5, 4] matrix whose SVD is exact in floating point: a signed permutation times diag(4, 1, 0.5, 0)."""
    matrix = torch.zeros(5, 4, dtype=F64)
    matrix[1, 2], matrix[3, 0], matrix[0, 1] = 4.0, -1.0, 0.5  # column 3 stays zero
    return matrix


@pytest.mark.kata("pseudo_inverse")
def test_pseudo_inverse_leaves_an_exactly_zero_singular_value_at_zero(impl):
    matrix = with_singular_values_4_1_half_0()
    result = impl.pseudo_inverse(matrix)
    assert torch.isfinite(result).all(), (
        "the pseudo-inverse of a matrix with a singular value exactly 0 has inf or nan entries.\nLikely mistake: "
        "1 / 0 is inf, and 0 * inf is nan: invert only the singular values above the threshold, and select them "
        "(torch.where) rather than multiply by a 0/1 mask"
    )
    assert_close(
        result,
        torch.linalg.pinv(matrix),
        what="the pseudo-inverse of a matrix with singular values 4, 1, 0.5 and 0",
        hint="invert the singular values above the threshold and leave the others at exactly 0",
    )


@pytest.mark.kata("pseudo_inverse")
def test_pseudo_inverse_of_a_rank_deficient_matrix(impl):
    matrix = rank_deficient(5, 4, rank=2)
    assert_close(
        impl.pseudo_inverse(matrix),
        torch.linalg.pinv(matrix, rtol=1e-10),
        what="the pseudo-inverse of a rank-2 [5, 4] matrix",
        hint="singular values at most rtol * the largest are zero: leave them at zero instead of inverting them",
    )


@pytest.mark.kata("pseudo_inverse")
@pytest.mark.parametrize("scale", [1e-6, 1e8])
def test_the_zero_threshold_is_relative_to_the_largest_singular_value(impl, scale):
    matrix = rank_deficient(5, 4, rank=2)
    assert_close(
        impl.pseudo_inverse(scale * matrix),
        torch.linalg.pinv(matrix, rtol=1e-10) / scale,
        what=f"the pseudo-inverse of a rank-2 matrix scaled by {scale:g}",
        hint="(cA)+ = A+ / c: compare the singular values with rtol * (largest singular value), not with rtol alone",
    )


@pytest.mark.kata("pseudo_inverse")
def test_a_singular_value_at_the_threshold_counts_as_zero(impl):
    matrix = with_singular_values_4_1_half_0()
    # rtol = 0.2: the threshold is 0.8, so 4 and 1 are inverted, 0.5 and 0 are not.
    expected = torch.zeros(4, 5, dtype=F64)
    expected[2, 1], expected[0, 3] = 1 / 4.0, 1 / -1.0
    assert_close(
        impl.pseudo_inverse(matrix, rtol=0.2),
        expected,
        what="pseudo_inverse(A, rtol=0.2) with singular values 4, 1, 0.5, 0",
        hint="use the `rtol` argument: singular values above rtol * (the largest) are inverted, the others are 0",
    )
    # rtol = 0.25: 1 is exactly rtol * 4, at most the threshold, so it counts as zero, and so does 0.5.
    expected[0, 3] = 0.0
    assert_close(
        impl.pseudo_inverse(matrix, rtol=0.25),
        expected,
        what="pseudo_inverse(A, rtol=0.25) with singular values 4, 1, 0.5, 0",
        hint="count a singular value as zero when it is AT MOST rtol * the largest (<=, so keep only s > rtol * max)",
    )


@pytest.mark.kata("pseudo_inverse")
def test_pseudo_inverse_satisfies_the_moore_penrose_conditions(impl):
    matrix = rank_deficient(5, 4, rank=2)
    plus = impl.pseudo_inverse(matrix)
    assert_close(matrix @ plus @ matrix, matrix, what="A A+ A")
    assert_close(plus @ matrix @ plus, plus, what="A+ A A+")
    assert_close(matrix @ plus, (matrix @ plus).T, what="A A+ (should be symmetric)")
    assert_close(plus @ matrix, (plus @ matrix).T, what="A+ A (should be symmetric)")


# --- qk_circuit -------------------------------------------------------------------------------------

D_MODEL, D_HEAD = 7, 3


@pytest.mark.kata("qk_circuit")
def test_qk_circuit_gives_the_attention_scores(impl):
    W_Q, W_K = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64)
    queries, keys = torch.randn(5, D_MODEL, dtype=F64), torch.randn(4, D_MODEL, dtype=F64)
    assert_close(
        queries @ impl.qk_circuit(W_Q, W_K) @ keys.T,
        (queries @ W_Q) @ (keys @ W_K).T,
        what="x_q (QK circuit) x_k^T for 5 queries and 4 keys",
        hint="queries on the left, keys on the right: W_Q W_K^T, not W_K W_Q^T",
    )


@pytest.mark.kata("qk_circuit")
def test_qk_circuit_has_rank_d_head(impl):
    W_Q, W_K = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64)
    rank = torch.linalg.matrix_rank(impl.qk_circuit(W_Q, W_K)).item()
    assert rank == D_HEAD, f"a [{D_MODEL}, {D_MODEL}] product through a {D_HEAD}-dim head has rank {D_HEAD}, got {rank}"


@pytest.mark.kata("qk_circuit")
def test_rotating_the_head_space_changes_the_factors_but_not_the_circuit(impl):
    W_Q, W_K = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64)
    rotation = random_orthogonal(D_HEAD)
    circuit = impl.qk_circuit(W_Q, W_K)
    assert not torch.allclose(W_Q @ rotation, W_Q), "sanity: the rotation should change W_Q"
    assert not torch.allclose(W_K @ rotation, W_K), "sanity: the rotation should change W_K"
    assert_close(
        impl.qk_circuit(W_Q @ rotation, W_K @ rotation),
        circuit,
        what="the QK circuit after rotating the head space by R",
    )


@pytest.mark.kata("qk_circuit")
def test_a_non_orthogonal_map_of_both_factors_changes_the_circuit(impl):
    W_Q, W_K = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64)
    stretch = torch.diag(torch.tensor([2.0, 1.0, 0.5], dtype=F64))
    assert not torch.allclose(impl.qk_circuit(W_Q @ stretch, W_K @ stretch), impl.qk_circuit(W_Q, W_K)), (
        "mapping both W_Q and W_K by a non-orthogonal M multiplies the circuit's middle by M M^T != I: "
        "it should change the circuit"
    )


# --- change_head_basis ------------------------------------------------------------------------------


@pytest.mark.kata("change_head_basis")
def test_change_head_basis_maps_the_queries_by_M(impl):
    W_Q, W_K, M = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64), well_conditioned(3)
    new_W_Q, _ = impl.change_head_basis(W_Q, W_K, M)
    assert_close(new_W_Q, W_Q @ M, what="the new W_Q", hint="new W_Q = W_Q M, M on the right (head side)")


@pytest.mark.kata("change_head_basis")
def test_an_orthogonal_change_maps_the_keys_by_M_too(impl):
    W_Q, W_K, R = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64), random_orthogonal(3)
    _, new_W_K = impl.change_head_basis(W_Q, W_K, R)
    assert_close(new_W_K, W_K @ R, what="the new W_K for an orthogonal M", hint="for orthogonal R, R^-T = R")


@pytest.mark.kata("change_head_basis")
def test_change_head_basis_keeps_the_qk_circuit(impl):
    W_Q, W_K = torch.randn(D_MODEL, D_HEAD, dtype=F64), torch.randn(D_MODEL, D_HEAD, dtype=F64)
    new_W_Q, new_W_K = impl.change_head_basis(W_Q, W_K, well_conditioned(D_HEAD))
    assert_close(
        new_W_Q @ new_W_K.T,
        W_Q @ W_K.T,
        what="the QK circuit of the new factors",
        hint="for a general M the keys need M^-T = (M^-1)^T: mapping them by M (or by M^-1) too changes it",
    )


# --- a map between two spaces ------------------------------------------------------------------------


@pytest.mark.kata("map_between_spaces")
def test_map_between_spaces_with_the_standard_basis_on_one_side(impl):
    matrix, basis_out = torch.randn(2, 4, dtype=F64), torch.randn(2, 2, dtype=F64)
    assert_close(
        impl.map_between_spaces(matrix, torch.eye(4, dtype=F64), basis_out),
        torch.linalg.solve(basis_out, matrix),
        what="the map with the input space's standard basis kept",
        hint="the output coordinates are B_out^-1 (M x): solve with basis_out, do not multiply by it or leave it out",
    )


@pytest.mark.kata("map_between_spaces")
def test_map_between_spaces_takes_input_coordinates_to_output_coordinates(impl):
    m, n = 3, 5  # two spaces of different dimensions: a mix-up of the two bases cannot even multiply
    matrix = torch.randn(m, n, dtype=F64)
    basis_in, basis_out = torch.randn(n, n, dtype=F64), torch.randn(m, m, dtype=F64)
    coords_in = torch.randn(n, 4, dtype=F64)
    mapped = impl.map_between_spaces(matrix, basis_in, basis_out)
    assert_close(
        basis_out @ (mapped @ coords_in),
        matrix @ (basis_in @ coords_in),
        what="the mapped vectors, computed in the two new bases and brought back to standard coordinates",
        hint="the input basis on the right, the inverse of the output basis on the left: B_out^-1 M B_in",
    )


# --- no privileged basis without a nonlinearity --------------------------------------------------


def plane_rotation(d: int, i: int, j: int, angle: float) -> Tensor:
    """The rotation by `angle` in the (i, j) plane of R^d: orthogonal, and not a permutation."""
    rotation = torch.eye(d, dtype=F64)
    c, s = math.cos(angle), math.sin(angle)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    return rotation


@pytest.mark.kata("rotate_hidden_basis")
def test_rotating_the_hidden_basis_rotates_the_activations_and_keeps_the_output(impl):
    d_in, d_hidden, d_out = 3, 4, 2
    W_in, W_out = torch.randn(d_hidden, d_in, dtype=F64), torch.randn(d_out, d_hidden, dtype=F64)
    rotation, x = random_orthogonal(d_hidden), torch.randn(d_in, 6, dtype=F64)
    new_in, new_out = impl.rotate_hidden_basis(W_in, W_out, rotation)
    assert_close(
        new_in @ x,
        rotation @ (W_in @ x),
        what="the hidden activations in the rotated basis",
        hint="the new first layer is R W_in (not R^T W_in): the activations h become R h",
    )
    assert_close(
        new_out @ (new_in @ x),
        W_out @ (W_in @ x),
        what="the linear network's output after rotating its hidden basis",
        hint="the second layer must undo R before W_out: W_out R^T",
    )


@pytest.mark.kata("rotate_hidden_basis")
def test_a_relu_between_the_layers_gives_the_standard_basis_a_privilege(impl):
    """What the kata teaches: the same rotation that a linear network ignores changes a ReLU
    network's output, while a permutation of the hidden axes does not."""
    d_in, d_hidden, d_out = 3, 4, 2
    W_in, W_out = torch.randn(d_hidden, d_in, dtype=F64), torch.randn(d_out, d_hidden, dtype=F64)
    x = torch.randn(d_in, 64, dtype=F64)
    before = W_out @ torch.relu(W_in @ x)
    permuted_in, permuted_out = impl.rotate_hidden_basis(W_in, W_out, torch.eye(d_hidden, dtype=F64)[[2, 0, 3, 1]])
    assert_close(
        permuted_out @ torch.relu(permuted_in @ x),
        before,
        what="a ReLU network after permuting its hidden axes",
    )
    rotated_in, rotated_out = impl.rotate_hidden_basis(W_in, W_out, plane_rotation(d_hidden, 0, 1, math.pi / 4))
    change = (rotated_out @ torch.relu(rotated_in @ x) - before).abs().max().item()
    assert change > 1e-3, (
        "rotating the hidden basis by 45 degrees should change a ReLU network's output (ReLU acts on each "
        f"coordinate, so the standard basis is privileged), but it changed by only {change:.2e}"
    )


@pytest.mark.kata("power_iteration")
def test_power_iteration_starts_from_a_vector_drawn_from_the_global_rng(impl):
    a = torch.randn(5, 5, dtype=torch.float64)
    matrix = a + a.T
    # After two iterations the vector still shows where it started: from a random vector, so from
    # torch's global random state, which torch.manual_seed seeds.
    check_rng_contract(
        lambda _: impl.power_iteration(matrix, 2),
        what="power_iteration (2 iterations)",
        generator=False,
        global_rng=True,
        sampler="torch.randn",
    )


@pytest.mark.kata("power_iteration")
def test_power_iteration_takes_as_many_steps_as_asked(impl):
    """Eigenvalues 1 and 0.9: each step shrinks the error by a factor of about 0.81, so two steps leave
    it far above float64's rounding and 500 bring it below."""
    matrix = symmetric_with_eigenvalues([1.0, 0.9, 0.5, -0.4, 0.2, 0.1])
    few, _ = impl.power_iteration(matrix, 2)
    many, _ = impl.power_iteration(matrix, 500)
    assert abs(many.item() - 1.0) < 1e-10, f"after 500 steps the eigenvalue should be 1, got {many.item():.12f}"
    assert abs(few.item() - 1.0) > 1e-8, (
        f"after only 2 steps the eigenvalue came out as {few.item():.12f}, already converged: "
        "the loop should run exactly num_iterations times, not a fixed number"
    )
