"""Circuits: read what an attention head does from its weights alone, and draw what it attends to.

A head is two circuits (A Mathematical Framework for Transformer Circuits). Its QK circuit
W_QK = W_Q W_K^T decides where it looks: the score of a query vector x against a key vector x' is
x W_QK x'^T. Its OV circuit W_OV = W_V W_O decides what it writes: attending fully to x adds x W_OV to
the residual stream. This repository multiplies row vectors from the left (x @ W), so in every
d_model x d_model matrix here the rows are what is read and the columns what is written (or, for
W_QK, the rows are the query side and the columns the key side); the paper writes the transposes.

Put the embedding and the unembedding around them (ignoring the LayerNorms) and they become
d_vocab x d_vocab tables: the full OV circuit W_E W_OV W_U says which logits a head raises for the
token it attends to, the full QK circuit W_E W_QK W_E^T which token attends to which. A head that
copies has a full OV circuit with a positive diagonal; the copying score measures that from the
eigenvalues. Heads of different layers compose: a later head can read what an earlier head wrote
through its query (Q-composition), its key (K-composition) or its value (V-composition), and the
composition score measures how much their weights line up. It is a summary of weights, not of what the
heads compute: it ignores the softmax and the inputs the model really sees, and random weights already
score well above 0. Read a score against composition_baseline, the score of random matrices of the
same shapes.

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

import html
import importlib
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor, nn

from katakit import detached, kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)

# pattern_text's shades, from the weakest (0, a blank) to the strongest (1) attention.
SHADES = " .:-=+*#%@"


@kata
def full_ov_circuit(
    W_E: Float[Tensor, "d_vocab d_model"],
    W_V: Float[Tensor, "d_model d_head"],
    W_O: Float[Tensor, "d_head d_model"],
    W_U: Float[Tensor, "d_model d_vocab"],
) -> Float[Tensor, "d_vocab d_vocab"]:
    """The full OV circuit of one head: W_E W_V W_O W_U, from the token attended to to the logits it raises.

    Entry [s, t] is how much the head raises the logit of token t when it attends fully to a position
    holding token s (ignoring LayerNorms and biases). Rows: the source token read; columns: the logit
    written. It follows the token only: the residual stream of a position is W_E[token] + W_pos[position],
    and the W_pos part is left out here (its own circuit would be W_pos W_V W_O W_U). The matrix is
    d_vocab x d_vocab (50257 x 50257 for GPT-2, 10 GB in float32), yet its rank is at most d_head: compute
    it in the order that keeps the intermediate products small.

    Shapes:
        W_E: [d_vocab, d_model]   W_V: [d_model, d_head]   W_O: [d_head, d_model]   W_U: [d_model, d_vocab]
        returns: [d_vocab, d_vocab]

    Hints:
        1. Follow a token: it is embedded, read by the value side, written by the output side, unembedded.
           Multiply in that order (row vectors, x @ W).
        2. Matrix multiplication is associative: (W_E W_V) is [d_vocab, d_head] and (W_O W_U) is
           [d_head, d_vocab], so the product of those two is the only d_vocab x d_vocab product you need.
    """
    return (W_E @ W_V) @ (W_O @ W_U)


@kata
def copying_score(matrix: Float[Tensor, "n n"]) -> Float[Tensor, ""]:
    """How much a square matrix copies: the sum of its eigenvalues' real parts over the sum of their moduli.

    The Framework paper's summary of a full OV circuit: a head that copies (attending to token s raises
    the logit of s) has mostly positive eigenvalues, and the score is near 1; one that suppresses what
    it attends to scores near -1. It is 1 for the identity, -1 for minus the identity, cos(theta) for a
    2D rotation by theta, and it does not change under a change of basis (P M P^-1), nor when the matrix
    is scaled by a positive number. The eigenvalues of a real matrix that is not symmetric may be
    complex: use them all, as they are (not those of the symmetric part, not the singular values).

    Shapes:
        matrix: [n, n]
        returns: [] (a scalar), in [-1, 1], in the dtype of matrix

    Hints:
        1. torch.linalg has a function that returns only the eigenvalues of a general (not symmetric)
           matrix; they come back complex.
        2. Numerator: the sum of their real parts (the trace, in fact). Denominator: the sum of their
           absolute values (moduli). Only the denominator takes the modulus.
    """
    eigenvalues = torch.linalg.eigvals(matrix)
    return (eigenvalues.real.sum() / eigenvalues.abs().sum()).to(matrix.dtype)


@kata
def full_qk_circuit(
    W_E: Float[Tensor, "d_vocab d_model"], W_Q: Float[Tensor, "d_model d_head"], W_K: Float[Tensor, "d_model d_head"]
) -> Float[Tensor, "d_vocab_query d_vocab_key"]:
    """The full QK circuit of one head: W_E W_Q W_K^T W_E^T, the attention score of every token pair.

    Entry [s, t] is the (unscaled) score of a query position holding token s against a key position
    holding token t, ignoring positional embeddings, LayerNorms and biases: (e_s W_Q) . (e_t W_K), where
    e_s is row s of W_E. Rows: the query token; columns: the key token. It is not symmetric: swapping
    W_Q and W_K gives its transpose, a different head.

    Shapes:
        W_E: [d_vocab, d_model]   W_Q, W_K: [d_model, d_head]
        returns: [d_vocab (query), d_vocab (key)]

    Hints:
        1. Both tokens are embedded first: the query side reads W_E through W_Q, the key side reads W_E
           through W_K.
        2. Compute the queries of every token (W_E W_Q, [d_vocab, d_head]) and the keys of every token,
           then take every query's dot product with every key.
    """
    return (W_E @ W_Q) @ (W_E @ W_K).T


@kata
def composition_score(
    W_A: Float[Tensor, "d_model d_model"], W_B: Float[Tensor, "d_model d_model"]
) -> Float[Tensor, ""]:
    """How much W_B reads what W_A writes: ||W_A W_B||_F / (||W_A||_F ||W_B||_F).

    W_A is the earlier head's OV circuit (rows read, columns write), W_B a matrix of the later head whose
    rows read the residual stream. The Frobenius norm of the product is at most the product of the
    norms, so the score lies in [0, 1]: near 0 when W_A writes into directions W_B does not read, larger
    when they line up. Scaling either matrix does not change it.

    Shapes:
        W_A, W_B: [d_model, d_model]
        returns: [] (a scalar)

    Hints:
        1. Three Frobenius norms: one of the product, one of each factor.
        2. torch.linalg.matrix_norm computes the Frobenius norm by default. The order of the product
           matters: what W_A writes (its columns) is what W_B reads (its rows).
    """
    return torch.linalg.matrix_norm(W_A @ W_B) / (torch.linalg.matrix_norm(W_A) * torch.linalg.matrix_norm(W_B))


@kata
@detached
def composition_scores(attn0: nn.Module, attn1: nn.Module, kind: str) -> Float[Tensor, "heads0 heads1"]:
    """The composition scores of every head of an earlier layer with every head of a later layer.

    attn0 and attn1 are attention modules with TransformerLens' weights (W_Q, W_K, W_V:
    [n_heads, d_model, d_head]; W_O: [n_heads, d_head, d_model]), attn0 in an earlier layer. Entry
    [i, j] is composition_score(W_OV[i] of attn0, W_B[j]): head i of attn0 writes x W_OV[i] into the
    residual stream (x: what it attends to), and W_B[j] is the d_model x d_model matrix of head j of attn1
    through which that output reaches what head j computes on the side named by kind:
    - "q": Q-composition, head i's output is read by head j's queries (the score of that query against any
      key);
    - "k": K-composition, head i's output is read by head j's keys (the score of any query against that key);
    - "v": V-composition, head i's output is read by head j's values (what head j then writes).
    Each W_B[j] is made of head j's weights only, and multiplies x W_OV[i] from the right, as W_B does in
    composition_score: which of W_Q, W_K, W_V, W_O it holds, and which way round, is yours to work out.
    Any other kind is a ValueError. The scores are weights analysis, detached from autograd.

    Shapes:
        attn0: n_heads = heads0   attn1: n_heads = heads1, the same d_model
        returns: [heads0, heads1]

    Hints:
        1. Write what head j computes from a residual-stream vector on each side (a query's score against a
           key, or a value written out) as a product, and substitute x W_OV[i] for the vector read on that
           side. Which matrix of head j ends up right after x W_OV[i]?
        2. A score is a number, so it equals its own transpose: a M b^T = b M^T a^T. That moves whichever
           vector you need to the left. Then put a new axis in each stack of [n_heads, d_model, d_model]
           matrices, so that one batched matrix product and torch.linalg.matrix_norm (which reduces the
           last two axes) score every pair (i, j) at once.
    """
    with torch.no_grad():
        W_A = attn0.W_V @ attn0.W_O
        if kind == "q":
            W_B = attn1.W_Q @ attn1.W_K.mT
        elif kind == "k":
            W_B = attn1.W_K @ attn1.W_Q.mT
        elif kind == "v":
            W_B = attn1.W_V @ attn1.W_O
        else:
            raise ValueError(f"kind must be 'q', 'k' or 'v', not {kind!r}")
        products = W_A[:, None] @ W_B[None, :]
        norms_A, norms_B = torch.linalg.matrix_norm(W_A), torch.linalg.matrix_norm(W_B)
        return torch.linalg.matrix_norm(products) / (norms_A[:, None] * norms_B[None, :])


@kata
def composition_baseline(d_model: int, d_head: int, n_samples: int, generator: torch.Generator) -> Float[Tensor, ""]:
    """The composition score of random weights: what a score of composition_scores is compared with.

    Average, over n_samples independent draws, composition_score(W_A, W_B) of W_A = W_V W_O and
    W_B = W_Q W_K^T, where W_V, W_Q, W_K are [d_model, d_head] and W_O is [d_head, d_model], every entry
    drawn independently from a standard normal distribution with `generator`. Those are the shapes of an
    OV circuit and of a QK circuit (and of their transposes, whose entries are just as random), so one
    baseline serves Q-, K- and V-composition; the scale of the draws does not matter, since the score
    ignores it. Random weights score above 0, the more so the smaller d_model is (about 0.28 for d_model 11
    and d_head 2, 0.036 at GPT-2 small's 768 and 64): a head pair matters when its score stands out against
    this number, as ARENA reads its scores.

    Shapes:
        returns: [] (a scalar in torch's default dtype), the mean score of the n_samples random pairs

    Hints:
        1. Draw all n_samples pairs at once: W_V, W_Q, W_K as [n_samples, d_model, d_head] and W_O as
           [n_samples, d_head, d_model], each with torch.randn(..., generator=generator).
        2. composition_score takes one pair of matrices; the formula it computes works on a batch too, with
           @ and torch.linalg.matrix_norm over the last two axes. Average the n_samples scores.
    """
    W_V = torch.randn(n_samples, d_model, d_head, generator=generator)
    W_O = torch.randn(n_samples, d_head, d_model, generator=generator)
    W_Q = torch.randn(n_samples, d_model, d_head, generator=generator)
    W_K = torch.randn(n_samples, d_model, d_head, generator=generator)
    W_A, W_B = W_V @ W_O, W_Q @ W_K.mT
    norms = torch.linalg.matrix_norm(W_A) * torch.linalg.matrix_norm(W_B)
    return (torch.linalg.matrix_norm(W_A @ W_B) / norms).mean()


@kata
def pattern_html(pattern: Float[Tensor, "query_pos key_pos"], tokens: list[str], path: Path) -> Path:
    """Write one head's attention pattern as a self-contained HTML heat map to path, and return path.

    The page is a table: a header row with an empty corner <th> and one <th> per key token, then one row
    per query position with a <th> holding the query token and one <td> per key. Each <td> is coloured by
    its value (darker for more attention, e.g. a background whose opacity is the value) and carries the
    value, written with 4 decimals, in its title attribute (the browser shows it on hover):
    <td title="0.1234" style="...">. Tokens are text: escape them (html.escape), so that a token "<b>" or
    "&amp;" shows as itself instead of becoming markup. The page must work offline: no <script src>, no
    <link>, no url(...), everything inside the one file.

    Shapes:
        pattern: [pos, pos] (query_pos = key_pos = len(tokens)), values in [0, 1]
        tokens: the pos token strings
        path: the file to write (its folder exists)
        returns: path

    Hints:
        1. Build the page as a list of strings (one per row) and join them; pattern.tolist() gives Python
           floats to format.
        2. An f-string with {value:.4f} formats the title; html.escape makes any token safe to put between
           tags. Path.write_text writes the file (say encoding="utf-8").
    """
    cells = "".join(f"<th>{html.escape(token)}</th>" for token in tokens)
    rows = [f"<tr><th></th>{cells}</tr>"]
    for token, values in zip(tokens, pattern.tolist(), strict=True):
        row = "".join(
            f'<td title="{value:.4f}" style="background: rgba(200, 30, 30, {value:.4f})"></td>' for value in values
        )
        rows.append(f"<tr><th>{html.escape(token)}</th>{row}</tr>")
    style = "td { width: 1.5em; height: 1.5em; border: 1px solid #eee; } th { font: 12px monospace; }"
    page = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>Attention pattern</title>',
        f"<style>{style}</style></head>",
        "<body><table>",
        *rows,
        "</table></body></html>",
    ]
    path.write_text("\n".join(page), encoding="utf-8")
    return path


@kata
def pattern_text(pattern: Float[Tensor, "query_pos key_pos"], tokens: list[str]) -> str:
    """Draw one head's attention pattern as text for the terminal: a line per query, a character per key.

    Line i is query token i, right-aligned to the width of the longest token, one space, then one
    character per key position: SHADES[min(int(value * len(SHADES)), len(SHADES) - 1)], so that 0 is a
    blank, 1 is "@", and the strongest attention of a row gets the darkest character of that row. The
    upper triangle of a causal pattern (zeros) comes out blank. Join the lines with "\\n" (no newline
    after the last one).

    Shapes:
        pattern: [pos, pos] (query_pos = key_pos = len(tokens)), values in [0, 1]
        tokens: the pos token strings (no newlines in them)
        returns: a str of pos lines

    Hints:
        1. pattern.tolist() gives a list of rows of Python floats; str.rjust pads a token on the left.
        2. The index of a value's shade is its value times the number of shades, rounded down, capped at
           the last index (a value of exactly 1 would run one past the end).
    """
    width = max(len(token) for token in tokens)
    lines = []
    for token, values in zip(tokens, pattern.tolist(), strict=True):
        shades = "".join(SHADES[min(int(value * len(SHADES)), len(SHADES) - 1)] for value in values)
        lines.append(f"{token.rjust(width)} {shades}")
    return "\n".join(lines)
