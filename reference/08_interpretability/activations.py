"""Activations: read every intermediate value of your GPT-2 (a cache, with TransformerLens' names), change
some of them while it runs (hooks), and measure what its attention heads attend to.

Nothing in topic 06 changes: PyTorch lets you attach a function to any module, called with the module's
input and output every time it runs (register_forward_hook), or before it runs with its input
(register_forward_pre_hook). That is how TransformerLens' run_with_cache and run_with_hooks work, and
they are what every later module of this topic builds on.

The names of the cache are TransformerLens' hook names, so a cache you make here reads like theirs:
    hook_embed, hook_pos_embed                                             [batch, pos, d_model]
    blocks.{l}.hook_resid_pre, .hook_resid_mid, .hook_resid_post          [batch, pos, d_model]
    blocks.{l}.hook_attn_out, .hook_mlp_out                                [batch, pos, d_model]
    blocks.{l}.ln1.hook_scale, blocks.{l}.ln2.hook_scale, ln_final.hook_scale    [batch, pos, 1]
    blocks.{l}.ln1.hook_normalized, blocks.{l}.ln2.hook_normalized, ln_final.hook_normalized
                                                                           [batch, pos, d_model]
    blocks.{l}.attn.hook_pattern                            [batch, n_heads, query_pos, key_pos]
    blocks.{l}.attn.hook_z                                  [batch, pos, n_heads, d_head]
A LayerNorm's scale is sqrt(var + eps), what it divides the centred input by. Its hook_normalized is, in
this topic's cache, what the LayerNorm returns: after w and b. TransformerLens agrees only for a
HookedTransformer loaded with fold_ln=False. Its default from_pretrained folds w and b into the weights that
read the LayerNorm (LayerNormPre, which has no w and b), and its v4 TransformerBridge records hook_normalized
before w and b, (x - mean) / scale: there the value is the one here minus b, divided by w (bridge.py compares
them that way). hook_z holds each head's pattern-weighted sum of values, before W_O: head h writes
z[:, :, h] @ W_O[h] into the residual stream.

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
from collections.abc import Callable

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from katakit import differentiable, in_place, kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)

# What run_with_hooks calls: it receives an activation and returns the tensor that replaces it.
Hook = Callable[[Float[Tensor, "..."]], Float[Tensor, "..."]]


@kata
@in_place("model")  # it registers hooks on the model: that is its job
def register_cache_hooks(model: nn.Module, cache: dict[str, Float[Tensor, "..."]]) -> list[RemovableHandle]:
    """Register forward hooks on the modules of `model` (topic 06's GPT2) that store, during its next
    forward pass, every activation of the table in this module's docstring into `cache`, detached.

    Return the handles of every hook you registered (handle.remove() takes a hook off again); running the
    model is run_with_cache's job. A forward hook is called as hook(module, args, output) after the
    module ran: args is the tuple of its positional inputs, output what it returned. Most names are the
    input or the output of a module of 06 (resid_mid is what ln2 reads). The pattern and z are the outputs of
    the attention's hook points, attn.hook_pattern and attn.hook_z: the identity modules 05's forward passes
    them through, as TransformerLens does, so the cache reads them instead of computing the attention again.
    A LayerNorm's hook_scale and hook_normalized are, the same way, the outputs of its hook points
    ln.hook_scale and ln.hook_normalized, through which 06's LayerNorm.forward passes its scale and its output.

    A model that lacks some of these modules gets the names of those it has, as in TransformerLens:
    induction's AttnOnlyTransformer has no ln2 and no mlp (so no resid_mid, mlp_out or ln2 names), and its
    ln1 and ln_final are nn.Identity (so no hook_scale or hook_normalized for them).

    Shapes:
        model: topic 06's GPT2 (embed, pos_embed, blocks[l].ln1 / attn / ln2 / mlp, ln_final, unembed)
        cache: an empty dict, filled when the model next runs (shapes: the table in the module docstring)
        returns: the handles, one per registered hook

    Hints:
        1. A hook function needs to know under which name to store: write a small function that takes the
           name (and the module) and returns a hook that remembers it, then call it for every module.
        2. The input and the output of block l are its resid_pre and resid_post; ln2's input is resid_mid.
           A hook's output and args[0] are still part of the autograd graph: store them detached.
        3. Nothing needs computing: attn.hook_pattern, attn.hook_z, ln.hook_scale and ln.hook_normalized are
           modules like any other, whose output is the activation of the same name, and z already comes in the
           [batch, pos, n_heads, d_head] order.
    """
    handles = []

    def save(module: nn.Module, input_name: str | None = None, output_name: str | None = None) -> None:
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            if input_name is not None:
                cache[input_name] = args[0].detach()
            if output_name is not None:
                cache[output_name] = output.detach()

        handles.append(module.register_forward_hook(hook))

    def save_layer_norm(ln: nn.Module, prefix: str) -> None:
        if isinstance(ln, nn.Identity):  # no LayerNorm there, so no scale and no normalized output
            return
        save(ln.hook_scale, output_name=f"{prefix}.hook_scale")
        save(ln.hook_normalized, output_name=f"{prefix}.hook_normalized")

    save(model.embed, output_name="hook_embed")
    save(model.pos_embed, output_name="hook_pos_embed")
    for layer, block in enumerate(model.blocks):
        prefix = f"blocks.{layer}"
        save(block, input_name=f"{prefix}.hook_resid_pre", output_name=f"{prefix}.hook_resid_post")
        save(block.attn, output_name=f"{prefix}.hook_attn_out")
        save_layer_norm(block.ln1, f"{prefix}.ln1")
        save(block.attn.hook_pattern, output_name=f"{prefix}.attn.hook_pattern")
        save(block.attn.hook_z, output_name=f"{prefix}.attn.hook_z")
        if hasattr(block, "mlp"):  # an attention-only block has no ln2 and no MLP
            save(block.ln2, input_name=f"{prefix}.hook_resid_mid")
            save(block.mlp, output_name=f"{prefix}.hook_mlp_out")
            save_layer_norm(block.ln2, f"{prefix}.ln2")
    save_layer_norm(model.ln_final, "ln_final")
    return handles


@kata
def run_with_cache(
    model: nn.Module, tokens: Int[Tensor, "batch pos"]
) -> tuple[Float[Tensor, "batch pos d_vocab"], dict[str, Float[Tensor, "..."]]]:
    """Run `model` on `tokens` and return its logits together with a cache of every activation (the names
    and shapes of this module's docstring), as TransformerLens' model.run_with_cache does.

    Leave the model as you found it: every hook you register is removed before you return, even when the
    forward pass raises (a hook left behind would go on filling a dict nobody reads, at every later call).

    Shapes:
        model: topic 06's GPT2
        tokens: [batch, pos]
        returns: (logits [batch, pos, d_vocab], cache: name -> detached tensor)

    Hints:
        1. register_cache_hooks does the work; what is left is to run the model and clean up.
        2. try: ... finally: runs the clean-up whether or not the forward pass raised.
    """
    cache = {}
    handles = register_cache_hooks(model, cache)
    try:
        logits = model(tokens)
    finally:
        for handle in handles:
            handle.remove()
    return logits, cache


@kata
@differentiable
def run_with_hooks(
    model: nn.Module, tokens: Int[Tensor, "batch pos"], hooks: dict[str, Hook]
) -> Float[Tensor, "batch pos d_vocab"]:
    """Run `model` on `tokens` with some activations replaced: hooks[name] receives the activation of that
    name and returns the tensor the rest of the forward pass uses instead. Return the logits.

    The names you must support: hook_embed, hook_pos_embed, and for every layer l blocks.{l}.hook_resid_pre,
    blocks.{l}.hook_attn_out, blocks.{l}.hook_mlp_out, blocks.{l}.hook_resid_post, blocks.{l}.attn.hook_pattern
    and blocks.{l}.attn.hook_z (shapes: this module's docstring); hook_mlp_out only where the block has an mlp
    (induction's AttnOnlyTransformer has none). Any other name raises a KeyError (or a
    ValueError) naming it, before the model runs. A forward hook that returns a tensor replaces the module's
    output with it; a forward pre-hook that returns a tuple replaces the module's positional inputs. No hook
    may stay registered after the call, even when the forward pass (or one of the hooks) raises.
    (TransformerLens spells the same thing model.run_with_hooks(tokens, fwd_hooks=[(name, fn)]), and calls
    fn(activation, hook) with the HookPoint as a second argument; a fn that returns None keeps the activation.)

    The pattern and z are the outputs of the attention's hook points attn.hook_pattern and attn.hook_z
    (identity modules; 05's forward goes on with what they return): replace them as any module's output.
    When a layer has both, the pattern hook runs first, and z is computed from the pattern it returned;
    hook_attn_out of that layer then receives the output computed from them.

    Shapes:
        model: topic 06's GPT2
        tokens: [batch, pos]
        hooks: name -> function(activation) -> replacement of the same shape
        returns: logits [batch, pos, d_vocab]

    Hints:
        1. Build a table from every supported name to where it lives: which module, and whether it is the
           module's input or its output (the pattern and z: the outputs of attn.hook_pattern and attn.hook_z).
        2. An output is replaced by a forward hook that returns what hooks[name] made of it, an input by a
           forward pre-hook that returns it as a one-element tuple; the hook points need nothing more.
    """
    points = {"hook_embed": (model.embed, "output"), "hook_pos_embed": (model.pos_embed, "output")}
    for layer, block in enumerate(model.blocks):
        points |= {
            f"blocks.{layer}.hook_resid_pre": (block, "input"),
            f"blocks.{layer}.attn.hook_pattern": (block.attn.hook_pattern, "output"),
            f"blocks.{layer}.attn.hook_z": (block.attn.hook_z, "output"),
            f"blocks.{layer}.hook_attn_out": (block.attn, "output"),
            f"blocks.{layer}.hook_resid_post": (block, "output"),
        }
        if hasattr(block, "mlp"):
            points[f"blocks.{layer}.hook_mlp_out"] = (block.mlp, "output")
    unknown = sorted(hooks.keys() - points.keys())
    if unknown:
        raise KeyError(f"no hook point named {unknown}; the supported names are {sorted(points)}")

    def replace_input(hook_fn: Hook) -> Callable:
        def hook(module: nn.Module, args: tuple) -> tuple:
            return (hook_fn(args[0]),)

        return hook

    def replace_output(hook_fn: Hook) -> Callable:
        def hook(module: nn.Module, args: tuple, output: Tensor) -> Tensor:
            return hook_fn(output)

        return hook

    handles = []
    try:
        for name, hook_fn in hooks.items():
            module, where = points[name]
            if where == "input":
                handles.append(module.register_forward_pre_hook(replace_input(hook_fn)))
            else:
                handles.append(module.register_forward_hook(replace_output(hook_fn)))
        return model(tokens)
    finally:
        for handle in handles:
            handle.remove()


@kata
def attention_pattern(
    resid_pre: Float[Tensor, "batch pos d_model"], ln1: nn.Module, attn: nn.Module
) -> Float[Tensor, "batch n_heads query_pos key_pos"]:
    """Recompute a layer's attention pattern from the residual stream it reads and its weights, without
    calling attn.pattern (or attn itself): the pattern a cache holds, rebuilt from first principles.

    The layer reads ln1(resid_pre). Each head projects it to queries and keys (W_Q, b_Q, W_K, b_K), scores
    every query against every key with the dot product divided by sqrt(d_head), hides the future (GPT-2 is
    causal: query i sees keys 0..i) and takes the softmax over the keys.

    Shapes:
        resid_pre: [batch, pos, d_model], e.g. cache["blocks.{l}.hook_resid_pre"]
        ln1: the layer's LayerNorm (call it)     attn: the layer's attention (read its parameters)
        returns: [batch, n_heads, query_pos, key_pos], each row summing to 1 over key_pos

    Hints:
        1. Attention never reads the residual stream itself, only its LayerNorm.
        2. Give every projection a head axis (einops.einsum with W_Q and W_K), add the biases, then contract
           queries with keys over d_head; d_head is the last axis of W_Q.
        3. Set the scores of the keys after the query (above the diagonal) to -inf before the softmax over
           key_pos; torch.tril of a boolean matrix of ones says which keys are allowed.
    """
    x = ln1(resid_pre)
    project = "batch pos d_model, n_heads d_model d_head -> batch n_heads pos d_head"
    q = einops.einsum(x, attn.W_Q, project) + attn.b_Q[:, None]
    k = einops.einsum(x, attn.W_K, project) + attn.b_K[:, None]
    scores = einops.einsum(
        q, k, "batch n_heads query_pos d_head, batch n_heads key_pos d_head -> batch n_heads query_pos key_pos"
    )
    scores = scores / attn.W_Q.shape[-1] ** 0.5
    pos = resid_pre.shape[1]
    allowed = torch.ones(pos, pos, dtype=torch.bool, device=scores.device).tril()
    return scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)


@kata
def repeated_tokens(batch: int, seq_len: int, d_vocab: int, generator: torch.Generator) -> Int[Tensor, "batch pos"]:
    """A batch of random token sequences, each followed by itself: the input that reveals induction heads.

    Draw every token uniformly from the whole vocabulary 0 .. d_vocab - 1, independently, with all the
    randomness taken from `generator`, so that the same seed gives the same batch whatever else has used
    torch's global random state. Each row is its seq_len random tokens, then the same seq_len tokens again
    (no BOS token in front). Within the second half a model that has learned to copy can predict a token from
    what followed its earlier copy (unless the token before it occurs twice in the first half: then two tokens
    followed it, and the prediction is a guess). TransformerLens' to_tokens and ARENA's exercises put a BOS
    token in front: there a row is 1 + 2 * seq_len long and every induction offset of this topic moves by one.

    Shapes:
        returns: [batch, 2 * seq_len], int64 token ids (what embeddings and cross_entropy take); row[seq_len:]
                 equals row[:seq_len]

    Hints:
        1. torch.randint takes a generator argument; mind its upper bound, which is excluded.
        2. Draw a [batch, seq_len] block once and concatenate it with itself along pos.
    """
    first = torch.randint(0, d_vocab, (batch, seq_len), generator=generator)
    return torch.cat([first, first], dim=1)


# How much each head attends to the previous token, [batch, n_heads, pos, pos] -> [n_heads]: topic 05's
# previous_token_score, which you wrote there, under the name induction.py uses.
previous_token_scores = transformer.attention.previous_token_score


@kata
def duplicate_token_scores(pattern: Float[Tensor, "batch n_heads pos pos"], seq_len: int) -> Float[Tensor, "n_heads"]:
    """On repeated tokens (repeated_tokens: pos = 2 * seq_len), how much each head attends to the earlier
    copy of the query's own token: the attention from query q to key q - seq_len, averaged over the queries
    q = seq_len .. 2 * seq_len - 1 (the second half) and over the batch. (With a BOS token in front, as in
    ARENA, the second half starts one position later: q = seq_len + 1 .. 2 * seq_len.)

    Shapes:
        pattern: [batch, n_heads, 2 * seq_len, 2 * seq_len]
        returns: [n_heads]

    Hints:
        1. Only second-half queries have an earlier copy; the key of query q is exactly seq_len positions back.
        2. Pick the (query, key) pairs with two integer index tensors, one for each axis, then average over
           the batch and the queries.
    """
    queries = torch.arange(seq_len, 2 * seq_len, device=pattern.device)
    return pattern[:, :, queries, queries - seq_len].mean(dim=(0, 2))


@kata
def induction_scores(pattern: Float[Tensor, "batch n_heads pos pos"], seq_len: int) -> Float[Tensor, "n_heads"]:
    """On repeated tokens (pos = 2 * seq_len), how much each head attends to the token AFTER the earlier copy
    of the query's token: the attention from query q to key q - seq_len + 1, averaged over the queries
    q = seq_len .. 2 * seq_len - 1 and over the batch.

    An induction head scores close to 1: at the second A of "A B ... A" it looks at the B that followed the
    first A, and copies it as its prediction.

    Shapes:
        pattern: [batch, n_heads, 2 * seq_len, 2 * seq_len]
        returns: [n_heads]

    Hints:
        1. Write out seq_len = 3: tokens a b c a b c. Which key does the query at position 3 (the second a)
           attend to, and which queries count?
        2. The same stripe as duplicate_token_scores, one key to the right: seq_len queries, seq_len - 1 back.
           Query seq_len - 1 is not one of them, even though its key (0) exists.
    """
    queries = torch.arange(seq_len, 2 * seq_len, device=pattern.device)
    return pattern[:, :, queries, queries - seq_len + 1].mean(dim=(0, 2))
