"""The RNG contract of a kata that draws random numbers, checked by one call: `check_rng_contract`.

A kata with a `generator` parameter promises that
- the same generator seed gives the same result, whatever torch's global random state, and another
  seed another result;
- a given generator is its only source: torch's global random state is left as it was;
- it draws from that generator, not from a copy: two calls in a row with one generator give two results.

Where it accepts `generator=None`, meaning torch's global random state (and for a kata that has no
generator parameter but draws from the global state), None follows the global state both ways: the
same `torch.manual_seed` gives the same result, another seed another result, and two calls in a row
two results.

Every branch must pass the generator on, so the test names each variant of the call (top-k or not,
drop_last or not) and each is checked on its own. Draws meant to be independent (the start of each
window) can be named too: they must not all be equal.

Results are compared as values: tensors with torch.equal (NaN equal to NaN), modules by their
state_dict, containers item by item, anything else with ==. The test chooses sizes that make two
different seeds giving the same result, or independent draws coinciding, negligible (below 1e-9).
"""

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from katakit.arguments import same_values

# Runs the kata and returns what to compare. Given a torch.Generator, or None where the kata draws from torch's
# global random state (Any: a kata whose generator is required is never given None).
Draw = Callable[[Any], object]


def check_rng_contract(
    draw: Draw | Mapping[str, Draw],
    *,
    what: str,
    generator: bool = True,
    global_rng: bool = False,
    global_untouched: bool = True,
    independent: Mapping[str, Callable[[Any], Iterable[object]]] | None = None,
    sampler: str = "torch's samplers",
) -> None:
    """Assert that a kata keeps the RNG contract; raise an AssertionError that names the mistake.

    draw: runs the kata with the generator it is given and returns what to compare; or a mapping
        from a label ("top_k=3") to one such function per branch of the kata.
    what: the kata's name, for the messages.
    generator: the kata takes a generator (False: it draws from torch's global state only, and
        `draw` is given None).
    global_rng: None (or, with generator=False, every call) draws from torch's global random state.
    global_untouched: a given generator leaves torch's global random state as it was (False only
        where the docstring makes the kata draw from it too, as building a GPT2 does).
    independent: a name ("window starts") for each group of draws meant to be independent, and the
        function that picks them out of a result: they must not all be equal.
    sampler: the random call(s) the kata makes ("torch.multinomial"), named in the messages.
    """
    if not (generator or global_rng):
        raise ValueError("check_rng_contract: a kata draws from a generator, the global RNG, or both")
    draws = dict(draw) if isinstance(draw, Mapping) else {"": draw}
    with torch.random.fork_rng(devices=[]):  # the caller's global random state comes back as it was
        seed = int(torch.randint(0, 2**31 - 2, ()))  # follows the test's seed (KATAS_SEED)
        for label, run in draws.items():
            name = f"{what} ({label})" if label else what
            results = []
            if generator:
                results.append(_check_generator(run, name, seed, global_untouched, sampler, branch=bool(label)))
            if global_rng:
                results.append(_check_global(run, name, seed, sampler, none=generator))
            for group, parts_of in (independent or {}).items():
                for result in results:
                    _check_independent(parts_of(result), name, group)


def _check_generator(run: Draw, name: str, seed: int, global_untouched: bool, sampler: str, *, branch: bool) -> object:
    torch.manual_seed(seed)
    global_before = torch.get_rng_state()
    first = run(torch.Generator().manual_seed(seed))
    if global_untouched and not torch.equal(torch.get_rng_state(), global_before):
        where = " (this branch does not)" if branch else ""
        raise AssertionError(
            f"{name} changed torch's global random state although a generator was given: pass "
            f"`generator=generator` to every random call ({sampler}){where}, and draw nothing else"
        )
    torch.manual_seed(seed + 1)
    again = run(torch.Generator().manual_seed(seed))
    if not same(first, again):
        raise AssertionError(
            f"{name} gave two different results for the same generator seed (under two different global seeds): "
            f"draw every random number from `generator` ({sampler}(..., generator=generator)), not from torch's "
            "global random state or a generator of your own"
        )
    if same(first, run(torch.Generator().manual_seed(seed + 1))):
        raise AssertionError(
            f"{name} gave the same result for two different generator seeds: the result does not depend on "
            f"`generator`. Draw from it ({sampler}(..., generator=generator)) instead of ignoring it or replacing "
            "it with a fixed torch.Generator()"
        )
    shared = torch.Generator().manual_seed(seed)
    run(shared)  # the same result as `first`
    if same(first, run(shared)):
        raise AssertionError(
            f"{name} gave the same result twice in a row from one generator: draw from the generator itself, "
            "which moves on with every draw; do not re-seed it (manual_seed) or draw from a copy of it"
        )
    return first


def _check_global(run: Draw, name: str, seed: int, sampler: str, *, none: bool) -> object:
    given = " with generator=None" if none else ""
    torch.manual_seed(seed)
    first = run(None)
    following = run(None)
    torch.manual_seed(seed)
    if not same(first, run(None)):
        raise AssertionError(
            f"{name} gave two different results{given} after the same torch.manual_seed: draw from torch's global "
            f"random state ({sampler}(..., generator=None)), which torch.manual_seed seeds, not from a generator "
            "of your own"
        )
    torch.manual_seed(seed + 1)
    if same(first, run(None)):
        raise AssertionError(
            f"{name} gives the same result under two different global seeds{given}: "
            + (
                f"`None` must mean torch's global RNG ({sampler}(..., generator=None)), not a fixed torch.Generator()"
                if none
                else f"draw from torch's global RNG ({sampler}), not from a fixed torch.Generator() or no RNG at all"
            )
        )
    if same(first, following):
        raise AssertionError(
            f"{name} gave the same result twice in a row{given}: torch's global random state moves on with every "
            "draw; draw from it, not from a generator seeded from it (torch.initial_seed())"
        )
    return first


def _check_independent(parts: Iterable[object], name: str, group: str) -> None:
    parts = list(parts)
    if len(parts) > 1 and all(same(parts[0], part) for part in parts[1:]):
        count = "both" if len(parts) == 2 else f"all {len(parts)}"
        raise AssertionError(
            f"{name}: {count} {group} are the same, though each is drawn independently: draw one random "
            "value for each of them (a tensor of draws, one per item), not one shared by all"
        )


def same(a: object, b: object) -> bool:
    """Whether two results hold the same values (tensors, modules, containers of them, numbers)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and same_values(a.detach().cpu(), b.detach().cpu())
    if isinstance(a, nn.Module) and isinstance(b, nn.Module):
        return same(a.state_dict(), b.state_dict())
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)
