"""How long a learner waits after saving a kata file: for `katas`, and for `katas watch` to draw the
saved topic's verdict and to finish re-checking the topics built on it. A timing, not a check:
nothing asserts on speed.

    pytest -m benchmark tests/benchmark_watch.py -s -p no:cacheprovider
    python tests/benchmark_watch.py CHECKOUT [--solved 01,02,03,04,05] [--repeat 3]

Per scenario (every topic solved; only 01-05 solved, the later topics their untouched stubs) the
test copies the repository to a temporary folder, solves the chosen topics (reference/'s files
copied over katas/'s) and runs `katas` once to fill the cache (the trainings included). Then, for
each edit (a comment appended to 01's, 05's and 06's file and to 08's induction.py), it times
`katas` (the whole command: it prints once, at the end), and, in a running `katas watch`, save ->
the drawing that shows the saved topic's verdict and save -> the drawing after which nothing is
re-checked.

The command line does the same in a checkout given (of any revision: it reads only
curriculum.toml and the watch's header lines), on a copy of it, so that two revisions can be compared.
"""

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REAL = Path(__file__).resolve().parents[1]
EDITS = (
    "01_linear_algebra/linear_algebra.py",
    "05_attention/attention.py",
    "06_transformer/transformer.py",
    "08_interpretability/induction.py",
)
SCENARIOS = {"everything solved": None, "01-05 solved": ("01", "02", "03", "04", "05")}
# Each drawing of `katas watch` starts with this line: "katas watch: 12:00:01  ran 05_attention in
# 1.2 s; re-checking 06_transformer, 07_training.... Save a kata file to re-run; Ctrl-C stops."
HEADER = re.compile(r"^katas watch: (?P<header>.*?)(\. Save a kata file to re-run.*)?$")
RE_CHECKING = "re-checking"
WAIT_S = 600


def learner_modules(root: Path) -> list[tuple[str, str]]:
    """(topic folder, module) of every learner file, from curriculum.toml."""
    curriculum = tomllib.loads((root / "curriculum.toml").read_text(encoding="utf-8"))
    return [(topic["folder"], module) for topic in curriculum["topic"] for module in topic["modules"]]


def solve(root: Path, prefixes: tuple[str, ...] | None) -> None:
    """Copy the reference solution over the learner file of every topic whose number is in
    `prefixes` (every topic: None)."""
    for folder, module in learner_modules(root):
        if prefixes is None or folder[:2] in prefixes:
            shutil.copy(root / "reference" / folder / f"{module}.py", root / "katas" / folder / f"{module}.py")


def learner_env(root: Path) -> dict[str, str]:
    """The environment of a learner working in `root`: its katakit, no colours, and bytecode
    written (pytest's rewritten test files are kept between runs as on a learner's machine)."""
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    for name in ("KATAS_IMPL", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    return env


def save(path: Path) -> float:
    """Append a comment to `path`, as an editor saves it; the moment it was saved."""
    saved = time.perf_counter()
    path.write_text(path.read_text(encoding="utf-8") + "# saved by benchmark_watch\n", encoding="utf-8")
    return saved


def time_katas(root: Path, python: str = sys.executable) -> tuple[float, str]:
    """Wall time of `katas` in `root`, and its first line."""
    started = time.perf_counter()
    result = subprocess.run(
        [python, "-m", "katakit"], cwd=root, env=learner_env(root), capture_output=True, text=True, check=True
    )
    return time.perf_counter() - started, (result.stdout.splitlines() or [""])[0]


@dataclass
class SaveTiming:
    verdict_s: float  # save -> the drawing with the saved topic's verdict
    done_s: float  # save -> the drawing after which nothing is re-checked
    headers: list[str]  # what the drawings in between said


class Watch:
    """A running `katas watch` in `root`; its drawings' header lines, with the time they came."""

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [python, "-m", "katakit", "watch"],
            cwd=root,
            env=learner_env(root),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.drawings: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if match := HEADER.match(line.rstrip("\n")):
                self.drawings.put((time.perf_counter(), match["header"]))

    def next_drawing(self, timeout: float = WAIT_S) -> tuple[float, str]:
        try:
            return self.drawings.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"katas watch in {self.root} drew nothing for {timeout} s") from None

    def settle(self, quiet_s: float = 1.0) -> list[str]:
        """Wait until nothing is drawn for `quiet_s`; the headers drawn meanwhile (none, normally)."""
        stray = []
        while True:
            try:
                stray.append(self.drawings.get(timeout=quiet_s)[1])
            except queue.Empty:
                return stray

    def time_save(self, edit: str) -> SaveTiming:
        """Save katas/`edit` and time the drawings that follow."""
        self.settle()
        saved = save(self.root / "katas" / edit)
        verdict_at, header = self.next_drawing()
        headers = [header]
        done_at = verdict_at
        while RE_CHECKING in header:
            done_at, header = self.next_drawing()
            headers.append(header)
        return SaveTiming(verdict_at - saved, done_at - saved, headers)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def watching(root: Path, python: str = sys.executable) -> Iterator[Watch]:
    """`katas watch` in `root`, started and its first drawing (from the cache) come."""
    watch = Watch(root, python)
    try:
        watch.next_drawing()
        yield watch
    finally:
        watch.stop()


def saved_topic_named(edit: str, timing: SaveTiming) -> bool:
    """Whether the first drawing after the save names the saved topic (else it was a stray one)."""
    return edit.split("/")[0] in timing.headers[0]


def measure(root: Path, edits: tuple[str, ...], repeat: int, python: str = sys.executable) -> list[str]:
    """The table rows for `root` (already solved and its cache filled): per edit, the median over
    `repeat` of `katas` and of the watch's two times."""
    katas: dict[str, list[float]] = {edit: [] for edit in edits}
    verdict: dict[str, list[float]] = {edit: [] for edit in edits}
    done: dict[str, list[float]] = {edit: [] for edit in edits}
    for _ in range(repeat):
        for edit in edits:
            save(root / "katas" / edit)
            katas[edit].append(time_katas(root, python)[0])
        with watching(root, python) as watch:
            for edit in edits:
                timing = watch.time_save(edit)
                verdict[edit].append(timing.verdict_s)
                done[edit].append(timing.done_s)
                print(f"  watch, save {edit}: " + " | ".join(timing.headers), flush=True)
                if not saved_topic_named(edit, timing):
                    print(f"  (the first drawing after saving {edit} does not name its topic)", flush=True)
    return [
        f"| {edit} | {median(katas[edit]):.1f} | {median(verdict[edit]):.1f} | {median(done[edit]):.1f} |"
        for edit in edits
    ]


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


TABLE_HEAD = (
    "| edit | katas (s) | watch: save -> its verdict (s) | watch: save -> last re-check (s) |\n|---|---:|---:|---:|"
)


def _copy(target: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", ".katas")
    for name in ("conftest.py", "pyproject.toml", "curriculum.toml"):
        shutil.copy(REAL / name, target / name)
    for folder in ("katakit", "katas", "reference"):
        shutil.copytree(REAL / folder, target / folder, ignore=ignore)
    return target


@pytest.mark.benchmark
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_save_to_verdict_after_an_edit(tmp_path: Path, scenario: str) -> None:
    root = _copy(tmp_path)
    solve(root, SCENARIOS[scenario])
    first, line = time_katas(root)
    print(f"\n{scenario}: first `katas` (fills the cache) {first:.1f} s  [{line}]")
    rows = measure(root, EDITS, repeat=1)
    print("\n".join([TABLE_HEAD, *rows]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkout", type=Path, help="a checkout to time (copied first: its own files stay as they are)")
    parser.add_argument("--solved", default=None, help="the topic numbers to solve, e.g. 01,02,03,04,05 (default: all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the interpreter with the project's packages")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="benchmark-watch-"))
    root = scratch / "repo"  # solving overwrites katas/: never a learner's or maintainer's own checkout
    shutil.copytree(
        options.checkout.resolve(), root, ignore=shutil.ignore_patterns(".git", ".venv", ".katas", "__pycache__")
    )
    solve(root, tuple(options.solved.split(",")) if options.solved else None)
    first, line = time_katas(root, options.python)
    print(f"first `katas` (fills the cache) {first:.1f} s  [{line}]", flush=True)
    rows = measure(root, EDITS, options.repeat, options.python)
    print("\n".join([TABLE_HEAD, *rows]))


if __name__ == "__main__":
    main()
