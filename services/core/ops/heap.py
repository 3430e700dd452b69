"""Garbage-collector policy of a long-running service."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Move everything allocated so far (boundaries, protocols, loaded state, imported modules)
    out of the garbage collector's reach. Start-up objects live as long as the process, yet
    every full collection walked them all: 150-200 ms pauses of the router's event loop, with
    every delivery waiting behind them, several times a minute at 200 records/s (measured with
    gc callbacks, issue 12). Called when a stage starts its loop; calling it again is cheap."""
    gc.freeze()
