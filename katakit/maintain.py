"""The maintainers' entry point, out of the learner's way: `python -m katakit.maintain COMMAND`.

    gates [NAME ...]          run the project's gates (all, in order, or those named); --list names them
    stubs [--write] [TOPIC]   check the stubs against reference/, or regenerate them
    manifest [--write]        check or regenerate the manifest that `katas check` compares with
    branches [TOPIC ...]      the branch gate: every line, branch and defaulted argument reached
    mistakes [TOPIC ...]      every "Likely mistake" is shown when its mistake is made (tests/mistakes/)
    notebook fill DIR | sync  notebooks filled from reference/ for nbmake, or re-synced with the stubs

`GATES` is the one declaration of the gates: tox.ini's environments, `.ci/run` and the GitHub
workflow `ci.yml` each call `python -m katakit.maintain gates NAME`, and tests/test_gates.py fails
when one of them names a gate the others do not.
"""

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from katakit.repo import find_root


@dataclass(frozen=True)
class Step:
    """One command of a gate, run from the repository's root."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        return " ".join([*(f"{key}={value}" for key, value in self.env.items()), *self.argv])


@dataclass(frozen=True)
class Gate:
    name: str
    what: str
    steps: tuple[Step, ...]


def _seeded(seed: int) -> Step:
    return Step(("pytest", "--impl=reference", "katas", "-q", "-p", "no:cacheprovider"), {"KATAS_SEED": str(seed)})


MAINTAIN = ("python", "-m", "katakit.maintain")
# README's test command: every kata test on reference/ plus the project's own tests.
TEST_COMMAND = ("pytest", "--impl=reference", "katas", "tests")

GATES: tuple[Gate, ...] = (
    Gate(
        "lint", "ruff's lint and format check", (Step(("ruff", "check", ".")), Step(("ruff", "format", "--check", ".")))
    ),
    Gate("typecheck", "mypy on katakit/ and tests/", (Step(("mypy",)),)),
    Gate(
        "seeds",
        "the kata tests on reference/ under seeds 1, 2 and 3: a test that catches a mistake does so for any seed",
        tuple(_seeded(seed) for seed in (1, 2, 3)),
    ),
    Gate(
        "contract",
        "the stubs are what reference/ generates, and every kata test is red on them, green on reference/",
        (Step((*MAINTAIN, "stubs")), Step(("pytest", "--impl=reference", "tests/test_contract.py", "-q"))),
    ),
    Gate(
        "branches",
        "every line, branch and defaulted argument of every kata body is reached by the kata tests",
        (Step((*MAINTAIN, "branches")),),
    ),
    Gate(
        "mistakes",
        "every Likely mistake line is shown first when the mistake it names is made (tests/mistakes/)",
        (Step((*MAINTAIN, "mistakes")),),
    ),
    Gate(
        "notebooks",
        "the notebooks, their kata cells filled from reference/, run as a learner's kernel would (nbmake)",
        (
            Step((*MAINTAIN, "notebook", "fill", "build/notebooks")),
            Step(
                # A notebook is one test item: pyproject's 15 s per kata test would cut it off.
                ("pytest", "--nbmake", "build/notebooks", "--timeout=600", "-p", "no:cacheprovider", "-q"),
                {"KATAS_CHECK_STRICT": "1"},
            ),
        ),
    ),
    Gate(
        "test",
        "README's test command: every kata test on reference/ and the project's own tests",
        (Step(TEST_COMMAND),),
    ),
)


def gate(name: str) -> Gate:
    found = {each.name: each for each in GATES}
    if name not in found:
        raise SystemExit(f"no gate called {name!r}; the gates: {', '.join(found)}")
    return found[name]


def run_gates(root: Path, names: list[str], skip: list[str]) -> int:
    chosen = [gate(name) for name in names] if names else [each for each in GATES if each.name not in skip]
    for each in chosen:
        for step in each.steps:
            print(f"[gate {each.name}] {step.shown()}", flush=True)
            argv = [sys.executable, *step.argv[1:]] if step.argv[0] == "python" else list(step.argv)
            if subprocess.run(argv, cwd=root, env={**os.environ, **step.env}).returncode != 0:
                print(f"gate {each.name} failed: {step.shown()}", file=sys.stderr)
                return 1
    return 0


def _gates(argv: list[str], root: Path) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.maintain gates", description="run the project's gates")
    parser.add_argument("names", nargs="*", help="the gates to run, in this order (default: all)")
    parser.add_argument("--skip", action="append", default=[], metavar="NAME", help="leave this gate out")
    parser.add_argument("--list", action="store_true", help="name each gate and what it checks")
    options = parser.parse_args(argv)
    if options.list:
        for each in GATES:
            print(f"{each.name:10} {each.what}")
        return 0
    for name in options.skip:
        gate(name)
    return run_gates(root, options.names, options.skip)


def _commands() -> dict[str, Callable[[list[str]], int]]:
    from katakit import branches, manifest, mistakes, notebook, stubs

    return {
        "stubs": stubs.main,
        "manifest": manifest.main,
        "branches": branches.main,
        "mistakes": mistakes.main,
        "notebook": notebook.main,
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in {"gates", *commands}:
        print(__doc__)
        return 0 if argv[:1] in ([], ["-h"], ["--help"]) else 2
    command, rest = argv[0], argv[1:]
    if command == "gates":
        return _gates(rest, find_root())
    return commands[command](rest)


if __name__ == "__main__":
    sys.exit(main())
