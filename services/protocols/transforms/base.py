"""The shape every transform shares, and the small parameter checks they all use.

A protocol file names one transform per field with its parameters. ``validate`` runs when the
protocol is loaded so a bad protocol is refused before any record flows; ``apply`` runs per record
and trusts the parameters it is given.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any, ClassVar, Final

from services.core.config.errors import ConfigError


class _Drop(enum.Enum):
    # An enum member survives copy, deepcopy and pickle as the same object, so `is DROP` holds
    # wherever the value travels; a plain object() would not.
    DROP = "DROP"

    def __repr__(self) -> str:
        return "DROP"


#: Returned by ``apply`` to mean "leave this field out of the shared record".
DROP: Final = _Drop.DROP


@dataclass(frozen=True)
class AreaInfo:
    """The statutory areas a record's precise location falls in, looked up before generalising.

    ``ward_point`` is (lat, lon) of the ward polygon's *representative point* (a point guaranteed
    inside the polygon). It stands in for a population-weighted centre, which would need population
    data the hub does not hold.
    """

    ward_code: str | None
    ward_name: str | None
    district_code: str | None
    district_name: str | None
    ward_point: tuple[float, float] | None


@dataclass(frozen=True)
class TransformContext:
    """Everything a transform may need beyond the field's own value.

    ``record`` is the whole plaintext record (free-text scrubbing removes the record's own personal
    values). The record and the key are kept out of ``repr`` so a logged context leaks neither.
    """

    record: Mapping[str, Any] = dc_field(repr=False)
    feed: str
    field: str
    personal_fields: frozenset[str]
    event_time: datetime | None
    area: AreaInfo | None
    pseudonym_key: bytes | None = dc_field(repr=False)
    key_epoch: int | None
    protocol_id: str


class Transform(ABC):
    """One named, parameterised field transform."""

    name: ClassVar[str]
    #: False when the transform releases the value as it is: the protocol loader refuses such a
    #: transform on a field marked personal.
    applies_to_personal: ClassVar[bool] = True

    @abstractmethod
    def validate(self, params: Mapping[str, Any]) -> None:
        """Raise ConfigError(reason, field=<param>) if ``params`` are unknown or invalid."""

    @abstractmethod
    def apply(self, value: Any, params: Mapping[str, Any], ctx: TransformContext) -> Any:
        """The released value, or DROP. ``params`` have passed ``validate``."""

    def __repr__(self) -> str:
        return f"<transform {self.name}>"


# --- parameter checks shared by the transforms -------------------------------------------------


def check_mapping(params: object) -> Mapping[str, Any]:
    if not isinstance(params, Mapping):
        raise ConfigError(f"parameters must be a mapping, got {type(params).__name__}")
    return params


def check_known(params: Mapping[str, Any], allowed: Collection[str], transform: str) -> None:
    """Refuse parameters the transform does not know: a typo must not silently mean the default."""
    for key in params:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"unknown parameter {key!r} for transform {transform!r}; "
                              f"allowed: {known}", field=str(key))


def check_choice(params: Mapping[str, Any], key: str, choices: Collection[str], *,
                 required: bool) -> None:
    if key not in params:
        if required:
            raise ConfigError(f"parameter {key!r} is required; one of {', '.join(choices)}",
                              field=key)
        return
    value = params[key]
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}; got {value!r}", field=key)


def is_int(value: object) -> bool:
    # bool is an int subclass; `metres: true` in YAML must not mean one metre.
    return isinstance(value, int) and not isinstance(value, bool)
