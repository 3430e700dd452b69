"""Why an alert was raised, in words an analyst can repeat in a tasking meeting (pure).

One or two plain sentences: what was seen against what was expected, over which wards and
weeks, how the expectation was made, how unusual it is ("about 1 in 2,000 ordinary weeks"), and
how variable the ward's counts are (the dispersion the test allowed for). The raw figures stay
on the alert (expected, count, p_value, dispersion) for anyone who wants them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .detector import Alert

_WINDOW_WORDS = {"hour": "hour", "day": "day", "week": "week"}


def odds(p: float) -> str:
    """p as "about 1 in N", N rounded to two significant figures."""
    if p <= 0:
        return "less than 1 in a billion"
    if p >= 0.5:
        return "not unusual"
    n = 1.0 / p
    if n >= 1e9:
        return "less than 1 in a billion"
    digits = max(0, math.floor(math.log10(n)) - 1)
    rounded = int(round(n / 10 ** digits) * 10 ** digits)
    return f"about 1 in {rounded:,}"


def variability(alpha: float | None, expected: float) -> str:
    """How much more than chance the counts vary, at the expected level."""
    if alpha is None:
        return "counts assumed to vary only by chance (Poisson)"
    ratio = 1.0 + alpha * expected
    if ratio < 1.15:
        return "counts here vary about as much as chance alone would make them"
    return (f"counts here vary about {ratio:.1f} times as much as chance alone would make them, "
            "and the test allows for that")


def explain(alert: Alert) -> str:
    """The sentence(s) shown with an alert (see module docstring)."""
    span = _WINDOW_WORDS.get(alert.window, alert.window)
    weeks = max(1, round((alert.window_end - alert.window_start).total_seconds() / (7 * 86400)))
    period = f"the {weeks} weeks to {alert.window_end:%d %b}" if weeks > 1 and span == "week" \
        else f"the {span} from {alert.window_start:%d %b %H:%M} UTC" if span == "hour" \
        else f"the {span} of {alert.window_start:%d %b}" if span == "day" \
        else f"the week of {alert.window_start:%d %b}"
    where = alert.ward_code if not alert.cluster else (
        f"{len(alert.cluster) + 1} neighbouring wards "
        f"({alert.ward_code} and {', '.join(alert.cluster)})")
    seen = (f"{alert.count} incidents in {where} in {period}, "
            f"against about {alert.expected:.1f} expected")
    chance = odds(alert.p_value)
    if alert.method == "scan":
        how = ("Found by a space-time scan over ward boundaries: of every group of neighbouring "
               f"wards and every run of recent weeks looked at, a cluster this strong turns up by "
               f"chance {chance} weeks (p = {alert.p_value:.3g}, by simulation)")
    elif alert.method == "nb-cusum":
        how = ("Raised by accumulated evidence: each week was only a little above normal, but "
               f"together they would happen by chance {chance} times (p = {alert.p_value:.3g}); "
               f"the running evidence score reached {alert.evidence or 0:.1f}")
    elif alert.method.startswith("nb-window"):
        how = (f"Expected from this ward's last months of counts (trend and weekday pattern "
               f"included, unusual weeks given less weight); this many or more happens by chance "
               f"{chance} times (p = {alert.p_value:.3g}), inside the false-alarm limit for "
               f"all wards tested at once")
        if alert.method.endswith("cusum"):
            how += ", and the evidence had been building over previous weeks"
    else:
        how = (f"Expected from a moving average of past counts; this many or more happens by "
               f"chance {chance} times (p = {alert.p_value:.3g})")
    late = " Raised after late records changed the count." if alert.late else ""
    return f"{seen}. {how}; {variability(alert.dispersion, alert.expected)}.{late}"


__all__ = ["explain", "odds", "variability"]
