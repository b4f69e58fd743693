// The real Codex CLI (@openai/codex 0.171.0) with herd, end to end and offline (issue 16, part 1).
//
// Codex's model is openai_model_server.mjs, a scripted OpenAI Responses API on 127.0.0.1, named
// as a model provider in a throwaway CODEX_HOME/config.toml; scripts in fixtures/agent_scripts/.
//
//   1. herd deploys a Codex agent (backend "codex", through herd serve's MCP tools). The agent
//      calls update_agent_progress and report_agent_finding through the MCP server herd gives it
//      (`-c mcp_servers.herd.*`), and exits. herd records its exit, its thread id, and its usage
//      from the CLI's turn.completed event: the token figures equal what the model server sent.
//      Then `herd send` begins a second turn, run as `codex exec … resume <thread>`: the model is
//      sent turn 1's calls again, and herd charges turn 2 only what it added to the thread (Codex
//      reports the thread's running total). No process is left after either turn.
//   2. kill mid-run: herd kill stops the Codex agent, its MCP server and everything else it
//      started.
//   3. Codex as an MCP client of `herd serve`, configured with the README's config.toml snippet
//      taken from README.md as it is: the model calls create_real_task and get_real_task_status,
//      and herd's registry has the task.
//   4. The same snippet: `codex exec` refuses stop_task (herd marks it destructive), and runs it
//      with default_tools_approval_mode = "approve" added, as the README says.
//
// No fixed sleeps: the tests await process exits and tool replies, or poll (each poll awaits its
// reply; 20 ms between polls) with generous deadlines. HERD_E2E_KEEP=1 keeps the temp directories.
//
// Run from the repository root:
//   HERD_BINARY=$PWD/build/herd node --test --test-concurrency=1 tests/interop/codex_agent.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { startModelServer, INTEROP_DIR, readJsonLines } from "./lib/claude_harness.mjs";
import {
  HERD, REPO_DIR, makeWorkspace, connectSdk, structured, cleanupAllWorkspaces, stopAllAgents, waitUntil,
  withTimeout, exited,
} from "./lib/herd_client.mjs";
import { running, cmdline, processesMarkedWith, processTree } from "./lib/processes.mjs";

const CODEX_BIN = path.join(INTEROP_DIR, "node_modules/.bin/codex");
const CODEX_VERSION = "0.171.0";
const OPENAI_MODEL_SERVER = path.join(INTEROP_DIR, "openai_model_server.mjs");
const SCRIPTS = path.join(INTEROP_DIR, "fixtures/agent_scripts");
const T = { timeout: 300000 };
const ACTIVE = new Set(["running", "working", "blocked"]);
const POLL_PAUSE_MS = 20;

before(async () => {
  assert.ok(fs.existsSync(CODEX_BIN), `${CODEX_BIN} missing: run \`npm ci --no-audit --no-fund\` in ${INTEROP_DIR}`);
  const version = spawn(CODEX_BIN, ["--version"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  version.stdout.on("data", d => (out += d));
  await withTimeout(exited(version), 60000, "codex --version");
  assert.equal(out.trim(), `codex-cli ${CODEX_VERSION}`, "the pinned Codex CLI");
});
const contexts = [];
after(async () => {
  if (process.env.HERD_E2E_KEEP) {
    for (const ctx of contexts) await stopAllAgents(ctx.w).catch(() => {});
    console.log(`kept: ${contexts.map(ctx => ctx.w.root).join(" ")}`);
    return;
  }
  await cleanupAllWorkspaces();
});

// ---------------------------------------------------------------------------------------------
// Set-up: a workspace, CODEX_HOME, the model server, and herd serve (whose environment every
// supervisor, Codex process and MCP child inherits).

// config.toml's root keys and provider table: Codex's model is the model server. Retries are off
// so a scripted failure fails at once.
function providerToml(modelPort) {
  return {
    root: 'model = "scripted"\nmodel_provider = "scripted"\n',
    tables: `
[model_providers.scripted]
name = "Scripted Responses API"
base_url = "http://127.0.0.1:${modelPort}/v1"
env_key = "SCRIPTED_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
`,
  };
}

// Writes $CODEX_HOME/config.toml: the provider, then `tables` (TOML tables such as an
// [mcp_servers.*] block).
function writeCodexConfig(codexHome, modelPort, tables = "") {
  fs.mkdirSync(codexHome, { recursive: true });
  const provider = providerToml(modelPort);
  fs.writeFileSync(path.join(codexHome, "config.toml"), provider.root + "\n" + tables + provider.tables);
}

function codexEnvironment(w, modelPort) {
  return {
    PATH: process.env.PATH,
    HOME: w.home,
    XDG_STATE_HOME: w.state,
    CLAUDE_ORCHESTRATOR_WORKSPACE: w.ws,
    CODEX_HOME: w.file("codex-home"),
    CODEX_EXECUTABLE: CODEX_BIN,
    SCRIPTED_API_KEY: "test",
    // Outside the temp directory holding CODEX_HOME, or Codex warns on stderr (so in the agent's
    // log) that it will not create its helper links "under temporary dir".
    TMPDIR: w.file("tmp"),
    HERD_DEFAULT_BACKEND: "codex",
    NO_COLOR: "1",
  };
}

async function setUp(script) {
  const w = makeWorkspace("herd-codex-agent-");
  const project = w.file("proj");
  fs.mkdirSync(project);
  fs.mkdirSync(w.file("tmp"));
  const modelLog = w.file("model.log");
  const model = await startModelServer(path.join(SCRIPTS, script), { logPath: modelLog, server: OPENAI_MODEL_SERVER });
  const env = codexEnvironment(w, model.port);
  writeCodexConfig(env.CODEX_HOME, model.port);
  let sdk;
  try {
    sdk = await connectSdk(w, { env, args: ["--workspace", w.ws], name: "herd-codex-agent-test" });
  } catch (e) {
    await model.stop();
    throw e;
  }
  const ctx = {
    w, env, project, model, modelLog, sdk, taskId: undefined, taskDir: undefined, closed: false,
    async call(name, args, { timeoutMs = 120000 } = {}) {
      const result = await sdk.client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs });
      const content = structured(result);
      if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(content)}\n${diagnostics(ctx)}`);
      return content;
    },
    status: taskId => ctx.call("get_real_task_status", { task_id: taskId }),
    herd: args => w.herd(args, { env }),
    async close() {
      if (ctx.closed) return;
      ctx.closed = true;
      try {
        const exit = await sdk.close();
        assert.equal(exit.code, 0, `herd serve exit ${JSON.stringify(exit)}; stderr:\n${sdk.stderr()}`);
      } finally {
        await model.stop();
      }
    },
  };
  contexts.push(ctx);
  return ctx;
}

async function createTask(ctx, description) {
  const created = await ctx.call("create_real_task", { description, client_cwd: ctx.project, priority: "P1" });
  ctx.taskId = created.task_id;
  ctx.taskDir = created.workspace;
  return created.task_id;
}

async function waitForStatus(ctx, taskId, predicate, what, timeoutMs = 180000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await ctx.status(taskId);
    if (predicate(status)) return status;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status:\n` +
                      `${JSON.stringify(status.agents, null, 1).slice(0, 6000)}\n${diagnostics(ctx)}`);
    }
    await new Promise(resolve => setTimeout(resolve, POLL_PAUSE_MS));
  }
}

const agentIn = (status, agentId) => status.agents.agents_list.find(a => a.id === agentId);
const exitRecorded = a => a && !ACTIVE.has(a.status) && a.phase === "exited" && a.ended_at;

function streamLogPath(ctx, agentId) { return path.join(ctx.taskDir, "logs", `${agentId}_stream.jsonl`); }

function diagnostics(ctx) {
  const out = [];
  try {
    if (ctx.taskDir) {
      out.push(`--- registry:\n${fs.readFileSync(path.join(ctx.taskDir, "AGENT_REGISTRY.json"), "utf8").slice(0, 8000)}`);
      const logs = path.join(ctx.taskDir, "logs");
      for (const f of fs.existsSync(logs) ? fs.readdirSync(logs) : [])
        out.push(`--- ${f} (last 3000 chars):\n${fs.readFileSync(path.join(logs, f), "utf8").slice(-3000)}`);
    }
    if (fs.existsSync(ctx.modelLog)) out.push(`--- model log (tail):\n${fs.readFileSync(ctx.modelLog, "utf8").slice(-3000)}`);
    out.push(`--- herd serve stderr (tail):\n${ctx.sdk?.stderr().slice(-2000) ?? ""}`);
  } catch (e) {
    out.push(`(diagnostics failed: ${e.message})`);
  }
  return out.join("\n");
}

// Waits (bounded) until no process of the test is left besides herd serve itself.
async function assertNoProcessLeft(ctx, what, timeoutMs = 20000) {
  const exclude = ctx.closed ? [] : [ctx.sdk.proc.pid];
  const deadline = Date.now() + timeoutMs;
  let left;
  for (;;) {
    left = processesMarkedWith(ctx.w.root, exclude);
    if (left.length === 0) return;
    if (Date.now() > deadline) break;
    await new Promise(resolve => setTimeout(resolve, POLL_PAUSE_MS));
  }
  assert.fail(`${what}: processes left after ${timeoutMs} ms:\n${JSON.stringify(left, null, 1)}\n${diagnostics(ctx)}`);
}

// The agent's recorded process is gone once its exit is recorded; its supervisor gets a bounded
// wait for its own clean-up.
async function assertAgentProcessesGone(entry, timeoutMs = 15000) {
  for (const [pidKey, startKey] of [["pid", "process_start_time"], ["supervisor_pid", "supervisor_start_time"]]) {
    assert.ok(Number.isInteger(entry[pidKey]) && entry[pidKey] > 0, `${entry.id}.${pidKey} recorded: ${entry[pidKey]}`);
    assert.ok(Number.isInteger(entry[startKey]) && entry[startKey] > 0, `${entry.id}.${startKey} recorded`);
  }
  assert.equal(running(entry.pid, entry.process_start_time), false,
               `${entry.id}'s agent process ${entry.pid} still runs after its exit was recorded: ${cmdline(entry.pid)}`);
  const deadline = Date.now() + timeoutMs;
  while (running(entry.supervisor_pid, entry.supervisor_start_time)) {
    if (Date.now() > deadline) assert.fail(`${entry.id}'s supervisor ${entry.supervisor_pid} still runs`);
    await new Promise(resolve => setTimeout(resolve, POLL_PAUSE_MS));
  }
}

// What the model server reported for a set of its logged requests, summed as Codex sums them.
function usageSent(requests) {
  const sum = { input_tokens: 0, cached_tokens: 0, output_tokens: 0 };
  for (const r of requests) {
    assert.ok(r.usage, `a logged response with usage: ${JSON.stringify(r).slice(0, 300)}`);
    sum.input_tokens += r.usage.input_tokens;
    sum.cached_tokens += r.usage.input_tokens_details.cached_tokens;
    sum.output_tokens += r.usage.output_tokens;
  }
  return sum;
}
function assertUsageIs(usage, sent, what) {
  assert.ok(sent.input_tokens > 0 && sent.cached_tokens > 0 && sent.output_tokens > 0, `${what}: figures sent`);
  assert.equal(usage.input_tokens, sent.input_tokens, `${what}: input_tokens ${JSON.stringify(usage)}`);
  assert.equal(usage.cache_read_input_tokens, sent.cached_tokens, `${what}: cached tokens`);
  assert.equal(usage.output_tokens, sent.output_tokens, `${what}: output_tokens`);
  // Codex's cached tokens are part of its input tokens: counted once.
  assert.equal(usage.total_tokens, sent.input_tokens + sent.output_tokens, `${what}: total_tokens`);
}

// The MCP tool calls an agent's Codex made, from its stream log (mcp_tool_call items).
function mcpCalls(events) {
  return events.filter(e => e.type === "item.completed" && e.item?.type === "mcp_tool_call").map(e => e.item);
}

// ---------------------------------------------------------------------------------------------

test("scenario 1: herd deploys a Codex agent that reports through herd's MCP server; its exit, thread and usage are recorded, and a follow-up resumes the thread", T, async () => {
  const started = Date.now();
  const ctx = await setUp("codex_two_turns.json");
  try {
    const taskId = await createTask(ctx, "end-to-end: a Codex agent, two turns");
    const deployed = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "worker", backend: "codex", prompt: "Look around the project.",
    });
    const agentId = deployed.agent_id;
    assert.ok(Number.isInteger(deployed.pid), JSON.stringify(deployed));

    const waited = await ctx.call("wait_for_agents", { task_id: taskId, agent_ids: [agentId], timeout_seconds: 120 },
                                  { timeoutMs: 180000 });
    assert.equal(waited.condition_met, true, `${JSON.stringify(waited)}\n${diagnostics(ctx)}`);
    const first = agentIn(await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "turn 1's exit"), agentId);

    // The exit: completed with code 0, the thread id from thread.started, no error.
    assert.equal(first.status, "completed", `${JSON.stringify(first)}\n${diagnostics(ctx)}`);
    assert.equal(first.exit_code, 0);
    assert.equal(first.backend, "codex");
    const turnOneEvents = readJsonLines(streamLogPath(ctx, agentId));
    assert.equal(turnOneEvents[0].type, "thread.started", JSON.stringify(turnOneEvents[0]));
    assert.match(first.session_id, /^[0-9a-f-]{36}$/);
    assert.equal(first.session_id, turnOneEvents[0].thread_id, "the session is Codex's thread id");
    const turnCompleted = turnOneEvents.filter(e => e.type === "turn.completed");
    assert.equal(turnCompleted.length, 1);

    // Codex called herd's tools through the MCP server herd gave it, and herd recorded them.
    const calls = mcpCalls(turnOneEvents);
    assert.deepEqual(calls.map(c => [c.server, c.tool, c.status]),
                     [["herd", "update_agent_progress", "completed"], ["herd", "report_agent_finding", "completed"]],
                     JSON.stringify(calls, null, 1));
    const progress = readJsonLines(path.join(ctx.taskDir, "progress", `${agentId}_progress.jsonl`));
    assert.deepEqual(progress.map(p => [p.status, p.message, p.progress]), [["working", "turn one: looked around", 40]],
                     JSON.stringify(progress));
    assert.equal(first.last_message, "turn one: looked around");
    let findings = readJsonLines(path.join(ctx.taskDir, "findings", `${agentId}_findings.jsonl`));
    assert.deepEqual(findings.map(f => [f.message, f.severity]), [["turn one: found it", "low"]]);

    // Its usage is what the model server sent (the sum of the turn's responses).
    const agentRequests = () => readJsonLines(ctx.modelLog).filter(e => e.role === "agent");
    const turnOneRequests = agentRequests().filter(e => e.turn === 0);
    assert.equal(turnOneRequests.length, 3, "two tool calls and the final answer");
    assert.ok(turnOneRequests.every(r => r.mcp_tools.includes("mcp__herd__update_agent_progress")),
              "every request offered herd's tools in Codex's mcp__herd namespace");
    const sentOne = usageSent(turnOneRequests);
    assertUsageIs(first.usage, sentOne, "turn 1 (agent usage)");
    assert.equal(turnCompleted[0].usage.input_tokens, sentOne.input_tokens, "the CLI's own figure agrees");
    await assertAgentProcessesGone(first);
    await assertNoProcessLeft(ctx, "after turn 1");

    // Turn 2: herd send, run as codex exec … resume <thread>.
    const sent = await ctx.herd(["send", taskId, agentId, "SECOND TURN: now follow up on what you found."]);
    assert.equal(sent.code, 0, `herd send: ${sent.stdout}\n${sent.stderr}`);
    assert.equal(sent.json?.delivery, "new_turn", sent.stdout);
    assert.equal(sent.json?.turn, 2);
    const secondWait = await ctx.call("wait_for_agents", { task_id: taskId, agent_ids: [agentId], timeout_seconds: 120 },
                                      { timeoutMs: 180000 });
    assert.equal(secondWait.condition_met, true, `${JSON.stringify(secondWait)}\n${diagnostics(ctx)}`);
    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)) && agentIn(s, agentId).turn === 2,
                                     "turn 2's exit");
    const entry = agentIn(done, agentId);
    assert.equal(entry.status, "completed", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.exit_code, 0);
    assert.equal(entry.session_id, first.session_id, "the same thread");
    assert.equal(entry.turns.length, 1);
    assert.equal(entry.turns[0].status, "completed");
    assert.deepEqual(entry.turns[0].usage, first.usage, "turn 1's usage is kept as recorded");

    // The second turn resumed the thread: its requests carried turn 1's prompt and calls.
    const turnTwoRequests = agentRequests().filter(e => e.turn === 1);
    assert.equal(turnTwoRequests.length, 3, JSON.stringify(agentRequests().map(e => e.turn)));
    const turnOneCallIds = turnOneRequests.at(-1).history.call_ids;
    assert.equal(turnOneCallIds.length, 2);
    for (const request of turnTwoRequests) {
      assert.match(request.history.user_texts[0], /You are one agent in a herd/, "turn 1's prompt comes first");
      assert.ok(request.history.user_texts.some(t => t.startsWith("SECOND TURN:")), "then the follow-up");
      for (const id of turnOneCallIds) assert.ok(request.history.call_ids.includes(id), `turn 1's call ${id} resent`);
      assert.equal(request.vars.agent_id, agentId);
    }
    const events = readJsonLines(streamLogPath(ctx, agentId));
    assert.deepEqual(events.filter(e => e.type === "thread.started").map(e => e.thread_id),
                     [first.session_id, first.session_id]);
    const completions = events.filter(e => e.type === "turn.completed");
    assert.equal(completions.length, 2);

    // Codex reports the thread's running total; herd charges turn 2 what it added, and the
    // agent's and the task's usage are the thread's whole.
    const sentTwo = usageSent(turnTwoRequests);
    assert.equal(completions[1].usage.input_tokens, sentOne.input_tokens + sentTwo.input_tokens,
                 "the CLI's turn.completed is the thread's running total");
    assertUsageIs(entry.usage, sentTwo, "turn 2 (agent usage)");
    const all = usageSent([...turnOneRequests, ...turnTwoRequests]);
    assert.equal(done.usage.total_tokens, all.input_tokens + all.output_tokens, `task usage ${JSON.stringify(done.usage)}`);
    assert.equal(done.usage.input_tokens, all.input_tokens);
    assert.equal(done.usage.output_tokens, all.output_tokens);

    const progressTwo = readJsonLines(path.join(ctx.taskDir, "progress", `${agentId}_progress.jsonl`));
    assert.deepEqual(progressTwo.map(p => [p.status, p.progress]), [["working", 40], ["completed", 100]]);
    findings = readJsonLines(path.join(ctx.taskDir, "findings", `${agentId}_findings.jsonl`));
    assert.deepEqual(findings.map(f => f.message), ["turn one: found it", "turn two: followed up"]);
    assert.equal(done.agents.active, 0);

    await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after turn 2");
    await ctx.close();
    await assertNoProcessLeft(ctx, "after herd serve exited");
    console.log(`scenario 1 took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

test("scenario 2: herd kill stops a Codex agent mid-run with its MCP server and every other process it started", T, async () => {
  const ctx = await setUp("codex_progress_then_hang.json");
  try {
    const taskId = await createTask(ctx, "end-to-end: kill a Codex agent");
    const deployed = await ctx.herd(["deploy", taskId, "--type", "worker", "--backend", "codex", "--prompt", "Work for a long time."]);
    assert.equal(deployed.code, 0, `herd deploy: ${deployed.stdout}\n${deployed.stderr}`);
    const agentId = deployed.json.agent_id;
    assert.ok(agentId, deployed.stdout);
    // It reported, and Codex waits on a model answer that never comes.
    await waitUntil(() => readJsonLines(ctx.modelLog).some(e => e.role === "agent" && e.action === "hang"),
                    { timeoutMs: 90000, intervalMs: POLL_PAUSE_MS, what: "the held model request" });
    const before = agentIn(await ctx.status(taskId), agentId);
    assert.equal(before.status, "working", JSON.stringify(before));
    assert.ok(running(before.pid, before.process_start_time));
    const tree = processTree(before.supervisor_pid);
    const mcpChild = tree.find(p => / serve --workspace /.test(p.cmd));
    assert.ok(mcpChild, `Codex started herd's MCP server: ${JSON.stringify(tree, null, 1)}`);

    const killed = await ctx.herd(["kill", taskId, agentId, "--reason", "test: stop it"]);
    assert.equal(killed.code, 0, `herd kill: ${killed.stdout}\n${killed.stderr}`);
    const after = agentIn(await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "the kill's exit"), agentId);
    assert.equal(after.status, "terminated", JSON.stringify(after));
    assert.match(after.termination_reason ?? "", /test: stop it/);
    for (const p of tree) assert.equal(running(p.pid, p.startTime), false, `still running: ${JSON.stringify(p)}`);
    await assertAgentProcessesGone(after);
    await assertNoProcessLeft(ctx, "after the kill");
    await ctx.close();
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Codex as an MCP client of herd serve, configured exactly as the README says.

// The README's config.toml block for Codex, with the herd binary under test in place of its
// placeholder path.
function readmeCodexSnippet() {
  const readme = fs.readFileSync(path.join(REPO_DIR, "README.md"), "utf8");
  const match = /\*\*Codex CLI:\*\*[^\n]*\n+```toml\n([\s\S]*?)```/.exec(readme);
  assert.ok(match, "README.md has a ```toml block after **Codex CLI:**");
  const placeholder = "/abs/path/to/herd/build/herd";
  assert.ok(match[1].includes(placeholder), `the snippet names ${placeholder}:\n${match[1]}`);
  return match[1].replaceAll(placeholder, HERD);
}

// Runs `codex exec --json` with the prompt on stdin; resolves {code, signal, events, stdout, stderr}.
function runCodex({ cwd, env, prompt, timeoutMs = 120000 }) {
  const child = spawn(CODEX_BIN, ["exec", "--json", "--skip-git-repo-check", "-"],
                      { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.end(prompt);
  let stdout = "", stderr = "";
  const events = [];
  child.stderr.on("data", d => (stderr += d));
  child.stdout.on("data", d => (stdout += d));
  readline.createInterface({ input: child.stdout }).on("line", line => {
    try { events.push(JSON.parse(line)); } catch { events.push({ unparsed: line }); }
  });
  return withTimeout(exited(child), timeoutMs, "codex exec").then(
    ({ code, signal }) => ({ code, signal, events, stdout, stderr }),
    e => { child.kill("SIGKILL"); throw new Error(`${e.message}\nstdout:\n${stdout}\nstderr:\n${stderr}`); });
}

test("scenario 3: Codex configured with the README's snippet calls herd serve's tools, and herd's registry has the task", T, async () => {
  const w = makeWorkspace("herd-codex-client-");
  const project = w.file("proj");
  fs.mkdirSync(project);
  fs.mkdirSync(w.file("tmp"));
  const modelLog = w.file("model.log");
  const model = await startModelServer(path.join(SCRIPTS, "codex_client.json"), { logPath: modelLog, server: OPENAI_MODEL_SERVER });
  try {
    const env = codexEnvironment(w, model.port);
    // Only what a person has: no workspace variable; the task lives where client_cwd says.
    delete env.CLAUDE_ORCHESTRATOR_WORKSPACE;
    delete env.CODEX_EXECUTABLE;
    delete env.HERD_DEFAULT_BACKEND;
    const snippet = readmeCodexSnippet();
    writeCodexConfig(env.CODEX_HOME, model.port, snippet + "\n");
    const run = await runCodex({ cwd: project, env, prompt: `Make a task for this project.\nPROJECT: ${project}\n` });
    const diagnostics = `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}\nmodel log:\n${
      fs.existsSync(modelLog) ? fs.readFileSync(modelLog, "utf8").slice(-4000) : ""}`;
    assert.equal(run.code, 0, diagnostics);
    const calls = mcpCalls(run.events);
    assert.deepEqual(calls.map(c => [c.server, c.tool, c.status]),
                     [["herd", "create_real_task", "completed"], ["herd", "get_real_task_status", "completed"]], diagnostics);
    // The first call's reply named the task; the second asked for it by that name.
    const created = JSON.parse(calls[0].result.content.find(c => c.type === "text").text);
    assert.match(created.task_id, /^TASK-/);
    assert.equal(calls[1].arguments.task_id, created.task_id);
    const status = JSON.parse(calls[1].result.content.find(c => c.type === "text").text);
    assert.equal(status.task_id, created.task_id, JSON.stringify(status).slice(0, 1000));
    assert.equal(run.events.findLast(e => e.type === "item.completed" && e.item.type === "agent_message")?.item.text,
                 `Created ${created.task_id} and read its status.`);

    // herd's registry changed: the task, in <client_cwd>/.agent-workspace.
    const registryFile = path.join(project, ".agent-workspace", created.task_id, "AGENT_REGISTRY.json");
    assert.ok(fs.existsSync(registryFile), `${registryFile} exists`);
    const registry = JSON.parse(fs.readFileSync(registryFile, "utf8"));
    assert.equal(registry.task_id, created.task_id);
    assert.equal(registry.task_description, "made by Codex through herd serve");
    // And herd, asked from outside, finds it (HOME is shared: the workspace was recorded under it).
    const listed = await w.herd(["task", "list"], { env: { HOME: w.home, XDG_STATE_HOME: "" } });
    assert.ok(listed.json?.tasks?.some(t => t.task_id === created.task_id), listed.stdout);
    // Codex's herd serve ends with it (stdin EOF); bounded wait, as it may outlive Codex briefly.
    await waitUntil(() => processesMarkedWith(w.root).length === 0,
                    { timeoutMs: 20000, intervalMs: POLL_PAUSE_MS, what: "no process left after codex exec" });
  } finally {
    await model.stop();
    await w.cleanup();
  }
});

test("scenario 4: under the README's snippet codex exec refuses stop_task (destructive); with default_tools_approval_mode = \"approve\" it stops the task", T, async () => {
  const w = makeWorkspace("herd-codex-client-");
  const model = await startModelServer(path.join(SCRIPTS, "codex_client_stop.json"), { logPath: w.file("model.log"), server: OPENAI_MODEL_SERVER });
  try {
    const env = codexEnvironment(w, model.port);
    delete env.CLAUDE_ORCHESTRATOR_WORKSPACE;
    delete env.CODEX_EXECUTABLE;
    fs.mkdirSync(w.file("tmp"));
    const snippet = readmeCodexSnippet();
    const approved = snippet.replace("[mcp_servers.herd]\n", '[mcp_servers.herd]\ndefault_tools_approval_mode = "approve"\n');
    assert.notEqual(approved, snippet);
    const outcomes = [];
    for (const [name, tables] of [["readme", snippet], ["approve", approved]]) {
      const project = w.file(`proj-${name}`);
      fs.mkdirSync(project);
      writeCodexConfig(env.CODEX_HOME, model.port, tables + "\n");
      const run = await runCodex({ cwd: project, env, prompt: `Stop a task.\nPROJECT: ${project}\n` });
      assert.equal(run.code, 0, `${name}: exit ${run.code}\n${run.stdout}\n${run.stderr}`);
      const calls = mcpCalls(run.events);
      assert.deepEqual(calls.map(c => c.tool), ["create_real_task", "stop_task"], `${name}: ${run.stdout}`);
      const taskId = JSON.parse(calls[0].result.content[0].text).task_id;
      const registry = JSON.parse(fs.readFileSync(path.join(project, ".agent-workspace", taskId, "AGENT_REGISTRY.json"), "utf8"));
      outcomes.push({ name, stop: calls[1].status, error: calls[1].error?.message, stopped: registry.stopped_reason ?? null });
    }
    assert.deepEqual(outcomes, [
      { name: "readme", stop: "failed", error: "MCP tool call requires approval, but approval policy is never", stopped: null },
      { name: "approve", stop: "completed", error: undefined, stopped: "stopped by Codex" },
    ]);
    await waitUntil(() => processesMarkedWith(w.root).length === 0,
                    { timeoutMs: 20000, intervalMs: POLL_PAUSE_MS, what: "no process left after codex exec" });
  } finally {
    await model.stop();
    await w.cleanup();
  }
});
