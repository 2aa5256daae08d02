"""The table of contents: which topics and katas exist, in which order, with their task and hints.

The topics, their modules and what each builds on are declared in `curriculum.toml` at the root,
and so are the routes through them (`Route`: the order `katas` suggests the katas in).
A kata is a top-level function decorated with `@kata`, or a top-level class with at least one
`@kata` method (its other methods, such as `__init__`, are given). Its docstring states the task
(first paragraph), the shapes and its hints:

    Hints:
        1. A nudge.
        2. The key idea.

Katas are read from the source with `ast` (nothing is imported), so reading works on a learner's
half-written file and costs milliseconds. A learner file that does not compile is listed in
`Catalog.broken`, and its katas are read from its twin in reference/.
"""

import ast
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeGuard, TypeVar

from katakit.model import Module
from katakit.repo import source_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CURRICULUM = "curriculum.toml"
T = TypeVar("T")

_HINT = re.compile(r"^\s*(\d+)\.\s+(.*)$")
# `Hints:` in reference/; `Hints (the next one: katas hint NAME 2):` in a stub, which keeps hint 1 only.
_HINTS_HEADING = re.compile(r"^\s*Hints\b[^\n]*:\s*$", re.MULTILINE)
# A top-level definition, found even in a file that does not compile.
_DEFINITION = re.compile(r"(?:async\s+def|def|class)\s+(\w+)")


@dataclass(frozen=True)
class Effort:
    """How hard a kata is (1 to 3) and about how many minutes it takes, as curriculum.toml says."""

    difficulty: int
    minutes: int


@dataclass(frozen=True)
class Topic:
    """One entry of curriculum.toml."""

    folder: str
    modules: tuple[str, ...]
    needs: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()
    reading: tuple[str, ...] = ()  # what to read or watch first: "what, which sections: URL"
    efforts: dict[str, Effort] = field(default_factory=dict)  # kata name -> its effort


def curriculum(root: Path) -> list[Topic]:
    """The topics of `root/curriculum.toml`, in learning order."""
    declared = tomllib.loads((root / CURRICULUM).read_text(encoding="utf-8"))
    return [
        Topic(
            entry["folder"],
            tuple(entry["modules"]),
            tuple(entry.get("needs", ())),
            tuple(entry.get("preload", ())),
            tuple(entry.get("reading", ())),
            {name: Effort(effort["difficulty"], effort["minutes"]) for name, effort in entry.get("katas", {}).items()},
        )
        for entry in declared["topic"]
    ]


@dataclass(frozen=True)
class Route:
    """An order to take the katas in, from curriculum.toml's `[[route]]`: `katas` goes by the one the
    learner picked (`katas route NAME`), else by the first.

    Each step names a topic (`01_linear_algebra`), one module of it (`04_tensors/tensors.py`) or one
    kata (`02_probability/fit_gaussian_by_gradient_ascent`). A kata belongs to the most specific
    step that names it, so `02_probability` and a later `02_probability/fit_gaussian_by_gradient_ascent`
    defer that one kata; katas that no step names come last. Within a step, katas keep their order
    in the curriculum. No steps: the topics in folder order."""

    name: str
    audience: str  # who it is for: "new to torch"
    about: str  # the route in a few words
    steps: tuple[str, ...] = ()

    def rank(self, kata: "Kata") -> int:
        """The index of the step `kata` belongs to (len(steps) when none names it)."""
        named = {
            f"{kata.topic}/{kata.name}": 3,
            f"{kata.topic}/{kata.module}.py": 2,
            kata.topic: 1,
        }
        ranked = [(named[step], index) for index, step in enumerate(self.steps) if step in named]
        return max(ranked)[1] if ranked else len(self.steps)

    def ordered(self, items: list[T], kata: Callable[[T], "Kata"]) -> list[T]:
        """`items` (katas, statuses...; `kata` gives each one's kata), in this route's order."""
        return sorted(items, key=lambda item: self.rank(kata(item)))


FOLDER_ORDER = Route("folders", "at home in torch", "the topics in folder order")


def routes(root: Path) -> list[Route]:
    """The routes of `root/curriculum.toml`, the default first (folder order when it declares none)."""
    declared = tomllib.loads((root / CURRICULUM).read_text(encoding="utf-8")).get("route", [])
    found = [Route(entry["name"], entry["for"], entry["about"], tuple(entry.get("steps", ()))) for entry in declared]
    return found or [FOLDER_ORDER]


def route(root: Path, name: str | None) -> Route:
    """The route called `name`; the default one when `name` is None or names none."""
    declared = routes(root)
    return next((each for each in declared if each.name == name), declared[0])


def route_problems(root: Path) -> list[str]:
    """The steps of curriculum.toml's routes that name no topic, module or kata of it."""
    known: set[str] = set()
    for topic in curriculum(root):
        known.add(topic.folder)
        known.update(f"{topic.folder}/{module}.py" for module in topic.modules)
        known.update(f"{topic.folder}/{name}" for name in topic.efforts)
    return [f"route {each.name}: {step!r}" for each in routes(root) for step in each.steps if step not in known]


def topics(root: Path) -> list[str]:
    """The topic folders, `01_linear_algebra` first."""
    return [topic.folder for topic in curriculum(root)]


def built_on(root: Path, changed: set[str]) -> set[str]:
    """The `changed` topics and every topic that builds on one of them, directly or not."""
    declared = curriculum(root)
    affected = set(changed)
    grew = True
    while grew:
        grew = False
        for topic in declared:
            if topic.folder not in affected and affected.intersection(topic.needs):
                affected.add(topic.folder)
                grew = True
    return affected


def needed_by(root: Path, topic: str) -> list[str]:
    """The earlier topics `topic` builds on, directly or not, in learning order."""
    declared = curriculum(root)
    by_folder = {entry.folder: entry for entry in declared}
    found: set[str] = set()
    todo = list(by_folder[topic].needs) if topic in by_folder else []
    while todo:
        earlier = todo.pop()
        if earlier not in found:
            found.add(earlier)
            todo += by_folder[earlier].needs if earlier in by_folder else ()
    return [entry.folder for entry in declared if entry.folder in found]


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
        return Path(Module(self.topic, self.module).learner_file)

    @property
    def task(self) -> str:
        """The first paragraph of the docstring: what to do."""
        return self.docstring.split("\n\n")[0].strip()

    @property
    def hints(self) -> list[str]:
        """The numbered items of the docstring's `Hints:` section, nudge first."""
        heading = _HINTS_HEADING.search(self.docstring)
        hints: list[str] = []
        for line in self.docstring[heading.end() :].splitlines() if heading else []:
            numbered = _HINT.match(line)
            if numbered:
                hints.append(numbered.group(2).strip())
            elif hints and line.strip():
                hints[-1] += " " + line.strip()
        return hints


Function = ast.FunctionDef | ast.AsyncFunctionDef


def is_kata(node: ast.AST) -> TypeGuard[Function]:
    """Whether `node` is a function decorated with `@kata` (or `@katakit.kata`)."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    names = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", None) for d in node.decorator_list}
    return "kata" in names


def is_kata_unit(node: ast.AST) -> TypeGuard[Function | ast.ClassDef]:
    """A top-level kata: a `@kata` function, or a class with a `@kata` method."""
    if isinstance(node, ast.ClassDef):
        return any(is_kata(child) for child in node.body)
    return is_kata(node)


def katas_in(source: str, topic: str, module: str) -> list[Kata]:
    """The katas defined in one module's source, in the order they appear."""
    return [
        Kata(topic, module, node.name, node.lineno, ast.get_docstring(node) or "")
        for node in ast.parse(source).body
        if is_kata_unit(node)
    ]


@dataclass
class Catalog:
    """Every kata in learning order, and the learner files that do not compile."""

    katas: list[Kata]
    broken: dict[tuple[str, str], str] = field(default_factory=dict)  # (topic, module) -> "file:line: error"
    side: str = "katas"  # the folder the katas were read from

    def topics(self) -> list[str]:
        return list(dict.fromkeys(kata.topic for kata in self.katas))


def read(root: Path, wanted: list[str] | None = None, side: str = "katas") -> Catalog:
    """The katas of the `wanted` topics (all when None), read from `side` (katas or reference)."""
    found = Catalog([], side=side)
    for topic in curriculum(root):
        if wanted is not None and topic.folder not in wanted:
            continue
        for module in topic.modules:
            path = source_file(root, side, topic.folder, module)
            if not path.is_file():
                continue
            source = path.read_text(encoding="utf-8", errors="replace")
            try:
                found.katas += katas_in(source, topic.folder, module)
            except SyntaxError as error:
                line = f":{error.lineno}" if error.lineno else ""
                shown = path.relative_to(root).as_posix()
                found.broken[(topic.folder, module)] = f"{shown}{line}: SyntaxError: {error.msg}"
                found.katas += _katas_of_broken_file(root, source, topic.folder, module)
    return found


def _katas_of_broken_file(root: Path, source: str, topic: str, module: str) -> list[Kata]:
    """The katas of a file that does not compile: read from its twin in reference/, at the lines
    where the broken file still defines them."""
    try:
        katas = katas_in(source_file(root, "reference", topic, module).read_text(encoding="utf-8"), topic, module)
    except (OSError, SyntaxError):
        return []
    lines: dict[str, int] = {}
    for number, text in enumerate(source.splitlines(), start=1):
        definition = _DEFINITION.match(text)
        if definition:
            lines.setdefault(definition.group(1), number)
    return [replace(kata, line=lines.get(kata.name, kata.line)) for kata in katas]
