#!/usr/bin/env node
// Benchmark: how many status calls an orchestrating model makes to learn that its agents have
// ended, waiting (wait_for_agents) against polling get_real_task_status every 5 s.
//
// The orchestrating model is real Claude Code (2.0.30, or with HERD_CLAUDE_VERSIONS=2.1.332 the
// newest; the first version listed is used), an MCP client of `herd serve`, driven by
// the scripted model server (model_server.mjs). Its script deploys 5 command agents (each runs
// `sleep SECONDS`) in one step, then either calls wait_for_agents once per reply until every
// agent has ended, or calls get_real_task_status every 5 s until the reply shows no agent
// active (the model server's repeat_until, matched against herd's real replies). The figures
// are counted from the CLI's own stream: tool calls made and the bytes of their results (what
// the model pays for in context).
//
// Run from the repository root (after ./scripts/test.sh has installed the npm packages):
//   HERD_BINARY=$PWD/build/herd node tests/interop/bench_status_calls.mjs [SECONDS]
// With 2.1.332, each MCP tool's first use is preceded by one ToolSearch call (not counted below).
import fs from "node:fs";
import { execFileSync } from "node:child_process";
import {
  TESTED_CLIS, assertInstalled, makeSandbox, startModelServer, writeMcpConfig, runClaude,
} from "./lib/claude_harness.mjs";
import { HERD, makeWorkspace, cleanupAllWorkspaces } from "./lib/herd_client.mjs";

const seconds = Number(process.argv[2] ?? 12);
const AGENTS = 5;
const POLL_MS = 5000;
const cli = TESTED_CLIS[0];

function deploySteps() {
  return {
    calls: Array.from({ length: AGENTS }, (_, i) => ({
      tool: "deploy_headless_agent", server: "herd",
      input: { task_id: "{{task_id}}", agent_type: `sleeper${i}`, prompt: "sleep",
               backend: "command", command: ["sleep", String(seconds)] },
    })),
  };
}

const SCRIPTS = {
  wait: { steps: [deploySteps(),
                  { tool: "wait_for_agents", server: "herd", input: { task_id: "{{task_id}}", timeout_seconds: 50 },
                    repeat_until: "\"condition_met\":\\s*true" },
                  { text: "All agents have ended." }] },
  poll: { steps: [deploySteps(),
                  { tool: "get_real_task_status", server: "herd", input: { task_id: "{{task_id}}" },
                    repeat_until: "\"active\":\\s*0[,}\\s]", delay_ms: POLL_MS },
                  { text: "All agents have ended." }] },
};

async function measure(mode) {
  const w = makeWorkspace(`herd-bench-calls-${mode}-`);
  const sb = makeSandbox(`herd-bench-calls-${mode}-sb-`);
  fs.writeFileSync(sb.file("script.json"), JSON.stringify(SCRIPTS[mode]));
  const model = await startModelServer(sb.file("script.json"), { logPath: sb.file("model.log") });
  try {
    const env = { ...process.env, ...w.env };
    const created = JSON.parse(execFileSync(HERD, ["task", "create", `bench: ${mode}`, "--json"],
                                            { env }).toString());
    const mcpConfig = writeMcpConfig(sb.file("mcp.json"), {
      command: HERD, args: ["serve", "--workspace", w.ws], env: { XDG_STATE_HOME: w.state },
    });
    const started = Date.now();
    const run = await runClaude({
      cli, port: model.port, home: sb.home, cwd: sb.proj, mcpConfig, timeoutMs: 300000,
      prompt: `Task ID: ${created.task_id}\nDeploy the agents and tell me when they have all ended.`,
    });
    const wall = (Date.now() - started) / 1000;
    if (run.code !== 0) throw new Error(`claude exited ${run.code}: ${run.stderr}`);
    const uses = run.lines.filter(l => l.type === "assistant")
      .flatMap(l => l.message.content.filter(b => b.type === "tool_use"));
    const results = run.lines.filter(l => l.type === "user" && Array.isArray(l.message?.content))
      .flatMap(l => l.message.content.filter(b => b.type === "tool_result"));
    const statusTools = new Set(["mcp__herd__wait_for_agents", "mcp__herd__get_real_task_status"]);
    const statusUses = uses.filter(u => statusTools.has(u.name));
    const bytes = statusUses.map(u => results.find(r => r.tool_use_id === u.id))
      .reduce((sum, r) => sum + JSON.stringify(r?.content ?? "").length, 0);
    const deploys = uses.filter(u => u.name === "mcp__herd__deploy_headless_agent").length;
    return { mode, deploys, statusCalls: statusUses.length, bytes, wall };
  } finally {
    await model.stop();
    sb.cleanup();
  }
}

assertInstalled([cli]);
console.log(`${AGENTS} command agents, each running ${seconds} s; the orchestrator is Claude Code ` +
            `${cli.version} driven by the scripted model server`);
const rows = [];
for (const mode of ["wait", "poll"]) rows.push(await measure(mode));
console.log("mode                          deploys  status calls  result bytes  wall s");
for (const r of rows) {
  const name = r.mode === "wait" ? "wait_for_agents" : `get_real_task_status / ${POLL_MS / 1000} s`;
  console.log(`${name.padEnd(30)}${String(r.deploys).padStart(7)}${String(r.statusCalls).padStart(14)}` +
              `${String(r.bytes).padStart(14)}${r.wall.toFixed(1).padStart(8)}`);
}
await cleanupAllWorkspaces();
