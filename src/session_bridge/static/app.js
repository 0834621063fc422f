// The sessions page: lists sessions (Galileo-style search API) and shows one session's
// rollup and event timeline (agent traces API). Plain DOM, no dependencies; all data is
// inserted as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000;
let selected = null;
let timer = null;

// The project is remembered; the API key only for this tab's session (sessionStorage: it
// goes when the tab closes and is never written to disk for the next visitor of the profile).
for (const [name, storage] of [["project", localStorage], ["apikey", sessionStorage]]) {
  const saved = storage.getItem("bridge." + name);
  if (saved !== null) $(name).value = saved;
  $(name).addEventListener("change", () => {
    storage.setItem("bridge." + name, $(name).value);
    refresh();
  });
}
localStorage.removeItem("bridge.apikey");  // where earlier versions kept it
$("refresh").addEventListener("change", schedule);
$("settings").addEventListener("submit", (e) => { e.preventDefault(); refresh(); });

function project() { return encodeURIComponent($("project").value.trim() || "default"); }

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) headers.Authorization = "Bearer " + key;
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || response.status + " " + response.statusText);
  return body;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

const fmtMs = (ms) => ms >= 60000 ? (ms / 60000).toFixed(1) + " min" : ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
const fmtTime = (iso) => new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
const fmtCost = (usd) => usd === null || usd === undefined ? "–" : "$" + usd.toFixed(usd < 0.01 ? 5 : 3);

async function loadSessions() {
  const page = await api(`/v2/projects/${project()}/sessions/search`, {
    method: "POST",
    body: JSON.stringify({ limit: 100, include_counts: true, sort: { column_id: "created_at", ascending: false } }),
  });
  const body = $("sessions").tBodies[0];
  body.replaceChildren();
  for (const r of page.records) {
    const tr = el("tr");
    tr.dataset.id = r.id;
    if (r.id === selected) tr.classList.add("selected");
    tr.append(
      el("td", r.id, "id"),
      el("td", r.user_metadata.user_id || "–"),
      el("td", fmtTime(r.created_at)),
      el("td", fmtMs(r.metrics.duration_ns / 1e6), "num"),
      el("td", r.num_traces, "num"),
      el("td", r.metrics.num_total_tokens.toLocaleString(), "num"),
      el("td", fmtCost(r.metrics.cost), "num"),
    );
    const errors = el("td", r.status_code === 500 ? "yes" : "–", "num");
    const state = el("td");
    state.append(el("span", r.is_complete ? "ended" : "active", "pill" + (r.is_complete ? "" : " active")));
    tr.append(errors, state);
    tr.addEventListener("click", () => select(r.id));
    body.append(tr);
  }
  $("empty").hidden = page.records.length > 0;
  $("status").textContent = `${page.num_records} session(s) · updated ${new Date().toLocaleTimeString()}`;
}

function card(label, value) {
  const node = el("div", undefined, "card");
  node.append(el("b", value), el("span", label));
  return node;
}

const show = (value) => value === null || value === undefined ? "(not recorded)" : typeof value === "string" ? value : JSON.stringify(value);

function summary(e) {
  if (e.llm) return `${e.llm.model || "model?"} · ${e.llm.inputTokens}→${e.llm.outputTokens} tokens` + (e.llm.finishReason ? ` · ${e.llm.finishReason}` : "");
  if (e.tool && e.type === "tool_call") return `${e.tool.toolName}(${e.tool.arguments === null ? "" : JSON.stringify(e.tool.arguments)})`;
  if (e.tool) return `${e.tool.toolName} → ` + (e.tool.isError ? `failed: ${e.tool.errorMessage}` : show(e.tool.output));
  if (e.decision) return `${e.decision.decisionKind}: ${e.decision.fromAgent || "?"} → ${e.decision.targets.join(", ") || "?"}`;
  if (e.handoff) return `${e.handoff.fromAgent || "?"} → ${e.handoff.toAgent || "?"}`;
  if (e.guardrail) return `${e.guardrail.guardrailName} (${e.guardrail.stage || "?"}): ${e.guardrail.verdict}`;
  if (e.stateChange) return `${e.stateChange.path} = ${JSON.stringify(e.stateChange.newValue)}`;
  if (e.error) return `${e.error.errorType || "Error"}: ${e.error.message}`;
  if (e.response) return show(e.response.content);
  return e.name;
}

async function loadDetail(id) {
  const base = `/api/projects/${project()}/sessions/${encodeURIComponent(id)}`;
  const page = await api(`${base}/traces?include=metrics&limit=1000`);
  const m = page.metrics;
  $("detail-title").textContent = id;
  $("cards").replaceChildren(
    card("turns", m.turnCount),
    card("session latency", fmtMs(m.totalLatencyMs)),
    card("wall clock", fmtMs(m.wallClockMs)),
    card("LLM calls", m.llmCalls.length),
    card("tokens in / out", `${m.tokens.input} / ${m.tokens.output}`),
    card("tool calls", m.toolCallCount),
    card("tool success", m.toolSuccessRate === null ? "–" : Math.round(m.toolSuccessRate * 100) + "%"),
    card("guardrail blocks", `${m.guardrailBlockCount} / ${m.guardrailEvalCount}`),
  );
  const start = page.events.length ? Date.parse(page.events[0].startTime) : 0;
  const list = $("timeline");
  list.replaceChildren();
  let turn = -1;
  for (const e of page.events) {
    if (e.turnIndex !== turn) {
      turn = e.turnIndex;
      list.append(el("li", `turn ${turn} · trace ${e.traceId}`, "turn"));
    }
    const li = el("li");
    if (e.status === "error") li.classList.add("failed");
    li.title = `${e.name} · span ${e.spanId}`;
    li.append(
      el("span", "+" + fmtMs(Date.parse(e.timestamp) - start), "t"),
      el("span", e.type, "type " + e.type),
      el("span", (e.agentName ? `[${e.agentName}] ` : "") + summary(e), "what"),
      el("span", fmtMs(e.durationMs), "dur"),
    );
    list.append(li);
  }
  $("hint").hidden = true;
  $("detail").hidden = false;
}

async function select(id) {
  selected = id;
  for (const tr of $("sessions").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === id);
  try { await loadDetail(id); } catch (err) { $("status").textContent = "session: " + err.message; }
}

async function refresh() {
  try {
    await loadSessions();
    if (selected) await loadDetail(selected);
  } catch (err) {
    $("status").textContent = "cannot load: " + err.message;
  }
}

function schedule() {
  clearInterval(timer);
  if ($("refresh").checked) timer = setInterval(refresh, REFRESH_MS);
}

const initial = new URLSearchParams(location.search).get("session");
refresh().then(() => { if (initial) select(initial); });
schedule();
