"""The notebook route: notebooks/ as committed (no outputs, kata cells that are the stubs), and
`check`, which runs a kata's real tests on a function written in a notebook cell.

CI also runs the notebooks themselves, their kata cells filled from reference/, with nbmake
(the notebooks gate of katakit/maintain.py: `python -m katakit.maintain notebook fill build/notebooks`,
then `pytest --nbmake build/notebooks`).
"""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import katakit
from katakit import bench, catalog, stubs
from katakit.bench import Outcome
from katakit.names import resolve_kata
from katakit.notebook import FILLED, KATA_TAG, fill

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_is_a_linear_regression_an_attention_and_an_interpretability_notebook():
    assert {path.name for path in NOTEBOOKS} >= {"linear_regression.ipynb", "attention.ipynb", "interpretability.ipynb"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_a_committed_notebook_carries_no_outputs(notebook):
    for cell in cells(notebook):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                f"{notebook.name} was saved with outputs: clear them (Edit > Clear all outputs) before committing"
            )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_a_notebook_opens_with_the_colab_install_and_its_kata_cells_are_the_stubs(notebook):
    code = [cell for cell in cells(notebook) if cell["cell_type"] == "code"]
    assert "google.colab" in source(code[0]) and "pip" in source(code[0]), "the first code cell installs on Colab"
    assert "colab.research.google.com" in source(cells(notebook)[0]), "an Open in Colab badge up top"
    katas = catalog.read(ROOT).katas
    kata_cells = [cell for cell in code if cell["metadata"].get(KATA_TAG)]
    assert kata_cells, f"{notebook.name} has no kata cell"
    for cell in kata_cells:
        kata = resolve_kata(cell["metadata"][KATA_TAG], katas)
        stub = stubs.definition((ROOT / kata.path).read_text(encoding="utf-8"), kata.name)
        assert source(cell).strip() == stub.strip(), (
            f"{notebook.name}: the cell of {kata.name} is not its stub: python -m katakit.maintain notebook sync"
        )
        following = source(code[code.index(cell) + 1])
        assert following.startswith("check(") and f'{kata.name}", {kata.name})' in following, (
            f"{notebook.name}: the cell after {kata.name} should check it"
        )


def test_filling_puts_the_reference_solutions_in_the_kata_cells_after_a_cell_that_switches_to_reference(tmp_path):
    notebook = ROOT / "notebooks" / "attention.ipynb"
    filled = cells(fill(notebook, tmp_path, ROOT))
    softmax = next(cell for cell in filled if cell["metadata"].get(KATA_TAG) == "05_attention/stable_softmax")
    assert "raise NotImplementedError" not in source(softmax) and "def stable_softmax" in source(softmax)
    assert cells(notebook) != filled[1:] and len(filled[1:]) == len(cells(notebook))
    assert source(filled[0]) == FILLED and 'os.environ["KATAS_IMPL"] = "reference"' in FILLED


def test_the_imports_bring_every_decorator_of_the_kata_cells(tmp_path):
    """`from katakit import *` in the imports cell: what a filled kata cell carries, katakit exports."""
    for notebook in NOTEBOOKS:
        code = [source(cell) for cell in cells(fill(notebook, tmp_path, ROOT)) if cell["cell_type"] == "code"]
        assert any(line.startswith("from katakit import *") for cell in code for line in cell.splitlines())
        decorators = {name for cell in code for name in re.findall(r"^\s*@(\w+)", cell, flags=re.MULTILINE)}
        assert decorators <= {*katakit.__all__, "torch", "staticmethod", "classmethod", "property"}, notebook.name


def test_the_notebook_katas_bench_points_at_ends_with_a_cell_that_times_your_attention_against_torchs():
    skipped = Outcome("gpu", "scaled_dot_product_attention", "skipped", "needs a CUDA device", ())
    assert f"the last cell of {bench.NOTEBOOK} does" in bench.table([skipped])
    last = source(cells(ROOT / bench.NOTEBOOK)[-1])
    assert "scaled_dot_product_attention(q, k, v, causal=True)" in last, "the notebook's own attention, causal"
    assert "SDPBackend.MATH" in last and "best_times" in last and "print(table(" in last, (
        "against torch's MATH backend, timed as katas bench does (katakit.benchmarking), printed as its table"
    )
    assert "torch.bfloat16" in last and "torch.cuda.is_available()" in last, "fp32 and bf16 on a GPU"


def run_in_a_fresh_interpreter(code: str) -> subprocess.CompletedProcess:
    """Run `code` as a notebook kernel would: a function defined in __main__, `check` on it."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT / "notebooks", capture_output=True, text=True
    )


def test_check_passes_a_right_function_defined_in_a_cell_and_reports_a_wrong_one_with_the_tests_message():
    result = run_in_a_fresh_interpreter(
        """
        import torch
        from jaxtyping import Float
        from torch import Tensor
        from katakit import check

        def stable_softmax(x: Float[Tensor, "... n"]) -> Float[Tensor, "... n"]:
            shifted = x - x.amax(dim=-1, keepdim=True)
            return shifted.exp() / shifted.exp().sum(dim=-1, keepdim=True)

        def naive_softmax(x: Float[Tensor, "... n"]) -> Float[Tensor, "... n"]:
            return x.exp() / x.exp().sum(dim=-1, keepdim=True)

        print("RIGHT", check("stable_softmax", stable_softmax))
        print("WRONG", check("stable_softmax", naive_softmax, lang="zh"))
        """
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "stable_softmax: all" in out and "tests pass" in out and "RIGHT True" in out
    wrong = out.split("RIGHT True")[1]
    assert "WRONG False" in wrong and "tests fail" in wrong
    assert "nan" in wrong.lower() or "overflow" in wrong.lower(), "the test's own teaching message"
    assert "数值" in wrong or "softmax" in wrong, "the task and hint 1 in the learner's language"


def test_a_strict_check_raises_for_ci():
    result = run_in_a_fresh_interpreter(
        """
        import os
        os.environ["KATAS_CHECK_STRICT"] = "1"
        from katakit import check

        def default_device():
            return "cpu"

        check("default_device", default_device)
        """
    )
    assert result.returncode != 0 and "KataFailed" in result.stderr


# A kernel compiles each cell as a file of its own and keeps its lines for tracebacks (linecache):
# /tmp/ipykernel_<pid>/<hash>.py on ipykernel 6 and later. `run_cells` does the same in a fresh interpreter.
CELL_RUNNER = """
import linecache, sys
cells = {cells!r}
namespace = vars(sys.modules["__main__"])
for number, cell in enumerate(cells):
    filename = f"/tmp/ipykernel_4242/{{number}}.py"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(keepends=True), filename)
    exec(compile(cell, filename, "exec"), namespace)
"""


def run_cells(cells: list[str]) -> subprocess.CompletedProcess:
    """Run `cells` as a Jupyter kernel would, one after the other, in a fresh interpreter."""
    return run_in_a_fresh_interpreter(CELL_RUNNER.format(cells=cells))


# positional_pattern builds on 08's circuits.full_qk_circuit, a stub in katas/ of this checkout.
BUILDS_ON = """import torch
from jaxtyping import Float
from torch import Tensor, nn
from katakit import check, detached, kata
from katakit.notebook import kata_module

circuits = kata_module("08_interpretability/circuits")
"""


def test_a_filled_notebook_checks_its_kata_against_the_reference_katas_it_builds_on_a_learners_against_theirs():
    """A filled kata cell calls other katas (08's circuits, 06's Attention); in katas/ they are the stubs. The filled
    notebook's first cell sends kata_module and check to reference/; a learner's notebook has no such
    cell and is checked against the learner's own katas."""
    reference = (ROOT / "reference" / "08_interpretability" / "reverse_engineering.py").read_text(encoding="utf-8")
    solution = stubs.definition(reference, "positional_pattern")
    checked = 'print("CHECKED", check("positional_pattern", positional_pattern))'
    result = run_cells(
        [BUILDS_ON, solution, checked, FILLED + 'circuits = kata_module("08_interpretability/circuits")', checked]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    learners, filled = result.stdout.split("CHECKED False")
    # the learner's stubs (06's Attention, 08's circuits) stand in the way: to do, not wrong
    assert re.search(r"to do: positional_pattern \(needs [\w.]+, katas/0[68]_\w+/\w+\.py:\d+\)", learners), learners
    assert "positional_pattern: all" in filled and "CHECKED True" in filled, result.stdout


IMPORTS = "import torch\nfrom jaxtyping import Float\nfrom torch import Tensor\nfrom katakit import check, kata\n"
WRONG_SOFTMAX = """@kata
def stable_softmax(x: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch n"]:
    return x.exp() / x.exp().sum(dim=-1, keepdim=True)
"""
BROKEN_SOFTMAX = """@kata
def stable_softmax(x: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch n"]:
    shifted = x - x.amax(dim=-1, keepdim=True)
    return shifted.exp() / shifted.exp().sum(dim=-1, keepdim=True).squeeze(-1)
"""


def test_check_names_the_learners_cell_and_line_not_the_stub_in_katas():
    result = run_cells(
        [
            IMPORTS,
            WRONG_SOFTMAX,
            'check("stable_softmax", stable_softmax)',
            BROKEN_SOFTMAX,
            'check("stable_softmax", stable_softmax)',
            'check("stable_softmax", stable_softmax, everything=True)',
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wrong, broken, everything = result.stdout.split("the messages above say why")[:3]
    assert "your code: your cell, line 2 (stable_softmax)" in wrong, "the def line of the cell, past @kata"
    assert "your cell, line 4 (stable_softmax)" in broken, "the cell's line that raised"
    assert ".squeeze(-1)" in broken, "with its source"
    failing = int(re.search(r"(\d+) of \d+ tests fail", broken).group(1))
    assert failing > 1 and broken.count("your code: ") == 1, "one report, and a line for each other failing test"
    assert f"and {failing - 1} more failing tests" in broken
    assert everything.count("your code: ") == failing, "everything=True: every failing test's report"
    assert "katas/05_attention/attention.py" not in result.stdout, "the stub in katas/ is not the learner's code"


def test_a_notebook_with_one_kata_answered_wrongly_and_the_rest_untouched_is_short_and_warns_of_nothing():
    """The attention notebook run top to bottom: its kata cells as committed (the stubs) but for
    attention_scores, which forgets the scale; each followed by its check."""
    notebook = cells(ROOT / "notebooks" / "attention.ipynb")
    code = [source(cell) for cell in notebook if cell["cell_type"] == "code"]
    last_check = max(number for number, cell in enumerate(code) if cell.startswith("check("))
    run = [  # from the imports (the cell after Colab's install) to the last check
        cell.replace("    raise NotImplementedError", "    return q @ k.transpose(-2, -1)")
        if "def attention_scores(" in cell
        else cell
        for cell in code[1 : last_check + 1]
    ]
    result = run_cells(run)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    message = next(number for number, line in enumerate(lines) if "sqrt(d_head)" in line)
    assert message <= 25, f"the message that says what is wrong comes at line {message + 1}:\n{result.stdout}"
    todo = [line for line in lines if line.startswith("to do: ")]
    untouched = ["stable_softmax", "causal_mask", "apply_causal_mask", "scaled_dot_product_attention"]
    assert [line.split()[2] for line in todo] == untouched, "one to-do line per untouched stub"
    assert all("your cell, line" in line for line in todo), todo
    assert "E   NotImplementedError" not in result.stdout, "no traceback of a stub"
    assert "warning" not in result.stdout.lower() + result.stderr.lower(), result.stdout + result.stderr
    assert len(lines) <= 30, f"{len(lines)} lines:\n{result.stdout}"
