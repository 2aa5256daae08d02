"""Factored circuits: the eigenvalues and the SVD of a low-rank product A B from its small factors, so that
circuit analysis runs on GPT-2-sized weights without ever forming a d_vocab x d_vocab matrix.

The full OV circuit of a head, W_E W_V W_O W_U (circuits.full_ov_circuit), is 50257 x 50257 for GPT-2
small: 10 GB in float32, and an eigendecomposition of it would take hours. Yet it is the product of two
thin matrices, A = W_E W_V [d_vocab, d_head] and B = W_O W_U [d_head, d_vocab], so its rank is at most
d_head = 64. Everything the circuit analysis asks of it can be read from the factors:
- eigenvalues: A B and B A have the same nonzero eigenvalues (if B A v = lambda v with lambda != 0, then
  A B (A v) = lambda (A v), and A v != 0). B A is only d_head x d_head, here W_O W_U W_E W_V: the
  d_vocab x d_vocab circuit and this 64 x 64 matrix copy, or suppress, the same amount;
- singular values and vectors: write A = Q_A R_A and B^T = Q_B R_B (reduced QR: Q with orthonormal
  columns, R square and small). Then A B = Q_A (R_A R_B^T) Q_B^T, and the SVD of the small core
  R_A R_B^T = U S V^T gives A B = (Q_A U) S (Q_B V)^T, an SVD of the product, since Q_A U and Q_B V
  have orthonormal columns. Singular values, unlike eigenvalues, are NOT shared by A B and B A.
TransformerLens' FactoredMatrix (model.OV, model.QK) does all of this behind `.eigenvalues`, `.svd()`
and `.S`: these katas are what it computes.

Read or watch first (curriculum.toml's `reading`):
- Elhage, Nanda, Olsson et al., A Mathematical Framework for Transformer Circuits, all of it: the
  residual stream as a sum of each component's output, attention heads as independent QK and OV
  circuits, the full OV and QK circuits through the embedding and unembedding, Q-, K- and
  V-composition between layers, and the induction heads of a two-layer attention-only model:
  https://transformer-circuits.pub/2021/framework/index.html
- Olsson, Elhage, Nanda et al., In-context Learning and Induction Heads, the definition of an
  induction head (prefix matching and copying, on repeated random tokens) and the first arguments:
  https://transformer-circuits.pub/2022/in-context-learning-and-induction-heads/index.html
- Neel Nanda, Mechanistic Interpretability Explainer & Glossary, the entries on the logit lens,
  direct logit attribution, ablation, activation patching, induction heads and composition, to look
  terms up as you go:
  https://dynalist.io/d/n2ZWtnoYHrU1s4vnFSAQ519J#z=pndoEIqJ6GPvC1yENQkEfZYR
- TransformerLens, the library researchers use to do all of this on real models: its hook names are
  the names of this topic's cache:
  https://transformerlensorg.github.io/TransformerLens/
"""

import importlib

import torch
from jaxtyping import Complex, Float
from torch import Tensor

from katakit import kata

circuits = importlib.import_module(".circuits", __package__)


@kata
def factored_eigenvalues(A: Float[Tensor, "n r"], B: Float[Tensor, "r n"]) -> Complex[Tensor, "r"]:
    """The r eigenvalues of the n x n product A B that can be nonzero, computed without forming A B.

    A B has rank at most r, so at least n - r of its eigenvalues are 0; the other r are the eigenvalues
    of the small r x r matrix B A (see the module docstring for why). Return them as torch.linalg returns
    eigenvalues of a general real matrix: complex, in any order. Never build the n x n product: at
    GPT-2 scale (n = 50257) it would not fit in memory, while B A is 64 x 64.

    Shapes:
        A: [n, r]   B: [r, n], with r <= n
        returns: [r], complex

    Hints:
        1. Of the two products of A and B, one is n x n and one is r x r. Which one is small?
        2. The eigenvalues of a real matrix that is not symmetric can be complex: torch.linalg has a
           function for them that makes no symmetry assumption.
    """
    return torch.linalg.eigvals(B @ A)


@kata
def factored_svd(
    A: Float[Tensor, "m r"], B: Float[Tensor, "r n"]
) -> tuple[Float[Tensor, "m r"], Float[Tensor, "r"], Float[Tensor, "r n"]]:
    """The thin SVD of the m x n product A B, U diag(S) Vh, computed from the factors without forming A B.

    Return U [m, r] with orthonormal columns, S [r] the singular values in descending order (the r
    largest of A B: the others are 0), and Vh [r, n] with orthonormal rows, as torch.linalg.svd(A @ B,
    full_matrices=False) would up to the signs of the singular vectors and its n - r zero singular
    values. Go through the reduced QR decompositions of A and of B^T and the SVD of the r x r matrix
    that is left between them (the module docstring writes it out). No m x n matrix, and no m x m or
    n x n one either: nothing larger than A or B.

    Shapes:
        A: [m, r]   B: [r, n], with r <= m and r <= n
        returns: U [m, r], S [r], Vh [r, n]

    Hints:
        1. Write A = Q_A R_A and B = (Q_B R_B)^T. What is left between Q_A and Q_B^T in A B? It is r x r:
           its SVD is cheap, and Q_A and Q_B^T only rotate its singular vectors.
        2. torch.linalg.qr's default mode is the reduced one (Q [m, r], R [r, r]); mode="complete" would
           build an m x m Q. Put U's and Vh's rotations on the correct side of the small SVD's factors.
        3. The SVD of B A is not the SVD of A B: eigenvalues are shared by the two orders, singular
           values are not.
    """
    Q_A, R_A = torch.linalg.qr(A)
    Q_B, R_B = torch.linalg.qr(B.T)
    U, S, Vh = torch.linalg.svd(R_A @ R_B.T)
    return Q_A @ U, S, Vh @ Q_B.T


@kata
def factored_copying_score(
    W_E: Float[Tensor, "d_vocab d_model"],
    W_V: Float[Tensor, "d_model d_head"],
    W_O: Float[Tensor, "d_head d_model"],
    W_U: Float[Tensor, "d_model d_vocab"],
) -> Float[Tensor, ""]:
    """The copying score of a head's full OV circuit W_E W_V W_O W_U, from its d_head x d_head factor.

    circuits.copying_score of the d_vocab x d_vocab full OV circuit (the sum of its eigenvalues' real
    parts over the sum of their moduli) only ever sees its nonzero eigenvalues: the zeros add nothing to
    either sum. Compute it through the factors A = W_E W_V and B = W_O W_U, so that it runs on GPT-2
    small's sizes (d_vocab 50257, d_model 768, d_head 64) in a fraction of a second, the two thin factors
    (13 MB each in float32) being the largest matrices it makes: none may be larger than W_E. The
    positional embedding, the LayerNorms and the biases are left out, as in circuits.full_ov_circuit.

    Shapes:
        W_E: [d_vocab, d_model]   W_V: [d_model, d_head]   W_O: [d_head, d_model]   W_U: [d_model, d_vocab]
        returns: [] (a scalar), in [-1, 1]

    Hints:
        1. Group the four matrices into the two thin factors A and B, then take the small one of A B and B A.
        2. circuits.copying_score or factored_eigenvalues: either finishes the job. Mind the order of the
           products: W_U @ W_E is [d_model, d_model] but costs d_model * d_model * d_vocab multiplications,
           six times more than W_E @ W_V and W_O @ W_U together.
    """
    return circuits.copying_score((W_O @ W_U) @ (W_E @ W_V))
