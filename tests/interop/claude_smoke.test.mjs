// Real Claude Code 2.0.30 CLI + scripted model server + SDK stdio MCP server, end to end, offline.
// Run: cd tests/interop && npm ci --no-audit --no-fund && node --test claude_smoke.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  assertInstalled, makeSandbox, startModelServer, writeMcpConfig, runClaude, readJsonLines,
} from "./lib/claude_harness.mjs";

const PROMPT = "Task ID: T1\nAgent ID: A1\nDo the work, reporting progress.";
let sandboxes = [];
function sandbox() { const s = makeSandbox(); sandboxes.push(s); return s; }

before(() => assertInstalled());
after(() => { for (const s of sandboxes) s.cleanup(); });

async function withModel(scenario, fn) {
  const sb = sandbox();
  const model = await startModelServer(scenario, { logPath: sb.file("model.log") });
  try {
    return await fn(sb, model);
  } finally {
    await model.stop();
  }
}

test("claude calls the MCP tool with ids from the prompt and prints a result line", { timeout: 120000 }, () =>
  withModel("progress", async (sb, model) => {
    const record = sb.file("calls.jsonl");
    const mcpConfig = writeMcpConfig(sb.file("mcp.json"), { env: { ECHO_MCP_RECORD: record } });
    const run = await runClaude({ port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt: PROMPT });
    assert.equal(run.code, 0, run.stderr);

    const init = run.lines[0];
    assert.equal(init.type, "system");
    assert.equal(init.subtype, "init");
    assert.deepEqual(init.mcp_servers, [{ name: "herd", status: "connected" }]);
    assert.ok(init.tools.includes("mcp__herd__update_agent_progress"));

    assert.deepEqual(readJsonLines(record), [
      { tool: "update_agent_progress",
        arguments: { task_id: "T1", agent_id: "A1", status: "working", message: "Started work", progress: 10 } },
      { tool: "update_agent_progress",
        arguments: { task_id: "T1", agent_id: "A1", status: "completed", message: "Finished work", progress: 100 } },
    ]);

    const last = run.lines.at(-1);
    assert.equal(last.type, "result");
    assert.equal(last.subtype, "success");
    assert.equal(last.is_error, false);
    assert.equal(last.result, "Task complete.");
    assert.equal(last.num_turns, 3);
    assert.equal(typeof last.total_cost_usd, "number");
    assert.ok(last.total_cost_usd > 0);
    assert.equal(typeof last.duration_ms, "number");
    assert.ok(last.usage.input_tokens > 0 && last.usage.output_tokens > 0);

    const agentTurns = readJsonLines(sb.file("model.log")).filter(e => e.role === "agent");
    assert.deepEqual(agentTurns.map(e => e.step), [0, 1, 2]);
  }));

test("the prompt can come on stdin; findings go through too", { timeout: 120000 }, () =>
  withModel("finding", async (sb, model) => {
    const record = sb.file("calls.jsonl");
    const mcpConfig = writeMcpConfig(sb.file("mcp.json"), { env: { ECHO_MCP_RECORD: record } });
    const run = await runClaude({ port: model.port, home: sb.home, cwd: sb.proj, mcpConfig,
                                  prompt: "Task ID: T-stdin\nAgent ID: agent-007\nwork", promptOnStdin: true });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.result.is_error, false);
    assert.equal(run.result.num_turns, 4);
    const calls = readJsonLines(record);
    assert.deepEqual(calls.map(c => c.tool), ["update_agent_progress", "report_agent_finding", "update_agent_progress"]);
    for (const c of calls) assert.equal(c.arguments.task_id, "T-stdin");
    assert.equal(calls[1].arguments.agent_id, "agent-007");
    assert.deepEqual(calls[1].arguments.data, { source: "model_server" });
  }));

test("an API that always fails makes claude exit 1 with an is_error result line", { timeout: 120000 }, () =>
  withModel("error", async (sb, model) => {
    const mcpConfig = writeMcpConfig(sb.file("mcp.json"));
    const run = await runClaude({ port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt: PROMPT,
                                  env: { CLAUDE_CODE_MAX_RETRIES: "0" } });
    assert.equal(run.code, 1);
    const last = run.lines.at(-1);
    assert.equal(last.type, "result");
    assert.equal(last.is_error, true);           // note: subtype still says "success"
    assert.match(last.result, /^API Error: 500 /);
    assert.equal(last.total_cost_usd, 0);
  }));

test("SIGTERM while the model hangs: the CLI dies with no result line", { timeout: 120000 }, () =>
  withModel("progress_then_hang", async (sb, model) => {
    const record = sb.file("calls.jsonl");
    const mcpConfig = writeMcpConfig(sb.file("mcp.json"), { env: { ECHO_MCP_RECORD: record } });
    let signalled = false;
    const run = await runClaude({
      port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt: PROMPT,
      // The tool_result line means the tool ran and the next (hanging) model request is under way.
      onLine: (obj, child) => {
        if (!signalled && obj.type === "user") { signalled = true; child.kill("SIGTERM"); }
      },
    });
    assert.ok(signalled, "never saw the tool_result line");
    // The CLI catches SIGTERM and exits with status 143 itself (it is not killed by the signal).
    assert.deepEqual([run.code, run.signal], [143, null]);
    assert.equal(run.result, undefined);
    assert.equal(readJsonLines(record)[0].arguments.status, "working");
  }));
