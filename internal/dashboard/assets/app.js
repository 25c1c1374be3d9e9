// Entrepot's dashboard: polls GET /api/v1/dashboard and draws it. The
// admin token, when the API needs one, comes from the page's fragment
// (#token=...) or the login form, and is kept in this tab's
// sessionStorage only.
"use strict";

const every = 2000; // ms between polls while the page is visible
const tokenKey = "entrepot-admin-token";
const hitResults = ["hit", "revalidated", "joined", "stale"];
const $ = (id) => document.getElementById(id);

function takeToken() {
  const m = location.hash.match(/^#token=(.+)$/);
  if (m) {
    sessionStorage.setItem(tokenKey, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(tokenKey);
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  n = Math.max(0, n);
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
}

function count(n) { return Math.round(n).toLocaleString("en-US"); }

function percent(r) { return r === null ? "–" : (r * 100).toFixed(1) + " %"; }

function duration(s) {
  if (s >= 3600 && s % 3600 === 0) return s / 3600 + " h";
  if (s >= 60 && s % 60 === 0) return s / 60 + " min";
  return s + " s";
}

function sum(obj, keys) { return keys.reduce((t, k) => t + (obj[k] || 0), 0); }

// ratio is the share of requests answered from the cache, of those
// answered from it or fetched; null when there were none.
function ratio(hits, misses) { return hits + misses > 0 ? hits / (hits + misses) : null; }

// figure sets an element's text and its raw value (data-value), which
// tests compare with /metrics.
function figure(root, name, value, text) {
  for (const el of root.querySelectorAll(`[data-figure="${name}"]`)) {
    el.textContent = text;
    el.dataset.value = String(value);
  }
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-(.)/g, (_, c) => c.toUpperCase())] = v;
    else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

const svgNS = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const e = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

function rows(tbody, items, row, empty, cols) {
  tbody.replaceChildren(...(items.length ? items.map(row) : [el("tr", {}, el("td", { class: "empty", colSpan: cols }, empty))]));
}

function renderTotals(s) {
  const t = s.totals, req = t.requests || {};
  const hits = sum(req, hitResults), misses = req.miss || 0;
  const r = ratio(hits, misses);
  const all = Object.values(req).reduce((a, b) => a + b, 0);
  const main = $("main");
  figure(main, "hit-ratio", r === null ? "" : r, percent(r));
  figure(main, "requests", all, count(all) + " requests");
  figure(main, "served-bytes", t.served_bytes, bytes(t.served_bytes));
  figure(main, "upstream-bytes", t.upstream_bytes, bytes(t.upstream_bytes));
  const saved = Math.max(0, t.served_bytes - t.upstream_bytes);
  figure(main, "saved-bytes", saved, bytes(saved));
  const st = s.store;
  figure(main, "store-bytes", st.bytes, bytes(st.bytes));
  figure(main, "store-objects", st.objects, count(st.objects));
  figure(main, "store-max", st.max_bytes, st.max_bytes ? "of " + bytes(st.max_bytes) : "no bound");
  const used = st.max_bytes ? Math.min(1, st.bytes / st.max_bytes) : 0;
  $("store-bar").style.width = (used * 100).toFixed(1) + "%";
  $("store-bar").classList.toggle("high", used > 0.9);
}

// gauge draws a budget's remaining share as a half circle.
function gauge(b) {
  const share = b.limit > 0 ? Math.max(0, Math.min(1, b.remaining / b.limit)) : 0;
  const g = svg("svg", { viewBox: "0 0 100 60" });
  const arc = "M 10 55 A 40 40 0 0 1 90 55";
  g.append(svg("path", { d: arc, class: "track", fill: "none", "stroke-width": 10 }));
  const fill = svg("path", { d: arc, class: "fill" + (b.saving ? " low" : ""), fill: "none", "stroke-width": 10, pathLength: 100, "stroke-dasharray": `${share * 100} 100` });
  g.append(fill);
  const label = svg("text", { x: 50, y: 52 });
  label.textContent = Math.round(share * 100) + "%";
  g.append(label);
  return g;
}

function renderUpstreams(s) {
  const cards = s.upstreams.map((u) => {
    const req = u.requests || {};
    const hits = sum(req, hitResults);
    const card = el("article", { class: "card", "data-upstream": u.name },
      el("h3", {}, u.name, el("span", { class: "badge " + u.state, "data-figure": "state" }, u.state)),
      el("div", { class: "muted" }, u.host));
    if (u.state === "blocked" && u.blocked_until) {
      card.append(el("div", {}, "rate-limited until " + new Date(u.blocked_until).toLocaleTimeString()));
    }
    if (u.budget) {
      const b = u.budget;
      card.append(el("div", { class: "gauge" }, gauge(b), el("div", {},
        el("div", {}, el("span", { "data-figure": "budget-remaining" }), " of ", el("span", { "data-figure": "budget-limit" }), " left per " + duration(b.window_seconds)),
        el("div", { class: "muted" }, "floor " + count(b.floor) + (b.saving ? ": tags served without revalidation" : "")))));
    } else {
      card.append(el("div", { class: "muted" }, "no rate-limit headers seen"));
    }
    card.append(el("dl", { class: "counts" },
      el("dt", {}, "hit ratio"), el("dd", { "data-figure": "hit-ratio" }),
      el("dt", {}, "answers"), el("dd", {}, ["hit", "revalidated", "joined", "stale", "miss", "error", "denied"]
        .filter((k) => req[k]).map((k) => `${k} ${count(req[k])}`).join(" · ") || "none"),
      el("dt", {}, "served"), el("dd", { "data-figure": "served-bytes" }),
      el("dt", {}, "fetched"), el("dd", { "data-figure": "upstream-bytes" }),
      el("dt", {}, "requests to it"), el("dd", {}, el("span", { "data-figure": "upstream-requests" }), ", failed ", el("span", { "data-figure": "upstream-errors" }))));
    const r = ratio(hits, req.miss || 0);
    figure(card, "hit-ratio", r === null ? "" : r, percent(r));
    figure(card, "served-bytes", u.served_bytes, bytes(u.served_bytes));
    figure(card, "upstream-bytes", u.upstream_bytes, bytes(u.upstream_bytes));
    figure(card, "upstream-requests", u.upstream_requests, count(u.upstream_requests));
    figure(card, "upstream-errors", u.upstream_errors, count(u.upstream_errors));
    if (u.budget) {
      figure(card, "budget-remaining", u.budget.remaining, count(u.budget.remaining));
      figure(card, "budget-limit", u.budget.limit, count(u.budget.limit));
    }
    return card;
  });
  $("upstreams").replaceChildren(...cards);
}

// renderChart draws the last hour, per interval between samples: the hit
// ratio (a step line) and the bytes saved (bars).
const span = 3600; // seconds the chart shows
function renderChart(history) {
  const W = 800, H = 200;
  const parts = [];
  for (const y of [0.25, 0.5, 0.75]) parts.push(svg("line", { x1: 0, x2: W, y1: H * y, y2: H * y, class: "grid" }));
  const end = history.length ? history[history.length - 1].t : 0;
  const x = (t) => Math.max(0, W - ((end - t) / span) * W);
  const steps = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1], b = history[i];
    steps.push({ x0: x(a.t), x1: x(b.t), r: ratio(b.hits - a.hits, b.misses - a.misses),
      saved: Math.max(0, (b.served_bytes - b.upstream_bytes) - (a.served_bytes - a.upstream_bytes)) });
  }
  const top = Math.max(1, ...steps.map((s) => s.saved));
  let line = "";
  for (const s of steps) {
    const h = (s.saved / top) * (H - 10);
    if (h > 0) parts.push(svg("rect", { x: s.x0, y: H - h, width: Math.max(1, s.x1 - s.x0), height: h, class: "saved" }));
    if (s.r !== null) {
      const y = H - 5 - s.r * (H - 10);
      line += `M${s.x0} ${y} L${s.x1} ${y} `;
    }
  }
  if (line) parts.push(svg("path", { d: line, class: "ratio" }));
  $("chart-range").textContent = `over the last hour; most saved in one interval: ${bytes(top)}`;
  $("chart").replaceChildren(...parts);
}

function renderTables(s) {
  rows($("top"), s.top || [], (r) => el("tr", {}, el("td", {}, el("code", {}, `${r.upstream}/${r.repo}`)),
    el("td", { class: "num" }, count(r.pulls)), el("td", { class: "num" }, bytes(r.bytes))), "no pulls yet", 3);
  rows($("fills"), s.fills || [], (f) => {
    const p = el("progress", { max: f.size > 0 ? f.size : 1 });
    if (f.size > 0) p.value = f.written;
    return el("tr", {}, el("td", {}, el("code", {}, `${f.upstream}/${f.repo}@${f.digest.slice(0, 19)}…`)),
      el("td", {}, p, el("div", { class: "muted" }, bytes(f.written) + (f.size > 0 ? " of " + bytes(f.size) : ""))));
  }, "none", 2);
  $("derived-section").hidden = !s.derived;
  rows($("derived"), s.derived || [], (d) => el("tr", {}, el("td", {}, el("code", {}, `derived/${d.name}:${d.tag}`)),
    el("td", {}, el("code", {}, d.digest ? d.digest.slice(0, 19) + "…" : "not built yet")),
    el("td", {}, el("code", {}, d.from), el("div", { class: "muted" }, d.base_digest ? d.base_digest.slice(0, 19) + "…" : "")),
    el("td", {}, d.built ? new Date(d.built).toLocaleTimeString() : "-")), "none", 4);
  rows($("errors"), s.errors || [], (e) => el("tr", {}, el("td", {}, new Date(e.time).toLocaleTimeString()),
    el("td", {}, el("code", {}, `${e.method} ${e.path}`)), el("td", { class: "num" }, String(e.status)),
    el("td", {}, e.message || "")), "none", 4);
}

function render(s) {
  $("version").textContent = "version " + s.version + " · up since " + new Date(s.started).toLocaleString();
  renderTotals(s);
  renderUpstreams(s);
  renderChart(s.history || []);
  renderTables(s);
  const status = $("status");
  status.textContent = "updated " + new Date(s.time).toLocaleTimeString();
  status.classList.remove("stale");
  document.body.dataset.updated = s.time;
}

let timer = null, busy = false;

async function poll() {
  if (busy) return;
  busy = true;
  clearTimeout(timer);
  timer = null;
  try {
    if (await fetchSnapshot()) schedule();
  } finally {
    busy = false;
  }
}

// fetchSnapshot fetches and draws a snapshot; false when a token is needed.
async function fetchSnapshot() {
  const token = sessionStorage.getItem(tokenKey);
  const headers = token ? { Authorization: "Bearer " + token } : {};
  try {
    const resp = await fetch("/api/v1/dashboard", { headers, cache: "no-store" });
    if (resp.status === 401) {
      sessionStorage.removeItem(tokenKey);
      $("main").hidden = true;
      $("login").hidden = false;
      $("status").textContent = token ? "token refused" : "token needed";
      return false;
    }
    if (!resp.ok) throw new Error(resp.status + " " + (await resp.text()));
    render(await resp.json());
    $("login").hidden = true;
    $("main").hidden = false;
  } catch (err) {
    const status = $("status");
    status.textContent = "not updated: " + err.message;
    status.classList.add("stale");
  }
  return true;
}

function schedule() {
  if (timer === null && !document.hidden) timer = setTimeout(poll, every);
}

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && timer === null) poll();
});

$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(tokenKey, $("token").value);
  $("token").value = "";
  poll();
});

takeToken();
poll();
