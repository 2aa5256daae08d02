"""Turn what a learner types into topics and katas, with close matches when it names nothing.

Topics: `01_linear_algebra`, `01`, `1`, `linear_algebra`, or an unambiguous start of the name
(`linear`). Katas: `gram_schmidt`, `linear_algebra.gram_schmidt` (module.name) or
`01_linear_algebra/gram_schmidt` (topic/name, where the topic is spelled as above).
"""

import difflib

from katakit.catalog import Kata


class UnknownName(LookupError):
    """A topic or kata name that matches nothing (or more than one thing); the message says which."""


def _suggest(wanted: str, known: list[str]) -> str:
    close = difflib.get_close_matches(wanted, known, n=5, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _short(topic: str) -> str:
    return topic.partition("_")[2]


def resolve_topic(wanted: str, topics: list[str]) -> str:
    """The topic folder that `wanted` names."""
    text = wanted.strip().strip("/").lower().removeprefix("katas/")
    for topic in topics:
        if text in (topic.lower(), _short(topic).lower()) or (text.isdigit() and int(text) == int(topic[:2])):
            return topic
    starts = [topic for topic in topics if _short(topic).lower().startswith(text) or topic.lower().startswith(text)]
    if len(starts) == 1:
        return starts[0]
    if len(starts) > 1:
        raise UnknownName(f"{wanted!r} could be any of: {', '.join(starts)}.")
    known = topics + [_short(topic) for topic in topics]
    raise UnknownName(f"No topic {wanted!r}.{_suggest(text, known)} Topics: {', '.join(topics)}.")


def resolve_topics(wanted: list[str], topics: list[str]) -> list[str] | None:
    """The topics named (in learning order), or None for all when nothing is named."""
    if not wanted:
        return None
    chosen = {resolve_topic(name, topics) for name in wanted}
    return [topic for topic in topics if topic in chosen]


def resolve_kata(wanted: str, katas: list[Kata]) -> Kata:
    """The kata that `wanted` names: `name`, `module.name` or `topic/name`."""
    text = wanted.strip()
    topic, _, rest = text.rpartition("/")
    module, _, name = rest.rpartition(".")
    candidates = [kata for kata in katas if kata.name.lower() == name.lower()]
    if module:
        candidates = [kata for kata in candidates if kata.module.lower() == module.lower()]
    if topic:
        topics = list(dict.fromkeys(kata.topic for kata in katas))
        try:
            chosen = resolve_topic(topic, topics)
        except UnknownName:
            candidates = []
        else:
            candidates = [kata for kata in candidates if kata.topic == chosen]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        spelled = ", ".join(f"{kata.topic}/{kata.name}" for kata in candidates)
        raise UnknownName(f"{wanted!r} names several katas: {spelled}. Say which with topic/name.")
    names = sorted({kata.name for kata in katas})
    return _raise_unknown_kata(wanted, name, names)


def _raise_unknown_kata(wanted: str, name: str, names: list[str]) -> Kata:
    containing = [known for known in names if name and name.lower() in known.lower()]
    close = list(dict.fromkeys(containing + difflib.get_close_matches(name, names, n=5, cutoff=0.5)))[:6]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownName(f"No kata {wanted!r}.{hint} `katas list` shows them all.")
