"""The mechanisms that test a docstring's promises beyond values, each shown turning a deliberately
broken kata red: an input changed in place, requires_grad flipped, a gradient left behind, a
result left on the graph, a model's weight edited and restored, a hook left behind, a mode switched,
the caller's dict or config changed, a result that backward() cannot go through, a kata that works
only on contiguous tensors or at one rank, a forbidden call, a "written with einsum" kata that is
not, a branch or an argument no test reaches. (A wrong dtype: tests/test_testing.py, assert_close.)
"""

import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from jaxtyping import Float
from torch import Tensor, nn

from katakit import detached, differentiable, in_place, kata, promises
from katakit.testing import ForbiddenCall, calls, forbid


@kata
def doubled_in_place(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    x *= 2  # the mistake: the caller's tensor changes
    return x


@kata
def doubled_through_data(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    x.data.mul_(2)  # the same mistake, past autograd's version counter
    return x * 1


@kata
def made_differentiable(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    return x.requires_grad_()  # the mistake: flips the caller's requires_grad


@kata
def gradient_of_square(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    (x**2).sum().backward()  # the mistake: leaves .grad on the caller's tensor
    return 2 * x.detach()


@kata
@in_place("x")
def doubled_as_documented(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    return x.mul_(2)


@kata
@detached
def attached_result(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    return x * 2  # the mistake for a detached kata: x requires grad, so does this


@kata
def harmless(x: Float[Tensor, "n"], scale: float = 1.0, tensors: list | None = None) -> Float[Tensor, "n"]:
    return x * scale


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        (doubled_in_place, "doubled_in_place changed its input `x` in place"),
        (doubled_through_data, "doubled_through_data changed its input `x` in place"),
        (made_differentiable, "switched `requires_grad` of its input `x` from False to True"),
    ],
    ids=["in place", "through .data", "requires_grad"],
)
def test_a_kata_that_changes_its_input_is_red(broken, said):
    x = torch.arange(3.0)
    with promises.checking(), pytest.raises(AssertionError, match=said):
        broken(x)


def test_a_kata_that_leaves_a_gradient_on_its_input_is_red():
    x = torch.arange(3.0, requires_grad=True)
    with promises.checking(), pytest.raises(AssertionError, match=r"left a gradient in `x.grad`"):
        gradient_of_square(x)


def test_a_tensor_in_a_list_argument_is_watched_too():
    @kata
    def zero_the_first(tensors: list) -> Float[Tensor, "n"]:
        tensors[0].zero_()
        return tensors[1]

    with promises.checking(), pytest.raises(AssertionError, match=r"its input `tensors\[0\]`"):
        zero_the_first([torch.ones(2), torch.ones(2)])


def test_a_kata_declared_in_place_may_change_that_input():
    x = torch.arange(3.0)
    with promises.checking():
        doubled_as_documented(x)
    assert x.tolist() == [0.0, 2.0, 4.0]


def test_a_detached_kata_returning_a_tensor_on_the_graph_is_red():
    with promises.checking(), pytest.raises(AssertionError, match="still attached to the autograd graph"):
        attached_result(torch.ones(2, requires_grad=True))


def test_nothing_is_checked_outside_a_kata_test_and_nan_is_not_a_change():
    doubled_in_place(torch.arange(3.0))  # no checking(): a benchmark or a learner's own script
    with promises.checking():
        harmless(torch.tensor([float("nan"), 1.0]))


def test_the_plugin_checks_promises_in_kata_tests(tmp_path: Path):
    """Through pytest, as a learner runs it: a kata test of an input-changing kata fails with the message."""
    test = tmp_path / "test_promise.py"
    test.write_text(
        textwrap.dedent(
            """
            import pytest, torch
            from jaxtyping import Float
            from torch import Tensor
            from katakit import kata

            @kata
            def doubled(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
                x *= 2
                return x

            @pytest.mark.kata("doubled")
            def test_doubled():
                assert doubled(torch.ones(2)).tolist() == [2.0, 2.0]

            def test_not_a_kata_test():
                doubled(torch.ones(2))
            """
        )
    )
    command = [sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider", f"--rootdir={tmp_path}"]
    command += ["-p", "katakit.plugin"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert "1 failed, 1 passed" in result.stdout, result.stdout
    assert "doubled changed its input `x` in place" in result.stdout


def test_arguments_given_another_value_than_their_default_are_recorded():
    used: dict[str, set[str]] = {}
    with promises.recording(used):
        harmless(torch.ones(2))
        harmless(torch.ones(2), 1.0)
        harmless(torch.ones(2), tensors=[torch.ones(1)])
    assert used == {f"{__name__}:harmless": {"tensors"}}, "scale was only ever its default"
    with promises.recording(used):
        harmless(torch.ones(2), scale=2)
    assert used[f"{__name__}:harmless"] == {"scale", "tensors"}


# --- every kind of argument, backward safety, transformed inputs -----------------------------------


class Head(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W_O = nn.Parameter(torch.randn(3, 2))
        self.register_buffer("scale", torch.ones(2))


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Head(), Head()])


@kata
def ablated_sum(model: nn.Module, x: Float[Tensor, "n 3"]) -> Float[Tensor, ""]:
    W_O = model.get_parameter("blocks.0.W_O")
    saved = W_O.detach().clone()
    with torch.no_grad():
        W_O.zero_()  # the mistake: the caller's weight is zero during the call...
    out = (x @ W_O).sum()
    with torch.no_grad():
        W_O.copy_(saved)  # ...although it is back when the call returns
    return out


@kata
def hooked_sum(model: nn.Module, x: Float[Tensor, "n 3"]) -> Float[Tensor, ""]:
    model.get_submodule("blocks.1").register_forward_hook(lambda module, args, output: None)  # the mistake: kept
    return (x @ model.get_parameter("blocks.1.W_O")).sum()


@kata
def evaluated_sum(model: nn.Module, x: Float[Tensor, "n 3"]) -> Float[Tensor, ""]:
    model.eval()  # the mistake: the caller's model stays in eval mode
    return (x @ model.get_parameter("blocks.0.W_O")).sum()


@kata
def named_hooks(hooks: dict[str, Callable]) -> list[str]:
    hooks.pop("blocks.0.hook_z")  # the mistake: the caller's dict loses an entry
    return sorted(hooks)


@dataclass
class Config:
    d_model: int = 4
    d_vocab: int = 5


@kata
def vocabulary_size(cfg: Config) -> int:
    cfg.d_vocab = cfg.d_vocab + 1  # the mistake: sets a field of the caller's config
    return cfg.d_vocab


def test_a_module_weight_edited_and_restored_is_red():
    x = torch.randn(5, 3)
    with (
        promises.checking(),
        pytest.raises(
            AssertionError, match=r"ablated_sum changed `model.blocks.0.W_O` during the call \(in place, even"
        ),
    ):
        ablated_sum(Model(), x)


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        (hooked_sum, r"hooked_sum left 1 forward hook on `model.blocks.1`"),
        (evaluated_sum, r"evaluated_sum left `model` in eval mode \(it was in training mode\)"),
    ],
    ids=["hook left behind", "eval mode"],
)
def test_a_kata_that_leaves_the_model_changed_is_red(broken, said):
    with promises.checking(), pytest.raises(AssertionError, match=said):
        broken(Model(), torch.randn(5, 3))


def test_a_kata_that_pops_the_callers_dict_is_red():
    hooks = {"blocks.0.hook_z": abs, "hook_embed": abs}
    with (
        promises.checking(),
        pytest.raises(AssertionError, match=r"changed the caller's `hooks`: removed 'blocks.0.hook_z'"),
    ):
        named_hooks(hooks)


@kata
def resized(hf_config: Any) -> int:
    hf_config.vocab_size = 7  # the mistake, on a Hugging Face GPT2Config
    return 7


def test_a_kata_that_changes_the_callers_config_is_red():
    with (
        promises.checking(),
        pytest.raises(AssertionError, match=r"vocabulary_size changed the caller's `cfg`: d_vocab"),
    ):
        vocabulary_size(Config())
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.GPT2Config(n_embd=8, n_head=2, n_layer=1, vocab_size=5)
    with (
        promises.checking(),
        pytest.raises(AssertionError, match=r"resized changed the caller's `hf_config`: vocab_size"),
    ):
        resized(hf_config)


class ResidualBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.randn(3, 3))

    @kata
    def forward(self, x: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        h = torch.tanh(x @ self.W)
        h += x  # the mistake: tanh saved h for backward, which this changes
        return h


def test_an_in_place_residual_that_breaks_backward_is_red():
    with (
        promises.checking(),
        pytest.raises(
            AssertionError, match=r"ResidualBlock.forward's result cannot be differentiated.*x = x \+ \.\.\."
        ),
    ):
        ResidualBlock()(torch.randn(5, 3))


@kata
@differentiable
def detached_loss(logits: Float[Tensor, "n k"]) -> Float[Tensor, ""]:
    return torch.tensor(logits.logsumexp(-1).mean().item())  # the mistake: leaves the graph


def test_a_differentiable_kata_called_without_gradients_is_still_differentiated():
    with promises.checking(), pytest.raises(AssertionError, match=r"detached_loss's result is not attached"):
        detached_loss(torch.randn(5, 3))


@kata
def total_by_view(x: Float[Tensor, "m n"]) -> Float[Tensor, "m"]:
    return x.view(-1).view(x.shape[0], -1).sum(-1)  # the mistake: .view needs contiguous memory


@kata
def softmax_of_rows(x: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch n"]:
    return x.exp() / x.exp().sum(dim=1, keepdim=True)  # the mistake: axis 1 is the last only at rank 2


@kata
def rows_normalised(x: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch n"]:
    return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        (total_by_view, r"total_by_view gives another answer when `x` is not contiguous.*`.view` needs contiguous"),
        (
            softmax_of_rows,
            r"softmax_of_rows gives another answer when `x` has one more leading \(batch\) axis.*`\*batch n` allows",
        ),
    ],
    ids=["contiguous only", "one rank only"],
)
def test_a_kata_that_fails_on_transformed_inputs_is_red(broken, said):
    with promises.checking(), pytest.raises(AssertionError, match=said):
        broken(torch.randn(3, 5))


def test_transformed_inputs_keep_the_global_random_state():
    @kata
    def noisy(x: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch n"]:
        return x + torch.rand(()).expand(x.shape[-1])

    torch.manual_seed(0)
    with promises.checking():
        first = noisy(torch.zeros(3, 5))  # called again non-contiguous: the same draw
    after_checked = torch.rand(())
    torch.manual_seed(0)
    assert torch.equal(noisy(torch.zeros(3, 5)), first)
    assert torch.equal(torch.rand(()), after_checked), "the checker's calls left the global RNG elsewhere"


class Counter:
    def __init__(self) -> None:
        self.count = 0

    @kata
    def step(self, x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
        self.count += 1  # an object's own method changes it by design
        return x * self.count


@kata
def first_head_sum(model: nn.Module, x: Float[Tensor, "n 3"]) -> Float[Tensor, ""]:
    return (x @ model.get_parameter("blocks.0.W_O")).sum()


def test_correct_katas_stay_green_on_inference_tensors_and_models():
    with torch.inference_mode():
        x, model = torch.randn(4, 3), Model()
    with promises.checking():
        rows_normalised(x)
        rows_normalised(torch.randn(2, 4, 3))
        harmless(x[0])
        first_head_sum(model, x)
        Counter().step(x[0])


# --- forbidden calls and AST call checks -----------------------------------------------------------


@kata
def singular_values_by_svd(a: Float[Tensor, "m n"]) -> Float[Tensor, "k"]:
    return torch.linalg.svd(a).S


@kata
def singular_values_by_method(a: Float[Tensor, "m n"]) -> Float[Tensor, "k"]:
    return a.svd().S


@kata
def gradient_by_autograd(x: Float[Tensor, "n"]) -> Float[Tensor, "n"]:
    y = x.detach().clone().requires_grad_()
    (y**2).sum().backward()
    return y.grad if y.grad is not None else torch.zeros_like(x)


@pytest.mark.parametrize("broken", [singular_values_by_svd, singular_values_by_method], ids=["function", "method"])
def test_a_forbidden_call_is_red_and_named(broken):
    a = torch.randn(3, 2)
    expected = torch.linalg.svdvals(a)  # oracles before the block
    said = r"called torch\.(linalg|Tensor)\.svd.*build it from torch.linalg.eigh"
    with (
        forbid(torch.linalg.svd, torch.Tensor.svd, reason="build it from torch.linalg.eigh"),
        pytest.raises(ForbiddenCall, match=said),
    ):
        broken(a)
    torch.testing.assert_close(broken(a), expected)  # the real functions are back after the block
    assert "svd" not in vars(torch.Tensor), "a method of Tensor's C base is shadowed, then the shadow removed"


def test_backward_can_be_forbidden():
    with (
        forbid(torch.Tensor.backward, torch.autograd.grad, reason="work the gradient out by hand"),
        pytest.raises(ForbiddenCall, match="torch.Tensor.backward"),
    ):
        gradient_by_autograd(torch.ones(2))
    assert gradient_by_autograd(torch.ones(2)).tolist() == [2.0, 2.0], "backward works again after the block"


def test_calls_reads_the_source_nested_code_included():
    def contraction(a, b):
        pairs = [torch.einsum("i,i->", x, y) for x, y in zip(a, b, strict=True)]
        return torch.stack(pairs), (lambda t: t.sum())(a)

    def without(a):
        return (a * a).sum(-1)

    assert {"torch.einsum", "torch.stack", "t.sum", "zip"} <= calls(contraction)
    assert not any(name.endswith("einsum") for name in calls(without))


# --- the branch gate -------------------------------------------------------------------------------

GATED = '''"""A topic for the branch gate."""

from katakit import kata


@kata
def clipped(x: float, limit: float = 1.0) -> float:
    """Clip x to [-limit, limit]."""
    if x > limit:
        return limit
    if x < -limit:
        return -limit
    return x
'''
GATED_TEST = """import pytest


@pytest.mark.kata("clipped")
def test_clipped(impl):
    assert impl.clipped(2.0) == 1.0
    assert impl.clipped(0.5) == 0.5
"""


def test_the_branch_gate_names_a_branch_and_an_argument_no_test_reaches(toy_repository, tmp_path: Path):
    gated = toy_repository.Topic("01_gated", "gated", reference=GATED, tests=GATED_TEST)
    toy_repository(tmp_path, [gated], with_katakit=False)
    command = [sys.executable, "-m", "katakit.maintain", "branches", "--root", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = GATED.splitlines()
    negative = next(n for n, line in enumerate(lines, 1) if "x < -limit" in line)
    assert f"reference/01_gated/gated.py:{negative + 1}: clipped: this line never runs" in result.stdout
    assert f"reference/01_gated/gated.py:{negative}: clipped: the branch to line {negative + 1}" in result.stdout
    assert "clipped: argument `limit` is never given another value than its default" in result.stdout


# --- oracles that break every symmetry -------------------------------------------------------------


class ConvertedFromHuggingFace(torch.nn.Module):
    """A model's unembedding as topic 06 converts it from Hugging Face's GPT-2: a W_U, and a b_U of zeros
    (Hugging Face's GPT-2 has none)."""

    def __init__(self, d_model: int = 5, d_vocab: int = 7):
        super().__init__()
        self.unembed = torch.nn.Module()
        self.unembed.W_U = torch.nn.Parameter(torch.randn(d_model, d_vocab))
        self.unembed.b_U = torch.nn.Parameter(torch.zeros(d_vocab))


@kata
def logits_forgetting_b_U(resid: Float[Tensor, "pos d_model"], model: torch.nn.Module) -> Float[Tensor, "pos d_vocab"]:
    return resid @ model.get_parameter("unembed.W_U")  # the mistake: + b_U forgotten


def test_a_forgotten_b_U_passes_a_zero_b_U_and_the_symmetry_check_refuses_that_oracle():
    from katakit.testing import assert_close, assert_no_symmetries, random_b_U, with_b_U

    model, resid = ConvertedFromHuggingFace(), torch.randn(3, 5)

    def check() -> None:
        expected = resid @ model.unembed.W_U.detach() + model.unembed.b_U.detach()  # by hand, b_U included
        assert_close(logits_forgetting_b_U(resid, model), expected, what="the logits", hint="b_U forgotten?")

    check()  # the blind spot: with b_U = 0 the mistake is green
    with pytest.raises(AssertionError, match=r"unembed\.b_U is all zero"):
        assert_no_symmetries(model, what="the oracle")
    with_b_U(model, random_b_U(7, seed=0))
    assert_no_symmetries(model, what="the oracle with a random b_U")
    with pytest.raises(AssertionError, match=r"(?s)the logits is wrong.*b_U forgotten"):
        check()


# --- the RNG contract (katakit.randomness; every broken kind: tests/test_randomness.py) -------------

RNG_PROBS = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])


@kata
def sample_top_k(
    probs: Float[Tensor, "batch k"], top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if top_k is not None:
        probs = probs.masked_fill(probs < probs.topk(top_k, dim=-1).values[:, -1:], 0.0)
    return torch.multinomial(probs, 12, replacement=True, generator=generator)


@kata
def sample_top_k_with_none_fixed(
    probs: Float[Tensor, "batch k"], top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if generator is None:
        generator = torch.Generator()  # the mistake: None should mean torch's global random state
    return sample_top_k(probs, top_k, generator)


@kata
def sample_top_k_forgetting_the_generator(
    probs: Float[Tensor, "batch k"], top_k: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    if top_k is not None:
        kept = probs.masked_fill(probs < probs.topk(top_k, dim=-1).values[:, -1:], 0.0)
        return torch.multinomial(kept, 12, replacement=True)  # the mistake: this branch drops the generator
    return torch.multinomial(probs, 12, replacement=True, generator=generator)


@pytest.mark.parametrize(
    ("sampler", "said"),
    [
        (sample_top_k, None),
        (
            sample_top_k_with_none_fixed,
            r"sample_top_k_with_none_fixed \(top_k=None\) gives the same result under two different global seeds "
            r"with generator=None: `None` must mean torch's global RNG",
        ),
        (
            sample_top_k_forgetting_the_generator,
            r"sample_top_k_forgetting_the_generator \(top_k=2\) changed torch's global random state although a "
            r"generator was given: .* \(this branch does not\)",
        ),
    ],
    ids=["correct", "None made a fixed generator", "a branch without the generator"],
)
def test_the_rng_contract_names_a_fixed_generator_for_none_and_a_branch_without_the_generator(sampler, said):
    from katakit.randomness import check_rng_contract

    def check() -> None:
        branches = {
            "top_k=None": lambda generator: sampler(RNG_PROBS, generator=generator),
            "top_k=2": lambda generator: sampler(RNG_PROBS, top_k=2, generator=generator),
        }
        check_rng_contract(branches, what=sampler.__name__, global_rng=True, sampler="torch.multinomial")

    with promises.checking():
        if said is None:
            check()
        else:
            with pytest.raises(AssertionError, match=said):
                check()
