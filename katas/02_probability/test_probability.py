"""Tests for katas/02_probability/probability.py.

Statistical tests draw from the seeded generator (KATAS_SEED) and derive their tolerance from the
sample size: 5 standard errors, or the Dvoretzky-Kiefer-Wolfowitz bound at a 1e-6 false alarm
rate for distances between CDFs, so they pass for any seed.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Binomial, Categorical, Dirichlet, Exponential, Normal

from katakit.testing import ForbiddenCall, assert_close, forbid

F64 = torch.float64


def ks_distance(samples: torch.Tensor, cdf) -> float:
    """The Kolmogorov-Smirnov distance between the empirical CDF of `samples` and `cdf`."""
    ordered, _ = torch.sort(samples)
    n = ordered.numel()
    model = cdf(ordered)
    steps = torch.arange(1, n + 1, dtype=model.dtype) / n
    return max((steps - model).max().item(), (model - (steps - 1 / n)).max().item())


def dkw_bound(n: int, false_alarm: float = 1e-6) -> float:
    """A KS distance the true distribution exceeds with probability at most `false_alarm` (DKW inequality)."""
    return math.sqrt(math.log(2 / false_alarm) / (2 * n))


def binomial_pmfs(trials: int, success_probs: list[float]) -> tuple[torch.Tensor, torch.Tensor, Binomial]:
    values = torch.arange(trials + 1, dtype=F64)
    binomial = Binomial(trials, torch.tensor(success_probs, dtype=F64).unsqueeze(-1))
    return values, binomial.log_prob(values).exp(), binomial


# Expectation and variance of a discrete random variable


@pytest.mark.kata("discrete_mean")
def test_discrete_mean_of_binomials(impl):
    values, probs, binomial = binomial_pmfs(6, [0.1, 0.35, 0.8])
    assert_close(
        impl.discrete_mean(values, probs),
        binomial.mean.squeeze(-1),
        what="E[X] of Binomial(6, p)",
        hint="averaging the values without weighting them by their probabilities?",
    )


@pytest.mark.kata("discrete_mean")
def test_discrete_mean_of_random_pmfs(impl):
    values, probs = torch.randn(5, dtype=F64), torch.randn(3, 5, dtype=F64).softmax(dim=-1)
    expected = torch.stack([sum(p * v for p, v in zip(row, values, strict=True)) for row in probs])
    assert_close(
        impl.discrete_mean(values, probs),
        expected,
        what="E[X]",
        hint="sum_j p_j x_j, one per row: the values x_j, not their indices j",
    )


@pytest.mark.kata("discrete_variance")
def test_discrete_variance_ignores_shifts_and_scales_quadratically(impl):
    values, probs = torch.randn(5, dtype=F64), torch.randn(3, 5, dtype=F64).softmax(dim=-1)
    variance = impl.discrete_variance(values, probs)
    assert_close(
        impl.discrete_variance(values + 3.0, probs),
        variance,
        what="Var[X + 3]",
        hint="shifting X moves its mean too: subtract the mean before squaring",
    )
    assert_close(
        impl.discrete_variance(-2.0 * values, probs),
        4.0 * variance,
        what="Var[-2 X]",
        hint="the variance scales with the square of the factor: square the deviations",
    )


@pytest.mark.kata("discrete_variance")
def test_discrete_variance_of_binomials(impl):
    values, probs, binomial = binomial_pmfs(6, [0.1, 0.35, 0.8])
    assert_close(
        impl.discrete_variance(values, probs),
        binomial.variance.squeeze(-1),
        what="Var[X] of Binomial(6, p), n p (1 - p)",
        hint="an unweighted average of the squared deviations, or a division by k - 1? Weight each squared deviation "
        "by its probability, and divide by nothing",
    )


# Sample statistics


@pytest.mark.kata("sample_mean")
def test_sample_mean_of_each_row(impl):
    x = torch.randn(3, 7, dtype=F64)
    assert_close(
        impl.sample_mean(x),
        x.mean(dim=-1),
        what="the row means",
        hint="dividing by the batch size instead of n, the number of observations in a row?",
    )


@pytest.mark.kata("sample_variance")
def test_sample_variance_of_two_points(impl):
    x = torch.tensor([[0.0, 2.0], [1.0, 1.0], [-1.0, 3.0]], dtype=F64)
    assert_close(
        impl.sample_variance(x),
        torch.tensor([2.0, 0.0, 8.0], dtype=F64),
        what="the sample variance of {0, 2}, {1, 1} and {-1, 3}",
        hint="the squared deviations of {0, 2} sum to 2, and n - 1 = 1: dividing by n gives 1 instead of 2",
    )


@pytest.mark.kata("sample_variance")
def test_sample_variance_matches_torch_var(impl):
    x = 2.0 + 3.0 * torch.randn(3, 7, dtype=F64)
    assert_close(
        impl.sample_variance(x),
        torch.var(x, dim=-1, correction=1),
        what="the unbiased sample variance of each row",
        hint="subtracting the mean of the whole batch instead of each row's own mean?",
    )


@pytest.mark.kata("sample_variance")
def test_sample_variance_is_unbiased(impl):
    batch, n, sigma = 20_000, 3, 2.0
    estimates = impl.sample_variance(sigma * torch.randn(batch, n, dtype=F64))
    # For normal data Var[s^2] = 2 sigma^4 / (n - 1); the average of `batch` estimates has this over batch.
    tolerance = 5 * math.sqrt(2 * sigma**4 / (n - 1) / batch)
    average = estimates.mean().item()
    assert abs(average - sigma**2) < tolerance, (
        f"averaged over {batch} samples of size {n}, the variance estimate is {average:.3f}, but the true "
        f"variance is {sigma**2} (tolerance {tolerance:.3f}). A mean near {sigma**2 * (n - 1) / n:.2f} means you "
        "divided by n: the estimate is biased low by (n - 1) / n."
    )


@pytest.mark.kata("sample_std")
def test_sample_std_matches_torch_std(impl):
    x = 2.0 + 3.0 * torch.randn(3, 7, dtype=F64)
    assert_close(
        impl.sample_std(x),
        torch.std(x, dim=-1, correction=1),
        what="the sample standard deviation of each row",
        hint="the square root of the UNBIASED variance (n - 1)",
    )


# The normal distribution


@pytest.mark.kata("normal_pdf")
def test_normal_pdf_matches_torch_distributions(impl):
    mu, sigma = torch.tensor(0.7, dtype=F64), torch.tensor(1.9, dtype=F64)
    x = mu + 3 * torch.randn(3, 5, dtype=F64)
    assert_close(
        impl.normal_pdf(x, mu, sigma),
        Normal(mu, sigma).log_prob(x).exp(),
        what="the normal density",
        hint="sigma is the std: the exponent is -(x - mu)^2 / (2 sigma^2), the factor 1 / (sigma sqrt(2 pi))",
    )


@pytest.mark.kata("normal_pdf")
def test_normal_pdf_integrates_to_one(impl):
    mu, sigma = torch.tensor(-1.0, dtype=F64), torch.tensor(0.3, dtype=F64)
    grid = torch.linspace(-1.0 - 12 * 0.3, -1.0 + 12 * 0.3, 4001, dtype=F64)
    area = torch.trapezoid(impl.normal_pdf(grid, mu, sigma), grid)
    assert_close(area, torch.tensor(1.0, dtype=F64), what="the area under the density")


@pytest.mark.kata("normal_log_pdf")
def test_normal_log_pdf_matches_torch_distributions(impl):
    mu, sigma = torch.tensor(0.7, dtype=F64), torch.tensor(1.9, dtype=F64)
    x = mu + 3 * torch.randn(3, 5, dtype=F64)
    assert_close(
        impl.normal_log_pdf(x, mu, sigma),
        Normal(mu, sigma).log_prob(x),
        what="the normal log-density",
        hint="forgot the 1/2 in -(x - mu)^2 / (2 sigma^2) or in log(2 pi) / 2? log(sigma^2) instead of log(sigma)?",
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.kata("normal_log_pdf")
def test_normal_log_pdf_is_finite_far_in_the_tail(impl, dtype):
    mu, sigma = torch.tensor(2.0, dtype=dtype), torch.tensor(0.5, dtype=dtype)
    x = mu + sigma * torch.tensor([-1e3, -40.0, 40.0, 1e3], dtype=dtype)
    log_p = impl.normal_log_pdf(x, mu, sigma)
    assert torch.isfinite(log_p).all(), (
        f"the log-density 40 and 1000 sigmas from the mean should be finite, got {log_p.tolist()}: "
        "log(pdf(x)) underflows to log(0) = -inf. Write the log of the formula directly, with no exp."
    )
    assert_close(log_p, Normal(mu, sigma).log_prob(x), what="the log-density in the tail")


@pytest.mark.kata("gaussian_log_likelihood")
def test_gaussian_log_likelihood_matches_torch_distributions(impl):
    mu, sigma = torch.tensor(1.5, dtype=F64), torch.tensor(2.0, dtype=F64)
    data = mu + sigma * torch.randn(2000, dtype=F64)
    log_likelihood = impl.gaussian_log_likelihood(data, mu, sigma)
    assert torch.isfinite(log_likelihood), (
        "the log likelihood of 2000 points should be finite: a product of 2000 densities underflows to 0, "
        "so sum the log-densities instead of taking the log of a product"
    )
    assert_close(
        log_likelihood,
        Normal(mu, sigma).log_prob(data).sum(),
        what="the log likelihood",
        hint="the sum (not the mean) of the log-densities of every observation",
    )


@pytest.mark.kata("gaussian_log_likelihood")
def test_gaussian_log_likelihood_is_differentiable(impl):
    data = 1.5 + 2.0 * torch.randn(11, dtype=F64)
    mu = torch.tensor(1.0, dtype=F64, requires_grad=True)
    sigma = torch.tensor(1.7, dtype=F64, requires_grad=True)
    ours = torch.autograd.grad(impl.gaussian_log_likelihood(data, mu, sigma), (mu, sigma))
    theirs = torch.autograd.grad(Normal(mu, sigma).log_prob(data).sum(), (mu, sigma))
    for name, got, want in zip(("mu", "sigma"), ours, theirs, strict=True):
        assert_close(
            got,
            want,
            what=f"d log-likelihood / d {name}",
            hint="math.log(sigma) or .item() gives a number autograd cannot see: use torch.log, tensor operations only",
        )


# Maximum likelihood


@pytest.mark.kata("gaussian_mle")
def test_gaussian_mle_closed_form(impl):
    data = 1.5 + 2.0 * torch.randn(3, 7, dtype=F64)
    mean, variance = impl.gaussian_mle(data)
    assert_close(mean, data.mean(dim=-1), what="the MLE of the mean", hint="the sample mean of each row")
    assert_close(
        variance,
        torch.var(data, dim=-1, correction=0),
        what="the MLE of the variance",
        hint="the MLE divides by n, not n - 1 (that is the unbiased estimator, not the maximum-likelihood one)",
    )


@pytest.mark.kata("gaussian_mle")
def test_gaussian_mle_maximizes_the_likelihood(impl):
    data = 1.5 + 2.0 * torch.randn(3, 7, dtype=F64)
    mean, variance = impl.gaussian_mle(data)

    def log_likelihood(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return Normal(m.unsqueeze(-1), v.sqrt().unsqueeze(-1)).log_prob(data).sum(dim=-1)

    best = log_likelihood(mean, variance)
    rivals = {
        "the unbiased variance (n - 1)": (mean, torch.var(data, dim=-1, correction=1)),
        "a 1% larger variance": (mean, 1.01 * variance),
        "a 1% smaller variance": (mean, 0.99 * variance),
        "a shifted mean": (mean + 0.05, variance),
    }
    for name, (m, v) in rivals.items():
        assert (best > log_likelihood(m, v)).all(), (
            f"{name} gives the data a higher likelihood than your estimate, so yours is not the maximum. "
            "The maximum-likelihood variance divides by n."
        )


@pytest.mark.kata("categorical_mle")
def test_bernoulli_mle_is_the_fraction_of_ones(impl):
    coin_flips = (torch.rand(3, 50) < torch.tensor([[0.2], [0.5], [0.9]])).long()
    probs = impl.categorical_mle(coin_flips, 2)
    assert_close(probs[:, 1], coin_flips.float().mean(dim=-1), what="the MLE of P(X = 1)", hint="count / n")
    assert_close(probs.sum(dim=-1), torch.ones(3), what="the row sums")


@pytest.mark.kata("categorical_mle")
def test_categorical_mle_is_the_frequency_of_each_class(impl):
    outcomes = torch.randint(0, 5, (3, 40))
    expected = torch.stack([torch.bincount(row, minlength=6) for row in outcomes]).float() / 40
    probs = impl.categorical_mle(outcomes, 6)
    assert_close(
        probs,
        expected,
        what="the MLE of the class probabilities (class 5 never occurs)",
        hint="count_j / n per row, with a column for every class, even one never seen",
    )


@pytest.mark.kata("categorical_mle")
def test_categorical_mle_maximizes_the_likelihood(impl):
    outcomes = torch.randint(0, 5, (3, 40))
    probs = impl.categorical_mle(outcomes, 5).double()

    def log_likelihood(p: torch.Tensor) -> torch.Tensor:
        return Categorical(probs=p.unsqueeze(-2)).log_prob(outcomes).sum(dim=-1)

    rivals = Dirichlet(torch.ones(5, dtype=F64)).sample((100, 3))
    assert (log_likelihood(probs) >= log_likelihood(rivals)).all(), (
        "some other distribution gives the observations a higher likelihood than your estimate: "
        "the MLE is the observed frequency count_j / n"
    )


@pytest.mark.parametrize(("true_mean", "true_std"), [(1.5, 2.0), (-1.0, 0.5)])
@pytest.mark.kata("fit_gaussian_by_gradient_ascent")
def test_gradient_ascent_reaches_the_closed_form_mle(impl, true_mean, true_std):
    data = true_mean + true_std * torch.randn(200, dtype=F64)
    mu, variance = impl.fit_gaussian_by_gradient_ascent(data)
    # The docstring promises 1e-5: 400 steps leave the error times (1 - lr / sigma^2)^400, about 1e-7 at
    # sigma = 2, so the float64 default (1e-7) would reject the prescribed algorithm on some seeds.
    assert_close(
        mu,
        data.mean(),
        what="the fitted mean",
        hint="maximize the log likelihood: step along + the gradient; zero the gradients at every step",
        rtol=1e-5,
        atol=1e-5,
    )
    assert_close(
        variance,
        torch.var(data, correction=0),
        what="the fitted variance",
        hint="return sigma^2 = exp(2 log_sigma), not sigma; it should match the MLE, which divides by n",
        rtol=1e-5,
        atol=1e-5,
    )


def gradient_ascent_in_log_sigma(data: torch.Tensor, steps: int, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The docstring's recipe in float64, with torch.distributions: (mu, sigma^2) after `steps` steps."""
    mu, log_sigma = torch.zeros((), dtype=F64), torch.zeros((), dtype=F64)
    for _ in range(steps):
        mu, log_sigma = mu.requires_grad_(), log_sigma.requires_grad_()
        objective = Normal(mu, log_sigma.exp()).log_prob(data.double()).mean()
        grad_mu, grad_log_sigma = torch.autograd.grad(objective, (mu, log_sigma))
        mu, log_sigma = (mu + lr * grad_mu).detach(), (log_sigma + lr * grad_log_sigma).detach()
    return mu.to(data.dtype), (2 * log_sigma).exp().to(data.dtype)


@pytest.mark.kata("fit_gaussian_by_gradient_ascent")
def test_gradient_ascent_starts_from_the_standard_normal(impl):
    data = 1.5 + 2.0 * torch.randn(20, dtype=F64)
    mu, variance = impl.fit_gaussian_by_gradient_ascent(data, steps=0)
    assert_close(mu.detach(), torch.tensor(0.0, dtype=F64), what="mu after 0 steps", hint="start from mu = 0")
    assert_close(
        variance.detach(), torch.tensor(1.0, dtype=F64), what="sigma^2 after 0 steps", hint="start from sigma = 1"
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.kata("fit_gaussian_by_gradient_ascent")
def test_gradient_ascent_takes_plain_steps_on_log_sigma(impl, dtype):
    data = 1.5 + 2.0 * torch.randn(50, dtype=dtype)
    steps, lr = 3, 0.3
    expected_mu, expected_variance = gradient_ascent_in_log_sigma(data, steps, lr)
    mu, variance = impl.fit_gaussian_by_gradient_ascent(data, steps, lr)
    # After 3 steps the mistakes are 10% off or more (steps on sigma instead of log sigma: -50% in the
    # variance; the default lr 0.2 instead of lr: -25%), while a correct float32 solution computed
    # another way drifts by about 1e-6 from this float64 reference.
    hint = (
        "start at mu = 0, log_sigma = 0, and take exactly `steps` plain steps of + lr times the gradient of the MEAN "
        "log likelihood with respect to mu and log_sigma (not sigma), with the `lr` given; no momentum"
    )
    assert_close(mu, expected_mu, what=f"mu after {steps} steps of lr = {lr} ({dtype})", hint=hint, rtol=1e-4)
    assert_close(
        variance,
        expected_variance,
        what=f"sigma^2 after {steps} steps of lr = {lr} ({dtype})",
        hint=hint,  # a result in another dtype: assert_close names that mistake itself
        rtol=1e-4,
    )


@pytest.mark.kata("fit_gaussian_by_gradient_ascent")
def test_gradient_ascent_asks_autograd_for_the_gradient(impl):
    data = 1.5 + 2.0 * torch.randn(20, dtype=F64)
    impl.fit_gaussian_by_gradient_ascent(data, steps=1)  # a stub fails here, with NotImplementedError
    try:
        with forbid(torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward, reason="(a probe)"):
            impl.fit_gaussian_by_gradient_ascent(data, steps=1)
    except ForbiddenCall:
        return  # it asked autograd, as the docstring says
    raise AssertionError(
        "fit_gaussian_by_gradient_ascent took a step without calling torch.autograd.grad or .backward(): the "
        "docstring asks for the gradient from autograd (of your gaussian_log_likelihood), not worked out by hand"
    )


# Softmax, cross-entropy, entropy and KL


@pytest.mark.kata("log_softmax")
def test_log_softmax_matches_torch(impl):
    logits = 3 * torch.randn(3, 5, dtype=F64)
    assert_close(
        impl.log_softmax(logits),
        F.log_softmax(logits, dim=-1),
        what="log_softmax over the last axis",
        hint="normalizing over the batch axis instead of the class axis?",
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.kata("log_softmax")
def test_log_softmax_is_stable_for_huge_logits(impl, dtype):
    logits = 1e4 * torch.randn(3, 5, dtype=dtype)
    log_probs = impl.log_softmax(logits)
    assert torch.isfinite(log_probs).all(), (
        "log_softmax of logits around 1e4 returned inf or nan: exp(1e4) overflows. "
        "Subtract each row's maximum before exponentiating."
    )
    # Each of the oracle and a correct solution rounds values of the size of the logits, at most about 4e4:
    # a few of their ulps apart (logits - logsumexp(logits) is ~1e-3 off in float32, too far for atol=1e-5).
    assert_close(
        log_probs,
        F.log_softmax(logits, dim=-1),
        what="log_softmax of logits around 1e4",
        atol=4 * torch.finfo(dtype).eps * logits.abs().max().item(),
    )


@pytest.mark.kata("cross_entropy")
def test_cross_entropy_matches_torch(impl):
    logits, targets = 3 * torch.randn(5, 7, dtype=F64), torch.randint(0, 7, (5,))
    assert_close(
        impl.cross_entropy(logits, targets),
        F.cross_entropy(logits, targets),
        what="the mean cross-entropy",
        hint="the MEAN over the batch of -log p(target); not the sum, and with the minus sign",
    )


@pytest.mark.kata("cross_entropy")
def test_cross_entropy_is_stable_for_huge_logits(impl):
    logits, targets = 1e4 * torch.randn(5, 7), torch.randint(0, 7, (5,))
    loss = impl.cross_entropy(logits, targets)
    assert torch.isfinite(loss), f"cross-entropy of logits around 1e4 should be finite, got {loss}: use log_softmax"
    # A correct float32 solution (logsumexp - the target's logit) rounds values of the size of the logits:
    # a few of their ulps, ~1e-3, which is more than atol=1e-5 when the targets are (near) each row's max.
    assert_close(
        loss,
        F.cross_entropy(logits, targets),
        what="the cross-entropy of logits around 1e4",
        atol=4 * torch.finfo(logits.dtype).eps * logits.abs().max().item(),
    )


@pytest.mark.kata("entropy")
def test_entropy_matches_torch_distributions(impl):
    probs = torch.randn(3, 5, dtype=F64).softmax(dim=-1)
    assert_close(
        impl.entropy(probs),
        Categorical(probs=probs).entropy(),
        what="the entropy",
        hint="-sum p log p over the class axis: mind the minus sign and the axis",
    )


@pytest.mark.kata("entropy")
def test_entropy_of_uniform_and_certain_distributions(impl):
    probs = torch.tensor([[0.2] * 5, [0.0, 1.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0, 0.0]], dtype=F64)
    assert_close(
        impl.entropy(probs),
        torch.tensor([math.log(5), 0.0, math.log(2)], dtype=F64),
        what="the entropy of uniform(5), a certain outcome and a fair coin",
        hint="0 log 0 must count as 0, not nan: see torch.special.xlogy",
    )


def p_log_p_over_q(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """sum_j p_j log(p_j / q_j) over the terms with p_j > 0, in float64: the definition, term by term."""
    return torch.where(p > 0, p * (p.log() - q.log()), 0.0).sum(dim=-1)


# Nearly certain rows: the information sits in probabilities of 1e-13 and 1e-4, far below 1, where an
# eps added inside the log (log(p + 1e-12)) or a clamp(min=1e-12) is no longer negligible.
NEARLY_CERTAIN = [[1 - 3e-13, 1e-13, 2e-13, 0.0], [1 - 3e-4, 1e-4, 2e-4, 0.0]]


@pytest.mark.kata("entropy")
def test_entropy_of_nearly_certain_distributions_keeps_its_tiny_terms(impl):
    probs = torch.tensor(NEARLY_CERTAIN, dtype=F64)
    assert_close(
        impl.entropy(probs),
        p_log_p_over_q(probs, torch.ones_like(probs)).neg(),
        what="the entropy of rows whose other classes have probability 1e-13 and 1e-4",
        hint="no eps inside the log and no clamp: they swamp p log p when p is smaller than eps. "
        "Make only the p = 0 terms 0 (torch.special.xlogy)",
        rtol=1e-9,
        atol=0.0,
    )


@pytest.mark.kata("kl_divergence")
def test_kl_divergence_matches_torch_distributions(impl):
    p, q = torch.randn(3, 5, dtype=F64).softmax(dim=-1), torch.randn(3, 5, dtype=F64).softmax(dim=-1)
    assert_close(
        impl.kl_divergence(p, q),
        torch.distributions.kl_divergence(Categorical(probs=p), Categorical(probs=q)),
        what="KL(p || q)",
        hint="arguments swapped? KL(p || q) weights log(p / q) by p, the FIRST argument",
    )


@pytest.mark.kata("kl_divergence")
def test_kl_divergence_with_impossible_classes(impl):
    p = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    q = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]], dtype=F64)
    assert_close(
        impl.kl_divergence(p, q),
        torch.distributions.kl_divergence(Categorical(probs=p), Categorical(probs=q)),
        what="KL(p || q) where p gives some classes probability 0",
        hint="terms with p_j = 0 contribute 0 (0 log 0 is nan in floating point: torch.special.xlogy)",
    )


@pytest.mark.kata("kl_divergence")
def test_kl_divergence_of_nearly_certain_distributions_keeps_its_tiny_terms(impl):
    p = torch.tensor(NEARLY_CERTAIN, dtype=F64)
    q = torch.tensor([[1 - 3e-13, 5e-14, 5e-14, 2e-13], [1 - 3.1e-4, 5e-5, 2.5e-4, 1e-5]], dtype=F64)
    assert_close(
        impl.kl_divergence(p, q),
        p_log_p_over_q(p, q),
        what="KL(p || q) where p and q differ only in classes of probability 1e-13 and 1e-4",
        hint="no eps inside the logs and no clamp: they swamp the terms when p and q are smaller than eps",
        rtol=1e-9,
        atol=0.0,
    )


@pytest.mark.kata("kl_divergence")
def test_kl_divergence_where_q_is_zero_too(impl):
    p = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    q = torch.tensor([[0.25, 0.75, 0.0], [0.0, 0.5, 0.5]], dtype=F64)
    expected = torch.tensor([0.5 * math.log(2) + 0.5 * math.log(2 / 3), math.log(2)], dtype=F64)
    assert_close(
        impl.kl_divergence(p, q),
        expected,
        what="KL(p || q) where p and q are both 0 in some classes",
        hint="q may be 0 where p is, and p_j / q_j = 0 / 0 is nan there: use p log p - p log q (torch.special.xlogy "
        "for each), not xlogy(p, p / q)",
    )


@pytest.mark.kata("kl_divergence")
def test_kl_divergence_is_zero_only_for_equal_distributions(impl):
    p, q = torch.randn(3, 5, dtype=F64).softmax(dim=-1), torch.randn(3, 5, dtype=F64).softmax(dim=-1)
    assert_close(impl.kl_divergence(p, p), torch.zeros(3, dtype=F64), what="KL(p || p)")
    assert (impl.kl_divergence(p, q) > 0).all(), "KL(p || q) is positive when p != q (Gibbs' inequality)"


# Sampling


@pytest.mark.kata("sample_exponential")
def test_sample_exponential_inverts_the_cdf(impl):
    rate, uniforms = 2.5, torch.rand(7, dtype=F64)
    samples = impl.sample_exponential(uniforms, rate)
    assert_close(
        Exponential(torch.tensor(rate, dtype=F64)).cdf(samples),
        uniforms,
        what="F(samples), which should give back the uniforms",
        hint="x = F^-1(u) solves u = 1 - exp(-rate x); -log(u) / rate is valid in distribution but not F^-1(u)",
    )


@pytest.mark.kata("sample_exponential")
def test_sample_exponential_is_accurate_near_zero(impl):
    rate = 2.5
    uniforms = torch.tensor([0.0, 1e-10, 3e-8, 1e-6, 0.3], dtype=torch.float32)
    expected = (-torch.log1p(-uniforms.double()) / rate).float()  # exact, rounded once to float32
    # atol=0 and a few float32 ulps: samples of size 1e-10 are judged on their own digits. In float32,
    # 1 - 1e-10 rounds to 1 and log(1 - u) gives 0; through 1 - u, u = 1e-6 comes out 1% off.
    assert_close(
        impl.sample_exponential(uniforms, rate),
        expected,
        what="F^-1(u) for u close to 0, in float32",
        hint="1 - u loses the digits of a small u before the log sees them: torch.log1p(-u) computes log(1 - u) "
        "without forming 1 - u",
        rtol=1e-6,
        atol=0,
    )


@pytest.mark.kata("sample_exponential")
def test_sample_exponential_has_the_exponential_distribution(impl):
    rate, n = 2.5, 20_000
    samples = impl.sample_exponential(torch.rand(n, dtype=F64), rate)
    mean, variance = samples.mean().item(), samples.var().item()
    # Exponential(rate): mean 1/rate, variance 1/rate^2, and Var[s^2] ~ (mu_4 - sigma^4) / n = 8 / (rate^4 n).
    mean_tolerance, variance_tolerance = 5 / (rate * math.sqrt(n)), 5 * math.sqrt(8 / n) / rate**2
    assert abs(mean - 1 / rate) < mean_tolerance, (
        f"sample mean {mean:.4f}, expected 1/rate = {1 / rate} (+- {mean_tolerance:.4f}): multiplied by the rate?"
    )
    assert abs(variance - 1 / rate**2) < variance_tolerance, (
        f"sample variance {variance:.4f}, expected 1/rate^2 = {1 / rate**2} (+- {variance_tolerance:.4f})"
    )
    distance, bound = ks_distance(samples, Exponential(torch.tensor(rate, dtype=F64)).cdf), dkw_bound(n)
    assert distance < bound, f"the empirical CDF is {distance:.4f} away from Exponential(rate)'s (bound {bound:.4f})"


@pytest.mark.kata("box_muller")
def test_box_muller_radius_and_angle(impl):
    u1, u2 = 1 - torch.rand(7, dtype=F64), torch.rand(7, dtype=F64)
    z = impl.box_muller(u1, u2)
    assert_close(
        (z**2).sum(dim=0),
        -2 * torch.log(u1),
        what="the squared radius z0^2 + z1^2",
        hint="r = sqrt(-2 log u1): is the 2 there, and the minus sign?",
    )
    theta = 2 * math.pi * u2
    assert_close(
        z / z.norm(dim=0),
        torch.stack([theta.cos(), theta.sin()]),
        what="(z0, z1) / r, which should be (cos, sin) of theta = 2 pi u2",
        hint="theta = 2 pi u2; row 0 is the cosine, row 1 the sine",
    )


@pytest.mark.kata("box_muller")
def test_box_muller_gives_independent_standard_normals(impl):
    n = 20_000
    z = impl.box_muller(1 - torch.rand(n, dtype=F64), torch.rand(n, dtype=F64))
    standard_normal, bound = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64)), dkw_bound(n)
    for row in range(2):
        distance = ks_distance(z[row], standard_normal.cdf)
        assert distance < bound, f"row {row}: the empirical CDF is {distance:.4f} from N(0, 1)'s (bound {bound:.4f})"
    correlation = torch.corrcoef(z)[0, 1].item()
    assert abs(correlation) < 5 / math.sqrt(n), f"the two rows should be uncorrelated, correlation {correlation:.4f}"


# The central limit theorem


@pytest.mark.kata("std_of_sample_means")
def test_std_of_sample_means_computation(impl):
    samples = torch.randn(7, 5, dtype=F64)
    assert_close(
        impl.std_of_sample_means(samples),
        torch.std(samples.mean(dim=1), correction=1),
        what="the std of the 7 row means",
        hint="mean over each row (axis 1), then the unbiased std of those means across rows",
    )


def _clt_tolerance(n: int, repeats: int) -> float:
    """5 relative standard errors of a std estimated from `repeats` means of n exponential draws."""
    excess_kurtosis_of_mean = 6 / n  # an exponential draw has excess kurtosis 6; a mean of n has 6 / n
    return 5 * 0.5 * math.sqrt(2 / (repeats - 1) + excess_kurtosis_of_mean / repeats)


@pytest.mark.parametrize("n", [4, 64])
@pytest.mark.kata("std_of_sample_means")
def test_std_of_sample_means_is_sigma_over_sqrt_n(impl, n):
    repeats, rate = 2000, 2.0
    sigma = 1 / rate
    measured = impl.std_of_sample_means(Exponential(rate).sample((repeats, n))).item()
    predicted, tolerance = sigma / math.sqrt(n), _clt_tolerance(n, repeats)
    assert abs(measured / predicted - 1) < tolerance, (
        f"with n = {n} draws of std {sigma} per experiment, the sample mean should vary by sigma / sqrt(n) = "
        f"{predicted:.4f} (relative tolerance {tolerance:.3f}), got {measured:.4f}. "
        "Average within each experiment (axis 1) first, then take the std across the experiments."
    )


@pytest.mark.kata("std_of_sample_means")
def test_std_of_sample_means_quarters_with_sixteen_times_the_draws(impl):
    repeats, rate = 2000, 2.0
    few = impl.std_of_sample_means(Exponential(rate).sample((repeats, 4))).item()
    many = impl.std_of_sample_means(Exponential(rate).sample((repeats, 64))).item()
    tolerance = math.hypot(_clt_tolerance(4, repeats), _clt_tolerance(64, repeats))
    assert abs(few / many / 4 - 1) < tolerance, (
        f"going from 4 to 64 draws should shrink the spread of the mean by sqrt(16) = 4, it shrank by {few / many:.2f}"
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.kata("standardised_means")
def test_standardised_means_computation(impl, dtype):
    samples = torch.tensor([[1.0, 2.0, 6.0, 3.0], [0.0, 0.5, 0.5, 1.0]], dtype=dtype)
    expected = torch.tensor([(3.0 - 1.5) * 2 / 0.5, (0.5 - 1.5) * 2 / 0.5], dtype=dtype)  # sqrt(4) = 2
    assert_close(
        impl.standardised_means(samples, 1.5, 0.5),
        expected,
        what="sqrt(n) * (row mean - mu) / sigma of two rows of n = 4",
        hint="the mean of each row (axis 1), minus mu, divided by sigma / sqrt(n): sqrt(n), not n or n - 1",
    )


def _berry_esseen(n: int, third_moment_ratio: float) -> float:
    """How far the CDF of a standardised mean of n draws can be from the normal one (Berry-Esseen:
    C rho / (sigma^3 sqrt(n)), with C = 0.4748 and rho = E|X - mu|^3)."""
    return 0.4748 * third_moment_ratio / math.sqrt(n)


# rho / sigma^3 of an exponential (whatever its rate) and of a Bernoulli(0.3)
EXPONENTIAL_RATIO = 12 / math.e - 2
BERNOULLI_P = 0.3
BERNOULLI_RATIO = (BERNOULLI_P**2 + (1 - BERNOULLI_P) ** 2) / math.sqrt(BERNOULLI_P * (1 - BERNOULLI_P))


@pytest.mark.parametrize(
    ("source", "mu", "sigma", "ratio"),
    [
        ("exponential", 1 / 2.0, 1 / 2.0, EXPONENTIAL_RATIO),
        ("bernoulli", BERNOULLI_P, math.sqrt(BERNOULLI_P * (1 - BERNOULLI_P)), BERNOULLI_RATIO),
    ],
)
@pytest.mark.kata("standardised_means")
def test_standardised_means_of_many_draws_are_standard_normal(impl, source, mu, sigma, ratio):
    repeats, n = 4000, 400
    if source == "exponential":
        draws = Exponential(torch.tensor(2.0, dtype=F64)).sample((repeats, n))
    else:
        draws = torch.bernoulli(torch.full((repeats, n), BERNOULLI_P, dtype=F64))
    standard_normal = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    distance = ks_distance(impl.standardised_means(draws, mu, sigma), standard_normal.cdf)
    bound = _berry_esseen(n, ratio) + dkw_bound(repeats)
    assert distance < bound, (
        f"the central limit theorem: standardised means of n = {n} {source} draws should be close to N(0, 1), "
        f"but their CDF is {distance:.3f} away from the normal one (allowed: {bound:.3f}, the Berry-Esseen bound plus "
        "sampling error). Did you divide by sigma / sqrt(n), and subtract mu from the mean?"
    )


@pytest.mark.kata("standardised_means")
def test_standardised_means_of_few_skewed_draws_are_not_yet_normal(impl):
    """n = 2 exponential draws: the standardised mean cannot go below -sqrt(2), where the normal
    CDF is already 0.079, so the CDFs are at least that far apart: the theorem is about large n."""
    repeats, rate = 4000, 2.0
    draws = Exponential(torch.tensor(rate, dtype=F64)).sample((repeats, 2))
    standardised = impl.standardised_means(draws, 1 / rate, 1 / rate)
    standard_normal = Normal(torch.tensor(0.0, dtype=F64), torch.tensor(1.0, dtype=F64))
    distance, noise = ks_distance(standardised, standard_normal.cdf), dkw_bound(repeats)
    assert standardised.min().item() >= -math.sqrt(2) - 1e-9, (
        "sqrt(2) * (mean - 1/2) / (1/2) >= -sqrt(2) for draws >= 0"
    )
    assert distance > standard_normal.cdf(torch.tensor(-math.sqrt(2), dtype=F64)).item() - noise, (
        f"2 exponential draws are skewed: their standardised mean is not normal yet (KS distance {distance:.3f})"
    )
