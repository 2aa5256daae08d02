"""Every "Likely mistake" a kata test can print, read from the test files with `ast` (nothing is imported).

A hint reaches a learner in one of two ways: as the `hint=` of `katakit.testing.assert_close` (or of a
test file's own helper that passes it on), rendered as `Likely mistake: {hint}`, or written out in an
`assert`'s message after "Likely mistake:". The second kind is a string constant. The first is often a
name: a test's parameter filled by `@pytest.mark.parametrize`, a helper's parameter filled by its callers,
a module constant, a dict of hints, `hint or "..."`, `hint + "; ..."`. `hints_in` follows each such name
back to the string constants it can hold, and raises `Unresolved` (file:line) for a `hint=` whose strings
it cannot find, so that no hint escapes the check: write that hint where it can be read.

Read statically rather than recorded during a reference run because a run only sees the hints of the
branches it takes, and never the ones written into an `assert`'s message.

An f-string's placeholders are kept as written (`compute in {dtype}`): a hint's text is what the learner
reads, less the values filled in at run time.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from katakit.model import LIKELY_MISTAKE

_DEPTH = 12  # how many names deep a hint is followed before giving up


@dataclass(frozen=True)
class Hint:
    """One hint text of one test file, at the first line that gives it."""

    file: str  # katas/05_attention/test_attention.py
    text: str
    line: int


class Unresolved(ValueError):
    """A `hint=` whose strings cannot be found statically."""


def _render(node: ast.JoinedStr) -> str:
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue):
            parts.append("{" + ast.unparse(value.value) + "}")
    return "".join(parts)


def _parametrize_names(decorator: ast.expr) -> tuple[list[str], ast.expr] | None:
    """(argument names, argument values) of a `@pytest.mark.parametrize(...)` decorator, else None."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
        return None
    if decorator.func.attr != "parametrize" or len(decorator.args) < 2:
        return None
    names = decorator.args[0]
    if isinstance(names, ast.Constant) and isinstance(names.value, str):
        return [name.strip() for name in names.value.split(",") if name.strip()], decorator.args[1]
    if isinstance(names, ast.Tuple | ast.List):
        return [str(e.value) for e in names.elts if isinstance(e, ast.Constant)], decorator.args[1]
    return None


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[ast.arg]:
    arguments = function.args
    return [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]


def _default(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, name: str) -> ast.expr | None:
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    pairs = list(zip(positional[len(positional) - len(arguments.defaults) :], arguments.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is not None]
    return next((default for arg, default in pairs if arg.arg == name), None)


Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda


class _Flow:
    """Where the strings of one test module can flow: names, parameters and their callers."""

    def __init__(self, tree: ast.Module, file: str) -> None:
        self.tree, self.file = tree, file
        self.parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        self.functions: dict[str, list[Scope]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.functions.setdefault(node.name, []).append(node)

    def fail(self, node: ast.AST, why: str) -> Unresolved:
        return Unresolved(f"{self.file}:{getattr(node, 'lineno', '?')}: {why}")

    def scope_of(self, node: ast.AST) -> Scope | None:
        at = self.parent.get(node)
        while at is not None and not isinstance(at, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            at = self.parent.get(at)
        return at

    # --- values --------------------------------------------------------------------------------------

    def strings(self, node: ast.expr, depth: int = 0) -> set[str]:
        """Every string `node` can evaluate to ("" included, for "no hint")."""
        if depth > _DEPTH:
            raise self.fail(node, "a hint followed too many names deep")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Constant) and node.value is None:
            return {""}
        if isinstance(node, ast.JoinedStr):
            return {_render(node)}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.strings(node.left, depth + 1), self.strings(node.right, depth + 1)
            return {a + b for a in left for b in right}
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.strings(value, depth + 1) for value in node.values))
        if isinstance(node, ast.IfExp):
            return self.strings(node.body, depth + 1) | self.strings(node.orelse, depth + 1)
        if isinstance(node, ast.Subscript):
            return set().union(*(self.strings(e, depth + 1) for e in self.elements(node.value, depth + 1)))
        if isinstance(node, ast.Name):
            return set().union(*(self.strings(e, depth + 1) for e in self.values_of(node, depth + 1)))
        raise self.fail(node, f"cannot tell which hints `{ast.unparse(node)}` holds")

    def elements(self, node: ast.expr, depth: int) -> list[ast.expr]:
        """The items of a container `node` (a list, tuple, set or dict literal, or a name bound to one)."""
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return list(node.elts)
        if isinstance(node, ast.Dict):
            return list(node.values)
        if isinstance(node, ast.Name) and depth <= _DEPTH:
            return [e for value in self.values_of(node, depth + 1) for e in self.elements(value, depth + 1)]
        raise self.fail(node, f"cannot tell what `{ast.unparse(node)}` holds")

    def values_of(self, name: ast.Name, depth: int) -> list[ast.expr]:
        """The expressions a name can be bound to where it is read: a parameter's arguments, an
        assignment's value, a loop's items, in the enclosing functions, then the module."""
        scope = self.scope_of(name)
        while scope is not None:
            if any(arg.arg == name.id for arg in _parameters(scope)):
                return self.arguments(scope, name.id, depth)
            bound = self.bindings(scope.body if not isinstance(scope, ast.Lambda) else [], name.id, depth)
            if bound:
                return bound
            scope = self.scope_of(scope)
        bound = self.bindings(self.tree.body, name.id, depth)
        if not bound:
            raise self.fail(name, f"cannot find where `{name.id}` is bound")
        return bound

    def bindings(self, body: list[ast.stmt], name: str, depth: int) -> list[ast.expr]:
        """What `name` is assigned (or iterates over) in `body`, nested functions and classes excluded."""
        found: list[ast.expr] = []
        for statement in _statements(body):
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    found += self.unpacked(target, statement.value, name, depth)
            elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
                found += self.unpacked(statement.target, statement.value, name, depth)
            elif isinstance(statement, ast.For | ast.AsyncFor):
                found += self.looped(statement.target, statement.iter, name, depth)
        return found

    def looped(self, target: ast.expr, iterated: ast.expr, name: str, depth: int) -> list[ast.expr]:
        """What `for target in iterated` binds to `name`; zip() and enumerate() are taken apart."""
        if not _binds(target, name):
            return []
        call = iterated.func.id if isinstance(iterated, ast.Call) and isinstance(iterated.func, ast.Name) else None
        if call in ("zip", "enumerate") and isinstance(target, ast.Tuple | ast.List):
            assert isinstance(iterated, ast.Call)
            sources = iterated.args if call == "zip" else [ast.Constant(0), *iterated.args[:1]]
            if len(sources) == len(target.elts):
                return [
                    v
                    for part, src in zip(target.elts, sources, strict=True)
                    for v in self.looped(part, src, name, depth)
                ]
        return [v for item in self.iterated(iterated, depth) for v in self.unpacked(target, item, name, depth)]

    def iterated(self, node: ast.expr, depth: int) -> list[ast.expr]:
        """The items a `for` loop takes from `node`; `d.items()` gives (key, value) tuples."""
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "items":
            container = node.func.value
            dicts = [container] if isinstance(container, ast.Dict) else []
            if isinstance(container, ast.Name):
                dicts = [v for v in self.values_of(container, depth + 1) if isinstance(v, ast.Dict)]
            return [ast.Tuple([k, v]) for d in dicts for k, v in zip(d.keys, d.values, strict=True) if k is not None]
        return self.elements(node, depth)

    def unpacked(self, target: ast.expr, value: ast.expr, name: str, depth: int) -> list[ast.expr]:
        """The part of `value` that `target` binds to `name`, if it binds it."""
        if isinstance(target, ast.Name):
            return [value] if target.id == name else []
        if isinstance(target, ast.Tuple | ast.List):
            if not _binds(target, name):
                return []
            rows = self.rows(value, depth)
            found = []
            for row in rows:
                if isinstance(row, ast.Tuple | ast.List) and len(row.elts) == len(target.elts):
                    for part, item in zip(target.elts, row.elts, strict=True):
                        found += self.unpacked(part, item, name, depth)
            return found
        return []

    def rows(self, value: ast.expr, depth: int) -> list[ast.expr]:
        """The tuples `value` can be, for unpacking: itself, an item of a container, a name's values."""
        if isinstance(value, ast.Tuple | ast.List):
            return [value]
        if isinstance(value, ast.Subscript):
            return [row for item in self.elements(value.value, depth + 1) for row in self.rows(item, depth + 1)]
        if isinstance(value, ast.Name) and depth <= _DEPTH:
            return [row for item in self.values_of(value, depth + 1) for row in self.rows(item, depth + 1)]
        raise self.fail(value, f"cannot unpack `{ast.unparse(value)}`")

    def arguments(self, function: Scope, name: str, depth: int) -> list[ast.expr]:
        """The values a parameter takes: from `@pytest.mark.parametrize`, else from the function's
        callers in this module, and its default."""
        values: list[ast.expr] = []
        default = _default(function, name)
        if default is not None:
            values.append(default)
        decorators = function.decorator_list if not isinstance(function, ast.Lambda) else []
        for decorator in decorators:
            declared = _parametrize_names(decorator)
            if declared is None or name not in declared[0]:
                continue
            names, rows = declared
            index = names.index(name)
            for row in self.elements(rows, depth):
                if isinstance(row, ast.Call) and isinstance(row.func, ast.Attribute) and row.func.attr == "param":
                    items = list(row.args)
                elif len(names) == 1:
                    items = [row]
                elif isinstance(row, ast.Tuple | ast.List):
                    items = list(row.elts)
                else:
                    raise self.fail(row, f"cannot read the parametrize row `{ast.unparse(row)}`")
                values.append(items[index] if len(names) > 1 else items[0])
            return values
        if isinstance(function, ast.Lambda):
            raise self.fail(function, f"cannot tell what the lambda's `{name}` is given")
        position = [arg.arg for arg in [*function.args.posonlyargs, *function.args.args]]
        for call in ast.walk(self.tree):
            if not isinstance(call, ast.Call):
                continue
            called = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
            if called != function.name:
                continue
            keyword = next((k.value for k in call.keywords if k.arg == name), None)
            if keyword is not None:
                values.append(keyword)
            elif name in position and position.index(name) < len(call.args):
                values.append(call.args[position.index(name)])
        if not values:
            raise self.fail(function, f"`{function.name}` is never given `{name}`")
        return values


def _binds(target: ast.expr, name: str) -> bool:
    return any(isinstance(node, ast.Name) and node.id == name for node in ast.walk(target))


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement of `body`, in blocks (if, for, with, try) too, but not in nested functions or classes."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(statement, field, None)
            if isinstance(inner, list):
                yield from _statements([s for s in inner if isinstance(s, ast.stmt)])
            if field == "handlers" and isinstance(inner, list):
                for handler in inner:
                    yield from _statements(handler.body)


def hints_in(path: Path, root: Path) -> list[Hint]:
    """The hints of one test file, each text once, in the order of their first line."""
    file = path.relative_to(root).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    flow = _Flow(tree, file)
    found: dict[str, int] = {}

    def add(text: str, line: int) -> None:
        text = text.strip()
        if text and (text not in found or line < found[text]):
            found[text] = line

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "hint":
                    for text in flow.strings(keyword.value):
                        add(text, keyword.value.lineno)
        elif isinstance(node, ast.JoinedStr) or (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and not isinstance(flow.parent.get(node), ast.JoinedStr)
        ):
            text = _render(node) if isinstance(node, ast.JoinedStr) else str(node.value)
            if LIKELY_MISTAKE in text:
                add(text.split(LIKELY_MISTAKE, 1)[1], node.lineno)
    return [Hint(file, text, line) for text, line in sorted(found.items(), key=lambda item: item[1])]


def test_files(root: Path, topics: list[str] | None = None) -> list[Path]:
    """The kata test files of the topics (all when None)."""
    return sorted(path for path in (root / "katas").glob("*/test_*.py") if topics is None or path.parent.name in topics)


def all_hints(root: Path, topics: list[str] | None = None) -> list[Hint]:
    return [hint for path in test_files(root, topics) for hint in hints_in(path, root)]
