"""`katas bench [topic]`: your attention, GPT-2 forward pass, training step and activation cache timed
against torch and Hugging Face, as one table of ratios.

It runs the benchmark files (`katas/NN_topic/benchmark_<module>.py`, marked `benchmark`) with
pytest-benchmark, this module loaded as a pytest plugin (`-p katakit.bench`) that writes, for each
benchmark test, its kata, whether it is still to do, and the `Ratio`s the test recorded
(katakit.benchmarking.record). Tests marked `gpu` run where CUDA is present (fp32 and bf16) and are
skipped elsewhere. A kata still to do is reported as such, not as an error.
"""

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from katakit.benchmarking import RATIOS, Ratio

# The file the plugin writes its lines to, one JSON object per benchmark test.
OUTPUT = "KATAS_BENCH_OUTPUT"
# The notebook whose last cell times your attention the same way, on Colab's GPU.
NOTEBOOK = "notebooks/attention.ipynb"


@dataclass(frozen=True)
class Outcome:
    """What one benchmark test gave: its ratios, or why it gave none."""

    nodeid: str
    kata: str
    state: str  # "timed", "to do", "skipped", "failed"
    message: str
    ratios: tuple[Ratio, ...]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    path = os.environ.get(OUTPUT)
    if not path or item.get_closest_marker("benchmark") is None:
        return
    if report.when != "call" and not (report.when == "setup" and not report.passed):
        return
    marker = item.get_closest_marker("kata")
    kata = str(marker.args[0]) if marker and marker.args else item.name
    if report.skipped:
        state, message = "skipped", _skip_reason(report)
    elif call.excinfo is not None and call.excinfo.errisinstance(NotImplementedError):
        state, message = "to do", ""
    elif report.failed:
        state, message = "failed", (call.excinfo.exconly() if call.excinfo else "").splitlines()[0][:200]
    else:
        state, message = "timed", ""
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    ratios = list(getattr(fixture, "extra_info", {}).get(RATIOS, [])) if fixture is not None else []
    line = {"nodeid": item.nodeid, "kata": kata, "state": state, "message": message, "ratios": ratios}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)


def benchmark_files(root: Path, topics: list[str]) -> list[Path]:
    return sorted(path for topic in topics for path in (root / "katas" / topic).glob("benchmark_*.py"))


def run(root: Path, topics: list[str], implementation: str) -> list[Outcome]:
    """Run the benchmarks of `topics` on `implementation`; what each benchmark test gave."""
    files = benchmark_files(root, topics)
    if not files:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "bench.jsonl"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *(path.relative_to(root).as_posix() for path in files),
            f"--impl={implementation}",
            "-m",
            "benchmark",
            "--benchmark-only",
            "-p",
            "katakit.bench",
            "-p",
            "no:cacheprovider",
            "-q",
        ]
        subprocess.run(command, cwd=root, env={**os.environ, OUTPUT: str(output)}, stdout=subprocess.DEVNULL)
        lines = output.read_text(encoding="utf-8").splitlines() if output.exists() else []
    return [_outcome(json.loads(line)) for line in lines]


def _outcome(line: dict[str, object]) -> Outcome:
    ratios = line["ratios"]
    assert isinstance(ratios, list)
    return Outcome(
        nodeid=str(line["nodeid"]),
        kata=str(line["kata"]),
        state=str(line["state"]),
        message=str(line["message"]),
        ratios=tuple(Ratio(**ratio) for ratio in ratios),
    )


def table(outcomes: list[Outcome]) -> str:
    """The ratios as one table, then a line for each kata still to do, failed or skipped."""
    header = ("what", "device", "dtype", "yours", "against", "theirs", "ratio", "your throughput")
    rows = [
        (
            ratio.what,
            ratio.device,
            ratio.dtype,
            f"{ratio.yours_s * 1e3:.2f} ms",
            ratio.baseline,
            f"{ratio.baseline_s * 1e3:.2f} ms",
            f"{ratio.ratio():.2f}x",
            ratio.throughput(),
        )
        for outcome in outcomes
        for ratio in outcome.ratios
    ]
    lines = []
    if rows:
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines += [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]
        ]
        lines.append("ratio: your time / theirs (below 1: yours is faster). Best of several interleaved runs.")
    for outcome in outcomes:
        if outcome.state == "to do":
            lines.append(f"to do: {outcome.kata} (finish it to time it)")
        elif outcome.state == "failed":
            lines.append(f"failed: {outcome.kata}: {outcome.message} (pytest {outcome.nodeid} -m benchmark -s)")
    if any(outcome.state == "skipped" and "CUDA" in outcome.message for outcome in outcomes):  # once, not per test
        lines.append(
            "GPU timings skipped: no CUDA device (on a machine with one, katas bench times them; on Colab's GPU, "
            f"the last cell of {NOTEBOOK} does)."
        )
    return "\n".join(lines) if lines else "no benchmarks in these topics"
