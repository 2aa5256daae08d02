"""Generate the learner's stubs in `katas/` from the solutions in `reference/`, and restore one.

`reference/` is the one source of truth. A stub is its reference file with the body of every
function decorated with `@kata` cut down to `raise NotImplementedError`, and every hint after the
first cut from the kata's docstring (`katas hint NAME 2` reveals them one at a time); signature,
task, shapes and every other line stay as they are. So stubs and reference cannot drift apart in
names, signatures or annotations.

    python -m katakit.maintain stubs                    check that every stub is what reference/ generates
    python -m katakit.maintain stubs --write [topic]    regenerate them (maintainers)

`--write` never loses a learner's work: it refuses to overwrite a file in which a kata's body is
no longer the stub's (a kata somebody solved) unless given `--force`, and every file it rewrites
is first copied to `.katas/backups/<time>/`.
"""

import argparse
import ast
import re
import sys
from pathlib import Path

from katakit import workspace
from katakit.catalog import Function, is_kata, is_kata_unit
from katakit.repo import find_root, source_file

STUB_BODY = "raise NotImplementedError"
_HINTS = re.compile(r"^(\s*)Hints:\s*$")
_SECOND_HINT = re.compile(r"^\s*2\.\s")


Edit = tuple[int, int, list[str]]  # replace lines[start:end] (0-based) by these lines


def _later_hints(lines: list[str], unit: Function | ast.ClassDef) -> Edit | None:
    """Keep only hint 1 in the docstring of kata `unit`, and say how to see the next one."""
    if ast.get_docstring(unit, clean=False) is None:
        return None
    node = unit.body[0]
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    heading = next((i for i in range(first, last + 1) if _HINTS.match(lines[i])), None)
    if heading is None:
        return None
    second = next((i for i in range(heading, last + 1) if _SECOND_HINT.match(lines[i])), None)
    if second is None:
        return None
    indent = lines[heading][: len(lines[heading]) - len(lines[heading].lstrip())]
    closing = lines[last][lines[last].rindex('"""') :].rstrip("\n")
    replacement = [f"{indent}Hints (the next one: katas hint {unit.name} 2):\n", *lines[heading + 1 : second]]
    return heading, last + 1, [*replacement, f"{indent}{closing}\n"]


def _body(function: Function) -> Edit | None:
    """Cut a kata function's body (after its docstring) down to `raise NotImplementedError`."""
    documented = ast.get_docstring(function, clean=False) is not None
    body = function.body[1:] if documented else function.body
    if not body:
        return None
    start = (function.body[0].end_lineno or function.body[0].lineno) if documented else body[0].lineno - 1
    return start, function.end_lineno or body[-1].lineno, [f"{' ' * body[0].col_offset}{STUB_BODY}\n"]


def stub_source(reference_source: str) -> str:
    """The stub of a reference module: every `@kata` body replaced by `raise NotImplementedError`,
    and only the first hint left in each kata's docstring."""
    lines = reference_source.splitlines(keepends=True)
    tree = ast.parse(reference_source)
    edits = [_body(node) for node in ast.walk(tree) if is_kata(node)]
    edits += [_later_hints(lines, unit) for unit in tree.body if is_kata_unit(unit)]
    for start, end, replacement in sorted((edit for edit in edits if edit), reverse=True):
        lines[start:end] = replacement
    return "".join(lines)


def is_stub_body(function: Function) -> bool:
    """Whether a kata function's body is still the stub's: its docstring and `raise NotImplementedError`."""
    body = function.body[1:] if ast.get_docstring(function, clean=False) is not None else function.body
    return len(body) == 1 and ast.unparse(body[0]) == STUB_BODY


def attempted(source: str) -> list[str]:
    """The katas of a learner file whose body is no longer the stub's (`Class.method` for methods)."""
    found = []
    for unit in ast.parse(source).body:
        if isinstance(unit, ast.ClassDef):
            found += [f"{unit.name}.{f.name}" for f in unit.body if is_kata(f) and not is_stub_body(f)]
        elif is_kata(unit) and not is_stub_body(unit):
            found.append(unit.name)
    return found


def untouched(root: Path, topic: str) -> bool:
    """Whether the learner's files of `topic` are still what reference/ generates, compared as ast (a
    comment or a blank line is no change; an edited body, an added import or a file that does not
    parse is)."""
    try:
        for reference in sorted((root / "reference" / topic).glob("[!_]*.py")):
            learner = kata_file(root, reference)
            generated = stub_source(reference.read_text(encoding="utf-8"))
            if ast.dump(ast.parse(learner.read_text(encoding="utf-8"))) != ast.dump(ast.parse(generated)):
                return False
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def reference_files(root: Path) -> list[Path]:
    """Every solution module: `reference/NN_topic/<module>.py`."""
    return [path for path in sorted((root / "reference").glob("[0-9][0-9]_*/*.py")) if path.name != "__init__.py"]


def kata_file(root: Path, reference_file: Path) -> Path:
    """The stub that mirrors a reference file."""
    return root / "katas" / reference_file.relative_to(root / "reference")


def out_of_sync(root: Path) -> list[Path]:
    """Stubs that differ from what their reference file generates (or are missing)."""
    stale = []
    for reference in reference_files(root):
        stub = kata_file(root, reference)
        if not stub.exists() or stub.read_text(encoding="utf-8") != stub_source(reference.read_text(encoding="utf-8")):
            stale.append(stub)
    return stale


class WouldLoseWork(Exception):
    """`--write` without `--force` on files holding katas somebody solved; the message names them."""


def write(root: Path, topics: list[str], force: bool = False) -> tuple[list[Path], Path | None]:
    """Regenerate the stubs of `topics` (all when empty). Returns the files written and the backup
    folder holding what they were. Without `force`, raises WouldLoseWork (and writes nothing)
    when a file to rewrite holds a kata whose body is no longer the stub."""
    planned: dict[Path, str] = {}
    solved: list[str] = []
    for reference in reference_files(root):
        if topics and reference.parent.name not in topics:
            continue
        stub = kata_file(root, reference)
        source = stub_source(reference.read_text(encoding="utf-8"))
        current = stub.read_text(encoding="utf-8") if stub.exists() else None
        if current == source:
            continue
        planned[stub] = source
        if current is not None:
            try:
                changed = attempted(current)
            except SyntaxError:
                changed = ["(the file does not compile)"]
            solved += [f"{stub.relative_to(root).as_posix()}: {name}" for name in changed]
    if solved and not force:
        raise WouldLoseWork(
            "these katas hold code that is not a stub, and --write would overwrite it:\n  "
            + "\n  ".join(solved)
            + "\nNothing was written. To overwrite them anyway, add --force: "
            + "each file is first copied to .katas/backups/."
        )
    existing = [path for path in planned if path.exists()]
    backup = workspace.backup(root, existing) if existing else None
    for stub, source in planned.items():
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text(source, encoding="utf-8")
    return list(planned), backup


def _unit(source: str, name: str) -> ast.stmt | None:
    return next((node for node in ast.parse(source).body if getattr(node, "name", None) == name), None)


def _span(node: ast.stmt) -> tuple[int, int]:
    """The lines of a top-level definition, decorators included (0-based, end exclusive)."""
    decorators = getattr(node, "decorator_list", [])
    start = min([node.lineno, *[decorator.lineno for decorator in decorators]]) - 1
    return start, node.end_lineno or node.lineno


def definition(source: str, name: str) -> str:
    """The source of top-level definition `name` (a kata), decorators included."""
    node = _unit(source, name)
    if node is None:
        raise KeyError(name)
    start, end = _span(node)
    return "".join(source.splitlines(keepends=True)[start:end])


def replaced(source: str, name: str, new: str) -> str:
    """`source` with its top-level definition `name` (decorators included) replaced by `new`. Raises
    SyntaxError for a source that does not compile, KeyError for one that defines no `name`."""
    node = _unit(source, name)
    if node is None:
        raise KeyError(name)
    start, end = _span(node)
    lines = source.splitlines(keepends=True)
    lines[start:end] = new.splitlines(keepends=True)
    return "".join(lines)


def reset(root: Path, topic: str, module: str, name: str) -> Path:
    """Put kata `name` of a learner file back to its stub, after copying the file to a backup
    folder (returned). The file's other katas and lines stay as they are."""
    learner = source_file(root, "katas", topic, module)
    source = learner.read_text(encoding="utf-8")
    stub = definition(stub_source(source_file(root, "reference", topic, module).read_text(encoding="utf-8")), name)
    reset_source = replaced(source, name, stub)  # raises SyntaxError for a file that does not compile
    backup = workspace.backup(root, [learner])
    learner.write_text(reset_source, encoding="utf-8")
    return backup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.maintain stubs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the stubs instead of checking them")
    parser.add_argument(
        "--force", action="store_true", help="with --write: overwrite solved katas too (after a backup)"
    )
    parser.add_argument("--root", type=Path, default=None, help="the repository (default: found from here)")
    parser.add_argument("topics", nargs="*", help="topic folders to write, e.g. 05_attention (default: all)")
    args = parser.parse_args(argv)
    root = (args.root or find_root()).resolve()
    if args.write:
        try:
            written, backup = write(root, args.topics, force=args.force)
        except WouldLoseWork as error:
            print(f"katakit.stubs: {error}", file=sys.stderr)
            return 1
        for path in written:
            print(f"wrote {path.relative_to(root).as_posix()}")
        if backup:
            print(f"the files it replaced are in {backup.relative_to(root).as_posix()}/")
        return 0
    stale = out_of_sync(root)
    for path in stale:
        print(
            f"{path.relative_to(root).as_posix()} is not what reference/ generates. Maintainers: "
            "`python -m katakit.maintain stubs --write` regenerates it (it backs up every file it rewrites in "
            ".katas/backups/ and refuses to overwrite solved katas unless given --force)."
        )
    return 1 if stale else 0
