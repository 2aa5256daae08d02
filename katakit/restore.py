"""`katas restore`: the way back from `katas reset` and `stubs --write --force`.

Both keep the learner's files as they were in `.katas/backups/<time>/` (katakit.workspace). Here:
what each backup holds (its files, the katas attempted in them, those that differ from the
learner's files now), and putting back a whole backup, one file of it, or one kata (its
definition only: the file's other katas stay as they are). Whatever is replaced is backed up
first, so a restore can itself be undone.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

from katakit import stubs, workspace
from katakit.catalog import is_kata_unit
from katakit.workspace import Backup


class CannotRestore(LookupError):
    """A backup, file or kata that names nothing, or a kata that cannot be picked out; the message says why."""


@dataclass(frozen=True)
class Held:
    """One file of a backup, compared with the learner's file now."""

    path: str  # relative to the root: katas/05_attention/attention.py
    attempted: tuple[str, ...]  # its katas that are not stubs (Class for a class with a solved method)
    differing: tuple[str, ...]  # its katas whose definition differs from the learner's file now
    same_as_now: bool


def held(root: Path, backup: Backup) -> list[Held]:
    """The files of `backup`, each compared with the learner's file now."""
    return [_compare(root, backup, path) for path in backup.files]


def _compare(root: Path, backup: Backup, path: str) -> Held:
    then = _read(backup.path / path)
    now = _read(root / path) if (root / path).is_file() else None
    then_katas, now_katas = _definitions(then), _definitions(now or "")
    try:
        attempted = tuple(dict.fromkeys(name.split(".")[0] for name in stubs.attempted(then)))
    except SyntaxError:
        attempted = ()
    differing = tuple(name for name, text in then_katas.items() if now_katas.get(name) != text)
    return Held(path, attempted, differing, then == now)


def _definitions(source: str) -> dict[str, str]:
    """The katas of a source and their definitions; none for a file that does not compile."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    return {node.name: stubs.definition(source, node.name) for node in tree.body if is_kata_unit(node)}


def find(root: Path, wanted: str) -> Backup:
    """The backup `wanted` names: its folder's name, a unique start of it, or `latest`."""
    found = workspace.backups(root)
    if not found:
        raise CannotRestore("there are no backups in .katas/backups/ yet.")
    if wanted == "latest":
        return found[0]
    exact = [backup for backup in found if backup.name == wanted]
    starting = [backup for backup in found if backup.name.startswith(wanted)]
    if exact or len(starting) == 1:
        return (exact or starting)[0]
    names = ", ".join(backup.name for backup in (starting or found)[:5])
    if starting:
        raise CannotRestore(f"{wanted!r} starts several backups: {names}. Say which.")
    raise CannotRestore(f"no backup {wanted!r}. The newest: {names} (`katas restore` lists them).")


@dataclass(frozen=True)
class Restored:
    """What a restore put back, and where the files it replaced were backed up (None: nothing changed)."""

    files: tuple[str, ...]
    kata: str | None
    replaced: Path | None


def restore(root: Path, backup: Backup, target: str | None = None) -> Restored:
    """Put back every file of `backup`, or the one file `target` names (its path, or its name when
    that is unique), or the one kata `target` names (its definition only), after backing up what it
    replaces."""
    if target is None:
        return _put_back(root, backup, list(backup.files))
    files = [path for path in backup.files if path == target or Path(path).name == target]
    if len(files) == 1:
        return _put_back(root, backup, files)
    if len(files) > 1:
        raise CannotRestore(f"{target!r} is the name of several files of {backup.name}: {', '.join(files)}.")
    return _put_back_kata(root, backup, target)


def _put_back(root: Path, backup: Backup, paths: list[str]) -> Restored:
    changed = [
        path
        for path in paths
        if not (root / path).is_file() or (root / path).read_bytes() != (backup.path / path).read_bytes()
    ]
    existing = [root / path for path in changed if (root / path).is_file()]
    replaced = workspace.backup(root, existing) if existing else None
    for path in changed:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes((backup.path / path).read_bytes())
    return Restored(tuple(changed), None, replaced)


def _put_back_kata(root: Path, backup: Backup, name: str) -> Restored:
    holding = [path for path in backup.files if name in _definitions(_read(backup.path / path))]
    if not holding:
        files = ", ".join(backup.files)
        raise CannotRestore(f"no file of backup {backup.name} ({files}) defines a kata {name!r}.")
    if len(holding) > 1:
        raise CannotRestore(f"{name!r} is defined in several files of {backup.name}: restore one of them whole.")
    path = holding[0]
    then = stubs.definition(_read(backup.path / path), name)
    learner = root / path
    now = _read(learner) if learner.is_file() else ""
    try:
        restored = stubs.replaced(now, name, then)
    except SyntaxError as error:
        raise CannotRestore(
            f"{path}:{error.lineno} does not compile ({error.msg}), so one kata cannot be put back in it: fix that "
            f"line, or put back the whole file (katas restore {backup.name} {path})."
        ) from None
    except KeyError:
        raise CannotRestore(
            f"your {path} has no {name} any more: put back the whole file (katas restore {backup.name} {path})."
        ) from None
    if restored == now:
        return Restored((), name, None)
    replaced = workspace.backup(root, [learner])
    learner.write_text(restored, encoding="utf-8")
    return Restored((path,), name, replaced)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")
