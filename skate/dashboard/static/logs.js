// Skate dashboard: the Logs page (files per node, a file's tail, a live tail) and the Objects
// page (the stores, objects by call site, every reference).
"use strict";

const MAX_LOG_LINES = 5000; // kept on the page while following
Object.assign(view, { log: null, objectsPage: 1, callSite: "" });
let follow = null; // {controller} of the live tail being read, if any

// -- logs -----------------------------------------------------------------------------------
let logFilesShown = ""; // what the file list shows, so a refresh redraws it only on a change

async function loadLogs() {
  const r = await api("/api/logs");
  const holder = $("log-files");
  const shown = JSON.stringify([r, view.log && view.log.which.filename]);
  if (shown === logFilesShown) return;
  logFilesShown = shown;
  holder.replaceChildren(...r.nodes.map((n) => el("div", { class: "log-node" },
    el("h3", {}, `Node ${short(n.node_id)} \u00b7 ${n.node_ip}` + (n.is_head_node ? " (head)" : "")),
    ...Object.entries(n.files).map(([kind, names]) => el("details", { open: "" },
      el("summary", {}, `${kind} (${names.length})`),
      el("ul", {}, ...names.map((name) => el("li", {}, el("a", {
        href: "#logs", "data-file": name, class: view.log && view.log.which.filename === name
          ? "mono current" : "mono",
        onclick: (ev) => { ev.preventDefault(); openLog({ filename: name, node_id: n.node_id },
          name); } }, name)))))))));
  if (!r.nodes.length) holder.append(el("p", { class: "nodata" }, "No alive node has logs."));
}

function logQuery(extra) {
  const which = Object.assign({}, view.log.which);
  if (!which.filename) which.suffix = $("log-suffix").value;
  return new URLSearchParams(Object.assign(which, extra));
}

// Show the last lines of a log: {filename, node_id} or {actor_id} (then out or err).
async function openLog(which, title) {
  stopFollowing();
  view.log = { which, title };
  if (view.tab !== "logs") selectTab("logs");
  $("log-suffix").hidden = Boolean(which.filename);
  $("log-title").textContent = title;
  $("log-text").textContent = "loading\u2026";
  try {
    const r = await api("/api/logs/file?" + logQuery({ tail: 1000 }));
    $("log-text").textContent = r.lines.length ? r.lines.join("\n") + "\n" : "";
    $("log-state").textContent = r.lines.length ? `last ${r.lines.length} lines` : "(empty)";
    $("log-text").scrollTop = $("log-text").scrollHeight;
  } catch (e) {
    $("log-text").textContent = "";
    $("log-state").textContent = "";
    showError(e.message);
  }
}

async function startFollowing() {
  if (!view.log) { showError("Pick a log first: a file on the left, or Logs in Actors."); return; }
  stopFollowing();
  const controller = new AbortController();
  follow = { controller };
  $("log-follow").textContent = "Stop";
  $("log-state").textContent = "following\u2026";
  const pre = $("log-text");
  pre.textContent = "";
  try {
    const resp = await fetch("/api/logs/stream?" + logQuery({ tail: 200 }),
      { headers: authHeaders(), signal: controller.signal });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body.error || "HTTP " + resp.status);
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pre.append(decoder.decode(value, { stream: true }));
      const lines = pre.textContent.split("\n");
      if (lines.length > MAX_LOG_LINES) pre.textContent = lines.slice(-MAX_LOG_LINES).join("\n");
      pre.scrollTop = pre.scrollHeight;
    }
    $("log-state").textContent = "the log ended";
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  } finally {
    if (follow && follow.controller === controller) {
      follow = null;
      $("log-follow").textContent = "Follow";
    }
  }
}

function stopFollowing() {
  if (!follow) return;
  follow.controller.abort(); // the dashboard sees the client go and closes the tail
  follow = null;
  $("log-follow").textContent = "Follow";
  $("log-state").textContent = "stopped";
}

// -- objects --------------------------------------------------------------------------------
async function loadObjects() {
  const q = new URLSearchParams({ page: view.objectsPage, per_page: view.perPage });
  if (view.callSite) q.set("call_site", view.callSite);
  const [summary, page, hist] = await Promise.all([api("/api/objects/summary"),
    api("/api/objects?" + q), api("/api/cluster/history")]);
  table("stores-table", [
    ["Node", (s) => short(s.node_id) + (s.is_head_node ? " (head)" : ""), "mono"],
    ["Used", (s) => bytes(s.used)],
    ["Capacity", (s) => bytes(s.capacity)],
    ["Objects", (s) => s.num_objects],
    ["In memory", (s) => s.num_in_memory],
    ["Spilled", (s) => s.num_spilled],
    ["Spilled (all time)", (s) => bytes(s.spilled_bytes_total)],
    ["Restored (all time)", (s) => bytes(s.restored_bytes_total)],
  ], summary.stores, "No store answered.");
  const holder = $("store-charts");
  for (const [nid, series] of Object.entries(hist.nodes)) {
    if (!series.object_store) continue;
    const id = `chart-store-${nid.slice(0, 12)}`;
    chartBox(holder, id, "");
    storeChart(id, hist.t, series.object_store);
    $(id).querySelector("h3").prepend(`Node ${short(nid)}: `);
  }
  $("objects-summary").replaceChildren("Objects: ", el("b", {}, summary.total_objects), " \u00b7 ",
    el("b", {}, summary.total_size_mb.toFixed(1)), " MiB",
    summary.partial ? ` \u00b7 ${summary.partial} process(es) did not answer` : "");
  const sites = Object.entries(summary.by_call_site).map(([site, s]) => Object.assign({ site }, s));
  sites.sort((a, b) => b.total_size_mb - a.total_size_mb);
  table("callsites-table", [
    ["Call site", (s) => el("a", { href: "#objects", class: "mono", onclick: (ev) => {
      ev.preventDefault(); view.callSite = s.site; view.objectsPage = 1; refresh();
    } }, s.site)],
    ["Objects", (s) => s.total_objects],
    ["Size", (s) => bytes(s.total_size_mb * 2 ** 20)],
    ["Processes", (s) => s.total_num_workers],
    ["Nodes", (s) => s.total_num_nodes],
    ["References", (s) => Object.entries(s.ref_type_counts || {}).map(([k, n]) => `${k} ${n}`)
      .join(", ")],
  ], sites, "No objects.");
  $("objects-filter").replaceChildren(view.callSite ? el("span", {}, "made by ",
    el("code", {}, view.callSite), " ", el("button", { class: "small", onclick: () => {
      view.callSite = ""; view.objectsPage = 1; refresh();
    } }, "show all")) : "");
  table("objects-table", [
    ["Object", (o) => short(o.object_id), "mono"],
    ["Size", (o) => bytes(o.object_size)],
    ["Call site", (o) => o.call_site, "mono"],
    ["Reference", (o) => o.reference_type],
    ["Held by", (o) => `${o.type} ${o.pid ?? ""}`],
    ["Node", (o) => short(o.node_id), "mono"],
    ["Where", (o) => o.store_state],
    ["Pinned", (o) => o.pinned],
    ["Owner", (o) => (o.is_owner ? "yes" : "")],
  ], page.objects, "No references.");
  pager("objects-pager", page, (p) => { view.objectsPage = p; refresh(); });
}

Object.assign(PAGES, {
  logs: {
    load: loadLogs,
    leave: stopFollowing,
    init() {
      $("log-reload").addEventListener("click", () => view.log &&
        openLog(view.log.which, view.log.title));
      $("log-follow").addEventListener("click", () => (follow ? stopFollowing()
        : startFollowing()));
      $("log-suffix").addEventListener("change", () => view.log &&
        openLog(view.log.which, view.log.title));
    },
  },
  objects: { load: loadObjects },
});
