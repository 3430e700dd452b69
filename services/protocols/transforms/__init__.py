"""The protocol engine's field transforms, pure functions of (value, params, context).

A protocol file names one transform per released field; ``get_transform(name)`` finds it and its
``validate(params)`` runs when the protocol is loaded. Names and parameters:

=============  ================================================================================
name           parameters
=============  ================================================================================
drop           none. Always DROP.
keep           none. The value unchanged; ``applies_to_personal`` is False.
pseudonymise   ``with``: optional list of other field names folded into one identity.
location       ``to``: ward | district | grid | ward_centre | snap; ``metres``: 50..10000 (grid).
time           ``to``: hour | day | week | month. Event times only (not for personal fields).
age_band       ``bands``: optional ascending list of ages, default [0, 10, 18, 25, 35, 50, 65].
postcode       ``to``: outward | sector.
free_text      ``mode``: drop (default) | vocabulary (``vocabulary``: id@version) | tags
               (``tagset``: id@version). ``scrub`` is refused.
=============  ================================================================================

Unknown parameters are refused: a misspelt ``meters`` must not silently mean "no generalisation".
"""

from __future__ import annotations

from typing import Final

from services.core.config.errors import ConfigError
from services.protocols.transforms.age_band import AgeBand
from services.protocols.transforms.base import DROP, AreaInfo, Transform, TransformContext
from services.protocols.transforms.drop import Drop
from services.protocols.transforms.free_text import FreeText
from services.protocols.transforms.keep import Keep
from services.protocols.transforms.location import Location
from services.protocols.transforms.postcode import Postcode
from services.protocols.transforms.pseudonymise import Pseudonymise
from services.protocols.transforms.timebucket import TimeBucket

_ALL: tuple[Transform, ...] = (
    Drop(), Keep(), Pseudonymise(), Location(), TimeBucket(), AgeBand(), Postcode(), FreeText(),
)

#: Name used in protocol files -> transform.
REGISTRY: Final[dict[str, Transform]] = {t.name: t for t in _ALL}


def get_transform(name: str) -> Transform:
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"unknown transform {name!r}; known transforms: {known}") from None


__all__ = ["DROP", "REGISTRY", "AreaInfo", "Transform", "TransformContext", "get_transform"]
