// Real Claude Code agents deployed BY herd, end to end (issue 5, deliverable 1).
//
// A test client (the official MCP SDK) drives `herd serve --workspace <tmp>`; herd starts the real
// Claude Code CLI (backend "claude") under its per-agent supervisor, with a per-agent MCP config
// whose server is again `herd serve` on the same workspace. Every scenario runs once per CLI of
// TESTED_CLIS (2.0.30 and 2.1.332, see lib/claude_harness.mjs); its name starts with the version. The CLI's model is the scripted
// model server (model_server.mjs, scripts in fixtures/agent_scripts/), so each agent calls herd's
// tools deterministically and offline.
//
//   1. full loop: a lead reports progress and a finding, spawns a helper (a second real Claude Code
//      agent) and completes; the helper reports and completes. Registry (completed, exit 0,
//      result figures), progress and findings (status and journal files), stream logs through
//      get_agent_output, the tree and depths, active_count 0, herd's MCP server "connected" in
//      each CLI's init line, and no process left. Run twice: the lead exiting first (it does when
//      left alone), and the helper exiting first (the model holds the lead's last turn until the
//      test, having seen the helper's exit recorded, releases it).
//   2. kill mid-run: the agent reports once and its model hangs; kill_real_agent stops it and
//      every process it started (including the CLI's own `herd serve` MCP child).
//   3. crash: the model server answers every request with HTTP 500; the CLI gives up and exits;
//      herd records `error` with the reason.
//
// No fixed sleeps: the tests await responses and process exits, or poll get_real_task_status
// (each poll awaits its response; a 20 ms pause between polls, bounded by a deadline).
// Set HERD_E2E_KEEP=1 to keep the temp directories (registries, supervisor and stream logs).
//
// Run from the repository root:
//   HERD_BINARY=$PWD/build/herd node --test tests/interop/claude_agent.test.mjs
// (HERD_CLAUDE_VERSIONS=2.1.332 runs one version only.)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  TESTED_CLIS, assertInstalled, startModelServer, INTEROP_DIR, readJsonLines, mcpServerStatus,
} from "./lib/claude_harness.mjs";
import {
  HERD, makeWorkspace, makeGitRepo, connectSdk, structured, cleanupAllWorkspaces, stopAllAgents, waitUntil,
} from "./lib/herd_client.mjs";
import { running, cmdline, processesMarkedWith, processTree } from "./lib/processes.mjs";

const SCRIPTS = path.join(INTEROP_DIR, "fixtures/agent_scripts");
const CLAUDE_FLAGS = "--print --output-format stream-json --verbose --dangerously-skip-permissions " +
                     "--model sonnet --strict-mcp-config";
const T = { timeout: 300000 };
const ACTIVE = new Set(["running", "working", "blocked"]);
const POLL_PAUSE_MS = 20;

before(() => assertInstalled());
// A test per CLI: cliTest("scenario 2: ...", async cli => {...}) is "[Claude Code 2.0.30] scenario 2: ..."
// and "[Claude Code 2.1.332] scenario 2: ...".
function cliTest(what, fn) {
  for (const cli of TESTED_CLIS) test(`[Claude Code ${cli.version}] ${what}`, T, () => fn(cli));
}
// HERD_E2E_KEEP=1 keeps the temp directories (logs, registries) for a look after a failure;
// agents still running are stopped either way.
const roots = [];
after(async () => {
  if (process.env.HERD_E2E_KEEP) {
    for (const ctx of roots) await stopAllAgents(ctx.w).catch(() => {});
    console.log(`kept: ${roots.map(ctx => ctx.w.root).join(" ")}`);
    return;
  }
  await cleanupAllWorkspaces();
});

// ---------------------------------------------------------------------------------------------
// Set-up: a workspace, the model server, and `herd serve` with the environment the agents inherit.

// Everything herd serve (and so every supervisor, agent CLI and MCP child) gets. Nothing else of
// this process's environment leaks in (the SDK transport adds only HOME, LOGNAME, PATH, SHELL,
// TERM, USER, and the values below win).
function agentEnvironment(w, modelPort, cli) {
  return {
    PATH: process.env.PATH,
    HOME: w.home,
    XDG_STATE_HOME: w.state,
    CLAUDE_ORCHESTRATOR_WORKSPACE: w.ws,
    CLAUDE_EXECUTABLE: cli.bin,
    CLAUDE_FLAGS,
    ANTHROPIC_BASE_URL: `http://127.0.0.1:${modelPort}`,
    ANTHROPIC_API_KEY: "test",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_AUTOUPDATER: "1",
    CLAUDE_CODE_MAX_RETRIES: "0",
    IS_SANDBOX: "1",
  };
}

// Starts the model server with `script` and herd serve over the SDK, whose agents run `cli` (one of
// TESTED_CLIS). Returns a context with
// call(tool, args) (must succeed; returns structuredContent), status(taskId), the paths, and
// close() (herd serve and the model server, awaited).
async function setUp(script, cli) {
  const w = makeWorkspace("herd-claude-agent-");
  const project = w.file("proj");
  fs.mkdirSync(project);
  const modelLog = w.file("model.log");
  const model = await startModelServer(path.join(SCRIPTS, script), { logPath: modelLog });
  let sdk;
  try {
    sdk = await connectSdk(w, { env: agentEnvironment(w, model.port, cli), args: ["--workspace", w.ws],
                                name: "herd-claude-agent-test" });
  } catch (e) {
    await model.stop();
    throw e;
  }
  const ctx = {
    w, project, model, modelLog, sdk, cli,
    async call(name, args, { timeoutMs = 120000 } = {}) {
      const result = await sdk.client.callTool({ name, arguments: args }, undefined, { timeout: timeoutMs });
      const content = structured(result);
      if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(content)}\n${diagnostics(ctx)}`);
      return content;
    },
    status: taskId => ctx.call("get_real_task_status", { task_id: taskId }),
    taskId: undefined,
    taskDir: undefined,
    closed: false,
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
  roots.push(ctx);
  return ctx;
}

async function createTask(ctx, description) {
  const created = await ctx.call("create_real_task", { description, client_cwd: ctx.project, priority: "P1" });
  assert.match(created.task_id, /^TASK-/);
  ctx.taskId = created.task_id;
  // With client_cwd, the task lives in <client_cwd>/.agent-workspace/<task id>.
  assert.equal(created.workspace, path.join(ctx.project, ".agent-workspace", created.task_id));
  ctx.taskDir = created.workspace;
  return created.task_id;
}

// Polls get_real_task_status until `predicate(status)` holds; each poll awaits its response.
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
// Terminal, and the supervisor has recorded the process's exit (an agent that reported
// "completed" itself is terminal while its CLI is still finishing).
const exitRecorded = a => a && !ACTIVE.has(a.status) && a.phase === "exited" && a.ended_at;

// What to look at when something fails: registry, supervisor logs, stream-log tails, model log.
function diagnostics(ctx) {
  const out = [];
  try {
    if (!ctx.taskId) return "";
    const dir = ctx.taskDir;
    out.push(`--- registry ${dir}/AGENT_REGISTRY.json:\n${fs.readFileSync(path.join(dir, "AGENT_REGISTRY.json"), "utf8").slice(0, 8000)}`);
    const logs = path.join(dir, "logs");
    for (const f of fs.existsSync(logs) ? fs.readdirSync(logs) : []) {
      const text = fs.readFileSync(path.join(logs, f), "utf8");
      out.push(`--- ${f} (last 3000 chars):\n${text.slice(-3000)}`);
    }
    if (fs.existsSync(ctx.modelLog)) out.push(`--- model log (tail):\n${fs.readFileSync(ctx.modelLog, "utf8").slice(-3000)}`);
    out.push(`--- herd serve stderr (tail):\n${ctx.sdk?.stderr().slice(-2000) ?? ""}`);
  } catch (e) {
    out.push(`(diagnostics failed: ${e.message})`);
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Processes, by identity (lib/processes.mjs: pid + start time, field 22 of /proc/<pid>/stat).

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
// The agent's recorded process is gone at once (its supervisor reaps it before recording the exit);
// the supervisor itself finishes its clean-up after recording, so it gets a bounded wait.
async function assertAgentProcessesGone(entry, timeoutMs = 15000) {
  for (const [pidKey, startKey] of [["pid", "process_start_time"], ["supervisor_pid", "supervisor_start_time"]]) {
    assert.ok(Number.isInteger(entry[pidKey]) && entry[pidKey] > 0, `${entry.id}.${pidKey} recorded: ${entry[pidKey]}`);
    assert.ok(Number.isInteger(entry[startKey]) && entry[startKey] > 0, `${entry.id}.${startKey} recorded: ${entry[startKey]}`);
  }
  assert.equal(running(entry.pid, entry.process_start_time), false,
               `${entry.id}'s agent process ${entry.pid} still runs after its exit was recorded: ${cmdline(entry.pid)}`);
  const deadline = Date.now() + timeoutMs;
  while (running(entry.supervisor_pid, entry.supervisor_start_time)) {
    if (Date.now() > deadline)
      assert.fail(`${entry.id}'s supervisor ${entry.supervisor_pid} still runs ${timeoutMs} ms after the exit was recorded`);
    await new Promise(resolve => setTimeout(resolve, POLL_PAUSE_MS));
  }
}

// ---------------------------------------------------------------------------------------------
// Logs

function streamLogPath(ctx, agentId) { return path.join(ctx.taskDir, "logs", `${agentId}_stream.jsonl`); }
function supervisorLog(ctx, agentId) {
  const file = path.join(ctx.taskDir, "logs", `${agentId}_supervisor.log`);
  return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
}

// Reads the agent's stream log through get_agent_output (jsonl, parsed and text) and checks it.
// Returns the parsed lines.
async function readAgentOutput(ctx, agentId, { expectResult = true } = {}) {
  const jsonl = await ctx.call("get_agent_output", { task_id: ctx.taskId, agent_id: agentId, format: "jsonl",
                                                     include_metadata: true, max_bytes: 4194304 });
  assert.equal(jsonl.agent_id, agentId);
  assert.equal(jsonl.source, "stream_log");
  assert.equal(jsonl.truncated, false, "the whole log fits");
  assert.ok(Array.isArray(jsonl.output) && jsonl.output.length >= 2, `log lines: ${JSON.stringify(jsonl.output).slice(0, 2000)}`);
  const lines = jsonl.output;
  const nonJson = lines.filter(l => typeof l !== "object");
  assert.deepEqual(nonJson, [], "every stream-log line is a JSON event (nothing else reached the log)");
  const init = lines[0];
  assert.equal(init.type, "system", JSON.stringify(init).slice(0, 500));
  assert.equal(init.subtype, "init");
  assert.equal(init.cwd, ctx.project, "the agent runs in the task's client_cwd");
  const result = lines.findLast(l => l.type === "result");
  if (expectResult) {
    assert.ok(result, "a result line");
    assert.equal(lines.at(-1), result, "the result line is the last line");
  }
  // The same log as text and as "parsed" (one readable line per event).
  const text = await ctx.call("get_agent_output", { task_id: ctx.taskId, agent_id: agentId, max_bytes: 4194304 });
  assert.equal(text.output.trimEnd().split("\n").length, lines.length);
  const parsed = await ctx.call("get_agent_output", { task_id: ctx.taskId, agent_id: agentId, format: "parsed", max_bytes: 4194304 });
  assert.equal(typeof parsed.output, "string");
  assert.equal(parsed.output.trimEnd().split("\n").length, lines.length, "one parsed line per event");
  assert.ok(parsed.output.length > 0);
  const tail = await ctx.call("get_agent_output", { task_id: ctx.taskId, agent_id: agentId, format: "jsonl", tail: 1 });
  assert.deepEqual(tail.output, [lines.at(-1)], "tail 1 is the last event");
  return { lines, init, result, metadata: jsonl.metadata, parsed: parsed.output };
}

function assertHerdConnected(init, agentId) {
  assert.deepEqual(mcpServerStatus(init), [{ name: "herd", status: "connected" }],
                   `${agentId}: the init line shows herd's MCP server connected`);
  for (const tool of ["update_agent_progress", "report_agent_finding", "spawn_child_agent"])
    assert.ok(init.tools.includes(`mcp__herd__${tool}`), `${agentId}: the CLI offers mcp__herd__${tool}`);
}
// The tool calls an agent made (from its stream log) with their results; the ToolSearch calls that
// load Claude Code 2.1's deferred MCP tools are left out (toolSearches lists them).
function toolCalls(lines) {
  const uses = lines.filter(l => l.type === "assistant")
    .flatMap(l => l.message.content.filter(b => b.type === "tool_use" && b.name !== "ToolSearch"));
  const results = lines.filter(l => l.type === "user" && Array.isArray(l.message?.content))
    .flatMap(l => l.message.content.filter(b => b.type === "tool_result"));
  return uses.map(use => ({ name: use.name, input: use.input, result: results.find(r => r.tool_use_id === use.id) }));
}
// The queries of the agent's ToolSearch calls, e.g. ["select:mcp__herd__update_agent_progress"].
function toolSearches(lines) {
  return lines.filter(l => l.type === "assistant")
    .flatMap(l => l.message.content.filter(b => b.type === "tool_use" && b.name === "ToolSearch").map(b => b.input.query));
}
// What `cli` needs to load first for an agent that calls these MCP tools (in order of first use).
function expectedSearches(cli, tools) {
  return cli.toolSearch ? [...new Set(tools)].map(t => `select:mcp__herd__${t}`) : [];
}
function resultText(r) {
  return typeof r.content === "string" ? r.content : r.content.filter(b => b.type === "text").map(b => b.text).join("");
}
function assertUsageFigures(result, agentId) {
  assert.ok(result && typeof result === "object", `${agentId} has a result object`);
  assert.equal(typeof result.total_cost_usd, "number", `${agentId}.result.total_cost_usd`);
  assert.ok(Number.isInteger(result.num_turns) && result.num_turns >= 1, `${agentId}.result.num_turns ${result.num_turns}`);
  assert.ok(Number.isInteger(result.duration_ms) && result.duration_ms >= 0, `${agentId}.result.duration_ms`);
  assert.ok(result.usage && Number.isInteger(result.usage.input_tokens) && Number.isInteger(result.usage.output_tokens),
            `${agentId}.result.usage ${JSON.stringify(result.usage)}`);
}

// ---------------------------------------------------------------------------------------------
// The model server's per-conversation branches (used by scenario 1), at the HTTP level.

test("model server: branches pick a script per conversation from the first user message", T, async () => {
  const model = await startModelServer(path.join(SCRIPTS, "lead_and_helper.json"));
  try {
    const tools = ["update_agent_progress", "report_agent_finding", "spawn_child_agent"]
      .map(t => ({ name: `mcp__herd__${t}`, description: t, input_schema: { type: "object" } }));
    const ask = async first => {
      const res = await fetch(`${model.url}/v1/messages`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m", stream: false, tools, messages: [{ role: "user", content: first }] }),
      });
      assert.equal(res.status, 200);
      return (await res.json()).content;
    };
    const [lead] = await ask("Task ID: TASK-1\nAgent ID: lead-1\nParent: orchestrator\ngo");
    assert.equal(lead.name, "mcp__herd__update_agent_progress");
    assert.deepEqual(lead.input, { task_id: "TASK-1", agent_id: "lead-1", status: "working",
                                   message: "lead: reading the task", progress: 10 });
    const [helper] = await ask([{ type: "text", text: "Task ID: TASK-1\nAgent ID: helper-2\nParent: lead-1\ngo" }]);
    assert.deepEqual(helper.input, { task_id: "TASK-1", agent_id: "helper-2", status: "working",
                                     message: "helper: started", progress: 30 });
    const [none] = await ask("no parent line here");
    assert.equal(none.type, "text");
    assert.match(none.text, /No script branch matches/);
  } finally {
    await model.stop();
  }
});

test("model server: a wait_for step is held until the test releases its name", T, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "herd-model-wait-"));
  const script = path.join(dir, "script.json");
  fs.writeFileSync(script, JSON.stringify({ steps: [{ text: "let go", wait_for: "go" }] }));
  const logPath = path.join(dir, "model.log");
  const model = await startModelServer(script, { logPath });
  try {
    const tools = [{ name: "Bash", description: "Bash", input_schema: { type: "object" } }];
    const ask = () => fetch(`${model.url}/v1/messages`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", stream: false, tools, messages: [{ role: "user", content: "hi" }] }),
    }).then(r => r.json());
    let answered = false;
    const held = ask().then(r => { answered = true; return r; });
    const release = () => fetch(`${model.url}/control/release`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "go" }),
    }).then(r => r.json());
    const side = await fetch(`${model.url}/v1/messages`, {   // a side request is not held
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "title?" }] }),
    }).then(r => r.json());
    assert.equal(side.content[0].text, "OK");
    assert.equal(answered, false, "the agent turn is held");
    await waitUntil(() => readJsonLines(logPath).some(e => e.event === "held"), { what: "the held request in the log" });
    assert.equal(answered, false, "the agent turn is held");
    assert.deepEqual(await release(), { released: 1 });
    assert.equal((await held).content[0].text, "let go");
    assert.equal((await ask()).content[0].text, "let go", "a released name stays released");
  } finally {
    await model.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Scenario 1

// The full loop, in either order of exits. lead_and_helper.json lets the lead finish as soon as
// it can, which (the helper's CLI takes a second to start) is before its helper. With
// lead_waits_for_helper.json the model holds the lead's last report until the test releases it,
// once it has seen the helper's exit recorded: the helper exits first.
async function fullLoop(cli, script, { helperExitsFirst }) {
  const started = Date.now();
  const ctx = await setUp(script, cli);
  try {
    const taskId = await createTask(ctx, "end-to-end: a lead and a helper, both real Claude Code agents");
    const lead = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "lead", backend: "claude",
      prompt: "Report progress, report a finding, spawn a helper, then complete.",
    });
    const leadId = lead.agent_id;
    assert.match(leadId, /^lead-/);
    assert.equal(lead.parent, "orchestrator");
    assert.equal(lead.depth, 1);
    assert.ok(Number.isInteger(lead.pid), `deploy returns the started agent's pid: ${JSON.stringify(lead)}`);

    if (helperExitsFirst) {
      const helperGone = await waitForStatus(ctx, taskId, s => {
        const child = s.agents.agents_list.find(a => a.parent === leadId);
        return exitRecorded(child) || exitRecorded(agentIn(s, leadId));
      }, "the helper to exit while the lead waits");
      const l = agentIn(helperGone, leadId);
      assert.equal(l.status, "working", `the lead still works when its helper has exited: ${JSON.stringify(l)}\n${diagnostics(ctx)}`);
      assert.equal(l.liveness, "alive");
      const released = await fetch(`${ctx.model.url}/control/release`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "helper-exited" }),
      }).then(r => r.json());
      // 1 if the lead's last turn was already held, 0 if it comes later (it then passes at once).
      assert.ok(released.released <= 1, JSON.stringify(released));
    }

    // Until the lead has spawned its helper and both have exited (with the exit recorded).
    const done = await waitForStatus(ctx, taskId, s => {
      const l = agentIn(s, leadId);
      const children = s.agents.agents_list.filter(a => a.parent === leadId);
      // (A lead that ended without a child stops the wait too; the assertions below say why.)
      return exitRecorded(l) && children.every(exitRecorded);
    }, "the lead and its helper to finish");
    const leadEntry = agentIn(done, leadId);
    const helpers = done.agents.agents_list.filter(a => a.parent === leadId);
    assert.equal(helpers.length, 1, `exactly one child: ${JSON.stringify(done.agents)}\n${diagnostics(ctx)}`);
    const helperEntry = helpers[0];
    const helperId = helperEntry.id;
    assert.match(helperId, /^helper-/);
    if (helperExitsFirst) assert.ok(helperEntry.ended_at < leadEntry.ended_at, "the helper exited first");

    // Both completed with exit 0.
    for (const entry of [leadEntry, helperEntry]) {
      assert.equal(entry.status, "completed",
                   `${entry.id}: ${JSON.stringify(entry)}\nsupervisor log:\n${supervisorLog(ctx, entry.id)}\n${diagnostics(ctx)}`);
      assert.equal(entry.exit_code, 0, `${entry.id} exit_code`);
      assert.equal(entry.exit_signal ?? null, null, `${entry.id} exit_signal`);
      assert.equal(entry.progress, 100);
      assert.equal(entry.backend, "claude");
      assert.equal(entry.liveness, "ended");
      assert.equal(entry.result.is_error, false, `${entry.id} result ${JSON.stringify(entry.result)}`);
      assertUsageFigures(entry.result, entry.id);
    }
    assert.equal(leadEntry.last_message, "lead: done");
    assert.equal(helperEntry.last_message, "helper: done");

    // Tree: orchestrator -> lead -> helper; depths 1 and 2.
    assert.equal(leadEntry.parent, "orchestrator");
    assert.equal(leadEntry.depth, 1);
    assert.equal(helperEntry.parent, leadId);
    assert.equal(helperEntry.depth, 2);
    assert.equal(helperEntry.type, "helper");
    assert.deepEqual(done.hierarchy.orchestrator, [leadId]);
    assert.deepEqual(done.hierarchy[leadId], [helperId]);

    // Counts.
    assert.equal(done.agents.active, 0, "active_count 0");
    assert.equal(done.agents.total_spawned, 2);
    assert.equal(done.agents.completed, 2);
    assert.equal(done.agents.lost, 0);

    // Usage totals are the sum of the two agents' result figures.
    const cost = leadEntry.result.total_cost_usd + helperEntry.result.total_cost_usd;
    assert.ok(Math.abs(done.usage.total_cost_usd - cost) < 1e-9, `usage ${JSON.stringify(done.usage)}`);
    assert.equal(done.usage.num_turns, leadEntry.result.num_turns + helperEntry.result.num_turns);

    // Progress and findings: in get_real_task_status...
    // recent_updates is newest first.
    const updates = done.enhanced_progress.recent_updates;
    const byAgent = id => updates.filter(u => u.agent_id === id).reverse();
    assert.deepEqual(byAgent(leadId).map(u => [u.status, u.progress, u.message]),
                     [["working", 10, "lead: reading the task"], ["working", 40, "lead: analysis done"],
                      ["working", 70, "lead: helper spawned"], ["completed", 100, "lead: done"]],
                     `recent_updates ${JSON.stringify(updates)}`);
    assert.deepEqual(byAgent(helperId).map(u => [u.status, u.progress, u.message]),
                     [["working", 30, "helper: started"], ["working", 60, "helper: half way"],
                      ["completed", 100, "helper: done"]]);
    assert.equal(done.enhanced_progress.total_progress_entries, 7);
    assert.equal(done.enhanced_progress.total_findings, 1);
    const [finding] = done.enhanced_progress.recent_findings;
    assert.equal(finding.agent_id, leadId);
    assert.equal(finding.finding_type, "insight");
    assert.equal(finding.severity, "medium");
    assert.equal(finding.message, "lead: the scripted model drives a real agent");
    assert.deepEqual(finding.data, { source: "lead", step: "2" });

    // ...and in the journal files.
    const taskDir = ctx.taskDir;
    const leadJournal = readJsonLines(path.join(taskDir, "progress", `${leadId}_progress.jsonl`));
    assert.deepEqual(leadJournal.map(u => u.progress), [10, 40, 70, 100], "rising progress in the lead's journal");
    assert.deepEqual(leadJournal.map(u => u.status), ["working", "working", "working", "completed"]);
    const helperJournal = readJsonLines(path.join(taskDir, "progress", `${helperId}_progress.jsonl`));
    assert.deepEqual(helperJournal.map(u => u.progress), [30, 60, 100]);
    const findingsFile = readJsonLines(path.join(taskDir, "findings", `${leadId}_findings.jsonl`));
    assert.equal(findingsFile.length, 1);
    assert.equal(findingsFile[0].message, finding.message);
    assert.equal(fs.existsSync(path.join(taskDir, "findings", `${helperId}_findings.jsonl`)), false,
                 "the helper reported no finding");

    // Stream logs through get_agent_output.
    const leadOut = await readAgentOutput(ctx, leadId);
    const helperOut = await readAgentOutput(ctx, helperId);
    for (const [id, out, entry] of [[leadId, leadOut, leadEntry], [helperId, helperOut, helperEntry]]) {
      assertHerdConnected(out.init, id);
      // herd fixed the session at deploy (--session-id) and recorded it: the CLI used it.
      assert.match(entry.session_id ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
                   `${id}: a recorded session id`);
      assert.equal(out.init.session_id, entry.session_id, `${id}: the CLI's session is the recorded one`);
      assert.equal(out.result.session_id, entry.session_id);
      assert.equal(out.result.is_error, false);
      assert.equal(out.result.subtype, "success");
      // herd's recorded figures are the result line's.
      assert.equal(entry.result.total_cost_usd, out.result.total_cost_usd);
      assert.equal(entry.result.num_turns, out.result.num_turns);
      assert.equal(entry.result.duration_ms, out.result.duration_ms);
      assert.deepEqual(entry.result.usage, out.result.usage);
      // The running usage herd keeps ends as the result line's too.
      assert.equal(entry.usage.output_tokens, out.result.usage.output_tokens, `${id}: ${JSON.stringify(entry.usage)}`);
      assert.equal(entry.usage.input_tokens, out.result.usage.input_tokens);
      assert.equal(out.metadata.exit_code, 0);
      assert.equal(out.metadata.status, "completed");
      // get_agent_output metadata carries the same result figures.
      assert.deepEqual(out.metadata.result, entry.result);
    }
    assert.equal(leadOut.result.result, "Lead finished.");
    assert.equal(helperOut.result.result, "Helper finished.");

    // Every tool call the agents made went through herd and succeeded.
    const leadCalls = toolCalls(leadOut.lines);
    assert.deepEqual(leadCalls.map(c => c.name), [
      "mcp__herd__update_agent_progress", "mcp__herd__update_agent_progress", "mcp__herd__report_agent_finding",
      "mcp__herd__spawn_child_agent", "mcp__herd__update_agent_progress", "mcp__herd__update_agent_progress"]);
    for (const c of [...leadCalls, ...toolCalls(helperOut.lines)]) {
      assert.ok(c.result, `a result for ${c.name}`);
      assert.notEqual(c.result.is_error, true, `${c.name} failed: ${JSON.stringify(c.result.content)}`);
      assert.equal(c.input.task_id, taskId, "ids came from the prompt");
    }
    const spawned = JSON.parse(resultText(leadCalls[3].result));
    assert.equal(spawned.success, true);
    assert.equal(spawned.agent_id, helperId, "spawn_child_agent returned the helper's id");
    assert.equal(spawned.parent, leadId);
    assert.equal(spawned.depth, 2);
    assert.equal(toolCalls(helperOut.lines).length, 3);
    // Claude Code 2.1 loaded each MCP tool's schema (ToolSearch) before its first call.
    assert.deepEqual(toolSearches(leadOut.lines),
                     expectedSearches(cli, ["update_agent_progress", "report_agent_finding", "spawn_child_agent"]));
    assert.deepEqual(toolSearches(helperOut.lines), expectedSearches(cli, ["update_agent_progress"]));

    // The helper's prompt names its parent; the model played one branch per agent.
    const helperPrompt = fs.readFileSync(path.join(taskDir, "prompts", `${helperId}.txt`), "utf8");
    assert.match(helperPrompt, new RegExp(`^Parent: ${leadId}$`, "m"));
    assert.match(helperPrompt, new RegExp(`Help the lead agent ${leadId}`));
    const agentTurns = readJsonLines(ctx.modelLog).filter(e => e.role === "agent");
    assert.deepEqual([...new Set(agentTurns.map(e => `${e.branch}:${e.vars.agent_id}`))].sort(),
                     [`0:${leadId}`, `1:${helperId}`].sort());

    // No process left: the recorded agents and supervisors by identity, then anything at all
    // started with this test's environment (CLIs, their `herd serve` MCP children, ...).
    for (const entry of [leadEntry, helperEntry]) await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after both agents finished");
    await ctx.close();
    await assertNoProcessLeft(ctx, "after herd serve closed", 5000);
    console.log(`Claude Code ${cli.version}: scenario 1 (${script}) took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
}

cliTest("scenario 1: a Claude Code lead reports through herd, spawns a Claude Code helper and finishes; the helper completes too",
        cli => fullLoop(cli, "lead_and_helper.json", { helperExitsFirst: false }));

cliTest("scenario 1, other order: the helper completes and exits while the lead still works, then the lead completes",
        cli => fullLoop(cli, "lead_waits_for_helper.json", { helperExitsFirst: true }));

// ---------------------------------------------------------------------------------------------
// Scenario 2

cliTest("scenario 2: kill_real_agent stops a Claude Code agent mid-run, with every process it started", async cli => {
  const started = Date.now();
  const ctx = await setUp("progress_then_hang.json", cli);
  try {
    const taskId = await createTask(ctx, "end-to-end: an agent killed mid-run");
    const deployed = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "worker", backend: "claude", prompt: "Work for a long time.",
    });
    const agentId = deployed.agent_id;

    // Its first report arrived...
    const working = await waitForStatus(ctx, taskId, s => agentIn(s, agentId)?.last_message === "long job: started" ||
                                                          exitRecorded(agentIn(s, agentId)),
                                        "the agent's progress report");
    const before = agentIn(working, agentId);
    assert.equal(before.status, "working", `${JSON.stringify(before)}\n${diagnostics(ctx)}`);
    // ...and the CLI is waiting on the model's answer to its next turn (the one that hangs).
    await waitUntil(() => readJsonLines(ctx.modelLog).some(e => e.role === "agent" && e.action === "hang"),
                    { timeoutMs: 60000, intervalMs: POLL_PAUSE_MS, what: "the agent's next model request (held)" });
    assert.equal(before.progress, 5);
    assert.equal(before.liveness, "alive");
    assert.equal(working.agents.active, 1);
    assert.ok(running(before.pid, before.process_start_time), "the agent runs");
    assert.ok(running(before.supervisor_pid, before.supervisor_start_time), "its supervisor runs");

    // What runs now: supervisor -> claude CLI -> its `herd serve` MCP server (and maybe more).
    const tree = processTree(before.supervisor_pid);
    const cliProcess = tree.find(p => p.pid === before.pid);
    assert.ok(cliProcess, `the agent is under its supervisor: ${JSON.stringify(tree)}`);
    const mcpChild = tree.find(p => p.pid !== before.supervisor_pid && / serve --workspace /.test(p.cmd) &&
                                    p.cmd.startsWith(HERD));
    assert.ok(mcpChild, `the CLI's herd serve MCP child is in the tree: ${JSON.stringify(tree, null, 1)}`);
    // The leftover check below would see them: they all carry the test's environment.
    const marked = processesMarkedWith(ctx.w.root, [ctx.sdk.proc.pid]).map(p => p.pid);
    for (const p of [before.supervisor_pid, before.pid, mcpChild.pid])
      assert.ok(marked.includes(p), `process ${p} found by its environment: ${JSON.stringify(marked)}`);
    const stream = fs.readFileSync(streamLogPath(ctx, agentId), "utf8");
    assertHerdConnected(JSON.parse(stream.split("\n")[0]), agentId);

    const reason = "e2e: stopped mid-run by the test";
    const killed = await ctx.call("kill_real_agent", { task_id: taskId, agent_id: agentId, reason, grace_seconds: 10 });
    assert.equal(killed.status, "terminated");
    assert.equal(killed.reason, reason);
    assert.ok(killed.cleanup.signalled >= 2, `the CLI and its MCP child were signalled: ${JSON.stringify(killed.cleanup)}`);
    assert.equal(killed.cleanup.all_exited, true, JSON.stringify(killed.cleanup));
    assert.equal(killed.cleanup.supervisor_finished, true, JSON.stringify(killed.cleanup));

    // Everything that ran is gone, at once (kill_real_agent waited for it).
    const leftInTree = tree.filter(p => running(p.pid, p.startTime));
    assert.deepEqual(leftInTree, [], `processes of the agent left after kill_real_agent:\n${diagnostics(ctx)}`);
    await assertNoProcessLeft(ctx, "after kill_real_agent", 0);

    const after = await ctx.status(taskId);
    const entry = agentIn(after, agentId);
    assert.equal(entry.status, "terminated", JSON.stringify(entry));
    assert.equal(entry.termination_reason, reason);
    assert.equal(entry.phase, "exited", `the supervisor recorded the exit: ${JSON.stringify(entry)}`);
    // Claude Code handles SIGTERM by calling exit(143) itself, so the exit is code 143 (128 +
    // SIGTERM) unless the grace ran out and SIGKILL was needed (exit_signal 9).
    assert.ok(entry.exit_signal === 15 || entry.exit_signal === 9 || entry.exit_code === 143,
              `ended by the kill's signal: exit_code ${entry.exit_code}, exit_signal ${entry.exit_signal}`);
    assert.equal(entry.liveness, "ended");
    assert.equal(after.agents.active, 0);
    assert.equal(entry.last_message, "long job: started", "the last report is kept");
    await assertAgentProcessesGone(entry);

    // The log stays readable: init line, the tool call, and no result line (the CLI was stopped).
    const out = await readAgentOutput(ctx, agentId, { expectResult: false });
    assert.equal(out.result, undefined, "no result line: the agent did not finish its turn");
    assert.deepEqual(toolCalls(out.lines).map(c => c.name), ["mcp__herd__update_agent_progress"]);
    assert.equal(out.metadata.status, "terminated");
    const journal = readJsonLines(path.join(ctx.taskDir, "progress", `${agentId}_progress.jsonl`));
    assert.deepEqual(journal.map(u => [u.status, u.progress]), [["working", 5]]);

    // The model server was left hanging on exactly the second agent turn.
    const turns = readJsonLines(ctx.modelLog).filter(e => e.role === "agent" && !e.tool_search);
    assert.deepEqual(turns.map(e => [e.step, e.action]), [[0, "message"], [1, "hang"]]);

    await ctx.close();
    await assertNoProcessLeft(ctx, "after herd serve closed", 5000);
    console.log(`Claude Code ${cli.version}: scenario 2 took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Scenario 3

cliTest("scenario 3: the agent CLI fails (model API returns 500) and herd records error with the reason", async cli => {
  const started = Date.now();
  const ctx = await setUp("api_error.json", cli);
  try {
    const taskId = await createTask(ctx, "end-to-end: an agent whose model API fails");
    const deployed = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "doomed", backend: "claude", prompt: "This cannot work.",
    });
    const agentId = deployed.agent_id;

    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "the agent to fail");
    const entry = agentIn(done, agentId);
    assert.equal(entry.status, "error", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.exit_code, 1, "Claude Code exits 1 after an API error");
    assert.equal(entry.exit_signal ?? null, null);
    assert.equal(typeof entry.error, "string");
    assert.match(entry.error, /error/i, `the recorded reason: ${entry.error}`);
    const reason = entry.error;
    assert.equal(entry.liveness, "ended");
    assert.equal(done.agents.active, 0);
    assert.equal(done.agents.completed, 0);
    // The CLI's own verdict is kept: an error result with no cost.
    assert.equal(entry.result?.is_error, true, `result ${JSON.stringify(entry.result)}`);
    assert.equal(entry.result.total_cost_usd, 0);
    await assertAgentProcessesGone(entry);

    // The log says what went wrong.
    const out = await readAgentOutput(ctx, agentId);
    assert.equal(out.result.is_error, true);
    assert.match(out.result.result, /API Error: 500/);
    assert.match(out.result.result, /scripted crash/);
    assert.equal(out.metadata.status, "error");
    assert.equal(out.metadata.exit_code, 1);
    const errors = await ctx.call("get_agent_output", { task_id: taskId, agent_id: agentId, filter: "API Error: 500" });
    assert.ok(errors.lines >= 1, "filter finds the API error in the log");

    // The model server really answered 500 to every request.
    const requests = readJsonLines(ctx.modelLog).filter(e => e.path?.startsWith("/v1/messages"));
    assert.ok(requests.length >= 1);
    assert.ok(requests.every(e => e.status === 500), JSON.stringify(requests));

    await assertNoProcessLeft(ctx, "after the agent failed");
    await ctx.close();
    await assertNoProcessLeft(ctx, "after herd serve closed", 5000);
    console.log(`Claude Code ${cli.version}: scenario 3 took ${Date.now() - started} ms; herd recorded: ${reason}`);

    // The recorded reason (what `herd status` and get_real_task_status show as the agent's error)
    // says what went wrong, not only that the CLI's result was an error: herd has the CLI's error
    // text from the result line.
    assert.match(reason, /API Error: 500/, `the agent's recorded error names the API failure: "${reason}"`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Scenarios 4 and 5: follow-up messages (send_agent_message), each a new turn that resumes the
// agent's Claude Code session (--resume <the session id herd fixed at deploy>).

// The stream log's events, every turn's (each turn appends its own init ... result).
function streamEvents(ctx, agentId) {
  return readJsonLines(streamLogPath(ctx, agentId));
}

cliTest("scenario 4: send_agent_message resumes a finished Claude Code agent's session as its second turn", async cli => {
  const started = Date.now();
  const ctx = await setUp("two_turns.json", cli);
  try {
    const taskId = await createTask(ctx, "end-to-end: two turns of one agent");
    const { agent_id: agentId } = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "worker", backend: "claude", prompt: "Look around.",
    });
    const firstWait = await ctx.call("wait_for_agents", { task_id: taskId, agent_ids: [agentId], timeout_seconds: 120 },
                                     { timeoutMs: 180000 });
    assert.equal(firstWait.condition_met, true, `${JSON.stringify(firstWait)}\n${diagnostics(ctx)}`);
    const first = agentIn(await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "turn 1's exit"),
                          agentId);
    assert.equal(first.status, "completed", `${JSON.stringify(first)}\n${diagnostics(ctx)}`);
    assertUsageFigures(first.result, agentId);

    const sent = await ctx.call("send_agent_message", {
      task_id: taskId, agent_id: agentId, message: "SECOND TURN: now follow up on what you found.",
    });
    assert.equal(sent.delivery, "new_turn", JSON.stringify(sent));
    assert.equal(sent.turn, 2);
    const secondWait = await ctx.call("wait_for_agents", { task_id: taskId, agent_ids: [agentId], timeout_seconds: 120 },
                                      { timeoutMs: 180000 });
    assert.equal(secondWait.condition_met, true, `${JSON.stringify(secondWait)}\n${diagnostics(ctx)}`);
    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)) && agentIn(s, agentId).turn === 2,
                                     "turn 2's exit");
    const entry = agentIn(done, agentId);

    // The record: two turns, the first kept as it ended, the same session, usage summed.
    assert.equal(entry.status, "completed", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.exit_code, 0);
    assert.equal(entry.turns.length, 1);
    assert.equal(entry.turns[0].number, 1);
    assert.equal(entry.turns[0].status, "completed");
    assert.equal(entry.turns[0].exit_code, 0);
    assert.deepEqual(entry.turns[0].result, first.result, "turn 1's figures are kept as recorded");
    assert.equal(entry.session_id, first.session_id);
    assert.match(entry.turn_message.preview, /^SECOND TURN:/);
    assertUsageFigures(entry.result, agentId);
    assert.equal(done.usage.num_turns, first.result.num_turns + entry.result.num_turns, JSON.stringify(done.usage));
    assert.ok(Math.abs(done.usage.total_cost_usd - (first.result.total_cost_usd + entry.result.total_cost_usd)) < 1e-9,
              `task usage ${JSON.stringify(done.usage)} is the sum of the two turns`);
    assert.equal(done.agents.active, 0);

    // The session resumed: turn 2's requests to the model carried turn 1's conversation (its
    // prompt and its tool call), and the CLI ran both turns under the recorded session.
    const agentRequests = readJsonLines(ctx.modelLog).filter(e => e.role === "agent");
    const turnOne = agentRequests.filter(e => e.turn === 0);
    const turnTwo = agentRequests.filter(e => e.turn === 1);
    assert.ok(turnOne.length >= 2 && turnTwo.length >= 1, JSON.stringify(agentRequests.map(e => e.turn)));
    const turnOneToolIds = turnOne.at(-1).history.tool_use_ids;
    assert.equal(turnOneToolIds.length, 1, "turn 1 made one tool call");
    for (const request of turnTwo) {
      assert.match(request.history.user_texts[0], /You are one agent in a herd/, "turn 1's prompt comes first");
      assert.ok(request.history.user_texts.some(t => t.startsWith("SECOND TURN:")), "then the follow-up");
      assert.ok(request.history.tool_use_ids.includes(turnOneToolIds[0]),
                `turn 2 was sent turn 1's tool call ${turnOneToolIds[0]}: ${JSON.stringify(request.history)}`);
      assert.equal(request.vars.agent_id, agentId, "the ids still come from the first prompt");
    }
    const inits = streamEvents(ctx, agentId).filter(e => e.type === "system" && e.subtype === "init");
    assert.deepEqual(inits.map(e => e.session_id), [first.session_id, first.session_id]);
    const results = streamEvents(ctx, agentId).filter(e => e.type === "result");
    assert.deepEqual(results.map(e => e.result), ["Turn one done.", "Turn two done."]);
    // What each turn cost: herd records the run's own. 2.1's second result line says what the
    // whole session cost (both runs); herd keeps that as session_total_cost_usd.
    assert.equal(first.result.total_cost_usd, results[0].total_cost_usd);
    if (cli.sessionCost) {
      assert.ok(Math.abs(results[1].total_cost_usd - (first.result.total_cost_usd + entry.result.total_cost_usd)) < 1e-9,
                `the CLI's turn-2 cost ${results[1].total_cost_usd} is the session's; herd's: ${JSON.stringify(entry.result)}`);
      assert.equal(entry.result.session_total_cost_usd, results[1].total_cost_usd);
      const own = Object.values(results[1].model_usage_since_last_result).reduce((sum, m) => sum + m.costUSD, 0);
      assert.ok(Math.abs(entry.result.total_cost_usd - own) < 1e-9);
    } else {
      assert.equal(entry.result.total_cost_usd, results[1].total_cost_usd);
      assert.equal(entry.result.session_total_cost_usd, undefined);
    }
    // herd's running usage ends as the result line's (2.1's assistant lines count 1 output token each).
    assert.equal(entry.usage.output_tokens, results[1].usage.output_tokens, JSON.stringify(entry.usage));
    assert.equal(entry.usage.input_tokens, results[1].usage.input_tokens);
    const findings = readJsonLines(path.join(ctx.taskDir, "findings", `${agentId}_findings.jsonl`));
    assert.deepEqual(findings.map(f => f.message), ["turn two: followed up"]);

    await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after the second turn");
    await ctx.close();
    console.log(`Claude Code ${cli.version}: scenario 4 took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

cliTest("scenario 5: a queued follow-up waits for the running turn; an interrupting one stops it and runs first", async cli => {
  const started = Date.now();
  const ctx = await setUp("interrupt_and_queue.json", cli);
  try {
    const taskId = await createTask(ctx, "end-to-end: queued and interrupting follow-ups");
    const { agent_id: agentId } = await ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "worker", backend: "claude", prompt: "Work for a long time.",
    });
    // Turn 1 reported, and its CLI waits on a model answer that never comes.
    await waitUntil(() => readJsonLines(ctx.modelLog).some(e => e.role === "agent" && e.action === "hang"),
                    { timeoutMs: 60000, intervalMs: POLL_PAUSE_MS, what: "turn 1's held model request" });
    const running1 = agentIn(await ctx.status(taskId), agentId);
    assert.equal(running1.status, "working");

    const queued = await ctx.call("send_agent_message", { task_id: taskId, agent_id: agentId, message: "QUEUED: do this after." });
    assert.equal(queued.delivery, "queued");
    assert.equal(queued.queue_position, 1);
    assert.equal(queued.interrupt_sent, false);
    const urgent = await ctx.call("send_agent_message", {
      task_id: taskId, agent_id: agentId, message: "INTERRUPT: stop and do this now.", interrupt: true,
    });
    assert.equal(urgent.delivery, "queued");
    assert.equal(urgent.queue_position, 1, "an interrupt goes first");
    assert.equal(urgent.interrupt_sent, true, JSON.stringify(urgent));

    // The agent stays active from turn to turn: one wait covers all three.
    const waited = await ctx.call("wait_for_agents", { task_id: taskId, agent_ids: [agentId], timeout_seconds: 150 },
                                  { timeoutMs: 200000 });
    assert.equal(waited.condition_met, true, `${JSON.stringify(waited)}\n${diagnostics(ctx)}`);
    const done = await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agentId)), "turn 3's exit");
    const entry = agentIn(done, agentId);
    assert.equal(entry.turn, 3, `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
    assert.equal(entry.status, "completed");
    assert.deepEqual(entry.turns.map(t => t.status), ["terminated", "completed"]);
    assert.match(entry.turns[0].termination_reason, /interrupted/);
    // Turn 1 was stopped before its result; turns 2 and 3 each ended with theirs.
    const results = streamEvents(ctx, agentId).filter(e => e.type === "result");
    assert.deepEqual(results.map(e => e.result), ["Redirected by the interrupt.", "Did the queued one."]);
    assert.equal(entry.turns[1].result.num_turns, results[0].num_turns);
    assert.equal(entry.result.num_turns, results[1].num_turns);
    assert.equal(entry.message_queue, undefined, "nothing left waiting");
    assert.ok(!running(running1.pid, running1.process_start_time), "turn 1's CLI is gone");

    // The model saw the interrupting message before the queued one, each in the resumed session.
    const agentRequests = readJsonLines(ctx.modelLog).filter(e => e.role === "agent");
    const order = agentRequests.map(e => e.turn).filter((t, i, all) => i === 0 || all[i - 1] !== t);
    assert.deepEqual(order, [0, 1, 2], JSON.stringify(agentRequests.map(e => e.turn)));
    for (const request of agentRequests.filter(e => e.turn > 0)) {
      assert.match(request.history.user_texts[0], /You are one agent in a herd/);
    }

    await assertAgentProcessesGone(entry);
    await assertNoProcessLeft(ctx, "after the last turn");
    await ctx.close();
    console.log(`Claude Code ${cli.version}: scenario 5 took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
});

// ---------------------------------------------------------------------------------------------
// Scenario 6: two Claude Code agents of one task, each in its own git worktree, edit the same line
// of the same file with the CLI's Read and Edit tools and commit with its Bash tool, in parallel.

cliTest("scenario 6: two Claude Code agents edit one file in their own worktrees; one merges, the other's conflict is named", async cli => {
  const started = Date.now();
  const ctx = await setUp("worktree_editors.json", cli);
  try {
    const git = makeGitRepo(ctx.project, { "greeting.txt": "Hello,\nworld\n" });
    const created = await ctx.call("create_real_task", {
      description: "end-to-end: two agents, one file, two worktrees", client_cwd: ctx.project, worktree: true,
    });
    ctx.taskId = created.task_id;
    ctx.taskDir = created.workspace;
    const taskId = created.task_id;
    const [first, second] = await Promise.all(["herd", "everyone"].map(word => ctx.call("deploy_headless_agent", {
      task_id: taskId, agent_type: "greeter", backend: "claude",
      prompt: `Write the word ${word} in place of "world" in greeting.txt, then commit it.`,
    })));
    const waited = await ctx.call("wait_for_agents", { task_id: taskId, timeout_seconds: 120 }, { timeoutMs: 180000 });
    assert.equal(waited.condition_met, true, `${JSON.stringify(waited)}\n${diagnostics(ctx)}`);

    // Each agent's work, read through MCP: one commit ahead, nothing left uncommitted.
    for (const [agent, word] of [[first, "herd"], [second, "everyone"]]) {
      const entry = agentIn(await waitForStatus(ctx, taskId, s => exitRecorded(agentIn(s, agent.agent_id)),
                                                `${agent.agent_id}'s exit`), agent.agent_id);
      assert.equal(entry.status, "completed", `${JSON.stringify(entry)}\n${diagnostics(ctx)}`);
      assert.equal(entry.last_message, `wrote ${word}`);
      const diff = await ctx.call("get_agent_diff", { task_id: taskId, agent_id: agent.agent_id });
      assert.match(diff.diff, new RegExp(`^-world$`, "m"));
      assert.match(diff.diff, new RegExp(`^\\+${word}$`, "m"), diff.diff);
      assert.equal(diff.summary.commits_ahead, 1, JSON.stringify(diff.summary));
      assert.equal(diff.summary.dirty, false);
      const calls = toolCalls(streamEvents(ctx, agent.agent_id)).map(c => c.name);
      assert.deepEqual(calls, ["Read", "Edit", "Bash", "mcp__herd__update_agent_progress"], "the CLI's own tools did the work");
    }

    // The first merges; the second conflicts on the same line: refused, naming the file, nothing changed.
    const merged = await ctx.call("merge_agent_work", { task_id: taskId, agent_id: first.agent_id });
    assert.ok(JSON.stringify(merged).includes("greeting.txt"), JSON.stringify(merged));
    assert.equal(fs.readFileSync(path.join(ctx.project, "greeting.txt"), "utf8"), "Hello,\nherd\n");
    const mainAfterFirst = git("rev-parse", "main");
    const refused = await ctx.sdk.client.callTool({ name: "merge_agent_work",
                                                    arguments: { task_id: taskId, agent_id: second.agent_id } });
    assert.equal(refused.isError, true, JSON.stringify(refused));
    assert.match(JSON.stringify(refused.content), /greeting\.txt/, "the conflicting file is named");
    assert.equal(git("rev-parse", "main"), mainAfterFirst, "the refused merge changed nothing");
    assert.equal(fs.readFileSync(path.join(ctx.project, "greeting.txt"), "utf8"), "Hello,\nherd\n");
    // Nothing of either agent's work is lost: the second's commit is still on its branch.
    assert.equal(git("show", `herd/${taskId}/${second.agent_id}:greeting.txt`), "Hello,\neveryone");

    await assertNoProcessLeft(ctx, "after both agents ended");
    await ctx.close();
    console.log(`Claude Code ${cli.version}: scenario 6 took ${Date.now() - started} ms`);
  } finally {
    await ctx.close().catch(() => {});
  }
});
