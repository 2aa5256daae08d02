"""Induction: train a two-layer attention-only transformer of your own on repeated random tokens, then find
the induction circuit it learned with the tools of this topic.

On "A B ... A" an induction head at the second A attends to the B that followed the first A and copies it:
the model predicts B. It needs a partner one layer below, a previous-token head, which writes into every
position the token before it; the induction head's keys read that (K-composition), so that "my previous
token was A" matches the query "I am A". Two layers are the fewest that can do it, which is why the
smallest model that learns it, and the one this module builds, has two.

The model is made of topic 06's components (Embed, PosEmbed, Attention, Unembed) and has no MLP and no
LayerNorm: its blocks keep the names ln1 and ln_final, as identities, so that the tools of this topic
(activations.run_with_cache and run_with_hooks, with the hook names of the modules it has, and
circuits.composition_scores) read it as they read a GPT2. Without LayerNorm the residual stream is exactly
the sum of the embeddings and the heads' outputs. The composition scores of circuits.py still only
summarise how well two heads' weights line up: they ignore the softmax and the real inputs, and even random
weights score above zero, so read a score against random matrices of the same shapes, never on its own.
reverse_engineering.py then takes the circuit apart exactly.

This topic's repeated tokens have no BOS token in front. ARENA and TransformerLens' to_tokens prepend one,
which shifts every induction offset by one position.

Repeated random tokens of one fixed length can be solved without induction: a single head can learn to
look a fixed number of positions back. train_induction_model draws a new length at every step, so what
pays is to look for the earlier copy of the current token, wherever it is. Layer 1 often ends up with
several induction heads that back each other up; they all read the same previous-token head.

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

import functools
import importlib

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from katakit import detached, in_place, kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)
activations = importlib.import_module(".activations", __package__)
circuits = importlib.import_module(".circuits", __package__)


class AttnOnlyBlock(nn.Module):
    """One attention-only block: the layer's attention reads ln1 of the residual stream (an identity here,
    kept so the block has GPT2's names) and its output is added back to the stream. No MLP."""

    def __init__(self, cfg: transformer.Config):
        super().__init__()
        self.ln1 = nn.Identity()
        self.attn = transformer.Attention(cfg)

    def forward(self, residual: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        return residual + self.attn(self.ln1(residual))


class AttnOnlyTransformer(nn.Module):
    """An attention-only transformer built from topic 06's components, with GPT2's attribute names.

    residual = embed(tokens) + pos_embed(tokens); then, for every block in turn, residual = block(residual)
    (AttnOnlyBlock's forward, given: residual + attn(ln1(residual))); logits = unembed(ln_final(residual)).
    ln1 and ln_final are identities (this model has no LayerNorm) and there is no MLP: the residual stream
    is the embeddings plus the output of every head, nothing else. Call the blocks and the modules
    themselves, so that activations.run_with_cache and run_with_hooks see every block's input and output:
    hook_resid_pre and hook_resid_post are the input and output of a block.

    Shapes:
        forward(tokens): [batch, pos] (int) -> [batch, pos, d_vocab]

    Hints:
        1. It is 06's GPT2.forward, with blocks that hold attention only.
        2. Call every block as a module, rather than writing out what it does: a hook on a block fires only when
           the block itself runs. Call self.ln_final too, even though it is an identity: the model stays correct
           if somebody puts a LayerNorm there.

    """

    def __init__(self, cfg: transformer.Config):
        super().__init__()
        self.cfg = cfg
        self.embed = transformer.Embed(cfg)
        self.pos_embed = transformer.PosEmbed(cfg)
        self.blocks = nn.ModuleList([AttnOnlyBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = nn.Identity()
        self.unembed = transformer.Unembed(cfg)

    @kata
    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_vocab"]:
        """The logits of every position of every sequence."""
        residual = self.embed(tokens) + self.pos_embed(tokens)
        for block in self.blocks:
            residual = block(residual)
        return self.unembed(self.ln_final(residual))


@kata
@detached
def attention_patterns(
    model: AttnOnlyTransformer, tokens: Int[Tensor, "batch pos"]
) -> Float[Tensor, "n_layers batch n_heads query_pos key_pos"]:
    """The attention pattern of every head of every layer of an AttnOnlyTransformer on tokens, stacked.

    activations.run_with_cache records them all, under blocks.{l}.attn.hook_pattern. Analysis only: no
    gradients, detached results.

    Shapes:
        tokens: [batch, pos]
        returns: [n_layers, batch, n_heads, query_pos, key_pos], each row summing to 1 over key_pos

    Hints:
        1. Layer 1's pattern depends on what layer 0 wrote: one run of the whole model gives every layer's.
        2. Read the cache once per layer, in order, and torch.stack the list inside torch.no_grad().
    """
    with torch.no_grad():
        _, cache = activations.run_with_cache(model, tokens)
        return torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(len(model.blocks))])


@kata
@in_place("model")
def train_induction_model(
    model: AttnOnlyTransformer,
    steps: int,
    batch: int,
    min_seq_len: int,
    max_seq_len: int,
    lr: float,
    generator: torch.Generator,
) -> list[float]:
    """Train model in place on repeated random tokens, with AdamW, and return the loss of every step.

    At every step, in this order: draw seq_len uniformly from min_seq_len .. max_seq_len (both included),
    as a Python int, with torch.randint and generator; draw the batch with
    activations.repeated_tokens(batch, seq_len, model.cfg.d_vocab, generator); compute topic 06's
    next_token_loss of the model's logits on it; then one optimiser step. The optimiser is
    torch.optim.AdamW(model.parameters(), lr=lr) with its other defaults, created once before the
    first step (this topic does not depend on topic 07, on purpose: PyTorch's AdamW is the same as the one
    you may have written there). Return each step's loss as a float.

    With d_model 32, 4 heads, a vocabulary of 30, sequences of 4 to 12 tokens, batch 128 and lr 1e-2, an
    induction head forms within 2000 steps: the loss on the repeated half falls from log(30) = 3.4 to
    about 0.2 in under a minute on a laptop's CPU.

    Shapes:
        model: an AttnOnlyTransformer (or any model of tokens -> logits with a cfg.d_vocab), changed in place
        returns: a list of steps floats

    Hints:
        1. The usual loop: forward, loss, zero the gradients, backward, step. Which of these, left out,
           lets every step add to the gradients of all the steps before it?
        2. torch.randint(low, high, (), generator=generator) gives a 0-d tensor in low .. high - 1: the
           upper bound is excluded, and .item() makes it an int. The order of the two draws per step
           matters: both use the same generator.
    """
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        seq_len = int(torch.randint(min_seq_len, max_seq_len + 1, (), generator=generator).item())
        tokens = activations.repeated_tokens(batch, seq_len, model.cfg.d_vocab, generator)
        loss = transformer.next_token_loss(model(tokens), tokens)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


# The capstone's recipe: small enough to train in well under a minute on a laptop's CPU, large enough to learn
# induction reliably (the induction head forms after 700 to 1600 steps for every seed tried).
INDUCTION_CONFIG = transformer.Config(d_model=32, n_heads=4, d_head=8, d_mlp=1, n_layers=2, n_ctx=24, d_vocab=30)
INDUCTION_TRAINING = {"steps": 2000, "batch": 128, "min_seq_len": 4, "max_seq_len": 12, "lr": 1e-2}


@functools.cache
def trained_induction_model(seed: int) -> tuple[AttnOnlyTransformer, list[float]]:
    """The capstone model: an AttnOnlyTransformer of INDUCTION_CONFIG initialised under torch.manual_seed(seed)
    (the global random state is restored afterwards), trained by your train_induction_model with
    INDUCTION_TRAINING and torch.Generator().manual_seed(seed). Returns (model, the loss of every step).

    Trained once per process and seed (functools.cache): the tests of induction.py and reverse_engineering.py
    and the notebook share one model, so analyse it, never change it. A model this small trains fastest on
    one thread, so it trains on one.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AttnOnlyTransformer(INDUCTION_CONFIG)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        losses = train_induction_model(model, **INDUCTION_TRAINING, generator=torch.Generator().manual_seed(seed))
    finally:
        torch.set_num_threads(threads)
    return model, losses


@kata
def find_heads(model: AttnOnlyTransformer, tokens: Int[Tensor, "batch pos"], seq_len: int) -> tuple[int, int]:
    """Find the induction circuit of a two-layer model: the previous-token head of layer 0 and the induction
    head of layer 1.

    tokens are repeated random tokens (activations.repeated_tokens: pos = 2 * seq_len). Return the index of
    the head of layer 0 with the highest previous-token score, and the index of the head of layer 1 with the
    highest induction score, as Python ints.

    Shapes:
        tokens: [batch, 2 * seq_len]
        returns: (previous-token head of layer 0, induction head of layer 1)

    Hints:
        1. attention_patterns gives every layer's pattern; activations has a score for each kind of head.
        2. argmax, not argmin, over the heads of the right layer, then .item().
    """
    patterns = attention_patterns(model, tokens)
    previous = activations.previous_token_scores(patterns[0]).argmax().item()
    induction = activations.induction_scores(patterns[1], seq_len).argmax().item()
    return previous, induction


@kata
@detached
def repeated_half_loss(
    model: AttnOnlyTransformer,
    tokens: Int[Tensor, "batch pos"],
    seq_len: int,
    ablate: tuple[int, int] | None = None,
) -> Float[Tensor, ""]:
    """The mean next-token loss of the predictions made in the repeated half, optionally with one head
    zero-ablated.

    tokens are repeated random tokens (pos = 2 * seq_len). Count the predictions made at the positions
    seq_len .. 2 * seq_len - 2, that is, of the tokens at seq_len + 1 .. 2 * seq_len - 1: each has been seen
    before, after the same token. (The token at position seq_len, the first of the repeat, cannot be
    predicted: nothing came before its first copy.) Average the cross-entropy over the batch and those
    seq_len - 1 positions.

    Not every one of them can be predicted for sure: when the current token occurs twice in the first half,
    two different tokens followed it, and copying cannot tell which comes now. With d_vocab 30 and seq_len
    10 that happens to 1 - (29/30)^9, about 26% of the predictions, and even a perfect induction head pays
    about log 2 on each of them: the loss levels off near 0.2, not at 0.

    ablate = (layer, head) zero-ablates that head: it writes nothing into the residual stream (its z, and so
    its share of the attention's output, is zero; b_O stays). Do it with the topic's ablation hook:
    activations.run_with_hooks with a hook on blocks.{layer}.attn.hook_z (as attribution.ablate_head does),
    so that no weight changes and the caller's model comes back as it was. Analysis only: no gradients, a
    detached result.

    Shapes:
        tokens: [batch, 2 * seq_len]
        returns: [] (a scalar)

    Hints:
        1. The logits at position t predict the token at t + 1: line up logits[:, t] with tokens[:, t + 1]
           for t from seq_len to 2 * seq_len - 2, and take log_softmax over the vocabulary.
        2. z is [batch, pos, n_heads, d_head]: the hook returns a copy with one slice of the head axis zeroed.
           Without ablate, run_with_hooks with no hooks is the plain forward pass.
    """
    hooks = {}
    if ablate is not None:
        layer, head = ablate

        def zero_head(z: Tensor) -> Tensor:
            z = z.clone()
            z[:, :, head] = 0
            return z

        hooks[f"blocks.{layer}.attn.hook_z"] = zero_head
    with torch.no_grad():
        log_probs = activations.run_with_hooks(model, tokens, hooks)[:, seq_len:-1].log_softmax(dim=-1)
        targets = tokens[:, seq_len + 1 :]
        return -log_probs.gather(dim=-1, index=targets[..., None]).mean()
