// Why an alert was raised, and whether every partner feed is current (issue 17). Kept apart
// from group.js so the page can change around it: group.js calls window.s115AlertWhy(alert)
// when it shows an alert's evidence; the feed note fills #feed-notes on its own.
(function () {
  "use strict";
  const METHODS = {
    "nb-window": "window test against this ward's negative-binomial baseline",
    "nb-cusum": "accumulated evidence over several weeks (CUSUM)",
    "nb-window+cusum": "window test, with evidence building over previous weeks",
    "scan": "space-time scan over neighbouring wards (one cluster, one p-value)",
  };

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  // The "Why" block for one alert (HotspotAlert JSON); alerts from before issue 17 have no
  // method or why and get a short generic line.
  window.s115AlertWhy = function (a) {
    const box = el("div", undefined, "why");
    box.append(el("h4", "Why this was raised"));
    box.append(el("p", a.why || "Count well above its moving-average baseline (Poisson test)."));
    const dl = el("dl");
    const rows = [["Method", METHODS[a.method] || "Poisson test on a moving average"]];
    if (a.dispersion !== undefined && a.dispersion !== null) {
      rows.push(["Dispersion used", `alpha = ${Number(a.dispersion).toPrecision(2)} ` +
                 "(variance = mean + alpha × mean²)"]);
    }
    if (a.cluster_wards && a.cluster_wards.length) {
      rows.push(["Same cluster", a.cluster_wards.join(", ")]);
    }
    if (a.late) rows.push(["Late records", "raised after late records changed the count"]);
    for (const [k, v] of rows) dl.append(el("dt", k), el("dd", v));
    box.append(dl);
    return box;
  };

  async function feedNotes() {
    const target = document.getElementById("feed-notes");
    const base = document.body.dataset.base;
    if (!target || !base) return;
    try {
      const r = await fetch(`${base}/feeds.json`, { credentials: "same-origin" });
      if (!r.ok) return;
      const body = await r.json();
      const bad = (body.feeds || []).filter((f) => f.state !== "ok");
      target.replaceChildren(...bad.map((f) => el("p",
        `${f.feed} feed is ${f.state}: ` + (f.state === "silent"
          ? "no records received recently, so its counts may be incomplete."
          : `its latest record is ${Math.round((f.lag_seconds || 0) / 3600)} hours old; ` +
            "recent windows may still change.") +
        (f.late_counted ? ` ${f.late_counted} late records were counted into past weeks.` : ""),
        "feed-note")));
      target.hidden = bad.length === 0;
    } catch (e) { /* the note is advisory: the page works without it */ }
  }
  feedNotes();
  setInterval(feedNotes, 60000);
})();
