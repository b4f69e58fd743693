#!/usr/bin/env node
// Scripted, deterministic stand-in for the Anthropic Messages API, for driving a
// real agent CLI (Claude Code 2.0.30 and 2.1.332) offline. Node built-ins only.
//
// Usage:
//   node model_server.mjs [--port N] [--host H] [--scenario NAME | --script FILE | NAME | FILE.json]
//                         [--log FILE] [--exit-on-stdin-eof]
// Environment (flags win): MODEL_PORT, MODEL_HOST, MODEL_SCENARIO, MODEL_SCRIPT, MODEL_LOG,
//   MODEL_EXIT_ON_STDIN_EOF=1.
//
// Stdout carries exactly one line, {"port":N}, once the server listens (read it to find the port
// when listening on port 0). Request summaries go to stderr, or are appended as JSON lines to
// MODEL_LOG / --log.
//
// Endpoints: POST /v1/messages (any query, e.g. ?beta=true; streaming SSE or plain JSON),
// POST /v1/messages/count_tokens -> {"input_tokens":N}, HEAD|GET /api/hello -> 200 {} (Claude
// Code 2.1's connectivity check), POST /control/release (see "wait_for"); everything else 404
// JSON. Every request is logged; --dump DIR (MODEL_DUMP_DIR) also writes each one's method, path,
// headers and body to DIR/NNNN.json.
//
// Behaviour. A script is {"steps":[...], "extract"?:{name:regex}, "side_text"?:str, "error"?:{...}}.
// - A request WITHOUT tools (the CLI's side requests: titles, quota checks) gets a short text
//   answer with end_turn.
// - A request WITH tools is an agent turn. The step to play is chosen statelessly from the number
//   of tool_result blocks already in the conversation: step i is played once the tool calls of
//   steps 0..i-1 all have results. Past the last step the model says "Script finished." and ends.
// - Step kinds:
//     {"tool":"update_agent_progress","input":{...},"server"?:"herd","text"?:"preamble"}
//         one tool_use block. The bare name is resolved against the request's tools: an exact
//         name match first, then "mcp__<server>__<name>" (any server unless "server" is given).
//         If the tool is not offered, the model answers with a text saying so and end_turn.
//     {"calls":[{"tool":..,"input":..,"server"?:..}, ...],"text"?:..}   parallel tool_use blocks.
//     {"text":"done"}                                  final text, end_turn.
//     {"error":{"status":500,"type":"api_error","message":"..."}}   HTTP error for that turn.
//     {"hang":true}                                    never answer (the CLI waits until killed).
//   Any step may carry "fail_stream":{"status":..,"type":..,"message":..}: a streaming request
//   for that step gets the HTTP error, a non-streaming one gets the step's normal answer (the CLI
//   retries a failed stream without streaming).
//   Any step may carry "delay_ms" (the response is held that long before it starts).
//   A tool the request does not offer but lists as deferred (Claude Code 2.1: MCP tools are named
//   in a text, "The following deferred tools are now available via ToolSearch: ...", and a
//   ToolSearch tool is offered) is loaded first: the model answers with a ToolSearch call
//   {"query":"select:NAME,..."} (once per tool; its tool_use id carries "_ts_", its result does
//   not count as a step's, and the request is logged with "tool_search":[NAME,...]), then plays
//   the step once the CLI offers the tool.
//   A one-call step may carry "repeat_until":"regex": it is played again (a polling loop, e.g.
//   with "delay_ms" as the interval) until the text of its latest tool result matches.
//   Any step may carry "wait_for":"NAME": its response is held until the test calls
//   POST /control/release with {"name":"NAME"} (answered {"released":<held responses let go>});
//   once released, a name stays released. This lets a test order agents without timing, e.g.
//   hold a parent's last turn until it has seen its child exit.
// - Strings in "input" and "text" may use {{task_id}}, {{agent_id}} (from "Task ID: X" and
//   "Agent ID: X" lines of the first user message), {{step}}, and {{name}} for each extra
//   "extract" regex (its first capture group; looked for in the first user message, then the
//   other user texts, then the system prompt). A placeholder with no value is left as is.
// - A top-level "error" makes EVERY request (side requests included) fail with that HTTP error.
// - Per-conversation scripts: instead of (or besides) "steps", a script may have
//   "branches":[{"match":"regex","steps":[...],"extract"?:{...},"side_text"?:str}, ...]. Each
//   conversation plays the steps of the FIRST branch whose "match" regex finds a match in the
//   text of the conversation's first user message (so one server can drive a parent agent and
//   its child differently, e.g. "Parent: orchestrator" vs "Parent: \\S+"). A branch's "extract"
//   adds to the top-level one. With no matching branch the top-level "steps" are played, or, if
//   there are none, the model says "No script branch matches this conversation." and ends.
//   Side requests (no tools) pick a branch the same way for "side_text".
// - Conversations of several turns (a resumed session: `claude --resume`): instead of "steps",
//   the script or a branch may have "turns":[{"match":"regex","steps":[...]}, ...]. The turn
//   played is the one whose "match" finds the LATEST user text that some turn's "match" finds
//   (a resumed conversation carries the earlier turns' messages before the new prompt), and its
//   steps count only the tool results after that user message. The request's summary logs
//   "turn", and "history": the heads of every user text and the ids of every tool_use already in
//   the conversation, so a test can check what a resumed turn was sent.
// Built-in scenarios: see SCENARIOS below.

import http from "node:http";
import fs from "node:fs";
import crypto from "node:crypto";
import { substitute, requestLogger, shutdownServer } from "./lib/model_script.mjs";

const SCENARIOS = {
  // Finish at once with text, no tool call.
  text: { steps: [{ text: "Done. Nothing to do." }] },
  // Report progress twice through MCP, then finish.
  progress: {
    steps: [
      { tool: "update_agent_progress",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status: "working",
                 message: "Started work", progress: 10 } },
      { tool: "update_agent_progress",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status: "completed",
                 message: "Finished work", progress: 100 } },
      { text: "Task complete." },
    ],
  },
  // Progress, a finding, completion.
  finding: {
    steps: [
      { tool: "update_agent_progress",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status: "working",
                 message: "Investigating", progress: 25 } },
      { tool: "report_agent_finding",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", finding_type: "insight",
                 severity: "low", message: "Scripted finding", data: { source: "model_server" } } },
      { tool: "update_agent_progress",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status: "completed",
                 message: "Done", progress: 100 } },
      { text: "Task complete." },
    ],
  },
  // Ask herd for a child agent, then finish.
  spawn_child: {
    steps: [
      { tool: "spawn_child_agent",
        input: { task_id: "{{task_id}}", parent_agent_id: "{{agent_id}}",
                 child_agent_type: "helper", child_prompt: "Help the parent agent {{agent_id}}." } },
      { text: "Child requested." },
    ],
  },
  // Report "working", then never answer again: an agent that stays alive until killed.
  progress_then_hang: {
    steps: [
      { tool: "update_agent_progress",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status: "working",
                 message: "Working for a long time", progress: 5 } },
      { hang: true },
    ],
  },
  // Agent turns are never answered (side requests still are).
  hang: { steps: [{ hang: true }] },
  // Every request fails. 500 and 529 are retried by the CLI (CLAUDE_CODE_MAX_RETRIES, default 10,
  // with backoff); 400 is not retried.
  error: { steps: [], error: { status: 500, type: "api_error", message: "Internal server error (scripted)" } },
  overloaded: { steps: [], error: { status: 529, type: "overloaded_error", message: "Overloaded (scripted)" } },
  bad_request: { steps: [], error: { status: 400, type: "invalid_request_error", message: "Bad request (scripted)" } },
};
SCENARIOS.error500 = SCENARIOS.error;

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
    else if (a === "--scenario") o.scenario = next();   // a NAME, or a FILE.json like --script
    else if (a === "--script") o.script = next();
    else if (a === "--log") o.log = next();
    else if (a === "--dump") o.dump = next();
    else if (a === "--exit-on-stdin-eof") o.exitOnEof = true;
    else if (a === "--help" || a === "-h") { process.stderr.write(HELP); process.exit(0); }
    else if (a.startsWith("-")) fail(`unknown option ${a}`);
    else if (a.endsWith(".json") || fs.existsSync(a)) o.script = a;
    else o.scenario = a;
  }
  return o;
}
const HELP = `usage: model_server.mjs [--port N] [--host H] [--scenario NAME|--script FILE] [--log FILE] [--exit-on-stdin-eof]
scenarios: ${Object.keys(SCENARIOS).join(", ")}
`;
function fail(msg) {
  process.stderr.write(`model_server: ${msg}\n${HELP}`);
  process.exit(2);
}

const args = parseArgs(process.argv.slice(2));
const env = process.env;
const port = Number(args.port ?? env.MODEL_PORT ?? 0);
const host = args.host ?? env.MODEL_HOST ?? "127.0.0.1";
const logPath = args.log ?? env.MODEL_LOG ?? "";
// MODEL_DUMP_DIR / --dump DIR: every request's method, path, headers and body, one file each.
const dumpDir = args.dump ?? env.MODEL_DUMP_DIR ?? "";
let dumped = 0;
const exitOnEof = args.exitOnEof || env.MODEL_EXIT_ON_STDIN_EOF === "1";
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${args.port ?? env.MODEL_PORT}`);

function loadScript() {
  const isFile = v => v && (v.endsWith(".json") || v.includes("/"));
  const scriptPath = args.script ?? (isFile(args.scenario) ? args.scenario : undefined) ??
                     (args.scenario ? undefined : env.MODEL_SCRIPT ??
                      (isFile(env.MODEL_SCENARIO) ? env.MODEL_SCENARIO : undefined));
  if (scriptPath) {
    let s;
    try { s = JSON.parse(fs.readFileSync(scriptPath, "utf8")); }
    catch (e) { fail(`cannot load script ${scriptPath}: ${e.message}`); }
    if (!s || (!Array.isArray(s.steps) && !Array.isArray(s.branches) && !Array.isArray(s.turns)))
      fail(`script ${scriptPath} has no "steps", "branches" or "turns" array`);
    for (const source of [s, ...(s.branches ?? [])]) {
      for (const [i, t] of (source.turns ?? []).entries()) {
        if (!t || typeof t.match !== "string" || !Array.isArray(t.steps))
          fail(`script ${scriptPath}: turn ${i} needs a "match" string and a "steps" array`);
        try { new RegExp(t.match); } catch (e) { fail(`script ${scriptPath}: bad turn ${i} regex: ${e.message}`); }
      }
    }
    for (const [i, b] of (s.branches ?? []).entries()) {
      if (!b || typeof b.match !== "string" || !Array.isArray(b.steps))
        fail(`script ${scriptPath}: branch ${i} needs a "match" string and a "steps" array`);
      try { new RegExp(b.match); } catch (e) { fail(`script ${scriptPath}: bad branch ${i} regex: ${e.message}`); }
    }
    return { name: scriptPath, ...s, steps: s.steps ?? [] };
  }
  const name = args.scenario ?? env.MODEL_SCENARIO ?? "progress";
  if (!SCENARIOS[name]) fail(`unknown scenario ${name}`);
  return { name, ...SCENARIOS[name] };
}
const script = loadScript();
for (const source of [script, ...(script.branches ?? [])]) {
  for (const [k, re] of Object.entries(source.extract ?? {})) {
    try { new RegExp(re); } catch (e) { fail(`bad extract regex ${k}: ${e.message}`); }
  }
}

// ---------- logging ----------
const log = requestLogger(logPath);

// ---------- conversation analysis ----------
function textOf(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.filter(b => b && b.type === "text").map(b => b.text).join("\n");
}
function extractVars(messages, branch, system = "") {
  const firstUser = messages.find(m => m.role === "user");
  const first = firstUser ? textOf(firstUser.content) : "";
  // Then the other user texts, then the system prompt (Claude Code's names the working directory;
  // 2.1 says it in a "system" message of the conversation instead).
  const all = [...messages.filter(m => m.role === "user").map(m => textOf(m.content)),
               ...messages.filter(m => m.role === "system").map(m => textOf(m.content)), textOf(system)].join("\n");
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
// The branch for a conversation: the first whose "match" regex matches the first user message.
// Returns {index, branch} (index -1 and branch undefined when there are no branches), or
// {index: -1, none: true} when there are branches but none matches.
function chooseBranch(messages) {
  const branches = script.branches ?? [];
  if (branches.length === 0) return { index: -1 };
  const first = textOf(messages.find(m => m.role === "user")?.content ?? "");
  const index = branches.findIndex(b => new RegExp(b.match).test(first));
  return index >= 0 ? { index, branch: branches[index] } : { index: -1, none: true };
}
// The turn of a conversation whose source has "turns": the turn whose match finds the latest
// user text any turn's match finds. Returns {turn, steps, after} (after: that message's index),
// or undefined when no user text matches.
function chooseTurn(messages, turns) {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i].role !== "user") continue;
    const text = textOf(messages[i].content);
    const turn = turns.findIndex(t => new RegExp(t.match).test(text));
    if (turn >= 0) return { turn, steps: turns[turn].steps, after: i };
  }
  return undefined;
}
// A user message's own text: without the <system-reminder> blocks Claude Code 2.1 puts before
// the prompt (git attribution and the like).
function userTextOf(content) {
  if (!Array.isArray(content)) return textOf(content);
  return textOf(content.filter(b => !(b && b.type === "text" && /^\s*<system-reminder>/.test(b.text ?? ""))));
}
// What a request carries from before: each user text's head and each tool_use id.
function historyOf(messages) {
  return {
    user_texts: messages.filter(m => m.role === "user").map(m => userTextOf(m.content).slice(0, 80))
      .filter(Boolean),
    tool_use_ids: messages.filter(m => m.role === "assistant" && Array.isArray(m.content))
      .flatMap(m => m.content.filter(b => b && b.type === "tool_use" && !isToolSearchId(b.id)).map(b => b.id)),
  };
}
// The text of each tool_result in the conversation, in order; the results of the ToolSearch
// calls the server made itself to load deferred tools (see deferredToolNames) do not count.
function toolResultTexts(messages) {
  const texts = [];
  for (const m of messages) {
    if (m.role !== "user" || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b && b.type === "tool_result" && !isToolSearchId(b.tool_use_id)) texts.push(textOf(b.content));
    }
  }
  return texts;
}
// Claude Code 2.1 sends MCP tools (and some of its own) as "deferred": only their names, listed in
// a text after "The following deferred tools are now available via ToolSearch", with a ToolSearch
// tool to load their schemas ({"query":"select:NAME,..."}); once loaded they are in the next
// request's tools. Returns the names listed (one per line in that text).
function deferredToolNames(messages, system) {
  const texts = [textOf(system), ...messages.map(m => textOf(m.content))];
  const names = new Set();
  for (const text of texts) {
    const at = text.indexOf("deferred tools are now available via ToolSearch");
    if (at < 0) continue;
    const lines = text.slice(at).split("\n").slice(1);
    for (const line of lines) {
      if (/^[A-Za-z][\w-]*$/.test(line.trim())) names.add(line.trim());
      else if (names.size > 0 && line.trim() === "") break;
    }
  }
  return [...names];
}
const TOOL_SEARCH_MARK = "_ts_";
function isToolSearchId(id) { return typeof id === "string" && id.includes(TOOL_SEARCH_MARK); }
// The tool names the server already asked ToolSearch for in this conversation.
function searchedTools(messages) {
  const names = new Set();
  for (const m of messages) {
    if (m.role !== "assistant" || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b && b.type === "tool_use" && isToolSearchId(b.id) && typeof b.input?.query === "string")
        for (const n of b.input.query.replace(/^select:/, "").split(",")) names.add(n.trim());
    }
  }
  return names;
}
// Step i is due once the tool results of steps 0..i-1 are all in the conversation (a
// repeat_until step's results last until one matches).
function chooseStep(results, steps = script.steps) {
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
function resolveTool(toolNames, bare, server) {
  if (!server && toolNames.includes(bare)) return bare;
  const re = new RegExp(`^mcp__${server ? escapeRe(server) : ".+?"}__${escapeRe(bare)}$`);
  return toolNames.find(n => re.test(n));
}
function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

// ---------- response building ----------
function estimateTokens(body) {
  return Math.max(1, Math.ceil(JSON.stringify(body.messages ?? []).length / 4 +
                               JSON.stringify(body.system ?? "").length / 4));
}
function toolUseId(messages, index, k) {
  // Deterministic and unique within a conversation: a step played again (repeat_until) gets new
  // ids, since the count of tool results so far is part of them. (With one id per step, Claude
  // Code 2.1.332's requests stopped growing on a repeated step: the tool results they carried
  // stayed at the same count, and a repeat_until step never saw its newest result.)
  const h = crypto.createHash("sha256").update(textOf(messages[0]?.content ?? "")).digest("hex").slice(0, 12);
  const results = messages.reduce((n, m) => n + (m.role === "user" && Array.isArray(m.content)
    ? m.content.filter(b => b && b.type === "tool_result").length : 0), 0);
  return `toolu_${h}_${index}_${k}_r${results}`;
}
// Returns {kind:"message", content:[...], stop_reason, summary} or {kind:"error"|"hang", ...}.
function plan(body) {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const tools = Array.isArray(body.tools) ? body.tools : [];
  const toolNames = tools.map(t => t && t.name).filter(Boolean);
  const summary = {
    model: body.model, stream: body.stream === true, messages: messages.length,
    tools: toolNames.length, mcp_tools: toolNames.filter(n => n.startsWith("mcp__")),
    prompt_head: userTextOf(messages.find(m => m.role === "user")?.content ?? "").slice(0, 120),
  };
  if (script.error) return { kind: "error", error: script.error, summary: { ...summary, role: "any" } };
  const chosen = chooseBranch(messages);
  if (script.branches) summary.branch = chosen.index;
  if (toolNames.length === 0) {
    const text = chosen.branch?.side_text ?? script.side_text ?? "OK";
    return { kind: "message", content: [{ type: "text", text }], stop_reason: "end_turn",
             summary: { ...summary, role: "side" } };
  }
  const turns = chosen.branch ? chosen.branch.turns : script.turns;
  const turn = turns ? chooseTurn(messages, turns) : undefined;
  const resultTexts = toolResultTexts(turn ? messages.slice(turn.after + 1) : messages);
  const results = resultTexts.length;
  const steps = turn ? turn.steps
    : turns ? [{ text: "No script turn matches this conversation." }]
    : chosen.branch ? chosen.branch.steps
    : chosen.none && script.steps.length === 0 ? [{ text: "No script branch matches this conversation." }]
    : script.steps;
  const { index, step } = chooseStep(resultTexts, steps);
  const vars = { ...extractVars(messages, chosen.branch, body.system ?? ""), step: String(index) };
  const base = { ...summary, role: "agent", tool_results: results, step: index, vars };
  if (turns) Object.assign(base, { turn: turn ? turn.turn : -1, history: historyOf(messages) });
  const delayMs = Number(step.delay_ms ?? 0);
  if (step.error) return { kind: "error", error: step.error, delayMs, summary: base };
  if (step.fail_stream && body.stream === true)
    return { kind: "error", error: step.fail_stream, delayMs, summary: { ...base, fail_stream: true } };
  if (step.hang) return { kind: "hang", summary: base };
  const waitFor = step.wait_for === undefined ? undefined : String(step.wait_for);
  const content = [];
  if (step.text !== undefined) content.push({ type: "text", text: substitute(String(step.text), vars) });
  const calls = callsOf(step);
  if (calls.length === 0)
    return { kind: "message", content, stop_reason: "end_turn", delayMs, waitFor, summary: base };
  const missing = [];
  const deferred = [];
  const deferredNames = toolNames.includes("ToolSearch") ? deferredToolNames(messages, body.system) : [];
  const searched = searchedTools(messages);
  calls.forEach((c, k) => {
    const name = resolveTool(toolNames, c.tool, c.server);
    if (!name) {
      // Not offered yet: a deferred tool is loaded with ToolSearch first (once), as a model would.
      const later = resolveTool(deferredNames, c.tool, c.server);
      if (later && !searched.has(later)) { if (!deferred.includes(later)) deferred.push(later); }
      else missing.push(c.tool);
      return;
    }
    content.push({ type: "tool_use", id: toolUseId(messages, turn ? `${turn.turn}_${index}` : index, k), name,
                   input: substitute(c.input ?? {}, vars) });
  });
  if (deferred.length && !missing.length) {
    const id = toolUseId(messages, `${TOOL_SEARCH_MARK}${turn ? `${turn.turn}_${index}` : index}`, 0);
    return { kind: "message", stop_reason: "tool_use", delayMs: 0,
             content: [{ type: "tool_use", id, name: "ToolSearch",
                         input: { query: `select:${deferred.join(",")}`, max_results: deferred.length } }],
             summary: { ...base, tool_search: deferred } };
  }
  if (missing.length) {
    const text = `Cannot continue: tool(s) ${missing.join(", ")} not offered. Offered: ${toolNames.join(", ")}`;
    return { kind: "message", content: [{ type: "text", text }], stop_reason: "end_turn", delayMs,
             summary: { ...base, missing } };
  }
  return { kind: "message", content, stop_reason: "tool_use", delayMs, waitFor, summary: base };
}

function messageId() { return "msg_" + crypto.randomBytes(12).toString("hex"); }
function usage(inputTokens, outputTokens) {
  return { input_tokens: inputTokens, output_tokens: outputTokens,
           cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
}
function outputTokens(content) { return Math.max(1, Math.ceil(JSON.stringify(content).length / 4)); }

function sendJson(res, status, obj) {
  const data = JSON.stringify(obj);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data),
                          "request-id": "req_" + crypto.randomBytes(8).toString("hex") });
  res.end(data);
}
function sendError(res, err) {
  const status = Number(err.status ?? 500);
  const headers = { "content-type": "application/json", "request-id": "req_scripted" };
  if (status === 429 || status === 529) headers["retry-after"] = "0";
  const data = JSON.stringify({ type: "error", error: { type: err.type ?? "api_error",
                                                        message: err.message ?? "Scripted error" } });
  res.writeHead(status, headers);
  res.end(data);
}
function sendMessage(res, body, p) {
  const model = body.model ?? "claude-scripted";
  const inTok = estimateTokens(body);
  const outTok = outputTokens(p.content);
  if (body.stream !== true) {
    return sendJson(res, 200, { id: messageId(), type: "message", role: "assistant", model,
                                content: p.content, stop_reason: p.stop_reason, stop_sequence: null,
                                usage: usage(inTok, outTok) });
  }
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache",
                       connection: "keep-alive", "request-id": "req_" + crypto.randomBytes(8).toString("hex") });
  const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  ev("message_start", { message: { id: messageId(), type: "message", role: "assistant", model, content: [],
                                   stop_reason: null, stop_sequence: null, usage: usage(inTok, 1) } });
  p.content.forEach((block, index) => {
    if (block.type === "text") {
      ev("content_block_start", { index, content_block: { type: "text", text: "" } });
      for (const piece of chunks(block.text, 40))
        ev("content_block_delta", { index, delta: { type: "text_delta", text: piece } });
    } else {
      ev("content_block_start", { index, content_block: { type: "tool_use", id: block.id, name: block.name, input: {} } });
      for (const piece of chunks(JSON.stringify(block.input), 40))
        ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: piece } });
    }
    ev("content_block_stop", { index });
  });
  ev("message_delta", { delta: { stop_reason: p.stop_reason, stop_sequence: null }, usage: { output_tokens: outTok } });
  ev("message_stop", {});
  res.end();
}
function chunks(s, n) {
  const out = [];
  for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
  return out.length ? out : [""];
}

// ---------- server ----------
const hanging = new Set();
// "wait_for": names released so far, and the responses held until their name is released.
const released = new Set();
let waiting = [];
function release(name) {
  released.add(name);
  const ready = waiting.filter(x => x.waitFor === name);
  waiting = waiting.filter(x => x.waitFor !== name);
  for (const x of ready) x.go();
  return ready.length;
}
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", d => (raw += d));
  req.on("end", () => {
    if (dumpDir) {
      fs.mkdirSync(dumpDir, { recursive: true });
      const file = `${dumpDir}/${String(++dumped).padStart(4, "0")}.json`;
      fs.writeFileSync(file, JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: raw }, null, 1));
    }
    let body = {};
    if (raw) {
      try { body = JSON.parse(raw); }
      catch { log({ method: req.method, path: url.pathname, error: "bad json" });
              return sendJson(res, 400, { type: "error", error: { type: "invalid_request_error", message: "body is not JSON" } }); }
    }
    if (req.method === "POST" && url.pathname === "/v1/messages/count_tokens") {
      const n = estimateTokens(body);
      log({ method: req.method, path: url.pathname, input_tokens: n });
      return sendJson(res, 200, { input_tokens: n });
    }
    if (req.method === "POST" && url.pathname === "/v1/messages") {
      let p;
      try { p = plan(body); }
      catch (e) {
        log({ method: req.method, path: url.pathname, error: String(e.stack ?? e) });
        return sendError(res, { status: 500, type: "api_error", message: `model_server bug: ${e.message}` });
      }
      log({ method: req.method, path: url.pathname + url.search, user_agent: req.headers["user-agent"],
            beta: req.headers["anthropic-beta"], action: p.kind,
            stop_reason: p.stop_reason, blocks: p.content?.map(b => b.type === "tool_use" ? `tool_use:${b.name}` : b.type),
            status: p.error?.status, ...p.summary });
      if (p.kind === "hang") {
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      }
      const send = () => (p.kind === "error" ? sendError(res, p.error) : sendMessage(res, body, p));
      const go = () => (p.delayMs > 0 ? setTimeout(send, p.delayMs) : send());
      if (p.waitFor !== undefined && !released.has(p.waitFor)) {
        log({ event: "held", step: p.summary.step, branch: p.summary.branch, wait_for: p.waitFor });
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        waiting.push({ waitFor: p.waitFor, summary: p.summary, go: () => { hanging.delete(res); if (!res.destroyed) go(); } });
        return;
      }
      return go();
    }
    // Claude Code 2.1's connectivity check (HEAD /api/hello before its first request, unless
    // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is set).
    if ((req.method === "HEAD" || req.method === "GET") && url.pathname === "/api/hello") {
      log({ method: req.method, path: url.pathname + url.search, user_agent: req.headers["user-agent"], status: 200 });
      return sendJson(res, 200, {});
    }
    if (req.method === "POST" && url.pathname === "/control/release") {
      const name = String(body.name ?? "");
      const n = release(name);
      log({ method: req.method, path: url.pathname, event: "release", name, released: n });
      return sendJson(res, 200, { released: n });
    }
    log({ method: req.method, path: url.pathname + url.search, user_agent: req.headers["user-agent"], status: 404 });
    sendJson(res, 404, { type: "error", error: { type: "not_found_error", message: `no route ${req.method} ${url.pathname}` } });
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
