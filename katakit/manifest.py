"""Everything that decides a verdict, by hash: a fork's `katas check` warns when it was changed.

Learners edit `katas/NN_topic/<module>.py`, never the tests beside it nor the machinery that runs
them. The manifest `katakit/test_manifest.json` holds the sha256, as shipped (line endings
normalised, so a Windows checkout matches), of every kata test and benchmark file, every
conftest.py, the pytest configuration (pyproject.toml, curriculum.toml, and pytest.ini, tox.ini,
setup.cfg where they exist) and every file of katakit/. A file of those kinds that was not shipped
(a new `katas/NN_topic/conftest.py`, say) is flagged too.

    python -m katakit.maintain manifest            check: exit 1 and name the files that differ
    python -m katakit.maintain manifest --write    regenerate it after changing one of them (maintainers)
"""

import argparse
import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from katakit.repo import find_root

MANIFEST = Path("katakit") / "test_manifest.json"
# Which files decide a verdict, as `fnmatch` patterns on paths relative to the root (`*` crosses folders).
PATTERNS = (
    "katas/*/test_*.py",
    "katas/*/benchmark_*.py",
    "conftest.py",
    "*/conftest.py",
    "katakit/*.py",
    "pyproject.toml",
    "curriculum.toml",
    "pytest.ini",
    "tox.ini",
    "setup.cfg",
)
# Folders never searched: environments, caches, the learner's .katas/ state.
IGNORED = {".venv", "venv", ".tox", ".git", ".katas", "__pycache__", "node_modules", "build", ".pytest_cache"}


def verdict_files(root: Path) -> list[Path]:
    """Every file that decides a kata's verdict, relative to `root`."""
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in IGNORED and not name.endswith(".egg-info")]
        for name in files:
            path = (Path(folder) / name).relative_to(root)
            if any(fnmatch.fnmatch(path.as_posix(), pattern) for pattern in PATTERNS):
                found.append(path)
    return sorted(found)


def digest(path: Path) -> str:
    """sha256 of the file with CRLF line endings read as LF."""
    return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()


def compute(root: Path) -> dict[str, str]:
    return {path.as_posix(): digest(root / path) for path in verdict_files(root)}


def manifest_path(root: Path) -> Path:
    """The manifest of `root`, else the one shipped beside this module."""
    own = root / MANIFEST
    return own if own.is_file() else Path(__file__).resolve().parent / MANIFEST.name


def load(root: Path) -> dict[str, str] | None:
    path = manifest_path(root)
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))["files"]


def write(root: Path) -> Path:
    path = root / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {
        "about": "sha256 of the files that decide a verdict; regenerate: python -m katakit.maintain manifest --write",
        "files": compute(root),
    }
    path.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


@dataclass
class Differences:
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    no_manifest: bool = False

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.added or self.no_manifest)

    def lines(self) -> list[str]:
        """One line per difference, naming the file."""
        if self.no_manifest:
            return ["no test manifest found: cannot tell whether the kata tests are the shipped ones"]
        return (
            [f"{path}: changed since it was shipped" for path in self.changed]
            + [f"{path}: missing (it was shipped)" for path in self.missing]
            + [f"{path}: not a shipped file (it can change the verdict)" for path in self.added]
        )


def differences(root: Path) -> Differences:
    """How the files that decide a verdict in `root` differ from the manifest."""
    shipped = load(root)
    if shipped is None:
        return Differences(no_manifest=True)
    present = compute(root)
    return Differences(
        changed=sorted(path for path in present.keys() & shipped.keys() if present[path] != shipped[path]),
        missing=sorted(shipped.keys() - present.keys()),
        added=sorted(present.keys() - shipped.keys()),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.maintain manifest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the manifest from the files on disk")
    parser.add_argument("--root", type=Path, default=None, help="the repository (default: found from here)")
    options = parser.parse_args(argv)
    root = (options.root or find_root()).resolve()
    if options.write:
        path = write(root)
        print(f"wrote {path.relative_to(root)}: {len(verdict_files(root))} files")
        return 0
    found = differences(root)
    for line in found.lines():
        print(line)
    if not found:
        print(f"{len(verdict_files(root))} files match {MANIFEST.as_posix()}")
    return 1 if found else 0
