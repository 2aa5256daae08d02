"""`katas restore`: listing the backups `katas reset` keeps, and putting a kata or a file back.

Each test works on a small temporary repository (a toy topic of two katas; no test runs there),
through the real `katas` command run in-process.
"""

import re
import shutil
from pathlib import Path

import pytest

from katakit import catalog, cli, stubs, workspace

REAL = Path(__file__).resolve().parents[1]
TOPIC = "09_toy"

REFERENCE = '''"""A toy topic for the tests of `katas restore`."""

from katakit import kata


@kata
def double(x: float) -> float:
    """Return twice `x`.

    Shapes:
        x: a number
        returns: a number

    Hints:
        1. What does twice mean?
        2. Add it to itself.
    """
    return 2 * x


@kata
def halve(x: float) -> float:
    """Return half of `x`.

    Shapes:
        x: a number
        returns: a number

    Hints:
        1. The opposite of double.
        2. Division.
    """
    return x / 2
'''

CURRICULUM = """
[[topic]]
folder = "09_toy"
modules = ["toy"]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with the toy topic, both katas solved by the learner."""
    root = tmp_path / "repo"
    for side in ("katas", "reference"):
        (root / side / TOPIC).mkdir(parents=True)
        shutil.copy(REAL / side / "__init__.py", root / side / "__init__.py")
    (root / catalog.CURRICULUM).write_text(CURRICULUM)
    (root / "reference" / TOPIC / "toy.py").write_text(REFERENCE)
    solved = stubs.stub_source(REFERENCE)
    solved = solved.replace("raise NotImplementedError", "return x + x", 1).replace(
        "raise NotImplementedError", "return x * 0.5", 1
    )
    (root / "katas" / TOPIC / "toy.py").write_text(solved)
    return root


def katas(root: Path, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main([*args, "--root", str(root)])
    out, err = capsys.readouterr()
    return code, out, err


def learner(root: Path) -> str:
    return (root / "katas" / TOPIC / "toy.py").read_text()


def test_reset_then_restore_puts_the_solution_back_and_keeps_the_stub_in_a_new_backup(repo, capsys):
    solved = learner(repo)
    assert katas(repo, capsys, "reset", "halve")[0] == 0
    assert stubs.attempted(learner(repo)) == ["double"]

    code, out, _ = katas(repo, capsys, "restore")
    assert code == 0
    (backup,) = workspace.backups(repo)
    assert backup.name in out and f"{backup.made:%Y-%m-%d %H:%M:%S}" in out, "each backup with its time"
    assert re.search(r"katas/09_toy/toy.py +katas attempted: double, halve; unlike your file now: halve\b", out), out

    code, out, _ = katas(repo, capsys, "restore", backup.name, "halve")
    assert code == 0, out
    assert learner(repo) == solved, "the learner's halve is back, and double is as it was"
    newest = workspace.backups(repo)[0]
    assert newest.name != backup.name and newest.name in out, "what was replaced went to a new backup"
    assert stubs.attempted((newest.path / "katas" / TOPIC / "toy.py").read_text()) == ["double"], "the stub of halve"

    code, out, _ = katas(repo, capsys, "restore", newest.name, "halve")
    assert code == 0 and "return x * 0.5" not in learner(repo), "a restore can itself be undone"


def test_restoring_a_whole_file_and_restoring_what_is_already_there(repo, capsys):
    solved = learner(repo)
    katas(repo, capsys, "reset", "halve")
    katas(repo, capsys, "reset", "double")
    assert stubs.attempted(learner(repo)) == []
    code, out, _ = katas(repo, capsys, "restore", "latest", "toy.py")
    assert code == 0 and stubs.attempted(learner(repo)) == ["double"], "the latest backup: halve already reset"
    oldest = workspace.backups(repo)[-1]
    code, out, _ = katas(repo, capsys, "restore", oldest.name)
    assert code == 0 and learner(repo) == solved, "every file of the backup"
    code, out, _ = katas(repo, capsys, "restore", oldest.name)
    assert code == 0 and "nothing to put back" in out


def test_restore_says_what_is_wrong_with_what_it_was_given(repo, capsys):
    assert "No backups yet" in katas(repo, capsys, "restore")[1]
    katas(repo, capsys, "reset", "halve")
    code, _, err = katas(repo, capsys, "restore", "1999")
    assert code == cli.EXIT_USAGE and "no backup '1999'" in err
    code, _, err = katas(repo, capsys, "restore", "latest", "triple")
    assert code == cli.EXIT_USAGE and "defines a kata 'triple'" in err
    (repo / "katas" / TOPIC / "toy.py").write_text(learner(repo) + "\ndef broken(:\n")
    code, _, err = katas(repo, capsys, "restore", "latest", "halve")
    assert code == cli.EXIT_USAGE and "does not compile" in err and "katas/09_toy/toy.py" in err
