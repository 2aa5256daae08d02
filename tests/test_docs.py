"""The documentation a newcomer follows: README's commands are the ones CI runs, and the Chinese
README keeps step with the English one."""

import re

from katakit import catalog, impl

README = (impl.ROOT / "README.md").read_text(encoding="utf-8")
README_ZH = (impl.ROOT / "README.zh-CN.md").read_text(encoding="utf-8")


def shell_blocks(markdown: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL)]


def test_the_readme_gives_two_set_up_commands_and_ci_runs_the_test_one():
    learner, maintainer = shell_blocks(README)[:2]
    assert learner.endswith("&& katas"), "the first command installs and starts the learner's loop"
    ci = (impl.ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for step in maintainer.split(" && "):
        assert step in ci.splitlines(), f".ci/run should run the README's test command; it lacks: {step}"


def test_the_chinese_readme_has_the_same_commands():
    assert shell_blocks(README_ZH)[:2] == shell_blocks(README)[:2]


def test_both_readmes_map_every_topic():
    for topic in catalog.topics():
        assert f"katas/{topic}" in README, f"README.md's topic map lacks {topic}"
        assert f"katas/{topic}" in README_ZH, f"README.zh-CN.md's topic map lacks {topic}"
