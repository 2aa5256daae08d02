"""katakit.randomness.check_rng_contract, shown turning each deliberately broken kata red with a
message that names the mistake, and a correct one green."""

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from katakit.randomness import Draw, check_rng_contract, same

PROBS = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])


def sample_tokens(probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    """The correct kata: 8 tokens a row, from the top_k most likely (all without top_k)."""
    if top_k is not None:
        threshold = probs.topk(top_k, dim=-1).values[:, -1:]
        probs = probs.masked_fill(probs < threshold, 0.0)
    return torch.multinomial(probs, 8, replacement=True, generator=generator)


def none_made_a_fixed_generator(
    probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if generator is None:
        generator = torch.Generator()  # the mistake: a fixed seed instead of the global state
    return sample_tokens(probs, top_k, generator)


def none_seeded_from_the_global_seed(
    probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if generator is None:  # the mistake: follows torch.manual_seed, but never moves the global state on
        generator = torch.Generator().manual_seed(torch.initial_seed())
    return sample_tokens(probs, top_k, generator)


def none_made_an_unseeded_generator(
    probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if generator is None:  # the mistake: seeded from the clock, torch.manual_seed cannot reproduce it
        generator = torch.Generator()
        generator.seed()
    return sample_tokens(probs, top_k, generator)


def top_k_forgets_the_generator(
    probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if top_k is not None:
        threshold = probs.topk(top_k, dim=-1).values[:, -1:]
        kept = probs.masked_fill(probs < threshold, 0.0)
        return torch.multinomial(kept, 8, replacement=True)  # the mistake: no generator in this branch
    return torch.multinomial(probs, 8, replacement=True, generator=generator)


def also_draws_from_the_global_state(
    probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    jittered = probs + 1e-3 * torch.rand(probs.shape)  # the mistake: a draw from the global state
    return sample_tokens(jittered, top_k, generator)


def ignores_the_generator(probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    return sample_tokens(probs, top_k, torch.Generator().manual_seed(0))  # the mistake: a seed of its own


def reseeds_the_generator(probs: Tensor, top_k: int | None = None, generator: torch.Generator | None = None) -> Tensor:
    if generator is not None:
        generator.manual_seed(generator.initial_seed())  # the mistake: every call starts the stream again
    return sample_tokens(probs, top_k, generator)


def windows(tokens: Tensor, n_ctx: int, batch_size: int, generator: torch.Generator) -> Tensor:
    """The correct kata: batch_size windows, each at its own random start."""
    starts = torch.randint(0, len(tokens) - n_ctx, (batch_size,), generator=generator)
    return tokens[starts[:, None] + torch.arange(n_ctx)]


def windows_sharing_one_offset(tokens: Tensor, n_ctx: int, batch_size: int, generator: torch.Generator) -> Tensor:
    start = torch.randint(0, len(tokens) - n_ctx, (1,), generator=generator)  # the mistake: one draw for all
    return tokens[start.expand(batch_size)[:, None] + torch.arange(n_ctx)]


def windows_one_offset_apart(tokens: Tensor, n_ctx: int, batch_size: int, generator: torch.Generator) -> Tensor:
    offset = torch.randint(0, len(tokens) - n_ctx - batch_size, (), generator=generator)  # the same mistake, spread
    return tokens[(offset + torch.arange(batch_size))[:, None] + torch.arange(n_ctx)]


def random_start(d: int) -> Tensor:
    """A correct kata with no generator parameter: it draws from torch's global random state."""
    return torch.randn(d)


def fixed_start(d: int) -> Tensor:
    return torch.randn(d, generator=torch.Generator().manual_seed(0))  # the mistake: the same start every time


def sampling(kata: Callable[..., Tensor]) -> dict[str, Draw]:
    """One draw per branch of a sampling kata: without and with top_k."""
    return {
        "top_k=None": lambda g: kata(PROBS, generator=g),
        "top_k=3": lambda g: kata(PROBS, top_k=3, generator=g),
    }


def window_starts(result: Tensor) -> Tensor:
    return result[:, 0]


def steps_between_starts(result: Tensor) -> Tensor:
    return result[1:, 0] - result[:-1, 0]


WINDOW_GROUPS = {"window starts": window_starts, "steps between consecutive window starts": steps_between_starts}


def check_windows(kata: Callable[[Tensor, int, int, torch.Generator], Tensor]) -> None:
    tokens = torch.arange(2**20)  # so many starts that two draws of the broken katas' one offset hardly ever meet
    check_rng_contract(
        lambda g: kata(tokens, 5, 20, g), what="windows", independent=WINDOW_GROUPS, sampler="torch.randint"
    )


def test_a_correct_sampling_kata_is_green():
    check_rng_contract(sampling(sample_tokens), what="sample_tokens", global_rng=True, sampler="torch.multinomial")


def test_correct_windows_and_a_correct_global_kata_are_green():
    check_windows(windows)
    check_rng_contract(lambda _: random_start(7), what="random_start", generator=False, global_rng=True)


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        (
            none_made_a_fixed_generator,
            r"gives the same result under two different global seeds with generator=None: `None` must mean torch's "
            r"global RNG \(torch.multinomial\(..., generator=None\)\), not a fixed torch.Generator\(\)",
        ),
        (none_seeded_from_the_global_seed, "gave the same result twice in a row with generator=None"),
        (none_made_an_unseeded_generator, "two different results with generator=None after the same torch.manual_seed"),
        (
            top_k_forgets_the_generator,
            r"\(top_k=3\) changed torch's global random state although a generator was given: pass "
            r"`generator=generator` to every random call \(torch.multinomial\) \(this branch does not\)",
        ),
        (also_draws_from_the_global_state, r"\(top_k=None\) changed torch's global random state although a generator"),
        (ignores_the_generator, "gave the same result for two different generator seeds"),
        (reseeds_the_generator, "same result twice in a row from one generator: .* do not re-seed it"),
    ],
    ids=["None made a fixed generator", "None seeded from the global seed", "None made an unseeded generator",
         "top-k branch forgets the generator", "also draws from the global state", "ignores the generator",
         "reseeds the generator"],
)  # fmt: skip
def test_a_sampling_kata_that_breaks_the_contract_is_red(broken, said):
    with pytest.raises(AssertionError, match=said):
        check_rng_contract(sampling(broken), what="sample_tokens", global_rng=True, sampler="torch.multinomial")


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        (windows_sharing_one_offset, "windows: all 20 window starts are the same, though each is drawn independently"),
        (windows_one_offset_apart, "all 19 steps between consecutive window starts are the same"),
    ],
    ids=["one offset", "one offset, windows side by side"],
)
def test_windows_that_share_one_random_offset_are_red(broken, said):
    with pytest.raises(AssertionError, match=said):
        check_windows(broken)


def test_a_global_kata_with_a_fixed_generator_is_red():
    with pytest.raises(AssertionError, match=r"fixed_start gives the same result under two different global seeds: "):
        check_rng_contract(lambda _: fixed_start(7), what="fixed_start", generator=False, global_rng=True)


def test_the_global_state_may_move_where_the_docstring_says_so():
    def built_then_drawn(generator: torch.Generator | None) -> Tensor:
        torch.randn(3)  # as building a GPT2 does, before its weights are drawn from the generator
        return torch.randn(5, generator=generator)

    check_rng_contract(built_then_drawn, what="built_then_drawn", global_untouched=False)
    with pytest.raises(AssertionError, match="changed torch's global random state"):
        check_rng_contract(built_then_drawn, what="built_then_drawn")


def test_the_callers_global_state_is_left_as_it_was():
    before = torch.get_rng_state()
    check_rng_contract(sampling(sample_tokens), what="sample_tokens", global_rng=True)
    assert torch.equal(torch.get_rng_state(), before)


def test_a_kata_drawing_from_nothing_is_refused():
    with pytest.raises(ValueError, match="generator, the global RNG, or both"):
        check_rng_contract(lambda _: None, what="nothing", generator=False)


def test_same_compares_values_through_containers_and_modules():
    x = torch.tensor([1.0, float("nan")])
    assert same(x, x.clone()) and not same(x, torch.tensor([2.0, float("nan")]))
    assert not same(torch.zeros(2), torch.zeros(2, dtype=torch.float64)) and not same(torch.zeros(2), torch.zeros(3))
    assert not same(torch.zeros(2), [0.0, 0.0])
    assert same({"a": [x, 1.0]}, {"a": [x.clone(), 1.0]}) and not same({"a": 1}, {"b": 1})
    assert not same((1, 2), [1, 2]) and not same([1, 2], [1, 2, 3])
    assert same(float("nan"), float("nan")) and not same(1.0, 2.0)
    one, two = nn.Linear(2, 3), nn.Linear(2, 3)
    assert not same(one, two)
    two.load_state_dict(one.state_dict())
    assert same(one, two)
