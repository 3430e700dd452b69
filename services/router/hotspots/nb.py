"""Negative-binomial statistics for hot-spot counts: tail p-values, the per-cell baseline fit,
dispersion estimated from the data, and the NB CUSUM. Pure and vectorised over cells.

Parametrisation: a count Y has mean mu and variance mu + alpha * mu**2 (alpha = 1/size; alpha = 0
is Poisson). Real crime and incident counts are overdispersed: a ward's rate moves from week to
week for reasons no model of the ward sees (a prolific offender, a fair, the weather), so the
Poisson tail the detector used before treated ordinary weeks as rare.

The baseline fit is the log-linear NB GLM of Farrington's flexible algorithm (Noufaily et al.
2013): log mu_t = b0 [+ b1 t] [+ b2 step_t], fitted by iteratively reweighted least squares
with prior weights that down-weight past outbreaks (Pearson residual above 2.58 gets weight
(2.58/r)**2) instead of capping them. It is hand-written only because it is fitted for every
(ward, category) cell at once, as one batch of 3x3 solves: statsmodels' GLM gives the same
coefficients (tests/unit/router/test_hotspot_nb.py checks it) but costs ~3 ms per cell per fit.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.special import betainc, gammaincinv, pdtrc

FloatArray = NDArray[np.float64]

#: Pearson residual above which a past week is taken as an outbreak and down-weighted.
REWEIGHT_AT = 2.58


def nb_upper_p(count: float, mu: float, alpha: float) -> float:
    """P(Y >= count) for Y with mean ``mu`` and variance ``mu + alpha mu^2``."""
    if mu < 0 or alpha < 0 or math.isnan(mu) or math.isnan(alpha):
        raise ValueError(f"need mu >= 0 and alpha >= 0, got mu={mu!r}, alpha={alpha!r}")
    if count <= 0:
        return 1.0
    if mu == 0:
        return 0.0
    if alpha < 1e-9:
        return float(pdtrc(count - 1, mu))
    size = 1.0 / alpha
    # P(Y >= y) = I_{mu/(size+mu)}(y, size), the regularised incomplete beta (exact for a
    # non-integer size, which scipy's nbdtrc would truncate).
    return float(betainc(count, size, mu / (size + mu)))


def nb_upper_p_array(count: FloatArray, mu: FloatArray, alpha: FloatArray) -> FloatArray:
    """Vectorised :func:`nb_upper_p` (same conventions; inputs broadcast)."""
    count, mu, alpha = np.broadcast_arrays(np.asarray(count, float), np.asarray(mu, float),
                                           np.asarray(alpha, float))
    out = np.ones(count.shape)
    live = count > 0
    pois = live & (alpha < 1e-9)
    nb = live & ~pois
    safe_mu = np.maximum(mu, 1e-300)
    out[pois] = pdtrc(count[pois] - 1, safe_mu[pois])
    size = 1.0 / np.maximum(alpha[nb], 1e-9)
    out[nb] = betainc(count[nb], size, safe_mu[nb] / (size + safe_mu[nb]))
    out[live & (mu <= 0)] = 0.0
    return out


def two_level_shape(alpha: FloatArray) -> FloatArray:
    """Gamma shape of each of two independent unit-mean levels whose product has variance alpha:
    (1 + 1/a)^2 - 1 = alpha, i.e. 1/a = sqrt(1 + alpha) - 1."""
    inv = np.sqrt(1.0 + np.maximum(np.asarray(alpha, float), 0.0)) - 1.0
    return np.asarray(1.0 / np.maximum(inv, 1e-12), dtype=np.float64)


def two_level_upper_p_array(count: FloatArray, mu: FloatArray, alpha: FloatArray,
                            nodes: int = 96) -> FloatArray:
    """P(Y >= count) for Y ~ Poisson(mu L1 L2), L1 and L2 independent unit-mean gammas of
    equal shape chosen so that Y has the same mean and variance as the NB (mu, alpha).

    Why: a ward's week is a week's random level times the short-term levels of its days (a
    fair, a prolific offender, a hot evening); the product of two such levels has the NB's
    variance but a much heavier far tail (a 1-in-10,000 week that the NB calls 1e-5 or less;
    notes/issue-17.md, i17-tail). Given L1 the count is NB (L2 integrates out exactly); L1 is
    integrated numerically on a log-spaced grid spanning its 1e-12..1 - 1e-14 quantiles.
    Inputs broadcast; alpha ~ 0 is the Poisson tail.
    """
    count, mu, alpha = np.broadcast_arrays(np.asarray(count, float), np.asarray(mu, float),
                                           np.asarray(alpha, float))
    out = nb_upper_p_array(count, mu, alpha)
    mix = (count > 0) & (mu > 0) & (alpha >= 1e-6)
    if not mix.any():
        return out
    c, m = count[mix][:, None], mu[mix][:, None]
    a = two_level_shape(alpha[mix])[:, None]
    lo = gammaincinv(a, 1e-12) / a
    hi = gammaincinv(a, 1.0 - 1e-14) / a
    u = np.linspace(0.0, 1.0, nodes)[None, :]
    g = np.exp(np.log(np.maximum(lo, 1e-300)) * (1 - u) + np.log(hi) * u)  # [rows, nodes]
    # Weights: the gamma density in log g (density x g), normalised on the grid.
    logw = a * np.log(a * g) - a * g
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    mg = m * g
    out[mix] = (w * betainc(c, a, mg / (a + mg))).sum(axis=1)
    return out


def fit_loglinear(y: FloatArray, x: FloatArray, prior: FloatArray, alpha: FloatArray,
                  iterations: int = 25) -> tuple[FloatArray, FloatArray]:
    """NB GLM with log link, known ``alpha`` per cell, by IRLS, for many cells at once.

    y, prior: [cells, T]; x: [cells, T, p]; alpha: [cells]. Returns (beta [cells, p],
    covariance [cells, p, p]). A prior weight of 0 drops an observation (padding, columns not
    used by a cell are all zero and get a tiny ridge so the solve stays defined).
    """
    cells, _, p = x.shape
    ybar = (prior * y).sum(1) / np.maximum(prior.sum(1), 1e-12)
    beta: FloatArray = np.zeros((cells, p))
    beta[:, 0] = np.log(np.maximum(ybar, 1e-3))
    ridge = 1e-8 * np.eye(p)
    a = alpha[:, None]
    xt = x.transpose(0, 2, 1)
    for _ in range(iterations):
        eta = np.clip((x @ beta[:, :, None])[:, :, 0], -20.0, 12.0)
        mu = np.exp(eta)
        w = prior * mu / (1.0 + a * mu)
        z = eta + (y - mu) / mu
        xtw = xt * w[:, None, :]
        info = xtw @ x + ridge
        rhs = xtw @ z[:, :, None]
        new = np.asarray(np.linalg.solve(info, rhs)[:, :, 0], dtype=np.float64)
        done = np.abs(new - beta).max() < 1e-8
        beta = new
        if done:
            break
    eta = np.clip((x @ beta[:, :, None])[:, :, 0], -20.0, 12.0)
    mu = np.exp(eta)
    w = prior * mu / (1.0 + a * mu)
    info = (xt * w[:, None, :]) @ x + ridge
    cov = np.asarray(np.linalg.inv(info), dtype=np.float64)
    return beta, cov


def pearson(y: FloatArray, mu: FloatArray, alpha: FloatArray) -> FloatArray:
    """Pearson residuals (y - mu) / sqrt(mu + alpha mu^2); alpha broadcasts per cell."""
    return (y - mu) / np.sqrt(np.maximum(mu + alpha * mu * mu, 1e-12))


def outbreak_weights(residuals: FloatArray, threshold: float = REWEIGHT_AT) -> FloatArray:
    """Farrington-style prior weights: 1, or (threshold / r)^2 for a residual above threshold."""
    r = np.maximum(residuals, threshold)
    return (threshold / r) ** 2


def moment_dispersion(y: FloatArray, mu: FloatArray, prior: FloatArray,
                      n_params: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-cell moment statistics for alpha: (numerator, denominator) with
    alpha_hat = numerator / denominator (clipped at 0 by the caller).

    sum w((y - mu)^2 - mu) / sum w mu^2, with the residual sum scaled by n / (n - p) so that
    fitting p coefficients does not make the counts look less dispersed than they are.
    """
    n = (prior > 0).sum(1).astype(float)
    scale = n / np.maximum(n - n_params, 1.0)
    num = (prior * ((y - mu) ** 2 * scale[:, None] - mu)).sum(1)
    den = (prior * mu * mu).sum(1)
    return num, den


def pooled_alpha(num: FloatArray, den: FloatArray, floor: float = 0.0) -> float:
    """One alpha for a group of similar cells (the category): sum of numerators over sum of
    denominators, i.e. each cell weighted by how much its counts can say about alpha."""
    total = float(den.sum())
    if total <= 0:
        return floor
    return max(floor, float(num.sum()) / total)


def shrunk_alpha(num: FloatArray, den: FloatArray, pool: float,
                 prior_den: FloatArray) -> FloatArray:
    """Per-cell alpha shrunk towards the pooled value: (num + prior_den*pool) / (den + prior_den).

    ``prior_den`` is the weight of the pool in the same units as ``den`` (sum of mu^2): a busy
    cell's own weeks dominate, a sparse cell (whose mu^2 sum is tiny) takes the pooled value.
    """
    return np.maximum((num + prior_den * pool) / np.maximum(den + prior_den, 1e-12), 0.0)


def nb_cusum_llr(count: FloatArray, mu0: FloatArray, alpha: FloatArray,
                 ratio: float) -> FloatArray:
    """Log-likelihood ratio of one count for mean ``ratio * mu0`` against ``mu0`` (same size).

    The increment of the NB CUSUM (Höhle & Paul 2008): y log(mu1 (mu0 + s) / (mu0 (mu1 + s)))
    + s log((mu0 + s) / (mu1 + s)) with s = 1 / alpha; alpha -> 0 gives the Poisson form
    y log(ratio) - (mu1 - mu0).
    """
    mu0 = np.maximum(np.asarray(mu0, float), 1e-9)
    mu1 = ratio * mu0
    a = np.asarray(alpha, float)
    count = np.asarray(count, float)
    pois = count * math.log(ratio) - (mu1 - mu0)
    s = 1.0 / np.maximum(a, 1e-9)
    nb = count * np.log(mu1 * (mu0 + s) / (mu0 * (mu1 + s))) + s * np.log((mu0 + s) / (mu1 + s))
    return np.where(a < 1e-9, pois, nb)


__all__ = [
    "REWEIGHT_AT",
    "fit_loglinear",
    "moment_dispersion",
    "nb_cusum_llr",
    "nb_upper_p",
    "nb_upper_p_array",
    "outbreak_weights",
    "pearson",
    "pooled_alpha",
    "shrunk_alpha",
    "two_level_shape",
    "two_level_upper_p_array",
]
