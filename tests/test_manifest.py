"""The shipped kata tests are pinned by hash in katakit/test_manifest.json, so that a fork's
`katas check` can warn when a learner changed a test instead of the kata."""

from pathlib import Path

from katakit import manifest

ROOT = Path(__file__).resolve().parents[1]


def test_the_manifest_matches_the_files_that_decide_a_verdict():
    found = manifest.differences(ROOT)
    assert not found, (
        "katakit/test_manifest.json does not match the files that decide a verdict:\n"
        + "\n".join(found.lines())
        + "\nAfter changing one of them on purpose, regenerate it: python -m katakit.maintain manifest --write"
    )


def _tree(root: Path) -> Path:
    topic = root / "katas" / "01_topic"
    topic.mkdir(parents=True)
    (topic / "topic.py").write_text("learner code\n")
    (topic / "test_topic.py").write_text("def test_it():\n    pass\n")
    (topic / "benchmark_topic.py").write_text("def test_timing():\n    pass\n")
    return topic


def test_changed_missing_and_added_test_files_are_named_and_learner_files_ignored(tmp_path: Path):
    topic = _tree(tmp_path)
    manifest.write(tmp_path)
    assert sorted(manifest.load(tmp_path) or ()) == [
        "katas/01_topic/benchmark_topic.py",
        "katas/01_topic/test_topic.py",
    ]
    (topic / "topic.py").write_text("the learner's solution\n")
    (topic / "test_topic.py").write_bytes((topic / "test_topic.py").read_bytes().replace(b"\n", b"\r\n"))
    assert not manifest.differences(tmp_path), "learner files and CRLF line endings are not changes"

    (topic / "test_topic.py").write_text("def test_it():\n    assert True\n")
    (topic / "benchmark_topic.py").unlink()
    (topic / "test_extra.py").write_text("")
    found = manifest.differences(tmp_path)
    assert found.lines() == [
        "katas/01_topic/test_topic.py: changed since it was shipped",
        "katas/01_topic/benchmark_topic.py: missing (it was shipped)",
        "katas/01_topic/test_extra.py: not a shipped file (it can change the verdict)",
    ]
    assert manifest.main(["--root", str(tmp_path)]) == 1
    assert manifest.main(["--root", str(tmp_path), "--write"]) == 0
    assert manifest.main(["--root", str(tmp_path)]) == 0
