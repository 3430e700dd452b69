"""The tasking pack: one printable document for a group and a period, for the meeting that decides
where patrols, CCTV, youth outreach and environmental work go next. Pure HTML building; the PDF is
printed from it by headless Chromium (pdf.py).

Sections: the ward map (coloured and labelled with this period's counts, small counts as "<N"),
top wards with change against the previous period and its significance, category trends over the
last four periods, the alerts raised in the period with their evidence, modus-operandi tags, and
what the hub withheld or generalised and why. Everything in it is what the group was already
delivered; the pack adds arithmetic, never data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any

from schemas.alert import HotspotAlert
from schemas.shared import SharedRecord
from services.router.web import summary
from services.router.web.records import as_utc, record_time

TOP_WARDS = 12
#: Released fields that describe how an incident happened (their values are controlled
#: vocabularies), counted as modus-operandi tags beside any list-valued tag field.
MO_FIELDS = ("assault_method", "location_type", "property_type", "report_type", "method")
WIDE_BANDS = frozenset({"0-17", "18-64", "65+"})
PERIODS = 4

_CSS = """
@page { size: A4; margin: 14mm 12mm; }
body { font: 10.5pt/1.35 "DejaVu Sans", sans-serif; color: #111; }
h1 { font-size: 17pt; margin: 0 0 2mm; } h2 { font-size: 12.5pt; margin: 6mm 0 2mm;
  border-bottom: 1.5pt solid #1d3557; page-break-after: avoid; }
.sub { color: #333; margin: 0 0 3mm; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 2mm; page-break-inside: auto; }
th, td { border: .5pt solid #999; padding: 1mm 1.5mm; text-align: left; vertical-align: top; }
thead th { background: #e8ebef; } td.n { text-align: right; }
tr { page-break-inside: avoid; }
.sig { font-weight: bold; color: #8a1c1c; }
.map svg { width: 100%; max-height: 150mm; }
.ward { stroke: #3d3d3d; stroke-width: .6; }
.ward-label { fill: #111; paint-order: stroke; stroke: #fff; stroke-width: 2.5px;
  font-weight: 600; }
.count-0 { fill: #eef0f2; } .count-1 { fill: #d6e4f0; } .count-2 { fill: #a9c8e3; }
.count-3 { fill: #6fa1cf; } .count-4 { fill: #3a6fa8; }
.note { font-size: 9pt; color: #333; }
"""


def _count_class(n: int, top: int) -> str:
    return "count-0" if n == 0 else f"count-{min(4, 1 + (4 * n) // (top + 1))}"


def coloured_map(svg: str, wards: Sequence[Mapping[str, Any]]) -> str:
    """The group's ward SVG with each ward's fill class and its count label set."""
    top = max((w["count"] for w in wards), default=0)
    for w in wards:
        code = escape(w["ward_code"])
        svg = svg.replace(f'class="ward band-no-baseline" id="ward-{code}"',
                          f'class="ward {_count_class(w["count"], top)}" id="ward-{code}"', 1)
        marker = f'id="label-{code}"'
        at = svg.find(marker)
        if at >= 0:
            slot = svg.find('dy="1.1em"></tspan>', at)
            if slot >= 0:
                slot += len('dy="1.1em">')
                svg = svg[:slot] + escape(w["count_shown"]) + svg[slot:]
    return svg


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int] | None = None,
           marked: Sequence[bool] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        cls = ' class="sig"' if marked and marked[i] else ""
        out.append(f"<tr{cls}>" + "".join(
            f'<td{" class=n" if j in numeric else ""}>{escape(str(v))}</td>'
            for j, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def category_trends(records: Sequence[SharedRecord], start: datetime, end: datetime,
                    suppress_below: int) -> tuple[list[str], list[list[str]], list[bool]]:
    """Per category: counts in each of the last ``PERIODS`` periods (oldest first), change and
    significance of this period against the one before."""
    length = end - start
    starts = [start - (PERIODS - 1 - i) * length for i in range(PERIODS)]
    counts: dict[str, list[int]] = {}
    for r in records:
        t = record_time(r, "event")
        if t is None or not starts[0] <= t < end:
            continue
        i = int((t - starts[0]) / length)
        counts.setdefault(r.category, [0] * PERIODS)[i] += 1
    head = [f"{s:%d %b}" for s in starts]
    rows, marks = [], []
    for cat, c in sorted(counts.items(), key=lambda kv: -kv[1][-1]):
        sig = summary.significance(c[-1], c[-2])
        small = any(0 < n < suppress_below for n in c[-2:])
        rows.append([cat, *(summary.public_count(n, suppress_below) for n in c),
                     summary.change_shown(c[-1], c[-2], suppress_below),
                     summary.significance_shown(sig, small)])
        marks.append(bool(sig["significant"]) and not small)
    return head, rows, marks


def _small(w: Mapping[str, Any]) -> bool:
    return bool(w["change_shown"] == "" and (w["count"] or w["previous"]))


def mo_tags(records: Sequence[SharedRecord]) -> Counter[str]:
    tags: Counter[str] = Counter()
    for r in records:
        for name, value in r.fields.items():
            if isinstance(value, list):
                tags.update(f"{name}: {v}" for v in value if isinstance(v, str))
            elif name in MO_FIELDS and isinstance(value, str):
                tags[f"{name}: {value}"] += 1
    return tags


def withheld(records: Sequence[SharedRecord], protocol_fields: Mapping[str, Sequence[str]],
             suppress_below: int, k_by_protocol: Mapping[str, int]) -> list[list[str]]:
    """What the hub withheld or generalised in these records, and why. ``protocol_fields`` maps
    a protocol ref to the fields it releases (when known: from the config the router follows)."""
    n = len(records)
    rows: list[list[str]] = []
    district = sum(1 for r in records if not r.ward_code)
    ks = [str(k) for k in sorted(set(k_by_protocol.values()))] or ["k"]
    rows.append(["Ward", summary.public_count(district, suppress_below),
                 f"placed only at district level: fewer than k ({'/'.join(ks)}) "
                 "records shared the ward in the risk gate's window, even after age bands, "
                 "property types and times were widened or withheld and the record was held "
                 "for its ward to fill"])
    widened: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    for r in records:
        for name in protocol_fields.get(r.protocol, ()):
            value = r.fields.get(name)
            if name.endswith("_dob") or name.endswith("_age"):
                if value in WIDE_BANDS:
                    widened[name] += 1
                elif value is None:
                    missing[name] += 1
    for name, c in sorted(widened.items()):
        rows.append([name, summary.public_count(c, suppress_below),
                     "age band widened to 0-17 / 18-64 / 65+ so at least k records share it"])
    for name, c in sorted(missing.items()):
        rows.append([name, summary.public_count(c, suppress_below),
                     "withheld by the risk gate (too few shared it), or not given by the source"])
    rows.append(["Small counts", f"below {suppress_below}",
                 f'shown as "<{suppress_below}" in every table and on the map (the protocol\'s '
                 "suppression threshold), zero shown as 0"])
    rows.append(["Personal details", str(n),
                 "never released: names, dates of birth, addresses, phone numbers and free "
                 "text are dropped, pseudonymised, banded or scrubbed under the signed protocol"])
    return rows


def fields_by_protocol(records: Sequence[SharedRecord]) -> dict[str, list[str]]:
    """The fields each protocol released in ``records``: what the pack checks for widening."""
    out: dict[str, set[str]] = {}
    for r in records:
        out.setdefault(r.protocol, set()).update(r.fields)
    return {k: sorted(v) for k, v in out.items()}


def _elsewhere(count: int, suppress_below: int) -> str:
    if not count:
        return ""
    return (f"\n{summary.public_count(count, suppress_below)} more records in the district of "
            "this group's wards were released only at district level; they may be in its wards "
            "or in others, so the group was told how many, not sent them.")


def pack_html(*, group: str, name: str, start: datetime, end: datetime,
              records: Sequence[SharedRecord], alerts: Sequence[HotspotAlert],
              wards: Mapping[str, str], svg: str, suppress_below: int,
              protocol_fields: Mapping[str, Sequence[str]] | None = None,
              k_by_protocol: Mapping[str, int] | None = None,
              district_only_not_received: int = 0,
              generated_at: datetime, generated_by: str) -> str:
    """``district_only_not_received``: district-only records in the districts of a ward
    group's wards, which it could not receive (district_only.py)."""
    start, end = as_utc(start), as_utc(end)
    doc = summary.summarise(records, wards, start, end, suppress_below=suppress_below)
    in_period = [r for r in records
                 if (t := record_time(r, "event")) is not None and start <= t < end]
    last_day = end - timedelta(seconds=1)
    parts = [f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{escape(name)}: tasking pack {start:%d %b %Y} to {last_day:%d %b %Y}</title>
<style>{_CSS}</style></head><body>
<h1>{escape(name)}: tasking pack</h1>
<p class="sub">{start:%d %B %Y} to {last_day:%d %B %Y} (group {escape(group)}).
{doc["total_shown"]} records this period, {doc["previous_total_shown"]} the period before.
Generated {generated_at:%d %b %Y %H:%M} UTC by {escape(generated_by)}.
Depersonalised data under Section 115 protocols: for tasking, not for onward sharing.</p>
<h2>Ward map</h2><div class="map">{coloured_map(svg, doc["wards"])}</div>
<p class="note">Darker wards had more records this period; each ward shows its name and count.
{summary.public_count(doc["district_only"], suppress_below)} records were placed only at district
level and are not on the map.{_elsewhere(district_only_not_received, suppress_below)}</p>"""]
    top = [w for w in doc["wards"] if w["count"] or w["previous"]][:TOP_WARDS]
    parts.append("<h2>Top wards</h2>")
    parts.append(_table(
        ["Ward", "This period", "Previous", "Change", "Significance", "Expected"],
        [[w["ward_name"], w["count_shown"], w["previous_shown"], w["change_shown"],
          summary.significance_shown(w, _small(w)),
          "no baseline" if w["expected"] is None else w["expected"]]
         for w in top], numeric={1, 2, 3},
        marked=[bool(w["significant"]) and not _small(w) for w in top])
        if top else "<p>No records in this period or the one before.</p>")
    head, rows, marks = category_trends(records, start, end, suppress_below)
    parts.append("<h2>Category trends</h2><p class=\"note\">Counts per period of the same "
                 "length, oldest first; the last column compares this period with the one "
                 "before.</p>")
    parts.append(_table(["Category", *head, "Change", "Significance"], rows,
                        numeric=set(range(1, len(head) + 2)), marked=marks)
                 if rows else "<p>No records.</p>")
    parts.append("<h2>Alerts</h2>")
    chosen = sorted((a for a in alerts if start <= as_utc(a.window_start) < end),
                    key=lambda a: (a.window_start, a.ward_code))
    parts.append(_table(
        ["Ward", "Category", "Window", "Count", "Expected", "p-value", "Gi* z", "Neighbours"],
        [[a.ward_name or a.ward_code, a.category,
          f"{a.window} from {as_utc(a.window_start):%d %b %H:%M}", a.count,
          f"{a.expected:.2f}", f"{a.p_value:.3g}",
          "-" if a.gi_z is None else f"{a.gi_z:.2f}",
          ", ".join(wards.get(n, n) for n in a.neighbours) or "none"] for a in chosen])
        if chosen else "<p>No hot-spot alerts were raised for this period.</p>")
    tags = mo_tags(in_period)
    parts.append("<h2>Modus operandi tags</h2>")
    parts.append(_table(["Tag", "Records"],
                        [[t, summary.public_count(c, suppress_below)]
                         for t, c in tags.most_common(20)], numeric={1})
                 if tags else "<p>No modus-operandi tags were released for this period.</p>")
    parts.append("<h2>What was withheld or generalised, and why</h2>")
    parts.append(_table(["What", "Records", "Why"],
                        withheld(in_period, protocol_fields or {}, suppress_below,
                                 k_by_protocol or {})))
    parts.append("</body></html>")
    return "".join(parts)
