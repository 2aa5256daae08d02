"""`katas watch`: re-run a topic's tests whenever one of its files is saved, and redraw.

It polls the modification times of `katas/**/*.py` (no dependency, works everywhere) and only
reads the learner's files. A change re-runs the topics whose files changed, plus the topics that
build on them, within the topics being watched.
"""

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from katakit import catalog, warm
from katakit.progress import RunFailed, Status, affected_topics, classify, is_heavy, read_catalog, run_tests

EVERY_TOPIC = "*"
Fingerprint = dict[str, tuple[int, int]]


def snapshot(root: Path) -> Fingerprint:
    """(mtime, size) of every Python file under katas/, by path relative to katas/."""
    files: Fingerprint = {}
    for path in (root / "katas").rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        try:
            stat = path.stat()
        except OSError:
            continue  # deleted while we looked
        files[path.relative_to(root / "katas").as_posix()] = (stat.st_mtime_ns, stat.st_size)
    return files


def changed_topics(before: Fingerprint, after: Fingerprint) -> set[str]:
    """The topic folders whose files changed; EVERY_TOPIC for a change outside any topic."""
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    topics = set()
    for path in changed:
        folder, slash, _ = path.partition("/")
        topics.add(folder if slash and folder[:2].isdigit() else EVERY_TOPIC)
    return topics


def watch(
    root: Path,
    wanted: list[str] | None,
    implementation: str,
    show: Callable[[list[Status], str], None],
    interval: float = 0.5,
    max_runs: int | None = None,
) -> int:
    """Run the tests of `wanted` (all topics when None), then re-run on every save until Ctrl-C.

    `show(statuses, header)` draws the progress; `max_runs` stops after that many runs (tests).
    """
    records: dict[str, list[dict]] = {}
    runs = 0
    if warm.available():  # re-runs fork from this process: import the heavy libraries once, here
        warm.preload(heavy=any(is_heavy(root, topic) for topic in _scope(root, wanted)))
    seen = snapshot(root)
    pending = set(_scope(root, wanted))
    while True:
        if pending:
            scope = _scope(root, wanted)
            order = [topic for topic in scope if topic in pending]
            started = datetime.now().strftime("%H:%M:%S")
            try:
                run = run_tests(root, order, implementation, warm=True)
            except RunFailed as error:
                show([], f"{started}  {error}")
            else:
                for topic in order:
                    records[topic] = [record for record in run.records if record["topic"] == topic]
                found = read_catalog(root, scope, implementation)
                every_record = [record for topic in scope for record in records.get(topic, [])]
                ran = ", ".join(order) if len(order) < len(scope) or len(scope) == 1 else "all topics"
                show(classify(found, every_record), f"{started}  ran {ran} in {run.seconds:.1f} s")
            runs += 1
            if max_runs is not None and runs >= max_runs:
                return 0
        time.sleep(interval)
        now = snapshot(root)
        changed = changed_topics(seen, now)
        seen = now
        pending = _to_rerun(root, changed, _scope(root, wanted))


def _scope(root: Path, wanted: list[str] | None) -> list[str]:
    topics = catalog.topics(root)
    return topics if wanted is None else [topic for topic in topics if topic in wanted]


def _to_rerun(root: Path, changed: set[str], scope: list[str]) -> set[str]:
    if not changed:
        return set()
    if EVERY_TOPIC in changed:
        return set(scope)
    return affected_topics(root, changed) & set(scope)
