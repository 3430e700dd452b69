"""Shared fixtures-as-functions for the router's hot-spot tests (real Hertfordshire wards)."""

from __future__ import annotations

from services.router.hotspots.adjacency import load_ward_districts, ward_adjacency

# The ten Hertfordshire districts in deploy/data/boundaries (the file also holds Halton and
# Test Valley, which must not leak into a Hertfordshire study area).
HERTS_LAD_CODES = frozenset({
    "E07000095", "E07000096", "E07000098", "E07000099", "E07000102",
    "E07000103", "E07000240", "E07000241", "E07000242", "E07000243",
})


def herts_districts() -> dict[str, str]:
    return {w: d for w, d in load_ward_districts().items() if d in HERTS_LAD_CODES}


def herts_adjacency() -> dict[str, frozenset[str]]:
    """Adjacency restricted to Hertfordshire wards (the cached full graph, filtered)."""
    wards = frozenset(herts_districts())
    return {w: nbrs & wards for w, nbrs in ward_adjacency().items() if w in wards}
