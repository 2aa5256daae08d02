"""Test results `katas` re-uses while nothing they depend on changed: `.katas/results.json`.

A topic's results are keyed on a fingerprint of everything that decides them: the topic's folder
(learner files, tests, any conftest.py), the learner files of the topics it builds on
(curriculum.toml's `needs`), the root conftest.py, pyproject.toml, curriculum.toml, katakit/, and
KATAS_SEED. `katas` with nothing changed answers from here without starting pytest.

A slow test (a training, marked `slow`) that passed is kept, within its topic's entry, under a
fingerprint of the code it ran: the katas it called (its record's calls, fixtures included), each
read with `ast` without docstrings or comments, with the code beside them in their modules that is
no kata (imports, helpers); its test file; the shared files and katakit/. While that fingerprint
holds, the topic runs again without it (`reusable`): a comment in the trained kata, or an edit of a
kata the training does not call, does not retrain it.
"""

import ast
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from katakit import catalog, workspace
from katakit.model import PASSED, KataRef, TestRecord

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
    _hash_files(digest, root, _files(root, topic, side))
    return digest.hexdigest()


def _hash_files(digest: Any, root: Path, files: list[Path]) -> None:
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        try:
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"missing")


def code_fingerprint(root: Path, side: str, record: TestRecord) -> str:
    """A hash of the code a test ran: its test file, the shared files, katakit/, and the katas it
    called as `ast` sees them (katakit.calls), docstrings left out."""
    digest = hashlib.sha256(f"{side} seed={os.environ.get('KATAS_SEED', '')}".encode())
    shared = [root / name for name in SHARED] + sorted((root / "katakit").rglob("*.py"))
    _hash_files(digest, root, [root / record.nodeid.split("::")[0], *shared])
    for ref in sorted(record.called):
        digest.update(f"{ref}={_kata_code(root, side, ref)}".encode())
    return digest.hexdigest()


def _kata_code(root: Path, side: str, ref: KataRef) -> str:
    """Kata `ref`'s definition and its module's code that is no kata, without docstrings."""
    try:
        tree = ast.parse(ref.of.at(root, side).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return "unreadable"
    kept = [node for node in tree.body if not catalog.is_kata_unit(node) or getattr(node, "name", None) == ref.name]
    for node in ast.walk(ast.Module(body=kept, type_ignores=[])):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return "\n".join(ast.dump(node) for node in kept)


def reusable(root: Path, topics: list[str], side: str) -> dict[str, TestRecord]:
    """The slow tests of `topics` that passed and whose code has not changed since: nodeid -> record."""
    stored = _load(root)
    kept: dict[str, TestRecord] = {}
    for topic in topics:
        for nodeid, entry in stored.get(f"{side}/{topic}", {}).get("slow", {}).items():
            record = TestRecord.from_json(entry["record"])
            if code_fingerprint(root, side, record) == entry["fingerprint"]:
                kept[nodeid] = record
    return kept


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
        mine = [record for record in records if record.topic == topic]
        stored[f"{side}/{topic}"] = {
            "fingerprint": current,
            "records": [record.to_json() for record in mine],
            "slow": {
                record.nodeid: {"fingerprint": code_fingerprint(root, side, record), "record": record.to_json()}
                for record in mine
                if record.slow and record.outcome == PASSED
            },
        }
    path = workspace.folder(root) / FILE
    path.write_text(json.dumps(stored), encoding="utf-8")
