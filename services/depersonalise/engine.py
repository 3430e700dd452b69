"""Apply one protocol to one plaintext record. Pure: no I/O, no clock, no state.

Whether the protocol is *live* is the caller's question (see :mod:`lifecycle`); this module only
answers "what would this protocol release from this record". It is an allow-list: only fields the
protocol names for the feed are considered, a rule that yields DROP or None releases nothing, and
an absent (None) value is omitted rather than released as null, so "not known" and "withheld" look
the same to a recipient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from schemas.base import personal_fields
from schemas.feeds import FEEDS
from services.core.errors import ProtocolError
from services.protocols.protocol import Protocol
from services.protocols.transforms import DROP, AreaInfo, TransformContext, get_transform

AreaLevel = Literal["ward", "district", "none"]

_WARD_LEVEL = frozenset({"ward", "grid", "snap", "ward_centre"})


@dataclass(frozen=True)
class Released:
    fields: dict[str, Any]
    #: field -> transform name, for the released fields only (the audit trail of each value).
    transforms: dict[str, str] = field(default_factory=dict)
    #: The finest area the protocol lets recipients see; the caller attaches ward codes to the
    #: shared record only at "ward", district codes at "ward" or "district", nothing at "none".
    area_level: AreaLevel = "none"


def area_level(protocol: Protocol, feed: str) -> AreaLevel:
    """The area precision ``protocol`` releases for ``feed``, from its location rule.

    A grid cell, snapped point or ward centre pins a record to (at least) its ward, so all of them
    count as "ward". Without a location rule the record carries no area at all.
    """
    rules = protocol.feeds.get(feed)
    if rules is None:
        return "none"
    levels = {str(r.params.get("to")) for r in rules.fields.values() if r.transform == "location"}
    if levels & _WARD_LEVEL:
        return "ward"
    if "district" in levels:
        return "district"
    return "none"


def release(protocol: Protocol, feed: str, record: Mapping[str, Any], area: AreaInfo | None,
            pseudonym_key: bytes | None, key_epoch: int | None,
            event_time: datetime | None) -> Released:
    rules = protocol.feeds.get(feed)
    model = FEEDS.get(feed)
    if rules is None or model is None:
        raise ProtocolError(f"protocol {protocol.ref} does not cover feed {feed!r}")
    personal = personal_fields(model)
    fields: dict[str, Any] = {}
    transforms: dict[str, str] = {}
    for name, rule in rules.fields.items():
        value = record.get(name)
        if value is None or rule.transform == "drop":
            continue
        transform = get_transform(rule.transform)
        if name in personal and not transform.applies_to_personal:
            # The loader refuses this; checked again because a Protocol can be built in code
            # with model_construct, and a leak is worse than an exception.
            raise ProtocolError(f"{protocol.ref} would release personal field {name!r} as is")
        ctx = TransformContext(record=record, feed=feed, field=name, personal_fields=personal,
                               event_time=event_time, area=area, pseudonym_key=pseudonym_key,
                               key_epoch=key_epoch, protocol_id=protocol.id)
        out = transform.apply(value, rule.params, ctx)
        if out is DROP or out is None:
            continue
        fields[name] = out
        transforms[name] = rule.transform
    return Released(fields=fields, transforms=transforms, area_level=area_level(protocol, feed))
