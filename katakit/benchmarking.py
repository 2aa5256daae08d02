"""Timing helpers for the benchmark files (`katas/NN_topic/benchmark_<module>.py`).

    run = synchronised(lambda: model(tokens), device)    # a call that waits for the GPU
    best = best_times({"ours": run, "torch": theirs})     # fastest of interleaved rounds
    median = median_seconds(run, rounds=5)               # median of consecutive rounds

Timings only: nothing here asserts on speed. Each helper runs the callable once as a warm-up
before it starts timing (the first call pays for allocation, kernel selection and caches).
"""

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch

T = TypeVar("T")


def synchronised(fn: Callable[[], T], device: torch.device | str) -> Callable[[], T]:
    """`fn`, made to wait for `device` to finish: CUDA calls return before the work is done, so
    timing `fn` alone would measure its launch. On other devices `fn` itself."""
    device = torch.device(device)
    if device.type != "cuda":
        return fn

    def run() -> T:
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return run


def best_times(
    candidates: Mapping[str, Callable[[], object]], min_rounds: int = 5, max_seconds: float = 3.0
) -> dict[str, float]:
    """The fastest run, in seconds, of each candidate, taking turns round by round (at least
    `min_rounds` rounds, and more until `max_seconds` have passed), so that a machine busy with
    something else slows them all alike: the same statistic as pytest-benchmark's Min."""
    best = {name: float("inf") for name in candidates}
    for fn in candidates.values():
        fn()  # warm-up
    start, rounds = time.perf_counter(), 0
    while rounds < min_rounds or time.perf_counter() - start < max_seconds:
        for name, fn in candidates.items():
            begin = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - begin)
        rounds += 1
    return best


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    """The median time, in seconds, of `rounds` consecutive runs of `fn` after one warm-up run."""
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
