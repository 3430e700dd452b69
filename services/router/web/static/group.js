// The group page: ward map coloured by this week's count against expected, and a live alert
// list over server-sent events. Everything comes from the router; nothing from the internet.
"use strict";
(function () {
  const base = document.body.dataset.base;
  const alerts = new Map();          // alert_id -> alert (a re-emitted alert replaces itself)
  const wardNames = new Map();
  let selected = null;

  const $ = (id) => document.getElementById(id);
  const text = (tag, value, cls) => {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  };
  const fmtTime = (iso) => iso ? iso.replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, " UTC") : "";
  const wardLabel = (code) => wardNames.has(code) ? `${wardNames.get(code)} (${code})` : code;

  async function loadMap() {
    const r = await fetch(`${base}/wards.svg`, { credentials: "same-origin" });
    if (!r.ok) throw new Error(`map: HTTP ${r.status}`);
    $("map").innerHTML = await r.text();
    for (const p of document.querySelectorAll("path.ward")) {
      wardNames.set(p.dataset.code, p.dataset.name);
    }
    markAlerting();
  }

  async function loadCounts() {
    const r = await fetch(`${base}/wards.json`, { credentials: "same-origin" });
    if (!r.ok) return;
    const doc = await r.json();
    if (doc.window_start) {
      $("window").textContent = `week from ${fmtTime(doc.window_start).slice(0, 10)}` +
        (doc.district_only !== "0" ? `; ${doc.district_only} placed only to the district` : "");
    }
    for (const w of doc.wards) {
      const p = document.getElementById(`ward-${w.ward_code}`);
      if (!p) continue;
      p.setAttribute("class", `ward band-${w.band}` +
        (p.classList.contains("alerting") ? " alerting" : "") +
        (selected && alerts.get(selected)?.ward_code === w.ward_code ? " selected" : ""));
      p.dataset.count = w.count;
      p.dataset.expected = w.expected ?? "";
      const exp = w.expected === null ? "no baseline yet" : `expected ${w.expected}`;
      p.querySelector("title").textContent =
        `${w.ward_name} (${w.ward_code}): ${w.count} this week, ${exp}`;
    }
  }

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
      li.className = "alert" + (a.alert_id === selected ? " selected" : "");
      li.dataset.alertId = a.alert_id;
      li.dataset.ward = a.ward_code;
      li.append(text("strong", a.ward_name || a.ward_code), " ",
                text("span", `${a.category}: ${a.count} in the ${a.window} from ` +
                             `${fmtTime(a.window_start)} (expected ${a.expected.toFixed(2)})`));
      li.addEventListener("click", () => show(a.alert_id));
      list.append(li);
    }
    $("alert-count").textContent = String(alerts.size);
  }

  function show(alertId) {
    const a = alerts.get(alertId);
    if (!a) return;
    selected = alertId;
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
    for (const p of document.querySelectorAll("path.ward.selected")) p.classList.remove("selected");
    document.getElementById(`ward-${a.ward_code}`)?.classList.add("selected");
    renderList();
  }

  let countsTimer = null;
  function countsSoon() {
    if (countsTimer) return;
    countsTimer = setTimeout(() => { countsTimer = null; loadCounts(); }, 500);
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

  loadMap().then(loadCounts).catch((e) => { $("map").textContent = String(e); });
  setInterval(loadCounts, 30000);
  connect();
})();
