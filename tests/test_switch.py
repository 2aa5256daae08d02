"""The implementation switch: --impl and KATAS_IMPL pick the side, bad values are usage errors,
and a topic that builds on an earlier one imports it from the same side."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from katakit import impl

ROOT = Path(__file__).resolve().parents[1]
KATA_TEST = "katas/01_linear_algebra/test_linear_algebra.py"


def run_pytest(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.delenv(impl.ENV_VAR, raising=False)
    return dict(os.environ)


def test_an_unknown_impl_option_is_a_usage_error(clean_env):
    result = run_pytest("--impl=foo", KATA_TEST, env=clean_env)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "invalid choice: 'foo'" in result.stderr and "reference" in result.stderr


def test_an_unknown_env_value_is_a_usage_error(clean_env):
    result = run_pytest(KATA_TEST, env={**clean_env, impl.ENV_VAR: "solutions"})
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "KATAS_IMPL='solutions'" in result.stderr


def test_the_env_variable_selects_the_reference(clean_env):
    result = run_pytest(KATA_TEST, env={**clean_env, impl.ENV_VAR: "reference"})
    assert result.returncode == pytest.ExitCode.OK, result.stdout


def test_the_default_is_the_learners_stubs(clean_env):
    result = run_pytest(KATA_TEST, env=clean_env)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED
    assert "NotImplementedError" in result.stdout


@pytest.mark.parametrize("side", impl.IMPLEMENTATIONS)
def test_a_later_topic_builds_on_the_earlier_one_from_the_same_side(side):
    transformer = impl.load(side, "06_transformer", "transformer", ROOT)
    assert transformer.Attention.__mro__[1].__module__ == f"{side}.05_attention.attention"


def test_plain_pytest_in_the_root_runs_the_kata_tests_only(clean_env):
    """A learner's `pytest` never runs the project's own tests (whose contract check would ask for
    the stubs to be regenerated): testpaths is katas/."""
    result = run_pytest("--collect-only", env=clean_env)
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert collected and all(line.startswith("katas/") for line in collected), result.stdout[-2000:]
