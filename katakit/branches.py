"""The gate that keeps the kata tests complete: every line and branch of every `@kata` body in
reference/ runs under the kata tests, and every kata argument with a default is, in some test,
given another value.

    python -m katakit.maintain branches                 all topics
    python -m katakit.maintain branches 05_attention    some topics

It runs `pytest --impl=reference` on the topics under coverage.py in branch mode, with the kata
plugin recording the arguments each kata is called with (--katas-arguments), keeps only the lines
inside kata bodies (code outside them is given to the learner), and names every line never run,
every branch never taken and every argument never varied. Exit 1 when there is any.
"""

import argparse
import ast
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from katakit import catalog
from katakit.catalog import is_kata
from katakit.repo import find_root, source_file


@dataclass(frozen=True)
class Body:
    """The lines of one kata function's body (docstring excluded) and its arguments with a default."""

    kata: str  # function, or Class.method
    first: int
    last: int
    defaulted: tuple[str, ...]


def bodies(source: str) -> list[Body]:
    """Every `@kata` function or method of a module's source."""
    found = []
    for node in ast.parse(source).body:
        functions = [(node, "")] if not isinstance(node, ast.ClassDef) else [(n, f"{node.name}.") for n in node.body]
        for function, prefix in functions:
            if not is_kata(function):
                continue
            body = function.body[1:] if ast.get_docstring(function) is not None else function.body
            if not body:
                continue
            arguments = function.args
            positional = [*arguments.posonlyargs, *arguments.args]
            defaulted = [a.arg for a in positional[len(positional) - len(arguments.defaults) :]]
            defaulted += [a.arg for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d]
            name = prefix + function.name
            found.append(Body(name, body[0].lineno, function.end_lineno or body[-1].lineno, tuple(defaulted)))
    return found


def gaps(root: Path, coverage_report: dict, arguments: dict[str, list[str]], topics: list[str]) -> list[str]:
    """One line per line never run, branch never taken and argument never varied, in kata bodies."""
    files = {Path(name).resolve(): data for name, data in coverage_report["files"].items()}
    problems = []
    for topic in catalog.curriculum(root):
        if topic.folder not in topics:
            continue
        for module in topic.modules:
            path = source_file(root, "reference", topic.folder, module)
            shown = path.relative_to(root).as_posix()
            data = files.get(path.resolve(), {"missing_lines": None, "missing_branches": []})
            for body in bodies(path.read_text(encoding="utf-8")):
                inside = range(body.first, body.last + 1)
                if data["missing_lines"] is None:
                    problems.append(f"{shown}:{body.first}: {body.kata} never ran")
                    continue
                for line in data["missing_lines"]:
                    if line in inside:
                        problems.append(f"{shown}:{line}: {body.kata}: this line never runs")
                for start, end in data["missing_branches"]:
                    if start in inside:
                        to = f"line {end}" if end > 0 else "the exit"
                        problems.append(f"{shown}:{start}: {body.kata}: the branch to {to} is never taken")
                varied = set(arguments.get(f"reference.{topic.folder}.{module}:{body.kata}", ()))
                for name in body.defaulted:
                    if name not in varied:
                        problems.append(
                            f"{shown}:{body.first}: {body.kata}: argument `{name}` is never given another value "
                            "than its default"
                        )
    return problems


def measure(root: Path, topics: list[str]) -> tuple[dict, dict[str, list[str]]]:
    """Run the topics' kata tests on reference/ under coverage: (coverage's JSON report, arguments)."""
    with tempfile.TemporaryDirectory(prefix="katas-branches-") as scratch:
        data, report, used = Path(scratch) / ".coverage", Path(scratch) / "coverage.json", Path(scratch) / "args.json"
        coverage = [sys.executable, "-m", "coverage"]
        sources = ",".join(str(root / "reference" / topic) for topic in topics)
        run = [*coverage, "run", "--branch", f"--data-file={data}", f"--source={sources}", "-m", "pytest"]
        tests = [f"katas/{topic}" for topic in topics]
        pytest_options = ["--impl=reference", "-q", "-p", "no:cacheprovider", f"--katas-arguments={used}"]
        result = subprocess.run([*run, *tests, *pytest_options], cwd=root, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"the kata tests failed on reference/:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
        subprocess.run([*coverage, "json", f"--data-file={data}", "-o", str(report), "-q"], cwd=root, check=True)
        return json.loads(report.read_text()), json.loads(used.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.maintain branches", description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="*", help="topic folders (default: all)")
    parser.add_argument("--root", type=Path, default=None, help="the repository (default: found from here)")
    options = parser.parse_args(argv)
    root = (options.root or find_root()).resolve()
    topics = options.topics or catalog.topics(root)
    report, arguments = measure(root, topics)
    problems = gaps(root, report, arguments, topics)
    for problem in problems:
        print(problem)
    katas = sum(
        len(bodies(source_file(root, "reference", t.folder, m).read_text()))
        for t in catalog.curriculum(root)
        if t.folder in topics
        for m in t.modules
    )
    if problems:
        print(f"{len(problems)} gaps in the kata tests: add a test that reaches each.")
        return 1
    print(f"every line and branch of {katas} kata bodies runs, and every argument with a default is varied")
    return 0
