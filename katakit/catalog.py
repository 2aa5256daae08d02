"""The table of contents: which katas exist, in which order, with their task text and hints.

A kata is a top-level function decorated with `@kata`, or a top-level class with at least one
`@kata` method (its other methods, such as `__init__`, are given). Its docstring states the task
(first paragraph), the shapes and its hints:

    Hints:
        1. A nudge.
        2. The key idea.

The catalog is read from the source with `ast` (nothing is imported), so it works on a learner's
half-written file and costs milliseconds.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from katakit.impl import ROOT, TEST_PREFIXES
from katakit.stubs import is_kata

# Modules of a topic in the order a learner takes them; a topic not listed has a single module.
MODULE_ORDER = {
    "04_tensors": ("tensors", "einops_katas", "einsum_katas", "linear_regression"),
}

_HINT = re.compile(r"^\s*(\d+)\.\s+(.*)$")


@dataclass(frozen=True)
class Kata:
    topic: str
    module: str
    name: str
    line: int
    docstring: str

    @property
    def path(self) -> Path:
        """The learner's file, relative to the repository root."""
        return Path("katas") / self.topic / f"{self.module}.py"

    @property
    def task(self) -> str:
        """The first paragraph of the docstring: what to do."""
        return self.docstring.split("\n\n")[0].strip()

    @property
    def hints(self) -> list[str]:
        """The numbered items of the docstring's `Hints:` section, nudge first."""
        _, found, section = self.docstring.partition("Hints:")
        hints: list[str] = []
        for line in section.splitlines() if found else []:
            numbered = _HINT.match(line)
            if numbered:
                hints.append(numbered.group(2).strip())
            elif hints and line.strip():
                hints[-1] += " " + line.strip()
        return hints


def topics(root: Path = ROOT) -> list[str]:
    """Topic folders, `01_linear_algebra` first."""
    return sorted(path.name for path in (root / "katas").glob("[0-9][0-9]_*") if path.is_dir())


def modules(topic: str, root: Path = ROOT) -> list[str]:
    """A topic's kata modules (the files a learner edits), in learning order."""
    on_disk = sorted(
        path.stem for path in (root / "katas" / topic).glob("*.py") if not path.name.startswith((*TEST_PREFIXES, "_"))
    )
    return list(MODULE_ORDER.get(topic, on_disk))


def _is_kata_unit(node: ast.stmt) -> bool:
    if isinstance(node, ast.ClassDef):
        return any(is_kata(child) for child in node.body)
    return is_kata(node)


def katas_in(source: str, topic: str, module: str) -> list[Kata]:
    """The katas defined in one module's source, in the order they appear."""
    return [
        Kata(topic, module, node.name, node.lineno, ast.get_docstring(node) or "")
        for node in ast.parse(source).body
        if _is_kata_unit(node)
    ]


def all_katas(side: str = "katas", root: Path = ROOT) -> list[Kata]:
    """Every kata of the repository, in learning order, read from `side` (katas or reference)."""
    found = []
    for topic in topics(root):
        for module in modules(topic, root):
            found += katas_in((root / side / topic / f"{module}.py").read_text(), topic, module)
    return found
