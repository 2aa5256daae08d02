"""The implementation switch and the fixtures every kata test shares.

    pytest katas/05_attention                   tests your code in katas/
    pytest --impl=reference katas/05_attention  runs the same tests against reference/
    KATAS_IMPL=reference pytest katas           the same, for tools that cannot pass options

A test file `katas/NN_topic/test_<module>.py` reaches the code under test only through the `impl`
fixture below, so nobody edits a test to switch, and no test imports `reference/`.
"""

import os

# Nothing downloads at test time: Hugging Face libraries stay offline even if a test asks for a hub model.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from katakit import impl as implementations  # noqa: E402

# Quiet, teaching output for the kata tests, `-k <kata>` and `--kata NAME`: see katakit/plugin.py.
pytest_plugins = ["katakit.plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        choices=implementations.IMPLEMENTATIONS,
        default=None,
        help="which code the kata tests run against: katas (your stubs, the default) or reference. "
        f"Default: ${implementations.ENV_VAR}, else katas.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.option.impl is None:
        try:
            config.option.impl = implementations.from_env()
        except implementations.UnknownImplementation as error:
            raise pytest.UsageError(str(error)) from None


def pytest_report_header(config: pytest.Config) -> str:
    return f"katas: testing the code in {config.option.impl}/ (switch with --impl=katas|reference)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    no_cuda = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_cuda)


@pytest.fixture(scope="module")
def impl(request: pytest.FixtureRequest):
    """The module under test: `katas/NN_topic/<module>.py`, or its twin in `reference/`.

    An error while importing it (a syntax error, a bad import, in this module or one it builds on)
    is marked, so that the plugin reports it once and each test of the module as blocked by it.
    """
    try:
        return implementations.module_under_test(request.path, request.config.option.impl)
    except Exception as error:
        from katakit.plugin import mark_blocking  # imported by pytest_plugins, after assertion rewriting is set up

        mark_blocking(error)
        raise


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Every test starts from the same random state; KATAS_SEED picks another one."""
    torch.manual_seed(int(os.environ.get("KATAS_SEED", "0")))
