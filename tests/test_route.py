"""The routes through the katas (curriculum.toml's `[[route]]`): the order they put the real katas
in, and `katas` following the one the learner takes, on a temporary toy repository."""

from pathlib import Path

import pytest

from katakit import catalog, cli, workspace

REAL = Path(__file__).resolve().parents[1]


def test_the_torch_first_route_starts_with_tensors_and_defers_the_fit_until_calculus_is_done():
    found = catalog.read(REAL).katas
    route = catalog.route(REAL, "torch-first")
    ordered = [f"{kata.topic}/{kata.module}/{kata.name}" for kata in route.ordered(found, lambda kata: kata)]
    assert sorted(ordered) == sorted(f"{kata.topic}/{kata.module}/{kata.name}" for kata in found), "each kata once"
    modules = list(dict.fromkeys(name.rsplit("/", 1)[0] for name in ordered))
    assert modules[:4] == [
        "04_tensors/tensors",
        "04_tensors/einops_katas",
        "04_tensors/einsum_katas",
        "01_linear_algebra/linear_algebra",
    ]
    fit = ordered.index("02_probability/probability/fit_gaussian_by_gradient_ascent")
    last_of_calculus = max(number for number, name in enumerate(ordered) if name.startswith("03_calculus/"))
    assert fit == last_of_calculus + 1, "the fit by gradient ascent comes right after 03's autograd"
    assert ordered[fit + 1].startswith("04_tensors/linear_regression/"), "then the rest of 04"
    assert catalog.route(REAL, None).ordered(found, lambda kata: kata) == found, "the default: folder order"


TOY = '''"""A toy topic."""

from katakit import kata


@kata
def {name}(x: float) -> float:
    """Return {name} `x`.

    Shapes:
        x: a number
        returns: a number

    Hints:
        1. A nudge.
        2. The idea.
    """
    return x
'''

TEST = """import pytest


@pytest.mark.kata("{name}")
def test_{name}(impl):
    assert impl.{name}(1.0) == 1.0
"""

CURRICULUM = """
[[route]]
name = "in-order"
for = "most people"
about = "09 then 10"

[[route]]
name = "later-first"
for = "the impatient"
about = "10 before 09"
steps = ["10_later", "09_early"]

[[topic]]
folder = "09_early"
modules = ["early"]

[[topic]]
folder = "10_later"
modules = ["later"]
"""


@pytest.fixture
def repo(toy_repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two toy topics of one kata each, still stubs; two routes through them."""
    toys = [
        toy_repository.Topic(topic, module, reference=TOY.format(name=name), tests=TEST.format(name=name))
        for topic, module, name in [("09_early", "early", "first"), ("10_later", "later", "second")]
    ]
    for variable in ("KATAS_IMPL", "KATAS_SEED"):
        monkeypatch.delenv(variable, raising=False)
    return toy_repository(tmp_path / "repo", toys, curriculum=CURRICULUM)


def katas(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = cli.main([*args, "--root", str(root)])
    return code, capsys.readouterr().out


def test_katas_follows_the_route_taken_and_names_the_other_once_on_the_first_run(repo, capsys):
    other = "The impatient? `katas route later-first`: 10 before 09."
    code, out = katas(repo, capsys)
    assert code == 0 and "Next: first" in out
    assert out.count(other) == 1, "on the first run, one line says how to take the other route"
    assert other not in katas(repo, capsys)[1], "only on the first run"

    code, out = katas(repo, capsys, "route")
    assert code == 0 and "* in-order" in out and "later-first" in out
    code, out = katas(repo, capsys, "route", "later-first")
    assert code == 0 and workspace.chosen_route(repo) == "later-first"
    code, out = katas(repo, capsys)
    assert "Next: second" in out, "the route taken decides what is next"
    assert out.index("10_later") < out.index("09_early"), "and the order of the topics"
    assert "Next: first" in katas(repo, capsys, "09")[1], "one topic alone, whatever the route"
    listed = katas(repo, capsys, "list")[1]
    assert listed.index("10_later") < listed.index("09_early"), "katas list follows the route too"

    assert cli.main(["route", "nowhere", "--root", str(repo)]) == cli.EXIT_USAGE
    assert "take one of in-order, later-first" in capsys.readouterr().err
