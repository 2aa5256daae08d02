"""Timing helpers for the benchmark files (`katas/NN_topic/benchmark_<module>.py`).

    run = synchronised(lambda: model(tokens), device)    # a call that waits for the GPU
    best = best_times({"ours": run, "torch": theirs})     # fastest of interleaved rounds
    median = median_seconds(run, rounds=5)               # median of consecutive rounds

Each benchmark also `record`s its comparisons as `Ratio`s, the lines of `katas bench`'s table.

Timings only: nothing here asserts on speed. Each helper runs the callable once as a warm-up
before it starts timing (the first call pays for allocation, kernel selection and caches).
"""

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import torch

T = TypeVar("T")
# The key of benchmark.extra_info under which `record` keeps a test's ratios.
RATIOS = "katas_ratios"


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


@dataclass(frozen=True)
class Ratio:
    """One line of `katas bench`: your kata's time against a baseline's, on the same inputs."""

    what: str  # "causal attention, batch 8, 12 heads, seq 256, d_head 64"
    device: str  # "cpu, 2 threads" or the GPU's name
    dtype: str  # "float32"
    yours_s: float
    baseline: str  # "torch SDPA, MATH backend"
    baseline_s: float
    work: float = 0.0  # per call, in `unit`s: FLOPs for GFLOP/s, tokens for tokens/s
    unit: str = ""  # "GFLOP/s", "tokens/s", or "" for none

    def ratio(self) -> float:
        return self.yours_s / self.baseline_s

    def throughput(self) -> str:
        if not self.work or not self.unit:
            return ""
        scale = 1e9 if self.unit == "GFLOP/s" else 1.0
        return f"{self.work / self.yours_s / scale:,.1f} {self.unit}"


def record(benchmark: Any, *ratios: Ratio) -> None:
    """Keep `ratios` in pytest-benchmark's extra_info, where `katas bench` reads them."""
    benchmark.extra_info.setdefault(RATIOS, []).extend(asdict(ratio) for ratio in ratios)


def device_label(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type}, {torch.get_num_threads()} threads"
