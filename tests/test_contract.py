"""The red-green contract every kata keeps.

(a) every kata test passes against reference/: that is `pytest --impl=reference katas` itself;
(b) every kata test fails against the untouched stubs, and fails because the stub raised
    NotImplementedError (not a collection error, an import error or a typo);
(c) stubs and reference expose the same names with the same signatures, because the stubs are
    generated from reference/ (python -m katakit.maintain stubs --write);
and every kata has a test, a docstring with its task, shapes and at least two hints, and
jaxtyping annotations on its signature.
"""

import ast
import inspect
import re
import typing
from pathlib import Path

import pytest
import torch

from katakit import catalog, i18n, impl, stubs
from katakit.model import TestRecord
from katakit.repo import is_test_file
from katakit.runner import run_tests

ROOT = Path(__file__).resolve().parents[1]
KATAS = catalog.read(ROOT, side="reference").katas
SIDE = re.compile(rf"\b({'|'.join(impl.IMPLEMENTATIONS)})\.")
MODULES = sorted({(kata.topic, kata.module) for kata in KATAS})
# A kata module building on an earlier topic: import_module("..05_attention.attention", __package__)
TOPIC_IMPORT = re.compile(r"""["']\.\.(\d\d_\w+)\.""")


@pytest.fixture(scope="session")
def stub_results() -> list[TestRecord]:
    """Run every kata test against the untouched stubs, once, and return one record per test."""
    return run_tests(ROOT, catalog.topics(ROOT), "katas").records


def test_the_stubs_are_what_reference_generates():
    stale = [path.relative_to(ROOT).as_posix() for path in stubs.out_of_sync(ROOT)]
    assert not stale, (
        f"stubs out of sync with reference/: {stale}. Maintainers: "
        "`python -m katakit.maintain stubs --write` regenerates them; it backs up every file it rewrites in "
        ".katas/backups/ and refuses to overwrite solved katas unless given --force. "
        "Learners: this test is not for you; `pytest` alone runs your katas."
    )


@pytest.mark.parametrize("side", impl.IMPLEMENTATIONS)
def test_curriculum_toml_declares_every_topic_module_and_dependency(side):
    declared = catalog.curriculum(ROOT)
    folders = sorted(path.name for path in (ROOT / side).glob("[0-9][0-9]_*") if path.is_dir())
    assert [topic.folder for topic in declared] == folders, "curriculum.toml lists the topics in order, all of them"
    for topic in declared:
        files = [path for path in (ROOT / side / topic.folder).glob("*.py") if not is_test_file(path)]
        on_disk = {path.stem for path in files} - {"__init__", "conftest"}  # a topic's conftest.py: test fixtures
        assert set(topic.modules) == on_disk, f"curriculum.toml's modules of {topic.folder} do not match the files"
        imported = {name for path in files for name in TOPIC_IMPORT.findall(path.read_text(encoding="utf-8"))}
        assert imported - {topic.folder} == set(topic.needs), (
            f"curriculum.toml's `needs` of {topic.folder} should be the topics its modules import: {sorted(imported)}"
        )
        tests = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "katas" / topic.folder).glob("test_*.py"))
        heavy = {"transformers"} & set(re.findall(r"^\s*(?:import|from)\s+(\w+)", tests, flags=re.MULTILINE))
        assert heavy == set(topic.preload), f"curriculum.toml's `preload` of {topic.folder}: its tests import {heavy}"


def test_no_kata_test_passes_on_the_stubs(stub_results):
    passed = [r.nodeid for r in stub_results if r.outcome == "passed"]
    assert stub_results, "no kata test ran against the stubs"
    assert not passed, f"these tests pass on the untouched stubs, so they cannot tell a learner anything: {passed}"


def test_every_stub_failure_is_not_implemented(stub_results):
    wrong = [f"{r.nodeid}: {r.message}" for r in stub_results if r.outcome != "skipped" and not r.not_implemented]
    assert not wrong, "these fail on the stubs for another reason than NotImplementedError:\n" + "\n".join(wrong)


def test_every_test_names_a_kata_and_every_kata_has_a_test(stub_results):
    known = {(kata.topic, kata.module, kata.name) for kata in KATAS}
    tested = {(r.topic, r.module, r.kata) for r in stub_results}
    assert not tested - known, f"tests marked with a kata that does not exist: {sorted(tested - known)}"
    assert not known - tested, f"katas without a test: {sorted(known - tested)}"


@pytest.mark.parametrize("kata", KATAS, ids=lambda k: f"{k.topic}.{k.name}")
def test_every_kata_states_task_shapes_and_hints(kata):
    assert kata.task, "the docstring should open with the task"
    assert "Shapes:" in kata.docstring or "shape" in kata.docstring.lower(), "the docstring should state the shapes"
    assert len(kata.hints) >= 2, "give at least two hints: a nudge, then the key idea"


@pytest.mark.parametrize("topic", catalog.curriculum(ROOT), ids=lambda topic: topic.folder)
def test_curriculum_toml_gives_every_kata_a_difficulty_and_a_time_and_every_topic_a_reading(topic):
    katas = [kata.name for kata in KATAS if kata.topic == topic.folder]
    assert list(topic.efforts) == katas, f"{topic.folder}: [topic.katas] should list its katas in source order"
    for name, effort in topic.efforts.items():
        assert effort.difficulty in (1, 2, 3), f"{name}: difficulty is 1, 2 or 3"
        assert type(effort.minutes) is int and 0 < effort.minutes <= 60, f"{name}: minutes, at most an hour"
    assert topic.reading, f"{topic.folder}: what to read or watch first"
    readmes = [(ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "README.zh-CN.md")]
    for entry in topic.reading:
        url = entry.rsplit(": ", 1)[-1]
        assert url.startswith("https://"), f"{topic.folder}: a reading entry ends with its URL: {entry}"
        assert all(url in readme for readme in readmes), f"both READMEs list {topic.folder}'s reading: {url}"


@pytest.mark.parametrize(("topic", "module"), MODULES, ids=lambda x: x)
def test_every_module_docstring_opens_its_topics_reading_path(topic, module):
    reading = next(entry.reading for entry in catalog.curriculum(ROOT) if entry.folder == topic)
    for side in impl.IMPLEMENTATIONS:
        docstring = ast.get_docstring(ast.parse((ROOT / side / topic / f"{module}.py").read_text(encoding="utf-8")))
        assert docstring and "Read or watch first" in docstring, f"{side}/{topic}/{module}.py: name the reading"
        for entry in reading:
            assert entry.rsplit(": ", 1)[-1] in docstring, f"{side}/{topic}/{module}.py lacks {entry}"


@pytest.mark.parametrize("topic", catalog.topics(ROOT))
def test_every_kata_has_its_chinese_task_and_as_many_hints(topic):
    path = i18n.translation_file(ROOT, topic, "zh")
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: each topic has its Chinese tasks and hints"
    chinese = i18n.translations(ROOT, topic, "zh")
    katas = [kata for kata in KATAS if kata.topic == topic]
    missing = [kata.name for kata in katas if kata.name not in chinese]
    assert not missing, f"{path.relative_to(ROOT)} lacks {missing}"
    assert set(chinese) <= {kata.name for kata in katas}, f"{path.relative_to(ROOT)} names katas that do not exist"
    for kata in katas:
        text = chinese[kata.name]
        assert text.task, f"{kata.name}: the Chinese task is empty"
        assert len(text.hints) == len(kata.hints), (
            f"{kata.name}: {len(text.hints)} Chinese hints, {len(kata.hints)} English"
        )
    assert "机械可解释性" not in path.read_text(encoding="utf-8"), "the source says 机制可解释性"


@pytest.mark.parametrize(("topic", "module"), MODULES, ids=lambda x: x)
def test_stubs_and_reference_expose_the_same_api(topic, module):
    ours, theirs = impl.load("katas", topic, module, ROOT), impl.load("reference", topic, module, ROOT)

    def api(mod):
        names = {
            n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__
        }
        return {n: _signatures(getattr(mod, n)) for n in names}

    assert api(ours) == api(theirs)


def _signatures(obj) -> dict[str, str]:
    """Each function's signature, with `katas.`/`reference.` dropped from the names of the classes it mentions."""
    members = {"": obj} if not inspect.isclass(obj) else dict(inspect.getmembers(obj, inspect.isfunction))
    return {name: SIDE.sub("", str(inspect.signature(fn))) for name, fn in members.items() if callable(fn)}


@pytest.mark.parametrize(("topic", "module"), MODULES, ids=lambda x: x)
def test_every_kata_signature_is_annotated_with_shapes(topic, module):
    mod = impl.load("reference", topic, module, ROOT)
    for kata in (k for k in KATAS if (k.topic, k.module) == (topic, module)):
        obj = getattr(mod, kata.name)
        functions = [obj] if not inspect.isclass(obj) else [f for _, f in inspect.getmembers(obj, inspect.isfunction)]
        for fn in functions:
            if not hasattr(fn, "__wrapped__"):
                continue  # given code, not a kata body
            hints = typing.get_type_hints(fn)
            params = [p for p in inspect.signature(fn).parameters if p not in ("self", "cls")]
            missing = [p for p in [*params, "return"] if p not in hints]
            assert not missing, f"{kata.name}.{fn.__name__}: annotate {missing}"
            bare = [p for p, hint in hints.items() if hint is torch.Tensor]
            assert not bare, f"{kata.name}.{fn.__name__}: use a jaxtyping shape, not a bare Tensor, for {bare}"
