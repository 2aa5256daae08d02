"""`katas gpt2 "prompt"`: the GPT-2 you wrote in topic 06, given OpenAI's real weights, writing text.

What it downloads, once, into Hugging Face's cache (~/.cache/huggingface; set HF_HOME to move it): the
model `openai-community/gpt2` (GPT-2 small, 124M parameters): its weights as safetensors (548 MB), its
config and its tokenizer files (about 2 MB). After that it runs offline. Only safetensors are loaded (no
pickle), and no code from the Hub runs (`trust_remote_code` is never set). `--model FOLDER` takes a folder
saved with `save_pretrained` instead, which is how the tests run this same code offline.

The path through your code: 06's `config_from_hf` reads Hugging Face's config, `convert_hf_state_dict`
turns its weights into yours, your `GPT2` computes the logits, and `generate_sampled` (or
`generate_greedy`, with --greedy) writes the text. Before generating, it compares your logits on the
prompt with Hugging Face's own model, so you see at once whether your GPT-2 is GPT-2.
"""

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from katakit import impl

DEFAULT_MODEL = "openai-community/gpt2"
TOPIC, MODULE = "06_transformer", "transformer"


class Unavailable(Exception):
    """The model cannot be loaded or run (not downloaded, no network, or topic 06 not done); the message says why."""


@dataclass
class Loaded:
    """Your GPT-2 with the weights, the tokenizer, and Hugging Face's model to compare with."""

    transformer: ModuleType  # your katas/06_transformer/transformer.py (or reference/'s)
    model: Any  # your GPT2, in eval mode
    tokenizer: Any  # a transformers tokenizer (GPT-2's byte-level BPE)
    hf_model: Any  # transformers.GPT2LMHeadModel
    root: Path  # the repository


def load(source: str, root: Path, implementation: str) -> Loaded:
    """Load `source` (a Hub name or a local folder) into your GPT2 through 06's converter."""
    from transformers import AutoTokenizer, GPT2LMHeadModel
    from transformers.utils import logging

    logging.disable_progress_bar()
    try:
        hf_model = GPT2LMHeadModel.from_pretrained(source, use_safetensors=True).eval()
        tokenizer = AutoTokenizer.from_pretrained(source)  # built-in classes only: no trust_remote_code
    except OSError as error:
        raise Unavailable(
            f"could not load {source!r}: {error}\n"
            f"The first run downloads {DEFAULT_MODEL} (548 MB of safetensors weights) and needs the internet; "
            "a local folder needs a model saved with save_pretrained (model.safetensors, config.json) and its "
            "tokenizer files."
        ) from error
    transformer = impl.load(implementation, TOPIC, MODULE, root)
    try:
        cfg = transformer.config_from_hf(hf_model.config)
        model = transformer.GPT2(cfg)
        model.load_state_dict(transformer.convert_hf_state_dict(hf_model.state_dict(), cfg), strict=True)
    except NotImplementedError as error:
        raise Unavailable(_not_done(error, root)) from error
    return Loaded(transformer, model.eval(), tokenizer, hf_model, root)


def _not_done(error: NotImplementedError, root: Path) -> str:
    return f"this needs topic 06 done first: {_where(error, root)}. Run `katas 06` to see what is left."


def _where(error: NotImplementedError, root: Path) -> str:
    """The kata that raised: `config_from_hf is still to do (katas/06_transformer/transformer.py:93)`."""
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    if frame is None:
        return "a kata is still to do"
    code = frame.tb_frame.f_code
    path = Path(code.co_filename)
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    return f"{code.co_name} is still to do ({shown}:{frame.tb_lineno})"


def logit_difference(loaded: Loaded, prompt: str) -> float:
    """The largest difference between your logits and Hugging Face's on the prompt's tokens."""
    import torch

    tokens = torch.tensor([loaded.tokenizer.encode(prompt)])
    with torch.no_grad():
        ours = loaded.model(tokens)
        theirs = loaded.hf_model(tokens).logits
    return (ours - theirs).abs().max().item()


def generate(
    loaded: Loaded,
    prompt: str,
    n_new: int,
    temperature: float = 1.0,
    top_k: int | None = 50,
    seed: int = 0,
    greedy: bool = False,
) -> str:
    """The prompt followed by n_new tokens from your model, as text."""
    import torch

    tokens = torch.tensor([loaded.tokenizer.encode(prompt)])
    if tokens.shape[1] == 0:
        raise Unavailable("the prompt is empty: give GPT-2 a few words to continue")
    n_ctx = loaded.model.cfg.n_ctx
    if tokens.shape[1] + n_new > n_ctx:
        raise Unavailable(f"{tokens.shape[1]} prompt tokens + {n_new} new ones exceed the model's context of {n_ctx}")
    try:
        if greedy:
            out = loaded.transformer.generate_greedy(loaded.model, tokens, n_new)
        else:
            generator = torch.Generator().manual_seed(seed)
            out = loaded.transformer.generate_sampled(
                loaded.model, tokens, n_new, temperature=temperature, top_k=top_k, generator=generator
            )
    except NotImplementedError as error:
        raise Unavailable(_not_done(error, loaded.root)) from error
    return loaded.tokenizer.decode(out[0].tolist())
