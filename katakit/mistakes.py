"""The gate that keeps the "Likely mistake" lines honest: each is shown when a learner makes the mistake it names.

    python -m katakit.maintain mistakes                       every declared mistake, and the coverage check
    python -m katakit.maintain mistakes 05_attention          some topics
    python -m katakit.maintain mistakes --kata stable_softmax one kata's mistakes, with the output of any that fail
    python -m katakit.maintain mistakes --check               the declarations and the coverage only (no test runs)

The mistakes are declared in `tests/mistakes/NN_topic.toml`, one `[[mistake]]` table each:

    [[mistake]]
    kata = "stable_softmax"          # the kata (MultiHeadAttention.forward: one method of a class kata)
    replace = "exponentials.sum(dim=-1, keepdim=True)"   # occurs exactly once in the kata's reference body
    by = "exponentials.sum(dim=0, keepdim=True)"         # the mistake a learner makes
    says = "normalising over the wrong axis"             # part of the hint that must name it
    tests = "GPT2"                   # optional: whose tests catch it (default: the kata's own)

For each, the edit is made to the reference module in memory (never on disk: a forked child imports the
edited source in its place), and the kata's tests run as a learner runs them,
`pytest katas/NN_topic/test_MODULE.py --impl=reference --kata NAME`. The mistake passes when the tests
fail and `says` is in the plain output, the report a learner reads first; a hint shown only under -vv
(another failure of the kata came first) is reported as such, and fails too.

Coverage: every hint of the kata tests (katakit.hints reads them) must be named by some declaration's
`says`, or be listed in `tests/mistakes/uncovered.toml`, the debt, which only shrinks: an entry that
is covered or no longer exists is an error there too.

Children are forked from a parent that has imported torch, pytest and what the test files import, so a
mistake costs a pytest run, not an interpreter start; `--jobs` run at once (the cores, up to 4). Off
Linux (macOS: fork after torch is unsafe) or with --no-fork, each child is a fresh interpreter.
"""

import argparse
import ast
import contextlib
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import linecache
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from katakit import catalog, hints, runner
from katakit.branches import Body, bodies
from katakit.model import LIKELY_MISTAKE, Module
from katakit.repo import find_root

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DECLARATIONS = Path("tests") / "mistakes"
UNCOVERED = DECLARATIONS / "uncovered.toml"
FIELDS = {"kata", "replace", "by", "says", "tests"}
TIMEOUT = 180.0  # seconds for one mistake's run; pytest-timeout stops a single test after 15


@dataclass(frozen=True)
class Mistake:
    """One declared mistake: an edit of a kata's reference body, and the hint it should bring up."""

    topic: str
    kata: str  # stable_softmax, MultiHeadAttention, or MultiHeadAttention.forward
    replace: str
    by: str
    says: str
    where: str  # tests/mistakes/05_attention.toml:12
    tests: str = ""  # the kata whose tests run; default: the kata's own

    @property
    def tested(self) -> str:
        return self.tests or self.kata.split(".")[0]

    def shown(self) -> str:
        return f"{self.where}: {self.kata}: {self.replace!r} -> {self.by!r}"


class Invalid(ValueError):
    """A declaration that cannot be made: an unknown kata, a `replace` found not exactly once, ..."""


# --- declarations ---------------------------------------------------------------------------------------


def declaration_files(root: Path, topics: Sequence[str] | None = None) -> list[Path]:
    return sorted(path for path in (root / DECLARATIONS).glob("[0-9]*.toml") if topics is None or path.stem in topics)


def read_declarations(root: Path, topics: Sequence[str] | None = None) -> list[Mistake]:
    """The mistakes declared for the topics (all when None), in file order."""
    found = []
    for path in declaration_files(root, topics):
        text = path.read_text(encoding="utf-8")
        lines = [number for number, line in enumerate(text.splitlines(), 1) if line.strip() == "[[mistake]]"]
        shown = path.relative_to(root).as_posix()
        tables = tomllib.loads(text).get("mistake", [])
        for line, table in zip(lines, tables, strict=True):
            where = f"{shown}:{line}"
            unknown = set(table) - FIELDS
            missing = {"kata", "replace", "by", "says"} - set(table)
            if unknown or missing:
                raise Invalid(f"{where}: fields {sorted(missing)} missing, {sorted(unknown)} unknown")
            found.append(Mistake(path.stem, where=where, **{key: str(value) for key, value in table.items()}))
    return found


@functools.cache
def _reference(path: Path) -> tuple[str, tuple[Body, ...]]:
    """A reference module's source and its kata bodies, read and parsed once per run (every mistake asks)."""
    source = path.read_text(encoding="utf-8")
    return source, tuple(bodies(source))


def module_of(root: Path, topic: str, kata: str) -> str:
    """The module of the topic that defines the kata (a function, class or Class.method)."""
    for entry in catalog.curriculum(root):
        if entry.folder != topic:
            continue
        for module in entry.modules:
            _, found = _reference(Module(topic, module).at(root, "reference"))
            if any(body.kata == kata or body.kata.startswith(kata.split(".")[0] + ".") for body in found):
                return module
        raise Invalid(f"{topic} has no kata {kata!r}")
    raise Invalid(f"no topic {topic!r} in curriculum.toml")


def edited(root: Path, mistake: Mistake) -> tuple[Module, str]:
    """The reference module of the mistake's kata and its source with the mistake made."""
    module = Module(mistake.topic, module_of(root, mistake.topic, mistake.kata))
    source, found = _reference(module.at(root, "reference"))
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    wanted = [b for b in found if b.kata == mistake.kata or b.kata.startswith(mistake.kata + ".")]
    spans = [(starts[b.first - 1], starts[b.last]) for b in wanted]
    places = [
        start + found.start()
        for start, end in spans
        for found in re.finditer(re.escape(mistake.replace), source[start:end])
    ]
    if len(places) != 1:
        raise Invalid(
            f"{mistake.shown()}: `replace` occurs {len(places)} times in the kata's body, should be once: "
            "quote more of the line"
        )
    if mistake.replace == mistake.by:
        raise Invalid(f"{mistake.shown()}: `by` is `replace`: no mistake")
    at = places[0]
    result = source[:at] + mistake.by + source[at + len(mistake.replace) :]
    try:
        ast.parse(result)
    except SyntaxError as error:
        raise Invalid(f"{mistake.shown()}: the edited module does not compile ({error.msg})") from error
    return module, result


def test_module(root: Path, mistake: Mistake) -> Module:
    """The module whose test file runs: the one of the kata whose tests catch the mistake."""
    return Module(mistake.topic, module_of(root, mistake.topic, mistake.tested))


def named_hint(mistake: Mistake, hints_of_file: list[hints.Hint]) -> hints.Hint:
    """The hint a declaration names: the one hint whose text holds `says` (when several do, the
    shortest, if it is part of all the others)."""
    matching = [hint for hint in hints_of_file if mistake.says in hint.text]
    smallest = [h for h in matching if not any(o.text != h.text and o.text in h.text for o in matching)]
    if not matching:
        raise Invalid(f"{mistake.shown()}: says {mistake.says!r}, which no hint of its tests holds")
    if len(smallest) > 1:
        shown = "; ".join(repr(h.text) for h in smallest)
        raise Invalid(f"{mistake.shown()}: says {mistake.says!r}, which {len(smallest)} hints hold ({shown})")
    return smallest[0]


def check_declarations(root: Path, mistakes: list[Mistake]) -> tuple[list[str], set[hints.Hint]]:
    """(one line per invalid declaration, the hints the valid ones name)."""
    problems, named = [], set()
    by_file: dict[str, list[hints.Hint]] = {}
    for mistake in mistakes:
        try:
            edited(root, mistake)
            test_file = test_module(root, mistake).test_file.as_posix()
            if test_file not in by_file:
                by_file[test_file] = hints.hints_in(root / test_file, root)
            named.add(named_hint(mistake, by_file[test_file]))
        except (Invalid, hints.Unresolved) as error:
            problems.append(str(error))
    return problems, named


def read_uncovered(root: Path) -> dict[str, list[str]]:
    """tests/mistakes/uncovered.toml: test file -> the hints no declaration names yet."""
    path = root / UNCOVERED
    if not path.is_file():
        return {}
    return {file: list(texts) for file, texts in tomllib.loads(path.read_text(encoding="utf-8")).items()}


def check_coverage(root: Path, named: set[hints.Hint], topics: Sequence[str] | None = None) -> list[str]:
    """One line per hint of the kata tests that no declaration names and uncovered.toml does not list,
    and per entry of uncovered.toml that is named after all or no longer exists."""
    problems = []
    try:
        every = hints.all_hints(root, list(topics) if topics is not None else None)
    except hints.Unresolved as error:
        return [str(error)]
    debt = read_uncovered(root)
    listed = {(file, text) for file, texts in debt.items() for text in texts}
    existing = {(hint.file, hint.text) for hint in every}
    named_texts = {(hint.file, hint.text) for hint in named}
    for hint in every:
        key = (hint.file, hint.text)
        if key not in named_texts and key not in listed:
            problems.append(
                f"{hint.file}:{hint.line}: no declared mistake brings up this hint: {hint.text!r} "
                f"(declare one in {DECLARATIONS.as_posix()}/{Path(hint.file).parent.name}.toml)"
            )
    for file, text in sorted(listed):
        if topics is not None and Path(file).parent.name not in topics:
            continue
        if (file, text) in named_texts:
            problems.append(f"{UNCOVERED.as_posix()}: {file}: {text!r} is named by a declared mistake now: remove it")
        elif (file, text) not in existing:
            problems.append(f"{UNCOVERED.as_posix()}: {file}: {text!r} is no hint of that file: remove it")
    return problems


# --- making a mistake in a forked child ------------------------------------------------------------------


class _Edited(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one module from the given source instead of its file (at the file's path, for tracebacks)."""

    def __init__(self, name: str, path: Path, source: str) -> None:
        self.name, self.path, self.source = name, path, source

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        return importlib.util.spec_from_file_location(fullname, self.path, loader=self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)

    def get_source(self, fullname: str) -> str:
        return self.source


def _forget(name: str) -> None:
    """Drop module `name` from sys.modules (the parent imported it setting up the slow tests' fixtures), and
    every kata module that holds it or holds one of those, so that they import the edited one afresh; the
    others (and what they cache: 08's trained capstone) stay."""
    stale = {name}
    while True:
        held = {
            other
            for other, loaded in list(sys.modules.items())
            if other.startswith(("reference.", "katas."))
            and other not in stale
            and any(
                getattr(value, "__name__", None) in stale
                for value in vars(loaded).values()
                if isinstance(value, ModuleType)
            )
        }
        if not held:
            break
        stale |= held
    for each in stale:
        sys.modules.pop(each, None)


def _serve(root: Path, module: Module, source: str) -> None:
    """From now on, importing the reference module gives the edited source (tracebacks show it too)."""
    path = module.at(root, "reference")
    _forget(f"reference.{module.topic}.{module.name}")
    sys.meta_path.insert(0, _Edited(f"reference.{module.topic}.{module.name}", path, source))
    linecache.cache[str(path)] = (len(source), None, source.splitlines(keepends=True), str(path))


def _child(root: Path, module: Module, source: str, argv: list[str], log: Path) -> int:
    """In the forked child: import the edited module in place of the reference one, run pytest."""
    os.setpgid(0, 0)
    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    _serve(root, module, source)
    import pytest

    return int(pytest.main(argv))


def child_main(argv: list[str]) -> int:
    """A fresh interpreter's child (--no-fork): `python -m katakit.mistakes ROOT TOPIC MODULE SOURCE PYTEST_ARGS...`."""
    root, topic, name, source_file, *pytest_argv = argv
    os.chdir(root)
    sys.path.insert(0, root)
    sys.dont_write_bytecode = True
    _serve(Path(root), Module(topic, name), Path(source_file).read_text(encoding="utf-8"))
    import pytest

    return int(pytest.main(pytest_argv))


# Imported lazily by torch on the first autograd.grad call (the promise checker makes one): sympy, 400 modules.
LAZY = ("torch.fx.experimental.symbolic_shapes",)


def preload(root: Path, test_files: list[Path]) -> None:
    """Import, once in the parent, what each child would import: what the test files import (a `from x
    import y` down to y, which imports a lazy package's submodule), torch's lazy imports, and, through a
    `pytest --collect-only` of the test files, pytest's plugins, conftest.py and the test modules, which
    pytest rewrites for its assertions (imported here by pytest itself, they are not imported again); and
    the fixtures of the slow tests, set up once (`pytest --setup-only -m slow`)."""
    sys.dont_write_bytecode = True
    for name in ("torch", "pytest", *LAZY):
        importlib.import_module(name)
    for path in test_files:
        for module, names in runner.imports(path):
            if module.split(".")[0] in ("katas", "reference"):
                continue
            try:
                imported = importlib.import_module(module)
                for name in names:
                    getattr(imported, name, None)
            except Exception:  # noqa: BLE001, S112 - a preload is only a speed-up: the child imports it again
                continue
    import pytest

    files = [str(path) for path in test_files]
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        pytest.main([*files, "--impl=reference", "--collect-only", "-q", "-p", "no:cacheprovider"])
        # The slow tests' fixtures, set up once here: what they cache in the reference modules (08's capstone
        # model, trained by induction.trained_induction_model) every child inherits, unless its mistake is in
        # the module that caches it (then it imports its own copy, and trains again).
        pytest.main([*files, "--impl=reference", "--setup-only", "-m", "slow", "-q", "-p", "no:cacheprovider"])


@dataclass
class Outcome:
    mistake: Mistake
    verdict: str  # named, only -vv, not named, not caught, error
    seconds: float
    output: str = ""  # pytest's output, as a learner sees it
    verbose: str = ""  # with -vv, when the hint was not in the plain output


def shown_hints(output: str) -> list[str]:
    """The text after each "Likely mistake:" of the failure messages in pytest's output (its `E   `
    lines, continued on the next `E` lines), whitespace collapsed. The source lines pytest shows are
    left out: a test's `hint="..."` there is not a message."""
    found: list[str] = []
    current: list[str] | None = None
    for line in [*output.splitlines(), ""]:
        message = line[1:].strip() if line.startswith("E ") else None
        if message is not None and LIKELY_MISTAKE in message:
            if current is not None:
                found.append(" ".join(current))
            current = [message.split(LIKELY_MISTAKE, 1)[1]]
        elif message is not None and current is not None:
            current.append(message)
        elif current is not None:
            found.append(" ".join(current))
            current = None
    return [" ".join(text.split()) for text in found]


def found_in(says: str, output: str) -> bool:
    """Whether a "Likely mistake" of the failure messages in pytest's output holds `says`."""
    wanted = " ".join(says.split())
    return any(wanted in text for text in shown_hints(output))


class Runner:
    """Starts one child per run (a mistake, or its -vv rerun), `jobs` at a time: forked from this
    process (preloaded), or a fresh interpreter (`fork=False`, where fork is unsafe: macOS)."""

    def __init__(self, root: Path, jobs: int, timeout: float, fork: bool = True) -> None:
        self.root, self.jobs, self.timeout, self.fork = root, jobs, timeout, fork
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def argv(self, mistake: Mistake, verbose: bool) -> list[str]:
        test_file = test_module(self.root, mistake).test_file.as_posix()
        options = ["--impl=reference", "--kata", mistake.tested, "-p", "no:cacheprovider", "-p", "no:randomly"]
        return [test_file, *options, *(["-vv"] if verbose else [])]

    def run(self, mistakes: list[Mistake], progress: bool) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        todo: list[tuple[int, bool]] = [(index, False) for index in range(len(mistakes))]
        running: dict[int, tuple[int, bool, float, Path]] = {}
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="katas-mistakes-") as scratch:
            while todo or running:
                while todo and len(running) < self.jobs:
                    index, verbose = todo.pop(0)
                    log = Path(scratch) / f"{index}{'-vv' if verbose else ''}.log"
                    running[self._start(mistakes[index], verbose, log)] = (index, verbose, time.monotonic(), log)
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    self._stop_late(running, mistakes, outcomes)
                    time.sleep(0.01)
                    continue
                if pid not in running:
                    continue
                index, verbose, begun, log = running.pop(pid)
                if pid in self.processes:  # reaped here: the Popen object must not wait for it again
                    self.processes.pop(pid).returncode = os.waitstatus_to_exitcode(status)
                output = log.read_text(encoding="utf-8", errors="replace")
                outcome = self._judge(mistakes[index], os.waitstatus_to_exitcode(status), output, verbose)
                outcome.seconds = time.monotonic() - begun
                if verbose:
                    outcome.seconds += outcomes[index].seconds
                    outcome.output, outcome.verbose = outcomes[index].output, output
                outcomes[index] = outcome
                if outcome.verdict == "rerun":
                    todo.insert(0, (index, True))
                elif progress:
                    done = sum(o.verdict != "rerun" for o in outcomes.values())
                    if done % 25 == 0 or done == len(mistakes):
                        elapsed = time.monotonic() - started
                        print(f"  {done}/{len(mistakes)} mistakes made, {elapsed:.0f} s", file=sys.stderr, flush=True)
        return [outcomes[index] for index in range(len(mistakes))]

    def _start(self, mistake: Mistake, verbose: bool, log: Path) -> int:
        module, source = edited(self.root, mistake)
        argv = self.argv(mistake, verbose)
        if not self.fork:
            source_file = log.with_suffix(".py")
            source_file.write_text(source, encoding="utf-8")
            command = [sys.executable, "-m", "katakit.mistakes", str(self.root), module.topic, module.name]
            with open(log, "wb") as output:
                process = subprocess.Popen(
                    [*command, str(source_file), *argv],
                    cwd=self.root,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.processes[process.pid] = process
            return process.pid
        pid = runner.fork()
        if pid == 0:  # pragma: no cover - the child; its result is its exit status
            code = 99
            try:
                code = _child(self.root, module, source, argv, log)
            except BaseException as error:  # noqa: BLE001 - anything the child raises is a failed run
                os.write(2, f"katakit.mistakes: the child failed: {error!r}\n".encode())
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        return pid

    def _stop_late(self, running: dict, mistakes: list[Mistake], outcomes: dict[int, Outcome]) -> None:
        now = time.monotonic()
        for pid, (index, _verbose, begun, _log) in list(running.items()):
            if now - begun > self.timeout:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                if pid in self.processes:
                    self.processes.pop(pid).returncode = -signal.SIGKILL
                del running[pid]
                outcomes[index] = Outcome(
                    mistakes[index], "error", now - begun, f"timed out after {self.timeout:.0f} s"
                )

    @staticmethod
    def _judge(mistake: Mistake, code: int, output: str, verbose: bool) -> Outcome:
        if code == 0:
            return Outcome(mistake, "not caught", 0.0, output)
        if code != 1:
            return Outcome(mistake, "error", 0.0, output)
        if found_in(mistake.says, output):
            return Outcome(mistake, "only -vv" if verbose else "named", 0.0, output)
        return Outcome(mistake, "not named" if verbose else "rerun", 0.0, output)


def explain(outcome: Outcome) -> str:
    """The lines that say what went wrong with one mistake."""
    mistake = outcome.mistake
    if outcome.verdict == "not caught":
        return f"{mistake.shown()}: the tests pass with this mistake"
    if outcome.verdict == "error":
        tail = "\n".join("    " + line for line in outcome.output.strip().splitlines()[-15:])
        return f"{mistake.shown()}: the run did not finish as a test failure:\n{tail}"
    seen = outcome.output if outcome.verdict == "only -vv" else outcome.verbose or outcome.output
    lines = [f"{LIKELY_MISTAKE} {text}" for text in dict.fromkeys(shown_hints(seen))]
    # No Likely-mistake line at all: the end of the report (pytest's summary of the failures) says what failed.
    lines = lines or ["(no Likely mistake line; the report ends:)", *seen.strip().splitlines()[-15:]]
    shown = "\n".join(f"    {line}" for line in lines)
    if outcome.verdict == "only -vv":
        return f"{mistake.shown()}: {mistake.says!r} shows only with -vv: the report shown first says:\n{shown}"
    return f"{mistake.shown()}: the tests fail, but never say {mistake.says!r}; they say:\n{shown}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m katakit.maintain mistakes", description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="*", help="topic folders (default: all)")
    parser.add_argument("--kata", action="append", default=[], metavar="NAME", help="only this kata's mistakes")
    parser.add_argument("--check", action="store_true", help="check the declarations and coverage, run nothing")
    parser.add_argument(
        "--jobs",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="mistakes made at once (default: the cores, up to 4)",
    )
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds for one mistake's run")
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="a fresh interpreter per mistake (slower; the default where fork is unsafe, off Linux)",
    )
    parser.add_argument("--output", action="store_true", help="print the pytest output of every mistake that fails")
    parser.add_argument("--root", type=Path, default=None, help="the repository (default: found from here)")
    options = parser.parse_args(argv)
    root = (options.root or find_root()).resolve()
    topics = options.topics or None
    started = time.monotonic()
    try:
        mistakes = read_declarations(root, topics)
    except Invalid as error:
        print(error)
        return 1
    if options.kata:
        mistakes = [m for m in mistakes if m.kata in options.kata or m.kata.split(".")[0] in options.kata]
    problems, named = check_declarations(root, mistakes)
    uncovered = [] if options.kata else check_coverage(root, named, topics)
    for problem in problems + uncovered:
        print(problem)
    if options.check or problems:
        print(f"{len(mistakes)} mistakes declared, naming {len(named)} hints; {len(problems + uncovered)} problems")
        return 1 if problems or uncovered else 0
    for name, value in (("OMP_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("HF_HUB_OFFLINE", "1")):
        os.environ.setdefault(name, value)
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    # The other topics' katas a failing test calls are right (the mistake is in this topic's): no need
    # to run their tests to tell whether this kata waits on them.
    os.environ[runner.NOT_FOLLOWING] = "1"
    os.chdir(root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    fork = not options.no_fork and runner.can_fork()
    if fork:
        preload(root, sorted({root / test_module(root, m).test_file for m in mistakes}))
        import torch

        torch.set_num_threads(1)
    outcomes = Runner(root, max(1, options.jobs), options.timeout, fork).run(mistakes, progress=True)
    failed = [outcome for outcome in outcomes if outcome.verdict != "named"]
    for outcome in failed:
        print(explain(outcome))
        if options.output:
            print(outcome.verbose or outcome.output)
    seconds = time.monotonic() - started
    print(
        f"{len(outcomes) - len(failed)} of {len(outcomes)} mistakes brought up the hint that names them "
        f"({len(named)} hints) in {seconds:.0f} s" + (f"; {len(uncovered)} hints not covered" if uncovered else "")
    )
    return 1 if failed or uncovered else 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
