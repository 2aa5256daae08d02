"""The bridge to TransformerLens: export your GPT-2 in Hugging Face's format, open it with TransformerLens,
and check that every activation of your cache is the one TransformerLens sees.

Everything in this topic runs on the GPT-2 you wrote in topic 06, with TransformerLens' names, so that
what you learn transfers to the library researchers use. This module closes the loop: your weights go
back into Hugging Face's layout (the inverse of topic 06's convert_hf_state_dict), into a folder that
any Hugging Face tool loads, and TransformerLens' TransformerBridge boots that folder and caches its own
activations under the same names as your run_with_cache. When they agree to float32 rounding, your
cache is TransformerLens' cache, and your hooks are its hooks.

TransformerLens is an optional extra of this repository: `pip install -e '.[interp]'` installs it.
It takes seconds to import, so compare_with_transformer_lens imports it when it is called.

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
from pathlib import Path

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers import GPT2Config, GPT2LMHeadModel

from katakit import kata

transformer = importlib.import_module("..06_transformer.transformer", __package__)
activations = importlib.import_module(".activations", __package__)


@kata
def to_hf_state_dict(
    state_dict: dict[str, Float[Tensor, "..."]], cfg: transformer.Config
) -> dict[str, Float[Tensor, "..."]]:
    """Convert our GPT2's state dict into a Hugging Face GPT2LMHeadModel's: topic 06's
    convert_hf_state_dict, backwards.

    Return the keys GPT2LMHeadModel(...).load_state_dict(..., strict=True) expects: "transformer.wte.weight",
    "transformer.wpe.weight", for every layer "transformer.h.{l}." + ln_1.weight/bias, attn.c_attn.weight/bias,
    attn.c_proj.weight/bias, ln_2.weight/bias, mlp.c_fc.weight/bias, mlp.c_proj.weight/bias, then
    "transformer.ln_f.weight/bias" and "lm_head.weight". c_attn fuses the queries, keys and values: along
    its last axis all of Q, then all of K, then all of V, each with head 0's d_head features first.
    c_proj of the attention stacks the heads' W_O along its input axis, head 0 first. lm_head is an
    nn.Linear without bias, [d_vocab, d_model]. Hugging Face's GPT-2 has no unembedding bias: when b_U is
    not all zeros the model cannot be exported, so raise a ValueError saying so.

    Shapes:
        state_dict: our names -> tensors (GPT2(cfg).state_dict())
        cfg: the model's Config (Hugging Face needs d_model = n_heads * d_head)
        returns: Hugging Face's names -> tensors (c_attn.weight [d_model, 3 * d_model], lm_head.weight
                 [d_vocab, d_model], ...)

    Hints:
        1. Walk topic 06's convert_hf_state_dict backwards, key by key. Which of its steps are their own
           inverse, and which ones (split_c_attn, the rearrange of c_proj, the transpose of lm_head) need undoing?
        2. Stack W_Q, W_K, W_V into a new leading qkv axis, then one einops.rearrange writes the pattern of
           split_c_attn with its two sides swapped. The biases go the same way, without the d_model axis.
        3. torch.any (or .any()) on b_U tells whether the export would lose something.
    """
    if state_dict["unembed.b_U"].any():
        raise ValueError("Hugging Face's GPT-2 has no unembedding bias: b_U must be all zeros to export the model")
    hf = {"transformer.wte.weight": state_dict["embed.W_E"], "transformer.wpe.weight": state_dict["pos_embed.W_pos"]}
    for layer in range(cfg.n_layers):
        ours, theirs = f"blocks.{layer}.", f"transformer.h.{layer}."
        W_QKV = torch.stack([state_dict[ours + f"attn.W_{name}"] for name in "QKV"])
        b_QKV = torch.stack([state_dict[ours + f"attn.b_{name}"] for name in "QKV"])
        hf |= {
            theirs + "ln_1.weight": state_dict[ours + "ln1.w"],
            theirs + "ln_1.bias": state_dict[ours + "ln1.b"],
            theirs + "attn.c_attn.weight": einops.rearrange(
                W_QKV, "qkv n_heads d_model d_head -> d_model (qkv n_heads d_head)"
            ),
            theirs + "attn.c_attn.bias": einops.rearrange(b_QKV, "qkv n_heads d_head -> (qkv n_heads d_head)"),
            theirs + "attn.c_proj.weight": einops.rearrange(
                state_dict[ours + "attn.W_O"], "n_heads d_head d_model -> (n_heads d_head) d_model"
            ),
            theirs + "attn.c_proj.bias": state_dict[ours + "attn.b_O"],
            theirs + "ln_2.weight": state_dict[ours + "ln2.w"],
            theirs + "ln_2.bias": state_dict[ours + "ln2.b"],
            theirs + "mlp.c_fc.weight": state_dict[ours + "mlp.W_in"],
            theirs + "mlp.c_fc.bias": state_dict[ours + "mlp.b_in"],
            theirs + "mlp.c_proj.weight": state_dict[ours + "mlp.W_out"],
            theirs + "mlp.c_proj.bias": state_dict[ours + "mlp.b_out"],
        }
    return hf | {
        "transformer.ln_f.weight": state_dict["ln_final.w"],
        "transformer.ln_f.bias": state_dict["ln_final.b"],
        "lm_head.weight": state_dict["unembed.W_U"].T,
    }


@kata
def save_for_hugging_face(model: nn.Module, folder: Path) -> Path:
    """Save our GPT2 as a Hugging Face model folder that GPT2LMHeadModel.from_pretrained(folder) loads
    (and TransformerLens boots), and return folder.

    Build a transformers.GPT2Config from model.cfg (topic 06's config_from_hf, backwards: n_embd, n_head,
    n_inner, n_layer, n_positions, vocab_size, layer_norm_epsilon, initializer_range), with
    tie_word_embeddings=False (our W_U is a parameter of its own: tied, Hugging Face would replace it
    with W_E.T when loading) and every dropout probability (attn_pdrop, embd_pdrop, resid_pdrop) 0, since
    our model has none. Make a GPT2LMHeadModel of it, load to_hf_state_dict of the model's weights into
    it strictly, and save_pretrained it into folder (safetensors, Hugging Face's default).

    Shapes:
        model: topic 06's GPT2 (model.cfg is its Config); b_U must be zero (see to_hf_state_dict)
        folder: where to save (created if missing)
        returns: folder

    Hints:
        1. GPT2Config takes Hugging Face's names as keyword arguments; the docstring of topic 06's
           config_from_hf pairs them with ours.
        2. GPT2LMHeadModel(config) creates random weights; load_state_dict(..., strict=True) replaces every
           one of them, and save_pretrained writes config.json and model.safetensors.
    """
    cfg = model.cfg
    hf_config = GPT2Config(
        n_embd=cfg.d_model,
        n_head=cfg.n_heads,
        n_inner=cfg.d_mlp,
        n_layer=cfg.n_layers,
        n_positions=cfg.n_ctx,
        vocab_size=cfg.d_vocab,
        layer_norm_epsilon=cfg.layer_norm_eps,
        initializer_range=cfg.init_range,
        tie_word_embeddings=False,
        attn_pdrop=0.0,
        embd_pdrop=0.0,
        resid_pdrop=0.0,
    )
    hf_model = GPT2LMHeadModel(hf_config)
    hf_model.load_state_dict(to_hf_state_dict(model.state_dict(), cfg), strict=True)
    hf_model.save_pretrained(folder)
    return folder


@kata
def compare_with_transformer_lens(model: nn.Module, tokens: Int[Tensor, "batch pos"], folder: Path) -> dict[str, float]:
    """Boot the model saved in folder with TransformerLens, run both models on tokens, and return, for every
    name of your run_with_cache's cache that TransformerLens' cache also has, the largest absolute difference
    between the two activations.

    Boot it with transformer_lens.model_bridge.TransformerBridge.boot_transformers(str(folder), device="cpu"),
    put it in eval mode, and run its run_with_cache(tokens) without gradients; run activations.run_with_cache
    on model. TransformerLens' shapes are those of your cache (hook_z [batch, pos, n_heads, d_head],
    hook_pattern [batch, n_heads, query_pos, key_pos], hook_scale [batch, pos, 1]); a name whose shapes
    differ is a ValueError naming it. One difference of meaning: TransformerLens' bridge (version 4) records
    a LayerNorm's hook_normalized BEFORE its w and b, (x - mean) / scale, where your cache (like a
    HookedTransformer loaded with fold_ln=False) has the LayerNorm's output: apply the LayerNorm's w and b
    (the module of model whose name is the hook's name without ".hook_normalized") to TransformerLens' value
    before comparing.

    Shapes:
        model: topic 06's GPT2, whose weights folder holds (save_for_hugging_face)
        tokens: [batch, pos]
        folder: a Hugging Face model folder
        returns: name -> max |ours - TransformerLens'| (a Python float)

    Hints:
        1. Import transformer_lens inside the function (it is an optional extra, and slow to import).
           Its cache behaves like a dict: `name in cache`, cache[name].
        2. Our module names are TransformerLens' names: model.get_submodule("blocks.0.ln1") is the LayerNorm
           whose hook is blocks.0.ln1.hook_normalized. .item() turns a 0-d tensor into a float.
    """
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(str(folder), device="cpu")
    bridge.eval()
    with torch.no_grad():
        _, theirs = bridge.run_with_cache(tokens)
        _, ours = activations.run_with_cache(model, tokens)
    differences = {}
    for name, activation in ours.items():
        if name not in theirs:
            continue
        their_activation = theirs[name]
        if their_activation.shape != activation.shape:
            raise ValueError(
                f"{name}: ours is {list(activation.shape)}, TransformerLens' {list(their_activation.shape)}"
            )
        if name.endswith(".hook_normalized"):
            layer_norm = model.get_submodule(name.removesuffix(".hook_normalized"))
            their_activation = their_activation * layer_norm.w + layer_norm.b
        differences[name] = (activation - their_activation).abs().max().item()
    return differences
