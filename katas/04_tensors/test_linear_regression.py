"""Tests for katas/04_tensors/linear_regression.py: closed forms against torch.linalg, training against the truth."""

import pytest
import torch
import torch.nn.functional as F

from katakit.testing import assert_close, calls, forbid

N, D_IN, D_OUT = 256, 3, 2
NOISE = 0.1
# Least-squares weights from N examples with standard-normal inputs miss the true ones by about
# NOISE / sqrt(N) per coefficient; 6 of those is a bound no seed should cross.
TRAINING_TOLERANCE = 6 * NOISE / N**0.5
# The closed forms are fitted on inputs away from the origin, where forgetting the bias column shows.
OFFSET = 2.0


def synthetic_data(dtype: torch.dtype = torch.float32, noise: float = NOISE, offset: float = 0.0):
    """x (standard normal, plus `offset`), true W and b, and y = x W^T + b + noise."""
    x = torch.randn(N, D_IN, dtype=dtype) + offset
    true_weight = torch.randn(D_OUT, D_IN, dtype=dtype)
    true_bias = torch.tensor([1.5, -0.7], dtype=dtype)
    y = x @ true_weight.T + true_bias + noise * torch.randn(N, D_OUT, dtype=dtype)
    return x, y, true_weight, true_bias


def lstsq_oracle(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) from the pseudo-inverse of [x, 1]."""
    coefficients = torch.linalg.pinv(torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)) @ y
    return coefficients[:-1].T, coefficients[-1]


@pytest.mark.kata("least_squares_normal_equations")
def test_normal_equations_match_the_pseudo_inverse(impl):
    x, y, _, _ = synthetic_data(torch.float64, offset=OFFSET)
    expected_weight, expected_bias = lstsq_oracle(x, y)
    shortcuts = (torch.linalg.lstsq, torch.linalg.pinv, torch.pinverse, torch.linalg.inv, torch.linalg.inv_ex)
    with forbid(
        *shortcuts,
        torch.inverse,
        torch.Tensor.inverse,
        torch.Tensor.pinverse,
        reason="solve the normal equations (X^T X) B = X^T y with a linear solver (torch.linalg.solve), "
        "without an explicit inverse, lstsq or pinv",
    ):
        weight, bias = impl.least_squares_normal_equations(x, y)
    hint = "append a column of ones to x for the bias; W is [d_out, d_in], the transpose of the solution's top rows"
    assert_close(weight, expected_weight, what="W", hint=hint)
    assert_close(bias, expected_bias, what="b", hint="the bias is the last coefficient")


@pytest.mark.kata("least_squares_normal_equations")
def test_normal_equations_recover_noise_free_weights(impl):
    x, y, true_weight, true_bias = synthetic_data(torch.float64, noise=0.0, offset=OFFSET)
    weight, bias = impl.least_squares_normal_equations(x, y)
    assert_close(weight, true_weight, what="W fitted on noise-free data")
    assert_close(bias, true_bias, what="b fitted on noise-free data")


@pytest.mark.kata("least_squares_lstsq")
def test_lstsq_matches_the_pseudo_inverse(impl):
    x, y, _, _ = synthetic_data(torch.float64, offset=OFFSET)
    weight, bias = impl.least_squares_lstsq(x, y)
    expected_weight, expected_bias = lstsq_oracle(x, y)
    hint = "lstsq([x, 1], y).solution holds [W^T; b]: append the column of ones and transpose the weights"
    assert_close(weight, expected_weight, what="W", hint=hint)
    assert_close(bias, expected_bias, what="b", hint=hint)


@pytest.mark.kata("least_squares_lstsq")
def test_lstsq_is_written_with_lstsq(impl):
    x, y, _, _ = synthetic_data(torch.float64, offset=OFFSET)
    impl.least_squares_lstsq(x, y)  # first make it work: an unwritten kata fails here, with NotImplementedError
    called = sorted(calls(impl.least_squares_lstsq))
    assert any(call.split(".")[-1] == "lstsq" for call in called), (
        f"least_squares_lstsq does not call torch.linalg.lstsq (it calls {', '.join(called)}): this kata is about "
        "lstsq, the normal equations were the previous one"
    )


@pytest.mark.kata("least_squares_lstsq")
def test_lstsq_stays_accurate_on_nearly_collinear_inputs(impl):
    x, _, true_weight, true_bias = synthetic_data(torch.float64, offset=OFFSET)
    x[:, 1] = x[:, 0] + 1e-6 * torch.randn(N, dtype=torch.float64)  # two columns equal to about 6 digits
    y = x @ true_weight.T + true_bias  # noise-free: the exact coefficients are the true ones
    weight, bias = impl.least_squares_lstsq(x, y)
    # [x, 1] has a condition number about 5e6: a backward-stable solver (QR) loses cond * eps, about 1e-9,
    # while the normal equations, at cond**2 * eps, miss by about 1e-2. 1e-6 lies between, far from both.
    hint = "solve with torch.linalg.lstsq on [x, 1] itself; forming X^T X (the normal equations) squares the condition"
    assert_close(weight, true_weight, what="W fitted on nearly collinear inputs", hint=hint, atol=1e-6, rtol=0)
    assert_close(bias, true_bias, what="b fitted on nearly collinear inputs", hint=hint, atol=1e-6, rtol=0)


@pytest.mark.kata("least_squares_lstsq")
def test_lstsq_residual_is_orthogonal_to_the_inputs(impl):
    x, y, _, _ = synthetic_data(torch.float64, offset=OFFSET)
    weight, bias = impl.least_squares_lstsq(x, y)
    residual = y - (x @ weight.T + bias)
    assert_close(
        residual.sum(0),
        torch.zeros(D_OUT, dtype=torch.float64),
        what="the residuals summed over the examples (zero when the bias is fitted)",
        atol=1e-8,
        rtol=0,
    )
    assert_close(
        x.T @ residual,
        torch.zeros(D_IN, D_OUT, dtype=torch.float64),
        what="x^T (y - prediction) (zero: least squares leaves a residual orthogonal to every input column)",
        atol=1e-8,
        rtol=0,
    )


@pytest.mark.kata("LinearModel")
def test_linear_model_forward_matches_functional_linear(impl):
    model = impl.LinearModel(D_IN, D_OUT)
    x = torch.randn(5, D_IN)
    assert_close(
        model(x),
        F.linear(x, model.weight, model.bias),
        what="the model's output",
        hint="x @ weight.T + bias: weight is [d_out, d_in], and the bias must be added",
    )


@pytest.mark.kata("LinearModel")
def test_linear_model_output_has_gradients_for_both_parameters(impl):
    model = impl.LinearModel(D_IN, D_OUT)
    model(torch.randn(5, D_IN)).sum().backward()
    assert model.weight.grad is not None and model.bias.grad is not None, (
        "forward should compute from self.weight and self.bias, so both receive gradients"
    )


@pytest.mark.kata("default_device")
def test_default_device_is_cuda_when_available(impl):
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = impl.default_device()
    assert isinstance(device, torch.device), f"return a torch.device, not {type(device).__name__} {device!r}"
    assert device == expected, f"default_device() returned {device}, expected {expected} on this machine"


@pytest.mark.kata("default_device")
@pytest.mark.parametrize("available", [True, False], ids=["cuda-available", "no-cuda"])
def test_default_device_follows_what_torch_cuda_says(impl, monkeypatch, available):
    # Whatever this machine has, both answers are tried: torch.cuda is told to say `available`.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: int(available))
    device = impl.default_device()
    expected = "cuda" if available else "cpu"
    assert isinstance(device, torch.device) and device.type == expected, (
        f"with CUDA {'available' if available else 'unavailable'}, default_device() returned {device!r}, "
        f"expected torch.device({expected!r}): ask torch.cuda.is_available() each time"
    )


@pytest.mark.kata("train_linear_model")
def test_training_recovers_the_true_weights(impl):
    x, y, true_weight, true_bias = synthetic_data()
    model = impl.train_linear_model(x, y, device=torch.device("cpu"))
    assert isinstance(model, impl.LinearModel), (
        f"return the trained LinearModel (the class of this module), not a {type(model).__name__}"
    )
    hint = (
        "take exactly `steps` SGD steps on F.mse_loss over all the data, calling optimizer.zero_grad() each step "
        "(otherwise the gradients pile up and descent oscillates instead of converging)"
    )
    tolerance = {"atol": TRAINING_TOLERANCE, "rtol": 0}
    assert_close(model.weight.detach(), true_weight, what="the trained weight", hint=hint, **tolerance)
    assert_close(model.bias.detach(), true_bias, what="the trained bias", hint=hint, **tolerance)


@pytest.mark.kata("train_linear_model")
def test_training_takes_steps_sgd_steps_of_size_lr_on_the_mean_squared_error(impl):
    steps, lr = 5, 0.05  # not the defaults (100, 0.1), and far from convergence: each step still counts
    x, y, _, _ = synthetic_data()
    rng = torch.get_rng_state()
    start = impl.LinearModel(D_IN, D_OUT)  # the parameters the kata starts from, drawn from the same seed
    torch.set_rng_state(rng)
    model = impl.train_linear_model(x, y, steps=steps, lr=lr, device=torch.device("cpu"))
    # Gradient descent by hand, in float64: loss = mean over the N * D_OUT entries of (x W^T + b - y)^2.
    weight, bias = start.weight.detach().double(), start.bias.detach().double()
    x64, y64 = x.double(), y.double()
    for _ in range(steps):
        error = x64 @ weight.T + bias - y64
        weight = weight - lr * 2 * error.T @ x64 / error.numel()
        bias = bias - lr * 2 * error.sum(0) / error.numel()
    # One step more or less, another lr, momentum or a summed loss each move W by about lr = 0.05; float32
    # training differs from this float64 one by about 1e-6.
    hint = (
        f"start from LinearModel(d_in, d_out) and take exactly steps={steps} steps of plain torch.optim.SGD with "
        f"lr={lr} (the arguments, not the defaults) on F.mse_loss (the mean), clearing the gradients every step"
    )
    assert_close(model.weight.detach(), weight.float(), what="W after 5 steps", hint=hint, atol=1e-4, rtol=0)
    assert_close(model.bias.detach(), bias.float(), what="b after 5 steps", hint=hint, atol=1e-4, rtol=0)


@pytest.mark.kata("train_linear_model")
def test_training_happens_on_the_device_given(impl, monkeypatch):
    # default_device() is made to answer "meta": a kata that ignores its `device` argument ends up there.
    monkeypatch.setattr(impl, "default_device", lambda: torch.device("meta"))
    x, y, _, _ = synthetic_data()
    advice = "use the `device` argument, and default_device() only when it is None"
    try:
        model = impl.train_linear_model(x, y, steps=2, device=torch.device("cpu"))
    except RuntimeError as error:  # training on meta tensors stops at the first value it needs
        if isinstance(error, NotImplementedError) or "meta" not in str(error):
            raise
        raise AssertionError(
            f"asked to train on the cpu, the kata trained on default_device()'s device: {advice}"
        ) from error
    assert model.weight.device.type == "cpu" and model.bias.device.type == "cpu", (
        f"asked to train on the cpu, the model is on {model.weight.device}: {advice}"
    )


@pytest.mark.kata("train_linear_model")
def test_training_uses_the_default_device_when_none_is_given(impl):
    x, y, true_weight, _ = synthetic_data()
    model = impl.train_linear_model(x, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert model.weight.device.type == expected, f"the model is on {model.weight.device}, expected {expected}"
    assert_close(
        model.weight.detach().cpu(),
        true_weight,
        what="the trained weight",
        atol=TRAINING_TOLERANCE,
        rtol=0,
    )


@pytest.mark.gpu
@pytest.mark.kata("train_linear_model")
def test_training_on_cuda_returns_a_model_on_cuda(impl):
    x, y, true_weight, true_bias = synthetic_data()  # on the CPU: the kata moves them
    model = impl.train_linear_model(x, y, device=torch.device("cuda"))
    assert model.weight.device.type == "cuda" and model.bias.device.type == "cuda", (
        f"the model is on {model.weight.device}: move it to the device with .to(device)"
    )
    tolerance = {"atol": TRAINING_TOLERANCE, "rtol": 0}
    assert_close(model.weight.detach().cpu(), true_weight, what="the weight trained on CUDA", **tolerance)
    assert_close(model.bias.detach().cpu(), true_bias, what="the bias trained on CUDA", **tolerance)
