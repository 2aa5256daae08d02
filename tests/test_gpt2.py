"""`katas gpt2`: the learner's GPT-2 with real weights, tested offline through the very code the command runs.

The real command downloads GPT-2 small. Here the same code path (`katakit.gpt2.load`, `generate`, the
`katas gpt2` command) reads a folder the test makes: a small random `GPT2LMHeadModel` saved with
`save_pretrained` (safetensors), and a byte-level BPE tokenizer that the test trains with Hugging Face's
`tokenizers` on a slice of the standard library's own documentation. Nothing is downloaded.
"""

import pydoc_data.topics
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from katakit import cli, gpt2

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "The for statement is used to iterate"
pytestmark = pytest.mark.timeout(120)


def _train_tokenizer() -> Tokenizer:
    pages = [pydoc_data.topics.topics[key] for key in sorted(pydoc_data.topics.topics)[:10]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(pages, trainer)
    return tokenizer


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A folder as `save_pretrained` leaves it: a random GPT-2 (safetensors) and its tokenizer."""
    folder = tmp_path_factory.mktemp("gpt2")
    tokenizer = _train_tokenizer()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer).save_pretrained(folder)
    config = GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=48,
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    assert (folder / "model.safetensors").is_file()
    return folder


def test_the_command_runs_your_model_on_the_saved_weights_and_checks_it_against_hugging_face(saved, capsys):
    code = cli.main(["gpt2", PROMPT, "--model", str(saved), "--tokens", "6", "--impl=reference", "--root", str(ROOT)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "differ from Hugging Face's by at most" in out
    assert PROMPT in out, "the prompt comes back, followed by the new text"


def test_greedy_text_is_hugging_faces_greedy_text(saved):
    loaded = gpt2.load(str(saved), ROOT, "reference")
    ours = gpt2.generate(loaded, PROMPT, 8, greedy=True)
    tokens = torch.tensor([loaded.tokenizer.encode(PROMPT)])
    theirs = loaded.hf_model.generate(tokens, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0)
    assert ours == loaded.tokenizer.decode(theirs[0].tolist())
    assert gpt2.logit_difference(loaded, PROMPT) < 1e-4


def test_the_same_seed_gives_the_same_text_and_another_seed_other_text(saved):
    loaded = gpt2.load(str(saved), ROOT, "reference")
    texts = [gpt2.generate(loaded, PROMPT, 12, temperature=2.0, top_k=None, seed=seed) for seed in (1, 1, 2)]
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]


def test_with_topic_06_still_to_do_it_says_which_kata_instead_of_a_traceback(saved, capsys):
    code = cli.main(["gpt2", PROMPT, "--model", str(saved), "--impl=katas", "--root", str(ROOT)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_WRONG
    assert "needs topic 06 done first: config_from_hf is still to do (katas/06_transformer/transformer.py:" in err


def test_only_safetensors_are_loaded(tmp_path, saved, capsys):
    model = GPT2LMHeadModel.from_pretrained(saved)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")  # a pickle: never loaded
    model.config.save_pretrained(tmp_path)
    code = cli.main(["gpt2", PROMPT, "--model", str(tmp_path), "--impl=reference", "--root", str(ROOT)])
    err = capsys.readouterr().err
    assert code == cli.EXIT_WRONG
    assert "could not load" in err and "548 MB" in err, "say what is missing and what the real model downloads"


def test_a_prompt_longer_than_the_context_is_refused_with_the_numbers(saved):
    loaded = gpt2.load(str(saved), ROOT, "reference")
    with pytest.raises(gpt2.Unavailable, match="exceed the model's context of 48"):
        gpt2.generate(loaded, PROMPT, 100)
