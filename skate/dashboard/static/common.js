// Skate dashboard: what every page uses -- DOM helpers, the API call, tables, pagers, charts.
// Plain scripts sharing globals (no build step): this file first, app.js (the wiring) last.
// Every value from the cluster reaches the page through textContent, never as HTML: task
// names, log lines and error messages are written by user code.
"use strict";

const TOKEN_KEY = "skate-dashboard-token";
const PAGES = {}; // tab name -> {load: async () => ..., init?: () => ...}; filled by the pages
const view = { tab: "overview", perPage: 20 };
const charts = {}; // container id -> {plot, key}
const PALETTE = ["#2f6fde", "#d9480f", "#2a8a4a", "#9c36b5", "#c2255c", "#0b7285", "#e67700",
  "#495057"];

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
const $ = (id) => document.getElementById(id);
const short = (id) => (id ? String(id).slice(0, 12) : "-");
const when = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : "-");
const firstLine = (text) => (text ? String(text).split("\n")[0] : "");
const badge = (state) => (state ? el("span", { class: "badge " + state }, state) : "-");
const num = (v, digits) => (v === null || v === undefined ? "-"
  : Number.isInteger(v) ? String(v) : String(parseFloat(Number(v).toPrecision(digits || 4))));
function bytes(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}
function duration(start, end) {
  if (!start) return "-";
  const s = ((end || Date.now()) - start) / 1000;
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  return s < 60 ? s.toFixed(2) + " s" : (s / 60).toFixed(1) + " min";
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign(authHeaders(), opts.headers || {});
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  if (!resp.ok) {
    const err = new Error((body && body.error) || ("HTTP " + resp.status));
    err.status = resp.status;
    throw err;
  }
  return body;
}

function showError(message) {
  $("error-text").textContent = message;
  $("error").hidden = false;
}
function clearError() { $("error").hidden = true; }

async function act(path, method) {
  try {
    await api(path, { method });
    clearError();
  } catch (e) {
    showError(e.message);
  }
  refresh();
}

// columns: [[header, row => value, css class?], ...]
function table(id, columns, rows, empty) {
  const t = $(id);
  t.replaceChildren(el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", {}, c[0])))));
  const body = el("tbody");
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { class: "empty", colspan: columns.length }, empty)));
  }
  for (const r of rows) {
    body.append(el("tr", {}, ...columns.map((c) => {
      const v = c[1](r);
      return el("td", c[2] ? { class: c[2] } : {}, v === null || v === undefined ? "-" : v);
    })));
  }
  t.append(body);
}

function counts(byState) {
  return Object.entries(byState).map(([s, n]) => [" \u00b7 " + s + " ", el("b", {}, n)]).flat();
}

function pager(id, info, onPage) {
  const prev = el("button", { "data-testid": id + "-prev", onclick: () => onPage(info.page - 1) },
    "\u2190 Prev");
  const next = el("button", { "data-testid": id + "-next", onclick: () => onPage(info.page + 1) },
    "Next \u2192");
  prev.disabled = info.page <= 1;
  next.disabled = info.page >= info.pages;
  $(id).replaceChildren(prev, el("span", { "data-testid": id + "-info" },
    `page ${info.page} of ${info.pages} (${info.total} in all)`), next);
}

// A chart box (class "chart") with a title, created inside `parent` once.
function chartBox(parent, id, title) {
  let box = $(id);
  if (!box) {
    box = el("div", { class: "chart", id }, el("h3", {}, title));
    parent.append(box);
  }
  return box;
}

// Draw (or update) a line chart in box `id`: xs, and series [{label, values, dash?}].
// opts: fmt (y values), time (x is epoch seconds; default true), xLabel, zero (y from 0),
// minTop (the least top of the y axis, so an all-zero line gets sensible ticks), empty.
function lineChart(id, xs, series, opts) {
  const box = $(id);
  const o = Object.assign({ fmt: (v) => num(v), time: true, zero: true, minTop: 1e-9 },
    opts || {});
  const nodata = box.querySelector(".nodata");
  if (!xs.length || !series.length) {
    if (charts[id]) { charts[id].plot.destroy(); delete charts[id]; }
    if (!nodata) box.append(el("div", { class: "nodata" }, o.empty || "no samples yet"));
    return;
  }
  if (nodata) nodata.remove();
  const key = series.map((s) => s.label).join("\u0000") + (o.time ? "t" : "x");
  const data = [xs, ...series.map((s) => s.values)];
  if (charts[id] && charts[id].key === key) { charts[id].plot.setData(data); return; }
  if (charts[id]) charts[id].plot.destroy();
  const fmt = (v) => (v === null || v === undefined ? "-" : o.fmt(v));
  const plot = new uPlot({
    width: Math.max(300, box.clientWidth - 16), height: o.height || 180,
    scales: { x: { time: o.time }, y: { range: (u, lo, hi) => (o.zero
      ? [Math.min(0, lo), Math.max(hi * 1.1, o.minTop)] : [lo - Math.abs(lo) * 0.05,
        hi + Math.abs(hi) * 0.05 + 1e-9]) } },
    series: [o.time ? {} : { label: o.xLabel || "x" }, ...series.map((s, i) => ({
      label: s.label, stroke: s.color || PALETTE[i % PALETTE.length], width: s.dash ? 1 : 2,
      dash: s.dash ? [4, 4] : undefined, spanGaps: false, value: (u, v) => fmt(v),
      points: { show: !o.time } }))],
    // iterations are whole numbers: no ticks between them
    axes: [o.time ? {} : { incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 1e5] },
      { values: (u, vals) => vals.map(fmt), size: 84 }],
  }, data, box);
  charts[id] = { plot, key };
}
