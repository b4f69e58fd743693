#!/usr/bin/env node
// Scripted, deterministic stand-in for the OpenAI Responses API, for driving the real Codex CLI
// (@openai/codex 0.171.0, `codex exec`) offline. Node built-ins only. The sibling of
// model_server.mjs (the Anthropic Messages API for Claude Code): the same options, script format,
// scenarios and log; only the wire format differs.
//
// Usage:
//   node openai_model_server.mjs [--port N] [--host H] [--scenario NAME | --script FILE | NAME | FILE.json]
//                                [--log FILE] [--exit-on-stdin-eof]
// Environment (flags win): MODEL_PORT, MODEL_HOST, MODEL_SCENARIO, MODEL_SCRIPT, MODEL_LOG,
//   MODEL_EXIT_ON_STDIN_EOF=1.
//
// Stdout carries exactly one line, {"port":N}, once the server listens. Request summaries go to
// stderr, or are appended as JSON lines to MODEL_LOG / --log.
//
// Point Codex at it with a provider in $CODEX_HOME/config.toml (or `-c` overrides):
//   model = "scripted"
//   model_provider = "scripted"
//   [model_providers.scripted]
//   name = "Scripted"
//   base_url = "http://127.0.0.1:<port>/v1"
//   env_key = "SCRIPTED_API_KEY"          # any value; it arrives as "Authorization: Bearer ..."
//   wire_api = "responses"
//   request_max_retries = 0
//   stream_max_retries = 0
//
// Endpoints: POST /v1/responses (`"stream": true` gets server-sent events, otherwise one JSON
// response object), POST /control/release (see "wait_for"); everything else 404 JSON (logged).
//
// What Codex 0.171.0 sends (captured here): `input` is a list of items: `message` items (role
// "developer" for its instructions, "user" for an <environment_context> block and then the prompt;
// content items `input_text`), the model's earlier `function_call` items {name, namespace?,
// arguments (a JSON string), call_id} and the tool results `function_call_output` {call_id,
// output}. `tools` holds `function` tools (exec_command, ...) and one `namespace` tool per MCP
// server, {"type":"namespace","name":"mcp__<server>","tools":[functions]}.
//
// Answers are SSE: response.created, then per output item response.output_item.added, the deltas
// (response.output_text.delta / response.function_call_arguments.delta), response.output_item.done,
// and response.completed whose response.usage is {input_tokens, input_tokens_details:
// {cached_tokens}, output_tokens, output_tokens_details: {reasoning_tokens}, total_tokens}. The
// figures are logged with each request ("usage"), so a test can add up exactly what was sent.
//
// Behaviour: the script format of model_server.mjs. A script is {"steps":[...], "extract"?, ...}.
// - A request WITHOUT tools gets a short text answer ("side_text", default "OK").
// - A request WITH tools is an agent turn. Step i is played once the tool calls of steps 0..i-1
//   all have results (function_call_output items). Past the last step: "Script finished.".
// - Step kinds: {"tool":NAME,"input":{...},"server"?:S,"text"?:preamble} (one function_call; the
//   bare NAME is resolved against the offered tools: a function of that name, then a tool NAME in
//   a namespace "mcp__<server>" (any server unless "server" is given), then a function
//   "mcp__<server>__NAME"); {"calls":[...]} (parallel calls); {"text":"done"};
//   {"error":{"status":500,"type":..,"message":..}}; {"hang":true}. Any step may carry
//   "delay_ms", "wait_for":"NAME" (held until POST /control/release {"name":"NAME"}),
//   "repeat_until":"regex" (one-call steps: played again until its latest result matches) and
//   "usage":{"input_tokens":N,"cached_tokens":N,"output_tokens":N,"reasoning_tokens":N} (the
//   figures to report for that response instead of the computed ones).
// - Placeholders in "input" and "text": {{task_id}}, {{agent_id}} (from "Task ID: X" / "Agent ID:
//   X" in the first prompt), {{step}}, and one per "extract" regex (first capture group; looked for
//   in the first prompt, then every user text, the developer instructions and the tool results, so
//   a step can use what an earlier call returned, e.g. the task id create_real_task made).
// - "branches":[{"match":regex,"steps":[...]}] pick a script per conversation from its first
//   prompt; "turns":[{"match":regex,"steps":[...]}] play the turn whose match finds the LATEST
//   user text some turn's match finds (a resumed `codex exec resume` conversation carries the
//   earlier turns' items before the new prompt), counting only the tool results after it; the
//   log then has "turn" and "history" {user_texts, call_ids}.
// - A top-level "error" makes every request fail with that HTTP error.
// The "first prompt" is the first user text that is not a block Codex adds itself
// (<environment_context>, <user_instructions>, "# AGENTS.md instructions ...").

import http from "node:http";
import fs from "node:fs";
import crypto from "node:crypto";
import { substitute, requestLogger, shutdownServer } from "./lib/model_script.mjs";

const progress = (status, message, value) => ({
  tool: "update_agent_progress",
  input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status, message, progress: value },
});
const SCENARIOS = {
  text: { steps: [{ text: "Done. Nothing to do." }] },
  progress: {
    steps: [progress("working", "Started work", 10), progress("completed", "Finished work", 100),
            { text: "Task complete." }],
  },
  finding: {
    steps: [
      progress("working", "Investigating", 25),
      { tool: "report_agent_finding",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", finding_type: "insight",
                 severity: "low", message: "Scripted finding", data: { source: "openai_model_server" } } },
      progress("completed", "Done", 100),
      { text: "Task complete." },
    ],
  },
  progress_then_hang: { steps: [progress("working", "Working for a long time", 5), { hang: true }] },
  hang: { steps: [{ hang: true }] },
  error: { steps: [], error: { status: 500, type: "server_error", message: "Internal server error (scripted)" } },
  bad_request: { steps: [], error: { status: 400, type: "invalid_request_error", message: "Bad request (scripted)" } },
};

// ---------- options ----------
function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fail(`missing value after ${a}`);
      return argv[++i];
    };
    if (a === "--port") o.port = next();
    else if (a === "--host") o.host = next();
    else if (a === "--scenario") o.scenario = next();
    else if (a === "--script") o.script = next();
    else if (a === "--log") o.log = next();
    else if (a === "--exit-on-stdin-eof") o.exitOnEof = true;
    else if (a === "--help" || a === "-h") { process.stderr.write(HELP); process.exit(0); }
    else if (a.startsWith("-")) fail(`unknown option ${a}`);
    else if (a.endsWith(".json") || fs.existsSync(a)) o.script = a;
    else o.scenario = a;
  }
  return o;
}
const HELP = `usage: openai_model_server.mjs [--port N] [--host H] [--scenario NAME|--script FILE] [--log FILE] [--exit-on-stdin-eof]
scenarios: ${Object.keys(SCENARIOS).join(", ")}
`;
function fail(msg) {
  process.stderr.write(`openai_model_server: ${msg}\n${HELP}`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const env = process.env;
const port = Number(args.port ?? env.MODEL_PORT ?? 0);
const host = args.host ?? env.MODEL_HOST ?? "127.0.0.1";
const logPath = args.log ?? env.MODEL_LOG ?? "";
const exitOnEof = args.exitOnEof || env.MODEL_EXIT_ON_STDIN_EOF === "1";
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${args.port ?? env.MODEL_PORT}`);

function checkRegex(where, re) {
  try { new RegExp(re); } catch (e) { fail(`${where}: bad regex: ${e.message}`); }
}
function loadScript() {
  const isFile = v => v && (v.endsWith(".json") || v.includes("/"));
  const scriptPath = args.script ?? (isFile(args.scenario) ? args.scenario : undefined) ??
                     (args.scenario ? undefined : env.MODEL_SCRIPT ??
                      (isFile(env.MODEL_SCENARIO) ? env.MODEL_SCENARIO : undefined));
  if (!scriptPath) {
    const name = args.scenario ?? env.MODEL_SCENARIO ?? "progress";
    if (!SCENARIOS[name]) fail(`unknown scenario ${name}`);
    return { name, ...SCENARIOS[name] };
  }
  let s;
  try { s = JSON.parse(fs.readFileSync(scriptPath, "utf8")); }
  catch (e) { fail(`cannot load script ${scriptPath}: ${e.message}`); }
  if (!s || (!Array.isArray(s.steps) && !Array.isArray(s.branches) && !Array.isArray(s.turns)))
    fail(`script ${scriptPath} has no "steps", "branches" or "turns" array`);
  for (const source of [s, ...(s.branches ?? [])]) {
    for (const [i, t] of (source.turns ?? []).entries()) {
      if (!t || typeof t.match !== "string" || !Array.isArray(t.steps))
        fail(`script ${scriptPath}: turn ${i} needs a "match" string and a "steps" array`);
      checkRegex(`script ${scriptPath} turn ${i}`, t.match);
    }
    for (const [k, re] of Object.entries(source.extract ?? {})) checkRegex(`extract ${k}`, re);
  }
  for (const [i, b] of (s.branches ?? []).entries()) {
    if (!b || typeof b.match !== "string" || (!Array.isArray(b.steps) && !Array.isArray(b.turns)))
      fail(`script ${scriptPath}: branch ${i} needs a "match" string and a "steps" or "turns" array`);
    checkRegex(`script ${scriptPath} branch ${i}`, b.match);
  }
  return { name: scriptPath, ...s, steps: s.steps ?? [] };
}
const script = loadScript();

// ---------- logging ----------
const log = requestLogger(logPath);

// ---------- conversation analysis ----------
function textOf(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.filter(c => c && typeof c.text === "string").map(c => c.text).join("\n");
}
// Blocks Codex adds to the conversation itself, which are not the user's prompt.
function isHarnessText(text) {
  return /^\s*<(environment_context|user_instructions|skills_instructions|permissions instructions|turn_aborted)\b/.test(text) ||
         /^\s*# AGENTS\.md instructions/.test(text);
}
// Every item of the request, in order, as {kind, ...}: "user" (a prompt text), "system"
// (developer or harness text), "call" (a function_call), "result" (a function_call_output).
function itemsOf(body) {
  const out = [];
  for (const item of Array.isArray(body.input) ? body.input : []) {
    if (!item || typeof item !== "object") continue;
    if (item.type === "message" || (item.type === undefined && item.role)) {
      const text = textOf(item.content);
      if (item.role === "user" && !isHarnessText(text)) out.push({ kind: "user", text });
      else if (item.role !== "assistant") out.push({ kind: "system", text });
    } else if (item.type === "function_call") {
      out.push({ kind: "call", call_id: item.call_id, name: item.name, namespace: item.namespace });
    } else if (item.type === "function_call_output") {
      const output = typeof item.output === "string" ? item.output
        : typeof item.output?.content === "string" ? item.output.content : textOf(item.output);
      out.push({ kind: "result", call_id: item.call_id, text: output });
    }
  }
  return out;
}
const firstPrompt = items => items.find(i => i.kind === "user")?.text ?? "";

function extractVars(items, branch, instructions) {
  const first = firstPrompt(items);
  const all = [...items.filter(i => i.kind === "user").map(i => i.text),
               ...items.filter(i => i.kind === "system").map(i => i.text), instructions ?? "",
               ...items.filter(i => i.kind === "result").map(i => i.text)].join("\n");
  const patterns = { task_id: "Task ID: (\\S+)", agent_id: "Agent ID: (\\S+)", ...(script.extract ?? {}),
                     ...(branch?.extract ?? {}) };
  const vars = {};
  for (const [name, re] of Object.entries(patterns)) {
    const m = new RegExp(re).exec(first) ?? new RegExp(re).exec(all);
    if (m) vars[name] = m[1] ?? m[0];
  }
  return vars;
}
function callsOf(step) {
  if (Array.isArray(step.calls)) return step.calls;
  if (step.tool) return [{ tool: step.tool, input: step.input, server: step.server }];
  return [];
}
function chooseBranch(items) {
  const branches = script.branches ?? [];
  if (branches.length === 0) return { index: -1 };
  const first = firstPrompt(items);
  const index = branches.findIndex(b => new RegExp(b.match).test(first));
  return index >= 0 ? { index, branch: branches[index] } : { index: -1, none: true };
}
function chooseTurn(items, turns) {
  for (let i = items.length - 1; i >= 0; i--) {
    if (items[i].kind !== "user") continue;
    const turn = turns.findIndex(t => new RegExp(t.match).test(items[i].text));
    if (turn >= 0) return { turn, steps: turns[turn].steps, after: i };
  }
  return undefined;
}
function historyOf(items) {
  return {
    user_texts: items.filter(i => i.kind === "user").map(i => i.text.slice(0, 80)).filter(Boolean),
    call_ids: items.filter(i => i.kind === "call").map(i => i.call_id),
  };
}
function chooseStep(results, steps) {
  let consumed = 0;
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const need = callsOf(step).length;
    if (step.repeat_until !== undefined && need === 1) {
      const re = new RegExp(step.repeat_until);
      let j = consumed;
      while (j < results.length && !re.test(results[j])) j++;
      if (j >= results.length) return { index: i, step };
      consumed = j + 1;
      continue;
    }
    if (results.length < consumed + need || need === 0) return { index: i, step };
    consumed += need;
  }
  return { index: steps.length, step: { text: "Script finished." } };
}
// The offered tools: [{name, namespace?}] from function tools and namespace tools.
function offeredTools(body) {
  const out = [];
  for (const t of Array.isArray(body.tools) ? body.tools : []) {
    if (!t || typeof t.name !== "string") continue;
    if (t.type === "namespace") {
      for (const inner of Array.isArray(t.tools) ? t.tools : [])
        if (inner && typeof inner.name === "string") out.push({ name: inner.name, namespace: t.name });
    } else {
      out.push({ name: t.name });
    }
  }
  return out;
}
const qualified = t => (t.namespace ? `${t.namespace}__${t.name}` : t.name);
function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }
function resolveTool(tools, bare, server) {
  if (!server) {
    const plain = tools.find(t => !t.namespace && t.name === bare);
    if (plain) return plain;
  }
  const ns = new RegExp(`^mcp__${server ? escapeRe(server) : ".+?"}$`);
  const inNamespace = tools.find(t => t.namespace && ns.test(t.namespace) && t.name === bare);
  if (inNamespace) return inNamespace;
  const flat = new RegExp(`^mcp__${server ? escapeRe(server) : ".+?"}__${escapeRe(bare)}$`);
  return tools.find(t => !t.namespace && flat.test(t.name));
}

// ---------- response building ----------
function estimateTokens(body) {
  return Math.max(1, Math.ceil(JSON.stringify(body.input ?? []).length / 4 +
                               JSON.stringify(body.instructions ?? "").length / 4));
}
function callId(items, index, k) {
  const h = crypto.createHash("sha256").update(firstPrompt(items)).digest("hex").slice(0, 12);
  return `call_${h}_${index}_${k}`;
}
// {kind:"message", output:[items], summary} or {kind:"error"|"hang", ...}.
function plan(body) {
  const items = itemsOf(body);
  const tools = offeredTools(body);
  const summary = {
    model: body.model, stream: body.stream === true, items: items.length, tools: tools.length,
    mcp_tools: tools.filter(t => t.namespace?.startsWith("mcp__") || t.name.startsWith("mcp__")).map(qualified),
    prompt_head: firstPrompt(items).slice(0, 120),
  };
  if (script.error) return { kind: "error", error: script.error, summary: { ...summary, role: "any" } };
  const chosen = chooseBranch(items);
  if (script.branches) summary.branch = chosen.index;
  if (tools.length === 0) {
    const text = chosen.branch?.side_text ?? script.side_text ?? "OK";
    return { kind: "message", output: [{ type: "message", text }], summary: { ...summary, role: "side" } };
  }
  const turns = chosen.branch ? chosen.branch.turns : script.turns;
  const turn = turns ? chooseTurn(items, turns) : undefined;
  const resultTexts = (turn ? items.slice(turn.after + 1) : items).filter(i => i.kind === "result").map(i => i.text);
  const steps = turn ? turn.steps
    : turns ? [{ text: "No script turn matches this conversation." }]
    : chosen.branch ? chosen.branch.steps
    : chosen.none && script.steps.length === 0 ? [{ text: "No script branch matches this conversation." }]
    : script.steps;
  const { index, step } = chooseStep(resultTexts, steps);
  const vars = { ...extractVars(items, chosen.branch, body.instructions), step: String(index) };
  const base = { ...summary, role: "agent", tool_results: resultTexts.length, step: index, vars };
  if (turns) Object.assign(base, { turn: turn ? turn.turn : -1, history: historyOf(items) });
  const delayMs = Number(step.delay_ms ?? 0);
  if (step.error) return { kind: "error", error: step.error, delayMs, summary: base };
  if (step.hang) return { kind: "hang", summary: base };
  const waitFor = step.wait_for === undefined ? undefined : String(step.wait_for);
  const output = [];
  if (step.text !== undefined) output.push({ type: "message", text: substitute(String(step.text), vars) });
  const missing = [];
  callsOf(step).forEach((c, k) => {
    const tool = resolveTool(tools, c.tool, c.server);
    if (!tool) { missing.push(c.tool); return; }
    output.push({ type: "function_call", name: tool.name, namespace: tool.namespace,
                  call_id: callId(items, turn ? `${turn.turn}_${index}` : index, k),
                  arguments: JSON.stringify(substitute(c.input ?? {}, vars)) });
  });
  if (missing.length) {
    const text = `Cannot continue: tool(s) ${missing.join(", ")} not offered. Offered: ${tools.map(qualified).join(", ")}`;
    return { kind: "message", output: [{ type: "message", text }], delayMs, summary: { ...base, missing } };
  }
  return { kind: "message", output, delayMs, waitFor, usage: step.usage, summary: base };
}

const randomId = prefix => prefix + crypto.randomBytes(12).toString("hex");
// The usage reported for one response: the step's figures, or computed ones (a quarter of the
// input counted as cached, so a client that adds cached tokens to input is caught).
function usageFor(body, output, fixed) {
  const input = fixed?.input_tokens ?? estimateTokens(body);
  const cached = fixed?.cached_tokens ?? Math.floor(input / 4);
  const out = fixed?.output_tokens ?? Math.max(1, Math.ceil(JSON.stringify(output).length / 4));
  const reasoning = fixed?.reasoning_tokens ?? 0;
  return { input_tokens: input, input_tokens_details: { cached_tokens: cached }, output_tokens: out,
           output_tokens_details: { reasoning_tokens: reasoning }, total_tokens: input + out };
}
// The Responses API's item objects for the planned output.
function outputItems(output) {
  return output.map(o => (o.type === "message"
    ? { type: "message", id: randomId("msg_"), status: "completed", role: "assistant",
        content: [{ type: "output_text", text: o.text, annotations: [] }] }
    : { type: "function_call", id: randomId("fc_"), status: "completed", call_id: o.call_id, name: o.name,
        ...(o.namespace ? { namespace: o.namespace } : {}), arguments: o.arguments }));
}
function responseObject(id, body, status, output, usage) {
  return { id, object: "response", created_at: Math.floor(Date.now() / 1000), status,
           model: body.model ?? "scripted", output, usage: usage ?? null, error: null,
           parallel_tool_calls: true, tool_choice: "auto", tools: [] };
}
function sendJson(res, status, obj) {
  const data = JSON.stringify(obj);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data),
                          "x-request-id": randomId("req_") });
  res.end(data);
}
function sendError(res, err) {
  const status = Number(err.status ?? 500);
  const headers = { "content-type": "application/json", "x-request-id": "req_scripted" };
  if (status === 429) headers["retry-after"] = "0";
  const data = JSON.stringify({ error: { message: err.message ?? "Scripted error", type: err.type ?? "server_error",
                                         param: null, code: err.code ?? null } });
  res.writeHead(status, headers);
  res.end(data);
}
function chunks(s, n) {
  const out = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out.length ? out : [""];
}
function sendResponse(res, body, p, usage) {
  const id = randomId("resp_");
  const items = outputItems(p.output);
  if (body.stream !== true) return sendJson(res, 200, responseObject(id, body, "completed", items, usage));
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache",
                       connection: "keep-alive", "x-request-id": randomId("req_") });
  let sequence = 0;
  const ev = (type, data) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...data })}\n\n`);
  ev("response.created", { response: responseObject(id, body, "in_progress", []) });
  items.forEach((item, output_index) => {
    if (item.type === "message") {
      const text = item.content[0].text;
      ev("response.output_item.added", { output_index, item: { ...item, status: "in_progress", content: [] } });
      const part = { type: "output_text", text: "", annotations: [] };
      ev("response.content_part.added", { item_id: item.id, output_index, content_index: 0, part });
      for (const delta of chunks(text, 40))
        ev("response.output_text.delta", { item_id: item.id, output_index, content_index: 0, delta });
      ev("response.output_text.done", { item_id: item.id, output_index, content_index: 0, text });
      ev("response.content_part.done", { item_id: item.id, output_index, content_index: 0, part: { ...part, text } });
    } else {
      ev("response.output_item.added", { output_index, item: { ...item, status: "in_progress", arguments: "" } });
      for (const delta of chunks(item.arguments, 40))
        ev("response.function_call_arguments.delta", { item_id: item.id, output_index, delta });
      ev("response.function_call_arguments.done", { item_id: item.id, output_index, arguments: item.arguments });
    }
    ev("response.output_item.done", { output_index, item });
  });
  ev("response.completed", { response: responseObject(id, body, "completed", items, usage) });
  res.end();
}

// ---------- server ----------
const hanging = new Set();
const released = new Set();
let waiting = [];
function release(name) {
  released.add(name);
  const ready = waiting.filter(x => x.waitFor === name);
  waiting = waiting.filter(x => x.waitFor !== name);
  for (const x of ready) x.go();
  return ready.length;
}
function hold(res) {
  hanging.add(res);
  res.on("close", () => hanging.delete(res));
}
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", d => (raw += d));
  req.on("end", () => {
    let body = {};
    if (raw) {
      try { body = JSON.parse(raw); }
      catch {
        log({ method: req.method, path: url.pathname, error: "bad json" });
        return sendError(res, { status: 400, type: "invalid_request_error", message: "body is not JSON" });
      }
    }
    if (req.method === "POST" && url.pathname === "/v1/responses") {
      let p;
      try { p = plan(body); }
      catch (e) {
        log({ method: req.method, path: url.pathname, error: String(e.stack ?? e) });
        return sendError(res, { status: 500, type: "server_error", message: `openai_model_server bug: ${e.message}` });
      }
      const usage = p.kind === "message" ? usageFor(body, p.output, p.usage) : undefined;
      log({ method: req.method, path: url.pathname, action: p.kind, status: p.error?.status,
            output: p.output?.map(o => (o.type === "function_call" ? `function_call:${qualified(o)}` : o.type)),
            usage, ...p.summary });
      if (p.kind === "hang") return hold(res);
      const send = () => (p.kind === "error" ? sendError(res, p.error) : sendResponse(res, body, p, usage));
      const go = () => (p.delayMs > 0 ? setTimeout(send, p.delayMs) : send());
      if (p.waitFor !== undefined && !released.has(p.waitFor)) {
        log({ event: "held", step: p.summary.step, branch: p.summary.branch, wait_for: p.waitFor });
        hold(res);
        waiting.push({ waitFor: p.waitFor, go: () => { hanging.delete(res); if (!res.destroyed) go(); } });
        return;
      }
      return go();
    }
    if (req.method === "POST" && url.pathname === "/control/release") {
      const name = String(body.name ?? "");
      const n = release(name);
      log({ method: req.method, path: url.pathname, event: "release", name, released: n });
      return sendJson(res, 200, { released: n });
    }
    log({ method: req.method, path: url.pathname + url.search, status: 404 });
    sendError(res, { status: 404, type: "not_found_error", message: `no route ${req.method} ${url.pathname}` });
  });
});

const shutdown = code => shutdownServer(server, hanging, code);
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
if (exitOnEof) {
  process.stdin.on("end", () => shutdown(0));
  process.stdin.on("error", () => shutdown(0));
  process.stdin.resume();
}
server.on("error", e => fail(`cannot listen on ${host}:${port}: ${e.message}`));
server.listen(port, host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
  log({ event: "listening", host, port: server.address().port, scenario: script.name });
});
