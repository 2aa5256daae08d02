"""Reverse engineering: take apart the induction circuit you trained in induction.py, from its weights and
from its activations, as the Framework paper, ARENA 1.2 and the Induction Heads paper do.

find_heads found the two heads by what they attend to. Here you explain why, with the tools of this topic:
- from the weights alone: the positional QK circuit W_pos W_Q W_K^T W_pos^T of the layer-0 heads shows the
  previous-token head without running the model; the induction head's full OV circuit W_E W_V W_O W_U
  copies (its diagonal wins); and its full QK circuit through the previous-token head's OV circuit matches
  the query's token against the key's previous token: K-composition as a d_vocab x d_vocab table;
- from the activations: the induction head's attention scores split into what the key's embeddings, its
  position and each layer-0 head contribute; direct logit attribution and activation patching, measured
  with a logit difference;
- from the training: the in-context-learning score (later tokens are predicted better than early ones) and
  the phase change, the sudden drop of the loss when the induction head forms.

The model has no LayerNorm and no MLP, so the residual stream is exactly a sum of the embeddings and every
head's output, and every analysis here is exact, not an approximation. The circuits ignore the biases, as
the Framework paper does.

One convention to carry into TransformerLens: ARENA and model.to_tokens prepend a BOS token, which shifts
every position by one. This topic's repeated tokens have none: the induction stripe of a sequence of
2 * seq_len tokens is (query q, key q - seq_len + 1), and its first query is seq_len.

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

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from katakit import detached, kata

activations = importlib.import_module(".activations", __package__)
attribution = importlib.import_module(".attribution", __package__)
circuits = importlib.import_module(".circuits", __package__)
induction = importlib.import_module(".induction", __package__)


@kata
@detached
def positional_pattern(W_pos: Float[Tensor, "pos d_model"], attn: nn.Module) -> Float[Tensor, "n_heads pos pos"]:
    """The attention pattern every head of `attn` would have if the residual stream held only the positional
    embeddings: the positional QK circuit W_pos W_Q W_K^T W_pos^T of each head, turned into a pattern.

    Row p of W_pos is what position p adds to the residual stream, whatever the token there. Score query
    position q against key position k with (W_pos[q] W_Q[h]) . (W_pos[k] W_K[h]) / sqrt(d_head), ignoring
    the tokens and the biases; hide the keys after the query and take the softmax over the keys, as the
    attention itself does. A head of layer 0 whose positional pattern puts its weight on k = q - 1 is a
    previous-token head, seen in its weights alone, without any input. Weights analysis: detached.

    Shapes:
        W_pos: [pos, d_model], e.g. model.pos_embed.W_pos (all n_ctx positions)
        attn: an attention of topic 06 (W_Q, W_K: [n_heads, d_model, d_head])
        returns: [n_heads, query_pos, key_pos], each row summing to 1

    Hints:
        1. circuits.full_qk_circuit scores every pair of tokens through their embeddings; positions have an
           embedding too.
        2. The scores of a head are not yet a pattern: the attention divides them by sqrt(d_head), masks the
           future and takes a softmax over the keys (activations.attention_pattern does the same).
    """
    with torch.no_grad():
        scores = torch.stack(
            [circuits.full_qk_circuit(W_pos, W_Q, W_K) for W_Q, W_K in zip(attn.W_Q, attn.W_K, strict=True)]
        )
        scores = scores / attn.W_Q.shape[-1] ** 0.5
        pos = W_pos.shape[0]
        allowed = torch.ones(pos, pos, dtype=torch.bool, device=scores.device).tril()
        return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)


@kata
def previous_token_head_from_weights(model: induction.AttnOnlyTransformer) -> int:
    """Find the previous-token head of layer 0 from the weights alone: the head whose positional pattern
    (positional_pattern of model.pos_embed.W_pos and block 0's attention) has the highest previous-token
    score, as a Python int.

    No tokens, no forward pass: on the trained capstone model this finds the same head as find_heads does
    from real attention patterns, because a previous-token head looks back by position, whatever the tokens.

    Shapes:
        model: an AttnOnlyTransformer (reads pos_embed.W_pos and blocks[0].attn)
        returns: the index of the head, an int

    Hints:
        1. The positional pattern has the shape of one sequence's pattern, without its batch axis.
        2. activations.previous_token_scores scores every head of a [batch, n_heads, pos, pos] pattern.
    """
    pattern = positional_pattern(model.pos_embed.W_pos, model.blocks[0].attn)
    return activations.previous_token_scores(pattern[None]).argmax().item()


@kata
def diagonal_top1_accuracy(matrix: Float[Tensor, "n n"]) -> Float[Tensor, ""]:
    """The fraction of the rows of a square matrix whose largest entry is the one on the diagonal.

    For a full OV circuit (rows: the token attended to; columns: the logits raised) it says for how many
    tokens attending to them raises their own logit most; for a full QK circuit (rows: the query's token)
    for how many queries the best key is their own token. It is 1 for a matrix whose diagonal wins every
    row, and about 1/n for a random one.

    Shapes:
        matrix: [n, n], rows the input side, columns the output side
        returns: [] (a scalar in [0, 1], in the dtype of matrix)

    Hints:
        1. Compare, for every row, the index of its largest entry with the row's own index.
        2. argmax over the right axis, == torch.arange(n), then the mean of the booleans as a float.
    """
    rows = torch.arange(matrix.shape[0], device=matrix.device)
    return (matrix.argmax(dim=1) == rows).to(matrix.dtype).mean()


@kata
@detached
def ov_copying(
    model: induction.AttnOnlyTransformer, layer: int, head: int
) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """How much one head copies, from its full OV circuit W_E W_V W_O W_U (circuits.full_ov_circuit of the
    head's own W_V and W_O, between model.embed.W_E and model.unembed.W_U): return its copying score
    (circuits.copying_score) and the top-1 accuracy of its diagonal (diagonal_top1_accuracy).

    An induction head copies the token it attends to, so both are close to 1 for the trained capstone model's
    induction head; for a random head the score is near 0 and the accuracy near 1 / d_vocab. The circuit
    leaves out W_pos, the biases and the previous-token head's part of the value: it is the path from the
    token embedding of the key position straight to the logits. Weights analysis: detached.

    Shapes:
        model: an AttnOnlyTransformer
        layer, head: which head (0-based)
        returns: (copying score [], top-1 accuracy [])

    Hints:
        1. W_V and W_O of an attention have the head axis first.
        2. One full OV circuit, then two summaries of it, both already written (one in circuits.py).
    """
    with torch.no_grad():
        attn = model.blocks[layer].attn
        ov = circuits.full_ov_circuit(model.embed.W_E, attn.W_V[head], attn.W_O[head], model.unembed.W_U)
        return circuits.copying_score(ov), diagonal_top1_accuracy(ov)


@kata
@detached
def k_composition_circuit(
    model: induction.AttnOnlyTransformer, previous: int, induction_head: int
) -> Float[Tensor, "d_vocab_query d_vocab_key"]:
    """The induction head's full QK circuit through the previous-token head: K-composition as a table.

    The previous-token head (head `previous` of layer 0), attending to the token t before a key position,
    writes e_t W_OV into it (e_t: row t of W_E; W_OV = W_V W_O of that head); the induction head (head
    `induction_head` of layer 1) reads that with its keys. Entry [s, t] is the (unscaled) score of a query
    holding token s against a key whose previous token is t, through that path only:
        (e_s W_Q) . (e_t W_OV W_K),    W_Q and W_K the induction head's.
    Rows: the query's token; columns: the key's previous token. An induction head looks for the key whose
    previous token is its own token, so the diagonal wins most rows. Weights analysis: detached.

    Shapes:
        model: an AttnOnlyTransformer of at least two layers
        previous: a head of layer 0     induction_head: a head of layer 1
        returns: [d_vocab (query token), d_vocab (key's previous token)]

    Hints:
        1. circuits.full_qk_circuit(W_E, W_Q, W_K) already scores every query token against every key token;
           only what happens to the key token before the induction head's W_K reads it is new.
        2. Follow the key token: embedded, moved by the previous-token head's OV circuit, then read by W_K.
           Which matrix goes where, if you give full_qk_circuit a different "W_K"?
    """
    with torch.no_grad():
        attn0, attn1 = model.blocks[0].attn, model.blocks[1].attn
        W_OV = attn0.W_V[previous] @ attn0.W_O[previous]
        return circuits.full_qk_circuit(model.embed.W_E, attn1.W_Q[induction_head], W_OV @ attn1.W_K[induction_head])


@kata
def stream_components(
    cache: dict[str, Float[Tensor, "..."]], model: induction.AttnOnlyTransformer, layer: int
) -> Float[Tensor, "component batch pos d_model"]:
    """The residual stream that reaches block `layer` of an attention-only model, split into what wrote it:
    attribution.decompose_resid for a model without MLPs, stopped before block `layer`.

    The components, in this order:
        cache["hook_embed"], cache["hook_pos_embed"],
        then for every layer l < `layer`: head h's output z[:, :, h] @ W_O[h] for h = 0 .. n_heads - 1
        (z: cache["blocks.{l}.attn.hook_z"]), then that attention's b_O (the same at every batch and pos),
    so 2 + layer * (n_heads + 1) of them. They add up to cache["blocks.{layer}.hook_resid_pre"], or, for
    layer = n_layers, to the final residual stream, blocks.{n_layers - 1}.hook_resid_post.

    Shapes:
        cache: activations.run_with_cache's cache of `model`
        model: an AttnOnlyTransformer (reads blocks[l].attn.W_O [n_heads, d_head, d_model] and b_O)
        layer: 0 .. n_layers
        returns: [2 + layer * (n_heads + 1), batch, pos, d_model]

    Hints:
        1. A list of [batch, pos, d_model] tensors, stacked at the end: the same order as decompose_resid,
           without the MLPs and only for the layers before `layer`.
        2. One einops.einsum per layer gives every head's output with n_heads first; b_O needs expanding.
    """
    embed = cache["hook_embed"]
    components = [embed, cache["hook_pos_embed"]]
    for earlier in range(layer):
        attn = model.blocks[earlier].attn
        z = cache[f"blocks.{earlier}.attn.hook_z"]
        components += list(
            einops.einsum(z, attn.W_O, "batch pos n_heads d_head, n_heads d_head d_model -> n_heads batch pos d_model")
        )
        components.append(attn.b_O.expand_as(embed))
    return torch.stack(components)


@kata
@detached
def attention_score_split(
    model: induction.AttnOnlyTransformer, tokens: Int[Tensor, "batch pos"], layer: int, head: int
) -> Float[Tensor, "component batch query_pos key_pos"]:
    """Split the attention scores of one head into what each component of the key's residual stream
    contributes: the token embeddings, the positional embeddings, each head of the earlier layers and
    their b_O (stream_components' order).

    Run the model with activations.run_with_cache. The query side is whole: q = x W_Q[head] + b_Q[head],
    with x the residual stream the head reads (blocks.{layer}.hook_resid_pre). The key side is split: the
    contribution of component c at key position k to the score of query position q is
        q[q] . (c[k] W_K[head]) / sqrt(d_head).
    What is left, q . b_K / sqrt(d_head), is the same for every key, so it cancels in the softmax: the
    softmax over the allowed keys of the sum of the contributions is exactly the head's pattern. Nothing is
    masked here. For the trained induction head, on repeated tokens, the previous-token head's contribution
    is the one that lifts the induction stripe: K-composition, in the activations. Analysis only: detached.

    Shapes:
        model: an AttnOnlyTransformer (no LayerNorm: the head reads the residual stream itself)
        tokens: [batch, pos]
        layer, head: which head (0-based)
        returns: [2 + layer * (n_heads + 1), batch, query_pos, key_pos]

    Hints:
        1. stream_components gives the key side's pieces; the query is computed once, from the whole stream.
        2. Project every component with W_K[head] (keeping the component axis), then one einops.einsum of the
           queries with those keys over d_head; mind the scale.
    """
    with torch.no_grad():
        _, cache = activations.run_with_cache(model, tokens)
        attn = model.blocks[layer].attn
        query = cache[f"blocks.{layer}.hook_resid_pre"] @ attn.W_Q[head] + attn.b_Q[head]
        keys = stream_components(cache, model, layer) @ attn.W_K[head]
        scores = einops.einsum(
            query,
            keys,
            "batch query_pos d_head, component batch key_pos d_head -> component batch query_pos key_pos",
        )
        return scores / attn.W_Q.shape[-1] ** 0.5


@kata
@detached
def logit_attribution(
    model: induction.AttnOnlyTransformer,
    tokens: Int[Tensor, "batch pos"],
    correct: Int[Tensor, "batch"],
    incorrect: Int[Tensor, "batch"],
    position: int,
) -> Float[Tensor, "component batch"]:
    """Direct logit attribution in an attention-only model: how much each component of the final residual
    stream (stream_components with layer = n_layers: the embeddings, every head of every layer, every b_O)
    adds to the logit difference logit[correct] - logit[incorrect] at `position`.

    Without a final LayerNorm there is nothing to centre or scale (attribution.direct_logit_attribution's
    extra steps): the contribution of component c of sequence b is c[b, position] . (W_U[:, correct[b]] -
    W_U[:, incorrect[b]]), and the contributions plus b_U[correct[b]] - b_U[incorrect[b]] add up exactly to
    the model's logit difference. On repeated tokens the trained model's layer-1 heads contribute most of
    it. Analysis only: detached.

    Shapes:
        model: an AttnOnlyTransformer
        tokens: [batch, pos]
        correct, incorrect: [batch], a token id for each sequence
        position: the position whose logits are compared (Python indexing: -1 is the last)
        returns: [2 + n_layers * (n_heads + 1), batch]

    Hints:
        1. Run with activations.run_with_cache, split the final stream with stream_components, keep `position`.
        2. The direction of sequence b is a difference of two columns of W_U: [d_model, batch] for the whole
           batch; one einops.einsum contracts d_model and keeps component and batch.
    """
    with torch.no_grad():
        _, cache = activations.run_with_cache(model, tokens)
        components = stream_components(cache, model, len(model.blocks))[:, :, position]
        W_U = model.unembed.W_U
        direction = W_U[:, correct] - W_U[:, incorrect]
        return einops.einsum(components, direction, "component batch d_model, d_model batch -> component batch")


@kata
@detached
def head_patching(
    model: nn.Module,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    correct: Int[Tensor, "batch"],
    incorrect: Int[Tensor, "batch"],
    position: int,
) -> Float[Tensor, "n_layers n_heads"]:
    """Activation patching of every head, one at a time: entry [l, h] is the fraction of the logit
    difference that head h of layer l recovers when its output on `clean_tokens` is patched into the run on
    `corrupted_tokens` (attribution.patch_head, then attribution.logit_diff_recovered with the clean and
    corrupted runs' own logits).

    On repeated tokens whose earlier copy of the answer was replaced by another token (the corruption), the
    induction head is the one that carries the answer to the last positions: patching it alone recovers most
    of the logit difference. Analysis only: detached.

    Shapes:
        model: an AttnOnlyTransformer (or topic 06's GPT2)
        clean_tokens, corrupted_tokens: [batch, pos]
        correct, incorrect: [batch], the answer of the clean run and of the corrupted run
        position: the answer position (Python indexing)
        returns: [n_layers, n_heads]

    Hints:
        1. Two plain runs give the clean and corrupted logits; then one patched run per head.
        2. Fill a list of lists (layers, then heads) with 0-d results and torch.tensor it, or write into a
           zeros tensor; patch_head takes the layer first, then the head.
    """
    with torch.no_grad():
        clean_logits, corrupted_logits = model(clean_tokens), model(corrupted_tokens)
        cfg = model.cfg
        recovered = torch.zeros(cfg.n_layers, cfg.n_heads, dtype=clean_logits.dtype)
        for layer in range(cfg.n_layers):
            for head in range(cfg.n_heads):
                patched = attribution.patch_head(model, clean_tokens, corrupted_tokens, layer, head)
                recovered[layer, head] = attribution.logit_diff_recovered(
                    patched, clean_logits, corrupted_logits, correct, incorrect, position
                )
        return recovered


@kata
@detached
def in_context_learning_score(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], early: int, late: int
) -> Float[Tensor, ""]:
    """The Induction Heads paper's in-context-learning score: the loss on the token at position `late` minus
    the loss on the token at position `early`, each averaged over the batch.

    The loss on the token at position t is its cross-entropy given everything before it:
    -log softmax(logits[:, t - 1])[tokens[:, t]], from the logits at t - 1 (positions count from 0, and
    early, late >= 1). A model that learns in context predicts later tokens better than early ones, so the
    score is negative; the paper compares the 500th token with the 50th on natural text. On repeated random
    tokens (pos = 2 * seq_len), with early in the first half and late in the second, it is about the loss of
    a random guess, log(d_vocab), with a minus sign, once an induction head has formed. Analysis only:
    detached.

    Shapes:
        tokens: [batch, pos]
        early, late: positions of the predicted tokens, 1 .. pos - 1
        returns: [] (a scalar)

    Hints:
        1. Which logits predict the token at position t? (Write out tokens a b c: what does the model know
           when it predicts b?)
        2. log_softmax over the vocabulary, then pick the target's entry with gather or fancy indexing.
    """
    with torch.no_grad():
        log_probs = model(tokens).log_softmax(dim=-1)
        batch = torch.arange(tokens.shape[0], device=tokens.device)

        def loss_at(t: int) -> Tensor:
            return -log_probs[batch, t - 1, tokens[:, t]].mean()

        return loss_at(late) - loss_at(early)


@kata
def phase_change_step(losses: list[float], window: int) -> int:
    """Locate the phase change in a training loss curve: the step where the loss falls most steeply, once
    the curve is smoothed.

    The Induction Heads paper sees induction heads form in a phase change: a plateau, then a sudden drop of
    the loss, then a slow decline. The phase change is the steepest drop, not the lowest loss (that comes at
    the end of training), and a single step's loss is too noisy to find it, so smooth first: return the
    step t, window <= t <= len(losses) - window, at which
        mean(losses[t - window : t]) - mean(losses[t : t + window])
    (the mean of the window before t minus the mean of the window from t on) is largest; the first such t
    on a tie. The capstone's curve mixes the unpredictable first half with the repeated one, and for some
    seeds an earlier drop, before the induction head forms, is as steep (seed 1 near step 200, its induction
    head near step 1400): plot the curve and look at what you found.


    Shapes:
        losses: a list of floats, one per training step (train_induction_model's return)
        window: the number of steps averaged on each side, 1 <= window <= len(losses) // 2
        returns: a step index, an int

    Hints:
        1. A running mean over `window` steps, computed once (torch.tensor(losses).unfold, or a cumulative
           sum), gives both sides: the window before t ends where the window from t begins.
        2. The drop at t compares two running means `window` steps apart; argmax, then back to a Python int.
    """
    curve = torch.tensor(losses, dtype=torch.float64)
    means = curve.unfold(0, window, 1).mean(dim=-1)  # means[i] = mean(losses[i : i + window])
    drops = means[:-window] - means[window:]  # drops[i] is the drop at t = i + window
    return int(drops.argmax().item()) + window
