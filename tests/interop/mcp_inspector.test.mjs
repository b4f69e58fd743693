// MCP Inspector CLI (@modelcontextprotocol/inspector 0.17.5) smoke pass against `herd serve`:
// every method the CLI offers that herd implements, the exit code on a JSON-RPC error.
// Run: HERD_BINARY=$PWD/build/herd node --test tests/interop/mcp_inspector.test.mjs
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { HERD, INTEROP_DIR, TOOL_NAMES, makeWorkspace, exited, withTimeout } from "./lib/herd_client.mjs";

const T = { timeout: 120000 };
let w;
before(() => {
  if (!fs.existsSync(path.join(INTEROP_DIR, "node_modules/.bin/mcp-inspector")))
    throw new Error(`the MCP Inspector is not installed: run \`npm ci --no-audit --no-fund\` in ${INTEROP_DIR}`);
  w = makeWorkspace("herd-inspector-");
});
after(() => w?.cleanup());

// Runs `npx --no-install mcp-inspector --cli -e ... <herd> serve <args>` from tests/interop.
// The workspace reaches herd only through -e (it is removed from the CLI's own environment).
async function inspector(args, { timeoutMs = 90000 } = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(w.env)) if (k !== "HOME") delete env[k];
  const envArgs = Object.entries(w.env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const child = spawn("npx", ["--no-install", "mcp-inspector", "--cli", ...envArgs, HERD, "serve", ...args],
                      { cwd: INTEROP_DIR, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout.on("data", d => (stdout += d));
  child.stderr.on("data", d => (stderr += d));
  try {
    const { code, signal } = await withTimeout(exited(child), timeoutMs, `mcp-inspector ${args.join(" ")}`);
    let json;
    try { json = JSON.parse(stdout); } catch { json = undefined; }
    return { code, signal, stdout, stderr, json };
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
}
function ok(run) {
  assert.equal(run.code, 0, `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`);
  assert.ok(run.json, `JSON on stdout:\n${run.stdout}`);
  return run.json;
}

let taskId;

test("inspector: tools/list shows the eight tools with schemas", T, async () => {
  const { tools } = ok(await inspector(["--method", "tools/list"]));
  assert.deepEqual(tools.map(t => t.name).sort(), [...TOOL_NAMES].sort());
  for (const t of tools) {
    assert.equal(t.inputSchema.type, "object");
    assert.equal(t.outputSchema.type, "object");
    assert.ok(t.annotations);
  }
});

test("inspector: tools/call create_real_task (JSON-parsed tool args), the task lands in the -e workspace", T, async () => {
  const result = ok(await inspector(["--method", "tools/call", "--tool-name", "create_real_task",
                                     "--tool-arg", "description=created by the MCP Inspector CLI",
                                     "--tool-arg", "priority=P1",
                                     "--tool-arg", 'success_criteria=["it exists","it is listed"]']));
  assert.notEqual(result.isError, true, JSON.stringify(result));
  const content = result.structuredContent;
  assert.equal(content.success, true);
  assert.equal(content.priority, "P1");
  assert.deepEqual(content.success_criteria, ["it exists", "it is listed"]);
  assert.deepEqual(JSON.parse(result.content[0].text), content, "the text block mirrors structuredContent");
  taskId = content.task_id;
  assert.ok(fs.existsSync(path.join(w.ws, taskId, "AGENT_REGISTRY.json")), "created in CLAUDE_ORCHESTRATOR_WORKSPACE");
});

test("inspector: tools/call get_real_task_status and an invalid call (isError, exit 0)", T, async () => {
  assert.ok(taskId, "needs the task of the previous test");
  const status = ok(await inspector(["--method", "tools/call", "--tool-name", "get_real_task_status", "--tool-arg", `task_id=${taskId}`]));
  assert.notEqual(status.isError, true);
  assert.equal(status.structuredContent.task_id, taskId);
  assert.equal(status.structuredContent.agents.total_spawned, 0);
  const bad = ok(await inspector(["--method", "tools/call", "--tool-name", "create_real_task"]));
  assert.equal(bad.isError, true);
  assert.match(bad.structuredContent.error, /description/);
});

test("inspector: resources/list, resources/templates/list, resources/read", T, async () => {
  assert.ok(taskId, "needs the task of the previous test");
  const { resources } = ok(await inspector(["--method", "resources/list"]));
  const uris = resources.map(r => r.uri);
  assert.ok(uris.includes("tasks://list"));
  assert.ok(uris.includes(`task://${taskId}/status`));
  const { resourceTemplates } = ok(await inspector(["--method", "resources/templates/list"]));
  assert.deepEqual(resourceTemplates.map(r => r.uriTemplate).sort(), ["task://{task_id}/progress-timeline", "task://{task_id}/status"]);
  const read = ok(await inspector(["--method", "resources/read", "--uri", `task://${taskId}/status`]));
  assert.equal(read.contents[0].uri, `task://${taskId}/status`);
  assert.equal(JSON.parse(read.contents[0].text).task_id, taskId);
  const list = ok(await inspector(["--method", "resources/read", "--uri", "tasks://list"]));
  assert.ok(JSON.parse(list.contents[0].text).tasks.some(t => t.task_id === taskId));
  const timeline = ok(await inspector(["--method", "resources/read", "--uri", `task://${taskId}/progress-timeline`]));
  assert.deepEqual(JSON.parse(timeline.contents[0].text).timeline, []);
});

test("inspector: logging/setLevel", T, async () => {
  const result = ok(await inspector(["--method", "logging/setLevel", "--log-level", "debug"]));
  assert.deepEqual(result, {});
});

test("inspector: an unknown tool and an unknown resource exit 1", T, async () => {
  const unknownTool = await inspector(["--method", "tools/call", "--tool-name", "no_such_tool"]);
  assert.equal(unknownTool.code, 1, unknownTool.stdout + unknownTool.stderr);
  assert.match(unknownTool.stdout + unknownTool.stderr, /-32602|no_such_tool/);
  const unknownResource = await inspector(["--method", "resources/read", "--uri", "task://TASK-20200101-000000-deadbeef/status"]);
  assert.equal(unknownResource.code, 1, unknownResource.stdout + unknownResource.stderr);
  assert.match(unknownResource.stdout + unknownResource.stderr, /-32002/);
});
