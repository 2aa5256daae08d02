"""Test results `katas` re-uses while nothing they depend on changed: `.katas/results.json`.

A topic's results are keyed on a fingerprint of everything that decides them: the topic's folder
(learner files, tests, any conftest.py), the learner files of the topics it builds on
(curriculum.toml's `needs`), the root conftest.py, pyproject.toml, curriculum.toml, katakit/, and
KATAS_SEED. `katas` with nothing changed answers from here without starting pytest.
"""

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from katakit import catalog, workspace
from katakit.model import TestRecord

FILE = "results.json"
SHARED = ("conftest.py", "pyproject.toml", catalog.CURRICULUM, "katas/__init__.py", "katas/conftest.py")


def _files(root: Path, topic: str, side: str) -> list[Path]:
    files = [root / name for name in SHARED]
    files += (root / "katakit").rglob("*.py")
    files += (root / "katas" / topic).rglob("*.py")
    for folder in {side, "katas"}:
        for earlier in [topic, *catalog.needed_by(root, topic)]:
            files += (root / folder / earlier).glob("*.py")
    return sorted({path for path in files if "__pycache__" not in path.parts})


def fingerprint(root: Path, topic: str, side: str) -> str:
    """A hash of every file that decides the results of `topic`'s tests against `side`."""
    digest = hashlib.sha256(f"{side} seed={os.environ.get('KATAS_SEED', '')}".encode())
    for path in _files(root, topic, side):
        digest.update(path.relative_to(root).as_posix().encode())
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"missing")
    return digest.hexdigest()


def _load(root: Path) -> dict[str, Any]:
    path = root / workspace.FOLDER / FILE
    try:
        stored: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return stored


def lookup(root: Path, topics: list[str], side: str) -> tuple[dict[str, list[TestRecord]], dict[str, str]]:
    """The cached records of the topics whose fingerprint still matches, and every topic's current
    fingerprint (to store the results of those that run again under)."""
    stored = _load(root)
    fingerprints = {topic: fingerprint(root, topic, side) for topic in topics}
    fresh = {
        topic: [TestRecord.from_json(record) for record in entry["records"]]
        for topic, current in fingerprints.items()
        if (entry := stored.get(f"{side}/{topic}")) and entry.get("fingerprint") == current
    }
    return fresh, fingerprints


def store(root: Path, side: str, fingerprints: dict[str, str], records: list[TestRecord]) -> None:
    """Keep the records of the topics that just ran, under the fingerprints taken before the run."""
    stored = _load(root)
    for topic, current in fingerprints.items():
        stored[f"{side}/{topic}"] = {
            "fingerprint": current,
            "records": [record.to_json() for record in records if record.topic == topic],
        }
    path = workspace.folder(root) / FILE
    path.write_text(json.dumps(stored), encoding="utf-8")
