"""The gates are declared once (katakit/maintain.py's GATES) and tox.ini, `.ci/run` and the GitHub
workflow ci.yml run exactly those: a gate added to one place only is red here."""

import configparser
import re
import subprocess
import sys
from pathlib import Path

from katakit.maintain import GATES, TEST_COMMAND

ROOT = Path(__file__).resolve().parents[1]
NAMES = [gate.name for gate in GATES]
CALL = re.compile(r"python -m katakit\.maintain gates ([a-z][a-z ]*?)\s*$", re.MULTILINE)


def test_tox_has_one_environment_per_gate_each_running_that_gate():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    assert tox["tox"]["env_list"].replace(" ", "").split(",") == NAMES, "tox.ini's env_list should be GATES, in order"
    sections = [name.removeprefix("testenv:") for name in tox.sections() if name.startswith("testenv:")]
    assert sections == NAMES, "tox.ini should have one [testenv:NAME] per gate, in order"
    assert tox["testenv"]["commands"].strip() == "python -m katakit.maintain gates {envname}"
    for name in sections:
        assert "commands" not in tox[f"testenv:{name}"], f"tox's {name} should run the declared gate, not its own copy"


def test_the_github_workflow_runs_every_gate_in_order():
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert CALL.findall(workflow) == NAMES, (
        "ci.yml should have one step `python -m katakit.maintain gates NAME` per gate"
    )


def test_ci_runs_every_gate_and_ends_with_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert lines[-2:] == ["python -m katakit.maintain gates --skip test", " ".join(TEST_COMMAND)], (
        ".ci/run should run the gates and then, last, README's test command as README writes it"
    )


def test_the_readme_lists_every_gate_and_its_test_command_is_the_declared_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for gate in GATES:
        assert f"`{gate.name}`" in readme, f"README's maintainer section should list the gate {gate.name}"
    assert " ".join(TEST_COMMAND) in readme


def test_gates_list_names_each_gate():
    listed = subprocess.run(
        [sys.executable, "-m", "katakit.maintain", "gates", "--list"], cwd=ROOT, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == NAMES


def test_an_unknown_gate_is_refused():
    run = subprocess.run(
        [sys.executable, "-m", "katakit.maintain", "gates", "nosuchgate"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode != 0 and "no gate called 'nosuchgate'" in run.stderr
