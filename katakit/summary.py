"""What plain pytest prints for the kata tests, once every test has run (for katakit.plugin).

    - the letter of each test: T for a stub still to do, B for a test its learner file blocks;
    - once the run is over, which failing katas wait on another one (katakit.blame): their
      failures leave pytest's FAILURES section for one line per kata, "waiting on LayerNorm
      (katas/06_transformer/transformer.py:84)"; katas of topics this run did not cover are judged
      from `katas`' saved results, else from a run of their fast tests;
    - of a kata's failures, the one whose message names a likely mistake first, the others counted;
    - the summary lines: the broken files (once each), the katas still to do, the waiting katas.
With -vv every failure is shown in full.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from katakit import blame, cache, catalog, runner
from katakit.explain import Explainer
from katakit.model import KataRef, TestRecord
from katakit.status import names_a_mistake

TODO, BLOCKED, WAITING, MORE = "to do", "blocked", "waiting", "more failed"
RECORD = "katas_record"


def _record(report: Any) -> TestRecord | None:
    return getattr(report, RECORD, None)


class Summary:
    """The terminal's side of one pytest run."""

    def __init__(self, config: pytest.Config, explainer: Explainer) -> None:
        self.config = config
        self.explainer = explainer
        self.waiting: dict[KataRef, list[KataRef]] = {}
        self.more: dict[str, int] = {}  # kata -> its failures not shown

    def teststatus(self, report: pytest.TestReport, record: TestRecord | None) -> Any:
        if record is None or not report.failed or report.when not in ("setup", "call"):
            return None
        if record.not_implemented and record.kata:
            return TODO, "T", ("TO DO", {"yellow": True})
        if record.blocked_by:
            return BLOCKED, "B", ("BLOCKED", {"red": True})
        if report.nodeid in self.explainer.after_timeout:
            return "failed", "F", "FAILED"
        return None

    # --- once every test has run ------------------------------------------------------------------

    def finish(self, records: list[TestRecord], compact: bool) -> None:
        """Decide which katas wait on another, note it in their records, and (compact, below -vv)
        take their failures, and a kata's failures after the first, out of the FAILURES section."""
        self.waiting = blame.waiting(records + self._elsewhere(records), self._order)
        for record in records:
            ref = record.kata_ref
            if ref in self.waiting and record.wrong:
                record.waiting_on = [str(root) for root in self.waiting[ref]]
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None or not compact or self.config.get_verbosity() >= 2:
            return
        failed = terminal.stats.get("failed", [])
        waiting = [report for report in failed if getattr(_record(report), "waiting_on", None)]
        if waiting:
            terminal.stats[WAITING] = waiting
        shown, more = self._mistake_first([report for report in failed if report not in waiting])
        if more:
            terminal.stats[MORE] = more
        if waiting or more:
            terminal.stats["failed"] = shown

    def _mistake_first(self, failed: list[Any]) -> tuple[list[Any], list[Any]]:
        """One failure per kata, one whose message names a mistake when there is one; and the others."""
        by_kata: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for report in failed:
            record = _record(report)
            if record is not None and record.kata and not record.timed_out:
                by_kata[(record.nodeid.split("::")[0], record.kata)].append(report)
        chosen: dict[int, Any] = {}  # the kata's first failure -> the one shown in its place
        more: list[Any] = []
        for (_, kata), reports in by_kata.items():
            if len(reports) < 2:
                continue
            named = [r for r in reports if names_a_mistake(_record(r))]
            first = (named or reports)[0]
            chosen[id(reports[0])] = first
            more += [r for r in reports if r is not first]
            self.more[kata] = self.more.get(kata, 0) + len(reports) - 1
        grouped = {id(r) for reports in by_kata.values() if len(reports) > 1 for r in reports}
        shown = [chosen.get(id(r), r) for r in failed if id(r) not in grouped or id(r) in chosen]
        return shown, more

    def _order(self, ref: KataRef) -> tuple[str, int, int]:
        """Learning order: topic, module, line."""
        modules = self._modules().get(ref.topic, ())
        position = modules.index(ref.module) if ref.module in modules else len(modules)
        return ref.topic, position, self._line(ref) or 0

    def _modules(self) -> dict[str, tuple[str, ...]]:
        if not hasattr(self, "_curriculum"):
            try:
                self._curriculum = {t.folder: t.modules for t in catalog.curriculum(self.config.rootpath)}
            except (OSError, ValueError, KeyError):
                self._curriculum = {}
        return self._curriculum

    def _line(self, ref: KataRef) -> int | None:
        return self.explainer.definition_line(ref.of.at(self.config.rootpath, self.explainer.side()), ref.name)

    def _elsewhere(self, records: list[TestRecord]) -> list[TestRecord]:
        """The records of the topics, not run here, whose katas this run's failing tests call:
        `katas`' saved results where they still hold, else a run of those topics' fast tests."""
        ran = {record.topic for record in records}
        wanted = sorted(
            {ref.topic for record in records if record.wrong for ref in record.called if ref.topic not in ran}
        )
        if not wanted or os.environ.get(runner.NOT_FOLLOWING):
            return []
        root, side = Path(self.config.rootpath), self.explainer.side()
        try:
            fresh, _ = cache.lookup(root, wanted, side)
        except (OSError, ValueError, KeyError):
            fresh = {}
        found = [record for topic in wanted for record in fresh.get(topic, [])]
        missing = [topic for topic in wanted if topic not in fresh]
        if missing:
            with contextlib.suppress(runner.RunFailed):
                found += runner.run_tests(root, missing, side, fast_only=True, following=False).records
        return found

    # --- the summary lines ------------------------------------------------------------------------

    def write(self, terminal: Any) -> None:
        self._more(terminal)
        self._blocked(terminal, terminal.stats.get(BLOCKED, []))
        self._todo(terminal, terminal.stats.get(TODO, []))
        self._waiting(terminal)

    def _more(self, terminal: Any) -> None:
        for kata, count in self.more.items():
            failures = "1 more failure" if count == 1 else f"{count} more failures"
            terminal.write_line(f"and {failures} of {kata}: -vv shows them", red=True)

    def _blocked(self, terminal: Any, reports: list[Any]) -> None:
        if not reports:
            return
        terminal.write_sep("=", "blocked: a learner file does not compile or import", red=True, bold=True)
        by_error: dict[str, list[TestRecord]] = {}
        for report in reports:
            record = _record(report)
            if record is not None:
                by_error.setdefault(record.message, []).append(record)
        for message, blocked in by_error.items():
            terminal.write_line(message, red=True, bold=True)
            for line in blocked[0].source:
                terminal.write_line(line)
            if terminal.verbosity > 0:  # each test on a line of its own
                for record in blocked:
                    terminal.write_line(f"{record.nodeid}: blocked by {record.blocked_by}")
                continue
            per_file: dict[str, int] = {}
            for record in blocked:
                test_file = record.nodeid.split("::")[0]
                per_file[test_file] = per_file.get(test_file, 0) + 1
            for test_file, count in per_file.items():
                tests = "1 test" if count == 1 else f"{count} tests"
                terminal.write_line(f"{test_file}: {tests} blocked by {blocked[0].blocked_by}")

    def _todo(self, terminal: Any, reports: list[Any]) -> None:
        katas: dict[tuple[str, str | None], TestRecord] = {}
        for report in reports:
            record = _record(report)
            if record is not None:
                katas.setdefault((record.nodeid.split("::")[0], record.kata), record)
        if not katas:
            return
        terminal.write_sep("=", "to do: these stubs still raise NotImplementedError", yellow=True)
        for (_, kata), record in katas.items():
            where = f"needs {record.needs}, {record.location}" if record.needs else record.location
            terminal.write_line(f"to do: {kata} ({where})")
        terminal.write_line("Replace the `raise NotImplementedError` at that line with your code, then run pytest.")

    def waiting_line(self, kata: KataRef) -> str:
        """`TransformerBlock: waiting on LayerNorm (katas/06_transformer/transformer.py:84)`"""
        roots = self.waiting[kata]
        named = ", ".join(f"{root.name} ({self._place(root)})" for root in roots)
        return f"{kata.name}: waiting on {named}"

    def _place(self, ref: KataRef) -> str:
        file = ref.of.file(self.explainer.side())
        line = self._line(ref)
        return f"{file}:{line}" if line else str(file)

    def _waiting(self, terminal: Any) -> None:
        katas = list(
            dict.fromkeys(
                ref
                for record in (
                    _record(report) for report in terminal.stats.get("failed", []) + terminal.stats.get(WAITING, [])
                )
                if record is not None and (ref := record.kata_ref) in self.waiting
            )
        )
        if not katas:
            return
        terminal.write_sep("=", "waiting: these katas fail inside a kata that fails on its own", yellow=True)
        for kata in katas:
            terminal.write_line(f"waiting: {self.waiting_line(kata)}")
        terminal.write_line("Fix the kata they wait on first; -vv shows their failures in full.")
