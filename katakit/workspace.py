"""The learner's local state, in `.katas/` at the root of the checkout (git ignores it).

.katas/backups/<time>/katas/...   a copy of every learner file a command rewrote, as it was
                                  (`katas restore` lists them and puts one back: katakit.restore)
.katas/skipped.json               the katas `katas skip` moved past
.katas/route                      the route `katas route NAME` picked (curriculum.toml's `[[route]]`)
.katas/results.json               the test results `katas` re-uses while nothing changed (katakit.cache)
"""

import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

FOLDER = ".katas"
BACKUPS = "backups"
_STAMP = "%Y%m%d-%H%M%S"  # a backup's folder: 20261204-153012, then 20261204-153012-2 within the same second
_STAMP_LENGTH = len("20261204-153012")


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
    stamp = time.strftime(_STAMP)
    target = folder(root) / BACKUPS / stamp
    number = 1
    while target.exists():
        number += 1
        target = target.with_name(f"{stamp}-{number}")
    for file in files:
        copy = target / file.resolve().relative_to(root.resolve())
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, copy)
    return target


@dataclass(frozen=True)
class Backup:
    """One folder of `.katas/backups/`: when it was made, and the files in it."""

    name: str
    path: Path
    files: tuple[str, ...]  # relative to the root: katas/05_attention/attention.py

    @property
    def made(self) -> datetime | None:
        try:
            return datetime.strptime(self.name[:_STAMP_LENGTH], _STAMP)
        except ValueError:
            return None


def backups(root: Path) -> list[Backup]:
    """The backups, newest first."""
    found = []
    parent = root / FOLDER / BACKUPS
    for path in sorted(parent.iterdir() if parent.is_dir() else [], key=_made_order, reverse=True):
        if path.is_dir():
            files = tuple(sorted(file.relative_to(path).as_posix() for file in path.rglob("*") if file.is_file()))
            found.append(Backup(path.name, path, files))
    return found


def _made_order(path: Path) -> tuple[str, int]:
    """20261204-153012-2 after 20261204-153012, and -10 after -9."""
    number = path.name[_STAMP_LENGTH + 1 :]
    return path.name[:_STAMP_LENGTH], int(number) if number.isdigit() else 1


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


def _route_file(root: Path) -> Path:
    return root / FOLDER / "route"


def chosen_route(root: Path) -> str | None:
    """The name of the route the learner picked, None until they pick one."""
    path = _route_file(root)
    return path.read_text(encoding="utf-8").strip() or None if path.is_file() else None


def set_route(root: Path, name: str) -> None:
    folder(root)
    _route_file(root).write_text(name + "\n", encoding="utf-8")
