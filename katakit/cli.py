"""The learner's command line: `katas` (or `python -m katakit`).

    katas                      your progress per topic and the next kata to work on
    katas 01                   the same for one topic (01, linear_algebra, 01_linear_algebra)
    katas test gram_schmidt    run one kata's tests, with pytest's full report
    katas hint gram_schmidt    the first hint; `katas hint gram_schmidt 2` the next one
    katas solution NAME        the reference solution of a kata you have attempted
    katas reset NAME           put one kata back to its stub (your version is backed up first)
    katas restore [BACKUP]     list the backups; put one back, or one kata or file of it
    katas skip NAME            move past a kata; `katas unskip NAME` brings it back
    katas watch [topic]        re-run the tests whenever you save, and redraw
    katas check [--strict]     for CI: exit 1 when an attempted kata is wrong
    katas route [NAME]         the routes through the katas (new to torch: torch-first); take one
    katas list                 every kata, in your route's order, marked done, to do, failed, waiting...
    katas gpt2 "prompt"        your GPT-2 of topic 06 with OpenAI's weights (downloads 548 MB once)
    katas bench [topic]        your attention, GPT-2, training step and cache timed against torch and HF

Every command takes --impl=katas|reference (whose code the tests run against) and --root (the
repository; default: the nearest folder up from here with a katas/ folder).
Results are kept in .katas/results.json and re-used while nothing they depend on changed.
"""

import argparse
import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

from katakit import cache, catalog, display, i18n, manifest, runner, stubs, workspace
from katakit.catalog import Catalog
from katakit.display import Style
from katakit.impl import IMPLEMENTATIONS, UnknownImplementation, from_env
from katakit.model import Module, State, TestRecord
from katakit.names import UnknownName, resolve_kata, resolve_topics
from katakit.repo import find_root
from katakit.runner import Run, RunFailed
from katakit.status import Status, classify, counts, unmatched_errors

COMMANDS = (
    "progress",
    "test",
    "hint",
    "solution",
    "reset",
    "skip",
    "unskip",
    "watch",
    "check",
    "list",
    "gpt2",
    "bench",
    "restore",
    "route",
)
EXIT_WRONG, EXIT_USAGE = 1, 2


class UsageProblem(Exception):
    """A command that cannot run as typed; the message says why."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--impl",
        choices=IMPLEMENTATIONS,
        default=argparse.SUPPRESS,
        help="whose code the tests run against: katas (yours, the default; $KATAS_IMPL) or reference",
    )
    common.add_argument(
        "--root", type=Path, default=argparse.SUPPRESS, help="the repository (default: found from here)"
    )
    common.add_argument(
        "--lang",
        choices=i18n.LANGUAGES,
        default=argparse.SUPPRESS,
        help="the language of tasks and hints: en or zh (default: $KATAS_LANG, else your locale)",
    )
    topics = argparse.ArgumentParser(add_help=False)
    topics.add_argument("topics", nargs="*", metavar="topic", help="only these topics (01, linear_algebra, ...)")
    one_kata = argparse.ArgumentParser(add_help=False)
    one_kata.add_argument("kata", help="gram_schmidt, linear_algebra.gram_schmidt or 01_linear_algebra/gram_schmidt")

    parser = argparse.ArgumentParser(
        prog="katas",
        description="Your progress through the katas, one kata's tests, hints, and a watch mode. "
        "Without a command: progress.",
        epilog="Examples: katas | katas 01 | katas test gram_schmidt | katas hint gram_schmidt 2 | katas watch 05",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser(
        "progress", parents=[common, topics], help="done / to do / failed per topic, and the next kata (default)"
    )
    commands.add_parser("test", parents=[common, one_kata], help="run one kata's tests and show pytest's report")
    hint = commands.add_parser("hint", parents=[common, one_kata], help="the hints of a kata, one level at a time")
    hint.add_argument(
        "level", nargs="?", type=int, default=1, help="which hint (default 1; each shows the ones before)"
    )
    solution = commands.add_parser(
        "solution", parents=[common, one_kata], help="the reference solution of a kata you have attempted"
    )
    solution.add_argument("--force", action="store_true", help="show it even if you have not attempted the kata")
    commands.add_parser(
        "reset", parents=[common, one_kata], help="put one kata back to its stub (after a backup of your file)"
    )
    commands.add_parser("skip", parents=[common, one_kata], help="move past a kata; it shows as skipped")
    commands.add_parser("unskip", parents=[common, one_kata], help="undo `katas skip`")
    commands.add_parser("watch", parents=[common, topics], help="re-run the tests on every save (Ctrl-C stops)")
    check = commands.add_parser(
        "check", parents=[common, topics], help="for CI: exit 1 when an attempted kata is wrong"
    )
    check.add_argument(
        "--strict", action="store_true", help="also fail while katas are still to do, or when test files differ"
    )
    listing = commands.add_parser("list", parents=[common, topics], help="every kata, in the order of your route")
    listing.add_argument("--status", action="store_true", help="show each kata's status (runs what changed)")
    commands.add_parser(
        "bench",
        parents=[common, topics],
        help="time your attention, GPT-2, training step and cache against torch and Hugging Face (05-08)",
    )
    routing = commands.add_parser(
        "route", parents=[common], help="the routes through the katas, and the one `katas` follows; take another"
    )
    routing.add_argument("name", nargs="?", help="the route to take (folders, torch-first)")
    restoring = commands.add_parser(
        "restore",
        parents=[common],
        help="list the backups of your files (.katas/backups/); put back one, or one kata or file of it",
    )
    restoring.add_argument("backup", nargs="?", help="the backup to put back (its name, or latest)")
    restoring.add_argument("target", nargs="?", help="only this kata, or this file, of it")
    gpt2 = commands.add_parser(
        "gpt2",
        parents=[common],
        help="your GPT-2 of topic 06 with OpenAI's real weights, writing text (downloads 548 MB the first time)",
    )
    gpt2.add_argument("prompt", help="the text to continue")
    gpt2.add_argument(
        "--model", default=None, help="a Hub name, or a folder saved with save_pretrained (default: GPT-2 small)"
    )
    gpt2.add_argument("--tokens", type=int, default=40, help="how many tokens to add (default 40)")
    gpt2.add_argument("--temperature", type=float, default=1.0, help="below 1 sharpens, above 1 flattens (default 1)")
    gpt2.add_argument("--top-k", type=int, default=50, help="sample among the k likeliest tokens (default 50)")
    gpt2.add_argument("--seed", type=int, default=0, help="the same seed gives the same text (default 0)")
    gpt2.add_argument("--greedy", action="store_true", help="always take the likeliest token (generate_greedy)")
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """`katas`, `katas 01` and `katas --impl=reference` mean `katas progress ...`."""
    if any(arg in COMMANDS or arg in ("-h", "--help") for arg in argv):
        return argv
    return ["progress", *argv]


def main(argv: list[str] | None = None) -> int:
    arguments = _with_default_command(list(sys.argv[1:] if argv is None else argv))
    options = _parser().parse_args(arguments)
    try:
        implementation = getattr(options, "impl", None) or from_env()
    except UnknownImplementation as error:
        print(f"katas: {error}", file=sys.stderr)
        return EXIT_USAGE
    root = options.root.resolve() if getattr(options, "root", None) else find_root()
    style = Style.for_stream(sys.stdout)
    try:
        if not (root / "katas").is_dir():
            raise UsageProblem(f"no katas/ folder in {root}: run this inside the repository, or pass --root")
        return COMMAND_FUNCTIONS[options.command](options, root, implementation, style)
    except (UnknownName, UsageProblem, RunFailed) as error:
        print(f"katas: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `katas list | head`: the reader has gone, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _catalog(root: Path, wanted: list[str], side: str = "katas") -> tuple[Catalog, list[str]]:
    """The katas of the topics named (all when none), and those topics."""
    chosen = resolve_topics(wanted, catalog.topics(root)) or catalog.topics(root)
    return catalog.read(root, chosen, side), chosen


def _statuses(
    root: Path, wanted: list[str], implementation: str, use_cache: bool = True
) -> tuple[list[Status], Run | None, list[TestRecord]]:
    """Each kata's status in the wanted topics, the pytest run they needed (None when the cache
    answered for all), and the collection errors that belong to no kata module. Only topics whose
    files changed since their results were saved run again. The saved results of the topics the
    wanted ones build on tell which katas there fail, for the katas here that wait on them."""
    found, chosen = _catalog(root, wanted, implementation)
    earlier = [topic for topic in catalog.topics(root) if topic not in chosen and topic in _needed(root, chosen)]
    fresh, fingerprints = cache.lookup(root, chosen + earlier, implementation)
    context = [record for topic in earlier for record in fresh.get(topic, [])]
    if not use_cache:
        fresh = {}
    stale = [topic for topic in chosen if topic not in fresh]
    run = None
    records = [record for topic in chosen for record in fresh.get(topic, [])]
    # The topics that changed on their own first, and their verdict, before those built on them re-run
    # (an edit in 05 re-runs 06 to 08, the trainings included): as `katas watch` does.
    first = [topic for topic in stale if not set(catalog.needed_by(root, topic)) & set(stale)]
    for batch in (first, [topic for topic in stale if topic not in first]):
        if not batch:
            continue
        doing = "running the tests of" if batch is first else "re-checking"
        print(f"katas: {doing} {', '.join(batch)}...", file=sys.stderr, flush=True)
        part = runner.run_changed(root, batch, implementation)
        cache.store(root, implementation, {topic: fingerprints[topic] for topic in batch}, part.records)
        records += part.records
        run = (
            part
            if run is None
            else runner.Run(run.records + part.records, run.seconds + part.seconds, run.topics + part.topics)
        )
        if batch is first and len(first) < len(stale):
            print(f"katas: {_verdict(found, part)}", file=sys.stderr, flush=True)
    everything = catalog.read(root, chosen + earlier, implementation) if context else found
    statuses = classify(everything, records + context, workspace.skipped(root))
    statuses = [status for status in statuses if status.kata.topic in chosen]
    return statuses, run, unmatched_errors(found, records)


def _verdict(found: Catalog, run: runner.Run) -> str:
    """One line on the katas of the topics `run` ran: `05_attention: 11 done, 1 failed (0.9 s)`."""
    statuses = [status for status in classify(found, run.records, []) if status.kata.topic in run.topics]
    told = ", ".join(f"{number} {state}" for state, number in counts(statuses).items() if number)
    return f"{', '.join(dict.fromkeys(run.topics))}: {told} ({run.seconds:.1f} s)"


def _needed(root: Path, topics: list[str]) -> set[str]:
    """The earlier topics that `topics` build on."""
    return {earlier for topic in topics for earlier in catalog.needed_by(root, topic)}


def _report_stray(stray: list[TestRecord]) -> None:
    for error in stray:
        print(f"katas: could not collect {error.nodeid}: {error.message}", file=sys.stderr)


def _task_text(options: argparse.Namespace, root: Path) -> display.TaskText:
    """A kata's task in the learner's language."""
    lang = i18n.language(getattr(options, "lang", None))
    return lambda kata: i18n.text(root, kata, lang, kata.hints).task


def progress(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    first_run = not (root / workspace.FOLDER / cache.FILE).is_file()
    statuses, run, stray = _statuses(root, options.topics, implementation)
    statuses = _in_route_order(root, statuses)
    _report_stray(stray)
    note = display.run_note(run, statuses)
    print(display.progress(statuses, implementation, style, note, _task_text(options, root)))
    if first_run and workspace.chosen_route(root) is None:
        for line in _other_routes(root):
            print(style(line, "dim"))
    return 0


def _in_route_order(root: Path, statuses: list[Status]) -> list[Status]:
    """The statuses in the order of the learner's route (curriculum.toml's `[[route]]`): `Next:` follows it."""
    return catalog.route(root, workspace.chosen_route(root)).ordered(statuses, lambda status: status.kata)


def _other_routes(root: Path) -> list[str]:
    """A line for each route the learner is not on: whom it is for, and how to take it."""
    current = catalog.route(root, workspace.chosen_route(root))
    return [
        f"{other.audience[0].upper()}{other.audience[1:]}? `katas route {other.name}`: {other.about}."
        for other in catalog.routes(root)
        if other != current
    ]


def _kata(root: Path, wanted: str) -> catalog.Kata:
    """The kata a learner named, as the learner's file has it (its line there)."""
    return resolve_kata(wanted, catalog.read(root).katas)


def test(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    kata = _kata(root, options.kata)
    test_file = Module(kata.topic, kata.module).test_file.as_posix()
    command = [sys.executable, "-m", "pytest", test_file, "--kata", kata.name, f"--impl={implementation}"]
    print(style(" ".join(["pytest", *command[3:]]), "dim"), flush=True)
    return subprocess.run(command, cwd=root).returncode


def hint(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    kata = _kata(root, options.kata)
    english = resolve_kata(f"{kata.topic}/{kata.name}", catalog.read(root, [kata.topic], "reference").katas).hints
    shown = i18n.text(root, kata, i18n.language(getattr(options, "lang", None)), english)
    hints = list(shown.hints)
    if options.level < 1:
        raise UsageProblem("hint levels start at 1")
    print(style(kata.name, "bold", "cyan") + f"  ({kata.topic}, {kata.path.as_posix()}:{kata.line})")
    print()
    print(display.indent(shown.task, "  "))
    if not hints:
        print("\nThis kata has no hints.")
        return 0
    level = min(options.level, len(hints))
    if options.level > len(hints):
        print(style(f"\n{kata.name} has {len(hints)} hints; here they all are.", "yellow"))
    for number, text in enumerate(hints[:level], start=1):
        label = f"Hint {number} of {len(hints)}:"
        print()
        print(style(label, "bold") if number == level else style(label, "dim"))
        print(display.indent(text, "  "))
    print()
    if level < len(hints):
        print(style(f"Next hint: katas hint {kata.name} {level + 1}", "dim"))
    else:
        print(style(f"That was the last hint. Still stuck? katas solution {kata.name}", "dim"))
    return 0


def _learner_source(root: Path, kata: catalog.Kata) -> str:
    return (root / kata.path).read_text(encoding="utf-8")


def _attempted(root: Path, kata: catalog.Kata) -> bool:
    """Whether the learner's code of `kata` is no longer the stub's (a file that does not compile counts)."""
    try:
        changed = stubs.attempted(_learner_source(root, kata))
    except SyntaxError:
        return True
    return any(name == kata.name or name.startswith(f"{kata.name}.") for name in changed)


def solution(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    kata = _kata(root, options.kata)
    if not options.force and not _attempted(root, kata):
        print(
            f"You have not tried {kata.name} yet ({kata.path.as_posix()}:{kata.line}). The solution is for after "
            f"an attempt: try `katas hint {kata.name}` first, or `katas solution {kata.name} --force`.",
            file=sys.stderr,
        )
        return EXIT_WRONG
    reference = Module(kata.topic, kata.module).reference_file
    print(style(f"# The reference solution of {kata.name}, from {reference}", "dim"))
    print(stubs.definition((root / reference).read_text(encoding="utf-8"), kata.name), end="")
    return 0


def reset(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    kata = _kata(root, options.kata)
    if not _attempted(root, kata):
        print(f"{kata.name} is still its stub ({kata.path.as_posix()}:{kata.line}): nothing to reset.")
        return 0
    try:
        backup = stubs.reset(root, kata.topic, kata.module, kata.name)
    except SyntaxError as error:
        raise UsageProblem(
            f"{kata.path.as_posix()}:{error.lineno} does not compile ({error.msg}), so one kata cannot be picked "
            "out of it: fix that line first."
        ) from None
    saved = (backup / kata.path).relative_to(root).as_posix()
    print(
        f"{kata.name} is a stub again ({kata.path.as_posix()}:{kata.line}). Your file as it was: {saved} "
        f"(undo: katas restore {backup.name} {kata.name})"
    )
    return 0


def skip(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    kata = _kata(root, options.kata)
    skipped = workspace.skipped(root)
    key = f"{kata.topic}/{kata.name}"
    if options.command == "skip":
        workspace.set_skipped(root, skipped | {key})
        print(f"Skipped {kata.name}: `katas` moves past it and shows it as skipped. Undo: katas unskip {kata.name}")
    else:
        workspace.set_skipped(root, skipped - {key})
        print(f"{kata.name} is back in line." if key in skipped else f"{kata.name} was not skipped.")
    return 0


def watch(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    from katakit.watch import watch as watch_loop

    _, chosen = _catalog(root, options.topics)
    clear = style.enabled  # on a terminal: redraw in place

    def show(statuses: list[Status], header: str) -> None:
        statuses = _in_route_order(root, statuses)
        if clear:
            sys.stdout.write("\033[2J\033[H")
        else:
            print("\n" + "-" * 72)
        print(style(f"katas watch: {header}. Save a kata file to re-run; Ctrl-C stops.", "dim"))
        print()
        if statuses:
            print(display.progress(statuses, implementation, style, task=_task_text(options, root)))
        sys.stdout.flush()

    # Ctrl-C is how watch mode ends, so it must raise KeyboardInterrupt even where this process was started
    # with SIGINT ignored, as a non-interactive shell starts a background job (`cmd &`): Python then
    # leaves it ignored, and Ctrl-C (or kill -INT) would do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return watch_loop(root, chosen, implementation, show)
    except KeyboardInterrupt:
        print("\nStopped watching.")
        return 0


def check(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    statuses, run, stray = _statuses(root, options.topics, implementation, use_cache=False)
    warnings = manifest.differences(root).lines()
    print(display.progress(statuses, implementation, style, display.run_note(run, statuses)))
    in_actions = os.environ.get("GITHUB_ACTIONS") == "true"
    for warning in warnings:
        print(style(f"{'Error' if options.strict else 'Warning'}: {warning}", "yellow"), file=sys.stderr)
        if in_actions:
            level = "error" if options.strict else "warning"
            print(f"::{level} file={warning.partition(':')[0]}::{_annotation(warning)}")
    for error in stray:
        print(style(f"Error: could not collect {error.nodeid}: {error.message}", "red"), file=sys.stderr)
    if in_actions:
        for status in statuses:
            if status.state is State.FAILED:
                message = _annotation(f"{status.kata.name}: {display.first_line(status.message, 300)}")
                print(f"::error file={status.file},line={status.kata.line}::{message}")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as target:
                target.write(display.status_table_markdown(statuses, implementation, warnings))
        except OSError as error:
            print(f"katas: could not write the step summary: {error}", file=sys.stderr)
    tally = counts(statuses)
    unfinished = len(statuses) - tally[State.DONE]
    failing = tally[State.FAILED] or tally[State.WAITING] or stray or (options.strict and (unfinished or warnings))
    verdict = f"check: {tally[State.DONE]} done, {tally[State.TODO]} to do, {tally[State.FAILED]} failed"
    if tally[State.WAITING]:
        verdict += f", {tally[State.WAITING]} waiting on a failing kata"
    if options.strict and unfinished:
        verdict += " (--strict: katas still to do fail the check)"
    if options.strict and warnings:
        verdict += " (--strict: files that decide the verdict differ from the shipped ones)"
    print(style(verdict, "red" if failing else "green"))
    return EXIT_WRONG if failing else 0


def _annotation(text: str) -> str:
    """Text for a GitHub Actions `::error ::` line, escaped as the runner wants it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def listing(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    if options.status:
        statuses, _, stray = _statuses(root, options.topics, implementation)
        _report_stray(stray)
    else:
        statuses = _saved_statuses(root, options.topics, implementation)
    statuses = _in_route_order(root, statuses)
    topics = {topic.folder: topic for topic in catalog.curriculum(root)}
    task_text = _task_text(options, root)
    # A route may come back to a topic (torch-first: 04's tensors, later the rest of 04): a header for each stretch.
    for number, (folder, stretch) in enumerate(itertools.groupby(statuses, key=lambda status: status.kata.topic)):
        shown = list(stretch)
        efforts = [topics[folder].efforts.get(status.kata.name) for status in shown]
        hours = sum(effort.minutes for effort in efforts if effort) / 60
        header = style(folder, "bold") + (f"  (about {hours:.1f} h)" if any(efforts) else "")
        print(("\n" if number else "") + header)
        for status, effort in zip(shown, efforts, strict=True):
            mark = style.status(f"{f'[{status.state}]':<9}", status.state) + " " if status.state else ""
            size = f"{'*' * effort.difficulty:<3} {effort.minutes:>2} min  " if effort else ""
            task = display.first_line(task_text(status.kata), 70)
            print(f"  {mark}{size}{style(status.kata.name, 'cyan'):<{36 if not style.enabled else 45}} {task}")
            print(style(f"      {status.location}", "dim"))
            if status.state is State.WAITING:
                print(style(f"      {status.waiting_text}", "yellow"))
    return 0


def _saved_statuses(root: Path, wanted: list[str], implementation: str) -> list[Status]:
    """Each kata's status as the saved results still tell it (no run); None for the topics that
    changed since."""
    found, chosen = _catalog(root, wanted, implementation)
    fresh, _ = cache.lookup(root, chosen, implementation)
    records = [record for topic in chosen for record in fresh.get(topic, [])]
    statuses = classify(found, records, workspace.skipped(root))
    for status in statuses:
        if status.kata.topic not in fresh:
            status.state = None
    return statuses


def restore(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    from katakit import restore as backups

    if options.backup is None:
        return _list_backups(root, style)
    try:
        backup = backups.find(root, options.backup)
        restored = backups.restore(root, backup, options.target)
    except backups.CannotRestore as error:
        raise UsageProblem(str(error)) from None
    what = restored.kata or (options.target or f"all {len(backup.files)} files")
    if restored.replaced is None:
        print(f"Your files already hold {what} as backup {backup.name} has it: nothing to put back.")
        return 0
    print(f"Put back {what} from backup {backup.name}: {', '.join(restored.files)}.")
    saved = restored.replaced.relative_to(root).as_posix()
    print(f"What it replaced is in {saved}/ (undo: katas restore {restored.replaced.name}).")
    return 0


def _list_backups(root: Path, style: Style) -> int:
    from katakit import restore as backups

    found = workspace.backups(root)
    if not found:
        print("No backups yet: `katas reset` (and the maintainers' stubs --write --force) keep your files there.")
        return 0
    print(style("Backups of your files in .katas/backups/, newest first.", "bold"))
    print(style("Put one back: katas restore BACKUP (all its files), katas restore BACKUP KATA or FILE.", "dim"))
    for backup in found:
        made = f"  {backup.made:%Y-%m-%d %H:%M:%S}" if backup.made else ""
        print(f"\n  {style(backup.name, 'cyan')}{style(made, 'dim')}")
        for held in backups.held(root, backup):
            attempted = ", ".join(held.attempted) or "none (the stubs)"
            if held.same_as_now:
                compared = "the same as your file now"
            else:
                compared = f"unlike your file now: {', '.join(held.differing) or 'lines outside the katas'}"
            print(f"      {held.path}  katas attempted: {attempted}; {compared}")
    return 0


def choose_route(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    declared = catalog.routes(root)
    current = catalog.route(root, workspace.chosen_route(root))
    if options.name is None:
        width = max(len(each.name) for each in declared)
        for each in declared:
            mark = style("*", "bold") if each == current else " "
            print(f"{mark} {style(f'{each.name:<{width}}', 'cyan')}  for those {each.audience}: {each.about}")
        print(style("Take another: katas route NAME (README, Which order?, explains them).", "dim"))
        return 0
    chosen = next((each for each in declared if each.name == options.name), None)
    if chosen is None:
        raise UsageProblem(f"no route {options.name!r}: take one of {', '.join(each.name for each in declared)}.")
    workspace.set_route(root, chosen.name)
    print(f"Route {chosen.name}: {chosen.about}. `katas` suggests the next kata in this order.")
    return 0


def gpt2(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    from katakit import gpt2 as running

    source = options.model or running.DEFAULT_MODEL
    if options.model is None:
        print(style(f"Loading {source} (the first time, this downloads 548 MB into Hugging Face's cache)...", "dim"))
    try:
        loaded = running.load(source, root, implementation)
        difference = running.logit_difference(loaded, options.prompt)
        text = running.generate(
            loaded,
            options.prompt,
            options.tokens,
            temperature=options.temperature,
            top_k=options.top_k,
            seed=options.seed,
            greedy=options.greedy,
        )
    except running.Unavailable as error:
        print(f"katas gpt2: {error}", file=sys.stderr)
        return EXIT_WRONG
    agrees = difference < 1e-3
    print(
        style(
            f"Your GPT2's logits on the prompt differ from Hugging Face's by at most {difference:.1e}"
            + ("." if agrees else ": your model is not GPT-2 yet; `katas 06` shows which kata fails."),
            "green" if agrees else "red",
        )
    )
    print(text)
    return 0 if agrees else EXIT_WRONG


def bench(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    from katakit import bench as benchmarks  # pytest-benchmark's machinery, only for this command

    topics = resolve_topics(options.topics, catalog.topics(root)) or catalog.topics(root)
    timed = [topic for topic in topics if benchmarks.benchmark_files(root, [topic])]
    if not timed:
        raise UsageProblem(f"no benchmarks in {', '.join(topics)}: topics 05 to 08 have them")
    print(f"katas: timing {', '.join(timed)} ({display.side_label(implementation)}), a minute or two...", flush=True)
    print(benchmarks.table(benchmarks.run(root, timed, implementation)))
    return 0


COMMAND_FUNCTIONS = {
    "progress": progress,
    "test": test,
    "hint": hint,
    "solution": solution,
    "reset": reset,
    "skip": skip,
    "unskip": skip,
    "watch": watch,
    "check": check,
    "list": listing,
    "restore": restore,
    "route": choose_route,
    "gpt2": gpt2,
    "bench": bench,
}


if __name__ == "__main__":
    sys.exit(main())
