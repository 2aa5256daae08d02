"""Probability: expectations, sample statistics, the Gaussian, maximum likelihood, softmax and
cross-entropy, entropy and KL divergence, sampling, and the central limit theorem.

Read or watch first (curriculum.toml's `reading`):
- Neel Nanda, Mechanistic Interpretability Prerequisites, 'Probability basics': the list names no
  resource here, only the concepts (basic distributions: expectation, standard deviation, the
  normal distribution; log likelihood; maximum likelihood estimation; random variables; the
  central limit theorem):
  https://www.neelnanda.io/mechanistic-interpretability/prereqs
- Jacob Hilton, Deep Learning Curriculum, the 'Pre-prerequisites' section: probability (expected
  value, standard deviation, independence, the normal distribution) and the optional extras
  statistics (estimators, standard errors: std_of_sample_means) and information theory (entropy,
  KL divergence), with its suggested resources:
  https://github.com/jacobhilton/deep_learning_curriculum
- Andrej Karpathy, The spelled-out intro to neural networks and backpropagation: building
  micrograd, the last part (training by gradient descent: forward pass, zero the gradients,
  backward, update), before fit_gaussian_by_gradient_ascent:
  https://www.youtube.com/watch?v=VMj-3S1tku0
- Neel Nanda, transformer template notebook, its loss function (log_softmax, then gather the
  target's log-probability, negate and average), for log_softmax and cross_entropy:
  https://www.neelnanda.io/transformer-template
"""

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor

from katakit import detached, kata


@kata
def discrete_mean(values: Float[Tensor, "k"], probs: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the expectation E[X] of a discrete random variable, for a batch of distributions.

    X takes the value `values[j]` with probability `probs[b, j]`; each row of `probs` is one
    distribution over the same `k` values (non-negative, summing to 1).

    Shapes:
        values: [k], the values X can take
        probs: [batch, k], row b is the pmf of the b-th distribution
        returns: [batch], E[X] under each distribution

    Hints:
        1. The expectation is not the plain average of the values: each value counts as much as it is likely.
        2. E[X] = sum_j p_j x_j: multiply (broadcasting values over the batch) and sum over the value axis.
    """
    return (probs * values).sum(dim=-1)


@kata
def discrete_variance(values: Float[Tensor, "k"], probs: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the variance Var[X] = E[(X - E[X])^2] of a discrete random variable, for a batch of distributions.

    Same layout as `discrete_mean`. This is the variance of the distribution itself, not an
    estimate from samples: there is no n - 1 anywhere.

    Shapes:
        values: [k], the values X can take
        probs: [batch, k], row b is the pmf of the b-th distribution
        returns: [batch], Var[X] under each distribution

    Hints:
        1. First find the mean of each distribution (one number per row), then average the squared
           distance of the values from it, weighted by their probabilities.
        2. Keep the mean's value axis for broadcasting (unsqueeze, or keepdim=True) before subtracting it.
    """
    mean = (probs * values).sum(dim=-1, keepdim=True)
    return (probs * (values - mean) ** 2).sum(dim=-1)


@kata
def sample_mean(x: Float[Tensor, "batch n"]) -> Float[Tensor, "batch"]:
    """Return the sample mean of each row of `x`: row b holds n observations of one random variable.

    Shapes:
        x: [batch, n], n observations per row
        returns: [batch], the mean of each row

    Hints:
        1. Which axis holds the observations? Reduce over that one only.
        2. Sum each row and divide by its number of observations, or look in the 'Reduction Ops' list of
           torch's docs for one reduction that does both; every reduction takes the axis to reduce as an
           argument.
    """
    return x.mean(dim=-1)


@kata
def sample_variance(x: Float[Tensor, "batch n"]) -> Float[Tensor, "batch"]:
    """Return the unbiased sample variance of each row of `x`.

    The unbiased estimator divides the sum of squared deviations from the sample mean by n - 1
    (Bessel's correction): the sample mean sits closer to the data than the true mean does, so
    dividing by n would underestimate the variance on average.

    Shapes:
        x: [batch, n], n >= 2 observations per row
        returns: [batch], the unbiased variance of each row

    Hints:
        1. Subtract each row's own mean (keep its axis so it broadcasts), square, then sum over the row.
        2. Divide by n - 1, not n (Bessel's correction): measured from the sample mean, the n deviations have
           only n - 1 degrees of freedom.
    """
    deviations = x - x.mean(dim=-1, keepdim=True)
    return (deviations**2).sum(dim=-1) / (x.shape[-1] - 1)


@kata
def sample_std(x: Float[Tensor, "batch n"]) -> Float[Tensor, "batch"]:
    """Return the sample standard deviation of each row of `x`: the square root of the unbiased variance.

    Shapes:
        x: [batch, n], n >= 2 observations per row
        returns: [batch], the standard deviation of each row

    Hints:
        1. The standard deviation has the units of x; the variance has units of x squared.
        2. Take the square root of your unbiased sample variance (n - 1 in the denominator).
    """
    return sample_variance(x).sqrt()


@kata
def normal_pdf(x: Float[Tensor, "*shape"], mu: Float[Tensor, ""], sigma: Float[Tensor, ""]) -> Float[Tensor, "*shape"]:
    """Return the density of the normal distribution N(mu, sigma^2) at every element of `x`.

    p(x) = exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi)). Note that `sigma` is the standard
    deviation, not the variance.

    Shapes:
        x: any shape
        mu, sigma: [] (0-d tensors), sigma > 0
        returns: the shape of x

    Hints:
        1. Standardize first: z, the distance from x to mu counted in standard deviations, turns the exponent
           into -z^2 / 2.
        2. The density is exp(-z^2 / 2) divided by sigma * sqrt(2 pi) (math.pi, math.sqrt).
    """
    z = (x - mu) / sigma
    return torch.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))


@kata
def normal_log_pdf(
    x: Float[Tensor, "*shape"], mu: Float[Tensor, ""], sigma: Float[Tensor, ""]
) -> Float[Tensor, "*shape"]:
    """Return the log-density log p(x) of N(mu, sigma^2) at every element of `x`, computed directly.

    Far in the tail the density underflows to 0 (at 1000 sigmas, p = exp(-500000)), so
    log(normal_pdf(x)) gives -inf, while the log-density itself is a perfectly ordinary number.
    Never form the density: write the logarithm of the formula and simplify it by hand.

    Shapes:
        x: any shape
        mu, sigma: [] (0-d tensors), sigma > 0
        returns: the shape of x

    Hints:
        1. The log of exp(something) is just that something: no exp is needed anywhere.
        2. log p(x) = -z^2 / 2 - log(sigma) - log(2 pi) / 2, with z the standardized x (its distance from mu,
           in units of sigma).
    """
    z = (x - mu) / sigma
    return -0.5 * z**2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)


@kata
def gaussian_log_likelihood(
    data: Float[Tensor, "n"], mu: Float[Tensor, ""], sigma: Float[Tensor, ""]
) -> Float[Tensor, ""]:
    """Return the log likelihood of i.i.d. observations `data` under N(mu, sigma^2).

    The observations are independent, so the likelihood is the product of their densities and
    the log likelihood is the sum of their log-densities. Keep it differentiable in mu and sigma:
    a later kata maximizes it with autograd.

    Shapes:
        data: [n], the observations
        mu, sigma: [] (0-d tensors), sigma > 0
        returns: [] (a 0-d tensor)

    Hints:
        1. A product of many small densities underflows; a sum of log-densities does not.
        2. The log of a product is the sum of the logs, and the previous kata already gives the log-density of
           every observation at once.
    """
    return normal_log_pdf(data, mu, sigma).sum()


@kata
def gaussian_mle(data: Float[Tensor, "batch n"]) -> tuple[Float[Tensor, "batch"], Float[Tensor, "batch"]]:
    """Return the maximum-likelihood estimates (mean, variance) of a Gaussian fitted to each row of `data`.

    Setting the derivatives of the log likelihood to zero gives closed forms: the MLE of the mean
    is the sample mean, and the MLE of the variance is the mean squared deviation from it,
    which DIVIDES BY n (not n - 1). The MLE of the variance is biased; it is still the one value
    that makes the data most likely.

    Shapes:
        data: [batch, n], each row is one data set of n observations
        returns: (mean [batch], variance [batch])

    Hints:
        1. Derive d/dmu and d/d(sigma^2) of the log likelihood and set them to zero; the mean comes out first.
        2. The variance estimate is the average of (x - mean)^2 over the row: divide by n (correction=0).
    """
    mean = data.mean(dim=-1)
    variance = ((data - mean.unsqueeze(-1)) ** 2).mean(dim=-1)
    return mean, variance


@kata
def categorical_mle(outcomes: Int[Tensor, "batch n"], num_classes: int) -> Float[Tensor, "batch num_classes"]:
    """Return the maximum-likelihood class probabilities of a categorical distribution, for each row of `outcomes`.

    Each row holds n observed outcomes, integers in [0, num_classes). The MLE of p_j is the
    fraction of the observations equal to j (count_j / n). A coin (Bernoulli) is the case
    num_classes == 2: the MLE of P(heads) is the fraction of heads. A class that never occurs
    gets probability 0, but it still gets its column.

    Shapes:
        outcomes: [batch, n], integer class labels
        num_classes: int, the number of classes k
        returns: [batch, num_classes], each row sums to 1 (float32)

    Hints:
        1. First count how often each class occurs in each row; then turn counts into fractions.
        2. One-hot encode the outcomes (torch.nn.functional has a function for it; give it the number of
           classes), then sum over the observation axis: that gives the counts.
        3. The counts are integers: convert them to float before dividing by n.
    """
    counts = torch.nn.functional.one_hot(outcomes, num_classes).sum(dim=1)
    return counts.float() / outcomes.shape[1]


@kata
@detached
def fit_gaussian_by_gradient_ascent(
    data: Float[Tensor, "n"], steps: int = 400, lr: float = 0.2
) -> tuple[Float[Tensor, ""], Float[Tensor, ""]]:
    """Fit N(mu, sigma^2) to `data` by gradient ascent on the log likelihood, with autograd; return (mu, sigma^2).

    Start from mu = 0, sigma = 1 and take `steps` plain gradient-ascent steps, each moving the
    parameters by lr times the gradient of the MEAN log likelihood (the log likelihood divided by
    n, so the step size does not depend on how much data there is). Steps of 0 return the start.
    Optimize log(sigma) rather than sigma, so sigma stays positive whatever the step. On data of
    moderate scale (mean within a few units of 0, std between 0.5 and 2) the defaults land within
    1e-5 (relative) of the closed-form MLE of `gaussian_mle`. Return detached tensors in the dtype of
    `data`.

    Shapes:
        data: [n], the observations
        returns: (mu [], variance []), 0-d tensors

    Hints:
        1. Make mu and log_sigma 0-d tensors with requires_grad=True; autograd gives the derivatives of your
           gaussian_log_likelihood (divided by n) with respect to both.
        2. Each step: ask torch.autograd.grad for the gradients of the objective with respect to both
           parameters, then move each parameter by + lr times its gradient (ascent: plus, not minus).
        3. The updated parameters must be new leaves: detach them and switch requires_grad back on. At the end
           return mu and sigma^2 = exp(2 log_sigma), both detached.
    """
    mu = torch.zeros((), dtype=data.dtype, requires_grad=True)
    log_sigma = torch.zeros((), dtype=data.dtype, requires_grad=True)
    for _ in range(steps):
        objective = gaussian_log_likelihood(data, mu, log_sigma.exp()) / data.shape[0]
        grad_mu, grad_log_sigma = torch.autograd.grad(objective, (mu, log_sigma))
        mu = (mu + lr * grad_mu).detach().requires_grad_()
        log_sigma = (log_sigma + lr * grad_log_sigma).detach().requires_grad_()
    return mu.detach(), (2 * log_sigma).exp().detach()


@kata
def log_softmax(logits: Float[Tensor, "batch k"]) -> Float[Tensor, "batch k"]:
    """Return log(softmax(logits)) over the last axis, computed stably.

    softmax(l)_j = exp(l_j) / sum_i exp(l_i). With logits of size 1e4, exp overflows to inf and
    the naive formula returns nan. Subtracting the row's maximum changes nothing mathematically
    (it cancels between numerator and denominator) but keeps every exp at most 1.

    Shapes:
        logits: [batch, k], one row of unnormalized log-probabilities per example
        returns: [batch, k], the log-probabilities; exp of each row sums to 1

    Hints:
        1. log softmax(l)_j = l_j - log(sum_i exp(l_i)): the second term is one number per row (log-sum-exp).
        2. With m the row max (keepdim=True): log-sum-exp(l) = m + log(sum_i exp(l_i - m)).
    """
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


@kata
def cross_entropy(logits: Float[Tensor, "batch k"], targets: Int[Tensor, "batch"]) -> Float[Tensor, ""]:
    """Return the mean categorical cross-entropy of the `targets` under the distributions given by `logits`.

    For one example it is -log softmax(logits)[target]: the negative log-probability the model
    gives the right class. Average it over the batch. Must stay finite for logits of size 1e4.

    Shapes:
        logits: [batch, k], unnormalized log-probabilities
        targets: [batch], integer class indices in [0, k)
        returns: [] (0-d tensor), the mean over the batch

    Hints:
        1. Start from your stable log_softmax, never from log(softmax(...)).
        2. Pick each row's log-probability at its target (torch.gather, or indexing with
           arange(batch) and targets), negate, and average.
    """
    log_probs = log_softmax(logits)
    picked = log_probs.gather(dim=-1, index=targets.unsqueeze(-1)).squeeze(-1)
    return -picked.mean()


@kata
def entropy(probs: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the entropy H(p) = -sum_j p_j log p_j (in nats) of each categorical distribution.

    Classes with probability 0 contribute 0 (the limit of p log p as p -> 0), not nan.

    Shapes:
        probs: [batch, k], each row a distribution (non-negative, sums to 1)
        returns: [batch], the entropy of each row

    Hints:
        1. 0 * log(0) is 0 * (-inf) = nan in floating point: those terms need special care.
        2. torch.special, torch's module of special functions, has one for x log y that defines 0 log 0 as 0:
           read its list. (Masking the zero terms with torch.where works too.)
    """
    return -torch.special.xlogy(probs, probs).sum(dim=-1)


@kata
def kl_divergence(p: Float[Tensor, "batch k"], q: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the KL divergence KL(p || q) = sum_j p_j log(p_j / q_j) of each pair of rows.

    KL is not symmetric: KL(p || q) averages the log-ratio under p, the first argument. Classes
    with p_j = 0 contribute 0 (q may be anything there); q is positive wherever p is.

    Shapes:
        p, q: [batch, k], each row a distribution
        returns: [batch], KL(p[b] || q[b]) in nats

    Hints:
        1. KL(p || q) = sum_j p_j log p_j - sum_j p_j log q_j: a negative entropy plus a cross-entropy.
        2. The x log y function of torch.special that you used for the entropy handles the p_j = 0 terms of
           both sums.
    """
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(dim=-1)


@kata
def sample_exponential(uniforms: Float[Tensor, "n"], rate: float) -> Float[Tensor, "n"]:
    """Turn uniform samples into samples of the exponential distribution with the given rate, by inverse transform.

    If U ~ Uniform(0, 1) and F is a continuous CDF, then F^{-1}(U) has CDF F. The exponential
    distribution with rate lambda has F(x) = 1 - exp(-lambda x), mean 1 / lambda and variance
    1 / lambda^2. The randomness comes in as `uniforms` (in [0, 1)), so the function is
    deterministic: apply F^{-1} elementwise, so that F(output) == uniforms. Keep the digits of a
    small u: at rate 2.5, u = 1e-10 must give 4e-11 to float precision (even in float32), not 0.

    Shapes:
        uniforms: [n], values in [0, 1)
        returns: [n], the exponential samples (>= 0)

    Hints:
        1. Solve u = 1 - exp(-lambda x) for x.
        2. Isolate the exponential, take logs of both sides, divide by -lambda. The result is never negative,
           since 1 - u lies in (0, 1].
        3. For small u, computing 1 - u first loses digits: torch.log1p computes log(1 + t) accurately for
           small t.
    """
    return -torch.log1p(-uniforms) / rate


@kata
def box_muller(u1: Float[Tensor, "n"], u2: Float[Tensor, "n"]) -> Float[Tensor, "2 n"]:
    """Turn two batches of uniform samples into 2n independent standard normal samples (Box-Muller).

    With radius r = sqrt(-2 log u1) and angle theta = 2 pi u2, the point (r cos theta,
    r sin theta) has two independent N(0, 1) coordinates. Row 0 of the result holds the
    cosines, row 1 the sines.

    Shapes:
        u1: [n], values in (0, 1] (so that log u1 is finite)
        u2: [n], values in [0, 1)
        returns: [2, n], row 0 = r cos(theta), row 1 = r sin(theta)

    Hints:
        1. -2 log(u1) is exponentially distributed with mean 2, which is how a chi-squared with 2 degrees of
           freedom, x^2 + y^2 for two standard normals, is distributed: it is the squared radius.
        2. Compute r and theta elementwise, then torch.stack the two coordinates along a new first axis.
    """
    radius = torch.sqrt(-2 * torch.log(u1))
    theta = 2 * math.pi * u2
    return torch.stack([radius * torch.cos(theta), radius * torch.sin(theta)])


@kata
def std_of_sample_means(samples: Float[Tensor, "repeats n"]) -> Float[Tensor, ""]:
    """Measure how much the sample mean of n observations varies: the std, across repeats, of the row means.

    Each row of `samples` is one experiment of n i.i.d. draws. Compute each experiment's
    sample mean, then the (unbiased) standard deviation of those means across experiments.
    Independence alone predicts sigma / sqrt(n), for any n and whatever the distribution of one
    draw: averaging 4 times as many draws halves the spread. (That is not yet the central limit
    theorem, which is about the *shape* of the distribution of the mean: next kata.)

    Shapes:
        samples: [repeats, n], row r is the r-th experiment
        returns: [] (0-d tensor), the standard deviation of the repeats sample means

    Hints:
        1. Two reductions over two different axes: first average within each experiment, then measure the
           spread across experiments.
        2. Mean over the n axis gives [repeats]; then the std with correction=1 over the repeats.
    """
    means = samples.mean(dim=1)
    return means.std(correction=1)


@kata
def standardised_means(samples: Float[Tensor, "repeats n"], mu: float, sigma: float) -> Float[Tensor, " repeats"]:
    """Standardise the sample mean of each experiment: sqrt(n) * (mean - mu) / sigma.

    Each row of `samples` is one experiment of n i.i.d. draws from a distribution with mean `mu`
    and standard deviation `sigma`. The central limit theorem says that, whatever that
    distribution (skewed, discrete...), these standardised means become normally distributed,
    N(0, 1), as n grows; for small n they keep the shape of the source (an exponential's skew).

    Shapes:
        samples: [repeats, n], row r is the r-th experiment
        returns: [repeats], the standardised mean of each experiment

    Hints:
        1. Centre the mean of each row at 0, then scale it so that its standard deviation is 1 whatever n is.
        2. The mean of n draws has standard deviation sigma / sqrt(n): divide the centred mean by that.
    """
    n = samples.shape[1]
    return (samples.mean(dim=1) - mu) * math.sqrt(n) / sigma
