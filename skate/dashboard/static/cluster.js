// Skate dashboard: the cluster's pages -- overview, tasks, actors, placement groups, jobs,
// timeline.
"use strict";

const TASK_STATES = ["PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER",
  "RUNNING", "RUNNING_IN_RAY_GET", "RUNNING_IN_RAY_WAIT", "FINISHED", "FAILED"];
const ACTOR_STATES = ["PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"];
Object.assign(view, { tasksPage: 1, actorsPage: 1, pgsPage: 1 });

// -- overview -----------------------------------------------------------------------------
const cpuFmt = (v) => Number(v).toFixed(1);
const pct = (v) => Number(v).toFixed(0) + "%";

async function loadOverview() {
  const [nodes, hist] = await Promise.all([api("/api/nodes"), api("/api/cluster/history")]);
  const avail = (n, k) => (n.resources_available ? (n.resources_available[k] ?? 0) : null);
  table("nodes-table", [
    ["Node", (n) => short(n.node_id), "mono"],
    ["Address", (n) => n.node_ip],
    ["Head", (n) => (n.is_head_node ? "yes" : "")],
    ["State", (n) => badge(n.state)],
    ["CPU free / total", (n) => `${num(avail(n, "CPU"))} / ${n.resources_total.CPU ?? 0}`],
    ["GPU", (n) => n.resources_total.GPU ?? 0],
    ["Memory", (n) => bytes(n.resources_total.memory)],
    ["Object store used", (n) => (n.object_store
      ? `${bytes(n.object_store.used)} of ${bytes(n.object_store.capacity)}` : "-")],
    ["Why it died", (n) => n.state_message],
  ], nodes.nodes, "No nodes.");
  drawNodeCharts(hist);
  const memPct = hist.host.memory_used.map((u, i) =>
    (u === null ? null : (100 * u) / hist.host.memory_total[i]));
  lineChart("chart-host", hist.t, [{ label: "CPU %", values: hist.host.cpu_percent },
    { label: "memory %", values: memPct }], { fmt: pct });
}

// One card per node: CPU, GPU and memory (logical, where the node has them) and the bytes in
// its object store, each against its total.
const NODE_CHARTS = [["CPU", "CPU in use", cpuFmt], ["GPU", "GPU in use", cpuFmt],
  ["memory", "Memory in use (logical)", bytes], ["object_store", "Object store", bytes]];

// The store's bytes against its capacity (a flat line far above, for most stores): the
// capacity goes into the title instead.
function storeChart(id, t, s) {
  const capacity = s.total.filter((v) => v !== null).pop();
  $(id).querySelector("h3").textContent = `Object store in use (of ${bytes(capacity)})`;
  lineChart(id, t, [{ label: "used", values: s.used }], { fmt: bytes, minTop: 2 ** 20 });
}

function drawNodeCharts(hist) {
  const holder = $("node-charts");
  const ids = Object.keys(hist.nodes);
  for (const card of [...holder.children]) {
    if (!ids.includes(card.dataset.node)) card.remove();
  }
  if (!ids.length && !holder.querySelector(".nodata")) {
    holder.append(el("div", { class: "nodata" }, "no samples yet"));
  }
  for (const nid of ids) {
    const label = hist.node_labels[nid] || {};
    let card = holder.querySelector(`[data-node="${nid}"]`);
    if (!card) {
      card = el("div", { class: "node-card", dataset: { node: nid } },
        el("h3", {}, `Node ${short(nid)} \u00b7 ${label.node_ip || ""}` +
          (label.is_head_node ? " (head)" : "")), el("div", { class: "charts" }));
      holder.append(card);
      const nodata = holder.querySelector(".nodata");
      if (nodata) nodata.remove();
    }
    for (const [name, title, fmt] of NODE_CHARTS) {
      const s = hist.nodes[nid][name];
      if (!s) continue;
      const id = `chart-${nid.slice(0, 12)}-${name}`;
      chartBox(card.lastChild, id, title);
      if (name === "object_store") { storeChart(id, hist.t, s); continue; }
      lineChart(id, hist.t, [{ label: "in use", values: s.used },
        { label: "total", values: s.total, color: "#9aa4b2", dash: true }], { fmt, minTop: 1 });
    }
  }
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
    ["", (a) => el("span", {},
      a.pid ? el("button", { class: "small", "data-testid": "logs-" + a.actor_id,
        onclick: () => openLog({ actor_id: a.actor_id },
          `${a.class_name} ${a.name || short(a.actor_id)}`) }, "Logs") : "", " ",
      a.state === "DEAD" ? "" : el("button", { class: "small",
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
      el("button", { class: "small", onclick: () => showJobLogs(j.submission_id) }, "Logs"), " ",
      ["PENDING", "RUNNING"].includes(j.status)
        ? el("button", { class: "small", "data-testid": "stop-" + j.submission_id,
          onclick: () => act(`/api/jobs/${j.submission_id}/stop`, "POST") }, "Stop") : ""))],
  ], jobs, "No jobs yet.");
}

async function showJobLogs(id) {
  const r = await api(`/api/jobs/${encodeURIComponent(id)}/logs`);
  $("job-logs-title").textContent = "Logs of " + id;
  $("job-logs-title").hidden = false;
  $("job-logs").textContent = r.logs || "(no output yet)";
  $("job-logs").hidden = false;
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

Object.assign(PAGES, {
  overview: { load: loadOverview },
  tasks: {
    load: loadTasks,
    init() {
      for (const s of TASK_STATES) $("task-state").append(el("option", { value: s }, s));
      $("task-filters").addEventListener("submit", (ev) => {
        ev.preventDefault(); view.tasksPage = 1; refresh();
      });
    },
  },
  actors: {
    load: loadActors,
    init() {
      for (const s of ACTOR_STATES) $("actor-state").append(el("option", { value: s }, s));
      $("actor-filters").addEventListener("submit", (ev) => {
        ev.preventDefault(); view.actorsPage = 1; refresh();
      });
    },
  },
  pgs: { load: loadPgs },
  jobs: { load: loadJobs },
  timeline: {
    load: async () => {},
    init() { $("timeline-download").addEventListener("click", downloadTimeline); },
  },
});
