"""`katas watch`: re-run a topic's tests whenever one of its files is saved, and redraw.

watchfiles reports saved `.py` files (file-system events, grouped over a short debounce; it polls
where events are not available, and WATCHFILES_FORCE_POLLING=1 forces that). A change re-runs the
topics whose files changed, whose verdict is drawn first, then the topics that build on them
(curriculum.toml's `needs`; drawn as re-checking meanwhile), within the topics being watched; not
while the saved topic still fails (they wait on it). Each runs in a pytest child forked from this
process, which has imported the heavy libraries once (katakit.runner); slow tests whose code did
not change are not run again (katakit.cache). Results go to the same cache as `katas`; the first
drawing uses it.
"""

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import watchfiles

from katakit import cache, catalog, runner, workspace
from katakit.model import TestRecord
from katakit.runner import RunFailed
from katakit.status import Status, classify

EVERY_TOPIC = "*"
# Milliseconds without a further change before a batch of changes is handled (an editor saving
# several files at once is one batch), and the longest a batch may gather.
STEP_MS, DEBOUNCE_MS = 30, 400


def changed_topics(root: Path, paths: set[str]) -> set[str]:
    """The topic folders the changed files are in; EVERY_TOPIC for a change outside any topic."""
    topics = set()
    for path in paths:
        parts = Path(path).resolve().relative_to(root.resolve()).parts
        in_topic = len(parts) > 2 and parts[0] in ("katas", "reference") and parts[1][:2].isdigit()
        topics.add(parts[1] if in_topic else EVERY_TOPIC)
    return topics


def to_rerun(root: Path, changed: set[str], scope: list[str]) -> list[str]:
    """The topics of `scope` to run again after changes in `changed`, in learning order."""
    if EVERY_TOPIC in changed:
        return list(scope)
    affected = catalog.built_on(root, changed)
    return [topic for topic in scope if topic in affected]


def watch(
    root: Path,
    scope: list[str],
    implementation: str,
    show: Callable[[list[Status], str], None],
    stop: threading.Event | None = None,
) -> int:
    """Show the statuses of `scope`'s topics, then re-run and redraw on every save until Ctrl-C
    (or until `stop` is set). `show(statuses, header)` draws them."""
    if runner.can_fork():  # re-runs fork from this process: import the heavy libraries once, here
        runner.preload(root, [topic for topic in catalog.curriculum(root) if topic.folder in scope])
    fresh, _ = cache.lookup(root, scope, implementation)
    records: dict[str, list[TestRecord]] = dict(fresh)
    pending = [topic for topic in scope if topic not in fresh]
    header = "saved results: nothing changed since they ran"
    folders = [root / "katas", *([root / "reference"] if implementation == "reference" else [])]
    changes = watchfiles.watch(
        *folders, watch_filter=watchfiles.PythonFilter(), step=STEP_MS, debounce=DEBOUNCE_MS, stop_event=stop
    )

    def draw(header: str) -> None:
        found = catalog.read(root, scope, implementation)
        every_record = [record for topic in scope for record in records.get(topic, [])]
        show(classify(found, every_record, workspace.skipped(root)), header)

    saved: set[str] = set()
    while True:
        first = [topic for topic in pending if topic in saved]
        later = [topic for topic in pending if topic not in saved]
        if first and later:  # the saved file's verdict first; the topics built on it after
            header = _run(root, first, implementation, records)
            if _still_fails(records, first):
                header += f"; {', '.join(later)} wait on it: re-checked once it passes"
                later = []
            else:
                draw(f"{header}; re-checking {', '.join(later)}...")
        else:
            later = pending
        if later:
            header = _run(root, later, implementation, records)
        draw(header)
        batch = next(changes, None)
        if batch is None:
            return 0
        saved = changed_topics(root, {path for _, path in batch})
        pending = to_rerun(root, saved, scope)


def _still_fails(records: dict[str, list[TestRecord]], topics: list[str]) -> bool:
    """Whether a test of `topics` fails for a reason of its own, or is blocked by a broken file."""
    return any(record.wrong or record.blocked_by for topic in topics for record in records.get(topic, []))


def _run(root: Path, topics: list[str], implementation: str, records: dict[str, list[TestRecord]]) -> str:
    """Run `topics` in a forked child, keep their records, and say what ran."""
    started = datetime.now().strftime("%H:%M:%S")
    fingerprints = {topic: cache.fingerprint(root, topic, implementation) for topic in topics}
    try:
        run = runner.run_changed(root, topics, implementation, forked=True)
    except RunFailed as error:
        return f"{started}  {error}"
    for topic in topics:
        records[topic] = [record for record in run.records if record.topic == topic]
    cache.store(root, implementation, fingerprints, run.records)
    return f"{started}  ran {', '.join(topics)} in {run.seconds:.1f} s"
