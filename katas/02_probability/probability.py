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

    Hints (the next one: katas hint discrete_mean 2):
        1. The expectation is not the plain average of the values: each value counts as much as it is likely.
    """
    raise NotImplementedError


@kata
def discrete_variance(values: Float[Tensor, "k"], probs: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the variance Var[X] = E[(X - E[X])^2] of a discrete random variable, for a batch of distributions.

    Same layout as `discrete_mean`. This is the variance of the distribution itself, not an
    estimate from samples: there is no n - 1 anywhere.

    Shapes:
        values: [k], the values X can take
        probs: [batch, k], row b is the pmf of the b-th distribution
        returns: [batch], Var[X] under each distribution

    Hints (the next one: katas hint discrete_variance 2):
        1. First find the mean of each distribution (one number per row), then average the squared
           distance of the values from it, weighted by their probabilities.
    """
    raise NotImplementedError


@kata
def sample_mean(x: Float[Tensor, "batch n"]) -> Float[Tensor, "batch"]:
    """Return the sample mean of each row of `x`: row b holds n observations of one random variable.

    Shapes:
        x: [batch, n], n observations per row
        returns: [batch], the mean of each row

    Hints (the next one: katas hint sample_mean 2):
        1. Which axis holds the observations? Reduce over that one only.
    """
    raise NotImplementedError


@kata
def sample_variance(x: Float[Tensor, "batch n"]) -> Float[Tensor, "batch"]:
    """Return the unbiased sample variance of each row of `x`.

    The unbiased estimator divides the sum of squared deviations from the sample mean by n - 1
    (Bessel's correction): the sample mean sits closer to the data than the true mean does, so
    dividing by n would underestimate the variance on average.

    Shapes:
        x: [batch, n], n >= 2 observations per row
        returns: [batch], the unbiased variance of each row

    Hints (the next one: katas hint sample_variance 2):
        1. Subtract each row's own mean (keep its axis so it broadcasts), square, then sum over the row.
    """
    raise NotImplementedError


@kata
def sample_std(x: Float[Tensor, "batch n"]) -> Float[Tensor, "batch"]:
    """Return the sample standard deviation of each row of `x`: the square root of the unbiased variance.

    Shapes:
        x: [batch, n], n >= 2 observations per row
        returns: [batch], the standard deviation of each row

    Hints (the next one: katas hint sample_std 2):
        1. The standard deviation has the units of x; the variance has units of x squared.
    """
    raise NotImplementedError


@kata
def normal_pdf(x: Float[Tensor, "*shape"], mu: Float[Tensor, ""], sigma: Float[Tensor, ""]) -> Float[Tensor, "*shape"]:
    """Return the density of the normal distribution N(mu, sigma^2) at every element of `x`.

    p(x) = exp(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi)). Note that `sigma` is the standard
    deviation, not the variance.

    Shapes:
        x: any shape
        mu, sigma: [] (0-d tensors), sigma > 0
        returns: the shape of x

    Hints (the next one: katas hint normal_pdf 2):
        1. Standardize first: z, the distance from x to mu counted in standard deviations, turns the exponent
           into -z^2 / 2.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint normal_log_pdf 2):
        1. The log of exp(something) is just that something: no exp is needed anywhere.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint gaussian_log_likelihood 2):
        1. A product of many small densities underflows; a sum of log-densities does not.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint gaussian_mle 2):
        1. Derive d/dmu and d/d(sigma^2) of the log likelihood and set them to zero; the mean comes out first.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint categorical_mle 2):
        1. First count how often each class occurs in each row; then turn counts into fractions.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint fit_gaussian_by_gradient_ascent 2):
        1. Make mu and log_sigma 0-d tensors with requires_grad=True; autograd gives the derivatives of your
           gaussian_log_likelihood (divided by n) with respect to both.
    """
    raise NotImplementedError


@kata
def log_softmax(logits: Float[Tensor, "batch k"]) -> Float[Tensor, "batch k"]:
    """Return log(softmax(logits)) over the last axis, computed stably.

    softmax(l)_j = exp(l_j) / sum_i exp(l_i). With logits of size 1e4, exp overflows to inf and
    the naive formula returns nan. Subtracting the row's maximum changes nothing mathematically
    (it cancels between numerator and denominator) but keeps every exp at most 1.

    Shapes:
        logits: [batch, k], one row of unnormalized log-probabilities per example
        returns: [batch, k], the log-probabilities; exp of each row sums to 1

    Hints (the next one: katas hint log_softmax 2):
        1. log softmax(l)_j = l_j - log(sum_i exp(l_i)): the second term is one number per row (log-sum-exp).
    """
    raise NotImplementedError


@kata
def cross_entropy(logits: Float[Tensor, "batch k"], targets: Int[Tensor, "batch"]) -> Float[Tensor, ""]:
    """Return the mean categorical cross-entropy of the `targets` under the distributions given by `logits`.

    For one example it is -log softmax(logits)[target]: the negative log-probability the model
    gives the right class. Average it over the batch. Must stay finite for logits of size 1e4.

    Shapes:
        logits: [batch, k], unnormalized log-probabilities
        targets: [batch], integer class indices in [0, k)
        returns: [] (0-d tensor), the mean over the batch

    Hints (the next one: katas hint cross_entropy 2):
        1. Start from your stable log_softmax, never from log(softmax(...)).
    """
    raise NotImplementedError


@kata
def entropy(probs: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the entropy H(p) = -sum_j p_j log p_j (in nats) of each categorical distribution.

    Classes with probability 0 contribute 0 (the limit of p log p as p -> 0), not nan.

    Shapes:
        probs: [batch, k], each row a distribution (non-negative, sums to 1)
        returns: [batch], the entropy of each row

    Hints (the next one: katas hint entropy 2):
        1. 0 * log(0) is 0 * (-inf) = nan in floating point: those terms need special care.
    """
    raise NotImplementedError


@kata
def kl_divergence(p: Float[Tensor, "batch k"], q: Float[Tensor, "batch k"]) -> Float[Tensor, "batch"]:
    """Return the KL divergence KL(p || q) = sum_j p_j log(p_j / q_j) of each pair of rows.

    KL is not symmetric: KL(p || q) averages the log-ratio under p, the first argument. Classes
    with p_j = 0 contribute 0 (q may be anything there); q is positive wherever p is.

    Shapes:
        p, q: [batch, k], each row a distribution
        returns: [batch], KL(p[b] || q[b]) in nats

    Hints (the next one: katas hint kl_divergence 2):
        1. KL(p || q) = sum_j p_j log p_j - sum_j p_j log q_j: a negative entropy plus a cross-entropy.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint sample_exponential 2):
        1. Solve u = 1 - exp(-lambda x) for x.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint box_muller 2):
        1. -2 log(u1) is exponentially distributed with mean 2, which is how a chi-squared with 2 degrees of
           freedom, x^2 + y^2 for two standard normals, is distributed: it is the squared radius.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint std_of_sample_means 2):
        1. Two reductions over two different axes: first average within each experiment, then measure the
           spread across experiments.
    """
    raise NotImplementedError


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

    Hints (the next one: katas hint standardised_means 2):
        1. Centre the mean of each row at 0, then scale it so that its standard deviation is 1 whatever n is.
    """
    raise NotImplementedError
