"""What went wrong in a kata test, in the learner's terms (for katakit.plugin).

A failure is one of: a stub that still raises NotImplementedError (to do; `needs` names another
kata's stub when that is the one that raised); a learner module that does not compile or import
(blocking, reported once); a kata that ran past pytest-timeout's limit (an endless loop?); or a
real failure, located at the learner's file:line. In compact mode the explanation carries the short
report to show instead of pytest's (katakit.tracebacks).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import difflib
import linecache
import os
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from katakit import tracebacks
from katakit.model import SIDES, Module
from katakit.repo import module_name

# Set by the `impl` fixture (conftest.py) on the error that stopped the module under test from importing.
BLOCKING = "_katas_blocks_the_module"
# pytest-timeout's failure message: "Timeout (>15.0s) from pytest-timeout."
_TIMEOUT = re.compile(r"Timeout \(>([0-9.eE+-]+)s\)")
ENDLESS = "{kata} did not finish within {seconds} s: an endless loop (a while loop whose condition never changes)?"


def _through_others(kata: str | None, called: list[str]) -> list[str]:
    """The line that names the other katas a failing test ran (`06_transformer/transformer:LayerNorm`
    as LayerNorm): their mistakes show here too, and their own tests say whether they are right."""
    own = kata.split(".")[0] if kata else None  # Adam.step is a method of the class Adam
    others = sorted({name.rpartition(":")[2] for name in called} - {own})
    if not others:
        return []
    return [f"this test also runs your {', '.join(others)}: their own tests say whether a mistake is theirs"]


def kata_of(item: pytest.Item) -> str | None:
    """The kata a test checks: its `@pytest.mark.kata("name")`."""
    marker = item.get_closest_marker("kata")
    return marker.args[0] if marker is not None and marker.args else None


@dataclass(frozen=True)
class Definition:
    """A top-level def or class of a learner file, decorators included."""

    name: str
    first: int  # first line, decorators included
    line: int  # the `def`/`class` line
    last: int


@dataclass
class Blocking:
    """The error that stopped a learner module from importing, as the learner should read it."""

    where: str  # katas/05_attention/attention.py:324
    kind: str  # SyntaxError
    message: str  # invalid syntax
    source: list[str]  # the offending line (and a caret under a syntax error)

    @property
    def one_line(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"

    @property
    def blocked_by(self) -> str:
        return f"{self.where} ({self.kind})"


@dataclass
class Failure:
    """A failed test, explained: what goes in its TestRecord, and what the learner sees."""

    message: str
    not_implemented: bool = False
    blocked_by: str | None = None
    location: str | None = None
    timed_out: bool = False
    needs: str | None = None  # the other kata's stub that raised NotImplementedError
    source: list[str] = field(default_factory=list)  # the line that blocks the module
    longrepr: Any = None  # the report to show instead of pytest's (compact mode only)


class Explainer:
    """Explains the failures of one pytest run; remembers the katas that timed out."""

    def __init__(self, config: pytest.Config, compact: bool) -> None:
        self.config = config
        self.root = config.rootpath
        # Learner modules are imported from the resolved root (katakit.repo.root_of_test): both spellings count.
        self.roots = list(dict.fromkeys([config.rootpath, config.rootpath.resolve()]))
        self.compact = compact
        # (test file, kata) -> the test that timed out, and the learner's line it was running
        self.timed_out: dict[tuple[str, str], tuple[str, str | None]] = {}
        self.after_timeout: set[str] = set()  # nodeids failed at once because their kata had timed out
        self._relative: dict[str, str | None] = {}
        self._definitions: dict[str, list[Definition]] = {}

    def timed_out_before(self, item: pytest.Item) -> str | None:
        """The test in which this test's kata already timed out, if it did: this test fails at once."""
        name = kata_of(item)
        earlier = self.timed_out.get((str(item.path), name)) if name else None
        if earlier is None:
            return None
        self.after_timeout.add(item.nodeid)
        return f"{name} already timed out in {earlier[0]}"

    def explain(
        self, item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException], called: list[str] | None = None
    ) -> Failure:
        """What went wrong, in the learner's terms, and (in compact mode) the report to show. `called`:
        the katas the test ran (katakit.calls), named in the report when the test checks its kata through
        others."""
        error = excinfo.value
        kata = kata_of(item)
        compact = self.compact and kata is not None
        if item.nodeid in self.after_timeout:
            location = self.timed_out.get((str(item.path), kata), ("", None))[1] if kata else None
            return Failure(str(error), location=location, timed_out=True)
        if getattr(error, BLOCKING, False):
            blocking = self._blocking(item, excinfo)
            return Failure(
                blocking.one_line,
                blocked_by=blocking.blocked_by,
                location=blocking.where if ":" in blocking.where else None,
                source=blocking.source,
                longrepr=f"blocked by {blocking.blocked_by}" if compact else None,
            )
        entries = list(excinfo.traceback)
        learner = [entry for entry in entries if self.learner_file(entry.path)]
        if isinstance(error, NotImplementedError) and entries and self.learner_file(entries[-1].path):
            location = self._where(entries[-1])
            return Failure(
                excinfo.exconly(tryshort=True),
                not_implemented=True,
                location=location,
                needs=self._needs(item, entries[-1]),
                longrepr=f"to do: {kata} ({location})" if compact else None,
            )
        timeout = _TIMEOUT.match(str(error)) if isinstance(error, pytest.fail.Exception) else None
        if timeout and kata:
            location = self._where(learner[-1]) if learner else None
            message = ENDLESS.format(kata=kata, seconds=f"{float(timeout.group(1)):g}")
            stopped = f"Stopped at {location}." if location else ""
            self.timed_out[(str(item.path), kata)] = (item.name, location)
            shown = [message, stopped] if stopped else [message]
            return Failure(
                f"{message} {stopped}".strip(),
                location=location,
                timed_out=True,
                longrepr=self._short(excinfo, replace_message=shown) if compact else None,
            )
        your_code = None
        if learner:
            location = self._where(learner[-1])
        else:
            your_code = self._kata_function(excinfo) or self._kata_definition(item, kata)
            location = your_code[0] if your_code else None
        lines = [f"your code: {your_code[0]} ({your_code[1]})"] if your_code else []
        lines += _through_others(kata, called or [])
        trailer = "\n".join(lines) or None
        message, suggestion = _message(excinfo)
        return Failure(
            message,
            location=location,
            longrepr=self._short(excinfo, trailer=trailer, suggestion=suggestion) if compact else None,
        )

    def _short(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        trailer: str | None = None,
        replace_message: list[str] | None = None,
        suggestion: str | None = None,
    ) -> Any:
        try:
            absolute = Path.cwd() != self.root
        except OSError:
            absolute = True
        return tracebacks.short(
            excinfo,
            self.shown,
            absolute=absolute,
            showlocals=bool(self.config.getoption("showlocals", False)),
            trailer=trailer,
            replace_message=replace_message,
            suggestion=suggestion,
        )

    # --- what the traceback says ------------------------------------------------------------------

    def shown(self, entry: Any) -> bool:
        """Whether a traceback entry is worth a learner's eyes: a file of this repository, not katakit's."""
        relative = self.relative_path(entry.path)
        if relative is None:
            return False
        parts = relative.split("/")
        return not any(part.startswith(".") or part in tracebacks.HIDDEN_PARTS for part in parts)

    def relative_path(self, path: Path | str) -> str | None:
        """`katas/05_attention/attention.py` for a file in the repository, None for one outside it."""
        key = str(path)
        if key not in self._relative:
            relative = None
            if isinstance(path, Path) or os.path.isabs(key):
                for root in self.roots:
                    with contextlib.suppress(ValueError):
                        relative = Path(key).relative_to(root).as_posix()
                        break
            self._relative[key] = relative
        return self._relative[key]

    def learner_file(self, path: Path | str) -> bool:
        """A learner's file: a .py under katas/ or reference/ that is not a test (nor a benchmark, nor a conftest)."""
        relative = self.relative_path(path)
        if relative is None or not relative.endswith(".py"):
            return False
        parts = relative.split("/")
        name = parts[-1]
        return parts[0] in SIDES and not name.startswith(("test_", "benchmark_")) and name != "conftest.py"

    def _where(self, entry: Any) -> str:
        return f"{self.relative_path(entry.path)}:{entry.lineno + 1}"

    def definitions_of(self, path: Path) -> list[Definition]:
        """The top-level definitions of a learner file (none for a file that does not compile)."""
        key = str(path)
        if key not in self._definitions:
            found: list[Definition] = []
            try:
                tree: ast.Module | None = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                tree = None
            for node in tree.body if tree else ():
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    found.append(Definition(node.name, first, node.lineno, node.end_lineno or node.lineno))
            self._definitions[key] = found
        return self._definitions[key]

    def side(self) -> str:
        side = getattr(self.config.option, "impl", None)
        return side if side in SIDES else "katas"

    def module_of(self, item: pytest.Item) -> Module | None:
        """The module a kata test checks."""
        path = Path(item.path)
        if path.parent.parent.name != "katas":
            return None
        return Module(path.parent.name, module_name(path))

    def _learner_module(self, item: pytest.Item) -> Path | None:
        """The module under test of a kata test: `<side>/<topic>/<module>.py`."""
        module = self.module_of(item)
        return module.at(self.root, self.side()) if module else None

    def _needs(self, item: pytest.Item, entry: Any) -> str | None:
        """The stub that raised, when it is not the test's own kata: `MultiHeadAttention.forward`."""
        code = entry.frame.code.raw
        name = getattr(code, "co_qualname", code.co_name)
        line = entry.lineno + 1
        owner = next((d.name for d in self.definitions_of(Path(entry.path)) if d.first <= line <= d.last), None)
        kata = kata_of(item)
        own_file = self._learner_module(item)
        if owner == kata and (
            own_file is None or self.relative_path(entry.path) == self.relative_path(own_file) or not own_file.is_file()
        ):
            return None
        return str(name) if owner is None or str(name).split(".")[0] == owner else f"{owner} ({name})"

    def _kata_function(self, excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str] | None:
        """The learner's function whose return value jaxtyping rejected, from jaxtyping's own frame
        (its `fn`): the function has returned, so it is on no stack."""
        for entry in reversed(excinfo.traceback):
            if self.shown(entry):
                break  # the error came from the test's own code
            try:
                fn = entry.frame.f_locals.get("fn")
            except Exception:
                continue
            code = getattr(fn, "__code__", None)
            if code is not None and self.learner_file(code.co_filename):
                relative = self.relative_path(code.co_filename)
                line = code.co_firstlineno
                for definition in self.definitions_of(Path(code.co_filename)):
                    if definition.first == line:
                        line = definition.line  # the `def` line, not its decorator's
                        break
                else:
                    line = _skip_decorators(code.co_filename, line)
                return f"{relative}:{line}", getattr(fn, "__qualname__", code.co_name)
        return None

    def _kata_definition(self, item: pytest.Item, kata: str | None) -> tuple[str, str] | None:
        """Where the test's kata is defined in the module under test: `katas/01_x/x.py:17`."""
        module = self._learner_module(item)
        if not kata or module is None:
            return None
        line = self.definition_line(module, kata)
        return (f"{self.relative_path(module)}:{line}", kata) if line else None

    def definition_line(self, path: Path, name: str) -> int | None:
        """The `def`/`class` line of the top-level `name` in a learner file."""
        return next((d.line for d in self.definitions_of(path) if d.name == name), None)

    def _blocking(self, item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException]) -> Blocking:
        error = excinfo.value
        kind = type(error).__name__
        if isinstance(error, SyntaxError) and error.filename:
            path = self.relative_path(os.path.abspath(error.filename)) or error.filename
            where = f"{path}:{error.lineno}" if error.lineno else path
            return Blocking(where, kind, str(error.msg), _syntax_source(error))
        message = _message(excinfo)[0].partition(": ")[2].strip().splitlines()
        learner = [entry for entry in excinfo.traceback if self.learner_file(entry.path)]
        first = message[0] if message else ""
        if learner:
            entry = learner[-1]
            source = linecache.getline(str(entry.path), entry.lineno + 1).strip()
            return Blocking(self._where(entry), kind, first, [f"    {source}"] if source else [])
        module = self._learner_module(item)
        where = (self.relative_path(module) if module is not None else None) or item.nodeid.split("::")[0]
        return Blocking(where, kind, first, [])


def _message(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str | None]:
    """The error's one-line form, with Python's own suggestion ("Did you mean: 'rearrange'?") on a
    name, attribute or import error; and that suggestion alone."""
    message = excinfo.exconly(tryshort=True)
    if not isinstance(excinfo.value, (NameError, AttributeError, ImportError)):
        return message, None
    try:
        suggestion = _did_you_mean(excinfo)
    except Exception:  # a suggestion is a courtesy: never a reason to lose the report
        suggestion = None
    if suggestion and suggestion not in message:
        return f"{message}. {suggestion}", suggestion
    return message, None


def _did_you_mean(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """Python's "Did you mean" (printed by the interpreter, not in the message before Python 3.12),
    worked out the same way where the traceback module does not give it."""
    error = excinfo.value
    python = "".join(traceback.format_exception_only(error))
    given = re.search(r"Did you mean:? [^\n]*\?", python)
    if given:
        return given.group(0)
    name: str | None = None
    candidates: list[str] = []
    imported = re.match(r"cannot import name '(\w+)' from '([\w.]+)'", str(error))
    if isinstance(error, ImportError) and imported:
        name, module = imported.group(1), sys.modules.get(imported.group(2))
        candidates = dir(module) if module is not None else []
    elif isinstance(error, AttributeError) and getattr(error, "name", None) and getattr(error, "obj", None) is not None:
        name, candidates = error.name, dir(error.obj)
    elif isinstance(error, NameError) and getattr(error, "name", None) and excinfo.traceback:
        frame = excinfo.traceback[-1].frame
        name, candidates = error.name, [*frame.f_locals, *frame.f_globals, *dir(builtins)]
    close = difflib.get_close_matches(name, [c for c in candidates if c != name], n=1) if name else []
    return f"Did you mean: '{close[0]}'?" if close else None


def _skip_decorators(filename: str, line: int) -> int:
    """The `def` line of a function whose code starts at its first decorator."""
    for number in range(line, line + 20):
        text = linecache.getline(filename, number).strip()
        if text and not text.startswith("@"):
            return number
    return line


def _syntax_source(error: SyntaxError) -> list[str]:
    """The line of a syntax error, with a caret under the offending text."""
    text = (error.text or "").rstrip("\n")
    if not text.strip():
        return []
    stripped = text.lstrip()
    indent = len(text) - len(stripped)
    lines = [f"    {stripped.rstrip()}"]
    if error.offset:
        start = max(0, error.offset - 1 - indent)
        end_offset = getattr(error, "end_offset", None)
        same_line = getattr(error, "end_lineno", error.lineno) == error.lineno
        width = end_offset - error.offset if end_offset and same_line and end_offset > error.offset else 1
        lines.append("    " + " " * start + "^" * width)
    return lines
