"""Property tests: whatever the person and whatever valid parameters, no transform but ``keep``
lets a personal value through.

Synthetic people are generated for every feed model, their values planted in the free text in the
forms people write them, next to canaries (identifiers that are *not* in the record) that only the
generic patterns can catch.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.base import free_text_fields, personal_fields
from schemas.feeds import FEEDS
from services.protocols.transforms import DROP, REGISTRY, TransformContext
from services.protocols.transforms.location import grid_centre, snap_anchor
from services.protocols.vocabularies import load_vocabulary
from tests.unit.depersonalise import OTHER_KEY, STEVENAGE, TEST_KEY

LOWER_ONLY = load_vocabulary("incident-en@1").lower_only


def nhs_check_digit_ok(digits: str) -> bool:
    """NHS number modulus 11: weights 10..2 on the first nine digits; 10 means invalid."""
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

FIRST = ["John", "Aisha", "Wei", "Siobhán", "Zoë", "Mohammed", "Olu", "Li", "Grace", "Will"]
LAST = ["Smith", "Rahman", "O'Brien", "Wu", "Okafor", "Smith-Jones", "Nowak", "Ng", "Rose"]
TOWNS = ["Stevenage", "Hitchin", "Letchworth", "Welwyn", "Royston"]
STREET_TYPES = ["Street", "Road", "Avenue", "Close", "Way", "Lane"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]

cap_word = st.builds(str.__add__, st.sampled_from(string.ascii_uppercase),
                     st.text(string.ascii_lowercase, min_size=2, max_size=9))
first_names = st.one_of(st.sampled_from(FIRST), cap_word)
last_names = st.one_of(st.sampled_from(LAST), cap_word)
letters = st.sampled_from("ABDEFGHJLNPRSTUWXYZ")
digit = st.integers(0, 9).map(str)


def digits(n: int) -> st.SearchStrategy[str]:
    return st.integers(0, 10**n - 1).map(lambda v: f"{v:0{n}d}")


@st.composite
def postcodes(draw: st.DrawFn) -> str:
    outward = draw(st.sampled_from(["SG1", "AL10", "LU3", "M1", "EC1A", "B33", "SG12"]))
    return f"{outward} {draw(digit)}{draw(letters)}{draw(letters)}"


@st.composite
def nhs_numbers(draw: st.DrawFn) -> str:
    body = draw(digits(9))
    for check in "0123456789":
        if nhs_check_digit_ok(body + check):
            return f"{body[:3]} {body[3:6]} {body[6:]}{check}"
    return draw(st.sampled_from(["943 476 5919", "401 023 2137"]))  # body has no valid check


@st.composite
def phones(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        rest = draw(digits(9))
        return f"07{rest[:3]} {rest[3:]}"
    rest = draw(digits(6))
    return f"01{draw(st.sampled_from(['438', '462', '707', '582']))} {rest}"


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    dob: date
    house: int
    street: str
    town: str
    postcode: str
    phone: str
    email: str
    nhs: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def address(self) -> str:
        return f"{self.house} {self.street}, {self.town}, {self.postcode}"

    def forms(self, kinds: frozenset[str]) -> dict[str, list[str]]:
        """How each held value turns up in a summary typed by a busy officer, by kind."""
        d = self.dob
        every = {
            "name": [self.name, f"{self.last.upper()}, {self.first}", self.first.lower(),
                     f"{self.last}'s", fold(self.name)],
            "dob": [f"{d:%d/%m/%Y}", f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
                    f"{MONTHS[d.month - 1]} {d.day}, {d.year}", f"{d:%d.%m.%y}", d.isoformat()],
            "address": [self.address, self.address.replace(",", "").lower(),
                        f"{self.house} {self.street}", self.town],
            "postcode": [self.postcode.replace(" ", ""), self.postcode.lower()],
            "phone": [self.phone, self.phone.replace(" ", ""), "+44 " + self.phone[1:]],
            "email": [self.email.upper(), self.email],
            "nhs": [self.nhs, self.nhs.replace(" ", "")],
        }
        return {k: v for k, v in every.items() if k in kinds}

    def values(self, kinds: frozenset[str]) -> list[str]:
        """The held values as the record holds them (the dob as ISO text)."""
        every = {"name": self.name, "dob": self.dob.isoformat(), "address": self.address,
                 "phone": self.phone, "email": self.email, "nhs": self.nhs,
                 "postcode": self.postcode}
        return [v for k, v in every.items() if k in kinds]

    def name_tokens(self) -> set[str]:
        tokens = set()
        for t in re.split(r"[\s\-]+", self.name):
            if len(t) >= 3 or (len(t) == 2 and t.casefold() not in {"of", "to", "in", "at"}):
                tokens.update({t, fold(t)})
        return tokens


@dataclass(frozen=True)
class Held:
    """A person and the kinds of their values that the record holds."""

    person: Person
    kinds: frozenset[str]

    def values(self) -> list[str]:
        return self.person.values(self.kinds)

    def written(self) -> list[str]:
        return [f for forms in self.person.forms(self.kinds).values() for f in forms]

    def name_tokens(self) -> set[str]:
        return self.person.name_tokens() if "name" in self.kinds else set()


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@st.composite
def people(draw: st.DrawFn) -> Person:
    first, last = draw(first_names), draw(last_names)
    local = re.sub(r"[^a-z]", "", fold(f"{first}.{last}").lower()) or "someone"
    return Person(
        first=first, last=last,
        dob=draw(st.dates(date(1925, 1, 1), date(2023, 12, 31))),
        house=draw(st.integers(1, 299)),
        street=f"{draw(cap_word)} {draw(st.sampled_from(STREET_TYPES))}",
        town=draw(st.sampled_from(TOWNS)), postcode=draw(postcodes()), phone=draw(phones()),
        email=f"{local}{draw(st.integers(1, 99))}@example.com", nhs=draw(nhs_numbers()))


@dataclass(frozen=True)
class Canaries:
    """Identifiers of nobody in the record: only the generic patterns can remove them."""

    nhs: str
    phone: str
    email: str
    postcode: str
    vrm: str
    ni: str

    def values(self) -> list[str]:
        return [self.nhs, self.phone, self.email, self.postcode, self.vrm, self.ni]


@st.composite
def canaries(draw: st.DrawFn) -> Canaries:
    two = "".join(draw(st.lists(letters, min_size=2, max_size=2)))
    three = "".join(draw(st.lists(letters, min_size=3, max_size=3)))
    six = draw(digits(6))
    return Canaries(
        nhs=draw(nhs_numbers()).replace(" ", draw(st.sampled_from(["", " ", "-"]))),
        phone=draw(phones()), email=f"canary.{six}@mail.example.org", postcode=draw(postcodes()),
        vrm=f"{two}{six[:2]} {three}", ni=f"{two}{six}{draw(st.sampled_from('ABCD'))}")


KINDS = ("dob", "name", "address", "phone", "email", "nhs", "postcode")


def kind_of(field: str) -> str:
    return next(k for k in KINDS if k in field)


def in_record(feed: str, a: Person, b: Person) -> list[Held]:
    """Who a record of ``feed`` names and what it holds of them: ``b`` is the suspect, if any."""
    model = FEEDS[feed]
    plain = personal_fields(model) - free_text_fields(model) - {"location"}
    held_a = frozenset(kind_of(f) for f in plain if not f.startswith("suspect"))
    held_b = frozenset(kind_of(f) for f in plain if f.startswith("suspect"))
    return [Held(a, held_a)] + ([Held(b, held_b)] if held_b else [])


def free_text(field: str, held: list[Held], c: Canaries) -> str:
    forms = [form for h in held for form in h.written()]
    planted = " ; ".join(f"note {i}: {form}" for i, form in enumerate(forms))
    # Each free-text field gets its own text: scrub removes another field's whole text when it is
    # quoted, which would empty an identical twin.
    return (f"In {field}: {planted}. Also mentioned NHS {c.nhs}, tel {c.phone}, {c.email}, seen at "
            f"{c.postcode} in car {c.vrm}, NI {c.ni}. Nothing else to add.")


def record_for(feed: str, a: Person, b: Person, c: Canaries,
               point: dict[str, float]) -> dict[str, Any]:
    """A record of ``feed`` with every personal field filled."""
    model = FEEDS[feed]
    held = in_record(feed, a, b)
    values: dict[str, Any] = {}
    for name in personal_fields(model):
        if name in free_text_fields(model):
            values[name] = free_text(name, held, c)
        elif name == "location":
            values[name] = point
        else:
            who = b if name.startswith("suspect") else a
            kind = kind_of(name)
            values[name] = who.dob if kind == "dob" else who.values(frozenset({kind}))[0]
    return values


points = st.builds(
    lambda lat, lon: {"lat": lat / 1e6, "lon": lon / 1e6},
    # Six decimals with a non-zero last digit: an output rounded to five can never contain it.
    st.integers(50_000_000, 55_000_000).filter(lambda v: v % 10),
    st.integers(-5_000_000, 1_500_000).filter(lambda v: v % 10))


@st.composite
def valid_params(draw: st.DrawFn, name: str, others: list[str]) -> dict[str, Any]:
    if name == "pseudonymise":
        with_others: bool = draw(st.booleans())
        if others and with_others:
            return {"with": draw(st.lists(st.sampled_from(others), min_size=1, max_size=3,
                                          unique=True))}
        return {}
    if name == "location":
        to = draw(st.sampled_from(["ward", "district", "grid", "ward_centre", "snap"]))
        return {"to": to, "metres": draw(st.integers(50, 10_000))} if to == "grid" else {"to": to}
    if name == "time":
        return {"to": draw(st.sampled_from(["hour", "day", "week", "month"]))}
    if name == "age_band":
        bands = draw(st.lists(st.integers(0, 130), min_size=1, max_size=8, unique=True))
        return {"bands": sorted(bands)} if draw(st.booleans()) else {}
    if name == "postcode":
        return {"to": draw(st.sampled_from(["outward", "sector"]))}
    if name == "free_text":
        return draw(st.sampled_from([{"mode": "drop"},
                                     {"mode": "vocabulary", "vocabulary": "incident-en@1"},
                                     {"mode": "tags", "tagset": "mo-tags@1"}]))
    return {}


def ctx_for(feed: str, record: Mapping[str, Any], field: str) -> TransformContext:
    return TransformContext(
        record=record, feed=feed, field=field, personal_fields=personal_fields(FEEDS[feed]),
        event_time=datetime(2024, 3, 5, 14, 30, tzinfo=UTC), area=STEVENAGE,
        pseudonym_key=TEST_KEY, key_epoch=3, protocol_id="csp-herts@1")


def digit_runs(text: str) -> list[str]:
    """Numbers in ``text`` with their spaces, dashes and brackets taken out."""
    return [re.sub(r"\D", "", run) for run in re.findall(r"\d[\d\s\-().]*\d", text)]


def leaks(output: object, held: list[Held], canaries_: Canaries | None) -> list[str]:
    """Personal values visible in ``output``; placeholders are not counted."""
    text = re.sub(r"\[[A-Z_]+\]", " ", str(output))
    found = [v for h in held for v in h.values() if v in text]
    numbers = [v for h in held for v in h.person.values(h.kinds & {"phone", "nhs"})]
    if canaries_ is not None:
        found += [v for v in canaries_.values() if v.casefold() in text.casefold()]
        numbers += [canaries_.nhs, canaries_.phone]
        for h in held:
            found += [f for f in h.written()
                      if len(f) > 3 and f in text and f not in LOWER_ONLY]
            # A lower-case-only word ("will") is released in lower case by design, even when it
            # is also this record's name: written capitalised it must go.
            found += [t for t in h.name_tokens()
                      if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", text,
                                   0 if t.casefold() in LOWER_ONLY else re.I)]
    runs = digit_runs(text)
    found += [n for n in numbers if any(re.sub(r"\D", "", n) in r for r in runs)]
    return found


TRANSFORMS = sorted(set(REGISTRY) - {"keep"})


class TestNoPersonalValueGetsThrough:
    @SETTINGS
    @given(data=st.data(), feed=st.sampled_from(sorted(FEEDS)), a=people(), b=people(),
           c=canaries(), point=points)
    def test_given_any_transform_but_keep_then_no_personal_value_is_in_its_output(
            self, data: st.DataObject, feed: str, a: Person, b: Person, c: Canaries,
            point: dict[str, float]) -> None:
        record = record_for(feed, a, b, c, point)
        fields = sorted(personal_fields(FEEDS[feed]))
        for name in TRANSFORMS:
            transform = REGISTRY[name]
            for field in fields:
                params = data.draw(valid_params(name, [f for f in fields if f != field]))
                transform.validate(params)
                out = transform.apply(record[field], params, ctx_for(feed, record, field))
                is_text = field in free_text_fields(FEEDS[feed])
                who = in_record(feed, a, b)
                assert not leaks(out, who, c if is_text else None), (name, field, params, out)
                if field == "location" and out is not DROP:
                    assert str(point["lat"]) not in str(out), (name, params, out)

    @SETTINGS
    @given(feed=st.sampled_from(sorted(FEEDS)), a=people(), b=people(), c=canaries(),
           point=points)
    def test_given_vocabulary_then_no_name_token_canary_or_written_form_survives(
            self, feed: str, a: Person, b: Person, c: Canaries, point: dict[str, float]) -> None:
        record = record_for(feed, a, b, c, point)
        params = {"mode": "vocabulary", "vocabulary": "incident-en@1"}
        for field in free_text_fields(FEEDS[feed]):
            out = REGISTRY["free_text"].apply(record[field], params,
                                              ctx_for(feed, record, field))
            assert isinstance(out, str)
            assert not leaks(out, in_record(feed, a, b), c), out
            assert "Nothing else to add." in out  # listed words survive: vocabulary is not drop


class TestPseudonymLinkage:
    @SETTINGS
    @given(a=people(), spaces=st.integers(1, 3))
    def test_given_one_person_written_two_ways_then_one_token_and_another_key_another(
            self, a: Person, spaces: int) -> None:
        pseudo = REGISTRY["pseudonymise"]
        ctx = ctx_for("police", {}, "victim_name")
        other = replace(ctx, pseudonym_key=OTHER_KEY)
        messy = (" " * spaces).join(a.name.upper().split())
        assert pseudo.apply(messy, {}, ctx) == pseudo.apply(a.name, {}, ctx)
        assert pseudo.apply(a.name, {}, other) != pseudo.apply(a.name, {}, ctx)


class TestLocationGeneralises:
    @SETTINGS
    @given(point=points, metres=st.integers(50, 10_000))
    def test_given_a_grid_centre_then_it_is_its_own_cell_centre(
            self, point: dict[str, float], metres: int) -> None:
        centre = grid_centre(point["lat"], point["lon"], metres)
        assert grid_centre(centre["lat"], centre["lon"], metres) == centre

    @SETTINGS
    @given(point=points)
    def test_given_a_snapped_point_then_snapping_again_keeps_it(
            self, point: dict[str, float]) -> None:
        anchor = snap_anchor(point["lat"], point["lon"])
        assert snap_anchor(anchor["lat"], anchor["lon"]) == anchor
