"""The learner's local state, in `.katas/` at the root of the checkout (git ignores it).

.katas/backups/<time>/katas/...   a copy of every learner file a command rewrote, as it was
.katas/skipped.json               the katas `katas skip` moved past
.katas/results.json               the test results `katas` re-uses while nothing changed (katakit.cache)
"""

import json
import shutil
import time
from pathlib import Path

FOLDER = ".katas"


def folder(root: Path) -> Path:
    path = root / FOLDER
    path.mkdir(exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():  # ignored even in a fork whose .gitignore does not list it
        ignore.write_text("*\n", encoding="utf-8")
    return path


def backup(root: Path, files: list[Path]) -> Path:
    """Copy `files` (inside `root`) to a new folder `.katas/backups/<time>/`, keeping their paths
    relative to the root; returns that folder."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder(root) / "backups" / stamp
    number = 1
    while target.exists():
        number += 1
        target = target.with_name(f"{stamp}-{number}")
    for file in files:
        copy = target / file.resolve().relative_to(root.resolve())
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, copy)
    return target


def _skipped_file(root: Path) -> Path:
    return root / FOLDER / "skipped.json"


def skipped(root: Path) -> set[str]:
    """The katas the learner skipped, as `topic/name`."""
    path = _skipped_file(root)
    if not path.is_file():
        return set()
    try:
        return set(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError):
        return set()


def set_skipped(root: Path, katas: set[str]) -> None:
    folder(root)
    _skipped_file(root).write_text(json.dumps(sorted(katas), indent=1) + "\n", encoding="utf-8")
