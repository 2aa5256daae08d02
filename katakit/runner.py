"""Run the kata tests of some topics in a pytest process, and bring back one record per test.

pytest runs with the `katakit.report` plugin, which writes the records (katakit.model.TestRecord)
to a JSON file.
The process is a fresh `python -m pytest`, or, for `katas watch` on Linux, a child forked from the
watching process, which has already imported torch, pytest and the other heavy libraries
(`preload`), so a re-run does not pay for them again. The watching process never imports a kata
module or a test, so each child imports the learner's files afresh. fork is Linux only here
(unsafe with some macOS frameworks, absent on Windows); elsewhere watch starts a fresh process.
"""

import ast
import contextlib
import gc
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from katakit import cache, catalog, stubs
from katakit import report as reporting
from katakit.catalog import Topic
from katakit.model import TestRecord

# Set in a run that judges the katas other topics call (katakit.summary): it judges no further.
NOT_FOLLOWING = "KATAS_NOT_FOLLOWING_CALLS"
LIBRARIES = ("torch", "numpy", "einops", "jaxtyping", "typeguard", "pytest", "_pytest.python")


class RunFailed(RuntimeError):
    """pytest did not run the kata tests at all (usage error, crash, no report written)."""


@dataclass
class Run:
    records: list[TestRecord]
    seconds: float
    topics: list[str]


def pytest_arguments(
    topics: list[str], implementation: str, report: Path, fast_only: bool = False, deselect: tuple[str, ...] = ()
) -> list[str]:
    """pytest's arguments to run the tests of `topics` and write their records to `report`;
    `fast_only` leaves out the slow tests (trainings), `deselect` these tests."""
    return [
        *[f"katas/{topic}" for topic in topics],
        f"--impl={implementation}",
        "-q",
        "--tb=no",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:logging",  # no kata test reads the log records
        "--continue-on-collection-errors",
        "-p",
        "katakit.report",
        f"--katas-report={report}",
        *(["-m", "not slow"] if fast_only else []),
        *[f"--deselect={nodeid}" for nodeid in deselect],
    ]


def run_tests(
    root: Path,
    topics: list[str],
    implementation: str = "katas",
    forked: bool = False,
    fast_only: bool = False,
    following: bool = True,
    deselect: tuple[str, ...] = (),
) -> Run:
    """Run the kata tests of `topics` in `root` and return their records.

    With `forked` (and where fork is available), pytest runs in a child forked from this process.
    `fast_only` leaves the slow tests out, `deselect` these tests; without `following`, the run does
    not judge the katas of other topics its failing tests call (katakit.summary).
    """
    started = time.perf_counter()
    if not topics:
        return Run([], 0.0, [])
    env = {key: value for key, value in os.environ.items() if key != "KATAS_IMPL"}
    if not following:
        env[NOT_FOLLOWING] = "1"
    with tempfile.TemporaryDirectory(prefix="katas-") as scratch:
        report = Path(scratch) / "report.json"
        with (Path(scratch) / "log.txt").open("w+", encoding="utf-8") as log:
            arguments = pytest_arguments(topics, implementation, report, fast_only, deselect)
            if forked and can_fork():
                process: Child | subprocess.Popen[bytes] = Child(root, arguments, env, log)
            else:
                command = [sys.executable, "-m", "pytest", *arguments]
                process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                code = process.wait()
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            if code not in (0, 1, 5) or not report.is_file():
                log.seek(0)
                tail = "\n".join(log.read().strip().splitlines()[-15:])
                raise RunFailed(f"pytest could not run the kata tests (exit code {code}):\n{tail}")
        records = reporting.read(report)
    return Run(records, time.perf_counter() - started, list(topics))


def run_changed(root: Path, topics: list[str], implementation: str = "katas", forked: bool = False) -> Run:
    """Run the kata tests of `topics`, but not those whose answer is known without running them:
    the slow ones whose code has not changed since they passed (their saved records stand,
    katakit.cache), and every test of a topic of the learner's that nobody touched (its files still
    the stubs, compared as ast) while the topics it builds on load: they could only raise
    NotImplementedError, and a kata without a record is to do. The red-green contract still runs the
    stubs; this is the `katas` display's shortcut."""
    untouched = [topic for topic in topics if implementation == "katas" and stubs.untouched(root, topic)]
    run = _run_kept(root, [topic for topic in topics if topic not in untouched], implementation, forked)
    loading = {topic for topic in run.topics if not _broken(topic, run.records)}
    undecided = [topic for topic in untouched if not _earlier_load(root, topic, loading, implementation)]
    if undecided:
        more = _run_kept(root, undecided, implementation, forked)
        run = Run(run.records + more.records, run.seconds + more.seconds, run.topics + more.topics)
    run.topics += [topic for topic in untouched if topic not in undecided]
    return run


def _run_kept(root: Path, topics: list[str], implementation: str, forked: bool) -> Run:
    if not topics:
        return Run([], 0.0, [])
    kept = cache.reusable(root, topics, implementation)
    run = run_tests(root, topics, implementation, forked=forked, deselect=tuple(kept))
    run.records += kept.values()
    return run


def _broken(topic: str, records: list[TestRecord]) -> bool:
    """Whether a file of `topic` did not load in these records (a syntax or import error)."""
    return any(record.topic == topic and (record.collection_error or record.blocked_by) for record in records)


def _earlier_load(root: Path, topic: str, loading: set[str], implementation: str) -> bool:
    """Whether every topic `topic` builds on is known to load: untouched, or loaded in this run or in
    results saved since its last change."""
    for earlier in catalog.needed_by(root, topic):
        if earlier in loading or stubs.untouched(root, earlier):
            continue
        fresh, _ = cache.lookup(root, [earlier], implementation)
        if earlier not in fresh or _broken(earlier, fresh[earlier]):
            return False
    return True


def can_fork() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


def preload(root: Path, topics: list[Topic]) -> None:
    """Import what every kata test needs, once, in this process; and, for each topic, what its test
    files import from the libraries curriculum.toml lists as its `preload` (`from transformers
    import GPT2LMHeadModel` is seconds of work that a forked child then finds done)."""
    for name in LIBRARIES:
        with contextlib.suppress(Exception):  # a missing library is the child's error to report
            importlib.import_module(name)
    for topic in topics:
        for test_file in sorted((root / "katas" / topic.folder).glob("test_*.py")):
            for module, names in imports(test_file):
                if module.split(".")[0] in topic.preload:
                    with contextlib.suppress(Exception):
                        imported = importlib.import_module(module)
                        for name in names:
                            getattr(imported, name)  # a lazy package (transformers) imports it here


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """The absolute imports of a file, those inside its functions too: (module, the names taken from it)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def fork() -> int:
    """os.fork() from a parent that preloaded the heavy libraries: its output flushed first, so the child
    does not print it again, and what it imported left out of the child's garbage collections (pytest
    runs two at its end, which would walk all of torch's and transformers' objects again)."""
    sys.stdout.flush()
    sys.stderr.flush()
    gc.freeze()
    return os.fork()


class Child:
    """`pytest <arguments>` in a forked child, with its output in `log`; like a subprocess.Popen."""

    def __init__(self, root: Path, arguments: list[str], env: dict[str, str], log: TextIO) -> None:
        self.returncode: int | None = None
        self.pid = fork()
        if self.pid == 0:
            self._run(root, arguments, env, log)  # never returns

    @staticmethod
    def _run(root: Path, arguments: list[str], env: dict[str, str], log: TextIO) -> None:
        code = 3
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            os.chdir(root)
            os.environ.clear()
            os.environ.update(env)
            sys.path.insert(0, str(root))
            if "torch" in sys.modules:  # the parent imported torch: its thread count is set there, not by env
                # One thread: the kata tests' tensors are small, and two threads wait for each other (the
                # capstone trains on one for the same reason).
                sys.modules["torch"].set_num_threads(1)
            import pytest

            code = int(pytest.main(arguments))
        except BaseException:  # whatever happens, the child must not return to the watch loop
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)
