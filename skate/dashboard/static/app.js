// Skate dashboard: plain JavaScript over the JSON API (no build step, no framework).
// Every value from the cluster reaches the page through textContent, never as HTML:
// task names and error messages are written by user code.
"use strict";

const TOKEN_KEY = "skate-dashboard-token";
const REFRESH_MS = 2000;
const TASK_STATES = ["PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER",
  "RUNNING", "RUNNING_IN_RAY_GET", "RUNNING_IN_RAY_WAIT", "FINISHED", "FAILED"];
const ACTOR_STATES = ["PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"];
const view = { tab: "overview", tasksPage: 1, actorsPage: 1, pgsPage: 1, perPage: 20 };
const charts = {};

// -- small helpers ------------------------------------------------------------------------
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
const badge = (state) => el("span", { class: "badge " + state }, state);
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

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (token()) opts.headers["Authorization"] = "Bearer " + token();
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

// -- overview -----------------------------------------------------------------------------
async function loadOverview() {
  const [nodes, hist] = await Promise.all([api("/api/nodes"), api("/api/cluster/history")]);
  table("nodes-table", [
    ["Node", (n) => short(n.node_id), "mono"],
    ["Address", (n) => n.node_ip],
    ["Head", (n) => (n.is_head_node ? "yes" : "")],
    ["State", (n) => badge(n.state)],
    ["CPU", (n) => n.resources_total.CPU ?? 0],
    ["GPU", (n) => n.resources_total.GPU ?? 0],
    ["Memory", (n) => bytes(n.resources_total.memory)],
    ["Object store", (n) => bytes(n.resources_total.object_store_memory)],
    ["Why it died", (n) => n.state_message],
  ], nodes.nodes, "No nodes.");
  const t = hist.t;
  const res = hist.resources;
  plot("chart-cpu", t, res.CPU, (v) => (v === null ? "-" : v.toFixed(1)));
  plot("chart-memory", t, res.memory, bytes);
  plot("chart-store", t, res.object_store_memory, bytes);
  const memPct = hist.host.memory_used.map((u, i) =>
    (u === null ? null : (100 * u) / hist.host.memory_total[i]));
  plot("chart-host", t, { used: hist.host.cpu_percent, total: memPct },
    (v) => (v === null ? "-" : v.toFixed(0) + "%"), ["CPU %", "memory %"]);
}

function plot(id, t, series, fmt, labels) {
  const box = $(id);
  if (!series || !t.length) {
    if (!box.querySelector(".nodata")) {
      box.append(el("div", { class: "nodata" }, t.length
        ? "this cluster's nodes advertise no such resource" : "no samples yet"));
    }
    return;
  }
  const nodata = box.querySelector(".nodata");
  if (nodata) nodata.remove();
  const data = [t, series.used, series.total];
  if (charts[id]) { charts[id].setData(data); return; }
  const names = labels || ["in use", "total"];
  charts[id] = new uPlot({
    width: Math.max(300, box.clientWidth - 16), height: 180,
    series: [{}, { label: names[0], stroke: "#2f6fde", width: 2, fill: "rgba(47,111,222,0.08)",
      value: (u, v) => fmt(v) },
    { label: names[1], stroke: "#9aa4b2", width: 1, dash: [4, 4], value: (u, v) => fmt(v) }],
    axes: [{}, { values: (u, vals) => vals.map(fmt), size: 70 }],
    scales: { y: { range: (u, lo, hi) => [0, Math.max(hi, 1e-9) * 1.1] } },
  }, data, box);
}

// -- tasks ----------------------------------------------------------------------------------
async function loadTasks() {
  const q = new URLSearchParams({ page: view.tasksPage, per_page: view.perPage });
  if ($("task-state").value) q.set("state", $("task-state").value);
  if ($("task-name").value.trim()) q.set("name", $("task-name").value.trim());
  const r = await api("/api/tasks?" + q);
  $("task-summary").replaceChildren("Tasks in the history: ", el("b", {}, r.summary.total_tasks),
    ...counts(r.summary.by_state), " \u2014 matching: ",
    el("b", { "data-testid": "tasks-total" }, r.total));
  table("tasks-table", [
    ["Task", (x) => x.task_id, "mono"],
    ["Attempt", (x) => x.attempt_number],
    ["Name", (x) => x.name],
    ["State", (x) => badge(x.state)],
    ["Type", (x) => x.type],
    ["Node", (x) => short(x.node_id), "mono"],
    ["Worker pid", (x) => x.worker_pid],
    ["Started", (x) => when(x.start_time_ms)],
    ["Duration", (x) => duration(x.start_time_ms, x.end_time_ms)],
    ["Error", (x) => (x.error_type ? el("span", { title: x.error_message || "" },
      x.error_type + ": " + firstLine(x.error_message)) : "")],
  ], r.tasks, "No tasks match.");
  pager("tasks-pager", r, (p) => { view.tasksPage = p; refresh(); });
}

// -- actors ---------------------------------------------------------------------------------
async function loadActors() {
  const q = new URLSearchParams({ page: view.actorsPage, per_page: view.perPage });
  if ($("actor-state").value) q.set("state", $("actor-state").value);
  if ($("actor-class").value.trim()) q.set("class_name", $("actor-class").value.trim());
  const r = await api("/api/actors?" + q);
  $("actor-summary").replaceChildren("Actors: ", el("b", {}, r.summary.total_actors),
    ...counts(r.summary.by_state));
  table("actors-table", [
    ["Actor", (a) => short(a.actor_id), "mono"],
    ["Class", (a) => a.class_name],
    ["Name", (a) => a.name],
    ["State", (a) => badge(a.state)],
    ["Pid", (a) => a.pid],
    ["Node", (a) => short(a.node_id), "mono"],
    ["Restarts", (a) => a.num_restarts],
    ["Death cause", (a) => a.death_cause],
    ["", (a) => (a.state === "DEAD" ? "" : el("button", { class: "small",
      onclick: () => act(`/api/actors/${a.actor_id}/kill`, "POST") }, "Kill"))],
  ], r.actors, "No actors match.");
  pager("actors-pager", r, (p) => { view.actorsPage = p; refresh(); });
}

// -- placement groups -------------------------------------------------------------------------
async function loadPgs() {
  const r = await api(`/api/placement_groups?page=${view.pgsPage}&per_page=${view.perPage}`);
  table("pgs-table", [
    ["Group", (g) => short(g.placement_group_id), "mono"],
    ["Name", (g) => g.name],
    ["State", (g) => badge(g.state)],
    ["Strategy", (g) => g.strategy],
    ["Bundles", (g) => g.bundles.map((b) => JSON.stringify(b.unit_resources)).join(" ")],
  ], r.placement_groups, "No placement groups.");
  pager("pgs-pager", r, (p) => { view.pgsPage = p; refresh(); });
}

// -- jobs -----------------------------------------------------------------------------------
async function loadJobs() {
  const jobs = await api("/api/jobs/");
  table("jobs-table", [
    ["Job", (j) => j.submission_id || j.job_id, "mono"],
    ["Type", (j) => j.type],
    ["Status", (j) => badge(j.status)],
    ["Entrypoint", (j) => j.entrypoint, "mono"],
    ["Started", (j) => when(j.start_time)],
    ["Ended", (j) => when(j.end_time)],
    ["Exit code", (j) => j.driver_exit_code],
    ["Message", (j) => j.message],
    ["", (j) => (j.type !== "SUBMISSION" ? "" : el("span", {},
      el("button", { class: "small", onclick: () => showLogs(j.submission_id) }, "Logs"), " ",
      ["PENDING", "RUNNING"].includes(j.status)
        ? el("button", { class: "small", "data-testid": "stop-" + j.submission_id,
          onclick: () => act(`/api/jobs/${j.submission_id}/stop`, "POST") }, "Stop") : ""))],
  ], jobs, "No jobs yet.");
}

async function showLogs(id) {
  const r = await api(`/api/jobs/${encodeURIComponent(id)}/logs`);
  $("job-logs-title").textContent = "Logs of " + id;
  $("job-logs-title").hidden = false;
  $("job-logs").textContent = r.logs || "(no output yet)";
  $("job-logs").hidden = false;
}

async function act(path, method) {
  try {
    await api(path, { method });
    clearError();
  } catch (e) {
    showError(e.message);
  }
  refresh();
}

// -- timeline -------------------------------------------------------------------------------
async function downloadTimeline() {
  try {
    const events = await api("/api/timeline");
    const blob = new Blob([JSON.stringify(events)], { type: "application/json" });
    const a = el("a", { href: URL.createObjectURL(blob), download: "timeline.json" });
    document.body.append(a);
    a.click();
    a.remove();
    $("timeline-state").textContent = `${events.length} trace events`;
  } catch (e) {
    showError(e.message);
  }
}

// -- wiring ---------------------------------------------------------------------------------
const LOADERS = { overview: loadOverview, tasks: loadTasks, actors: loadActors, pgs: loadPgs,
  jobs: loadJobs, timeline: async () => {} };
let inFlight = false;

async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    await LOADERS[view.tab]();
  } catch (e) {
    showError(e.message);
  } finally {
    inFlight = false;
  }
}

function selectTab(name) {
  if (!LOADERS[name]) name = "overview";
  view.tab = name;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.tab === name);
  }
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "tab-" + name;
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  refresh();
}

function showTokenState() {
  $("token-state").textContent = token() ? "token set for this tab" : "no token: read only";
}

function init() {
  for (const s of TASK_STATES) $("task-state").append(el("option", { value: s }, s));
  for (const s of ACTOR_STATES) $("actor-state").append(el("option", { value: s }, s));
  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => selectTab(b.dataset.tab));
  }
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    $("token").value = "";
    showTokenState();
    clearError();
    refresh();
  });
  $("task-filters").addEventListener("submit", (ev) => {
    ev.preventDefault(); view.tasksPage = 1; refresh();
  });
  $("actor-filters").addEventListener("submit", (ev) => {
    ev.preventDefault(); view.actorsPage = 1; refresh();
  });
  $("error-close").addEventListener("click", clearError);
  $("timeline-download").addEventListener("click", downloadTimeline);
  showTokenState();
  api("/api/version").then((v) => {
    if (v.read_token && !token()) showError("This dashboard needs the cluster token to read: " +
      "paste it (the file <session_dir>/token on the head) into the token field.");
  }).catch(() => {});
  selectTab(location.hash.slice(1) || "overview");
  setInterval(refresh, REFRESH_MS);
}

init();
