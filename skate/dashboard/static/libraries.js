// Skate dashboard: the library pages -- Tune, Train (sgd runs are Tune experiments), RLlib and
// Serve. Their tabs show once the library is in use (/api/libraries).
"use strict";

const LIBRARY_TABS = ["tune", "train", "rllib", "serve"];
const shownMetrics = 4; // last values shown per trial, beside status and config

// -- experiments (Tune, Train, and RLlib run through Tune) ------------------------------------
// The page with prefix `p` lists the experiments of `kind` (all kinds when null), and the one
// picked: its trials and one chart of the chosen metric, a line per trial.
async function loadExperiments(p, kind) {
  const list = await api("/api/tune" + (kind ? "?kind=" + kind : ""));
  const exps = list.experiments;
  const picked = exps.find((e) => e.name === view[p + "Exp"] && e.kind === view[p + "Kind"])
    || exps[0];
  table(p + "-experiments", [
    ["Experiment", (e) => el("a", { href: "#" + p, class: e === picked ? "current" : "",
      onclick: (ev) => {
        ev.preventDefault(); view[p + "Exp"] = e.name; view[p + "Kind"] = e.kind; refresh();
      } }, e.name)],
    ["Kind", (e) => e.kind],
    ["Status", (e) => badge(e.status)],
    ["Trials", (e) => `${e.num_trials}: ` + Object.entries(e.trial_counts)
      .map(([s, n]) => `${s} ${n}`).join(", ")],
    ["Metric", (e) => (e.metric ? `${e.metric} (${e.mode})` : "-")],
    ["Started", (e) => when(e.start_time * 1000)],
    ["Updated", (e) => when(e.updated * 1000)],
  ], exps, "No experiment was published yet.");
  const detail = $(p + "-detail");
  if (!picked) { detail.hidden = true; return; }
  detail.hidden = false;
  const exp = await api(`/api/tune/${picked.kind}/${encodeURIComponent(picked.name)}`);
  $(p + "-title").textContent = `${exp.name} \u00b7 ${exp.num_trials} trial(s)` +
    (exp.trials.length < exp.num_trials ? ` (the first ${exp.trials.length} shown)` : "");
  const select = $(p + "-metric");
  const choices = exp.metrics.join("|");
  if (select.dataset.choices !== choices) {
    const keep = select.value;
    select.replaceChildren(...exp.metrics.map((m) => el("option", { value: m }, m)));
    select.dataset.choices = choices;
    const preferred = [keep, exp.metric, "env_runners/episode_return_mean", "loss"]
      .find((m) => m && exp.metrics.includes(m));
    if (preferred) select.value = preferred;
  }
  const metric = select.value;
  const columns = exp.metrics.slice(0, shownMetrics);
  table(p + "-trials", [
    ["Trial", (t) => t.name, "mono"],
    ["Status", (t) => badge(t.status)],
    ["Config", (t) => Object.entries(t.config).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(", "), "mono"],
    ["Iter", (t) => t.last_result.training_iteration],
    ...columns.map((m) => [m, (t) => num(t.last_result[m])]),
    ["Error", (t) => t.error],
  ], exp.trials, "No trials yet.");
  drawCurves(p + "-chart", exp, metric);
}

// One line per trial (with a history) of `metric` against training_iteration.
function drawCurves(id, exp, metric) {
  const trials = exp.trials.filter((t) => t.history && t.history[metric]);
  const xs = [...new Set(trials.flatMap((t) => t.history.training_iteration))].sort((a, b) => a - b);
  const series = trials.map((t) => {
    const at = new Map(t.history.training_iteration.map((x, i) => [x, t.history[metric][i]]));
    return { label: t.name, values: xs.map((x) => (at.has(x) ? at.get(x) : null)) };
  });
  $(id).querySelector("h3").textContent = metric ? `${metric} per iteration` : "no metrics yet";
  lineChart(id, xs, series, { time: false, xLabel: "iteration", zero: false,
    empty: "no results yet" });
}

// The page's elements, made once inside #<p>-view: the experiments, then the one picked.
function experimentsView(p) {
  const select = el("select", { id: p + "-metric", onchange: () => refresh() });
  $(p + "-view").replaceChildren(el("table", { id: p + "-experiments" }),
    el("div", { id: p + "-detail", hidden: "" }, el("h2", { id: p + "-title" }),
      el("label", {}, "Metric ", select),
      el("div", { class: "charts" }, el("div", { class: "chart wide", id: p + "-chart" },
        el("h3"))),
      el("table", { id: p + "-trials" })));
}

function experimentsPage(p, kind) {
  return { load: () => loadExperiments(p, kind), init: () => experimentsView(p) };
}

// -- rllib ----------------------------------------------------------------------------------
async function loadRllib() {
  const r = await api("/api/rllib");
  const s = r.series || { t: [], algorithms: [] };
  const by = (key) => s.algorithms.map((a) => ({ label: a.algorithm, values: a[key] }));
  lineChart("chart-rllib-speed", s.t, by("env_steps_per_s"), { fmt: (v) => num(v, 3),
    empty: "no algorithm reported yet" });
  lineChart("chart-rllib-return", s.t, by("episode_return_mean"), { zero: false,
    empty: "no algorithm reported yet" });
  await loadExperiments("rllib", "rllib");
}

// -- serve ----------------------------------------------------------------------------------
async function loadServe() {
  const r = await api("/api/serve");
  table("serve-apps", [
    ["Application", (a) => a.name],
    ["Status", (a) => badge(a.status)],
    ["Route", (a) => a.route_prefix, "mono"],
    ["Deployments", (a) => a.deployments.length],
    ["Message", (a) => a.message],
  ], r.applications, "No applications.");
  const rows = r.applications.flatMap((a) => a.deployments.map((d) => Object.assign(
    { app: a.name }, d)));
  table("serve-deployments", [
    ["Application", (d) => d.app],
    ["Deployment", (d) => d.name],
    ["Status", (d) => badge(d.status)],
    ["Replicas", (d) => Object.entries(d.replica_states).map(([s, n]) => `${s} ${n}`)
      .join(", ") || "none"],
    ["Target", (d) => d.target_replicas],
    ["Requests", (d) => d.requests],
    ["Errors", (d) => d.errors],
    ["Message", (d) => d.message],
  ], rows, "No deployments.");
  $("serve-proxy").textContent = r.proxy ? `HTTP proxy at http://${r.proxy.host}:${r.proxy.port}`
    : "";
  const s = r.series || { t: [], deployments: [] };
  const by = (key) => s.deployments.map((d) => ({ label: `${d.application}/${d.deployment}`,
    values: d[key] }));
  const ms = (v) => num(v, 3) + " ms";
  lineChart("chart-serve-qps", s.t, by("qps"), { fmt: (v) => num(v, 3),
    empty: "no requests sampled yet" });
  lineChart("chart-serve-p50", s.t, by("p50_ms"), { fmt: ms, empty: "no requests sampled yet" });
  lineChart("chart-serve-p99", s.t, by("p99_ms"), { fmt: ms, empty: "no requests sampled yet" });
}

// Show the library tabs in use; a tab open already stays.
async function showLibraryTabs() {
  const inUse = await api("/api/libraries");
  for (const name of LIBRARY_TABS) {
    const button = document.querySelector(`#tabs button[data-tab="${name}"]`);
    button.hidden = !inUse[name] && view.tab !== name;
  }
}

Object.assign(PAGES, {
  tune: experimentsPage("tune", null),
  train: experimentsPage("train", "train"),
  rllib: { load: loadRllib, init: experimentsPage("rllib", "rllib").init },
  serve: { load: loadServe },
});
