"""`katas bench`: the learner's own code timed against torch and Hugging Face, as one table; a kata
still to do is reported as such."""

import subprocess
import sys
from pathlib import Path

from katakit.bench import Outcome, table
from katakit.benchmarking import Ratio

ROOT = Path(__file__).resolve().parents[1]


def test_the_table_shows_each_ratio_and_throughput():
    ratio = Ratio("causal attention", "cpu, 2 threads", "float32", 0.05, "torch SDPA, MATH", 0.1, 2e9, "GFLOP/s")
    shown = table([Outcome("bench::a", "scaled_dot_product_attention", "timed", "", (ratio,))])
    assert "0.50x" in shown and "40.0 GFLOP/s" in shown and "50.00 ms" in shown and "100.00 ms" in shown


def test_a_kata_to_do_or_failed_is_named_not_timed():
    shown = table(
        [
            Outcome("b::a", "GPT2", "to do", "", ()),
            Outcome("b::b", "train_step", "failed", "AssertionError: 3.1 != 2.9", ()),
            Outcome("b::c", "GPT2", "skipped", "needs a CUDA device", ()),
        ]
    )
    assert "to do: GPT2" in shown
    assert "failed: train_step: AssertionError: 3.1 != 2.9" in shown
    assert "GPU timings skipped: no CUDA device" in shown


def test_katas_bench_on_the_untouched_stubs_says_to_do():
    """The learner's install: `katas bench 05` before the attention kata is written."""
    run = subprocess.run(
        [sys.executable, "-m", "katakit", "--impl=katas", "bench", "05"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "to do: scaled_dot_product_attention" in run.stdout, run.stdout
    assert "Traceback" not in run.stdout + run.stderr
