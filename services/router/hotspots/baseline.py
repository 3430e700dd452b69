"""The weekly baseline of every (ward, category) cell: history, refit and dispersion.

At each week close the week's counts join the history and every cell of the category is refitted
at once (:func:`.nb.fit_loglinear`): intercept, a trend when significant, a step from a confirmed
level shift; past outbreaks down-weighted (:func:`.nb.outbreak_weights`), not capped; dispersion
by moments, pooled per category and shrunk per cell. Details and reasons: :mod:`.engine`.
"""

from __future__ import annotations

import numpy as np

from .cells import CategoryCells
from .engine_config import EngineConfig
from .nb import (
    fit_loglinear,
    moment_dispersion,
    outbreak_weights,
    pearson,
    pooled_alpha,
    shrunk_alpha,
)


def append_week(cfg: EngineConfig, cat: CategoryCells, y: np.ndarray, idx: int) -> None:
    """Fold week ``idx`` into the history and refit every cell for week idx + 1."""
    cat.hist = np.roll(cat.hist, -1, axis=1)
    cat.hist[:, -1] = y
    cat.hist_weeks = min(cat.hist_weeks + 1, cat.hist.shape[1])
    keep = max(cfg.scan_weeks - 1, cfg.evidence_weeks - 1, 1)
    cat.recent_mu = np.column_stack([cat.recent_mu, np.maximum(cat.pred, 1e-6)])[:, -keep:]
    cat.recent_a = np.column_stack([cat.recent_a, cat.alpha + cat.pred_v])[:, -keep:]
    cat.last_week = idx
    if cat.profile.any():
        cat.profile *= cfg.profile_decay
    refit(cfg, cat)

def refit(cfg: EngineConfig, cat: CategoryCells) -> None:
    n, h = cat.hist.shape
    t_len = cat.hist_weeks
    if t_len == 0:
        return
    weeks = np.arange(cat.last_week - h + 1, cat.last_week + 1)  # absolute week per column
    valid = np.zeros((n, h))
    valid[:, h - t_len:] = 1.0
    t = (weeks - (cat.last_week + 1)) / 10.0
    step = (weeks[None, :] >= cat.shift[:, None]) & (cat.shift[:, None] >= 0)
    has_step = (cat.shift >= 0) & (cat.shift > cat.last_week - t_len)
    x = np.zeros((n, h, 3))
    x[:, :, 0] = 1.0
    x[:, :, 2] = step * has_step[:, None]
    can_trend = t_len >= cfg.trend_min_weeks
    # Half an event of pseudo-count spread over the history (a Jeffreys-like prior): a ward
    # with no events yet gets a small positive rate with honest uncertainty, not mu = 0.
    y = cat.hist + valid * (0.5 / t_len)
    prior = valid
    beta = cov = None
    for rep in range(2):  # fit; estimate alpha; refit with past outbreaks down-weighted
        xt = x.copy()
        if can_trend:
            xt[:, :, 1] = t[None, :] * valid
        bt, ct = fit_loglinear(y, xt, prior, cat.alpha)
        b0, c0 = fit_loglinear(y, x, prior, cat.alpha)
        use_trend = np.zeros(n, dtype=bool)
        if can_trend:
            z = bt[:, 1] / np.sqrt(np.maximum(ct[:, 1, 1], 1e-12))
            pred_t = np.exp(bt[:, 0] + bt[:, 2] * has_step)
            ceiling = (y * valid).max(axis=1)
            use_trend = (np.abs(z) >= cfg.trend_z) & (pred_t <= np.maximum(ceiling, 1.0))
        beta = np.where(use_trend[:, None], bt, b0)
        cov = np.where(use_trend[:, None, None], ct, c0)
        xf = np.where(use_trend[:, None, None], xt, x)
        mu_fit = np.exp(np.clip((xf @ beta[:, :, None])[:, :, 0], -20, 12))
        if rep == 0:
            _estimate_alpha(cfg, cat, y, mu_fit, valid, use_trend, has_step, t_len)
            # Residuals on the dispersion just estimated: with the previous (or initial)
            # alpha, ordinary heavy-tailed weeks looked like outbreaks and were dropped,
            # which pulled the baseline below the truth.
            prior = valid * outbreak_weights(pearson(y, mu_fit, cat.alpha[:, None]))
    assert beta is not None
    assert cov is not None
    x_new = np.stack([np.ones(n), np.zeros(n), has_step.astype(float)], axis=1)
    eta = (x_new * beta).sum(1)
    cat.pred = np.exp(np.clip(eta, -20, 12))
    v = ((cov @ x_new[:, :, None])[:, :, 0] * x_new).sum(1)
    # The fitted mean is uncertain: a log-normal error of variance v in it adds
    # (e^v - 1) mu^2 to the variance of the count, i.e. e^v - 1 to alpha.
    cat.pred_v = np.expm1(np.minimum(v, 5.0))

def _estimate_alpha(cfg: EngineConfig, cat: CategoryCells, y: np.ndarray, mu_fit: np.ndarray,
                    valid: np.ndarray, use_trend: np.ndarray, has_step: np.ndarray,
                    t_len: int) -> None:
    params = 1 + use_trend.astype(float) + has_step.astype(float)
    # Dispersion from every week at full weight: the down-weighted weeks are exactly the
    # heavy tail alpha describes, and leaving them out made alpha too small (more false
    # alerts at strong overdispersion in bench/hotspot_sim.py).
    num, den = moment_dispersion(y, mu_fit, valid, params)
    cat.alpha_pool = pooled_alpha(num, den)
    mean_mu = (mu_fit * valid).sum(1) / max(t_len, 1)
    prior_den = cfg.pool_weeks * mean_mu * mean_mu
    # A cell may be more dispersed than its category, not less: a calm half-year in a cell
    # is more often luck than a calmer place, and an alpha below the pool alerts on noise.
    cat.alpha = np.maximum(shrunk_alpha(num, den, cat.alpha_pool, prior_den),
                           cat.alpha_pool)


__all__ = ["append_week", "refit"]
