"""The group page's HTML shell: landmarks, filters, map, tables, chart and alert list. The data
come from the JSON routes (page_routes.py) through static/group.js; nothing is fetched from
outside the hub. Pure string building, escaped."""

from __future__ import annotations

from html import escape


def group_page(group: str, name: str, root: str, member: str | None) -> str:
    g, n, r = escape(group), escape(name), escape(root)
    b = f"{r}/{g}"
    who = f'<span class="member">signed in as {escape(member)}</span>' if member else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{n}: hot-spot tasking</title>
<link rel="stylesheet" href="{r}/_static/group.css">
</head><body data-group="{g}" data-base="{b}">
<a class="skip" href="#wards-table">Skip to the ward table</a>
<header><h1>{n}</h1><span class="gid">{g}</span>
<span id="status" class="status" role="status">connecting</span>{who}
<a href="{b}/logout" class="logout">sign out</a></header>
<form id="filters" class="filters" aria-label="Filters">
<label>Period <select id="f-period" name="period">
<option value="7">last 7 days</option><option value="14">last 14 days</option>
<option value="28" selected>last 28 days</option><option value="91">last 13 weeks</option>
<option value="custom">from / to</option></select></label>
<label>From <input type="date" id="f-from" name="from"></label>
<label>To <input type="date" id="f-to" name="to"></label>
<label>Category <select id="f-category" name="category"><option value="">all</option>
</select></label>
<label>Feed <select id="f-feed" name="feed"><option value="">all</option></select></label>
<button type="submit" id="f-apply">Apply</button>
<span class="exports">
<a id="export-csv" class="button" href="{b}/export.csv">Export CSV</a>
<a id="export-geojson" class="button" href="{b}/export.geojson">Export GeoJSON</a>
<a id="pack" class="button" href="{b}/pack.pdf">Tasking pack (PDF)</a>
</span></form>
<p id="period-line" class="period" aria-live="polite"></p>
<main>
<section class="map" aria-labelledby="map-h"><h2 id="map-h">Wards</h2>
<div id="map" aria-live="polite">loading wards</div>
<ul class="legend" id="legend" aria-label="Map colours"></ul></section>
<section class="alerts" aria-labelledby="alerts-h"><h2 id="alerts-h">Live alerts
<small id="alert-count">0</small></h2>
<ol id="alerts"></ol>
<div id="evidence" hidden tabindex="-1"></div></section>
<section class="table" aria-labelledby="table-h"><h2 id="table-h">Wards this period</h2>
<table id="wards-table"><thead><tr><th scope="col">Ward</th><th scope="col">Count</th>
<th scope="col">Previous</th><th scope="col">Change</th><th scope="col">Significance</th>
<th scope="col">Expected</th></tr></thead><tbody></tbody></table>
<p id="district-only" class="note"></p>
<p id="district-only-elsewhere" class="note" hidden></p></section>
<section class="trend" aria-labelledby="trend-h"><h2 id="trend-h">Trend
<small id="trend-ward">all wards</small></h2><div id="trend"></div></section>
<section class="records" aria-labelledby="records-h"><h2 id="records-h">Records
<small id="records-ward">choose a ward</small></h2>
<table id="records-table"><thead><tr><th scope="col">When</th><th scope="col">Time precision</th>
<th scope="col">Category</th><th scope="col">Feed</th><th scope="col">Area</th>
<th scope="col">Released tags and text</th></tr></thead><tbody></tbody></table></section>
<aside id="feed-notes" class="feed-notes" hidden></aside>
</main>
<script src="{r}/_static/alert_why.js"></script>
<script src="{r}/_static/group.js"></script>
</body></html>"""


def token_form(group: str, message: str) -> str:
    g = escape(group)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{g}: sign in</title></head>
<body><h1>{g}</h1><p>{escape(message)}</p>
<form method="get"><label>Your token <input name="token" type="password" size="60"
autocomplete="off" required></label> <button>Open</button></form>
<p>Your information-sharing officer issues each member their own token with
<code>s115hub group member add</code>.</p>
</body></html>"""
