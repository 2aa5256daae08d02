"""Every oracle model the kata tests build breaks every symmetry (katakit.testing.assert_no_symmetries): no
parameter all zero, constant or the identity, no two tied, equal or each other's transposes. Such a
parameter is a blind spot: with a zero b_U a logit lens that forgets b_U passes, with W_U = W_E.T an
unembedding read from the embedding passes.

The models are built by the tests' own builders, imported from the test modules (never from reference/);
the learner's models among them are built with the implementation `--impl` names, and are skipped on
stubs that cannot build them yet.
"""

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from torch import nn

from katakit import impl as implementations
from katakit.testing import assert_no_symmetries, gpt2_from_hf, random_b_U, random_hf_gpt2, with_b_U

ROOT = Path(__file__).resolve().parents[1]


def kata_tests(topic: str, module: str) -> ModuleType:
    """The kata test module katas/<topic>/test_<module>.py."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module(f"katas.{topic}.test_{module}")


def implementation(request: pytest.FixtureRequest, topic: str, module: str) -> ModuleType:
    return implementations.load(request.config.option.impl, topic, module, ROOT)


def learner_model(build):
    """build(), skipped when it needs a kata the stubs have not implemented yet."""
    try:
        return build()
    except NotImplementedError:
        pytest.skip("the learner's model needs katas that are still stubs")


HF_ORACLES = {
    "06 tiny": ("06_transformer", "transformer", lambda sizes: sizes["tiny"]),
    "06 other": ("06_transformer", "transformer", lambda sizes: sizes["other"]),
    "08 activations": ("08_interpretability", "activations", lambda sizes: sizes),
    "08 attribution": ("08_interpretability", "attribution", lambda sizes: sizes),
    "08 bridge": ("08_interpretability", "bridge", lambda sizes: sizes),
}


@pytest.mark.parametrize("case", HF_ORACLES)
def test_random_hf_gpt2_of_every_test_module_breaks_every_symmetry(case):
    topic, module, sizes_of = HF_ORACLES[case]
    tests = kata_tests(topic, module)
    assert_no_symmetries(random_hf_gpt2(tests.SEED, **sizes_of(tests.HF_SIZES)), what=f"{case}'s random_hf_gpt2")


@pytest.mark.parametrize("module", ["activations", "attribution"])
def test_08s_learner_models_have_a_random_b_U(request, module):
    tests = kata_tests("08_interpretability", module)
    hf = random_hf_gpt2(tests.SEED, torch.float64, **tests.HF_SIZES)
    ours = learner_model(lambda: tests.ours_from(implementation(request, "08_interpretability", module), hf))
    assert_no_symmetries(ours, what=f"test_{module}'s GPT2 (converted from Hugging Face, b_U added)")


def test_the_converted_model_without_b_U_is_refused_by_name(request):
    """The guard itself: Hugging Face's GPT-2 has no b_U, so the converted model's is zero until a test adds one."""
    tests = kata_tests("08_interpretability", "attribution")
    hf = random_hf_gpt2(tests.SEED, torch.float64, **tests.HF_SIZES)
    transformer = implementation(request, "06_transformer", "transformer")
    ours = learner_model(lambda: gpt2_from_hf(transformer, hf, **tests.OUR_SIZES))
    with pytest.raises(AssertionError, match=r"unembed\.b_U is all zero"):
        assert_no_symmetries(ours, what="the converted GPT2")
    assert_no_symmetries(with_b_U(ours, random_b_U(tests.D_VOCAB, tests.SEED, torch.float64)), what="with b_U")


def test_08_bridges_learner_model_breaks_every_symmetry_but_b_U(request):
    """Hugging Face's format cannot hold b_U, so the model the bridge exports keeps a zero one (to_hf_state_dict
    refuses any other); every other parameter is random."""
    tests = kata_tests("08_interpretability", "bridge")
    hf = random_hf_gpt2(tests.SEED, **tests.HF_SIZES)
    ours = learner_model(lambda: tests.our_model(implementation(request, "08_interpretability", "bridge"), hf))
    parameters = {name: value for name, value in ours.named_parameters() if name != "unembed.b_U"}
    assert_no_symmetries(parameters, what="test_bridge's GPT2")


def test_08_circuits_heads_break_every_symmetry():
    tests = kata_tests("08_interpretability", "circuits")
    heads: nn.Module = tests.Heads(tests.HEADS0, tests.D_MODEL_C, tests.D_HEAD_C)
    assert_no_symmetries(heads, what="test_circuits' Heads")


def test_08_induction_small_model_breaks_every_symmetry(request):
    shared = importlib.import_module("katas.08_interpretability.conftest")  # the fixtures of 08's tests
    model = learner_model(lambda: shared.build_small_model(implementation(request, "08_interpretability", "induction")))
    assert_no_symmetries(model, what="08's small_model (katas/08_interpretability/conftest.py)")


def test_07s_test_doubles_break_every_symmetry():
    training, optimisers = kata_tests("07_training", "training"), kata_tests("07_training", "optimisers")
    assert_no_symmetries(training.TinyLM(), what="test_training's TinyLM")
    params = {f"param {i}": param for i, param in enumerate(optimisers.make_params())}
    assert_no_symmetries(params, what="test_optimisers' make_params")


def symmetric_cases() -> dict[str, tuple[dict[str, torch.Tensor], str]]:
    W_E = torch.randn(7, 5)
    return {
        "zero bias": ({"W": torch.randn(5, 3), "b": torch.zeros(3)}, "b is all zero"),
        "LayerNorm at 1": ({"w": torch.ones(5), "W": torch.randn(5, 3)}, "w holds one value everywhere"),
        "identity": ({"W": torch.eye(5), "b": torch.randn(5)}, "W is the identity"),
        "stack of identities": ({"W": torch.eye(3).repeat(2, 1, 1)}, "W is the identity"),
        "tied": ({"W_E": W_E, "W_U": W_E.T}, "W_E and W_U share storage"),
        "transposed copy": ({"W_E": W_E, "W_U": W_E.T.clone()}, "W_E equals W_U transposed"),
        "equal copy": ({"W_Q": W_E[:5].clone(), "W_K": W_E[:5].clone()}, "W_Q equals W_K"),
    }


@pytest.mark.parametrize("case", list(symmetric_cases()))
def test_every_kind_of_symmetry_is_refused_by_name(case):
    parameters, said = symmetric_cases()[case]
    with pytest.raises(AssertionError, match=said):
        assert_no_symmetries(parameters, what=case)


def test_08s_offline_check_refuses_loads_and_accepts_a_namespace():
    """test_circuits' check that pattern_html's page works offline, itself: a page that names the XHTML
    namespace loads nothing; a stylesheet, a script or a background image from the web does."""
    external_loads = kata_tests("08_interpretability", "circuits").external_loads
    fine = '<html xmlns="http://www.w3.org/1999/xhtml"><body><a href="#top">http://example.com</a></body></html>'
    assert external_loads(fine) == []
    for page in [
        '<link rel="stylesheet" href="style.css">',
        '<script src="https://cdn.example.com/d3.js"></script>',
        "<style>td { background: url(https://example.com/x.png) }</style>",
        "<style>@import 'theme.css';</style>",
        '<td style="background-image: url(x.png)"></td>',
    ]:
        assert external_loads(page), f"the offline check let {page!r} through"
