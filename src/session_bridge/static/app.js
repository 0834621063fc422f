// The sessions page: a list of sessions (search, filters, sort, keyset paging), one
// session's rollup and span trees with a waterfall, a span's attributes, events, input
// and output; users and an overview with charts (uPlot, vendored). Plain DOM over the
// bridge's own APIs. Every value that comes from spans is inserted as text
// (textContent, never markup); the page's Content-Security-Policy forbids inline script.
"use strict";

const $ = (id) => document.getElementById(id);
const LOCALE = "en-US";
const REFRESH_MS = 5000;
const FOLD_CHARS = 400; // longer values start folded
const FOLD_LINES = 8;

// ---------------------------------------------------------------------------------------
// Formatting for people

const intFormat = new Intl.NumberFormat(LOCALE);
const smallCostFormat = new Intl.NumberFormat(LOCALE, { maximumSignificantDigits: 3 });
const costFormat = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2, maximumFractionDigits: 2 });

const missing = (v) => v === null || v === undefined;
function fmtInt(n) { return missing(n) ? "–" : typeof n === "number" ? intFormat.format(n) : String(n); }
function fmtCost(usd) {
  if (missing(usd)) return "–";
  if (usd === 0) return "$0";
  return "$" + (Math.abs(usd) < 1 ? smallCostFormat : costFormat).format(usd);
}
function fmtMs(ms) {
  if (missing(ms)) return "–";
  if (ms < 10 && !Number.isInteger(ms)) return ms.toFixed(1) + " ms";
  if (ms < 1000) return intFormat.format(Math.round(ms)) + " ms";
  if (ms < 60000) return String(Number((ms / 1000).toFixed(2))) + " s";
  return String(Number((ms / 60000).toFixed(1))) + " min";
}
// times are shown in UTC, as the filters take them, so that a shared link reads the same
const fmtTime = (iso) => (missing(iso) ? "–" : String(iso).slice(0, 19).replace("T", " "));

// ---------------------------------------------------------------------------------------
// DOM helpers: text only

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (!missing(text)) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}
function append(parent, ...children) {
  for (const child of children) if (child !== null && child !== undefined) parent.append(child);
  return parent;
}
function pill(text, kind) { return el("span", text, "pill" + (kind ? " " + kind : "")); }

function copyButton(value, what) {
  const button = el("button", "copy", "copy");
  button.type = "button";
  button.title = `Copy ${what}`;
  button.setAttribute("aria-label", `Copy ${what} ${value}`);
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    let done = false;
    try { await navigator.clipboard.writeText(value); done = true; } catch { done = copyByHand(value); }
    button.textContent = done ? "copied" : "copy failed";
    setTimeout(() => { button.textContent = "copy"; }, 1500);
  });
  return button;
}
function copyByHand(value) {
  const area = el("textarea", value);
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  return ok;
}
function idWithCopy(value, what, className = "id") {
  const span = el("span", undefined, "with-copy");
  span.append(el("code", value, className), copyButton(value, what));
  return span;
}

// A value from a span: text as it is, anything else as indented JSON; long ones fold.
function valueNode(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  const lines = text.split("\n").length;
  if (text.length <= FOLD_CHARS && lines <= FOLD_LINES) return el(lines > 1 || typeof value !== "string" ? "pre" : "span", text, "value");
  const details = el("details", undefined, "fold");
  const preview = text.slice(0, 120).replace(/\s+/g, " ");
  details.append(el("summary", `${preview}… (${intFormat.format(text.length)} characters)`), el("pre", text, "value"));
  return details;
}

// ---------------------------------------------------------------------------------------
// State in the URL: a link reproduces the view

const FILTERS = ["q", "user", "env", "service", "model", "provider", "state", "errors", "from", "to",
  "cmin", "cmax", "imin", "imax", "omin", "omax"];
let state = readUrl();
let trail = []; // the `after` anchors of the pages before this one (Previous)

function readUrl(search = location.search) {
  const p = new URLSearchParams(search);
  const filters = {};
  for (const name of FILTERS) if (p.get(name)) filters[name] = p.get(name);
  const size = Number(p.get("size"));
  return {
    view: p.get("session") ? "session" : (["users", "overview"].includes(p.get("view")) ? p.get("view") : "sessions"),
    project: p.get("project"),
    session: p.get("session"),
    span: p.get("span"),
    sort: p.get("sort") || "created_at",
    asc: p.get("asc") === "1",
    after: p.get("after"),
    at: Math.max(Number(p.get("at")) || 0, 0),
    size: Number.isInteger(size) && size >= 1 && size <= 1000 ? size : 50,
    filters,
    user: p.get("u"),
    from: p.get("ufrom"), to: p.get("uto"),
    ofrom: p.get("ofrom"), oto: p.get("oto"),
  };
}

function urlOf(s) {
  const p = new URLSearchParams();
  if (s.project) p.set("project", s.project);
  if (s.view === "users" || s.view === "overview") p.set("view", s.view);
  for (const name of FILTERS) if (s.filters[name]) p.set(name, s.filters[name]);
  if (s.sort !== "created_at") p.set("sort", s.sort);
  if (s.asc) p.set("asc", "1");
  if (s.size !== 50) p.set("size", String(s.size));
  if (s.after) { p.set("after", s.after); p.set("at", String(s.at)); }
  if (s.view === "users") {
    if (s.user) p.set("u", s.user);
    if (s.from) p.set("ufrom", s.from);
    if (s.to) p.set("uto", s.to);
  }
  if (s.view === "overview") {
    if (s.ofrom) p.set("ofrom", s.ofrom);
    if (s.oto) p.set("oto", s.oto);
  }
  if (s.view === "session" && s.session) {
    p.set("session", s.session);
    if (s.span) p.set("span", s.span);
  }
  const query = p.toString();
  return location.pathname + (query ? "?" + query : "");
}

function go(changes, replace = false) {
  state = { ...state, ...changes };
  const url = urlOf(state);
  if (url !== location.pathname + location.search) history[replace ? "replaceState" : "pushState"](null, "", url);
  return render();
}
window.addEventListener("popstate", () => { state = readUrl(); trail = []; render(); });

// in-page links keep their real href (open in a new tab, copy the link) but navigate here
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-go]");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  state = readUrl(new URL(link.href).search);
  history.pushState(null, "", urlOf(state));
  trail = [];
  render();
});
function link(text, changes, className) {
  const a = el("a", text, className);
  a.href = urlOf({ ...state, ...changes });
  a.dataset.go = "";
  return a;
}
const sessionLink = (id, className) => link(id, { view: "session", session: id, span: null }, className);
const userLink = (id) => link(id, { view: "users", user: id });

// ---------------------------------------------------------------------------------------
// The APIs, with errors in plain words

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

const apiKey = () => sessionStorage.getItem("bridge.apikey") || "";
const projectPath = () => encodeURIComponent(state.project || "default");

async function api(path, { what, ...options } = {}) {
  const headers = { Accept: "application/json" };
  if (options.body) headers["Content-Type"] = "application/json";
  const key = apiKey();
  if (key) headers.Authorization = "Bearer " + key;
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch {
    throw new ApiError(0, "Cannot reach the bridge. Is it running?");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, plainWords(response.status, body, what));
  return body;
}

function plainWords(status, body, what) {
  if (status === 401) return "This bridge needs an API key, or the key given is not one it knows.";
  if (status === 404) return `${what || "That"} was not found, or the API key cannot read it.`;
  if (status === 400) {
    const message = body && typeof body.message === "string" ? body.message : "a parameter is invalid";
    return `The bridge refused the request: ${message}.`;
  }
  if (status === 429 || status === 503) return "The bridge is busy or not ready; it will be asked again.";
  return `The bridge could not answer (HTTP ${status}).`;
}

function showProblem(err) {
  if (err instanceof ApiError && err.status === 401) {
    $("key-needed").hidden = false;
    $("key-needed-text").textContent = apiKey()
      ? "The key entered is not accepted. Enter the secret key of a project you may read, then press Enter."
      : "Enter the secret key of the project you want to read in the API key field above, then press Enter.";
    $("problem").hidden = true;
    $("apikey").focus();
    return;
  }
  $("problem").textContent = err instanceof ApiError ? err.message : "Something went wrong: " + err.message;
  $("problem").hidden = false;
}
function clearProblem() { $("problem").hidden = true; $("key-needed").hidden = true; }
function setStatus(text) { $("status").textContent = text; }

// ---------------------------------------------------------------------------------------
// Keys and projects

let projects = null; // what the key may read: { projects: [...], open }

async function loadProjects() {
  projects = await api("/api/v1/projects", { what: "The project list" });
  const select = $("project");
  select.replaceChildren(...projects.projects.map((p) => { const o = el("option", p); o.value = p; return o; }));
  if (!state.project || !projects.projects.includes(state.project)) state.project = projects.projects[0];
  select.value = state.project;
  $("project-note").textContent = projects.open ? "open bridge: no key needed" : "the key reads this project";
  $("apikey").placeholder = projects.open ? "not needed (open bridge)" : "key in use";
}

$("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("apikey").value.trim();
  if (key) sessionStorage.setItem("bridge.apikey", key); else sessionStorage.removeItem("bridge.apikey");
  $("apikey").value = "";
  start();
});
$("project").addEventListener("change", () => { trail = []; facets = null; go({ project: $("project").value, after: null, at: 0 }); });

// ---------------------------------------------------------------------------------------
// Sessions list

const COLUMNS = [
  { id: "id", label: "Session", cell: (r) => sessionLink(r.id, "id") },
  { id: "user_id", label: "User", cell: (r) => (r.user_metadata.user_id ? userLink(r.user_metadata.user_id) : el("span", "–")) },
  { id: "environment", label: "Environment", cell: (r) => el("span", r.user_metadata.environment || "–") },
  { id: "created_at", label: "Started (UTC)", cell: (r) => el("span", fmtTime(r.created_at)) },
  { id: "duration_ns", label: "Duration", num: true, cell: (r) => el("span", fmtMs(r.metrics.duration_ns / 1e6)) },
  { id: "trace_count", label: "Turns", num: true, cell: (r) => el("span", fmtInt(r.num_traces)) },
  { id: "total_input_tokens", label: "Tokens in", num: true, cell: (r) => el("span", fmtInt(r.metrics.num_input_tokens)) },
  { id: "total_output_tokens", label: "Tokens out", num: true, cell: (r) => el("span", fmtInt(r.metrics.num_output_tokens)) },
  { id: "estimated_cost_usd", label: "Cost", num: true, cell: (r) => el("span", fmtCost(r.metrics.cost)) },
  { id: "error_count", label: "Errors", num: true, cell: (r) => (r.status_code === 500 ? pill("errors", "bad") : el("span", "–")) },
  { id: "state", label: "State", cell: (r) => pill(r.is_complete ? "ended" : "active", r.is_complete ? "" : "active") },
];

function buildHeader() {
  const row = $("sessions").tHead.rows[0];
  row.replaceChildren();
  for (const column of COLUMNS) {
    const th = el("th", undefined, column.num ? "num" : "");
    const sorted = state.sort === column.id;
    th.setAttribute("aria-sort", sorted ? (state.asc ? "ascending" : "descending") : "none");
    const button = el("button", column.label + (sorted ? (state.asc ? " ▲" : " ▼") : ""), "sort");
    button.type = "button";
    button.dataset.sort = column.id;
    button.title = `Sort by ${column.label.toLowerCase()}`;
    button.addEventListener("click", () => {
      const asc = state.sort === column.id ? !state.asc : column.id === "id" || column.id === "user_id" || column.id === "environment";
      trail = [];
      go({ sort: column.id, asc, after: null, at: 0 });
    });
    th.append(button);
    row.append(th);
  }
}

function searchFilters(f) {
  const filters = [];
  const text = (column, value, operator = "eq") => filters.push({ type: "text", column_id: column, operator, value, case_sensitive: false });
  const member = (column, value) => filters.push({ type: "collection", column_id: column, operator: "contains", value, case_sensitive: false });
  const number = (column, operator, value) => filters.push({ type: "number", column_id: column, operator, value: Number(value) });
  if (f.user) text("user_id", f.user);
  if (f.env) text("environment", f.env);
  if (f.service) member("services", f.service);
  if (f.model) member("models_used", f.model);
  if (f.provider) member("providers_used", f.provider);
  if (f.state) filters.push({ type: "text", column_id: "state", operator: "eq", value: f.state });
  if (f.errors) filters.push({ type: "boolean", column_id: "has_errors", operator: "eq", value: f.errors === "yes" });
  if (f.from) filters.push({ type: "date", column_id: "created_at", operator: "gte", value: utc(f.from) });
  if (f.to) filters.push({ type: "date", column_id: "created_at", operator: "lte", value: utc(f.to) });
  if (f.cmin) number("estimated_cost_usd", "gte", f.cmin);
  if (f.cmax) number("estimated_cost_usd", "lte", f.cmax);
  if (f.imin) number("total_input_tokens", "gte", f.imin);
  if (f.imax) number("total_input_tokens", "lte", f.imax);
  if (f.omin) number("total_output_tokens", "gte", f.omin);
  if (f.omax) number("total_output_tokens", "lte", f.omax);
  const request = { filters };
  if (f.q) {
    request.filter_tree = { or: [
      { filter: { type: "text", column_id: "id", operator: "contains", value: f.q, case_sensitive: false } },
      { filter: { type: "text", column_id: "user_id", operator: "contains", value: f.q, case_sensitive: false } },
    ] };
  }
  return request;
}

// a datetime-local value (no seconds when they are zero) as an ISO time in UTC
const utc = (local) => (/T\d\d:\d\d$/.test(local) ? local + ":00" : local) + "Z";

function search(body) {
  return api(`/v2/projects/${projectPath()}/sessions/search`, { method: "POST", body: JSON.stringify(body), what: `Project “${state.project}”` });
}

let lastPage = null;

async function loadSessions() {
  const body = {
    ...searchFilters(state.filters),
    limit: state.size,
    include_counts: true,
    sort: { column_id: state.sort, ascending: state.asc },
  };
  if (state.after) body.previous_last_row_id = state.after;
  const asked = renderCount;
  const page = await search(body);
  if (asked !== renderCount) return; // a later render asked since: its answer wins
  const signature = JSON.stringify([body, page]);
  if (lastPage && lastPage.signature === signature) return; // a refresh that found nothing new
  lastPage = { ...page, signature };
  const tbody = $("sessions").tBodies[0];
  const focused = document.activeElement && document.activeElement.closest("tr") ? document.activeElement.closest("tr").dataset.id : null;
  tbody.replaceChildren();
  for (const record of page.records) {
    const tr = el("tr");
    tr.dataset.id = record.id;
    for (const column of COLUMNS) {
      const td = el("td", undefined, column.num ? "num" : "");
      td.append(column.cell(record));
      if (!column.num) td.title = td.textContent; // long ids are cut short: the whole on hover
      tr.append(td);
    }
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      go({ view: "session", session: record.id, span: null });
    });
    tbody.append(tr);
  }
  if (focused) {
    const again = [...tbody.rows].find((r) => r.dataset.id === focused);
    if (again) again.querySelector("a").focus();
  }
  $("empty").hidden = page.records.length > 0;
  const first = page.records.length ? state.at + 1 : 0;
  $("page-info").textContent = `${fmtInt(first)}–${fmtInt(state.at + page.records.length)} of ${fmtInt(page.num_records)}`;
  $("next-page").disabled = page.next_starting_token === null || page.next_starting_token === undefined;
  $("prev-page").disabled = !state.after;
  $("first-page").disabled = !state.after;
  setStatus(`${fmtInt(page.num_records)} session(s) · updated ${new Date().toLocaleTimeString(LOCALE)}`);
}

function fillFilterForm() {
  for (const name of FILTERS) {
    const input = $("f-" + name);
    if (input) input.value = state.filters[name] || "";
  }
  const sizes = $("page-size");
  if (![...sizes.options].some((o) => o.value === String(state.size))) sizes.append(el("option", String(state.size)));
  sizes.value = String(state.size);
}

$("filters").addEventListener("submit", (event) => {
  event.preventDefault();
  const filters = {};
  for (const name of FILTERS) {
    const value = $("f-" + name).value.trim();
    if (value) filters[name] = value;
  }
  trail = [];
  go({ filters, after: null, at: 0 });
});
for (const id of ["f-state", "f-errors"]) $(id).addEventListener("change", () => $("filters").requestSubmit());
$("clear").addEventListener("click", () => { trail = []; go({ filters: {}, after: null, at: 0 }); });
$("next-page").addEventListener("click", () => {
  if (!lastPage || !lastPage.last_row_id) return;
  trail.push(state.after ? { after: state.after, at: state.at } : null);
  go({ after: lastPage.last_row_id, at: state.at + lastPage.records.length });
});
$("prev-page").addEventListener("click", () => {
  const back = trail.pop();
  go(back ? { after: back.after, at: back.at } : { after: null, at: 0 });
});
$("first-page").addEventListener("click", () => { trail = []; go({ after: null, at: 0 }); });
$("page-size").addEventListener("change", () => { trail = []; go({ size: Number($("page-size").value), after: null, at: 0 }); });

// values for the filter fields' suggestions: the project's users, environments and models
let facets = null;
async function loadFacets() {
  if (facets) return;
  facets = await api(`/api/projects/${projectPath()}/usage`, { what: `Project “${state.project}”` });
  const fill = (id, values) => $(id).replaceChildren(...values.map((v) => { const o = el("option"); o.value = v; return o; }));
  fill("users-list", facets.byUser.map((u) => u.userId));
  fill("env-list", facets.byEnvironment.map((e) => e.environment).filter((e) => e !== "(none)"));
  fill("model-list", facets.byModel.map((m) => m.model).filter((m) => m !== "(unknown)"));
}

// ---------------------------------------------------------------------------------------
// One session

let shown = null; // the session on screen: its /spans answer and a signature for refreshes

async function loadSession(quiet = false) {
  const id = state.session;
  const asked = renderCount;
  const data = await api(`/api/projects/${projectPath()}/sessions/${encodeURIComponent(id)}/spans`, { what: `Session “${id}”` });
  if (asked !== renderCount) return;
  const signature = `${data.session.end_time}|${data.session.span_count}|${data.session.state}`;
  if (quiet && shown && shown.data.sessionId === id && shown.signature === signature) return;
  shown = { data, signature, byId: new Map() };
  for (const trace of data.traces) for (const span of trace.spans) shown.byId.set(span.spanId, { span, trace });
  renderSession(data);
  if (state.span && shown.byId.has(state.span)) showSpan(state.span, false);
  setStatus(`session ${id} · updated ${new Date().toLocaleTimeString(LOCALE)}`);
}

function fact(dl, label, value) {
  const node = value instanceof Node ? value : el("span", missing(value) || value === "" ? "–" : value);
  dl.append(el("dt", label), append(el("dd"), node));
}

function costSourceText(reported, estimated) {
  if (reported && estimated) return `${reported} reported by the sender, ${estimated} estimated by the bridge`;
  if (reported) return "reported by the sender";
  if (estimated) return "estimated by the bridge";
  return "no priced calls";
}

function renderSession(data) {
  const s = data.session;
  const usage = s.genai_usage;
  $("back").href = urlOf({ ...state, view: "sessions", session: null, span: null });
  $("back").dataset.go = "";
  $("s-title").replaceChildren(idWithCopy(data.sessionId, "session id", "id title"));
  $("s-state").replaceChildren(pill(s.state, s.state === "active" ? "active" : ""), s.error_count ? pill(`${s.error_count} error(s)`, "bad") : "");
  const dl = $("rollup");
  dl.replaceChildren();
  fact(dl, "User", s["user.id"] ? userLink(s["user.id"]) : null);
  fact(dl, "Environment", s.environment);
  fact(dl, "Services", s.services.join(", "));
  const client = s.client;
  fact(dl, "Client", [client.ip, [client.browser, client.browser_version].filter(Boolean).join(" "), client.os, client.device_type].filter(Boolean).join(" · "));
  const geo = s.geo;
  fact(dl, "Location", [geo.city, geo.region, geo.country_name || geo.country_code, geo.timezone].filter(Boolean).join(", "));
  fact(dl, "Started (UTC)", fmtTime(s.start_time));
  fact(dl, "Ended (UTC)", fmtTime(s.end_time));
  fact(dl, "Duration", fmtMs(s.duration_ms));
  fact(dl, "Turns", fmtInt(s.trace_count));
  fact(dl, "Spans", fmtInt(s.span_count));
  fact(dl, "LLM calls", fmtInt(usage.request_count));
  fact(dl, "Tokens in / out", `${fmtInt(usage.total_input_tokens)} / ${fmtInt(usage.total_output_tokens)}`);
  fact(dl, "Cache read / reasoning", `${fmtInt(usage.cache_read_input_tokens)} / ${fmtInt(usage.reasoning_output_tokens)}`);
  const cost = el("span");
  cost.append(el("b", fmtCost(usage.estimated_cost_usd), "cost"), el("span", " " + costSourceText(data.reportedCostCalls, data.estimatedCostCalls), "muted cost-source"));
  fact(dl, "Cost", cost);
  fact(dl, "Unpriced calls", fmtInt(usage.unpriced_request_count));
  renderByModel(data);
  renderWaterfall(data);
  $("span-detail").replaceChildren(el("p", "Select a span to see its attributes, events, input and output.", "muted"));
  if (data.truncated) $("waterfall").prepend(el("p", "This session has more spans than the page shows; the latest are left out.", "banner"));
}

function renderByModel(data) {
  const rows = new Map();
  for (const trace of data.traces) for (const span of trace.spans) {
    if (!span.llm) continue;
    const model = span.llm.model || "(unknown model)";
    const row = rows.get(model) || { calls: 0, input: 0, output: 0, cost: 0, priced: 0, sources: new Set() };
    row.calls += 1; row.input += span.llm.inputTokens; row.output += span.llm.outputTokens;
    if (span.llm.costUsd !== null) { row.cost += span.llm.costUsd; row.priced += 1; }
    row.sources.add(span.llm.costSource || "unpriced");
    rows.set(model, row);
  }
  const tbody = $("by-model").tBodies[0];
  tbody.replaceChildren();
  for (const [model, r] of rows) {
    const tr = el("tr");
    tr.append(el("td", model), el("td", fmtInt(r.calls), "num"), el("td", fmtInt(r.input), "num"), el("td", fmtInt(r.output), "num"),
      el("td", r.priced ? fmtCost(r.cost) : "–", "num"), el("td", [...r.sources].sort().join(", ")));
    tbody.append(tr);
  }
  $("by-model").hidden = rows.size === 0;
}

const TYPE_LABELS = { llm_call: "LLM", tool_call: "tool", tool_result: "tool", decision: "decision", handoff: "handoff",
  guardrail_eval: "guardrail", state_change: "state", error: "error", response: "agent", span: "span" };

function spanSummary(span) {
  if (span.llm) {
    const tokens = `${fmtInt(span.llm.inputTokens)} → ${fmtInt(span.llm.outputTokens)} tokens`;
    return [span.llm.model, tokens, span.llm.costUsd !== null ? fmtCost(span.llm.costUsd) : null].filter(Boolean).join(" · ");
  }
  if (span.tool) {
    const args = missing(span.tool.arguments) ? "" : short(span.tool.arguments);
    const result = missing(span.tool.result) ? "" : " → " + short(span.tool.result);
    return `${span.tool.toolName}(${args})${result}`;
  }
  if (span.error) return `${span.error.errorType || "error"}: ${span.error.message}`;
  const scores = evaluations(span);
  if (scores.length) return scores.map((e) => `${e.name}: ${missing(e.value) ? e.label || "?" : e.value}`).join(" · ");
  return span.agentName ? `agent ${span.agentName}` : "";
}
function short(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 79) + "…" : text;
}

function treeOrder(spans) {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    if (span.parentSpanId && ids.has(span.parentSpanId) && span.parentSpanId !== span.spanId) {
      if (!children.has(span.parentSpanId)) children.set(span.parentSpanId, []);
      children.get(span.parentSpanId).push(span);
    } else {
      roots.push(span);
    }
  }
  const out = [];
  const seen = new Set();
  const walk = (span, ancestors) => {
    if (seen.has(span.spanId)) return;
    seen.add(span.spanId);
    const below = (children.get(span.spanId) || []).filter((c) => !seen.has(c.spanId));
    out.push({ span, depth: ancestors.length, ancestors, parent: below.length > 0 });
    for (const child of below) walk(child, [...ancestors, span.spanId]);
  };
  for (const root of roots) walk(root, []);
  for (const span of spans) if (!seen.has(span.spanId)) walk(span, []); // a cycle: shown flat
  return out;
}

function renderWaterfall(data) {
  const box = $("waterfall");
  folded.clear();
  box.replaceChildren();
  let total = data.session.duration_ms;
  for (const trace of data.traces) for (const span of trace.spans) total = Math.max(total, span.offsetMs + span.durationMs);
  total = Math.max(total, 1);
  const scale = el("div", undefined, "scale");
  scale.append(el("span", "0"), el("span", fmtMs(total / 2)), el("span", fmtMs(total)));
  box.append(scale);
  for (const trace of data.traces) {
    const section = el("section", undefined, "trace");
    section.dataset.traceId = trace.traceId;
    const head = el("h3");
    head.append(el("span", `Turn ${trace.turnIndex + 1}`, "turn"), el("span", trace.name, "trace-name"),
      el("span", `+${fmtMs(trace.offsetMs)} · ${fmtMs(trace.durationMs)}`, "muted"), idWithCopy(trace.traceId, "trace id"));
    section.append(head);
    const list = el("ol", undefined, "tree");
    for (const { span, depth, ancestors, parent } of treeOrder(trace.spans)) {
      const li = el("li");
      li.dataset.ancestors = ancestors.join(" ");
      const toggle = el("button", parent ? "▾" : "", "fold-toggle");
      toggle.type = "button";
      if (parent) {
        toggle.setAttribute("aria-expanded", "true");
        toggle.setAttribute("aria-label", `Fold the spans under ${span.name}`);
        toggle.addEventListener("click", () => fold(span.spanId));
      } else {
        toggle.disabled = true;
        toggle.setAttribute("aria-hidden", "true");
        toggle.tabIndex = -1;
      }
      li.append(toggle);
      const row = el("button", undefined, "span-row" + (span.status === "error" ? " failed" : ""));
      row.type = "button";
      row.dataset.spanId = span.spanId;
      row.dataset.depth = String(depth);
      const name = el("span", undefined, "span-name");
      name.style.paddingLeft = `${depth * 14}px`;
      name.append(el("span", TYPE_LABELS[span.type] || span.type, "type t-" + span.type), el("span", span.name, "name"));
      const summary = el("span", spanSummary(span), "summary");
      const track = el("span", undefined, "track");
      const bar = el("span", undefined, "bar t-" + span.type);
      bar.style.left = `${(100 * span.offsetMs) / total}%`;
      bar.style.width = `max(2px, ${(100 * span.durationMs) / total}%)`;
      track.append(bar);
      row.append(name, summary, track, el("span", fmtMs(span.durationMs), "dur"));
      row.title = `${span.name} · starts +${fmtMs(span.offsetMs)} · ${fmtMs(span.durationMs)}`;
      row.addEventListener("click", () => showSpan(span.spanId, true));
      li.append(row);
      list.append(li);
    }
    section.append(list);
    box.append(section);
  }
}

// a span's subtree folds and unfolds (its toggle, or ← and → on its row)
const folded = new Set();
function fold(spanId, open) {
  const shut = open === undefined ? !folded.has(spanId) : !open;
  if (shut) folded.add(spanId); else folded.delete(spanId);
  for (const li of $("waterfall").querySelectorAll("li[data-ancestors]")) {
    li.hidden = li.dataset.ancestors.split(" ").some((a) => folded.has(a));
    const toggle = li.querySelector(".fold-toggle[aria-expanded]");
    const row = li.querySelector(".span-row");
    if (toggle) {
      const isOpen = !folded.has(row.dataset.spanId);
      toggle.textContent = isOpen ? "▾" : "▸";
      toggle.setAttribute("aria-expanded", String(isOpen));
    }
  }
}

// arrow keys move between the span rows shown, and fold (←) or unfold (→) a row's subtree
$("waterfall").addEventListener("keydown", (event) => {
  if (["ArrowLeft", "ArrowRight"].includes(event.key) && document.activeElement.matches(".span-row")) {
    event.preventDefault();
    fold(document.activeElement.dataset.spanId, event.key === "ArrowRight");
    return;
  }
  if (!["ArrowDown", "ArrowUp"].includes(event.key)) return;
  const rows = [...$("waterfall").querySelectorAll(".span-row")].filter((r) => !r.closest("li").hidden);
  const index = rows.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  const next = rows[index + (event.key === "ArrowDown" ? 1 : -1)];
  if (next) next.focus();
});

function showSpan(spanId, userAction) {
  const found = shown && shown.byId.get(spanId);
  if (!found) return;
  for (const row of $("waterfall").querySelectorAll(".span-row")) row.classList.toggle("selected", row.dataset.spanId === spanId);
  if (userAction) {
    state.span = spanId;
    history.replaceState(null, "", urlOf(state));
  }
  renderSpan(found.span, found.trace);
}

function section(title, ...children) {
  const node = el("section", undefined, "part");
  node.append(el("h4", title), ...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function renderSpan(span, trace) {
  const aside = $("span-detail");
  aside.replaceChildren();
  const head = el("h3", span.name, "span-title");
  aside.append(head);
  const badges = el("p");
  badges.append(pill(TYPE_LABELS[span.type] || span.type, "t-" + span.type));
  if (span.status !== "unset") badges.append(" ", pill(span.status, span.status === "error" ? "bad" : ""));
  aside.append(badges);
  const dl = el("dl", undefined, "facts");
  fact(dl, "Span id", idWithCopy(span.spanId, "span id"));
  fact(dl, "Trace id", idWithCopy(trace.traceId, "trace id"));
  fact(dl, "Parent", span.parentSpanId ? idWithCopy(span.parentSpanId, "parent span id") : "(root)");
  fact(dl, "Kind", span.kind);
  fact(dl, "Service", span.service);
  fact(dl, "Agent", span.agentName);
  fact(dl, "Starts", `+${fmtMs(span.offsetMs)} (${fmtTime(span.startTime)} UTC)`);
  fact(dl, "Duration", fmtMs(span.durationMs));
  if (span.statusMessage) fact(dl, "Status message", span.statusMessage);
  aside.append(dl);
  if (span.llm) {
    const l = span.llm;
    const llm = el("dl", undefined, "facts");
    fact(llm, "Model", l.model);
    fact(llm, "Provider", l.provider);
    fact(llm, "Tokens in / out", `${fmtInt(l.inputTokens)} / ${fmtInt(l.outputTokens)}`);
    fact(llm, "Cache read / reasoning", `${fmtInt(l.cacheReadTokens)} / ${fmtInt(l.reasoningTokens)}`);
    fact(llm, "Cost", l.costUsd === null ? "unpriced" : `${fmtCost(l.costUsd)} (${l.costSource === "reported" ? "reported by the sender" : "estimated by the bridge"})`);
    aside.append(section("LLM call", llm));
  }
  if (span.tool) {
    const t = span.tool;
    const tool = el("dl", undefined, "facts tool");
    fact(tool, "Tool", t.toolName);
    fact(tool, "Call id", t.toolCallId ? idWithCopy(t.toolCallId, "tool call id") : null);
    fact(tool, "Arguments", missing(t.arguments) ? null : valueNode(t.arguments));
    fact(tool, "Result", missing(t.result) ? null : valueNode(t.result));
    aside.append(section("Tool call", tool));
  }
  if (span.error) {
    const e = span.error;
    const box = el("div", undefined, "error-box");
    box.append(el("p", `${e.errorType || "Error"}: ${e.message}`, "error-message"));
    if (e.stack) box.append(valueNode(e.stack));
    aside.append(section("Error", box));
  }
  const scores = evaluations(span);
  if (scores.length) {
    aside.append(section("Scores", table(
      [{ label: "Evaluation" }, { label: "Score", num: true }, { label: "Label" }, { label: "Explanation" }],
      scores.map((e) => [e.name, missing(e.value) ? "–" : String(e.value), e.label || "–", e.explanation ? valueNode(e.explanation) : "–"]),
      "compact scores",
    )));
  }
  if (!missing(span.input)) aside.append(section("Input", ioNode(span.input)));
  if (!missing(span.output)) aside.append(section("Output", ioNode(span.output)));
  if (span.events.length) {
    const list = el("ol", undefined, "events");
    for (const event of span.events) {
      const li = el("li");
      li.append(el("span", `+${fmtMs(event.offsetMs)}`, "muted"), " ", el("b", event.name));
      if (event.name === "exception") {
        const a = event.attributes;
        li.append(el("p", `${a["exception.type"] || "Exception"}: ${a["exception.message"] || ""}`, "error-message"));
        if (a["exception.stacktrace"]) li.append(valueNode(a["exception.stacktrace"]));
      } else if (Object.keys(event.attributes).length) {
        li.append(attributeTable(event.attributes));
      }
      list.append(li);
    }
    aside.append(section(`Events (${span.events.length})`, list));
  }
  aside.append(section(`Attributes (${Object.keys(span.attributes).length})`, attributeTable(span.attributes)));
  const resource = el("details", undefined, "fold");
  resource.append(el("summary", `Resource (${Object.keys(span.resource).length} attributes)`), attributeTable(span.resource));
  aside.append(resource);
}

// evaluation results, as the GenAI semantic conventions record them: one span event each
const EVALUATION_EVENT = "gen_ai.evaluation.result";
function evaluations(span) {
  return span.events.filter((e) => e.name === EVALUATION_EVENT).map((e) => ({
    name: e.attributes["gen_ai.evaluation.name"] || "evaluation",
    value: e.attributes["gen_ai.evaluation.score.value"],
    label: e.attributes["gen_ai.evaluation.score.label"],
    explanation: e.attributes["gen_ai.evaluation.explanation"],
  }));
}

function attributeTable(attributes) {
  const table = el("table", undefined, "attributes compact");
  const tbody = el("tbody");
  for (const key of Object.keys(attributes).sort()) {
    const tr = el("tr");
    const value = el("td");
    value.append(valueNode(attributes[key]));
    tr.append(el("th", key), value);
    tbody.append(tr);
  }
  table.append(tbody);
  return table;
}

// Input and output: a list of chat messages (OpenAI, GenAI semantic conventions, Langfuse
// and OpenInference shapes) is shown as a chat; anything else as a value.
function messagesOf(value) {
  if (Array.isArray(value) && value.length && value.every((m) => m && typeof m === "object" && !Array.isArray(m) && ("role" in m || "message" in m))) return value;
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if (Array.isArray(value.messages) && messagesOf(value.messages)) return value.messages;
    if ("role" in value && ("content" in value || "parts" in value)) return [value];
  }
  return null;
}

function ioNode(value) {
  const messages = messagesOf(value);
  if (!messages) return valueNode(value);
  const chat = el("ol", undefined, "chat");
  for (const raw of messages) {
    const message = raw.message && typeof raw.message === "object" ? { role: raw.role, ...raw.message } : raw;
    const role = String(message.role || "message");
    const li = el("li", undefined, "msg role-" + role.replace(/[^a-z_]/gi, ""));
    li.append(el("span", role, "role"));
    const body = el("div", undefined, "msg-body");
    for (const part of messageParts(message)) body.append(part);
    li.append(body);
    chat.append(li);
  }
  return chat;
}

function messageParts(message) {
  const out = [];
  const content = message.content !== undefined ? message.content : message.parts;
  const addPart = (part) => {
    if (typeof part === "string") { out.push(valueNode(part)); return; }
    if (!part || typeof part !== "object") { if (!missing(part)) out.push(valueNode(part)); return; }
    const kind = part.type;
    if (kind === "text" || (kind === undefined && ("text" in part || "content" in part))) {
      out.push(valueNode(part.text !== undefined ? part.text : part.content));
    } else if (kind === "tool_call" || kind === "function_call" || kind === "tool_use") {
      out.push(toolCallNode(part.name, part.arguments !== undefined ? part.arguments : part.input, part.id));
    } else if (kind === "tool_call_response" || kind === "tool_result") {
      const box = el("div", undefined, "tool-result");
      box.append(el("span", "tool result" + (part.id || part.tool_use_id ? ` (${part.id || part.tool_use_id})` : ""), "muted"), valueNode(part.response !== undefined ? part.response : part.content));
      out.push(box);
    } else {
      out.push(valueNode(part));
    }
  };
  if (Array.isArray(content)) content.forEach(addPart); else if (!missing(content)) addPart(content);
  for (const call of message.tool_calls || []) {
    const fn = call.function || call;
    out.push(toolCallNode(fn.name, fn.arguments, call.id));
  }
  if (message.tool_call_id) out.push(el("span", `for tool call ${message.tool_call_id}`, "muted"));
  if (!out.length) {
    const rest = { ...message };
    delete rest.role;
    out.push(valueNode(rest));
  }
  return out;
}

function toolCallNode(name, args, id) {
  const box = el("div", undefined, "tool-call");
  box.append(el("span", `calls ${name || "a tool"}` + (id ? ` (${id})` : ""), "muted"));
  let parsed = args;
  if (typeof args === "string") { try { parsed = JSON.parse(args); } catch { parsed = args; } }
  if (!missing(parsed)) box.append(valueNode(parsed));
  return box;
}

// ---------------------------------------------------------------------------------------
// Charts (uPlot, vendored in vendor/uplot) and cards

const PALETTE = ["#2f6fde", "#0f8a5f", "#c26a00", "#8a4fd8", "#c53030", "#1f7a8c", "#b7791f", "#4b5563"];

function chart(title, buckets, series, format) {
  const figure = el("figure", undefined, "chart");
  figure.append(el("figcaption", title));
  const holder = el("div", undefined, "plot");
  figure.append(holder);
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  queueMicrotask(() => {
    const width = Math.max(holder.clientWidth || figure.clientWidth || 600, 300);
    // eslint-disable-next-line no-undef
    new uPlot({
      width,
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      scales: { x: { time: true } },
      series: [{ label: "UTC" }, ...series.map((s, i) => ({
        label: s.label, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: true, size: 5 },
        value: (u, v) => (missing(v) ? "–" : format(v)),
      }))],
      axes: [{}, { values: (u, ticks) => ticks.map(format), size: 70 }],
    }, [xs, ...series.map((s) => s.values)], holder);
  });
  return figure;
}

function cards(items) {
  const box = el("div", undefined, "cards");
  for (const [label, value] of items) {
    const card = el("div", undefined, "card");
    card.append(el("b", value), el("span", label));
    box.append(card);
  }
  return box;
}

function table(headers, rows, className = "compact") {
  const node = el("table", undefined, className);
  const head = el("tr");
  for (const h of headers) head.append(el("th", h.label, h.num ? "num" : ""));
  append(node, append(el("thead"), head));
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((cell, i) => {
      const td = el("td", undefined, headers[i].num ? "num" : "");
      td.append(cell instanceof Node ? cell : el("span", cell));
      tr.append(td);
    });
    body.append(tr);
  }
  node.append(body);
  return node;
}

function usageQuery(from, to, user) {
  const p = new URLSearchParams();
  if (from) p.set("from", utc(from));
  if (to) p.set("to", utc(to));
  if (user) p.set("user.id", user);
  const query = p.toString();
  return `/api/projects/${projectPath()}/usage${query ? "?" + query : ""}`;
}

// ---------------------------------------------------------------------------------------
// Users

async function loadUsers() {
  $("u-user").value = state.user || "";
  $("u-from").value = state.from || "";
  $("u-to").value = state.to || "";
  const box = $("user-body");
  const usage = await api(usageQuery(state.from, state.to, state.user), { what: `Project “${state.project}”` });
  box.replaceChildren();
  if (!state.user) {
    box.append(el("h2", "Users"));
    box.append(table(
      [{ label: "User" }, { label: "Sessions", num: true }, { label: "Tokens in", num: true }, { label: "Tokens out", num: true },
        { label: "Cost", num: true }, { label: "Sessions with errors", num: true }, { label: "Last seen (UTC)" }],
      usage.byUser.map((u) => [userLink(u.userId), fmtInt(u.sessions), fmtInt(u.inputTokens), fmtInt(u.outputTokens),
        fmtCost(u.costUsd), fmtInt(u.errorSessions), fmtTime(u.lastSeen)]),
      "compact users",
    ));
    if (!usage.byUser.length) box.append(el("p", "No sessions with a user id in this time range.", "muted"));
    setStatus(`${fmtInt(usage.totals.users)} user(s)`);
    return;
  }
  const t = usage.totals;
  box.append(append(el("h2"), el("span", "User "), idWithCopy(state.user, "user id", "id title")));
  box.append(cards([["sessions", fmtInt(t.sessions)], ["tokens in", fmtInt(t.inputTokens)], ["tokens out", fmtInt(t.outputTokens)],
    ["cost", fmtCost(t.costUsd)], ["sessions with errors", fmtInt(t.errorSessions)], ["unpriced calls", fmtInt(t.unpricedCalls)]]));
  if (usage.buckets.length > 1) {
    box.append(el("div", undefined, "charts"));
    const charts = box.lastChild;
    charts.append(chart("Sessions", usage.buckets, [{ label: "sessions", values: usage.buckets.map((b) => b.sessions) }], fmtInt));
    charts.append(chart("Cost", usage.buckets, [{ label: "cost", values: usage.buckets.map((b) => b.costUsd) }], fmtCost));
  }
  const filters = { user: state.user };
  if (state.from) filters.from = state.from;
  if (state.to) filters.to = state.to;
  const page = await search({ ...searchFilters(filters), limit: 100, include_counts: true, sort: { column_id: "created_at", ascending: false } });
  box.append(el("h3", `Sessions (${fmtInt(page.num_records)})`));
  box.append(table(
    [{ label: "Session" }, { label: "Started (UTC)" }, { label: "Duration", num: true }, { label: "Turns", num: true },
      { label: "Tokens", num: true }, { label: "Cost", num: true }, { label: "Errors" }],
    page.records.map((r) => [sessionLink(r.id, "id"), fmtTime(r.created_at), fmtMs(r.metrics.duration_ns / 1e6), fmtInt(r.num_traces),
      fmtInt(r.metrics.num_total_tokens), fmtCost(r.metrics.cost), r.status_code === 500 ? pill("errors", "bad") : "–"]),
    "compact user-sessions",
  ));
  setStatus(`user ${state.user}`);
}

$("user-form").addEventListener("submit", (event) => {
  event.preventDefault();
  go({ user: $("u-user").value.trim() || null, from: $("u-from").value || null, to: $("u-to").value || null });
});
$("u-all").addEventListener("click", () => go({ user: null }));

// ---------------------------------------------------------------------------------------
// Overview

async function loadOverview() {
  $("o-from").value = state.ofrom || "";
  $("o-to").value = state.oto || "";
  const usage = await api(usageQuery(state.ofrom, state.oto, null), { what: `Project “${state.project}”` });
  const box = $("overview-body");
  box.replaceChildren();
  const t = usage.totals;
  box.append(cards([["sessions", fmtInt(t.sessions)], ["users", fmtInt(t.users)], ["tokens in", fmtInt(t.inputTokens)],
    ["tokens out", fmtInt(t.outputTokens)], ["cost", fmtCost(t.costUsd)], ["unpriced calls", fmtInt(t.unpricedCalls)],
    ["sessions with errors", fmtInt(t.errorSessions)]]));
  if (usage.truncated) box.append(el("p", "Only the most recent sessions and calls of this range are counted.", "banner"));
  if (!usage.buckets.length) {
    box.append(el("p", "No sessions in this time range.", "muted"));
    setStatus("overview");
    return;
  }
  const width = usage.bucketSeconds >= 86400 ? `${usage.bucketSeconds / 86400} day(s)` : usage.bucketSeconds >= 3600
    ? `${usage.bucketSeconds / 3600} hour(s)` : `${usage.bucketSeconds / 60} minute(s)`;
  box.append(el("p", `From ${fmtTime(usage.start)} to ${fmtTime(usage.end)} UTC, in buckets of ${width}.`, "muted"));
  const charts = el("div", undefined, "charts");
  box.append(charts);
  charts.append(chart("Sessions by environment", usage.buckets, usage.byEnvironment.map((e) => ({ label: e.environment, values: e.sessionSeries })), fmtInt));
  charts.append(chart("Tokens by model", usage.buckets, usage.byModel.map((m) => ({ label: m.model, values: m.tokenSeries })), fmtInt));
  charts.append(chart("Cost by model", usage.buckets, usage.byModel.map((m) => ({ label: m.model, values: m.costSeries })), fmtCost));
  box.append(el("h3", "By model"));
  box.append(table(
    [{ label: "Model" }, { label: "Calls", num: true }, { label: "Tokens in", num: true }, { label: "Tokens out", num: true }, { label: "Cost", num: true }],
    usage.byModel.map((m) => [link(m.model, { view: "sessions", filters: { model: m.model }, after: null, at: 0 }), fmtInt(m.calls), fmtInt(m.inputTokens), fmtInt(m.outputTokens), fmtCost(m.costUsd)]),
    "compact by-model",
  ));
  box.append(el("h3", "By environment"));
  box.append(table(
    [{ label: "Environment" }, { label: "Sessions", num: true }, { label: "Tokens in", num: true }, { label: "Tokens out", num: true }, { label: "Cost", num: true }],
    usage.byEnvironment.map((e) => [e.environment, fmtInt(e.sessions), fmtInt(e.inputTokens), fmtInt(e.outputTokens), fmtCost(e.costUsd)]),
    "compact by-environment",
  ));
  setStatus("overview");
}

$("overview-form").addEventListener("submit", (event) => {
  event.preventDefault();
  go({ ofrom: $("o-from").value || null, oto: $("o-to").value || null });
});
$("o-all").addEventListener("click", () => go({ ofrom: null, oto: null }));

// ---------------------------------------------------------------------------------------
// Views, refresh and start

const VIEWS = { sessions: "view-sessions", session: "view-session", users: "view-users", overview: "view-overview" };
let renderCount = 0;

async function render(quiet = false) {
  renderCount += 1;
  for (const [view, id] of Object.entries(VIEWS)) $(id).hidden = view !== state.view;
  for (const a of document.querySelectorAll("nav a")) {
    const current = a.dataset.view === state.view || (a.dataset.view === "sessions" && state.view === "session");
    if (current) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    a.href = urlOf({ ...state, view: a.dataset.view, session: null, span: null });
    a.dataset.go = "";
  }
  if (!projects) return;
  const run = (async () => {
    try {
      if (state.view === "sessions") {
        if (!quiet) { // a refresh leaves alone what the person is typing
          buildHeader();
          fillFilterForm();
        }
        await loadSessions();
        loadFacets().catch(() => {});
      } else if (state.view === "session") {
        await loadSession(quiet);
      } else if (state.view === "users") {
        await loadUsers();
      } else {
        await loadOverview();
      }
      clearProblem();
    } catch (err) {
      if (!quiet || !(err instanceof ApiError && err.status === 0)) showProblem(err);
    } finally {
      document.body.dataset.ready = state.view; // for whoever waits on the page: done
    }
  })();
  return run;
}

let timer = null;
function schedule() {
  clearInterval(timer);
  if ($("refresh").checked) {
    timer = setInterval(() => {
      if (document.hidden || !projects) return;
      if (state.view === "sessions" || (state.view === "session" && shown && shown.data.session.state === "active")) render(true);
    }, REFRESH_MS);
  }
}
$("refresh").addEventListener("change", schedule);

document.addEventListener("keydown", (event) => {
  if (event.target.closest("input, select, textarea")) return;
  if (event.key === "/" && state.view === "sessions") { event.preventDefault(); $("f-q").focus(); }
  if (event.key === "Escape" && state.view === "session") go({ view: "sessions", session: null, span: null });
});

async function start() {
  shown = null;
  facets = null;
  try {
    await loadProjects();
  } catch (err) {
    projects = null;
    document.body.dataset.ready = "key";
    showProblem(err);
    setStatus(err instanceof ApiError && err.status === 401 ? "waiting for an API key" : "cannot load");
    render();
    return;
  }
  clearProblem();
  history.replaceState(null, "", urlOf(state));
  await render();
}

start();
schedule();
