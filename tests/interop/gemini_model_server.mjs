#!/usr/bin/env node
// Scripted, deterministic stand-in for the Gemini API (generativelanguage v1beta), for driving the
// real Gemini CLI (0.61.0) offline. Node built-ins only. The sibling of model_server.mjs (the
// Anthropic Messages API for Claude Code), with the same script format for what it supports.
//
// Usage:
//   node gemini_model_server.mjs [--port N] [--host H] [--scenario NAME | --script FILE] [--log FILE]
// Environment (flags win): MODEL_PORT, MODEL_HOST, MODEL_SCENARIO, MODEL_SCRIPT, MODEL_LOG.
//
// Stdout carries exactly one line, {"port":N}, once the server listens. Request summaries go to
// stderr, or are appended as JSON lines to --log; each answered request's line has "usage": the
// usageMetadata it sent, so a test can add up what the CLI must report.
//
// Point the CLI at it with GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:<port> and GEMINI_API_KEY=<any>,
// plus security.auth.selectedType "gemini-api-key" in its settings (with the base URL alone the CLI
// picks the "gateway" auth type, which 0.61.0's non-interactive mode rejects: "Invalid auth method
// selected.").
//
// Endpoints (any model name, any query):
//   POST /v1beta/models/<model>:streamGenerateContent  server-sent events (alt=sse), one chunk
//   POST /v1beta/models/<model>:generateContent        one JSON response
//   POST /v1beta/models/<model>:countTokens            {"totalTokens":N}
//   everything else: 404 JSON.
//
// Behaviour. A script is {"steps":[...], "extract"?:{name:regex}, "side_text"?:str, "error"?:{...}}
// or {"turns":[{"match":regex,"steps":[...]}, ...], ...}, as in model_server.mjs:
// - A request WITHOUT function declarations is a side request (the CLI's routing classifier,
//   next-speaker checks, summaries). With a responseJsonSchema it gets the smallest JSON that the
//   schema accepts (enums: their first value; a "next_speaker" field: "user", so the turn ends);
//   otherwise "side_text" (default "OK").
// - A request WITH function declarations is an agent turn. Step i is played once the function
//   calls of steps 0..i-1 all have functionResponse parts in the conversation (stateless). Past the
//   last step the model says "Script finished.".
// - Steps: {"tool":NAME,"input":{...},"text"?:preamble} one functionCall; {"calls":[{tool,input},..]}
//   parallel calls; {"text":"done"} final text; {"error":{"status":500,"message":".."}} an HTTP
//   error for that turn; {"hang":true} never answered; any step may carry "delay_ms".
//   NAME is matched against the declared functions: exactly, else a declared name that ends in
//   "_NAME" or "__NAME" (how the CLI prefixes MCP tools). An undeclared tool makes the model say
//   "Cannot continue: tool(s) X not offered. Offered: ..." and stop.
// - "turns" (a resumed session, `gemini --resume <id>`): the turn played is the one whose "match"
//   finds the LATEST user text some turn's "match" finds; its steps count only the function
//   responses after that text. Logged as "turn", with "history" (every user text's head).
// - Placeholders in "input" and "text": {{task_id}}, {{agent_id}} (from "Task ID: X" / "Agent ID: X"
//   lines of the user texts), {{step}}, and {{name}} for each "extract" regex (first group).
// - A top-level "error" makes every request fail with it.
// - Usage: every answer carries usageMetadata {promptTokenCount: ceil(request chars / 4),
//   candidatesTokenCount: ceil(answer chars / 4), cachedContentTokenCount: floor(prompt / 8),
//   thoughtsTokenCount: 2, totalTokenCount: their sum (cached counted once, inside prompt)}.

import http from "node:http";
import fs from "node:fs";
import crypto from "node:crypto";
import { substitute, requestLogger, shutdownServer } from "./lib/model_script.mjs";

const SCENARIOS = {
  text: { steps: [{ text: "Done. Nothing to do." }] },
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
  hang: { steps: [{ hang: true }] },
  error: { steps: [], error: { status: 500, message: "Internal server error (scripted)" } },
  bad_request: { steps: [], error: { status: 400, message: "Bad request (scripted)" } },
};

function fail(message) {
  process.stderr.write(`gemini_model_server: ${message}\n`);
  process.exit(2);
}
function parseArgs(argv) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const next = () => (i + 1 < argv.length ? argv[++i] : fail(`missing value after ${flag}`));
    if (flag === "--port") options.port = next();
    else if (flag === "--host") options.host = next();
    else if (flag === "--scenario") options.scenario = next();
    else if (flag === "--script") options.script = next();
    else if (flag === "--log") options.log = next();
    else fail(`unknown argument ${flag}`);
  }
  return options;
}
const args = parseArgs(process.argv.slice(2));
const env = process.env;
const port = Number(args.port ?? env.MODEL_PORT ?? 0);
const host = args.host ?? env.MODEL_HOST ?? "127.0.0.1";
const logPath = args.log ?? env.MODEL_LOG ?? "";
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${args.port ?? env.MODEL_PORT}`);

function loadScript() {
  const named = args.scenario ?? env.MODEL_SCENARIO;
  const file = args.script ?? env.MODEL_SCRIPT ?? (named && (named.endsWith(".json") || named.includes("/")) ? named : undefined);
  if (file) {
    let script;
    try { script = JSON.parse(fs.readFileSync(file, "utf8")); }
    catch (e) { fail(`cannot load script ${file}: ${e.message}`); }
    if (!Array.isArray(script?.steps) && !Array.isArray(script?.turns))
      fail(`script ${file} has no "steps" or "turns" array`);
    for (const [i, turn] of (script.turns ?? []).entries()) {
      if (typeof turn?.match !== "string" || !Array.isArray(turn.steps))
        fail(`script ${file}: turn ${i} needs a "match" string and a "steps" array`);
    }
    return { name: file, ...script, steps: script.steps ?? [] };
  }
  const name = named ?? "progress";
  if (!SCENARIOS[name]) fail(`unknown scenario ${name}; built in: ${Object.keys(SCENARIOS).join(", ")}`);
  return { name, ...SCENARIOS[name] };
}
const script = loadScript();

const log = requestLogger(logPath);

// ---------- reading a request ----------
const partsOf = content => (Array.isArray(content?.parts) ? content.parts : []);
const textOfContent = content => partsOf(content).filter(p => typeof p.text === "string" && !p.thought)
  .map(p => p.text).join("\n");
// User texts (not function responses), each with the index of its content.
function userTexts(contents) {
  return contents.map((c, index) => ({ index, role: c.role, text: textOfContent(c) }))
    .filter(u => u.role === "user" && u.text);
}
function functionResponses(contents) {
  return contents.flatMap(c => partsOf(c).filter(p => p.functionResponse).map(p => p.functionResponse));
}
function declaredFunctions(body) {
  return (Array.isArray(body.tools) ? body.tools : [])
    .flatMap(t => (Array.isArray(t?.functionDeclarations) ? t.functionDeclarations : []))
    .map(f => f?.name).filter(Boolean);
}
function resolveTool(names, bare) {
  if (names.includes(bare)) return bare;
  return names.find(n => n.endsWith(`__${bare}`) || n.endsWith(`_${bare}`));
}
function extractVars(texts) {
  const patterns = { task_id: "Task ID: (\\S+)", agent_id: "Agent ID: (\\S+)", ...(script.extract ?? {}) };
  const vars = {};
  for (const [name, re] of Object.entries(patterns)) {
    for (const { text } of texts) {
      const m = new RegExp(re).exec(text);
      if (m) { vars[name] = m[1] ?? m[0]; break; }
    }
  }
  return vars;
}
const callsOf = step => (Array.isArray(step.calls) ? step.calls
  : step.tool ? [{ tool: step.tool, input: step.input }] : []);
function chooseStep(results, steps) {
  let consumed = 0;
  for (let i = 0; i < steps.length; i++) {
    const need = callsOf(steps[i]).length;
    if (need === 0 || results < consumed + need) return { index: i, step: steps[i] };
    consumed += need;
  }
  return { index: steps.length, step: { text: "Script finished." } };
}
// The smallest value `schema` accepts (for the CLI's JSON side requests).
function fillSchema(schema, key = "") {
  if (!schema || typeof schema !== "object") return null;
  if (Array.isArray(schema.enum) && schema.enum.length)
    return key === "next_speaker" && schema.enum.includes("user") ? "user" : schema.enum[0];
  const type = String(Array.isArray(schema.type) ? schema.type[0] : schema.type ?? "object").toLowerCase();
  if (type === "object") {
    const out = {};
    for (const [k, v] of Object.entries(schema.properties ?? {})) out[k] = fillSchema(v, k);
    return out;
  }
  if (type === "array") return [];
  if (type === "integer" || type === "number") return Math.max(1, Number(schema.minimum ?? 1));
  if (type === "boolean") return false;
  return key === "next_speaker" ? "user" : "scripted";
}

// ---------- planning an answer ----------
// Returns {kind:"answer", parts, summary} or {kind:"error"|"hang", ...}.
function plan(body) {
  const contents = Array.isArray(body.contents) ? body.contents : [];
  const texts = userTexts(contents);
  const names = declaredFunctions(body);
  const summary = { contents: contents.length, functions: names.length,
                    prompt_head: (texts.at(-1)?.text ?? "").slice(0, 120) };
  if (script.error) return { kind: "error", error: script.error, summary: { ...summary, role: "any" } };
  if (names.length === 0) {
    const schema = body.generationConfig?.responseJsonSchema ?? body.generationConfig?.responseSchema;
    const text = schema ? JSON.stringify(fillSchema(schema)) : String(script.side_text ?? "OK");
    return { kind: "answer", parts: [{ text }], summary: { ...summary, role: "side", json: !!schema } };
  }
  let steps = script.steps;
  let after = -1;
  const base = { ...summary, role: "agent" };
  if (script.turns) {
    const latest = texts.findLast(u => script.turns.some(t => new RegExp(t.match).test(u.text)));
    const turn = latest ? script.turns.findIndex(t => new RegExp(t.match).test(latest.text)) : -1;
    steps = turn >= 0 ? script.turns[turn].steps : [{ text: "No script turn matches this conversation." }];
    after = latest ? latest.index : -1;
    Object.assign(base, { turn, history: { user_texts: texts.map(u => u.text.slice(0, 80)) } });
  }
  const results = functionResponses(contents.slice(after + 1)).length;
  const { index, step } = chooseStep(results, steps);
  const vars = { ...extractVars(texts), step: String(index) };
  Object.assign(base, { function_responses: results, step: index, vars });
  const delayMs = Number(step.delay_ms ?? 0);
  if (step.error) return { kind: "error", error: step.error, delayMs, summary: base };
  if (step.hang) return { kind: "hang", summary: base };
  const parts = [];
  if (step.text !== undefined) parts.push({ text: substitute(String(step.text), vars) });
  const missing = [];
  callsOf(step).forEach((call, k) => {
    const name = resolveTool(names, call.tool);
    if (!name) return missing.push(call.tool);
    const id = `call_${crypto.createHash("sha256").update(texts[0]?.text ?? "").digest("hex").slice(0, 10)}_${base.turn ?? 0}_${index}_${k}`;
    parts.push({ functionCall: { id, name, args: substitute(call.input ?? {}, vars) } });
  });
  if (missing.length) {
    return { kind: "answer", delayMs, summary: { ...base, missing },
             parts: [{ text: `Cannot continue: tool(s) ${missing.join(", ")} not offered. Offered: ${names.join(", ")}` }] };
  }
  return { kind: "answer", parts, delayMs, summary: base };
}

function usageFor(body, parts) {
  const prompt = Math.max(1, Math.ceil(JSON.stringify(body.contents ?? []).length / 4 +
                                       JSON.stringify(body.systemInstruction ?? "").length / 4));
  const candidates = Math.max(1, Math.ceil(JSON.stringify(parts).length / 4));
  const thoughts = 2;
  return { promptTokenCount: prompt, candidatesTokenCount: candidates,
           cachedContentTokenCount: Math.floor(prompt / 8), thoughtsTokenCount: thoughts,
           totalTokenCount: prompt + candidates + thoughts };
}
function responseOf(model, parts, usage) {
  return { candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }],
           usageMetadata: usage, modelVersion: model,
           responseId: "resp_" + crypto.randomBytes(8).toString("hex") };
}
function sendJson(res, status, object) {
  const data = JSON.stringify(object);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}
function sendError(res, error) {
  const status = Number(error.status ?? 500);
  sendJson(res, status, { error: { code: status, message: error.message ?? "Scripted error",
                                   status: error.reason ?? (status === 400 ? "INVALID_ARGUMENT" : "INTERNAL") } });
}

// ---------- server ----------
const hanging = new Set();
const ROUTE = /^\/v1(?:beta|alpha)?\/models\/([^/:]+):(streamGenerateContent|generateContent|countTokens)$/;
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  let raw = "";
  req.setEncoding("utf8");
  req.on("data", d => (raw += d));
  req.on("end", () => {
    const route = req.method === "POST" ? ROUTE.exec(url.pathname) : null;
    if (!route) {
      log({ method: req.method, path: url.pathname + url.search, status: 404 });
      return sendJson(res, 404, { error: { code: 404, message: `no route ${req.method} ${url.pathname}`, status: "NOT_FOUND" } });
    }
    const [, model, method] = route;
    let body;
    try { body = raw ? JSON.parse(raw) : {}; }
    catch { return sendError(res, { status: 400, message: "body is not JSON" }); }
    if (method === "countTokens") {
      const totalTokens = Math.max(1, Math.ceil(JSON.stringify(body.contents ?? []).length / 4));
      log({ method: "countTokens", model, totalTokens });
      return sendJson(res, 200, { totalTokens });
    }
    let p;
    try { p = plan(body); }
    catch (e) {
      log({ method, model, error: String(e.stack ?? e) });
      return sendError(res, { status: 500, message: `gemini_model_server bug: ${e.message}` });
    }
    const usage = p.kind === "answer" ? usageFor(body, p.parts) : undefined;
    log({ method, model, action: p.kind, status: p.error?.status, usage,
          parts: p.parts?.map(x => (x.functionCall ? `functionCall:${x.functionCall.name}` : "text")),
          text: p.parts?.filter(x => x.text !== undefined).map(x => x.text).join(""), ...p.summary });
    if (p.kind === "hang") {
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      return;
    }
    const send = () => {
      if (p.kind === "error") return sendError(res, p.error);
      const response = responseOf(model, p.parts, usage);
      if (method === "generateContent") return sendJson(res, 200, response);
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.end(`data: ${JSON.stringify(response)}\r\n\r\n`);
    };
    return p.delayMs > 0 ? setTimeout(send, p.delayMs) : send();
  });
});

const shutdown = code => shutdownServer(server, hanging, code);
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
server.on("error", e => fail(`cannot listen on ${host}:${port}: ${e.message}`));
server.listen(port, host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
  log({ event: "listening", host, port: server.address().port, scenario: script.name });
});
