// The group page: filters, a ward map coloured by this period's counts (baseline bands where a
// baseline exists), a ward table with change and significance, a trend chart, the records
// behind a ward, and the live alert list with its evidence. Everything comes from the router;
// nothing from the internet. Keyboard: wards, table rows and alerts are focusable and open with
// Enter or Space.
"use strict";
(function () {
  const base = document.body.dataset.base;
  const alerts = new Map();          // alert_id -> alert (a re-emitted alert replaces itself)
  const wardNames = new Map();
  const state = { days: 28, from: null, to: null, category: "", feed: "", ward: null };
  let summary = null;
  let selectedAlert = null;

  const $ = (id) => document.getElementById(id);
  const text = (tag, value, cls) => {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  };
  const svgEl = (tag, attrs) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  };
  const fmtTime = (iso) => iso ? iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, " UTC") : "";
  const day = (iso) => iso ? iso.slice(0, 10) : "";
  const wardLabel = (code) => wardNames.has(code) ? `${wardNames.get(code)} (${code})` : code;
  const activate = (el, fn) => {
    el.addEventListener("click", fn);
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fn(); }
    });
  };

  // -- period and filters ----------------------------------------------------------------
  function periodParams() {
    const p = new URLSearchParams();
    if (state.from) p.set("from", `${state.from}T00:00:00Z`);
    if (state.to) p.set("to", `${state.to}T00:00:00Z`);
    if (!state.from && !state.to) {
      const end = new Date(); end.setUTCHours(0, 0, 0, 0); end.setUTCDate(end.getUTCDate() + 1);
      const start = new Date(end); start.setUTCDate(start.getUTCDate() - state.days);
      p.set("from", start.toISOString().replace(".000Z", "Z"));
      p.set("to", end.toISOString().replace(".000Z", "Z"));
    }
    return p;
  }
  function filterParams() {
    const p = periodParams();
    if (state.category) p.set("category", state.category);
    if (state.feed) p.set("feed", state.feed);
    return p;
  }
  function setExportLinks() {
    const p = periodParams();
    $("export-csv").href = `${base}/export.csv?${p}`;
    $("export-geojson").href = `${base}/export.geojson?${p}`;
    $("pack").href = `${base}/pack.pdf?${p}`;
  }
  function fillSelect(sel, values, current) {
    const keep = sel.value || current;
    sel.replaceChildren(text("option", "all"));
    sel.firstChild.value = "";
    for (const v of values) { const o = text("option", v); o.value = v; sel.append(o); }
    sel.value = values.includes(keep) ? keep : "";
  }
  $("f-period").addEventListener("change", () => {
    const custom = $("f-period").value === "custom";
    $("f-from").disabled = $("f-to").disabled = !custom;
  });
  $("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("f-period").value;
    if (v === "custom") {
      state.from = $("f-from").value || null; state.to = $("f-to").value || null;
    } else {
      state.days = Number(v); state.from = state.to = null;
    }
    state.category = $("f-category").value;
    state.feed = $("f-feed").value;
    refresh();
  });

  // -- map ----------------------------------------------------------------------------------
  async function loadMap() {
    const r = await fetch(`${base}/wards.svg`, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`map: HTTP ${r.status}`);
    $("map").innerHTML = await r.text();
    for (const p of document.querySelectorAll("path.ward")) {
      wardNames.set(p.dataset.code, p.dataset.name);
      activate(p, () => selectWard(p.dataset.code));
    }
    markAlerting();
  }

  // Count classes when there is no baseline: steps of the period's largest ward count.
  function countClass(n, max) {
    if (n === 0) return "count-0";
    const step = Math.min(4, 1 + Math.floor((4 * n) / (max + 1)));
    return `count-${step}`;
  }

  function paintMap() {
    if (!summary) return;
    const max = Math.max(0, ...summary.wards.map((w) => w.count));
    for (const w of summary.wards) {
      const p = document.getElementById(`ward-${w.ward_code}`);
      if (!p) continue;
      const cls = summary.has_baseline ? `band-${w.band}` : countClass(w.count, max);
      p.setAttribute("class", `ward ${cls}` +
        (p.classList.contains("alerting") ? " alerting" : "") +
        (state.ward === w.ward_code ? " selected" : ""));
      p.dataset.count = w.count_shown;
      const exp = w.expected === null ? "no baseline yet" : `expected ${w.expected}`;
      p.querySelector("title").textContent =
        `${w.ward_name} (${w.ward_code}): ${w.count_shown} this period, ` +
        `${w.previous_shown} the period before, ${exp}`;
      p.setAttribute("aria-label", `${w.ward_name}: ${w.count_shown}`);
      const label = document.querySelector(`#label-${w.ward_code} .count`);
      if (label) label.textContent = w.count_shown;
    }
    const legend = $("legend");
    legend.replaceChildren();
    const items = summary.has_baseline
      ? [["band-below", "below expected"], ["band-as-expected", "as expected"],
         ["band-above", "above"], ["band-well-above", "well above"]]
      : [["count-0", "none"], ["count-1", "fewest"], ["count-2", ""], ["count-3", ""],
         ["count-4", `most (${summary.wards.length ? Math.max(...summary.wards.map((w) => w.count)) : 0})`]];
    for (const [cls, label] of items) {
      const li = document.createElement("li");
      li.append(Object.assign(document.createElement("i"), { className: cls }), label);
      legend.append(li);
    }
    const note = document.createElement("li");
    note.append(Object.assign(document.createElement("i"), { className: "alerting" }), "alert");
    legend.append(note,
      text("li", summary.has_baseline ? "coloured against the baseline"
                                      : `coloured by count; counts below ${summary.suppress_below} shown as <${summary.suppress_below}`));
  }

  // -- summary table ------------------------------------------------------------------------
  async function loadSummary() {
    const r = await fetch(`${base}/summary.json?${filterParams()}`, { credentials: "same-origin" });
    if (!r.ok) { $("period-line").textContent = `could not load counts: HTTP ${r.status}`; return; }
    summary = await r.json();
    fillSelect($("f-category"), summary.categories, state.category);
    fillSelect($("f-feed"), summary.feeds, state.feed);
    $("period-line").textContent =
      `${day(summary.from)} to ${day(summary.to)} (to exclusive): ${summary.total_shown} records` +
      ` (previous period ${summary.previous_total_shown})` +
      (summary.category ? `, category ${summary.category}` : "") +
      (summary.feed ? `, feed ${summary.feed}` : "");
    const body = $("wards-table").querySelector("tbody");
    body.replaceChildren();
    for (const w of summary.wards) {
      const tr = document.createElement("tr");
      tr.dataset.ward = w.ward_code;
      tr.tabIndex = 0;
      if (state.ward === w.ward_code) tr.className = "selected";
      // Beside a small count the change and p-value would give the hidden count back.
      const small = w.change_shown === "" && (w.count > 0 || w.previous > 0);
      const sig = small ? "small counts" : w.direction === "none" ? "no change"
        : `${w.significant ? "significant " : ""}${w.direction} (p=${w.p_value})`;
      tr.append(text("th", w.ward_name), text("td", w.count_shown, "count"),
                text("td", w.previous_shown), text("td", w.change_shown, "change"),
                text("td", sig, w.significant && !small ? "sig" : ""),
                text("td", w.expected === null ? "no baseline" : String(w.expected)));
      tr.firstChild.scope = "row";
      activate(tr, () => selectWard(w.ward_code));
      body.append(tr);
    }
    const d = $("district-only");
    d.textContent = summary.district_only
      ? `${summary.district_only_shown} records this period were released to this group only at ` +
        `district level (the ward was withheld to keep them anonymous).`
      : "Every record this period was released at ward level.";
    d.dataset.count = String(summary.district_only);
    if (summary.district_only) {
      const b = text("button", "show them", "link");
      b.type = "button";
      activate(b, () => selectWard(""));
      d.append(" ", b);
    }
    // A group of single wards cannot receive its districts' district-only records (the hub
    // does not know which ward's group they belong to): it is told how many there were.
    const u = $("district-only-elsewhere");
    u.dataset.count = String(summary.district_only_not_received || 0);
    u.textContent = summary.district_only_not_received
      ? `${summary.district_only_not_received_shown} more records this period were released ` +
        `only at district level in the district of your wards. They may be in your wards or ` +
        `in others, so they are not sent to this group; a group taking the whole district ` +
        `receives them.`
      : "";
    u.hidden = !summary.district_only_not_received;
    paintMap();
  }

  // -- trend chart (inline SVG) ----------------------------------------------------------
  const PALETTE = ["#1d4f91", "#b3261e", "#1f6b35", "#7a4b00", "#6a1b9a", "#00695c"];
  async function loadTrend() {
    const p = periodParams();
    if (state.feed) p.set("feed", state.feed);
    if (state.ward !== null) p.set("ward", state.ward);
    const r = await fetch(`${base}/trend.json?${p}`, { credentials: "same-origin" });
    if (!r.ok) return;
    const t = await r.json();
    $("trend-ward").textContent = state.ward === null ? "all wards"
      : state.ward === "" ? "district only" : wardLabel(state.ward);
    let series = Object.entries(t.series);
    if (state.category) series = series.filter(([c]) => c === state.category);
    series = series.slice(0, PALETTE.length);
    const W = 640, H = 220, L = 36, B = 40, n = t.buckets.length;
    const max = Math.max(1, ...series.flatMap(([, v]) => v));
    const x = (i) => L + (i + 0.5) * (W - L - 8) / n;
    const y = (v) => H - B - v * (H - B - 10) / max;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "trend-chart", role: "img",
      "aria-label": `Counts per ${t.bucket} by category` });
    svg.append(svgEl("rect", { x: x(t.period_start_index) - (W - L - 8) / n / 2, y: 4,
      width: W - 8 - (x(t.period_start_index) - (W - L - 8) / n / 2), height: H - B - 4,
      class: "this-period" }));
    for (const v of [0, max]) {
      svg.append(svgEl("line", { x1: L, x2: W - 8, y1: y(v), y2: y(v), class: "grid" }));
      const lab = svgEl("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" });
      lab.textContent = String(v); svg.append(lab);
    }
    const every = Math.max(1, Math.ceil(n / 8));
    t.buckets.forEach((b, i) => {
      if (i % every) return;
      const lab = svgEl("text", { x: x(i), y: H - B + 16, "text-anchor": "middle" });
      lab.textContent = b.slice(5, 10); svg.append(lab);
    });
    series.forEach(([cat, values], k) => {
      const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const line = svgEl("polyline", { points: pts, fill: "none", stroke: PALETTE[k],
        "stroke-width": 2, class: "series", "data-category": cat });
      const title = svgEl("title"); title.textContent = `${cat}: ${values.join(", ")}`;
      line.append(title); svg.append(line);
    });
    const legend = document.createElement("ul");
    legend.className = "trend-legend";
    series.forEach(([cat, values], k) => {
      const li = text("li", `${cat} (${values.reduce((a, b) => a + b, 0)})`);
      li.style.borderLeftColor = PALETTE[k];
      legend.append(li);
    });
    const note = text("p", series.length ? `Per ${t.bucket}; the shaded part is this period, ` +
      "the rest the periods before it." : "No records in these periods.", "note");
    $("trend").replaceChildren(svg, legend, note);
  }

  // -- records behind a ward ------------------------------------------------------------
  async function loadRecords() {
    const body = $("records-table").querySelector("tbody");
    if (state.ward === null) {
      body.replaceChildren();
      $("records-ward").textContent = "choose a ward on the map or in the table";
      return;
    }
    const p = filterParams();
    p.set("ward", state.ward);
    const r = await fetch(`${base}/records.json?${p}`, { credentials: "same-origin" });
    if (!r.ok) { $("records-ward").textContent = `could not load records: HTTP ${r.status}`; return; }
    const doc = await r.json();
    $("records-ward").textContent = `${state.ward === "" ? "placed only at district level"
      : wardLabel(state.ward)}: ${doc.total}` + (doc.truncated ? ` (newest ${doc.records.length} shown)` : "");
    body.replaceChildren();
    for (const rec of doc.records) {
      const tr = document.createElement("tr");
      tr.dataset.record = rec.hub_record_id;
      tr.append(text("td", fmtTime(rec.time)), text("td", rec.time_bucket),
                text("td", rec.category), text("td", rec.feed), text("td", rec.area),
                text("td", rec.released || "(none)"));
      body.append(tr);
    }
  }

  function selectWard(code) {
    state.ward = state.ward === code ? null : code;
    for (const p of document.querySelectorAll("path.ward")) {
      p.classList.toggle("selected", p.dataset.code === state.ward);
    }
    for (const tr of $("wards-table").querySelectorAll("tbody tr")) {
      tr.classList.toggle("selected", tr.dataset.ward === state.ward);
    }
    loadTrend();
    loadRecords();
  }

  // -- alerts ---------------------------------------------------------------------------
  function markAlerting() {
    const codes = new Set([...alerts.values()].map((a) => a.ward_code));
    for (const p of document.querySelectorAll("path.ward")) {
      p.classList.toggle("alerting", codes.has(p.dataset.code));
    }
  }

  function renderList() {
    const list = $("alerts");
    list.replaceChildren();
    const sorted = [...alerts.values()].sort((a, b) =>
      (b.window_start + b.raised_at).localeCompare(a.window_start + a.raised_at));
    for (const a of sorted) {
      const li = document.createElement("li");
      li.className = "alert" + (a.alert_id === selectedAlert ? " selected" : "");
      li.dataset.alertId = a.alert_id;
      li.dataset.ward = a.ward_code;
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      li.append(text("strong", a.ward_name || a.ward_code), " ",
                text("span", `${a.category}: ${a.count} in the ${a.window} from ` +
                             `${fmtTime(a.window_start)} (expected ${a.expected.toFixed(2)})`));
      if (a.explanation) li.append(text("p", a.explanation, "explanation"));
      activate(li, () => show(a.alert_id));
      list.append(li);
    }
    $("alert-count").textContent = String(alerts.size);
  }

  function show(alertId) {
    const a = alerts.get(alertId);
    if (!a) return;
    selectedAlert = alertId;
    const rows = [
      ["Area", `${a.ward_name || ""} ${a.ward_code}`.trim() +
               (a.district_code ? `, district ${a.district_code}` : "")],
      ["Category", a.category],
      ["Window", `${a.window}: ${fmtTime(a.window_start)} to ${fmtTime(a.window_end)}`],
      ["Count", a.count],
      ["Expected", a.expected.toFixed(2)],
      ["p-value", a.p_value.toPrecision(3)],
      ["BH threshold", a.bh_threshold.toPrecision(3)],
      ["Getis-Ord Gi* z", a.gi_z === null ? "not computed" : a.gi_z.toFixed(2)],
      ["Neighbouring wards", a.neighbours.length ? a.neighbours.map(wardLabel).join(", ")
                                                 : "none elevated"],
      ["Protocol", a.protocol],
      ["Raised", fmtTime(a.raised_at)],
    ];
    const box = $("evidence");
    const dl = document.createElement("dl");
    for (const [k, v] of rows) dl.append(text("dt", k), text("dd", String(v)));
    box.replaceChildren(text("h3", "Evidence"), dl,
                        ...(window.s115AlertWhy ? [window.s115AlertWhy(a)] : []));
    box.hidden = false;
    box.dataset.alertId = alertId;
    renderList();
    // The alert's ward becomes the selected one: its records and trend are shown beside it.
    state.ward = null;
    selectWard(a.ward_code);
    box.focus();
  }

  let countsTimer = null;
  function countsSoon() {
    if (countsTimer) return;
    countsTimer = setTimeout(() => { countsTimer = null; loadSummary(); }, 500);
  }

  function connect() {
    const es = new EventSource(`${base}/stream?kinds=alerts&from=start`);
    es.onopen = () => { $("status").textContent = "live"; $("status").className = "status live"; };
    es.onerror = () => {
      $("status").textContent = "reconnecting";
      $("status").className = "status down";
    };
    es.addEventListener("alert", (ev) => {
      const a = JSON.parse(ev.data);
      alerts.set(a.alert_id, a);
      renderList();
      markAlerting();
      countsSoon();
    });
    es.addEventListener("revoked", () => {
      es.close();
      $("status").textContent = "token revoked";
      $("status").className = "status down";
    });
  }

  function refresh() {
    setExportLinks();
    return Promise.all([loadSummary(), loadTrend(), loadRecords()]);
  }

  $("f-from").disabled = $("f-to").disabled = true;
  loadMap().then(refresh).catch((e) => { $("map").textContent = String(e); });
  setInterval(loadSummary, 30000);
  connect();
})();
