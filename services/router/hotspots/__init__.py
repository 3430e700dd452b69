"""Pure hot-spot detection for the router: statistics, ward adjacency, Gi*, the detector.

No broker imports here, so everything is testable in milliseconds and reusable offline.
"""

from .adjacency import (
    DEFAULT_WARDS_PATH,
    WardFeature,
    build_adjacency,
    load_ward_districts,
    load_ward_features,
    ward_adjacency,
    ward_districts,
)
from .detector import (
    WINDOW_KINDS,
    Alert,
    DetectorConfig,
    HotspotDetector,
    WindowKind,
    window_bounds,
    window_index,
)
from .engine import CountEngine, EngineConfig, Event
from .getis_ord import gi_star
from .stats import (
    BHResult,
    EwmaState,
    benjamini_hochberg,
    ewma_smoothing,
    ewma_update,
    poisson_exceedance_p,
)

__all__ = [
    "DEFAULT_WARDS_PATH",
    "WINDOW_KINDS",
    "Alert",
    "BHResult",
    "CountEngine",
    "DetectorConfig",
    "EngineConfig",
    "Event",
    "EwmaState",
    "HotspotDetector",
    "WardFeature",
    "WindowKind",
    "benjamini_hochberg",
    "build_adjacency",
    "ewma_smoothing",
    "ewma_update",
    "gi_star",
    "load_ward_districts",
    "load_ward_features",
    "poisson_exceedance_p",
    "ward_adjacency",
    "ward_districts",
    "window_bounds",
    "window_index",
]
