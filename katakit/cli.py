"""The learner's command line: `katas` (or `python -m katas`).

    katas                      your progress per topic and the next kata to work on
    katas 01                   the same for one topic (01, linear_algebra, 01_linear_algebra)
    katas hint gram_schmidt    the first hint; `katas hint gram_schmidt 2` the next one
    katas watch [topic]        re-run the tests whenever you save, and redraw
    katas check [--strict]     for CI: exit 1 when an attempted kata is wrong
    katas list [--status]      every kata, in learning order

Every command takes --impl=katas|reference (whose code the tests run against) and --root (the
repository; default: $KATAS_ROOT, else the nearest folder up from here with a katas/ folder).
"""

import argparse
import os
import sys
from pathlib import Path

from katakit import catalog, display, manifest
from katakit.display import Style
from katakit.impl import IMPLEMENTATIONS, UnknownImplementation, find_root, from_env
from katakit.names import UnknownName, resolve_kata, resolve_topics
from katakit.progress import (
    DONE,
    TODO,
    WRONG,
    Catalog,
    Run,
    RunFailed,
    Status,
    classify,
    counts,
    read_catalog,
    run_tests,
    unmatched_errors,
)

COMMANDS = ("progress", "hint", "watch", "check", "list")
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
    topics = argparse.ArgumentParser(add_help=False)
    topics.add_argument("topics", nargs="*", metavar="topic", help="only these topics (01, linear_algebra, ...)")

    parser = argparse.ArgumentParser(
        prog="katas",
        description="Your progress through the katas, hints, and a watch mode. Without a command: progress.",
        epilog="Examples: katas | katas 01 | katas hint gram_schmidt 2 | katas watch 05 | katas check --strict",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser(
        "progress", parents=[common, topics], help="done / to do / failed per topic, and the next kata (default)"
    )
    hint = commands.add_parser("hint", parents=[common], help="the hints of a kata, one level at a time")
    hint.add_argument("kata", help="gram_schmidt, linear_algebra.gram_schmidt or 01_linear_algebra/gram_schmidt")
    hint.add_argument(
        "level", nargs="?", type=int, default=1, help="which hint (default 1; each shows the ones before)"
    )
    watch = commands.add_parser("watch", parents=[common, topics], help="re-run the tests on every save (Ctrl-C stops)")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between looks at the files (default 0.5)")
    watch.add_argument("--max-runs", type=int, default=None, help=argparse.SUPPRESS)
    check = commands.add_parser(
        "check", parents=[common, topics], help="for CI: exit 1 when an attempted kata is wrong"
    )
    check.add_argument("--strict", action="store_true", help="also fail while katas are still to do")
    listing = commands.add_parser("list", parents=[common, topics], help="every kata in learning order")
    listing.add_argument("--status", action="store_true", help="run the tests and show each kata's status")
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
        command = {"progress": progress, "hint": hint, "watch": watch, "check": check, "list": listing}
        return command[options.command](options, root, implementation, style)
    except (UnknownName, UsageProblem, RunFailed) as error:
        print(f"katas: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `katas list | head`: the reader has gone, and that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _catalog(root: Path, wanted: list[str], side: str = "katas") -> tuple[Catalog, list[str] | None]:
    chosen = resolve_topics(wanted, catalog.topics(root))
    return read_catalog(root, chosen, side), chosen


def _statuses(root: Path, wanted: list[str], implementation: str) -> tuple[list[Status], Run, list[dict]]:
    """Run the tests of the wanted topics: each kata's status, the run, and the collection errors
    that belong to no kata module."""
    found, chosen = _catalog(root, wanted, implementation)
    run = run_tests(root, chosen if chosen is not None else found.topics(), implementation)
    return classify(found, run.records), run, unmatched_errors(found, run.records)


def _report_stray(stray: list[dict]) -> None:
    for error in stray:
        print(f"katas: could not collect {error['nodeid']}: {error['message']}", file=sys.stderr)


def progress(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    statuses, run, stray = _statuses(root, options.topics, implementation)
    _report_stray(stray)
    print(display.progress(statuses, run, implementation, style))
    return 0


def hint(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    kata = resolve_kata(options.kata, read_catalog(root).katas)
    hints = kata.hints
    if options.level < 1:
        raise UsageProblem("hint levels start at 1")
    print(style(kata.name, "bold", "cyan") + f"  ({kata.topic}, {kata.path.as_posix()}:{kata.line})")
    print()
    print(display.indent(kata.task, "  "))
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
        print(style("That was the last hint. The tests beside the kata show what is expected.", "dim"))
    return 0


def watch(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    from katakit.watch import watch as watch_loop

    _, chosen = _catalog(root, options.topics)
    clear = style.enabled  # on a terminal: redraw in place

    def show(statuses: list[Status], header: str) -> None:
        if clear:
            sys.stdout.write("\033[2J\033[H")
        else:
            print("\n" + "-" * 72)
        print(style(f"katas watch: {header}. Save a kata file to re-run; Ctrl-C stops.", "dim"))
        print()
        if statuses:
            print(display.progress(statuses, None, implementation, style))
        sys.stdout.flush()

    try:
        return watch_loop(root, chosen, implementation, show, options.interval, options.max_runs)
    except KeyboardInterrupt:
        print("\nStopped watching.")
        return 0


def check(options: argparse.Namespace, root: Path, implementation: str, style: Style) -> int:
    statuses, run, stray = _statuses(root, options.topics, implementation)
    warnings = manifest.differences(root).lines()
    print(display.progress(statuses, run, implementation, style))
    in_actions = os.environ.get("GITHUB_ACTIONS") == "true"
    for warning in warnings:
        print(style(f"Warning: {warning}", "yellow"), file=sys.stderr)
        if in_actions:
            print(f"::warning file={warning.partition(':')[0]}::{_annotation(warning)}")
    for error in stray:
        print(style(f"Error: could not collect {error['nodeid']}: {error['message']}", "red"), file=sys.stderr)
    if in_actions:
        for status in statuses:
            if status.status == WRONG:
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
    failing = tally[WRONG] or stray or (options.strict and tally[TODO])
    verdict = f"check: {tally[DONE]} done, {tally[TODO]} to do, {tally[WRONG]} failed"
    if options.strict and tally[TODO]:
        verdict += " (--strict: katas still to do fail the check)"
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
        found, _ = _catalog(root, options.topics, implementation)
        statuses = [Status(kata, "", side=found.side) for kata in found.katas]
    marks = {DONE: "[done] ", TODO: "[to do]", WRONG: "[fail] ", "": ""}
    topic = None
    for status in statuses:
        if status.kata.topic != topic:
            topic = status.kata.topic
            print(("\n" if topic != statuses[0].kata.topic else "") + style(topic, "bold"))
        mark = style.status(marks[status.status], status.status) + " " if status.status else ""
        task = display.first_line(status.kata.task, 70)
        print(f"  {mark}{style(status.kata.name, 'cyan'):<{36 if not style.enabled else 45}} {task}")
        print(style(f"      {status.location}", "dim"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
