"""What the `katas` command prints: plain text, coloured only on a terminal without NO_COLOR."""

import os
import shutil
import textwrap
from collections.abc import Callable
from typing import TextIO

from katakit.catalog import Kata
from katakit.model import State
from katakit.runner import Run
from katakit.status import Status, counts, next_kata

TaskText = Callable[[Kata], str]


def English(kata: Kata) -> str:
    return kata.task


BAR_WIDTH = 24
MESSAGE_LINES = 12


class Style:
    """ANSI colours, or nothing: `Style.for_stream(sys.stdout)` decides."""

    CODES = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2", "cyan": "36"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    @classmethod
    def for_stream(cls, stream: TextIO) -> "Style":
        return cls(hasattr(stream, "isatty") and stream.isatty() and not os.environ.get("NO_COLOR"))

    def __call__(self, text: str, *names: str) -> str:
        if not self.enabled or not names:
            return text
        codes = ";".join(self.CODES[name] for name in names)
        return f"\033[{codes}m{text}\033[0m"

    COLOURS = {
        State.DONE: "green",
        State.FAILED: "red",
        State.TODO: "dim",
        State.WAITING: "yellow",
        State.BLOCKED: "yellow",
        State.SKIPPED: "yellow",
    }

    def status(self, text: str, state: State) -> str:
        return self(text, self.COLOURS[state])


def bar(done: int, wrong: int, total: int, style: Style, width: int = BAR_WIDTH) -> str:
    """`[#########xx..........]`: done katas as #, wrong ones as x, the rest as dots."""
    if total == 0:
        return "[" + " " * width + "]"
    filled = round(width * done / total)
    failed = min(width - filled, max(1 if wrong else 0, round(width * wrong / total)))
    rest = width - filled - failed
    return "[" + style("#" * filled, "green") + style("x" * failed, "red") + style("." * rest, "dim") + "]"


def indent(message: str, prefix: str = "    ", lines: int = MESSAGE_LINES) -> str:
    width = max(60, shutil.get_terminal_size((100, 24)).columns - len(prefix))
    wrapped: list[str] = []
    for line in message.strip().splitlines() or [""]:
        wrapped += textwrap.wrap(line, width, subsequent_indent="  ") or [""]
    if len(wrapped) > lines:
        wrapped = wrapped[:lines] + ["..."]
    return "\n".join(prefix + line for line in wrapped)


def first_line(message: str, limit: int = 100) -> str:
    line = next((line.strip() for line in message.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def side_label(implementation: str) -> str:
    return "your code in katas/" if implementation == "katas" else "the solutions in reference/"


def run_note(run: Run | None, statuses: list[Status]) -> str:
    """What the statuses come from: `run`, the pytest run of the topics that changed (None when
    the saved results answered for all)."""
    if run is None:
        return "saved results: nothing changed since they ran"
    if set(run.topics) != {status.kata.topic for status in statuses}:
        return f"ran {', '.join(run.topics)}: {len(run.records)} tests, {run.seconds:.1f} s; the rest unchanged"
    return f"{len(run.records)} tests, {run.seconds:.1f} s"


def progress(
    statuses: list[Status], implementation: str, style: Style, note: str = "", task: TaskText = English
) -> str:
    """Per topic: done, to do, failed; an overall bar; the failed katas; the next kata to work on.
    `note` (what the results come from) goes in the heading; `task` gives a kata's task in the
    learner's language."""
    out: list[str] = []
    if note:
        out.append(style(f"Katas: {side_label(implementation)}", "bold") + f" ({note})")
        out.append("")
    topics = list(dict.fromkeys(status.kata.topic for status in statuses))
    name_width = max([len(topic) for topic in topics] + [len("all topics")])
    for topic in topics:
        out.append(_topic_line(topic, [s for s in statuses if s.kata.topic == topic], name_width, style))
    tally = counts(statuses)
    total = len(statuses)
    percent = f"{100 * tally[State.DONE] // total}%" if total else "-"
    overall = bar(tally[State.DONE], tally[State.FAILED], total, style, BAR_WIDTH)
    out.append(f"{'all topics':<{name_width}}  {overall}  {tally[State.DONE]}/{total} done ({percent})")

    wrong = [status for status in statuses if status.state is State.FAILED]
    if wrong:
        out += ["", style(f"Attempted but failing ({len(wrong)}):", "red", "bold")]
        for group in _by_file_failure(wrong):
            if len(group) > 1:  # the file does not compile or its tests do not load: one cause
                out.append(f"  {group[0].file}  {style(f'all {len(group)} katas of this file', 'bold')}")
            else:
                out.append(f"  {group[0].location}  {style(group[0].kata.name, 'bold')}")
            out.append(f"      {first_line(group[0].message)}")
            if group[0].at and group[0].at not in group[0].message:
                out.append(f"      at {group[0].at}")
    waiting = [status for status in statuses if status.state is State.WAITING]
    if waiting:
        out += ["", style(f"Waiting on a kata that fails ({len(waiting)}):", "yellow", "bold")]
        out += [f"  {status.location}  {style(status.kata.name, 'bold')}  {status.waiting_text}" for status in waiting]
    out.append("")
    out.append(next_section(statuses, style, task))
    return "\n".join(out)


def _by_file_failure(wrong: list[Status]) -> list[list[Status]]:
    """The wrong katas, those of one file failing with one message (a syntax error) together."""
    groups: list[list[Status]] = []
    for status in wrong:
        last = groups[-1][0] if groups else None
        if last and last.file == status.file and last.message == status.message and last.where == status.where:
            groups[-1].append(status)
        else:
            groups.append([status])
    return groups


def _topic_line(topic: str, statuses: list[Status], name_width: int, style: Style) -> str:
    tally = counts(statuses)
    total = len(statuses)
    cells = [f"{tally[State.DONE]:>3}/{total:<3} done", f"{tally[State.TODO]:>3} to do"]
    if tally[State.FAILED]:
        cells.append(style(f"{tally[State.FAILED]:>3} failed", "red"))
    if tally[State.WAITING]:
        cells.append(style(f"{tally[State.WAITING]:>3} waiting", "yellow"))
    if tally[State.SKIPPED]:
        cells.append(style(f"{tally[State.SKIPPED]:>3} skipped", "yellow"))
    if tally[State.BLOCKED]:
        blocker = next(s.message for s in statuses if s.state is State.BLOCKED)
        cells.append(style(f"{tally[State.BLOCKED]:>3} {blocker}", "yellow"))
    return f"{topic:<{name_width}}  {bar(tally[State.DONE], tally[State.FAILED], total, style)}  " + "  ".join(cells)


def next_section(statuses: list[Status], style: Style, task: TaskText = English) -> str:
    """The next kata: where it is, its task, and why it fails if it was attempted."""
    upcoming = next_kata(statuses)
    if upcoming is None:
        if not statuses:
            return "No katas found."
        tally = counts(statuses)
        if tally[State.DONE] < len(statuses):
            skipped = tally[State.SKIPPED]
            return style(f"Nothing left to do but what is skipped or blocked ({skipped} skipped).", "yellow")
        return style(f"All {len(statuses)} katas done. Well done!", "green", "bold")
    kata = upcoming.kata
    out = [
        style("Next: ", "bold") + style(kata.name, "bold", "cyan") + f"  ({kata.topic})",
        f"  {upcoming.location}",
        "",
        indent(task(kata), "  "),
    ]
    if upcoming.state is State.FAILED and upcoming.where == upcoming.file:
        out += ["", style("  It fails:", "red") + f"  {upcoming.file} does not load (the error is above)."]
    elif upcoming.state is State.FAILED:
        out += ["", style("  It fails:", "red") + (f"  {upcoming.where}" if upcoming.where else "")]
        if upcoming.at:
            out.append(f"    at {upcoming.at}  (your code)")
        out.append(indent(upcoming.message))
    out += ["", style(f"  Run its tests: katas test {kata.name}   Stuck? katas hint {kata.name}", "dim")]
    return "\n".join(out)


def status_table_markdown(statuses: list[Status], implementation: str, warnings: list[str]) -> str:
    """The progress as a Markdown table, for $GITHUB_STEP_SUMMARY."""
    out = [
        f"## Katas: {side_label(implementation)}",
        "",
        "| topic | done | to do | failed | |",
        "|---|---:|---:|---:|---|",
    ]
    plain = Style(False)
    topics = list(dict.fromkeys(status.kata.topic for status in statuses))
    for topic in [*topics, None]:
        chosen = [s for s in statuses if topic is None or s.kata.topic == topic]
        tally = counts(chosen)
        name = f"**all {len(topics)} topics**" if topic is None else f"`{topic}`"
        done, todo, failed = tally[State.DONE], tally[State.TODO], tally[State.FAILED]
        progress_bar = bar(done, failed, len(chosen), plain, 20).replace("#", "█").replace(".", "░")
        out.append(f"| {name} | {done}/{len(chosen)} | {todo} | {failed} | `{progress_bar[1:-1]}` |")
    wrong = [status for status in statuses if status.state is State.FAILED]
    if wrong:
        out += ["", "### Attempted but failing", ""]
        out += [f"- `{s.location}` **{s.kata.name}**: {first_line(s.message).replace('|', '/')}" for s in wrong]
    waiting = [status for status in statuses if status.state is State.WAITING]
    if waiting:
        out += ["", "### Waiting on a kata that fails", ""]
        out += [f"- `{s.location}` **{s.kata.name}**: {s.waiting_text}" for s in waiting]
    if warnings:
        out += ["", "### Test files that differ from the shipped ones", ""]
        out += [f"- {warning}" for warning in warnings]
    return "\n".join(out) + "\n"
