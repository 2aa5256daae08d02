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

    Hints (the next one: katas hint to_hf_state_dict 2):
        1. Walk topic 06's convert_hf_state_dict backwards, key by key. Which of its steps are their own
           inverse, and which ones (split_c_attn, the rearrange of c_proj, the transpose of lm_head) need undoing?
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint save_for_hugging_face 2):
        1. GPT2Config takes Hugging Face's names as keyword arguments; the docstring of topic 06's
           config_from_hf pairs them with ours.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint compare_with_transformer_lens 2):
        1. Import transformer_lens inside the function (it is an optional extra, and slow to import).
           Its cache behaves like a dict: `name in cache`, cache[name].
    """
    raise NotImplementedError
