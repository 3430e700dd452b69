"""Prospective expectation-based space-time scan over ward adjacency (pure, bounded cost).

In the manner of SaTScan's expectation-based Poisson scan (Neill et al. 2005), made honest for
overdispersed counts: candidate zones are a ward alone, a ward with any one or two of its
neighbours (``neighbours``), and a ward with all its neighbours (a hot spot of a ward and two of
its five neighbours was seen before only diluted or in part); time windows are the last
1..``max_weeks`` weeks ending now
(prospective: only clusters still alive are looked for). A zone's score (``nb_score``, the
engine's default) is the negative-binomial log-likelihood ratio of its count C against its
baseline B, with the NB size r = B^2 / sum(alpha mu^2) of the zone's sum:
C log(C/B) + (C + r) log((B + r) / (C + r)) for C > B. The older score (``nb_score=False``) is
the Poisson LLR C log(C/B) - (C - B) divided by the dispersion factor (B + sum alpha mu^2) / B
(a quasi-likelihood scan); it let one heavy single-ward week outscore a three-ward, three-week
cluster, so the maximum over zones was decided by the smallest zones' tails.

Significance is by Monte Carlo: ``replicates`` null worlds drawn from the baseline of every ward
(negative binomial, or with ``two_level`` Poisson counts on a product of two gamma levels of the
same variance, the heavier tail of :func:`.nb.two_level_upper_p_array`), the maximum score of
each, and p = (1 + #{max_r >= score}) / (R + 1) for
every reported cluster. That is one p-value per cluster however many wards it spans, adjusted
for every zone and time window looked at. Secondary clusters are the next best zones sharing no
ward with a reported one, each against the same maximum distribution (SaTScan's conservative
rule). The random stream is seeded from the category and window index, so a recount gives the
same p-values.

Cost: zones ~ wards x (2 + d + d(d-1)/2) for d mean neighbours, less repeats: 2,807 for
Hertfordshire's 186 wards (878 with one neighbour at most); per replicate one dense
(zones x wards) product per window length; the engine uses 399
replicates x 3 lengths.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from numpy.typing import NDArray

from .nb import two_level_shape

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ScanCluster:
    wards: tuple[str, ...]  # the zone's wards, the centre first
    weeks: int  # length of the time window, ending with the week just closed
    observed: int
    expected: float
    score: float
    p_value: float


def build_zones(wards: Sequence[str], adjacency: Mapping[str, frozenset[str]],
                neighbours: int = 1) -> tuple[list[tuple[int, ...]], FloatArray]:
    """Candidate zones (as ward indices, the centre first) and their membership matrix: each
    ward alone, with every set of up to ``neighbours`` of its neighbours, and with all of them."""
    index = {w: i for i, w in enumerate(wards)}
    seen: set[frozenset[int]] = set()
    zones: list[tuple[int, ...]] = []
    for i, ward in enumerate(wards):
        nbrs = sorted(index[n] for n in adjacency.get(ward, frozenset()) if n in index)
        subsets = [c for k in range(1, neighbours + 1) for c in combinations(nbrs, k)]
        for members in ((i,), *((i, *c) for c in subsets), (i, *nbrs)):
            key = frozenset(members)
            if key not in seen:
                seen.add(key)
                zones.append(members)
    matrix = np.zeros((len(zones), len(wards)))
    for z, members in enumerate(zones):
        matrix[z, list(members)] = 1.0
    return zones, matrix


def _scores(c: FloatArray, b: FloatArray, v: FloatArray, nb: bool = False) -> FloatArray:
    b = np.maximum(b, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        if nb:
            # NB log-likelihood ratio of the zone's sum C for mean C against B, its size r
            # from the sum's extra variance v (= B^2 / r); r -> inf is the Poisson LLR.
            r = b * b / np.maximum(v, 1e-12)
            llr = c * np.log(np.maximum(c, 1e-300) / b) + (c + r) * np.log((b + r) / (c + r))
            return np.where(c > b, np.maximum(llr, 0.0), 0.0)
        llr = np.where(c > b, c * np.log(np.maximum(c, 1e-300) / b) - (c - b), 0.0)
    return llr * b / (b + v)


def scan(observed: FloatArray, expected: FloatArray, alpha: FloatArray,
         zones: list[tuple[int, ...]], matrix: FloatArray, wards: Sequence[str], *,
         seed_key: str, replicates: int = 199, level: float = 0.01,
         max_clusters: int = 5, two_level: bool = False,
         nb_score: bool = False) -> list[ScanCluster]:
    """Significant clusters, most significant first.

    observed, expected: [wards, L] for the last L weeks (most recent last); alpha: [wards].
    """
    n_wards, weeks = observed.shape
    if n_wards == 0 or weeks == 0 or not zones:
        return []
    var = expected * expected * alpha[:, None]
    # Cumulative sums from the most recent week backwards: window l is the last l weeks.
    cum_o = np.cumsum(observed[:, ::-1], axis=1)
    cum_e = np.cumsum(expected[:, ::-1], axis=1)
    cum_v = np.cumsum(var[:, ::-1], axis=1)
    zc, ze, zv = matrix @ cum_o, matrix @ cum_e, matrix @ cum_v  # [zones, L]
    score = _scores(zc, ze, zv, nb_score)
    best = score.max()
    if best <= 0:
        return []
    rng = np.random.default_rng(zlib.crc32(seed_key.encode()))
    # Gamma-Poisson draws of the NB null, [R, wards, L]; two-level: the product of two gamma
    # levels with the NB's variance (nb.two_level_upper_p_array), the heavier far tail.
    if two_level:
        shape = two_level_shape(alpha)
        gam = (rng.gamma(shape[None, :, None], 1.0 / shape[None, :, None],
                         (replicates, n_wards, weeks))
               * rng.gamma(shape[None, :, None], 1.0 / shape[None, :, None],
                           (replicates, n_wards, weeks)))
    else:
        shape = 1.0 / np.maximum(alpha, 1e-9)
        gam = rng.gamma(shape[None, :, None], 1.0 / shape[None, :, None],
                        (replicates, n_wards, weeks))
    gam = np.where(alpha[None, :, None] < 1e-9, 1.0, gam)
    sims = rng.poisson(expected[None] * gam).astype(float)
    cum_s = np.cumsum(sims[:, :, ::-1], axis=2)  # [R, wards, L]
    zs = (matrix @ cum_s.transpose(1, 0, 2).reshape(n_wards, -1)).reshape(
        len(zones), replicates, weeks).transpose(1, 0, 2)
    sim_max = _scores(zs, ze[None], zv[None], nb_score).reshape(replicates, -1).max(axis=1)
    # Candidates above the smallest score that could be significant.
    order = np.argsort(-score, axis=None)
    critical = np.sort(sim_max)[::-1]
    out: list[ScanCluster] = []
    used: set[int] = set()
    for flat in order:
        z, l_idx = divmod(int(flat), weeks)
        s = float(score[z, l_idx])
        if s <= 0:
            break
        p = (1 + int((critical >= s).sum())) / (replicates + 1)
        if p > level:
            break
        members = zones[z]
        if used.intersection(members):
            continue
        used.update(members)
        out.append(ScanCluster(tuple(wards[i] for i in members), l_idx + 1, int(zc[z, l_idx]),
                               float(ze[z, l_idx]), s, p))
        if len(out) >= max_clusters:
            break
    return out


__all__ = ["ScanCluster", "build_zones", "scan"]
