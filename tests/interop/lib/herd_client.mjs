// Shared helpers for the node tests that drive the real `herd serve` (and the herd CLI).
//
// - makeWorkspace(): a temp workspace base + XDG_STATE_HOME + HOME, an env for herd, and a cleanup
//   that stops every agent still active in it (so no test leaves processes behind) and removes it.
// - runHerd(): the herd CLI with --json, resolved on exit.
// - connectSdk(): the official SDK Client over StdioClientTransport, optionally negotiating an
//   older protocol version, with every server->client message recorded.
// - RawSession: `herd serve` over raw pipes; EVERY stdout line is parsed as JSON (failures are
//   kept in .badLines), replies are correlated by id and awaited with deadlines.
// - waitUntil(): poll a condition with a deadline (for state that has no event to wait on).
//
// No fixed sleeps: everything waits on replies, process exits or conditions, with generous
// deadlines that fail the test with context instead of hanging.
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

export const INTEROP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_DIR = path.resolve(INTEROP_DIR, "../..");

export const PROTOCOL_VERSIONS = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
export const TOOL_NAMES = [
  "create_real_task", "deploy_headless_agent", "get_real_task_status", "get_agent_output",
  "kill_real_agent", "stop_task", "update_agent_progress", "report_agent_finding", "spawn_child_agent",
  "get_health_status", "wait_for_agents", "get_agent_diff", "merge_agent_work", "send_agent_message",
];

// The herd binary under test: $HERD_BINARY, else build/herd in the repository.
export function herdBinary() {
  const bin = process.env.HERD_BINARY ? path.resolve(process.env.HERD_BINARY)
                                      : path.join(REPO_DIR, "build/herd");
  if (!fs.existsSync(bin))
    throw new Error(`herd binary ${bin} not found: build it and set HERD_BINARY=/abs/path/to/herd`);
  return bin;
}
export const HERD = herdBinary();

// ---------------------------------------------------------------------------------------------
// Small utilities

export function withTimeout(promise, ms, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// Polls `fn` (sync or async) until it returns a truthy value; returns that value. For state
// that has no event to wait on (a file appearing, a registry field changing).
export async function waitUntil(fn, { timeoutMs = 30000, intervalMs = 25, what = "a condition" } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${
        last instanceof Error ? last.stack : JSON.stringify(last)}`);
    await new Promise(r => setTimeout(r, intervalMs));
  }
}

// Resolves with {code, signal} when `proc` has exited and its stdio closed. Call it right after
// spawning, or on a process passed through trackClose().
export function exited(proc) {
  if (proc._herdClosed) return Promise.resolve({ code: proc.exitCode, signal: proc.signalCode });
  return new Promise(resolve => proc.once("close", (code, signal) => resolve({ code, signal })));
}
function trackClose(proc) {
  proc.once("close", () => { proc._herdClosed = true; });
  return proc;
}

export function isAlive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return e.code === "EPERM";
  }
  // A zombie still answers kill(0): look at its state.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks), as herd records it; undefined if gone.
export function processStartTime(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  } catch {
    return undefined;
  }
}

export function readJsonLines(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l));
}

// ---------------------------------------------------------------------------------------------
// Workspaces and the CLI

const liveWorkspaces = new Set();

// A throwaway root with ws/ (the workspace base), state/ (XDG_STATE_HOME: herd's list of known
// workspaces) and home/ (HOME). `env` is what herd processes need; `cleanup()` kills whatever
// agents are still active in any task of this workspace and removes the directory.
export function makeWorkspace(prefix = "herd-mcp-") {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const ws = path.join(root, "ws"), state = path.join(root, "state"), home = path.join(root, "home");
  for (const d of [ws, state, home]) fs.mkdirSync(d);
  const env = { CLAUDE_ORCHESTRATOR_WORKSPACE: ws, XDG_STATE_HOME: state, HOME: home };
  const workspace = {
    root, ws, state, home, env,
    file: name => path.join(root, name),
    taskDir: taskId => path.join(ws, taskId),
    registry: taskId => JSON.parse(fs.readFileSync(path.join(ws, taskId, "AGENT_REGISTRY.json"), "utf8")),
    herd: (args, opts = {}) => runHerd(args, { ...opts, env: { ...env, ...(opts.env ?? {}) } }),
    cleanup: async () => {
      liveWorkspaces.delete(workspace);
      await stopAllAgents(workspace).catch(e => console.error(`cleanup of ${root}: ${e.message}`));
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  liveWorkspaces.add(workspace);
  return workspace;
}

// Every active agent of every task the workspace knows gets `herd kill --grace 0`; any pid still
// alive after that is SIGKILLed (only pids herd recorded for agents of this workspace).
export async function stopAllAgents(workspace) {
  const list = await workspace.herd(["task", "list"]);
  if (!list.json?.tasks) return;
  for (const task of list.json.tasks) {
    let doc;
    try {
      doc = JSON.parse(fs.readFileSync(path.join(task.workspace_base, task.task_id, "AGENT_REGISTRY.json"), "utf8"));
    } catch {
      continue;
    }
    for (const agent of doc.agents ?? []) {
      if (["running", "working", "blocked"].includes(agent.status))
        await workspace.herd(["kill", task.task_id, agent.id, "--grace", "0", "--reason", "test cleanup"]);
    }
    // Anything herd recorded that still runs (e.g. after a failed kill): SIGKILL, but only if the
    // pid still names the same process (same start time), never a recycled pid.
    const after = JSON.parse(fs.readFileSync(path.join(task.workspace_base, task.task_id, "AGENT_REGISTRY.json"), "utf8"));
    for (const agent of after.agents ?? []) {
      for (const [pid, start] of [[agent.pid, agent.process_start_time], [agent.supervisor_pid, agent.supervisor_start_time]]) {
        if (isAlive(pid) && processStartTime(pid) === start) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      }
    }
  }
}

// For after() hooks: clean every workspace a test file created and did not clean itself.
export async function cleanupAllWorkspaces() {
  for (const w of [...liveWorkspaces]) await w.cleanup();
}

// Runs `herd --json <args>`; resolves {code, signal, stdout, stderr, json}.
export function runHerd(args, { env = {}, input, timeoutMs = 60000, cwd } = {}) {
  const child = trackClose(spawn(HERD, ["--json", ...args], {
    env: { ...process.env, ...env }, cwd, stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  }));
  let stdout = "", stderr = "";
  child.stdout.on("data", d => (stdout += d));
  child.stderr.on("data", d => (stderr += d));
  if (input !== undefined) child.stdin.end(input);
  return withTimeout(exited(child), timeoutMs, `herd ${args.join(" ")}`).then(({ code, signal }) => {
    let json;
    try { json = JSON.parse(stdout); } catch { json = undefined; }
    return { code, signal, stdout, stderr, json };
  }, e => { child.kill("SIGKILL"); throw e; });
}

// ---------------------------------------------------------------------------------------------
// The official SDK client

// StdioClientTransport that (a) can ask for another protocol version in `initialize` (the SDK
// Client always sends its latest) and (b) records every message the server sends.
export class RecordingStdioTransport extends StdioClientTransport {
  constructor(params, { protocolVersion } = {}) {
    super(params);
    this.requestedVersion = protocolVersion;
    this.received = [];
    this.initializeResult = undefined;
    this._initializeId = undefined;
  }
  async start() {
    await super.start();
    this.process = trackClose(this._process);
  }
  send(message, options) {
    if (message.method === "initialize") {
      this._initializeId = message.id;
      if (this.requestedVersion)
        message = { ...message, params: { ...message.params, protocolVersion: this.requestedVersion } };
    }
    return super.send(message, options);
  }
  get onmessage() { return this._onmessage; }
  set onmessage(handler) {
    this._onmessage = handler && (message => {
      this.received.push(message);
      if (this._initializeId !== undefined && message.id === this._initializeId && "result" in message)
        this.initializeResult = message.result;
      handler(message);
    });
  }
}

// Starts `herd serve` through the SDK and connects. Returns {client, transport, stderr(), errors,
// close()}. `errors` collects client.onerror events (e.g. a response for an unknown id).
export async function connectSdk(workspace, { protocolVersion, env = {}, args = [], name = "herd-interop" } = {}) {
  const transport = new RecordingStdioTransport({
    command: HERD, args: ["serve", ...args], env: { ...workspace.env, ...env }, stderr: "pipe",
  }, { protocolVersion });
  let stderr = "";
  transport.stderr.on("data", d => (stderr += d));
  const client = new Client({ name, version: "0.0.0" }, { capabilities: {} });
  const errors = [];
  client.onerror = e => errors.push(e);
  await withTimeout(client.connect(transport), 30000, "SDK connect to herd serve");
  return {
    client, transport, errors,
    stderr: () => stderr,
    proc: transport.process,
    // Closes stdin and waits for herd serve to exit on its own (the SDK would SIGTERM after 2 s).
    close: async () => {
      const proc = transport.process;
      proc.stdin.end();
      const status = await withTimeout(exited(proc), 60000, "herd serve to exit after stdin EOF");
      await client.close();
      return status;
    },
  };
}

// Parses a tool result's structuredContent and checks the text mirror matches it.
export function structured(result) {
  if (!result || typeof result !== "object") throw new Error(`not a tool result: ${JSON.stringify(result)}`);
  const text = result.content?.find(c => c.type === "text")?.text;
  if (text === undefined) throw new Error(`tool result without a text block: ${JSON.stringify(result)}`);
  const mirrored = JSON.parse(text);
  if (JSON.stringify(mirrored) !== JSON.stringify(result.structuredContent))
    throw new Error(`text block differs from structuredContent:\n${text}\n${JSON.stringify(result.structuredContent)}`);
  return result.structuredContent;
}

// ---------------------------------------------------------------------------------------------
// Raw stdio sessions

// `herd serve` with raw pipes. Every stdout line is JSON.parse'd; unparsable lines go to
// badLines (tests assert it stays empty). Responses are matched by id (exact JSON value).
export class RawSession {
  constructor(workspace, { env = {}, args = [] } = {}) {
    this.proc = trackClose(spawn(HERD, ["serve", ...args], {
      env: { ...process.env, ...workspace.env, ...env }, stdio: ["pipe", "pipe", "pipe"],
    }));
    this.messages = [];      // every parsed stdout message, in order
    this.lines = [];         // every raw stdout line
    this.badLines = [];      // lines that are not JSON, or not JSON-RPC 2.0
    this.stderr = "";
    this._waiters = [];      // {predicate, resolve}
    this._nextId = 1;
    this._buffer = Buffer.alloc(0);
    this.proc.stdin.on("error", () => { /* EPIPE when the server is gone; the test will see it */ });
    this.proc.stderr.on("data", d => {
      if (this.stderr.length < 1 << 20) this.stderr += d;
    });
    this.proc.stdout.on("data", chunk => this._onData(chunk));
    this.exit = exited(this.proc);
    this.exit.then(() => {
      for (const w of this._waiters) w.reject?.(new Error(`herd serve exited while waiting for ${w.what}; stderr:\n${this.stderr.slice(-4000)}`));
      this._waiters = [];
    });
  }

  _onData(chunk) {
    this._buffer = Buffer.concat([this._buffer, chunk]);
    let nl;
    while ((nl = this._buffer.indexOf(10)) >= 0) {
      const lineBuf = this._buffer.subarray(0, nl);
      this._buffer = this._buffer.subarray(nl + 1);
      const line = lineBuf.toString("utf8");
      this.lines.push(line);
      let msg;
      try {
        if (!Buffer.from(line, "utf8").equals(lineBuf)) throw new Error("invalid UTF-8");
        msg = JSON.parse(line);
        const items = Array.isArray(msg) ? msg : [msg];
        if (items.length === 0 || items.some(m => !m || typeof m !== "object" || m.jsonrpc !== "2.0"))
          throw new Error("not JSON-RPC 2.0");
      } catch (e) {
        this.badLines.push({ line: line.slice(0, 500), error: e.message });
        continue;
      }
      this.messages.push(msg);
      this._waiters = this._waiters.filter(w => {
        if (!w.predicate(msg)) return true;
        w.resolve(msg);
        return false;
      });
    }
  }

  // Writes one line (an object is serialized; a string or Buffer is sent as is) plus "\n".
  send(message) {
    const data = Buffer.isBuffer(message) ? message
      : Buffer.from(typeof message === "string" ? message : JSON.stringify(message), "utf8");
    this.proc.stdin.write(Buffer.concat([data, Buffer.from("\n")]));
  }
  // Writes bytes with no newline added.
  write(data) { this.proc.stdin.write(data); }
  end(data) { this.proc.stdin.end(data); }

  // Resolves with the first message (past or future) matching `predicate`.
  waitFor(predicate, { timeoutMs = 30000, what = "a message", includePast = true } = {}) {
    if (includePast) {
      const found = this.messages.find(predicate);
      if (found) return Promise.resolve(found);
    }
    if (this.proc._herdClosed)
      return Promise.reject(new Error(`herd serve already exited; waiting for ${what}`));
    let waiter;
    const p = new Promise((resolve, reject) => {
      waiter = { predicate, resolve, reject, what };
      this._waiters.push(waiter);
    });
    return withTimeout(p, timeoutMs, `${what}; stderr tail:\n${this.stderr.slice(-2000)}`)
      .finally(() => { this._waiters = this._waiters.filter(w => w !== waiter); });
  }

  // The response (non-batch message with result or error) whose id equals `id` exactly.
  response(id, opts = {}) {
    const key = JSON.stringify(id);
    return this.waitFor(m => !Array.isArray(m) && !("method" in m) && "id" in m && JSON.stringify(m.id) === key,
                        { what: `the response to id ${key}`, ...opts });
  }
  responsesFor(id) {
    const key = JSON.stringify(id);
    return this.messages.filter(m => !Array.isArray(m) && !("method" in m) && JSON.stringify(m.id) === key);
  }

  // Sends a request and resolves with its response. `id` defaults to a fresh integer.
  request(method, params, { id, timeoutMs } = {}) {
    const rid = id ?? `r${this._nextId++}`;
    const reply = this.response(rid, { timeoutMs, includePast: false });
    const message = { jsonrpc: "2.0", id: rid, method };
    if (params !== undefined) message.params = params;
    this.send(message);
    return reply;
  }
  notify(method, params) {
    const message = { jsonrpc: "2.0", method };
    if (params !== undefined) message.params = params;
    this.send(message);
  }

  async initialize(protocolVersion = "2025-11-25") {
    const reply = await this.request("initialize", {
      protocolVersion, capabilities: {}, clientInfo: { name: "herd-raw-test", version: "0" },
    }, { id: "init" });
    if (reply.error) throw new Error(`initialize failed: ${JSON.stringify(reply.error)}`);
    this.notify("notifications/initialized");
    return reply.result;
  }

  // tools/call; resolves with the result (throws on a JSON-RPC error).
  async callTool(name, args, { id, meta, timeoutMs } = {}) {
    const params = { name, arguments: args };
    if (meta) params._meta = meta;
    const reply = await this.request("tools/call", params, { id, timeoutMs });
    if (reply.error) throw new Error(`tools/call ${name} -> JSON-RPC error ${JSON.stringify(reply.error)}`);
    return reply.result;
  }
  // tools/call that must succeed; resolves with structuredContent.
  async tool(name, args, opts) {
    const result = await this.callTool(name, args, opts);
    if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.structuredContent)}`);
    return structured(result);
  }

  // Closes stdin and waits for the exit.
  async close({ timeoutMs = 60000 } = {}) {
    this.proc.stdin.end();
    return withTimeout(this.exit, timeoutMs, "herd serve to exit after stdin EOF");
  }
  kill() {
    if (!this.proc._herdClosed) this.proc.kill("SIGKILL");
    return this.exit;
  }
}

// ---------------------------------------------------------------------------------------------
// Agent commands for the "command" backend

// Prints `marker` (after installing the trap, so it is safe to kill once seen) and sleeps; with
// ignoreTerm it survives SIGTERM so a kill has to wait for its grace period.
export function sleeperCommand({ ignoreTerm = false, marker = "ready" } = {}) {
  const trap = ignoreTerm ? "trap '' TERM; " : "";
  return ["sh", "-c", `${trap}echo ${marker}; exec sleep 600`];
}

// Waits until the agent's stream log contains `text` (the command backend appends the agent's
// stdout and stderr there).
export function waitForLog(workspace, taskId, agentId, text, opts = {}) {
  const file = path.join(workspace.ws, taskId, "logs", `${agentId}_stream.jsonl`);
  return waitUntil(() => fs.existsSync(file) && fs.readFileSync(file, "utf8").includes(text),
                   { what: `"${text}" in ${file}`, ...opts });
}

// A git repository at `dir` on branch main with one commit of `files` ({name: contents}), and
// git(...args) run in it (its trimmed output).
export function makeGitRepo(dir, files) {
  const git = (...args) => execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
  fs.mkdirSync(dir, { recursive: true });
  git("init", "-q", "-b", "main");
  git("config", "user.email", "person@example.com");
  git("config", "user.name", "A Person");
  for (const [name, contents] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), contents);
  git("add", "-A");
  git("commit", "-q", "-m", "initial");
  return git;
}
