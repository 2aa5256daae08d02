"""Fixtures the tests of induction.py and reverse_engineering.py share: small attention-only models whose
every bias is nonzero, repeated random tokens, and the capstone model your train_induction_model trains.

A fixture named in a test's arguments is found here by pytest; the test files hold no copy of them.
"""

import functools
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import NamedTuple

import pytest
import torch
from torch import nn

# Distinct sizes, so that a wrong axis is a shape error; init_range 1 so that the heads attend sharply and
# differ from each other.
SMALL_SIZES = {"d_model": 12, "n_heads": 3, "d_head": 4, "d_mlp": 1, "n_ctx": 11, "d_vocab": 7, "init_range": 1.0}
HELD_OUT_SEQ_LEN = 10  # the capstone's held-out sequences: 10 random tokens, repeated once


@pytest.fixture(scope="module")
def induction(impl) -> ModuleType:
    """induction.py under test: impl itself in test_induction.py, impl.induction in test_reverse_engineering.py."""
    return getattr(impl, "induction", impl)


def build_small_model(induction: ModuleType, n_layers: int = 2, **changes) -> nn.Module:
    """An AttnOnlyTransformer of induction.py in float64 with SMALL_SIZES (changed by `changes`), every bias
    drawn nonzero, so that a forgotten one shows (tests/test_oracles.py checks it breaks every symmetry)."""
    cfg = induction.transformer.Config(**SMALL_SIZES | changes, n_layers=n_layers)
    model = induction.AttnOnlyTransformer(cfg).double()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.split(".")[-1].startswith("b_"):
                param.copy_(0.3 * torch.randn_like(param))
    return model


@pytest.fixture
def small_model(induction) -> Callable[..., nn.Module]:
    """small_model(n_layers=2, **changes): build_small_model of the induction.py under test."""
    return functools.partial(build_small_model, induction)


@pytest.fixture
def repeated() -> Callable[[int, int, int], torch.Tensor]:
    """repeated(d_vocab, batch, seq_len): [batch, 2 * seq_len] random tokens, the first half repeated, no BOS."""

    def draw(d_vocab: int, batch: int, seq_len: int) -> torch.Tensor:
        first = torch.randint(0, d_vocab, (batch, seq_len))
        return torch.cat([first, first], dim=1)

    return draw


class Capstone(NamedTuple):
    model: nn.Module
    losses: list[float]
    tokens: torch.Tensor  # [100, 2 * seq_len] held-out repeated tokens
    seq_len: int


@pytest.fixture(scope="module")
def capstone(induction) -> Iterator[Capstone]:
    """The capstone model your train_induction_model trained (induction.trained_induction_model: once per
    session and KATAS_SEED), its losses, and held-out repeated tokens it never saw. The tests that use it run
    on one thread: tiny models run fastest so, and other processes busy on the same cores then do not slow
    them down tenfold (two threads of torch wait for each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed = int(os.environ.get("KATAS_SEED", "0"))
        model, losses = induction.trained_induction_model(seed)
        held_out = torch.Generator().manual_seed(10_000 + seed)
        first = torch.randint(0, model.cfg.d_vocab, (100, HELD_OUT_SEQ_LEN), generator=held_out)
        yield Capstone(model, losses, torch.cat([first, first], dim=1), HELD_OUT_SEQ_LEN)
    finally:
        torch.set_num_threads(threads)
