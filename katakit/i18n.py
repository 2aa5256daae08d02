"""The language a learner reads tasks and hints in: English (the docstrings) or Chinese.

The Chinese task and hints of every kata of a topic are in `reference/NN_topic/zh.toml`, one table
per kata (`task`, `hints`), beside the solutions: like the English hints after the first, they are
not in the learner's folder. The language is `--lang` where a command takes it, else $KATAS_LANG,
else the locale ($LC_ALL, $LC_MESSAGES, $LANG: zh_CN.UTF-8 and the like mean Chinese).
"""

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from katakit.catalog import Kata

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LANGUAGES = ("en", "zh")


def language(chosen: str | None = None) -> str:
    """`chosen` if given, else $KATAS_LANG, else the locale's language when it is Chinese, else English."""
    if chosen:
        return chosen
    wanted = os.environ.get("KATAS_LANG", "").lower()
    if wanted in LANGUAGES:
        return wanted
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


@dataclass(frozen=True)
class Text:
    task: str
    hints: tuple[str, ...]


def translation_file(root: Path, topic: str, lang: str) -> Path:
    return root / "reference" / topic / f"{lang}.toml"


@functools.cache
def _translations(path: Path, stamp: float) -> dict[str, Text]:
    tables = tomllib.loads(path.read_text(encoding="utf-8"))
    return {name: Text(table["task"].strip(), tuple(table["hints"])) for name, table in tables.items()}


def translations(root: Path, topic: str, lang: str) -> dict[str, Text]:
    """The tasks and hints of a topic's katas in `lang` (empty for English or a missing file)."""
    path = translation_file(root, topic, lang)
    if lang == "en" or not path.is_file():
        return {}
    return _translations(path, path.stat().st_mtime)


def text(root: Path, kata: Kata, lang: str, hints: list[str]) -> Text:
    """The task and hints of `kata` in `lang`, falling back to English (`kata.task`, `hints`)."""
    return translations(root, kata.topic, lang).get(kata.name, Text(kata.task, tuple(hints)))
