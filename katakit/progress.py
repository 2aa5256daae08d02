"""Where a learner stands: run the kata tests and sort every kata into done, to do or failed.

A kata's status comes from the records of its tests (`katakit.report`):
    done    every test that ran passed;
    failed  attempted but wrong: a test failed for another reason than NotImplementedError, its
            test module failed to collect, or the learner's file does not compile;
    to do   otherwise (the stub still raises NotImplementedError).
Skipped tests (a GPU test on a machine without CUDA) count neither way.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

from katakit import catalog
from katakit import warm as forked
from katakit.catalog import Kata
from katakit.impl import TEST_PREFIXES

DONE, TODO, WRONG = "done", "to do", "failed"  # WRONG: attempted, but a test disagrees

# Test modules that import transformers are slow to start.
HEAVY_IMPORTS = re.compile(r"^\s*(import|from)\s+transformers\b", re.MULTILINE)
# A kata module building on an earlier topic: import_module("..05_attention.attention", __package__)
_TOPIC_IMPORT = re.compile(r"""["']\.\.(\d\d_\w+)\.""")
# A top-level definition, found even in a file that does not compile.
_DEFINITION = re.compile(r"(?:async\s+def|def|class)\s+(\w+)")


@dataclass
class Catalog:
    """Every kata in learning order, and the learner files that do not compile."""

    katas: list[Kata]
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (topic, module) -> "file:line: error"
    side: str = "katas"  # the folder the katas were read from

    def topics(self) -> list[str]:
        return list(dict.fromkeys(kata.topic for kata in self.katas))


def _katas_or_error(source: str, shown_as: str, topic: str, module: str) -> tuple[list[Kata], str | None]:
    """The katas of a module's source, or the syntax error that stops it from parsing."""
    try:
        return catalog.katas_in(source, topic, module), None
    except SyntaxError as error:
        line = f":{error.lineno}" if error.lineno else ""
        return [], f"{shown_as}{line}: {type(error).__name__}: {error.msg}"


def read_catalog(root: Path, topics: list[str] | None = None, side: str = "katas") -> Catalog:
    """The katas of `topics` (all when None), read from the learner's files (or reference/'s).

    A learner file that does not compile is reported in `broken`; its katas (names, lines, hints)
    are then read from reference/, which the stubs mirror.
    """
    found = Catalog([], side=side)
    for topic in catalog.topics(root):
        if topics is not None and topic not in topics:
            continue
        for module in catalog.modules(topic, root):
            learner = root / side / topic / f"{module}.py"
            if not learner.is_file():
                continue
            source = learner.read_text(encoding="utf-8", errors="replace")
            katas, error = _katas_or_error(source, learner.relative_to(root).as_posix(), topic, module)
            if error:
                found.broken[(topic, module)] = error
                katas = _katas_of_broken_file(root, source, topic, module) if side == "katas" else []
            found.katas += katas
    return found


def _katas_of_broken_file(root: Path, source: str, topic: str, module: str) -> list[Kata]:
    """The katas of a learner file that does not compile: read from its twin in reference/, at the
    lines where the learner's file still defines them."""
    reference = root / "reference" / topic / f"{module}.py"
    try:
        katas = catalog.katas_in(reference.read_text(encoding="utf-8"), topic, module)
    except (OSError, SyntaxError):
        return []
    lines: dict[str, int] = {}
    for number, text in enumerate(source.splitlines(), start=1):
        definition = _DEFINITION.match(text)
        if definition:
            lines.setdefault(definition.group(1), number)
    return [replace(kata, line=lines.get(kata.name, kata.line)) for kata in katas]


def topic_dependencies(root: Path) -> dict[str, set[str]]:
    """For each topic, the earlier topics its learner modules import (`..05_attention.attention`)."""
    needs: dict[str, set[str]] = defaultdict(set)
    for path in (root / "katas").glob("[0-9][0-9]_*/*.py"):
        if path.name.startswith(TEST_PREFIXES):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        needs[path.parent.name] |= set(_TOPIC_IMPORT.findall(text)) - {path.parent.name}
    return needs


def affected_topics(root: Path, changed: set[str]) -> set[str]:
    """The changed topics and every topic that builds on one of them, directly or not."""
    needs = topic_dependencies(root)
    affected = set(changed)
    grew = True
    while grew:
        grew = False
        for topic, earlier in needs.items():
            if topic not in affected and earlier & affected:
                affected.add(topic)
                grew = True
    return affected


class RunFailed(RuntimeError):
    """pytest did not run the kata tests at all (usage error, crash, no report written)."""


@dataclass
class Run:
    records: list[dict]
    seconds: float
    topics: list[str]


# What importing transformers costs, in bytes of test code that take as long to run (a rough guess).
HEAVY_WEIGHT = 60_000
# The least work worth a pytest process of its own (a topic or two of tests).
SPLIT_WEIGHT = 40_000


def is_heavy(root: Path, topic: str) -> bool:
    """Whether a topic's tests import transformers (seconds to start)."""
    return any(
        HEAVY_IMPORTS.search(test.read_text(encoding="utf-8", errors="replace"))
        for test in (root / "katas" / topic).glob("test_*.py")
    )


def _weight(root: Path, topic: str) -> int:
    """A rough cost of a topic's tests: the size of its test files, more if one imports transformers."""
    weight = 0
    for test in (root / "katas" / topic).glob("test_*.py"):
        text = test.read_text(encoding="utf-8", errors="replace")
        weight += len(text) + (HEAVY_WEIGHT if HEAVY_IMPORTS.search(text) else 0)
    return weight


def _groups(root: Path, topics: list[str], jobs: int) -> list[list[str]]:
    """Share the topics among at most `jobs` pytest processes, heaviest first to the lightest process."""
    if jobs < 2 or len(topics) < 2:
        return [topics]
    weights = {topic: _weight(root, topic) for topic in topics}
    loads = [0] * min(jobs, len(topics))
    groups: list[list[str]] = [[] for _ in loads]
    for topic in sorted(topics, key=weights.__getitem__, reverse=True):
        lightest = loads.index(min(loads))
        groups[lightest].append(topic)
        loads[lightest] += weights[topic]
    if min(loads) < SPLIT_WEIGHT:
        return [topics]  # a second process would spend longer importing torch than it saves
    return [[topic for topic in topics if topic in group] for group in groups if group]


def pytest_arguments(topics: list[str], implementation: str, report: Path) -> list[str]:
    """pytest's arguments to run the tests of `topics` and write their records to `report`."""
    return [
        *[f"katas/{topic}" for topic in topics],
        f"--impl={implementation}",
        "-q",
        "--tb=no",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "--continue-on-collection-errors",
        "-p",
        "katakit.report",
        f"--katas-report={report}",
    ]


def run_tests(
    root: Path, topics: list[str], implementation: str = "katas", jobs: int | None = None, warm: bool = False
) -> Run:
    """Run the kata tests of `topics` in `root` and return their records.

    pytest runs in subprocesses (up to `jobs` side by side), or, with `warm`, in children forked
    from this process, which has already imported torch & co (see katakit.warm): much faster to start.
    """
    started = time.perf_counter()
    if not topics:
        return Run([], 0.0, [])
    jobs = jobs if jobs is not None else min(2, os.cpu_count() or 1)
    groups = _groups(root, topics, jobs)
    env = {**os.environ, "KATAS_ROOT": str(root)}
    env.pop("KATAS_IMPL", None)
    if len(groups) > 1:  # processes side by side: share the cores instead of each taking them all
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // len(groups))))
    with tempfile.TemporaryDirectory(prefix="katas-") as scratch:
        processes = []
        try:
            for number, group in enumerate(groups):
                report = Path(scratch) / f"report-{number}.json"
                log = (Path(scratch) / f"log-{number}.txt").open("w+", encoding="utf-8")
                arguments = pytest_arguments(group, implementation, report)
                if warm and forked.available():
                    process = forked.Child(root, arguments, env, log)
                else:
                    command = [sys.executable, "-m", "pytest", *arguments]
                    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
                processes.append((process, report, log))
            records = []
            for process, report, log in processes:
                code = process.wait()
                if code not in (0, 1, 5) or not report.is_file():
                    log.seek(0)
                    tail = "\n".join(log.read().strip().splitlines()[-15:])
                    raise RunFailed(f"pytest could not run the kata tests (exit code {code}):\n{tail}")
                records += json.loads(report.read_text(encoding="utf-8"))
        finally:
            for process, _, log in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                log.close()
    return Run(records, time.perf_counter() - started, list(topics))


@dataclass
class Status:
    kata: Kata
    status: str
    message: str = ""  # why it is wrong: the first failure
    where: str = ""  # the test (or file) that failed
    side: str = "katas"  # katas/ or reference/: whose file the kata was read from

    @property
    def file(self) -> str:
        """`katas/01_linear_algebra/linear_algebra.py`"""
        return f"{self.side}/{self.kata.topic}/{self.kata.module}.py"

    @property
    def location(self) -> str:
        """`katas/01_linear_algebra/linear_algebra.py:10`: clickable in editors and terminals."""
        return f"{self.file}:{self.kata.line}"


def _collection_error(record: dict) -> bool:
    return "::" not in record["nodeid"] and record["outcome"] in ("failed", "error")


def classify(found: Catalog, records: list[dict]) -> list[Status]:
    """Each kata of the catalog with its status, in learning order."""
    by_kata: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    module_errors: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for record in records:
        if _collection_error(record):
            module_errors[(record["topic"], record["module"])].append(record)
        elif record.get("kata"):
            by_kata[(record["topic"], record["module"], record["kata"])].append(record)

    def status(kata: Kata) -> Status:
        module = (kata.topic, kata.module)
        if module in found.broken:
            return Status(kata, WRONG, found.broken[module], f"{found.side}/{kata.topic}/{kata.module}.py")
        if module_errors.get(module):
            first = module_errors[module][0]
            return Status(kata, WRONG, f"the test file could not be loaded: {first['message']}", first["nodeid"])
        results = by_kata.get((kata.topic, kata.module, kata.name), [])
        wrong = [r for r in results if r["outcome"] in ("failed", "error") and not r["not_implemented"]]
        if wrong:
            return Status(kata, WRONG, wrong[0]["message"], wrong[0]["nodeid"])
        if any(r["not_implemented"] for r in results) or not any(r["outcome"] == "passed" for r in results):
            return Status(kata, TODO)
        return Status(kata, DONE)

    statuses = [status(kata) for kata in found.katas]
    for each in statuses:
        each.side = found.side
    return statuses


def unmatched_errors(found: Catalog, records: list[dict]) -> list[dict]:
    """Collection errors that belong to no kata module (a broken conftest.py, a stray file)."""
    modules = {(kata.topic, kata.module) for kata in found.katas}
    return [r for r in records if _collection_error(r) and (r["topic"], r["module"]) not in modules]


def next_kata(statuses: list[Status]) -> Status | None:
    """What to work on: the first kata that is attempted but wrong, else the first still to do."""
    for wanted in (WRONG, TODO):
        for status in statuses:
            if status.status == wanted:
                return status
    return None


def counts(statuses: list[Status]) -> dict[str, int]:
    tally = {DONE: 0, TODO: 0, WRONG: 0}
    for status in statuses:
        tally[status.status] += 1
    return tally
