// Real Claude Code CLIs (2.0.30 and 2.1.332) + scripted model server + SDK stdio MCP server, end
// to end, offline. Every test runs once per CLI of TESTED_CLIS; its name starts with the version.
// Run: cd tests/interop && npm ci --no-audit --no-fund && node --test claude_smoke.test.mjs
//      (HERD_CLAUDE_VERSIONS=2.1.332 for one version only)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  TESTED_CLIS, assertInstalled, makeSandbox, startModelServer, writeMcpConfig, runClaude, readJsonLines,
  expectedTurns, mcpServerStatus,
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
const messageRequests = sb => readJsonLines(sb.file("model.log")).filter(e => e.path?.startsWith("/v1/messages"));

for (const cli of TESTED_CLIS) {
  const name = what => `[Claude Code ${cli.version}] ${what}`;

  test(name("claude calls the MCP tool with ids from the prompt and prints a result line"), { timeout: 120000 }, () =>
    withModel("progress", async (sb, model) => {
      const record = sb.file("calls.jsonl");
      const mcpConfig = writeMcpConfig(sb.file("mcp.json"), { env: { ECHO_MCP_RECORD: record } });
      const started = Date.now();
      const run = await runClaude({ cli, port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt: PROMPT });
      assert.equal(run.code, 0, run.stderr);

      const init = run.lines[0];
      assert.equal(init.type, "system");
      assert.equal(init.subtype, "init");
      assert.deepEqual(mcpServerStatus(init), [{ name: "herd", status: "connected" }]);
      assert.ok(init.tools.includes("mcp__herd__update_agent_progress"));
      assert.match(init.session_id, /^[0-9a-f-]{36}$/);
      if (init.claude_code_version !== undefined) assert.equal(init.claude_code_version, cli.version);

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
      assert.equal(last.session_id, init.session_id);
      assert.equal(last.num_turns, expectedTurns(cli, 2, 1));
      assert.equal(typeof last.total_cost_usd, "number");
      assert.ok(last.total_cost_usd > 0);
      assert.equal(typeof last.duration_ms, "number");
      assert.ok(last.usage.input_tokens > 0 && last.usage.output_tokens > 0);

      // The model server answered every request it got, and the agent turns played the script.
      const requests = readJsonLines(sb.file("model.log")).filter(e => e.method);
      assert.deepEqual(requests.filter(e => e.status === 404), [], "no request the model server does not know");
      const agentTurns = requests.filter(e => e.role === "agent");
      assert.equal(agentTurns.length, last.num_turns, "one model request per turn");
      assert.deepEqual(agentTurns.filter(e => !e.tool_search).map(e => e.step), [0, 1, 2]);
      assert.deepEqual(agentTurns.filter(e => e.tool_search).map(e => e.tool_search),
                       cli.toolSearch ? [["mcp__herd__update_agent_progress"]] : []);
      assert.equal(requests.filter(e => e.role === "side").length, cli.warmups, "side requests without tools");
      for (const r of messageRequests(sb)) {
        assert.equal(r.user_agent.split(" ")[0], `claude-cli/${cli.version}`);
        assert.equal(r.stream, true);
      }
      for (const r of agentTurns) assert.match(r.beta, /claude-code-20250219/);
      console.log(`Claude Code ${cli.version}: progress run ${Date.now() - started} ms, ${requests.length} requests`);
    }));

  test(name("the prompt can come on stdin; findings go through too"), { timeout: 120000 }, () =>
    withModel("finding", async (sb, model) => {
      const record = sb.file("calls.jsonl");
      const mcpConfig = writeMcpConfig(sb.file("mcp.json"), { env: { ECHO_MCP_RECORD: record } });
      const run = await runClaude({ cli, port: model.port, home: sb.home, cwd: sb.proj, mcpConfig,
                                    prompt: "Task ID: T-stdin\nAgent ID: agent-007\nwork", promptOnStdin: true });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.result.is_error, false);
      assert.equal(run.result.num_turns, expectedTurns(cli, 3, 2));
      const calls = readJsonLines(record);
      assert.deepEqual(calls.map(c => c.tool), ["update_agent_progress", "report_agent_finding", "update_agent_progress"]);
      for (const c of calls) assert.equal(c.arguments.task_id, "T-stdin");
      assert.equal(calls[1].arguments.agent_id, "agent-007");
      assert.deepEqual(calls[1].arguments.data, { source: "model_server" });
    }));

  test(name("an API that always fails makes claude exit 1 with an is_error result line"), { timeout: 120000 }, () =>
    withModel("error", async (sb, model) => {
      const mcpConfig = writeMcpConfig(sb.file("mcp.json"));
      const run = await runClaude({ cli, port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt: PROMPT,
                                    env: { CLAUDE_CODE_MAX_RETRIES: "0" } });
      assert.equal(run.code, 1, run.stderr);
      const last = run.lines.at(-1);
      assert.equal(last.type, "result");
      assert.equal(last.is_error, true);           // note: subtype still says "success"
      assert.equal(last.subtype, "success");
      assert.match(last.result, /^API Error: 500 /);
      assert.equal(last.total_cost_usd, 0);
    }));

  test(name("SIGTERM while the model hangs: the CLI dies with no result line"), { timeout: 120000 }, () =>
    withModel("progress_then_hang", async (sb, model) => {
      const record = sb.file("calls.jsonl");
      const mcpConfig = writeMcpConfig(sb.file("mcp.json"), { env: { ECHO_MCP_RECORD: record } });
      let signalled = false;
      const run = await runClaude({
        cli, port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, prompt: PROMPT,
        // The MCP tool's result line means the tool ran and the next (hanging) model request is
        // under way (2.1's ToolSearch result line comes before it and does not count).
        onLine: (obj, child) => {
          const mcpResult = obj.type === "user" && obj.message?.content?.some?.(b => b.type === "tool_result" &&
            JSON.stringify(b.content).includes("update_agent_progress") && !JSON.stringify(b.content).includes("tool_reference"));
          if (!signalled && mcpResult) { signalled = true; child.kill("SIGTERM"); }
        },
      });
      assert.ok(signalled, `never saw the tool_result line: ${run.stdout.slice(0, 3000)}`);
      // The CLI catches SIGTERM and exits with status 143 itself (it is not killed by the signal).
      assert.deepEqual([run.code, run.signal], [143, null]);
      assert.equal(run.result, undefined);
      assert.equal(readJsonLines(record)[0].arguments.status, "working");
    }));
}
