"""Linear algebra: bases, change of basis, orthogonality, eigenvectors and the SVD.

Conventions of this topic: a basis is a square matrix whose COLUMNS are the basis vectors, written
in standard coordinates; a batch of vectors (`vectors: [n, d]`) has one vector per ROW, as
activations do in a model.

Read or watch first (curriculum.toml's `reading`):
- 3Blue1Brown, Essence of linear algebra (the link opens chapter 1), chapters 1-3 (vectors; linear
  combinations, span and basis vectors; linear transformations and matrices), 7 (inverse matrices:
  solving a linear system), 9 (dot products), 13 (change of basis) and 14 (eigenvectors and
  eigenvalues):
  https://www.youtube.com/watch?v=fNk_zzaMoSs
- Sheldon Axler, Linear Algebra Done Right (4th edition, free online), sections 2B (bases), 3C-3D
  (the matrix of a linear map, change of basis), 5A and 5D (eigenvalues, diagonalizable
  operators), 6B (orthonormal bases, Gram-Schmidt), 6C (pseudoinverse), 7B (spectral theorem),
  7E-7F (singular value decomposition, best approximation of lower rank):
  https://linear.axler.net/
- Neel Nanda, Mechanistic Interpretability Explainer & Glossary, the entries on the QK circuit and
  on privileged bases, for qk_circuit and change_head_basis:
  https://dynalist.io/d/n2ZWtnoYHrU1s4vnFSAQ519J#z=pndoEIqJ6GPvC1yENQkEfZYR
"""

import torch
from jaxtyping import Float
from torch import Tensor

from katakit import kata

# --- Bases and change of basis ---------------------------------------------------------------------


@kata
def coordinates_in_basis(basis: Float[Tensor, "d d"], v: Float[Tensor, "d"]) -> Float[Tensor, "d"]:
    """Return the coordinates of `v` in the basis whose vectors are the columns of `basis`.

    A vector space has no canonical basis: the same vector has different coordinates in
    different bases. The coordinates c are the weights with `basis @ c == v`.

    Shapes:
        basis: [d, d], column j is the j-th basis vector
        v: [d], coordinates in the standard basis
        returns: [d], coordinates of v in `basis`

    Hints:
        1. Write v as a weighted sum of the columns of `basis`: which equation do the weights solve?
        2. The weights c solve the square linear system basis @ c = v. Solve it directly: forming the inverse
           is slower and less accurate.
        3. torch.linalg has a function for exactly this, in the 'Solvers' list of its docs; the later katas of
           this topic reuse it.
    """
    return torch.linalg.solve(basis, v)


@kata
def change_of_basis_matrix(basis_a: Float[Tensor, "d d"], basis_b: Float[Tensor, "d d"]) -> Float[Tensor, "d d"]:
    """Return the matrix T that turns coordinates in basis A into coordinates in basis B.

    Both bases are given in standard coordinates, one basis vector per column. For every vector,
    if `c_a` are its coordinates in A then `T @ c_a` are its coordinates in B.

    Shapes:
        basis_a: [d, d], column j is the j-th vector of basis A
        basis_b: [d, d], column j is the j-th vector of basis B
        returns: [d, d], T with coords_in_b = T @ coords_in_a

    Hints:
        1. Go through the standard basis: from A-coordinates to standard coordinates is one matrix
           product, from standard coordinates to B-coordinates is the previous kata.
        2. One vector, two sets of coordinates: A c_a = B c_b. Solve for c_b; the matrix in front of c_a is T
           = B^-1 A.
        3. Do not form B^-1: the solver you used in the previous kata also accepts a matrix right-hand side,
           one system per column.
    """
    return torch.linalg.solve(basis_b, basis_a)


@kata
def map_in_basis(matrix: Float[Tensor, "d d"], basis: Float[Tensor, "d d"]) -> Float[Tensor, "d d"]:
    """Return the matrix of the linear map `matrix` (given in standard coordinates) in the new `basis`.

    The result M' acts on coordinates in `basis`: it takes the coordinates of x to the coordinates
    of `matrix @ x`. M' and `matrix` are similar matrices: the same map seen in two bases, so they
    share their eigenvalues, trace and determinant. If the columns of `basis` are eigenvectors of
    `matrix`, M' is diagonal.

    Shapes:
        matrix: [d, d], the map in standard coordinates
        basis: [d, d], column j is the j-th new basis vector
        returns: [d, d], the same map in `basis` coordinates

    Hints:
        1. Follow a coordinate vector c through three steps: to standard coordinates, apply the map,
           back to `basis` coordinates. Write each step as a matrix, and mind the order of the product.
        2. M' = P^-1 M P with P = basis (not P M P^-1): the step applied first stands rightmost.
        3. Compute the P^-1 (...) part with the solver of coordinates_in_basis, with a matrix right-hand side,
           not with an explicit inverse.
    """
    return torch.linalg.solve(basis, matrix @ basis)


@kata
def map_between_spaces(
    matrix: Float[Tensor, "m n"], basis_in: Float[Tensor, "n n"], basis_out: Float[Tensor, "m m"]
) -> Float[Tensor, "m n"]:
    """Return the matrix of a linear map between two different spaces, with a new basis on each side.

    `matrix` maps an n-dimensional space to an m-dimensional one, in standard coordinates on both
    sides. A matrix is a map *between two spaces*: each has its own basis, and changing one says
    nothing about the other. The result takes the coordinates of x in `basis_in` to the
    coordinates of `matrix @ x` in `basis_out`.

    Shapes:
        matrix: [m, n], the map from R^n to R^m in standard coordinates
        basis_in: [n, n], column j is the j-th basis vector of the input space
        basis_out: [m, m], column i is the i-th basis vector of the output space
        returns: [m, n], the same map in the two new bases

    Hints:
        1. As in map_in_basis, follow a coordinate vector through three steps, but the first step happens
           in the input space and the last in the output space.
        2. The input basis stands on the right of the product, the inverse of the output basis on the left;
           the shapes tell you which is which. Solve rather than invert.
    """
    return torch.linalg.solve(basis_out, matrix @ basis_in)


# --- Orthogonality ---------------------------------------------------------------------------------


@kata
def has_orthonormal_columns(matrix: Float[Tensor, "n k"], atol: float = 1e-6) -> bool:
    """Return whether the columns of `matrix` are orthonormal, up to an absolute tolerance `atol`.

    Orthonormal columns: each has length 1 and any two are perpendicular. A tall matrix (n > k) can
    have orthonormal columns; its rows then are not orthonormal. Floating point is never exact,
    so compare with the tolerance, entry by entry. `matrix` may have any float dtype and live on
    any device.

    Shapes:
        matrix: [n, k]
        returns: a Python bool

    Hints:
        1. Every dot product between two columns is in one matrix product: which one, Q^T Q or Q Q^T?
        2. Q^T Q holds all of them, and the columns are orthonormal exactly when it is the k x k identity:
           compare the two entry by entry, within atol.
        3. torch.allclose compares entry by entry but also adds a relative tolerance by default: switch that
           one off. Build the identity in the dtype and on the device of `matrix`.
    """
    k = matrix.shape[1]
    identity = torch.eye(k, dtype=matrix.dtype, device=matrix.device)
    return torch.allclose(matrix.T @ matrix, identity, rtol=0.0, atol=atol)


@kata
def gram_schmidt(vectors: Float[Tensor, "n k"]) -> Float[Tensor, "n k"]:
    """Return an orthonormal basis of the column space of `vectors`, by Gram-Schmidt.

    The k columns of `vectors` (n > k) are linearly independent. Column j of the result is column
    j of the input minus its components along the result's columns 0..j-1, scaled to length 1.
    So the first j result columns span the same space as the first j input columns, and each
    column keeps a positive component along its input column (this is QR with diag(R) > 0).

    Shapes:
        vectors: [n, k], linearly independent columns, n > k
        returns: [n, k], orthonormal columns spanning the same space

    Hints:
        1. Build the result column by column. Subtract projections onto the columns you have ALREADY
           made orthonormal, not onto the original input columns. Then normalise.
        2. The projection of v onto a unit vector q is (q . v) q. After subtracting all of them, divide by the
           length (torch.linalg.vector_norm).
        3. Collect the finished columns in a list and stack them as the COLUMNS of the result, not its rows
           (mind the dim).
    """
    columns: list[Tensor] = []
    for j in range(vectors.shape[1]):
        v = vectors[:, j]
        for q in columns:
            v = v - (q @ v) * q
        columns.append(v / torch.linalg.vector_norm(v))
    return torch.stack(columns, dim=1)


@kata
def gram_matrix_in_basis(basis: Float[Tensor, "d d"], vectors: Float[Tensor, "n d"]) -> Float[Tensor, "n n"]:
    """Return the matrix of dot products of the vectors' COORDINATES in `basis`.

    Express each vector (a row of `vectors`) in the basis (columns of `basis`), then take every dot
    product of those coordinate vectors: G[i, j] = c_i . c_j. If the basis is orthonormal this is
    the Gram matrix of the original vectors (an orthogonal change of basis preserves dot products,
    hence lengths and angles); for a general basis it is not.

    Shapes:
        basis: [d, d], column j is the j-th basis vector
        vectors: [n, d], one vector per row, in standard coordinates
        returns: [n, n], G[i, j] = dot product of the coordinates of vectors i and j

    Hints:
        1. First find the coordinates of all n vectors at once (one solve, with the vectors as
           columns of the right-hand side), then compare every pair.
        2. With C = basis^-1 X^T (one coordinate vector per column), G = C^T C.
    """
    coordinates = torch.linalg.solve(basis, vectors.T)
    return coordinates.T @ coordinates


# --- Eigenvalues and eigenvectors ------------------------------------------------------------------


@kata
def power_iteration(
    matrix: Float[Tensor, "d d"], num_iterations: int = 500
) -> tuple[Float[Tensor, ""], Float[Tensor, "d"]]:
    """Return the dominant eigenvalue of a symmetric `matrix` and a unit eigenvector, by power iteration.

    Dominant: the eigenvalue of largest absolute value (it may be negative). Start from a random
    vector and multiply by `matrix` again and again: the component along the dominant eigenvector
    grows fastest and takes over. The eigenvector's sign is arbitrary. `matrix` may live on any
    device.

    Shapes:
        matrix: [d, d], symmetric, with one eigenvalue strictly largest in absolute value
        returns: (eigenvalue: [], eigenvector: [d] of length 1)

    Hints:
        1. Normalise the vector after every multiplication: |lambda|^500 overflows float64.
        2. Read the eigenvalue off the converged unit vector with the Rayleigh quotient v . (M v),
           which keeps its sign; the norm of M v would lose it.
    """
    v = torch.randn(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    v = v / torch.linalg.vector_norm(v)
    for _ in range(num_iterations):
        v = matrix @ v
        v = v / torch.linalg.vector_norm(v)
    return v @ matrix @ v, v


@kata
def diagonalize(matrix: Float[Tensor, "d d"]) -> tuple[Float[Tensor, "d"], Float[Tensor, "d d"]]:
    """Return the eigenvalues, sorted in descending order, and the eigenvectors with A = V diag(lambda) V^-1.

    `matrix` (A) is diagonalisable with real, distinct eigenvalues, but is not symmetric, so its
    eigenvectors are not orthogonal. Column i of V is a unit eigenvector for eigenvalue i.

    Shapes:
        matrix: [d, d]
        returns: (eigenvalues: [d], descending; eigenvectors: [d, d], column i goes with eigenvalue i)

    Hints:
        1. torch.linalg.eig handles non-symmetric matrices but returns complex tensors, in no
           particular order; here the imaginary parts are zero (keep .real).
        2. Find the permutation that sorts the eigenvalues in descending order (torch.argsort can sort either
           way), and apply it to the eigenvalues and to the eigenvector COLUMNS, so each column stays with its
           eigenvalue.
    """
    eigenvalues, eigenvectors = torch.linalg.eig(matrix)
    order = torch.argsort(eigenvalues.real, descending=True)
    return eigenvalues.real[order], eigenvectors.real[:, order]


@kata
def matrix_power_via_eigen(matrix: Float[Tensor, "d d"], k: int) -> Float[Tensor, "d d"]:
    """Return A^k through the eigendecomposition A = V diag(lambda) V^-1.

    `matrix` (A) is diagonalisable with real eigenvalues, as in `diagonalize`. In the eigenbasis A
    only scales each coordinate, so A^k scales coordinate i by lambda_i^k. k may be 0 (the identity)
    or negative when A is invertible.

    Shapes:
        matrix: [d, d]
        k: a Python int
        returns: [d, d]

    Hints:
        1. Write A^k = (V D V^-1)(V D V^-1)...(V D V^-1): what happens to the V^-1 V in the middle?
        2. A^k = V diag(lambda^k) V^-1: raise the eigenvalues (not V) to the k, and use V^-1, not
           V^T, since V is not orthogonal.
    """
    eigenvalues, eigenvectors = diagonalize(matrix)
    return eigenvectors @ torch.diag(eigenvalues**k) @ torch.linalg.inv(eigenvectors)


@kata
def symmetric_eigendecomposition(
    matrix: Float[Tensor, "d d"],
) -> tuple[Float[Tensor, "d"], Float[Tensor, "d d"]]:
    """Return the eigenvalues in descending order and orthonormal eigenvectors Q of a symmetric matrix.

    The spectral theorem: a real symmetric S has real eigenvalues and an orthonormal basis of
    eigenvectors, so S = Q diag(lambda) Q^T with Q^-1 = Q^T. Column i of Q goes with eigenvalue i.

    Shapes:
        matrix: [d, d], symmetric
        returns: (eigenvalues: [d], descending; eigenvectors: [d, d], orthonormal columns)

    Hints:
        1. torch.linalg.eigh is made for symmetric matrices: real output, orthonormal eigenvectors,
           but eigenvalues in ASCENDING order.
        2. Reverse the eigenvalues and the eigenvector columns together (torch.flip on the right dim).
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return eigenvalues.flip(0), eigenvectors.flip(1)


# --- Singular value decomposition ------------------------------------------------------------------


@kata
def svd_via_eigh(
    matrix: Float[Tensor, "m n"],
) -> tuple[Float[Tensor, "m n"], Float[Tensor, "n"], Float[Tensor, "n n"]]:
    """Return the thin SVD (U, S, V) of a tall full-rank matrix A, built from the eigendecomposition of A^T A.

    A = U diag(S) V^T with singular values S in descending order, V orthogonal [n, n] and U with
    orthonormal columns [m, n]. A^T A = V diag(S^2) V^T, so its eigenvectors are the right
    singular vectors and its eigenvalues the SQUARED singular values. Do not call torch.linalg.svd.

    Shapes:
        matrix: [m, n], m > n, rank n
        returns: (U: [m, n], S: [n] descending, V: [n, n]); note V, not V^T

    Hints:
        1. Which of A^T A [n, n] and A A^T [m, m] has the size of V? Diagonalise it with
           torch.linalg.eigh, reverse to descending order, and take square roots (clamp tiny
           negative round-off to 0 first).
        2. A v_i = s_i u_i gives U = A V / S (column i divided by s_i): the signs of U then match
           those of V automatically.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix.T @ matrix)
    singular_values = eigenvalues.flip(0).clamp(min=0).sqrt()
    right = eigenvectors.flip(1)
    left = (matrix @ right) / singular_values
    return left, singular_values, right


@kata
def low_rank_approximation(matrix: Float[Tensor, "m n"], k: int) -> Float[Tensor, "m n"]:
    """Return the best rank-k approximation of `matrix` (in Frobenius norm): its truncated SVD.

    Eckart-Young: keeping the k largest singular values and their singular vectors, and dropping
    the rest, gives the closest matrix of rank at most k. Works for tall and wide matrices.

    Shapes:
        matrix: [m, n]
        k: 0 <= k <= min(m, n)
        returns: [m, n]

    Hints:
        1. The SVD writes A as a sum of rank-1 pieces s_i u_i v_i^T, largest singular value first: which of
           them does the best rank-k matrix keep?
        2. torch.linalg.svd returns U, S, Vh with A = U diag(S) Vh and S already in descending order; ask for
           the reduced (thin) SVD: the full one computes singular vectors you would throw away.
        3. Keep the first k columns of U, the first k values of S and the first k ROWS of Vh, and multiply
           them back together.
    """
    left, singular_values, right_t = torch.linalg.svd(matrix, full_matrices=False)
    return left[:, :k] @ torch.diag(singular_values[:k]) @ right_t[:k]


@kata
def rank_k_approximation_error(matrix: Float[Tensor, "m n"], k: int) -> Float[Tensor, ""]:
    """Return the Frobenius error ||A - A_k|| of the best rank-k approximation, from the singular values alone.

    Eckart-Young: the error is the root of the sum of the squares of the singular values that the
    rank-k approximation drops. No need to build A_k.

    Shapes:
        matrix: [m, n]
        k: 0 <= k <= min(m, n)
        returns: [] (a 0-d tensor)

    Hints:
        1. torch.linalg.svdvals gives the singular values, descending. Which ones does A_k keep?
        2. A_k keeps indices 0..k-1, so the error is sqrt(sum of s_i^2 for i >= k).
    """
    singular_values = torch.linalg.svdvals(matrix)
    return torch.sqrt(torch.sum(singular_values[k:] ** 2))


@kata
def pseudo_inverse(matrix: Float[Tensor, "m n"], rtol: float = 1e-10) -> Float[Tensor, "n m"]:
    """Return the Moore-Penrose pseudo-inverse A+ of `matrix`, through its SVD.

    A = U diag(S) V^T gives A+ = V diag(S+) U^T, where S+ inverts the singular values that are
    not zero and leaves the zero ones at zero. Count a singular value as zero when it is at most
    rtol * (largest singular value). A may be tall, wide or rank-deficient; A+ satisfies
    A A+ A = A, A+ A A+ = A+, and A A+ and A+ A are symmetric.

    Shapes:
        matrix: [m, n]
        rtol: relative threshold below which a singular value counts as zero
        returns: [n, m]

    Hints:
        1. Inverting a singular value of 1e-17 gives 1e17, not zero: threshold first.
        2. Take the reduced SVD (torch.linalg.svd). A singular value counts as zero when it is at most rtol
           times the largest: invert only the others (torch.where picks per entry) and leave the rest at 0.
        3. Multiply in the order V diag(S+) U^T, where V is the transpose of the Vh that the SVD returns.
    """
    left, singular_values, right_t = torch.linalg.svd(matrix, full_matrices=False)
    kept = singular_values > rtol * singular_values.max()
    inverted = torch.where(kept, 1 / singular_values, torch.zeros_like(singular_values))
    return right_t.T @ torch.diag(inverted) @ left.T


# --- No privileged basis: the QK circuit -----------------------------------------------------------


@kata
def qk_circuit(
    W_Q: Float[Tensor, "d_model d_head"], W_K: Float[Tensor, "d_model d_head"]
) -> Float[Tensor, "d_model d_model"]:
    """Return the QK circuit W_Q W_K^T of one attention head: the bilinear form of its attention scores.

    A head scores a query residual vector x_q against a key residual vector x_k with
    (x_q W_Q) . (x_k W_K) = x_q (W_Q W_K^T) x_k^T. Only the product matters, not the factors: rotate
    the head space by an orthogonal R (W_Q R, W_K R) and both factors change, yet the circuit and
    every score stay the same. The head's basis is not privileged. Its rank is at most d_head.

    Shapes:
        W_Q: [d_model, d_head]
        W_K: [d_model, d_head]
        returns: [d_model, d_model], entry [i, j] weighs query direction i against key direction j

    Hints:
        1. Write the score of one query and one key as a single matrix sandwiched between x_q and x_k.
        2. Queries sit on the left, keys on the right: W_Q times the transpose of W_K, not the
           other way round (the circuit is not symmetric).
    """
    return W_Q @ W_K.T


@kata
def change_head_basis(
    W_Q: Float[Tensor, "d_model d_head"], W_K: Float[Tensor, "d_model d_head"], M: Float[Tensor, "d_head d_head"]
) -> tuple[Float[Tensor, "d_model d_head"], Float[Tensor, "d_model d_head"]]:
    """Return new factors (W_Q M, W_K') for a change of basis M of the head space that keeps W_Q W_K^T.

    The queries are mapped by any invertible M: new W_Q = W_Q M. Choose the new W_K so that the QK
    circuit, hence every attention score, is unchanged. When M is orthogonal the answer is to map
    the keys by M too; for a general M it is not.

    Shapes:
        W_Q: [d_model, d_head]
        W_K: [d_model, d_head]
        M: [d_head, d_head], invertible
        returns: (new W_Q: [d_model, d_head], new W_K: [d_model, d_head])

    Hints:
        1. Write (W_Q M) (W_K X)^T and ask which X makes the middle M X^T the identity.
        2. X = (M^-1)^T, i.e. new W_K = W_K M^-T; for orthogonal M that is M itself. Get it with
           torch.linalg.solve (or inv) rather than by hand.
    """
    new_W_K = torch.linalg.solve(M, W_K.T).T
    return W_Q @ M, new_W_K


@kata
def rotate_hidden_basis(
    W_in: Float[Tensor, "d_hidden d_in"],
    W_out: Float[Tensor, "d_out d_hidden"],
    rotation: Float[Tensor, "d_hidden d_hidden"],
) -> tuple[Float[Tensor, "d_hidden d_in"], Float[Tensor, "d_out d_hidden"]]:
    """Re-express a two-layer network's hidden space in a rotated basis; return the new (W_in, W_out).

    The network is x -> W_out (W_in x). Rotating the hidden basis by the orthogonal `rotation` R
    must give the hidden activations R (W_in x) and leave the output unchanged: the hidden space
    of a linear network has no privileged basis, every rotation of it computes the same thing.
    Put an elementwise ReLU between the layers and that breaks: relu(R h) != R relu(h) unless R
    only permutes the axes. A nonlinearity applied coordinate by coordinate makes the standard
    basis special (a *privileged basis*); attention's W_Q W_K^T, which only ever meets a linear
    map, has none (change_head_basis).

    Shapes:
        W_in: [d_hidden, d_in], W_out: [d_out, d_hidden]
        rotation: [d_hidden, d_hidden], orthogonal (R^T R = I)
        returns: (W_in', W_out') with the same shapes

    Hints:
        1. The new first layer must produce R times the old hidden vector; the new second layer must undo R
           before applying the old W_out.
        2. For an orthogonal R the inverse is its transpose: no solve needed.
    """
    return rotation @ W_in, W_out @ rotation.T
