// Real Gemini CLI agents deployed BY herd, end to end, offline (issue 16, part 2).
//
// A test client (the official MCP SDK) drives `herd serve --workspace <tmp>`; herd starts the real
// Gemini CLI 0.61.0 (backend "gemini", `gemini` found on PATH: node_modules/.bin) under its
// per-agent supervisor. herd gives the CLI its MCP server through a per-agent GEMINI_CLI_HOME whose
// settings.json is the person's own (here: the test HOME's ~/.gemini/settings.json) plus
// mcpServers.herd. The CLI's model is gemini_model_server.mjs (GOOGLE_GEMINI_BASE_URL), so the agent
// calls herd's tools deterministically.
//
//   1. full loop: the agent reports progress, a finding and completion through herd's MCP tools
//      and ends with a text; herd records exit 0, the usage of the CLI's result event (equal to
//      the sum of the usageMetadata the model server sent), the session, and the final text reads
//      back through get_agent_output; no process is left.
//   2. follow-up: send_agent_message runs turn 2 as `gemini --resume <session herd fixed>`; the
//      model is sent turn 1's conversation, and each turn's usage is what the server sent in it.
//   3. crash: the model answers HTTP 400; the CLI prints an error result and exits 144 (its exit
//      code is the HTTP status, truncated to 8 bits); herd records error with the API's message.
//   4. kill mid-run: the agent reports once and its model holds the next turn; kill_real_agent
//      stops the CLI (a relaunching parent that ignores SIGTERM, its child, their herd serve).
//
// No fixed sleeps: responses, exits, or get_real_task_status polls bounded by deadlines.
// HERD_E2E_KEEP=1 keeps the temp directories.
//
// Run from the repository root:
//   HERD_BINARY=$PWD/build/herd node --test --test-concurrency=1 tests/interop/gemini_agent.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { INTEROP_DIR, readJsonLines } from "./lib/claude_harness.mjs";
import { makeWorkspace, connectSdk, structured, cleanupAllWorkspaces, stopAllAgents } from "./lib/herd_client.mjs";

const BIN_DIR = path.join(INTEROP_DIR, "node_modules/.bin");
const GEMINI_BIN = path.join(BIN_DIR, "gemini");
const GEMINI_SERVER = path.join(INTEROP_DIR, "gemini_model_server.mjs");
const MODEL = "gemini-2.5-pro";  // named, so the CLI skips its model-routing classifier request
const T = { timeout: 300000 };
const ACTIVE = new Set(["running", "working", "blocked"]);
const POLL_PAUSE_MS = 20;

before(() => {
  assert.ok(fs.existsSync(GEMINI_BIN), `${GEMINI_BIN} missing: run \`npm ci\` in ${INTEROP_DIR}`);
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
// Set-up

function startGeminiModel(scriptPath, logPath, timeoutMs = 15000) {
  const proc = spawn(process.execPath, [GEMINI_SERVER, "--script", scriptPath, "--log", logPath],
                     { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", d => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill("SIGKILL"); reject(new Error(`model server silent: ${stderr}`)); }, timeoutMs);
    proc.on("exit", code => { clearTimeout(timer); reject(new Error(`model server exited ${code}: ${stderr}`)); });
    readline.createInterface({ input: proc.stdout }).once("line", line => {
      clearTimeout(timer);
      proc.removeAllListeners("exit");
      resolve({
        port: JSON.parse(line).port,
        stop: () => new Promise(done => {
          if (proc.exitCode !== null || proc.signalCode !== null) return done();
          proc.once("exit", () => done());
          proc.kill("SIGTERM");
        }),
      });
    });
  });
}

// The person's own Gemini CLI settings in the test HOME: API-key auth (with a base URL alone the
// CLI picks the "gateway" auth type, which its non-interactive mode rejects), no usage statistics,
// telemetry or update checks. herd copies them into each agent's GEMINI_CLI_HOME and adds its server.
function writeUserSettings(home) {
  fs.mkdirSync(path.join(home, ".gemini"), { recursive: true });
  fs.writeFileSync(path.join(home, ".gemini", "settings.json"), JSON.stringify({
    security: { auth: { selectedType: "gemini-api-key" } },
    privacy: { usageStatisticsEnabled: false },
    telemetry: { enabled: false },
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
  }, null, 2));
}

// herd serve (and so every supervisor, CLI and MCP child) gets exactly this environment.
function agentEnvironment(w, modelPort) {
  return {
    PATH: `${BIN_DIR}:${process.env.PATH}`,
    HOME: w.home,
    XDG_STATE_HOME: w.state,
    CLAUDE_ORCHESTRATOR_WORKSPACE: w.ws,
    GEMINI_API_KEY: "test",
    GOOGLE_GEMINI_BASE_URL: `http://127.0.0.1:${modelPort}`,
  };
}

async function setUp(script) {
  const w = makeWorkspace("herd-gemini-agent-");
  const project = w.file("proj");
  fs.mkdirSync(project);
  writeUserSettings(w.home);
  const scriptPath = w.file("script.json");
  fs.writeFileSync(scriptPath, JSON.stringify(script, null, 1));
  const modelLog = w.file("model.log");
  const model = await startGeminiModel(scriptPath, modelLog);
  let sdk;
  try {
    sdk = await connectSdk(w, { env: agentEnvironment(w, model.port), args: ["--workspace", w.ws],
                                name: "herd-gemini-agent-test" });
  } catch (e) {
    await model.stop();
    throw e;
  }
  const ctx = {
    w, project, model, modelLog, sdk, taskId: undefined, taskDir: undefined, closed: false,
    async call(name, args, { timeoutMs = 120000 } = {}) {
      const result = await sdk.client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs });
      const content = structured(result);
      if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(content)}\n${diagnostics(ctx)}`);
      return content;
    },
    status: taskId => ctx.call("get_real_task_status", { task_id: taskId }),
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

function diagnostics(ctx) {
  const out = [];
  try {
    if (!ctx.taskDir) return "";
    out.push(`--- registry:\n${fs.readFileSync(path.join(ctx.taskDir, "AGENT_REGISTRY.json"), "utf8").slice(0, 6000)}`);
    const logs = path.join(ctx.taskDir, "logs");
    for (const f of fs.existsSync(logs) ? fs.readdirSync(logs) : [])
      out.push(`--- ${f} (tail):\n${fs.readFileSync(path.join(logs, f), "utf8").slice(-3000)}`);
    if (fs.existsSync(ctx.modelLog)) out.push(`--- model log (tail):\n${fs.readFileSync(ctx.modelLog, "utf8").slice(-3000)}`);
    out.push(`--- herd serve stderr (tail):\n${ctx.sdk?.stderr().slice(-2000) ?? ""}`);
  } catch (e) {
    out.push(`(diagnostics failed: ${e.message})`);
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Processes: every live process whose environment names the test's temp root (all that herd
// started for it inherit HOME and the workspace from herd serve), except herd serve itself.

function procStat(pid) {
  let text;
  try { text = fs.readFileSync(`/proc/${pid}/stat`, "utf8"); } catch { return undefined; }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { state: fields[0], startTime: Number(fields[19]) };
}
function running(pid, startTime) {
  const st = Number.isInteger(pid) && pid > 0 ? procStat(pid) : undefined;
  return st !== undefined && st.startTime === startTime && st.state !== "Z" && st.state !== "X";
}
function processesMarkedWith(marker, exclude) {
  const found = [];
  for (const name of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid || exclude.includes(pid)) continue;
    let environ;
    try { environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8"); } catch { continue; }
    if (!environ.includes(marker)) continue;
    const st = procStat(pid);
    if (!st || st.state === "Z" || st.state === "X") continue;
    let cmd = "";
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" "); } catch { /* gone */ }
    found.push({ pid, cmd });
  }
  return found;
}
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
async function assertAgentProcessesGone(entry, timeoutMs = 15000) {
  assert.equal(running(entry.pid, entry.process_start_time), false, `${entry.id}'s CLI ${entry.pid} still runs`);
  const deadline = Date.now() + timeoutMs;
  while (running(entry.supervisor_pid, entry.supervisor_start_time)) {
    if (Date.now() > deadline) assert.fail(`${entry.id}'s supervisor still runs ${timeoutMs} ms after the exit`);
    await new Promise(resolve => setTimeout(resolve, POLL_PAUSE_MS));
  }
}

// ---------------------------------------------------------------------------------------------
// What the model server sent, and what the CLI printed.

// The usage the model server sent in `answers` (its log lines), as herd records it: input_tokens
// are the prompt tokens (cached ones included), cache reads the cached ones, total the CLI's total.
function sentUsage(answers) {
  const sum = key => answers.reduce((n, e) => n + e.usage[key], 0);
  return { input_tokens: sum("promptTokenCount"), output_tokens: sum("candidatesTokenCount"),
           cache_read_input_tokens: sum("cachedContentTokenCount"), total_tokens: sum("totalTokenCount") };
}
const answered = log => log.filter(e => e.action === "answer");
function streamEvents(ctx, agentId) {
  const file = path.join(ctx.taskDir, "logs", `${agentId}_stream.jsonl`);
  // The CLI also writes notices to stderr ("YOLO mode is enabled..."), which share the log.
  return fs.readFileSync(file, "utf8").split("\n").filter(l => l.startsWith("{")).map(l => JSON.parse(l));
}
function assertUsage(recorded, expected, what) {
  for (const [key, value] of Object.entries(expected))
    assert.equal(recorded[key], value, `${what}: ${key} ${JSON.stringify(recorded)} vs sent ${JSON.stringify(expected)}`);
}

const PROGRESS = (status, message, progress) => ({
  tool: "update_agent_progress",
  input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status, message, progress },
});

// ---------------------------------------------------------------------------------------------
// Scenario 1

test("scenario 1: a Gemini CLI agent reports progress and a finding through herd's MCP server and completes", T, async () => {
  const started = Date.now();
  const ctx = await setUp({ steps: [
    PROGRESS("working", "gemini: reading the task", 20),
    { tool: "report_agent_finding",
      input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", finding_type: "insight", severity: "low",
               message: "gemini: the scripted model drives a real Gemini CLI", data: { source: "gemini" } } },
    PROGRESS("completed", "gemini: done", 100),
    { text: "Gemini agent finished." },
  ] });
  try {
    const taskId = await createTask(ctx, "end-to-end: a real Gemini CLI agent");
    const deployed = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "gemini-worker", backend: "gemini", model: MODEL,
      prompt: "Report your progress and a finding through herd, then complete.",
    });
    const agentId = deployed.agent_id;
    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "the agent to finish");
    const entry = agentIn(done, agentId);

    // Exit, status and what it reported through MCP.
    assert.equal(entry.status, "completed", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.exit_code, 0);
    assert.equal(entry.exit_signal ?? null, null);
    assert.equal(entry.backend, "gemini");
    assert.equal(entry.model, MODEL);
    assert.equal(entry.progress, 100);
    assert.equal(entry.last_message, "gemini: done");
    assert.equal(entry.liveness, "ended");
    assert.equal(done.agents.active, 0);
    const findings = readJsonLines(path.join(ctx.taskDir, "findings", `${agentId}_findings.jsonl`));
    assert.deepEqual(findings.map(f => [f.message, f.severity]), [["gemini: the scripted model drives a real Gemini CLI", "low"]]);
    const progress = readJsonLines(path.join(ctx.taskDir, "progress", `${agentId}_progress.jsonl`));
    assert.deepEqual(progress.map(p => p.message).filter(m => m.startsWith("gemini:")),
                     ["gemini: reading the task", "gemini: done"]);

    // The CLI really called herd's tools (as mcp_herd_<tool>), each with success.
    const events = streamEvents(ctx, agentId);
    const init = events.find(e => e.type === "init");
    assert.equal(init.session_id, entry.session_id, "the CLI ran under the session herd fixed");
    assert.match(entry.session_id, /^[0-9a-f-]{36}$/);
    assert.equal(init.model, MODEL);
    const uses = events.filter(e => e.type === "tool_use");
    assert.deepEqual(uses.map(e => e.tool_name),
                     ["mcp_herd_update_agent_progress", "mcp_herd_report_agent_finding", "mcp_herd_update_agent_progress"]);
    assert.deepEqual(uses.map(e => e.parameters.agent_id), [agentId, agentId, agentId]);
    const results = events.filter(e => e.type === "tool_result");
    assert.deepEqual(results.map(e => e.status), ["success", "success", "success"], JSON.stringify(results));

    // Usage: the CLI's result event, equal to what the model server sent.
    const log = readJsonLines(ctx.modelLog);
    const sent = sentUsage(answered(log));
    assert.equal(answered(log).filter(e => e.role === "agent").length, 4, "four agent turns: three calls and the text");
    assert.ok(sent.input_tokens > 0 && sent.cache_read_input_tokens > 0);
    assertUsage(entry.result.usage, sent, "the agent's recorded usage");
    assert.equal(entry.result.is_error, false);
    assert.equal(entry.result.subtype, "success");
    assert.equal(entry.result.num_turns, 4, "tool calls + 1");
    assert.equal(entry.result.session_id, entry.session_id);
    const resultLine = events.findLast(e => e.type === "result");
    assert.equal(resultLine.stats.input_tokens, sent.input_tokens);
    assert.equal(resultLine.stats.total_tokens, sent.total_tokens);
    assert.equal(done.usage.total_tokens, sent.total_tokens, `task usage ${JSON.stringify(done.usage)}`);

    // The result text, read back through herd.
    const parsed = await ctx.call("get_agent_output", { task_id: taskId, agent_id: agentId, format: "parsed",
                                                        max_bytes: 4194304 });
    const parsedLines = parsed.output.trimEnd().split("\n");
    assert.ok(parsedLines.includes("assistant: Gemini agent finished."), parsed.output);
    assert.ok(parsedLines.includes("assistant: [tool mcp_herd_report_agent_finding]"), parsed.output);
    assert.ok(parsedLines.includes(`result: success tokens=${sent.total_tokens} tool_calls=3`), parsed.output);
    const tail = await ctx.call("get_agent_output", { task_id: taskId, agent_id: agentId, format: "jsonl", tail: 2 });
    assert.deepEqual(tail.output.map(e => e.type), ["message", "result"]);
    assert.equal(tail.output[0].content, "Gemini agent finished.");

    // herd's Gemini home for the agent: the person's settings plus herd's server.
    const settings = JSON.parse(fs.readFileSync(
      path.join(ctx.taskDir, "agents", agentId, "gemini-home", ".gemini", "settings.json"), "utf8"));
    assert.equal(settings.security.auth.selectedType, "gemini-api-key");
    // herd serve on the task's workspace (with client_cwd: <client_cwd>/.agent-workspace).
    assert.deepEqual(settings.mcpServers.herd.args, ["serve", "--workspace", path.dirname(ctx.taskDir)]);

    await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after the agent finished");
    await ctx.close();
    await assertNoProcessLeft(ctx, "after herd serve closed", 5000);
    console.log(`scenario 1 took ${Date.now() - started} ms; usage ${JSON.stringify(entry.result.usage)}`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Scenario 2

test("scenario 2: send_agent_message resumes a finished Gemini CLI agent's session as its second turn", T, async () => {
  const started = Date.now();
  const ctx = await setUp({ turns: [
    { match: "Task ID:", steps: [PROGRESS("working", "turn one", 50), { text: "Turn one done." }] },
    { match: "^SECOND TURN:", steps: [PROGRESS("completed", "turn two", 100), { text: "Turn two done." }] },
  ] });
  try {
    const taskId = await createTask(ctx, "end-to-end: two turns of one Gemini CLI agent");
    const { agent_id: agentId } = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "gemini-worker", backend: "gemini", model: MODEL, prompt: "Look around.",
    });
    const first = agentIn(await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "turn 1's exit"), agentId);
    assert.equal(first.status, "completed", `${JSON.stringify(first)}\n${diagnostics(ctx)}`);
    const turnOneAnswers = answered(readJsonLines(ctx.modelLog));

    const sent = await ctx.call("send_agent_message", {
      task_id: taskId, agent_id: agentId, message: "SECOND TURN: finish now.",
    });
    assert.equal(sent.delivery, "new_turn", JSON.stringify(sent));
    assert.equal(sent.turn, 2);
    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)) && agentIn(s, agentId).turn === 2,
                                     "turn 2's exit");
    const entry = agentIn(done, agentId);
    assert.equal(entry.status, "completed", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.exit_code, 0);
    assert.equal(entry.last_message, "turn two");
    assert.equal(entry.session_id, first.session_id);
    assert.equal(entry.turns.length, 1);
    assert.deepEqual(entry.turns[0].result, first.result, "turn 1's figures are kept as recorded");

    // Each turn's usage is what the server sent during it (the resumed CLI does not re-count turn 1).
    const turnTwoAnswers = answered(readJsonLines(ctx.modelLog)).slice(turnOneAnswers.length);
    assertUsage(first.result.usage, sentUsage(turnOneAnswers), "turn 1");
    assertUsage(entry.result.usage, sentUsage(turnTwoAnswers), "turn 2");
    assert.equal(done.usage.total_tokens, first.result.usage.total_tokens + entry.result.usage.total_tokens);

    // Resumed, not restarted: turn 2's requests carry turn 1's prompt, then the follow-up.
    const turnTwo = turnTwoAnswers.filter(e => e.role === "agent");
    assert.deepEqual(turnTwo.map(e => e.turn), [1, 1], JSON.stringify(turnTwo));
    for (const request of turnTwo) {
      assert.ok(request.history.user_texts.some(t => t.includes("Task ID:") || t.includes("<session_context>")));
      assert.ok(request.history.user_texts.some(t => t.startsWith("SECOND TURN:")), JSON.stringify(request.history));
      assert.equal(request.vars.agent_id, agentId);
      assert.ok(request.contents > 4, `turn 1's messages are in the conversation: ${request.contents}`);
    }
    const events = streamEvents(ctx, agentId);
    assert.deepEqual(events.filter(e => e.type === "init").map(e => e.session_id), [first.session_id, first.session_id]);
    assert.deepEqual(events.filter(e => e.type === "message" && e.role === "assistant").map(e => e.content),
                     ["Turn one done.", "Turn two done."]);

    await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after the second turn");
    await ctx.close();
    console.log(`scenario 2 took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Scenario 3

test("scenario 3: the model API refuses the request; herd records the Gemini CLI's error and exit", T, async () => {
  const ctx = await setUp({ steps: [], error: { status: 400, message: "Bad request (scripted)" } });
  try {
    const taskId = await createTask(ctx, "end-to-end: a Gemini CLI agent whose model API fails");
    const { agent_id: agentId } = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "doomed", backend: "gemini", model: MODEL, prompt: "This cannot work.",
    });
    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "the agent to fail");
    const entry = agentIn(done, agentId);
    assert.equal(entry.status, "error", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.exit_code, 144, "Gemini CLI exits with the HTTP status 400, truncated to 8 bits");
    assert.equal(entry.result?.is_error, true, JSON.stringify(entry.result));
    assert.match(entry.error, /Bad request \(scripted\)/, `the recorded reason: ${entry.error}`);
    assert.equal(done.agents.active, 0);
    const requests = readJsonLines(ctx.modelLog).filter(e => e.method);
    assert.ok(requests.length >= 1 && requests.every(e => e.status === 400), JSON.stringify(requests));
    await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after the agent failed");
    await ctx.close();
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Scenario 4

test("scenario 4: kill_real_agent stops a Gemini CLI agent mid-run, with every process it started", T, async () => {
  const ctx = await setUp({ steps: [PROGRESS("working", "gemini: long job started", 5), { hang: true }] });
  try {
    const taskId = await createTask(ctx, "end-to-end: a Gemini CLI agent killed mid-run");
    const { agent_id: agentId } = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "sleeper", backend: "gemini", model: MODEL, prompt: "Work for a long time.",
    });
    // Its report arrived, and the model holds its next turn (the CLI waits on it).
    await waitForStatus(ctx, taskId, s => agentIn(s, agentId)?.last_message === "gemini: long job started" &&
                        readJsonLines(ctx.modelLog).some(e => e.action === "hang"), "the report and the held turn");
    // Gemini CLI relaunches itself: a parent that ignores SIGTERM, a child node process, and the
    // child's herd serve MCP server. The kill must reach all of them.
    const before = processesMarkedWith(ctx.w.root, [ctx.sdk.proc.pid]);
    assert.ok(before.length >= 4, `supervisor, CLI, its child and herd serve: ${JSON.stringify(before, null, 1)}`);

    const reason = "e2e: stopped mid-run by the test";
    const killed = await ctx.call("kill_real_agent", { task_id: taskId, agent_id: agentId, reason, grace_seconds: 10 });
    assert.equal(killed.status, "terminated", JSON.stringify(killed));
    assert.equal(killed.cleanup.all_exited, true, JSON.stringify(killed.cleanup));
    await assertNoProcessLeft(ctx, "after kill_real_agent", 5000);
    const entry = agentIn(await ctx.status(taskId), agentId);
    assert.equal(entry.status, "terminated", JSON.stringify(entry));
    assert.equal(entry.termination_reason, reason);
    assert.equal(entry.last_message, "gemini: long job started");
    assert.ok(entry.exit_signal === 15 || entry.exit_signal === 9 || Number.isInteger(entry.exit_code),
              `ended: exit_code ${entry.exit_code}, exit_signal ${entry.exit_signal}`);
    console.log(`scenario 4: the CLI ended with exit_code ${entry.exit_code}, exit_signal ${entry.exit_signal}; ` +
                `cleanup ${JSON.stringify(killed.cleanup)}`);
    await assertAgentProcessesGone(entry);
    await ctx.close();
  } finally {
    await ctx.close().catch(() => {});
  }
});
