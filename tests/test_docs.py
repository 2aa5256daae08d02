"""The documentation a newcomer follows: README's commands install CPU torch with the pinned
versions, CI runs the maintainer command step for step, the Chinese README keeps step with the
English one, and both show the routes curriculum.toml declares."""

import re
from pathlib import Path

import pytest

from katakit import catalog

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
README_ZH = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def shell_blocks(markdown: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.DOTALL)]


def set_up_commands() -> tuple[str, str]:
    learner, maintainer = shell_blocks(README)[:2]
    return learner, maintainer


def test_the_readme_gives_a_learner_and_a_maintainer_command():
    learner, maintainer = set_up_commands()
    assert learner.endswith(" && katas"), "the first command installs and starts the learner's loop"
    assert maintainer.endswith(" && pytest --impl=reference katas tests"), "the second runs every test on reference/"


def test_both_commands_install_the_pinned_cpu_build_of_torch():
    for command in set_up_commands():
        install = next((step for step in command.split(" && ") if step.startswith("pip install")), "")
        assert CPU_INDEX in install, f"without PyTorch's CPU index, pip on Linux installs the CUDA build: {command}"
        assert "-c constraints.txt" in install, f"the install should use the pinned versions: {command}"


def test_ci_runs_the_readme_maintainer_command_step_for_step():
    _, maintainer = set_up_commands()
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    found = []
    for step in maintainer.split(" && "):
        assert step in lines, f".ci/run should run README's maintainer command; it lacks the line: {step}"
        found.append(lines.index(step))
    assert found == sorted(found), ".ci/run should run the steps of README's maintainer command in its order"


def test_the_chinese_readme_has_the_same_commands():
    assert shell_blocks(README_ZH)[:2] == shell_blocks(README)[:2]


def test_the_chinese_readme_names_the_field_as_the_field_does():
    assert "机制可解释性" in README_ZH and "机械可解释性" not in README_ZH


def test_both_readmes_map_every_topic():
    topics = sorted(folder.name for folder in (ROOT / "katas").iterdir() if re.fullmatch(r"\d\d_\w+", folder.name))
    assert topics, "no topic folders found under katas/"
    for topic in topics:
        assert f"katas/{topic}" in README, f"README.md's topic map lacks {topic}"
        assert f"katas/{topic}" in README_ZH, f"README.zh-CN.md's topic map lacks {topic}"


def test_the_readmes_examples_show_the_first_katas_real_lines():
    stub = (ROOT / "katas" / "01_linear_algebra" / "linear_algebra.py").read_text(encoding="utf-8").splitlines()
    definition = next(n for n, line in enumerate(stub, 1) if line.startswith("def coordinates_in_basis("))
    raised = next(n for n, line in enumerate(stub, 1) if n > definition and "raise NotImplementedError" in line)
    for readme in (README, README_ZH):
        assert f"katas/01_linear_algebra/linear_algebra.py:{definition} coordinates_in_basis" in readme
        assert f"to do: coordinates_in_basis (katas/01_linear_algebra/linear_algebra.py:{raised})" in readme


def section(markdown: str, heading: str) -> str:
    """The text under a `### heading`, up to the next heading."""
    start = markdown.index(f"### {heading}\n")
    following = re.search(r"^#{1,3} ", markdown[start + 4 :], flags=re.MULTILINE)
    return markdown[start : start + 4 + following.start()] if following else markdown[start:]


@pytest.mark.parametrize(
    ("readme", "heading"), [(README, "Which order?"), (README_ZH, "按什么顺序做？")], ids=["en", "zh"]
)
def test_both_readmes_show_the_routes_of_curriculum_toml_and_how_to_take_them(readme, heading):
    shown = section(readme, heading)
    routes = catalog.routes(ROOT)
    assert len(routes) > 1, "curriculum.toml declares the routes, a newcomer's to torch among them"
    assert catalog.route_problems(ROOT) == [], "every step of a route names a topic, module or kata"
    listed = re.findall(r"^\s*\d+\. `([^`]+)`", shown, flags=re.MULTILINE)
    assert listed == [step for route in routes for step in route.steps], (
        f"the numbered steps under {heading!r} should be curriculum.toml's `[[route]]` steps, in order"
    )
    for route in routes[1:]:
        assert f"`katas route {route.name}`" in shown, f"how to take the {route.name} route"
    assert f"`{routes[0].name}`" in shown and "`katas 04`" in shown, "the default route, and one topic alone"
