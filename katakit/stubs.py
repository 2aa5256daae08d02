"""Generate the learner's stubs in `katas/` from the solutions in `reference/`.

`reference/` is the one source of truth. A stub is its reference file with the body of every
function decorated with `@kata` cut down to `raise NotImplementedError`; signature, docstring and
every other line stay as they are. So stubs and reference cannot drift apart in names,
signatures or annotations.

    python -m katakit.stubs            check that every stub is what reference/ generates
    python -m katakit.stubs --write    regenerate them (maintainers only: it overwrites katas/)
"""

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

from katakit.impl import ROOT

STUB_BODY = "raise NotImplementedError"


def is_kata(node: ast.AST) -> bool:
    """Whether `node` is a function decorated with `@kata` (or `@katakit.kata`)."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    names = {d.id if isinstance(d, ast.Name) else getattr(d, "attr", None) for d in node.decorator_list}
    return "kata" in names


def stub_source(reference_source: str) -> str:
    """The stub of a reference module: every `@kata` body replaced by `raise NotImplementedError`."""
    lines = reference_source.splitlines(keepends=True)
    katas = [node for node in ast.walk(ast.parse(reference_source)) if is_kata(node)]
    for function in sorted(katas, key=lambda node: node.lineno, reverse=True):
        documented = ast.get_docstring(function, clean=False) is not None
        body = function.body[1:] if documented else function.body
        if not body:
            continue
        first_line = function.body[0].end_lineno if documented else body[0].lineno - 1
        indent = " " * body[0].col_offset
        lines[first_line : function.end_lineno] = [f"{indent}{STUB_BODY}\n"]
    return "".join(lines)


def reference_files() -> Iterator[Path]:
    """Every solution module: `reference/NN_topic/<module>.py`."""
    for path in sorted((ROOT / "reference").glob("[0-9][0-9]_*/*.py")):
        if path.name != "__init__.py":
            yield path


def kata_file(reference_file: Path) -> Path:
    """The stub that mirrors a reference file."""
    return ROOT / "katas" / reference_file.relative_to(ROOT / "reference")


def out_of_sync() -> list[Path]:
    """Stubs that differ from what their reference file generates (or are missing)."""
    stale = []
    for reference in reference_files():
        stub = kata_file(reference)
        if not stub.exists() or stub.read_text() != stub_source(reference.read_text()):
            stale.append(stub)
    return stale


def write(topics: list[str]) -> list[Path]:
    """Regenerate the stubs of the given topics (all when empty); returns the files written."""
    written = []
    for reference in reference_files():
        if topics and reference.parent.name not in topics:
            continue
        stub = kata_file(reference)
        source = stub_source(reference.read_text())
        if not stub.exists() or stub.read_text() != source:
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text(source)
            written.append(stub)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.stubs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the stubs instead of checking them")
    parser.add_argument("topics", nargs="*", help="topic folders to write, e.g. 05_attention (default: all)")
    args = parser.parse_args(argv)
    if args.write:
        for path in write(args.topics):
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    stale = out_of_sync()
    for path in stale:
        print(f"{path.relative_to(ROOT)} is not what reference/ generates: run python -m katakit.stubs --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
