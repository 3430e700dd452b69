"""Getis–Ord Gi* local statistic with binary contiguity weights that include the ward itself.

Gi*_i = (sum_j w_ij x_j - xbar * W_i) / (S * sqrt((n * W_i - W_i**2) / (n - 1)))

with W_i = 1 + |neighbours(i)| (binary weights, so sum w_ij**2 == W_i), xbar and S the mean and
(population) standard deviation of x over all n study wards (Ord & Getis 1995). Under the null of
no spatial association Gi* is approximately standard normal, so z > ~2 marks a high cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def gi_star(values: Mapping[str, float], adjacency: Mapping[str, frozenset[str]],
            areas: Iterable[str] | None = None) -> dict[str, float]:
    """Gi* z-score for every study ward.

    The study area is ``areas`` if given, else every ward in ``adjacency`` plus any extra ward
    in ``values``; a ward missing from ``values`` counts as 0, because a ward with no events is
    information, not a gap. Neighbours outside the study area are ignored.
    """
    study = sorted(set(areas) if areas is not None else set(adjacency) | set(values))
    n = len(study)
    if n < 2:
        return dict.fromkeys(study, 0.0)
    x = {ward: float(values.get(ward, 0.0)) for ward in study}
    mean = math.fsum(x.values()) / n
    variance = math.fsum(v * v for v in x.values()) / n - mean * mean
    # Identical values everywhere (or float noise around that) means no clustering to report.
    if variance <= 1e-12 * max(1.0, mean * mean):
        return dict.fromkeys(study, 0.0)
    s = math.sqrt(variance)
    in_study = set(study)
    scores: dict[str, float] = {}
    for ward in study:
        # fsum is exact, so neighbour order cannot change the result (determinism for free).
        block = [ward, *((adjacency.get(ward, frozenset()) & in_study) - {ward})]
        w = len(block)
        spread = (n * w - w * w) / (n - 1)
        if spread <= 0:
            # The ward's neighbourhood is the whole study area: Gi* is undefined, report neutral.
            scores[ward] = 0.0
            continue
        local = math.fsum(x[j] for j in block)
        scores[ward] = (local - mean * w) / (s * math.sqrt(spread))
    return scores
