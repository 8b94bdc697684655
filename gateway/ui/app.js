// awe's web page: the public REST and WebSocket API of the gateway, with the caller's own key.
// Every value from the server is set as text (textContent), never parsed as HTML.
"use strict";

const TERMINAL = new Set(["succeeded", "failed", "cancelled", "rejected"]);
const RANK = { viewer: 0, operator: 1, admin: 2 };

const ui = {
  key: sessionStorage.getItem("awe.key") || "",
  me: null,
  ws: null,
  runs: [],
  selected: null, // the followed run: {id, view, started, lastSeq, tokens, missing}
  limit: 50, // runs listed; "show more" adds a page, up to the API's 1000
  pending: new Map(), // debounced refreshes by name
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function short(value, limit = 160) {
  if (value === null || value === undefined) return "";
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
}

// "2026-12-06T16:14:13.422226Z" as "2026-12-06 16:14:13" (UTC, as on the log; the full time is the tooltip).
function when(iso) {
  return iso ? iso.replace("T", " ").slice(0, 19) : "";
}

function notice(message) {
  const box = $("notice");
  box.textContent = message || "";
  box.hidden = !message;
}

// Run `fn` once, `ms` after the last request for `name`: bursts of events cost one refresh.
function soon(name, ms, fn) {
  clearTimeout(ui.pending.get(name));
  ui.pending.set(name, setTimeout(fn, ms));
}

async function api(method, path, body) {
  const headers = {};
  if (ui.key) headers.Authorization = "Bearer " + ui.key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    const error = new Error("the gateway did not answer; is it running?");
    error.status = 0;
    throw error;
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = new Error((data && data.error && data.error.message) || response.statusText);
    error.status = response.status;
    error.code = data && data.error && data.error.code;
    throw error;
  }
  return data;
}

// -- sign in ------------------------------------------------------------------------------------------

async function start() {
  try {
    ui.me = await api("GET", "/v1/me");
  } catch (error) {
    if (error.status === 401) {
      $("signin").hidden = false;
      $("app").hidden = true;
      if (ui.key) notice("that key was not accepted: " + error.message);
      return;
    }
    notice("the gateway did not answer: " + error.message);
    setTimeout(start, 2000);
    return;
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = ui.me.open;
  $("who").textContent = `tenant ${ui.me.tenant} · ${ui.me.role} · ${ui.me.name}` + (ui.me.open ? " (open gateway)" : "");
  const operator = RANK[ui.me.role] >= RANK.operator;
  for (const node of document.querySelectorAll(".operator")) node.hidden = !operator;
  notice("");
  await loadWorkflows();
  await loadRuns();
  connect();
  followLink();
}

// `#run=<id>` names the followed run: on load, and when only the address's hash changes.
function followLink() {
  const linked = new URLSearchParams(location.hash.slice(1)).get("run");
  if (linked && (!ui.selected || ui.selected.id !== linked)) select(linked);
}

window.addEventListener("hashchange", () => {
  if (ui.me) followLink();
});

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  ui.key = $("key").value.trim();
  sessionStorage.setItem("awe.key", ui.key);
  start();
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem("awe.key");
  location.reload();
});

// -- live: one WebSocket, every run of the tenant plus the followed run's tokens ------------------------

function send(message) {
  if (ui.ws && ui.ws.readyState === WebSocket.OPEN) ui.ws.send(JSON.stringify(message));
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = ui.key ? "?token=" + encodeURIComponent(ui.key) : "";
  const ws = new WebSocket(`${scheme}://${location.host}/v1/stream${query}`);
  ui.ws = ws;
  ws.onopen = () => {
    setLive(true);
    send({ op: "subscribe", all: true });
    if (ui.selected) follow(ui.selected);
  };
  ws.onmessage = (message) => onMessage(JSON.parse(message.data));
  ws.onclose = () => {
    setLive(false);
    if (ui.ws === ws) setTimeout(connect, 1000);
  };
}

function setLive(on) {
  $("live").textContent = on ? "live" : "offline";
  $("live").className = "badge " + (on ? "on" : "off");
}

function onMessage(message) {
  if (message.type === "ping") send({ op: "pong" });
  else if (message.type === "event") onEvent(message.event);
  else if (message.type === "token") onToken(message);
  else if (message.type === "error") notice(`${message.code}: ${message.message}`);
}

function onEvent(event) {
  soon("runs", 300, loadRuns);
  const run = ui.selected;
  // The run arrives twice, through "all" and through its own subscription: each seq is shown once.
  if (!run || event.run_id !== run.id || event.seq <= run.lastSeq) return;
  run.lastSeq = event.seq;
  // The run's start carries its workflow, version and definition (the node kinds), whatever the list shows.
  if (event.type === "RunStarted") run.started = { ...event.payload, time: event.time };
  $("events").tBodies[0].prepend(
    el(
      "tr",
      {},
      el("td", {}, event.seq),
      el("td", {}, event.type),
      el("td", { title: event.time }, when(event.time)),
      el("td", {}, short(event.payload))
    )
  );
  soon("run", 100, loadRun);
}

function onToken(token) {
  const run = ui.selected;
  if (!run || token.run_id !== run.id) return;
  run.tokens[token.node_id] = (run.tokens[token.node_id] || "") + token.text;
  soon("render", 50, renderRun);
}

// -- the run list ---------------------------------------------------------------------------------------

async function loadWorkflows() {
  const select = $("workflow");
  const { workflows } = await api("GET", "/v1/workflows");
  select.replaceChildren(...workflows.map((w) => el("option", { value: w.name }, `${w.name} (v${w.version})`)));
  await describeInputs();
}

// The chosen workflow's declared inputs, as a hint and as a JSON skeleton to fill in.
async function describeInputs() {
  const name = $("workflow").value;
  if (!name) return;
  let inputs = {};
  try {
    inputs = (await api("GET", `/v1/workflows/${encodeURIComponent(name)}`)).definition.inputs || {};
  } catch (error) {
    notice(error.message);
  }
  const blank = { string: "", number: 0, integer: 0, boolean: false, array: [], object: {}, any: null };
  const skeleton = {};
  const hints = [];
  for (const [input, spec] of Object.entries(inputs)) {
    const type = spec.type || "any";
    // A required input with no default is null: a start left as it is gets told what is missing.
    if ("default" in spec) skeleton[input] = spec.default;
    else if (spec.required) skeleton[input] = null;
    else skeleton[input] = blank[type] ?? null;
    hints.push(`${input} (${type}${spec.required ? ", required" : ""}${"default" in spec ? ", default " + JSON.stringify(spec.default) : ""})`);
  }
  $("inputs").value = JSON.stringify(skeleton, null, 1);
  $("inputs-hint").textContent = hints.length ? "inputs: " + hints.join("; ") : "this workflow takes no inputs";
}

$("workflow").addEventListener("change", describeInputs);

async function loadRuns() {
  try {
    const status = $("status-filter").value;
    ui.runs = (await api("GET", `/v1/runs?limit=${ui.limit}` + (status ? "&status=" + status : ""))).runs;
  } catch (error) {
    if (error.status === 503) soon("runs", 1000, loadRuns); // the gateway is still reading the log
    else notice(error.message);
    return;
  }
  const rows = ui.runs.map((run) =>
    el(
      "tr",
      { class: ui.selected && ui.selected.id === run.run_id ? "selected" : "", "data-run": run.run_id, onclick: () => select(run.run_id) },
      el("td", { class: "mono" }, run.run_id),
      el("td", {}, `${run.workflow ?? ""} v${run.version ?? ""}`),
      el("td", {}, el("span", { class: "badge " + run.status }, run.status)),
      el("td", { title: run.started_at ?? "" }, when(run.started_at))
    )
  );
  $("runs").tBodies[0].replaceChildren(...rows);
  $("more-runs").hidden = ui.runs.length < ui.limit || ui.limit >= 1000;
}

$("status-filter").addEventListener("change", loadRuns);

$("more-runs").addEventListener("click", () => {
  ui.limit = Math.min(ui.limit + 50, 1000);
  loadRuns();
});

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let inputs;
  try {
    inputs = JSON.parse($("inputs").value || "{}");
  } catch (error) {
    notice("the inputs are not JSON: " + error.message);
    return;
  }
  try {
    const { run_id } = await api("POST", "/v1/runs", { workflow: $("workflow").value, inputs });
    notice("");
    select(run_id);
  } catch (error) {
    notice(error.message);
  }
});

// -- the followed run -----------------------------------------------------------------------------------

function follow(run) {
  send({ op: "subscribe", run_id: run.id, from_seq: run.lastSeq + 1, tokens: true });
}

function select(runId) {
  if (ui.selected) send({ op: "unsubscribe", run_id: ui.selected.id });
  ui.selected = { id: runId, view: null, started: null, lastSeq: 0, tokens: {}, missing: false };
  notice("");
  $("events").tBodies[0].replaceChildren();
  $("no-run").hidden = true;
  $("run").hidden = false;
  for (const row of $("runs").tBodies[0].rows) row.classList.toggle("selected", row.dataset.run === runId);
  history.replaceState(null, "", "#run=" + encodeURIComponent(runId)); // a link to this run
  follow(ui.selected);
  loadRun();
}

async function loadRun() {
  const run = ui.selected;
  if (!run) return;
  try {
    const view = await api("GET", `/v1/runs/${encodeURIComponent(run.id)}`);
    if (ui.selected !== run) return;
    run.view = view;
    run.missing = false;
    // The stream can be ahead of the gateway's index of runs, which the view is read through: a view behind
    // the last event seen is read again, or a run whose last event came early would be shown without it.
    if (view.seq < run.lastSeq) soon("run", 200, loadRun);
  } catch (error) {
    if (error.status === 404) run.missing = true;
    else notice(error.message);
  }
  renderRun();
}

function renderRun() {
  const run = ui.selected;
  if (!run) return;
  $("run-id").textContent = run.id;
  if (run.missing) {
    $("run-status").textContent = "not found";
    $("run-status").className = "badge failed";
    $("run-workflow").textContent = `There is no run ${run.id} in tenant ${ui.me.tenant}, or it has not started yet.`;
    for (const id of ["run-usage", "outputs"]) $(id).textContent = "";
    $("nodes").tBodies[0].replaceChildren();
    $("cancel").hidden = true;
    $("run-details").hidden = true;
    return;
  }
  $("run-details").hidden = false;
  if (!run.view) return;
  const view = run.view;
  const started = run.started;
  $("run-status").textContent = view.status;
  $("run-status").className = "badge " + view.status;
  $("run-workflow").textContent = started ? `${started.workflow} v${started.version}, started ${when(started.time)} UTC` : "";
  $("run-inputs").textContent = started ? JSON.stringify(started.inputs, null, 2) : "";
  const usage = view.usage || {};
  $("run-usage").textContent = usage.calls
    ? `AI: ${usage.calls} ${usage.calls === 1 ? "call" : "calls"}, ${usage.input_tokens} tokens in, ${usage.output_tokens} out` +
      (usage.unpriced_calls === usage.calls ? ", cost unknown" : "") +
      (usage.unpriced_calls && usage.unpriced_calls < usage.calls ? `, cost unknown for ${usage.unpriced_calls} of them` : "") +
      (usage.cost_usd > 0 ? `, $${usage.cost_usd.toFixed(6)}${usage.unpriced_calls ? " for the rest" : ""}` : "")
    : "";
  $("cancel").hidden = TERMINAL.has(view.status) || RANK[ui.me.role] < RANK.operator;
  $("outputs").textContent = view.error
    ? `error ${view.error.code}: ${view.error.message}`
    : view.outputs === null
      ? "none yet"
      : JSON.stringify(view.outputs, null, 2);
  const nodes = Object.entries(view.nodes || {}).map(([id, node]) => nodeRow(run, id, node));
  $("nodes").tBodies[0].replaceChildren(...nodes);
}

function nodeRow(run, id, node) {
  const spec = run.started ? run.started.definition.nodes[id] : null;
  const kind = spec ? spec.kind : "";
  const shown = node.error ? `${node.error.code}: ${node.error.message}` : short(node.output);
  const streamed = run.tokens[id];
  const actions = el("td", {});
  const mayAct = RANK[ui.me.role] >= RANK.operator && !TERMINAL.has(run.view.status);
  if (kind === "approval" && node.status === "waiting" && mayAct) {
    actions.append(
      el("button", { class: "approve", onclick: (event) => signal(event, run.id, id, true) }, "approve"),
      el("button", { class: "reject", onclick: (event) => signal(event, run.id, id, false) }, "reject")
    );
  }
  return el(
    "tr",
    { "data-node": id },
    el("td", { class: "mono" }, id),
    el("td", {}, kind),
    el("td", {}, el("span", { class: "badge " + node.status }, node.status)),
    el("td", {}, node.attempts),
    el("td", {}, streamed && !node.output ? el("pre", { class: "tokens" }, streamed) : shown),
    actions
  );
}

// A button stays disabled once its request went through: the run's next events redraw the row.
async function signal(event, runId, node, approve) {
  const buttons = event.target.parentElement.querySelectorAll("button");
  for (const button of buttons) button.disabled = true;
  try {
    await api("POST", `/v1/runs/${encodeURIComponent(runId)}/signals/${encodeURIComponent(node)}`, { approve, by: ui.me.name });
    notice("");
  } catch (error) {
    for (const button of buttons) button.disabled = false;
    notice(error.message);
  }
}

$("cancel").addEventListener("click", async () => {
  const run = ui.selected;
  if (!run || !confirm(`Cancel run ${run.id}? Its tasks, timers and approvals are abandoned.`)) return;
  $("cancel").disabled = true;
  try {
    await api("POST", `/v1/runs/${encodeURIComponent(run.id)}/cancel`, { reason: `cancelled from the web page by ${ui.me.name}` });
    notice("");
  } catch (error) {
    notice(error.message);
  } finally {
    $("cancel").disabled = false;
  }
});

start();
