// Claude Code as an MCP CLIENT of `herd serve` (not as an agent): the real CLI, started with
// --mcp-config pointing at `herd serve --workspace <tmp>`, driven offline by the scripted model
// server (model_server.mjs). It must connect to herd, list herd's tools, and call them. Every test
// runs once per CLI of TESTED_CLIS (2.0.30 and 2.1.332); its name starts with the version.
// Run: HERD_BINARY=$PWD/build/herd node --test tests/interop/claude_client.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import {
  TESTED_CLIS, assertInstalled, makeSandbox, startModelServer, writeMcpConfig, runClaude, readJsonLines,
  mcpServerStatus,
} from "./lib/claude_harness.mjs";
import { HERD, TOOL_NAMES, makeWorkspace, sleeperCommand, waitForLog, isAlive, cleanupAllWorkspaces } from "./lib/herd_client.mjs";

const T = { timeout: 180000 };
const sandboxes = [];
before(() => assertInstalled());
after(async () => {
  for (const s of sandboxes) s.cleanup();
  await cleanupAllWorkspaces();
});

function cliTest(what, fn) {
  for (const cli of TESTED_CLIS) test(`[Claude Code ${cli.version}] ${what}`, T, () => fn(cli));
}

// Runs Claude Code `cli` with `herd serve --workspace <ws>` as its MCP server "herd" and the given
// model script. Returns {run, log (model server requests), toolPairs: [{use, result}], searches}:
// the tool calls with their results, and apart from them the ToolSearch queries with which 2.1
// loads its deferred tools' schemas.
async function runWithHerd(cli, w, script, prompt) {
  const sb = makeSandbox("herd-claude-client-");
  sandboxes.push(sb);
  fs.writeFileSync(sb.file("script.json"), JSON.stringify(script));
  const model = await startModelServer(sb.file("script.json"), { logPath: sb.file("model.log") });
  try {
    const mcpConfig = writeMcpConfig(sb.file("mcp.json"), {
      command: HERD, args: ["serve", "--workspace", w.ws], env: { XDG_STATE_HOME: w.state },
    });
    const run = await runClaude({ cli, port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt });
    const allUses = run.lines.filter(l => l.type === "assistant")
      .flatMap(l => l.message.content.filter(b => b.type === "tool_use"));
    const uses = allUses.filter(b => b.name !== "ToolSearch");
    const searches = allUses.filter(b => b.name === "ToolSearch").map(b => b.input.query);
    const results = run.lines.filter(l => l.type === "user" && Array.isArray(l.message?.content))
      .flatMap(l => l.message.content.filter(b => b.type === "tool_result"));
    const toolPairs = uses.map(use => ({ use, result: results.find(r => r.tool_use_id === use.id) }));
    return { run, log: readJsonLines(sb.file("model.log")), toolPairs, searches };
  } finally {
    await model.stop();
  }
}

function resultText(result) {
  if (typeof result.content === "string") return result.content;
  return result.content.filter(b => b.type === "text").map(b => b.text).join("");
}
function assertConnected(run) {
  assert.equal(run.code, 0, `claude exit ${run.code}; stderr:\n${run.stderr}`);
  const init = run.lines[0];
  assert.equal(init.type, "system");
  assert.equal(init.subtype, "init");
  assert.deepEqual(mcpServerStatus(init), [{ name: "herd", status: "connected" }]);
  for (const name of TOOL_NAMES) assert.ok(init.tools.includes(`mcp__herd__${name}`), `init lists mcp__herd__${name}`);
  assert.equal(run.result?.is_error, false, JSON.stringify(run.result));
}
function assertToolsSucceeded(toolPairs, names) {
  assert.deepEqual(toolPairs.map(p => p.use.name), names);
  for (const { use, result } of toolPairs) {
    assert.ok(result, `a tool_result for ${use.name}`);
    assert.notEqual(result.is_error, true, `${use.name} failed: ${JSON.stringify(result.content)}`);
  }
}

cliTest("Claude Code connects to herd serve, lists its tools, calls create_real_task and get_real_task_status", async cli => {
  const w = makeWorkspace("herd-claude-ws-");
  // A task made beforehand through the CLI: its id is in the prompt ("Task ID: ..."), so the
  // scripted model can ask for its status.
  const before = await w.herd(["task", "create", "a task created by the test through the herd CLI"]);
  assert.equal(before.code, 0, before.stderr);
  const knownTask = before.json.task_id;

  const { run, log, toolPairs, searches } = await runWithHerd(cli, w, {
    steps: [
      { tool: "create_real_task", server: "herd",
        input: { description: "created by Claude Code through herd serve", priority: "P1",
                 success_criteria: ["the task is listed"], expected_deliverables: ["a task"] } },
      { tool: "get_real_task_status", server: "herd", input: { task_id: "{{task_id}}" } },
      { tool: "ReadMcpResourceTool", input: { server: "herd", uri: "tasks://list" } },
      { text: "Both tasks are there." },
    ],
  }, `Task ID: ${knownTask}\nCreate a task, then check on the existing one.`);

  assertConnected(run);
  assertToolsSucceeded(toolPairs, ["mcp__herd__create_real_task", "mcp__herd__get_real_task_status", "ReadMcpResourceTool"]);
  assert.equal(run.result.result, "Both tasks are there.");
  assert.deepEqual(log.filter(e => e.role === "agent" && !e.tool_search).map(e => e.step), [0, 1, 2, 3]);
  // 2.1 defers herd's tools and its own resource tools; the model loads each before its first use.
  assert.deepEqual(searches, cli.toolSearch ? ["select:mcp__herd__create_real_task", "select:mcp__herd__get_real_task_status",
                                               "select:ReadMcpResourceTool"] : []);

  // What Claude Code got back: herd's JSON (the text mirror of structuredContent).
  const created = JSON.parse(resultText(toolPairs[0].result));
  assert.equal(created.success, true);
  assert.equal(created.priority, "P1");
  assert.equal(created.description, "created by Claude Code through herd serve");
  const status = JSON.parse(resultText(toolPairs[1].result));
  assert.equal(status.success, true);
  assert.equal(status.task_id, knownTask);
  assert.equal(status.description, "a task created by the test through the herd CLI");
  assert.match(resultText(toolPairs[2].result), new RegExp(created.task_id));

  // The task exists in the workspace afterwards.
  const list = await w.herd(["task", "list"]);
  assert.equal(list.code, 0, list.stderr);
  const listed = list.json.tasks.find(t => t.task_id === created.task_id);
  assert.ok(listed, `herd task list shows ${created.task_id}: ${list.stdout}`);
  assert.equal(listed.description, "created by Claude Code through herd serve");
  assert.equal(listed.workspace_base, w.ws);
  assert.deepEqual(list.json.tasks.map(t => t.task_id).sort(), [knownTask, created.task_id].sort());
  await w.cleanup();
});

cliTest("Claude Code reports progress for an agent and kills it through herd serve", async cli => {
  const w = makeWorkspace("herd-claude-ws-");
  const task = await w.herd(["task", "create", "an agent that Claude Code will stop"]);
  assert.equal(task.code, 0, task.stderr);
  const taskId = task.json.task_id;
  const deployed = await w.herd(["deploy", taskId, "--type", "sleeper", "--backend", "command", "--prompt", "sleep",
                                 "--", ...sleeperCommand({ marker: "sleeper-up" })]);
  assert.equal(deployed.code, 0, deployed.stderr);
  const agentId = deployed.json.agent_id;
  await waitForLog(w, taskId, agentId, "sleeper-up");

  const { run, toolPairs } = await runWithHerd(cli, w, {
    steps: [
      { tool: "update_agent_progress", server: "herd",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", status: "working", message: "half way", progress: 50 } },
      { tool: "get_agent_output", server: "herd", input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", tail: 5 } },
      { tool: "kill_real_agent", server: "herd",
        input: { task_id: "{{task_id}}", agent_id: "{{agent_id}}", reason: "stopped by Claude Code", grace_seconds: 2 } },
      { text: "Stopped." },
    ],
  }, `Task ID: ${taskId}\nAgent ID: ${agentId}\nReport, read the output, stop the agent.`);

  assertConnected(run);
  assertToolsSucceeded(toolPairs, ["mcp__herd__update_agent_progress", "mcp__herd__get_agent_output", "mcp__herd__kill_real_agent"]);
  assert.match(JSON.parse(resultText(toolPairs[1].result)).output, /sleeper-up/);
  const killed = JSON.parse(resultText(toolPairs[2].result));
  assert.equal(killed.status, "terminated");
  assert.equal(isAlive(deployed.json.pid), false);

  const status = await w.herd(["status", taskId]);
  const entry = status.json.agents.agents_list.find(a => a.id === agentId);
  assert.equal(entry.status, "terminated");
  assert.equal(entry.termination_reason, "stopped by Claude Code");
  assert.equal(entry.last_message, "half way");
  assert.equal(status.json.agents.active, 0);
  await w.cleanup();
});

// Claude Code refuses MCP tool results over 25,000 tokens (MAX_MCP_OUTPUT_TOKENS; 2.1 saves them to
// a file and gives the model a pointer instead). A task with many agents must still be readable: by
// default get_real_task_status keeps its reply under that limit by listing agents in summary form
// once the full entries would not fit. 2.1 would also save any result over 50,000 characters to a
// file unless the tool declares more: herd's tools declare 100,000 (_meta
// "anthropic/maxResultSizeChars"), so the summary reply (about 53 KB here) reaches the model whole.
cliTest("get_real_task_status on a 150-agent task stays under Claude Code's tool-output limit", async cli => {
  const w = makeWorkspace("herd-claude-ws-");
  const task = await w.herd(["task", "create", "a large task", "--max-agents", "150", "--max-concurrent", "150"]);
  assert.equal(task.code, 0, task.stderr);
  const taskId = task.json.task_id;
  const prompt = "Investigate one part of the code base and report what you find. ".repeat(4);
  for (let i = 0; i < 150; i++) {
    const deployed = await w.herd(["deploy", taskId, "--type", "worker", "--backend", "command",
                                   "--prompt", prompt, "--", "true"]);
    assert.equal(deployed.code, 0, deployed.stderr);
  }

  const { run, toolPairs } = await runWithHerd(cli, w, {
    steps: [
      { tool: "get_real_task_status", server: "herd", input: { task_id: "{{task_id}}" } },
      { tool: "get_real_task_status", server: "herd", input: { task_id: "{{task_id}}", response_format: "full" } },
      { text: "Read it." },
    ],
  }, `Task ID: ${taskId}\nHow is the task going?`);

  assertConnected(run);
  const [auto, full] = toolPairs;
  assert.notEqual(auto.result.is_error, true, `default status failed: ${resultText(auto.result).slice(0, 500)}`);
  const status = JSON.parse(resultText(auto.result));
  assert.equal(status.success, true);
  assert.equal(status.agents.total_spawned, 150);
  assert.equal(status.agents.agents_list_format, "summary");
  assert.equal(status.agents.agents_list.length + (status.agents.agents_omitted ?? 0), 150);
  for (const entry of status.agents.agents_list) {
    assert.ok(entry.id && entry.status && entry.liveness, JSON.stringify(entry));
    assert.equal(entry.prompt, undefined, "summary entries leave the prompt out");
  }
  assert.ok(resultText(auto.result).length > 50000, `the summary is over 2.1's default: ${resultText(auto.result).length}`);
  // The full reply is what Claude Code cannot take: this is why the default summarises.
  if (cli.savesLargeResults) {
    assert.notEqual(full.result.is_error, true);
    // Over the declared 100,000 characters: saved to a file, the model gets a 2 KB preview and the path.
    assert.match(resultText(full.result), /^<persisted-output>\nOutput too large \([\d.]+KB\)\. Full output saved to: \//);
  } else {
    assert.equal(full.result.is_error, true, "the full 150-agent reply should exceed Claude Code's limit");
    assert.match(resultText(full.result), /maximum allowed tokens/);
  }
  await w.cleanup();
});
