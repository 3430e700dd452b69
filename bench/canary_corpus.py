"""The free-text canary corpus: seeded records of all four feeds whose free text carries planted
personal details of many kinds, and planted modus-operandi phrases with the tags they should give.

    from bench.canary_corpus import build
    corpus = build(seed=11, per_feed=120)      # deterministic for a seed

Each ``Planted`` says how it was written into the text and which ``fragments`` must not appear in
anything released (whole words, case-insensitive; digit fragments compared on digits alone).
Written independently of the release code: the name pools are hand-made, not read from its lists.
Used by ``tests/unit/depersonalise/test_free_text_canaries.py`` and ``bench/free_text_leaks.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schemas.feeds import FEED_NAMES, FeedName

FORENAMES = [
    "Grace", "Aisha", "Liam", "Oliver", "Amelia", "Mohammed", "Priya", "Tyler", "Chloe", "Jayden",
    "Kacper", "Zofia", "Olumide", "Chidi", "Siobhan", "Declan", "Rhys", "Megan", "Harpreet",
    "Tariq", "Fatima", "Kwame", "Ewa", "Marek", "Leah", "Connor", "Bethany", "Kieran", "Shannon",
    "Ravi", "Yusuf", "Imogen", "Hamza", "Niamh", "Callum", "Jasmine", "Dylan", "Poppy", "Mason",
    "Ruby", "Rose", "Will", "Mark", "Jack", "Faith", "Hope", "Summer", "Amber", "Dawn", "Robin",
    "Precious", "Blessing", "Ayodele", "Bartosz", "Agnieszka", "Deepak", "Sunita", "Ioana",
]
SURNAMES = [
    "Okafor", "Rahman", "Nowak", "Kowalczyk", "Patel", "Begum", "Hussain", "O'Brien",
    "McAllister", "Fitzgerald", "Whitlock", "Hartley", "Pemberton", "Ashworth", "Thornton",
    "Mensah", "Adeyemi", "Osei", "Byrne", "Doyle", "Murphy", "Sharma", "Chowdhury", "Ahmed",
    "Jenkins", "Rowlands", "Pritchard", "Llewellyn", "Kaur", "Singh", "Smith", "Jones", "Taylor",
    "White", "Green", "Young", "Wood", "Baker", "Hall", "Popescu", "Achterberg", "Quinlan",
]
MISSPELL = {"Okafor": "Okafur", "Rahman": "Rahmen", "Nowak": "Novak", "Patel": "Pattel",
            "Hussain": "Hussein", "O'Brien": "OBrian", "Pemberton": "Pemburton",
            "Thornton": "Thorton", "Adeyemi": "Adeyimi", "Chowdhury": "Choudhury",
            "Pritchard": "Prichard", "Llewellyn": "Lewellyn", "Whitlock": "Whitlok"}
NICKNAMES = ["Smudge", "Big Kev", "Tiny", "Spider", "Little Dee", "Ghost", "Biscuit", "Moose",
             "Shorty", "Red", "Dodger", "Bones"]
TITLES = ["Nurse", "Cllr", "Father", "Sister", "Auntie", "Uncle", "Dr", "Mrs", "Mr", "Pastor",
          "Imam", "Coach", "Reverend", "Matron", "Nan"]
# Invented or rare street names, none a ward or district name (those are released on purpose).
STREET_WORDS = ["Acacia", "Fairlands", "Marlowes", "Cowper", "Ladywell", "Oakfield", "Quillbrook",
                "Farrowdene", "Larkspur", "Wymondley", "Ravenscourt", "Thistledown", "Quernmoor",
                "Dunstable"]
STREET_TYPES = ["Road", "Avenue", "Close", "Lane", "Crescent", "Way", "Drive", "Gardens", "Street"]
TOWNS = ["Watford", "Stevenage", "Hitchin", "Hemel Hempstead", "Hertford", "Harpenden"]
SCHOOLS = ["Oakfield Academy", "St Aldric's Primary School", "Quernmoor School",
           "Barnwell School", "Sir John Lawes School", "Marlborough Science Academy"]
WORKPLACES = ["Tesco Extra", "Keystone Roofing Ltd", "Lister Hospital", "Amazon depot",
              "Costa on the Parade", "Sainsbury's Local", "Nandos"]
W3W = ["filled.count.soap", "index.home.raft", "crisp.lion.stable", "brave.tiles.forum"]
ORD = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
       "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
       "seventeenth", "eighteenth", "nineteenth", "twentieth"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
AGE_WORDS = ["eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"]
HOMOGLYPH = str.maketrans({"a": "а", "o": "о", "e": "е", "c": "с", "p": "р"})
ZW = "\u200b"

#: (phrase as written, tags it should give, words an analyst needs from it)
MO = [
    ("forced the rear door with a screwdriver", {"entry-method:forced", "point-of-entry:rear-door"},
     ["forced", "rear", "door", "screwdriver"]),
    ("smashed a window to get in", {"entry-method:smashed", "point-of-entry:window"},
     ["smashed", "window"]),
    ("snapped the lock on the front door", {"entry-method:lock-snapped",
                                            "point-of-entry:front-door"},
     ["snapped", "lock", "front", "door"]),
    ("threatened staff with a knife", {"weapon:knife", "behaviour:intimidation"},
     ["threatened", "staff", "knife"]),
    ("two males on a moped snatched a phone", {"vehicle:moped", "target:phone", "behaviour:theft"},
     ["males", "moped", "snatched", "phone"]),
    ("a catalytic converter was cut from a car overnight",
     {"target:catalytic-converter", "vehicle:car", "time-cue:night"},
     ["catalytic", "converter", "car", "overnight"]),
    ("a wheelie bin was set alight at night", {"fire-cause:refuse", "fire-cause:deliberate",
                                               "time-cue:night"},
     ["wheelie", "bin", "alight", "night"]),
    ("petrol was poured through the letterbox", {"fire-cause:accelerant",
                                                 "entry-method:letterbox"},
     ["petrol", "poured", "letterbox"]),
    ("there was no smoke alarm in the flat", {"fire-cause:no-smoke-alarm", "place-type:dwelling"},
     ["smoke", "alarm", "flat"]),
    ("a group of youths were drinking in the park", {"behaviour:group", "behaviour:drink",
                                                     "place-type:park"},
     ["group", "youths", "drinking", "park"]),
    ("he was hit with a bottle outside the pub", {"weapon:bottle-glass", "place-type:licensed"},
     ["hit", "bottle", "outside", "pub"]),
    ("graffiti was sprayed on the underpass", {"behaviour:graffiti", "place-type:street"},
     ["graffiti", "underpass"]),
    ("loud music and shouting late at night", {"behaviour:noise", "time-cue:night"},
     ["loud", "music", "shouting", "night"]),
    ("cannabis smell and needles in the stairwell", {"behaviour:drugs",
                                                     "point-of-entry:communal"},
     ["cannabis", "smell", "needles", "stairwell"]),
    ("a car was burnt out on the estate", {"fire-cause:vehicle-fire", "vehicle:car"},
     ["car", "burnt", "estate"]),
    ("the shed was broken into and tools stolen", {"point-of-entry:shed", "target:tools",
                                                   "behaviour:theft"},
     ["shed", "broken", "tools", "stolen"]),
]


@dataclass(frozen=True)
class Planted:
    kind: str
    written: str
    fragments: tuple[str, ...]


@dataclass
class CorpusRecord:
    feed: FeedName
    fields: dict[str, Any]
    text_field: str
    planted: list[Planted] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    analyst_words: list[str] = field(default_factory=list)


def _digits(s: str) -> str:
    return "".join(c for c in s if c.isdigit())


class _Maker:
    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def name(self) -> tuple[str, str]:
        return self.r.choice(FORENAMES), self.r.choice(SURNAMES)

    def nhs(self) -> str:
        while True:
            body = [self.r.randint(0, 9) for _ in range(9)]
            check = 11 - sum(d * w for d, w in zip(body, range(10, 1, -1), strict=True)) % 11
            check = 0 if check == 11 else check
            if check != 10:
                return "".join(map(str, body)) + str(check)

    def kinds(self, own: dict[str, str]) -> dict[str, Callable[[], Planted]]:
        r = self.r
        f, s = self.name()
        f2, s2 = self.name()
        street = f"{r.choice(STREET_WORDS)} {r.choice(STREET_TYPES)}"
        nhs = self.nhs()
        day, month, year = r.randint(1, 20), r.randint(1, 12), r.randint(1950, 2012)
        vrm = f"{r.choice('ABDEFGHKLMNOPRSVWY')}{r.choice('ABCDEFGHJKLMNOPRSTUVWXY')}" \
              f"{r.randint(51, 74)}{''.join(r.choices('ABCDEFGHJKLMNOPRSTUVWXYZ', k=3))}"
        phone = f"7700 900{r.randint(0, 999):03d}"
        handle = f"{f.lower()}{s[:3].lower()}{r.randint(10, 99)}"

        def p(kind: str, written: str, *frags: str) -> Planted:
            return Planted(kind, written, tuple(x for x in frags if x))

        return {
            "witness_name": lambda: p("witness_name", f"Witness {f} {s} saw it", f, s),
            "relative_name": lambda: p("relative_name", f"her brother {f} {s} was there", f, s),
            "neighbour_name": lambda: p("neighbour_name", f"neighbour {f2} {s2} called it in",
                                        f2, s2),
            "child_name": lambda: p("child_name", f"her son {f} was with her", f),
            "lowercase_name": lambda: p("lowercase_name", f"spoke to {f.lower()} {s.lower()}",
                                        f, s),
            "titled_name": lambda: p("titled_name", f"{r.choice(TITLES)} {s} gave details", s),
            "initials_surname": lambda: p("initials_surname",
                                          f"{f[0]}. {r.choice('ABCDJKMRS')}. {s} was present", s),
            "nickname": lambda: (lambda n: p("nickname", f"a male known as {n} was seen",
                                             *n.split()))(r.choice(NICKNAMES)),
            "misspelt_name": lambda: (lambda m: p("misspelt_name", f"suspect {m} ran off",
                                                  *m.split()))(
                f"{own['first']} {MISSPELL.get(own['last'], own['last'] + 'e')}"),
            "own_name": lambda: p("own_name", f"{own['first']} {own['last']} reported it",
                                  own["first"], own["last"]),
            "all_caps_name": lambda: p("all_caps_name", f"{f.upper()} {s.upper()} was arrested",
                                       f, s),
            "nhs_odd_grouping": lambda: p("nhs_odd_grouping",
                                          f"NHS no {nhs[:4]} {nhs[4:7]} {nhs[7:]}", nhs),
            "ni_split": lambda: p("ni_split", f"NI QQ 1{r.randint(0, 9)} {r.randint(10, 99)} "
                                              f"{r.randint(10, 99)} C", "qq"),
            "passport": lambda: (lambda n: p("passport", f"passport {n} seized", n))(
                f"{r.randint(100000000, 999999999)}"),
            "custody_number": lambda: (lambda n: p("custody_number", f"custody ref {n}", n))(
                f"HT/{r.randint(10000, 99999)}/{r.randint(20, 26)}"),
            "phone_no_zero": lambda: p("phone_no_zero", f"call her on {phone}", phone),
            "dob_words": lambda: p("dob_words", f"born on the {ORD[day - 1]} of "
                                                f"{MONTHS[month - 1]} nineteen eighty",
                                   ORD[day - 1], "nineteen eighty"),
            "dob_eight_digits": lambda: (lambda d: p("dob_eight_digits", f"dob {d}", d))(
                f"{day:02d}{month:02d}{year}"),
            "age": lambda: (lambda a: p("age", f"a boy of {a} yrs old", a))(
                str(r.randint(8, 17))),
            "age_words": lambda: (lambda a: p("age_words", f"aged {a} years old", a))(
                r.choice(AGE_WORDS)),
            "vrm_odd_spacing": lambda: p("vrm_odd_spacing",
                                         f"in car {vrm[:1]} {vrm[1:4]} {vrm[4:]}", vrm[1:4]),
            "grid_ref": lambda: (lambda g: p("grid_ref", f"at grid TL {g}", g))(
                f"{r.randint(10000, 99999)} {r.randint(10000, 99999)}"),
            "coordinates": lambda: (lambda a, b: p("coordinates", f"at {a}, {b}", a, b))(
                f"51.{r.randint(1000, 9999)}", f"-0.{r.randint(1000, 9999)}"),
            "what3words": lambda: (lambda w: p("what3words", f"pin ///{w}", w,
                                               w.replace(".", " ")))(
                r.choice(W3W)),
            "own_address_lowercase": lambda: p(
                "own_address_lowercase", f"lives at {own['address'].lower()}",
                own["street_word"]),
            "street_name": lambda: p("street_name", f"fled along {street}", street.split()[0]),
            "school": lambda: (lambda sc: p("school", f"pupil at {sc}",
                                            *[w for w in sc.split() if len(w) > 3
                                              and w not in ("School", "Primary", "Academy")]))(
                r.choice(SCHOOLS)),
            "workplace": lambda: (lambda w: p("workplace", f"works at {w}",
                                              w.split()[0].rstrip("'s")))(r.choice(WORKPLACES)),
            "social_handle": lambda: p("social_handle", f"messaged him on snap @{handle}",
                                       handle),
            "email": lambda: p("email", f"email {handle}@gmail.com", handle),
            "zero_width": lambda: p("zero_width",
                                    f"victim {f[:2]}{ZW}{f[2:]} {s[:3]}{ZW}{s[3:]} was upset",
                                    f, s),
            "homoglyph": lambda: p("homoglyph", f"friend {f.translate(HOMOGLYPH)} "
                                                f"{s.translate(HOMOGLYPH)} left", f, s),
            "name_line_break": lambda: p("name_line_break", f"mother {f} {s[:3]}\n{s[3:]} "
                                                            "arrived", f, s),
            "name_hyphen_split": lambda: p("name_hyphen_split", f"mother {f} {s[:3]}-\n{s[3:]} "
                                                                "arrived", f, s),
            "double_barrelled": lambda: p("double_barrelled", f"{f}-{f2} {s}-{s2} was there",
                                          f, f2, s, s2),
            "non_latin_name": lambda: p("non_latin_name", "her cousin محمد علي visited",
                                        "محمد", "علي"),
            "postcode": lambda: (lambda pc: p("postcode", f"near {pc}", pc.replace(" ", "")))(
                f"SG{r.randint(1, 19)} {r.randint(1, 9)}{r.choice('ABDEF')}"
                f"{r.choice('GHJLN')}"),
        }


def _record(mk: _Maker, feed: FeedName, base: dict[str, Any], n_kinds: int) -> CorpusRecord:
    r = mk.r
    first, last = mk.name()
    word = r.choice(STREET_WORDS)
    town = r.choice(TOWNS)
    address = f"{r.randint(1, 199)} {word} {r.choice(STREET_TYPES)}, {town}"
    own = {"first": first, "last": last, "address": address.replace(",", ""), "street_word": word}
    fields = dict(base)
    name_field, addr_field, text_field = {
        "police": ("victim_name", "address", "summary"),
        "fire": ("occupier_name", "address", "narrative"),
        "health": ("patient_name", None, "notes"),
        "council": ("reporter_name", "reporter_address", "description"),
    }[feed]
    fields[name_field] = f"{first} {last}"
    if addr_field:
        fields[addr_field] = address
    makers = mk.kinds(own)
    chosen = r.sample(sorted(makers), n_kinds)
    planted = [makers[k]() for k in chosen]
    mos = r.sample(MO, 2)
    sentences = [f"{pl.written}." for pl in planted] + [f"{m[0].capitalize()}." for m in mos]
    r.shuffle(sentences)
    fields[text_field] = " ".join(sentences)
    if feed == "health":
        fields["location_description"] = f"outside the pub near {address.lower()}"
    tags = set().union(*(m[1] for m in mos))
    words = [w for m in mos for w in m[2]]
    return CorpusRecord(feed, fields, text_field, planted, tags, words)


def build(seed: int = 11, per_feed: int = 120, kinds_per_record: int = 5,
          bases: dict[str, list[dict[str, Any]]] | None = None) -> list[CorpusRecord]:
    """``bases``: structured records per feed to plant into (from the demo generator); the
    corpus overrides their names, address and free text."""
    mk = _Maker(random.Random(seed))  # noqa: S311 - a corpus must replay from its seed
    out = []
    for feed in FEED_NAMES:
        for i in range(per_feed):
            base = bases[feed][i] if bases else {}
            out.append(_record(mk, feed, base, kinds_per_record))
    return out


KINDS = sorted(_Maker(random.Random(0)).kinds(  # noqa: S311 - only the kinds' names are read
    {"first": "A", "last": "B", "address": "1 A Road", "street_word": "A"}))
