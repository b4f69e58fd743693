// herd dashboard page. Everything it shows arrives on one Server-Sent Events
// stream (/events) pushed by herd on file changes; it never polls. Agents'
// text is hostile: it is only ever put in the page as textContent (this
// file never assigns innerHTML), and the server's Content-Security-Policy
// forbids inline script.
"use strict";

const $ = id => document.getElementById(id);

// el("div", {class: "x", dataset: {id: 1}}, "text", child) builds an element; strings become text.
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

const state = {
  taskId: null,
  agentId: null,
  tasks: [],
  task: null,       // the last `task` event
  timeline: [],
  output: { agentId: null, begin: 0, end: 0, fileSize: 0, lines: [] },
  source: null,
};

// ---- selection, kept in the URL's hash so a reload shows the same thing ----

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.taskId = params.get("task") || null;
  state.agentId = state.taskId ? params.get("agent") || null : null;
}

function select(taskId, agentId) {
  const params = new URLSearchParams();
  if (taskId) params.set("task", taskId);
  if (taskId && agentId) params.set("agent", agentId);
  const hash = params.toString();
  if (location.hash.slice(1) !== hash) history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
  const changed = taskId !== state.taskId || agentId !== state.agentId;
  state.taskId = taskId;
  state.agentId = agentId;
  if (changed) {
    pending.delete("task");
    state.task = null;
    state.timeline = [];
    state.output = { agentId, begin: 0, end: 0, fileSize: 0, lines: [] };
    renderAll();
    connect();
  }
}

// ---- the event stream ----

// `resumeFrom`: the id of the last event this page has, to be sent only what changed since.
function connect(resumeFrom) {
  if (state.source) state.source.close();
  const params = new URLSearchParams();
  if (state.taskId) params.set("task_id", state.taskId);
  if (state.taskId && state.agentId) params.set("agent_id", state.agentId);
  if (resumeFrom) params.set("last_event_id", resumeFrom);
  state.lastEventId = resumeFrom || null;
  const source = new EventSource(`/events?${params}`);
  state.source = source;
  setConnection("connecting", "connecting…");
  source.onopen = () => setConnection("live", "live");
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      setConnection("down", "disconnected: open the URL herd dashboard printed");
    } else {
      setConnection("connecting", "reconnecting…");
    }
  };
  // A browser keeps at most 6 connections to one host over HTTP/1.1: a page out of sight
  // gives its stream back and resumes from its last event when shown again.
  const remember = event => { if (event.lastEventId) state.lastEventId = event.lastEventId; };
  for (const name of ["tasks", "task", "output"]) source.addEventListener(name, remember);
  // Each of these events replaces the last one whole: under a burst only the newest is parsed
  // and drawn, once per frame.
  source.addEventListener("tasks", event => latest("tasks", event.data));
  source.addEventListener("task", event => latest("task", event.data));
  source.addEventListener("output", event => receiveOutput(JSON.parse(event.data)));
  source.addEventListener("failure", event => notice(JSON.parse(event.data).error));
}

const pending = new Map();  // event name -> newest data not drawn yet
function latest(name, data) {
  if (pending.size === 0) requestAnimationFrame(drawPending);
  pending.set(name, data);
}

function drawPending() {
  const tasks = pending.get("tasks"), task = pending.get("task");
  pending.clear();
  if (tasks !== undefined) {
    state.tasks = JSON.parse(tasks).tasks;
    renderTasks();
    scheduleDoctor();
  }
  if (task !== undefined) {
    state.task = JSON.parse(task);
    state.timeline = state.task.timeline || [];
    renderTask();
  }
}

function setConnection(kind, text) {
  const badge = $("connection");
  badge.dataset.state = kind;
  badge.textContent = text;
}

// ---- tasks ----

function money(value) { return value === null || value === undefined ? "—" : `$${Number(value).toFixed(2)}`; }
function count(value) { return value === null || value === undefined ? "—" : Number(value).toLocaleString("en"); }

function againstBudget(used, limit, format) {
  const text = limit === null || limit === undefined ? format(used) : `${format(used)} / ${format(limit)}`;
  const over = limit !== null && limit !== undefined && used >= limit;
  return el("span", { class: over ? "over" : null }, text);
}

function renderTasks() {
  const body = $("tasks").tBodies[0];
  body.replaceChildren();
  $("tasks-empty").hidden = state.tasks.length > 0;
  for (const task of state.tasks) {
    const usage = task.usage || {};
    const budget = task.budget || {};
    const limits = task.limits || {};
    const row = el("tr", { class: task.task_id === state.taskId ? "selected" : null, dataset: { taskId: task.task_id } },
      el("td", {}, el("div", { class: "task-id" }, task.task_id), el("div", {}, task.description || "")),
      el("td", { class: `status status-${task.status}` }, task.error ? `DAMAGED: ${task.error}` : task.status,
         task.stopped ? el("div", { class: "facts" }, `stopped: ${task.stopped.reason}`) : null),
      el("td", {}, `${task.active_count ?? 0} active / ${task.total_spawned ?? 0}`),
      el("td", {}, againstBudget(usage.total_cost_usd ?? 0, budget.max_cost_usd, money)),
      el("td", {}, againstBudget(usage.total_tokens ?? 0, budget.max_tokens, count)),
      el("td", { class: "facts" }, limits.max_concurrent !== undefined
        ? `${limits.max_concurrent} at once, ${limits.max_agents} in all, depth ${limits.max_depth}` : "—"));
    row.addEventListener("click", () => select(task.task_id, null));
    body.append(row);
  }
}

// ---- a task: agents, timeline ----

function agentFacts(agent) {
  const facts = [`${agent.type}`, `liveness ${agent.liveness}`];
  if (agent.backend) facts.push(agent.backend + (agent.model ? ` (${agent.model})` : ""));
  if (agent.exit_code !== undefined && agent.exit_code !== null) facts.push(`exit ${agent.exit_code}`);
  if (agent.exit_signal) facts.push(`signal ${agent.exit_signal}`);
  const usage = agent.usage || {};
  if (usage.total_tokens || usage.total_cost_usd) facts.push(`${count(usage.total_tokens)} tokens, ${money(usage.total_cost_usd)}`);
  if (agent.turn > 1) facts.push(`turn ${agent.turn}`);
  if (agent.message_queue && agent.message_queue.length) facts.push(`${agent.message_queue.length} queued`);
  const worktree = agent.worktree;
  if (worktree && typeof worktree === "object" && worktree.branch) facts.push(`branch ${worktree.branch}`);
  // get_real_task_status's per-agent worktree_summary (orchestrator/worktree_status.h).
  const diff = agent.worktree_summary;
  if (diff && typeof diff === "object" && diff.present) {
    facts.push(`${diff.files_changed} files +${diff.lines_added} -${diff.lines_removed}, ` +
               `${diff.commits_ahead} commits ahead${diff.dirty ? ", uncommitted changes" : ""}`);
  }
  return facts.join(" · ");
}

function isActive(agent) { return ["running", "working", "blocked"].includes(agent.status); }
// The backends whose agents take follow-up messages (agents/backend.h PlanFollowUpTurn).
const RESUMABLE_BACKENDS = ["claude", "codex", "command"];

function renderAgent(agent) {
  const kill = el("button", { class: "danger kill", type: "button", dataset: { agentId: agent.id } }, "Kill");
  kill.disabled = !isActive(agent);
  kill.addEventListener("click", event => { event.stopPropagation(); confirmKill(agent.id); });
  const send = el("button", { class: "send", type: "button", dataset: { agentId: agent.id } }, "Send");
  send.disabled = !RESUMABLE_BACKENDS.includes(agent.backend);
  send.addEventListener("click", event => { event.stopPropagation(); confirmSend(agent.id); });
  const outputButton = el("button", { type: "button", class: "show-output" }, "Output");
  outputButton.addEventListener("click", event => { event.stopPropagation(); select(state.taskId, agent.id); });
  const reason = agent.termination_reason || agent.error || agent.ended_reason;
  return el("div", { class: `agent${agent.id === state.agentId ? " selected" : ""}`, dataset: { agentId: agent.id } },
    el("div", { class: "agent-head" },
      el("span", { class: "agent-id" }, agent.id),
      el("span", { class: `status status-${agent.status}` }, agent.status),
      el("span", { class: "progress-text" }, `${agent.progress ?? 0}%`),
      el("span", { class: "spacer" }), outputButton, send, kill),
    el("div", { class: "progress" }, el("div", { style: null, dataset: { progress: agent.progress ?? 0 } })),
    agent.last_message ? el("div", { class: "last-message" }, agent.last_message) : null,
    reason ? el("div", { class: "facts" }, `ended: ${reason}`) : null,
    el("div", { class: "facts" }, agentFacts(agent)));
}

// The CSP forbids inline styles set through attributes, but not through the CSSOM.
function applyProgressWidths(root) {
  for (const bar of root.querySelectorAll("[data-progress]")) {
    bar.style.width = `${Math.max(0, Math.min(100, Number(bar.dataset.progress)))}%`;
  }
}

function renderTask() {
  const panel = $("task-panel");
  panel.hidden = !state.taskId;
  if (!state.taskId) return;
  $("task-title").textContent = state.taskId;
  const payload = state.task;
  $("task-error").hidden = !(payload && payload.error);
  if (payload && payload.error) $("task-error").textContent = payload.error;
  const status = payload && payload.status;
  if (!status) {
    $("agents").replaceChildren();
    $("timeline").replaceChildren();
    return;
  }
  $("task-description").textContent = status.description || "";
  const agents = status.agents || {};
  const usage = status.usage || {};
  const budget = status.budget || {};
  const summary = [`${status.status}`, `${agents.active ?? 0} active, ${agents.completed ?? 0} ended of ${agents.total_spawned ?? 0}`,
    `cost ${money(usage.total_cost_usd ?? 0)}${budget.max_cost_usd != null ? ` of ${money(budget.max_cost_usd)}` : ""}`,
    `tokens ${count(usage.total_tokens ?? 0)}${budget.max_tokens != null ? ` of ${count(budget.max_tokens)}` : ""}`];
  if (status.stopped) summary.push(`stopped at ${status.stopped.at}: ${status.stopped.reason}`);
  if (status.budget_exceeded) summary.push(`over budget: ${status.budget_exceeded.limit || ""}`);
  $("task-summary").textContent = summary.join(" · ");
  $("stop-task").disabled = !!status.stopped && !(agents.agents_list || []).some(isActive);

  // The tree: children under their parent, in the task's order.
  const list = agents.agents_list || [];
  const byParent = new Map();
  const ids = new Set(list.map(agent => agent.id));
  for (const agent of list) {
    const parent = ids.has(agent.parent) ? agent.parent : "";
    if (!byParent.has(parent)) byParent.set(parent, []);
    byParent.get(parent).push(agent);
  }
  const build = parent => {
    const items = [];
    for (const agent of byParent.get(parent) || []) {
      const item = el("li", {}, renderAgent(agent));
      if (byParent.has(agent.id)) item.append(el("ul", {}, ...build(agent.id)));
      items.push(item);
    }
    return items;
  };
  const tree = $("agents");
  tree.replaceChildren(...build(""));
  applyProgressWidths(tree);
  renderTimeline();
}

const SEVERITY_RANK = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

function renderTimeline() {
  const filter = $("severity-filter").value;
  const showProgress = $("show-progress").checked;
  const items = [];
  for (const entry of state.timeline) {
    const when = el("span", { class: "when" }, (entry.timestamp || "").replace("T", " ").slice(0, 19));
    if (entry.entry_type === "finding") {
      const severity = entry.severity || "info";
      if (filter === "none") continue;
      if (filter !== "all" && (SEVERITY_RANK[severity] ?? 0) < SEVERITY_RANK[filter]) continue;
      items.push(el("li", { class: "finding", dataset: { severity } }, when,
        el("span", { class: `severity severity-${severity}` }, severity),
        `${entry.agent_id}: ${entry.finding_type ? `[${entry.finding_type}] ` : ""}${entry.message ?? ""}`));
    } else if (showProgress) {
      items.push(el("li", { class: "progress-entry" }, when,
        `${entry.agent_id}: ${entry.status ?? ""} ${entry.progress ?? ""}% ${entry.message ?? ""}`));
    }
  }
  const timeline = $("timeline");
  const atBottom = timeline.scrollTop + timeline.clientHeight >= timeline.scrollHeight - 4;
  timeline.replaceChildren(...items);
  if (atBottom) timeline.scrollTop = timeline.scrollHeight;
}

// ---- an agent's output ----

function splitLines(text) {
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

function receiveOutput(window) {
  const output = state.output;
  if (window.agent_id !== state.agentId) return;
  const lines = splitLines(window.text);
  const continues = output.agentId === window.agent_id && output.lines.length > 0 && window.begin === output.end;
  output.end = window.end;
  output.fileSize = window.file_size;
  if (continues) {
    output.lines.push(...lines);
    addOutput(lines, "end");
  } else {
    // A fresh tail: the first event, or the stream started over.
    output.agentId = window.agent_id;
    output.begin = window.begin;
    output.lines = lines;
    renderOutput();
  }
}

async function loadEarlier() {
  const output = state.output;
  if (!state.agentId || output.begin === 0) return;
  const params = new URLSearchParams({ task_id: state.taskId, agent_id: state.agentId, before: output.begin, max_bytes: 256 * 1024 });
  const reply = await fetch(`/api/output?${params}`);
  const window = await reply.json();
  if (!reply.ok) return notice(window.error);
  if (window.agent_id !== state.agentId || window.end !== output.begin) return;
  const lines = splitLines(window.text);
  output.lines.unshift(...lines);
  output.begin = window.begin;
  addOutput(lines, "start");
}

// One stream-json event as blocks for a reader; null for events not worth showing.
function renderEvent(line) {
  let event;
  try { event = JSON.parse(line); } catch { return [el("div", { class: "block" }, line)]; }
  if (!event || typeof event !== "object") return [el("div", { class: "block" }, line)];
  const blocks = [];
  const content = event.message && Array.isArray(event.message.content) ? event.message.content
    : event.message && typeof event.message.content === "string" ? [{ type: "text", text: event.message.content }] : [];
  switch (event.type) {
    case "system":
      blocks.push(el("div", { class: "block facts" }, `${event.subtype || "system"}${event.model ? `: model ${event.model}` : ""}${event.session_id ? `, session ${event.session_id}` : ""}`));
      break;
    case "assistant":
      for (const part of content) {
        if (part.type === "text") blocks.push(el("div", { class: "block block-text" }, part.text ?? ""));
        else if (part.type === "tool_use") blocks.push(el("div", { class: "block block-tool" }, el("span", { class: "block-label" }, `→ ${part.name}`), JSON.stringify(part.input ?? {}, null, 1)));
        else if (part.type === "thinking") blocks.push(el("div", { class: "block facts" }, part.thinking ?? ""));
      }
      break;
    case "user":
      for (const part of content) {
        if (part.type !== "tool_result") continue;
        const text = Array.isArray(part.content) ? part.content.map(c => c.text ?? "").join("\n") : String(part.content ?? "");
        blocks.push(el("div", { class: `block block-result${part.is_error ? " block-error" : ""}` }, el("span", { class: "block-label" }, "← result"), text));
      }
      break;
    case "result":
      blocks.push(el("div", { class: `block block-final${event.is_error ? " block-error" : ""}` }, el("span", { class: "block-label" }, `result (${event.subtype || "done"})`),
        `${event.result ?? ""}${event.total_cost_usd !== undefined ? `\n$${Number(event.total_cost_usd).toFixed(4)}, ${event.num_turns ?? "?"} turns` : ""}`));
      break;
    default:
      blocks.push(el("div", { class: "block" }, line));
  }
  return blocks;
}

function outputView() { return $("raw-output").checked ? $("output-raw") : $("output"); }

function renderOutputRange() {
  const output = state.output;
  $("output-range").textContent = output.fileSize === 0 ? "no output yet"
    : `bytes ${count(output.begin)}–${count(output.end)} of ${count(output.fileSize)}`;
  $("load-earlier").disabled = output.begin === 0;
}

// Adds `lines` at the "start" (paged back) or "end" (followed) of the view; only they are rendered.
function addOutput(lines, where) {
  renderOutputRange();
  const view = outputView();
  const raw = view.id === "output-raw";
  const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
  const nodes = raw ? [lines.map(line => `${line}\n`).join("")] : lines.flatMap(renderEvent);
  if (where === "end") {
    view.append(...nodes);
    if (atBottom) view.scrollTop = view.scrollHeight;
  } else {
    const height = view.scrollHeight;
    view.prepend(...nodes);
    view.scrollTop += view.scrollHeight - height;  // keep what was on screen in place
  }
}

function renderOutput() {
  const panel = $("output-panel");
  panel.hidden = !state.agentId;
  if (!state.agentId) return;
  $("output-title").textContent = `Output of ${state.agentId}`;
  const raw = $("raw-output").checked;
  $("output").hidden = raw;
  $("output-raw").hidden = !raw;
  $("output").replaceChildren();
  $("output-raw").replaceChildren();
  addOutput(state.output.lines, "end");
  const view = outputView();
  view.scrollTop = view.scrollHeight;
}

// ---- doctor ----

let doctorPending = false;
let doctorRunning = false;
// A tasks event asks for a fresh report; reports never overlap.
function scheduleDoctor() {
  doctorPending = true;
  if (!doctorRunning) runDoctor();
}

async function runDoctor() {
  doctorRunning = true;
  while (doctorPending) {
    doctorPending = false;
    try {
      const reply = await fetch("/api/doctor");
      const report = await reply.json();
      if (!reply.ok) { $("doctor-summary").textContent = report.error; continue; }
      renderDoctor(report);
    } catch (error) {
      $("doctor-summary").textContent = `doctor: ${error.message}`;
    }
  }
  doctorRunning = false;
}

function renderDoctor(report) {
  const summary = report.summary || {};
  $("doctor-summary").textContent = `${summary.healthy ? "healthy" : "needs attention"}: ${summary.findings ?? 0} finding(s); run herd doctor --repair to fix`;
  const items = [];
  for (const workspace of report.workspaces || []) {
    for (const finding of workspace.workspace_findings || []) items.push(doctorItem(workspace.base, finding));
    for (const task of workspace.tasks || []) {
      for (const finding of task.findings || []) items.push(doctorItem(task.task_id, finding));
    }
  }
  $("doctor").replaceChildren(...items);
}

function doctorItem(where, finding) {
  return el("li", { dataset: { kind: finding.kind } },
    el("span", { class: `severity severity-${finding.severity === "error" ? "critical" : "medium"}` }, finding.severity),
    `${finding.kind} in ${where}${finding.agent_id ? ` (${finding.agent_id})` : ""}: ${finding.detail}`);
}

// ---- actions ----

let pendingAction = null;

function ask(text, action, { label = "Reason", maxLength = 1000, interrupt = false } = {}) {
  pendingAction = action;
  $("confirm-text").textContent = text;
  $("confirm-label").textContent = label;
  $("confirm-reason").maxLength = maxLength;
  $("confirm-interrupt-row").hidden = !interrupt;
  $("confirm-interrupt").checked = false;
  $("confirm-reason").value = "";
  $("confirm").showModal();
  $("confirm-reason").focus();
}

function confirmKill(agentId) {
  const taskId = state.taskId;
  ask(`Kill ${agentId} and everything it started?`, reason => post("/api/kill", { task_id: taskId, agent_id: agentId, reason }));
}

function confirmSend(agentId) {
  const taskId = state.taskId;
  ask(`Send ${agentId} a follow-up? It runs as the agent's next turn, in its own conversation.`,
      message => post("/api/send", { task_id: taskId, agent_id: agentId, message,
                                     interrupt: $("confirm-interrupt").checked }),
      { label: "Message", maxLength: 100000, interrupt: true });
}

function confirmStop() {
  const taskId = state.taskId;
  ask(`Stop every agent of ${taskId} and refuse new ones?`, reason => post("/api/stop", { task_id: taskId, reason }));
}

async function post(path, body) {
  const reply = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const result = await reply.json().catch(() => ({ error: `${reply.status} ${reply.statusText}` }));
  if (!reply.ok || !result.success) notice(`refused: ${result.error}`);
  else if (path === "/api/send") notice(`sent to ${body.agent_id}: ${result.note}`);
  else notice(path === "/api/kill" ? `killed ${body.agent_id}` : `stopped ${body.task_id}`);
}

let noticeTimer = null;
function notice(text) {
  const box = $("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function renderAll() {
  renderTasks();
  renderTask();
  renderOutput();
}

document.addEventListener("DOMContentLoaded", () => {
  $("severity-filter").addEventListener("change", renderTimeline);
  $("show-progress").addEventListener("change", renderTimeline);
  $("raw-output").addEventListener("change", renderOutput);
  $("load-earlier").addEventListener("click", loadEarlier);
  $("stop-task").addEventListener("click", confirmStop);
  $("run-doctor").addEventListener("click", scheduleDoctor);
  $("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));
  $("confirm-form").addEventListener("submit", event => {
    const reason = $("confirm-reason").value.trim();
    if (!reason) { event.preventDefault(); return; }
    const action = pendingAction;
    pendingAction = null;
    if (action) action(reason);
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden && state.source) {
      state.source.close();
      state.source = null;
      setConnection("connecting", "paused while hidden");
    } else if (!document.hidden && !state.source) {
      connect(state.lastEventId);
    }
  });
  window.addEventListener("hashchange", () => {
    const before = [state.taskId, state.agentId];
    readHash();
    const after = [state.taskId, state.agentId];
    state.taskId = before[0]; state.agentId = before[1];
    select(after[0], after[1]);
  });
  readHash();
  renderAll();
  connect();
});
