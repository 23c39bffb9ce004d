// Skate dashboard: the wiring -- tabs, the periodic refresh, the token field. The pages are
// in cluster.js, logs.js and libraries.js (each registers itself in PAGES); helpers in
// common.js.
"use strict";

const REFRESH_MS = 2000;
let inFlight = false;
let ticks = 0;

async function refresh() {
  if (inFlight) return;
  inFlight = true;
  try {
    await PAGES[view.tab].load();
  } catch (e) {
    showError(e.message);
  } finally {
    inFlight = false;
  }
}

function selectTab(name) {
  if (!PAGES[name]) name = "overview";
  if (view.tab !== name && PAGES[view.tab].leave) PAGES[view.tab].leave();
  view.tab = name;
  for (const b of document.querySelectorAll("#tabs button")) {
    b.classList.toggle("active", b.dataset.tab === name);
    if (b.dataset.tab === name) b.hidden = false;
  }
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== "tab-" + name;
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
  refresh();
}

function showTokenState() {
  $("token-state").textContent = token() ? "token set for this tab" : "no token: read only";
}

function init() {
  for (const page of Object.values(PAGES)) if (page.init) page.init();
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
    showLibraryTabs().catch(() => {});
    refresh();
  });
  $("error-close").addEventListener("click", clearError);
  showTokenState();
  api("/api/version").then((v) => {
    if (v.read_token && !token()) showError("This dashboard needs the cluster token to read: " +
      "paste it (the file <session_dir>/token on the head) into the token field.");
  }).catch(() => {});
  selectTab(location.hash.slice(1) || "overview");
  showLibraryTabs().catch(() => {});
  setInterval(() => {
    refresh();
    if (++ticks % 3 === 0) showLibraryTabs().catch(() => {});
  }, REFRESH_MS);
}

init();
