"""einsum: products, traces and contractions written as index expressions.

`torch.einsum("ij,jk->ik", a, b)` multiplies, for every assignment of the indices, the entries
named on the left, and sums over every index that does not appear on the right. `einops.einsum`
does the same with whole words for indices: `einops.einsum(a, b, "rows inner, inner cols -> rows cols")`.
Every kata here is about einsum: write each one with torch.einsum or einops.einsum (the tests check).

Read or watch first (curriculum.toml's `reading`):
- Nicolas Rougier, 100 numpy exercises, the first third (#1-#43), which tensors.py redoes in
  torch:
  https://github.com/rougier/numpy-100
- einops, part 1: einops basics, all of it (rearrange: composing and decomposing axes, the order
  of axes inside a group; reduce, with pooling; repeat; adding and removing axes), for
  einops_katas.py:
  https://einops.rocks/1-einops-basics/
- Tim Rocktäschel, Einsum is All you Need, the worked examples (transpose, sums, column sum,
  matrix-vector and matrix-matrix products, dot, Hadamard and outer products, batch matrix
  multiplication, tensor contraction, bilinear transformation) and the attention case study, for
  einsum_katas.py:
  https://rockt.github.io/2018/04/30/einsum
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building
  micrograd, the comparison with PyTorch and the last part (a training loop by gradient descent,
  and what happens when the gradients are not zeroed), for linear_regression.py:
  https://www.youtube.com/watch?v=VMj-3S1tku0
"""

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from katakit import kata


@kata
def trace(a: Float[Tensor, "n n"]) -> Float[Tensor, ""]:
    """Return the trace of a square matrix, the sum of its diagonal entries. Use einsum.

    Shapes:
        a: [n, n]
        returns: [] (a 0-d tensor)

    Hints:
        1. Repeating an index in one operand walks the diagonal; an index missing on the right is summed.
        2. One index, written twice in the left-hand side and not at all in the right-hand side.
    """
    return torch.einsum("ii->", a)


@kata
def matrix_vector(a: Float[Tensor, "m n"], x: Float[Tensor, "n"]) -> Float[Tensor, "m"]:
    """Return the matrix-vector product a x. Use einsum.

    Shapes:
        a: [m, n]
        x: [n]
        returns: [m]

    Hints:
        1. Output entry i is the sum over j of a[i, j] * x[j]: which index survives?
        2. The index shared by a's columns and x is summed; the one of a's rows stays on the right.
    """
    return torch.einsum("ij,j->i", a, x)


@kata
def matrix_matrix(a: Float[Tensor, "m k"], b: Float[Tensor, "k n"]) -> Float[Tensor, "m n"]:
    """Return the matrix product a b. Use einsum.

    Shapes:
        a: [m, k]
        b: [k, n]
        returns: [m, n]

    Hints:
        1. Entry (i, j) sums a[i, l] * b[l, j] over l.
        2. The inner index appears in both operands and not on the right; the row and column indices stay.
    """
    return torch.einsum("ik,kj->ij", a, b)


@kata
def inner(x: Float[Tensor, "n"], y: Float[Tensor, "n"]) -> Float[Tensor, ""]:
    """Return the inner (dot) product of two vectors, a number. Use einsum.

    Shapes:
        x, y: [n]
        returns: [] (a 0-d tensor)

    Hints:
        1. Same index in both operands, and nothing on the right.
        2. einsum multiplies the entries that share index values and sums every index absent on the right.
    """
    return torch.einsum("i,i->", x, y)


@kata
def outer(x: Float[Tensor, "m"], y: Float[Tensor, "n"]) -> Float[Tensor, "m n"]:
    """Return the outer product of two vectors: the matrix with entry (i, j) = x[i] * y[j]. Use einsum.

    Shapes:
        x: [m]
        y: [n]
        returns: [m, n]

    Hints:
        1. Unlike the inner product, no index is shared and none is summed.
        2. Give each vector its own index and keep both on the right, x's first.
    """
    return torch.einsum("i,j->ij", x, y)


@kata
def batched_matmul(a: Float[Tensor, "batch m k"], b: Float[Tensor, "batch k n"]) -> Float[Tensor, "batch m n"]:
    """Multiply the matrices of two batches pairwise: out[i] = a[i] @ b[i]. Use einsum.

    Shapes:
        a: [batch, m, k]
        b: [batch, k, n]
        returns: [batch, m, n]

    Hints:
        1. The batch index appears in both operands and on the right: it is matched, not summed.
        2. Add a batch index in front of the matrix product's indices, on all three sides.
    """
    return torch.einsum("bik,bkj->bij", a, b)


@kata
def bilinear_form(
    x: Float[Tensor, "batch m"], a: Float[Tensor, "m n"], y: Float[Tensor, "batch n"]
) -> Float[Tensor, "batch"]:
    """Return x^T A y for every pair (x, y) of the batch. Use einsum.

    A is not square: x lives on A's rows, y on its columns. The result is one number per example.

    Shapes:
        x: [batch, m]
        a: [m, n]
        y: [batch, n]
        returns: [batch]

    Hints:
        1. x^T A y = sum over i, j of x[i] * A[i, j] * y[j]; einsum takes three operands as easily as two.
        2. x's index is A's first index, y's is A's second; only the batch index stays on the right.
    """
    return einops.einsum(x, a, y, "batch i, i j, batch j -> batch")


@kata
def attention_scores(
    q: Float[Tensor, "batch head q_pos d_head"], k: Float[Tensor, "batch head k_pos d_head"]
) -> Float[Tensor, "batch head q_pos k_pos"]:
    """Return the attention scores q k^T of every head: the dot product of every query with every key.

    Unscaled: no division by sqrt(d_head) here. Use einsum.

    Shapes:
        q: [batch, head, q_pos, d_head]
        k: [batch, head, k_pos, d_head]
        returns: [batch, head, q_pos, k_pos]

    Hints:
        1. batch and head are matched, d_head is summed, q_pos and k_pos both stay.
        2. With einops.einsum you can write the pattern with the same names as the shapes above;
           mind the order of q_pos and k_pos on the right.
    """
    return einops.einsum(q, k, "batch head q_pos d_head, batch head k_pos d_head -> batch head q_pos k_pos")


@kata
def weighted_values(
    pattern: Float[Tensor, "batch head q_pos k_pos"], v: Float[Tensor, "batch head k_pos d_head"]
) -> Float[Tensor, "batch head q_pos d_head"]:
    """Mix the values with the attention pattern: each query's output is sum over keys of pattern * value. Use einsum.

    Shapes:
        pattern: [batch, head, q_pos, k_pos], row (q_pos) of weights over the keys
        v: [batch, head, k_pos, d_head]
        returns: [batch, head, q_pos, d_head]

    Hints:
        1. Which index is shared by the pattern and the values, and disappears?
        2. k_pos is summed; batch and head are matched; q_pos and d_head stay.
    """
    return einops.einsum(pattern, v, "batch head q_pos k_pos, batch head k_pos d_head -> batch head q_pos d_head")


@kata
def contract_two_axes(a: Float[Tensor, "i j k"], b: Float[Tensor, "j k l"]) -> Float[Tensor, "i l"]:
    """Contract a and b over the two axes they share: out[i, l] = sum over j, k of a[i, j, k] * b[j, k, l]. Use einsum.

    Shapes:
        a: [i, j, k]
        b: [j, k, l]
        returns: [i, l]

    Hints:
        1. Summing over two indices is no harder than over one: leave both off the right-hand side.
        2. Name the indices as in the task (i, j, k, l); only i and l stay on the right.
    """
    return torch.einsum("ijk,jkl->il", a, b)


@kata
def batched_diagonal(a: Float[Tensor, "batch n n"]) -> Float[Tensor, "batch n"]:
    """Return the diagonal of each matrix of a batch. Use einsum.

    Shapes:
        a: [batch, n, n]
        returns: [batch, n]

    Hints:
        1. Like the trace, but the repeated index is kept instead of summed.
        2. Write the matrix index twice on the left and once on the right, next to the batch index.
    """
    return torch.einsum("bii->bi", a)


@kata
def column_sums(x: Float[Tensor, "rows cols"]) -> Float[Tensor, "cols"]:
    """Return the sum of each column of x (summing over the rows). Use einsum.

    Shapes:
        x: [rows, cols]
        returns: [cols]

    Hints:
        1. An index that does not appear on the right is summed over.
        2. Keep only the column index on the right.
    """
    return torch.einsum("ij->j", x)
