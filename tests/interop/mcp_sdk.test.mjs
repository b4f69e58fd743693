// The official MCP TypeScript SDK client (Client + StdioClientTransport, @modelcontextprotocol/sdk
// 1.32.2) against the real `herd serve`: the handshake at every protocol version, tools/list,
// every tool, structured output validated by the SDK, resources and their subscriptions, progress,
// cancellation, ping,
// logging/setLevel.
// Run: HERD_BINARY=$PWD/build/herd node --test tests/interop/mcp_sdk.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { McpError, ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import {
  HERD, PROTOCOL_VERSIONS, TOOL_NAMES, makeWorkspace, connectSdk, structured, sleeperCommand,
  waitForLog, waitUntil, isAlive, processStartTime, readJsonLines, cleanupAllWorkspaces, withTimeout,
} from "./lib/herd_client.mjs";

const T = { timeout: 180000 };
after(cleanupAllWorkspaces);

// A fresh workspace and an SDK client connected to `herd serve` on it. The tool list is fetched
// first, so the SDK validates every later structuredContent against the tool's outputSchema.
async function withServer(opts, fn) {
  if (typeof opts === "function") [opts, fn] = [{}, opts];
  const w = makeWorkspace("herd-sdk-");
  let s;
  try {
    s = await connectSdk(w, opts);
    const { tools } = await s.client.listTools();
    const out = await fn({ w, s, c: s.client, tools });
    const status = await s.close();
    s = undefined;
    assert.deepEqual(status, { code: 0, signal: null }, "herd serve exits 0 on stdin EOF");
    return out;
  } finally {
    if (s) await s.client.close().catch(() => {});
    await w.cleanup();
  }
}

// Calls a tool that must succeed; returns its (SDK-validated) structuredContent.
async function call(c, name, args, options) {
  const result = await c.callTool({ name, arguments: args }, undefined, options);
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result.structuredContent)}`);
  const content = structured(result);
  assert.equal(content.success, true);
  return content;
}
// Calls a tool that must fail as a tool result (isError), not as a protocol error; returns the
// error message.
async function callFails(c, name, args) {
  const result = await c.callTool({ name, arguments: args });
  assert.equal(result.isError, true, `${name} ${JSON.stringify(args)} should fail: ${JSON.stringify(result)}`);
  const content = structured(result);
  assert.equal(content.success, false);
  assert.equal(typeof content.error, "string");
  assert.ok(content.error.length > 10, `a useful message: ${content.error}`);
  return content.error;
}

async function newTask(c, extra = {}) {
  return call(c, "create_real_task", { description: "interop test task for the SDK client", ...extra });
}
async function deploySleeper(c, taskId, { type = "worker", ignoreTerm = false, marker = "ready", extra = {} } = {}) {
  return call(c, "deploy_headless_agent", {
    task_id: taskId, agent_type: type, prompt: `be a ${type}`, backend: "command",
    command: sleeperCommand({ ignoreTerm, marker }), ...extra,
  });
}
async function taskStatus(c, taskId) {
  return call(c, "get_real_task_status", { task_id: taskId });
}
// Deploys an agent that ignores SIGTERM and starts kill_real_agent on it.
// Resolves once the server reports "stopping": the kill is then inside its
// grace period. `killing` is the call's promise.
async function startSlowKill(w, c, { graceSeconds, signal } = {}) {
  const task = await newTask(c);
  const agent = await deploySleeper(c, task.task_id, { ignoreTerm: true, marker: "ignoring-term" });
  await waitForLog(w, task.task_id, agent.agent_id, "ignoring-term");
  let stopping;
  const stoppingSeen = new Promise(resolve => (stopping = resolve));
  const killing = c.callTool({ name: "kill_real_agent",
                               arguments: { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: graceSeconds } },
                             undefined, { signal, onprogress: p => { if (/stopping/.test(p.message ?? "")) stopping(); } });
  await withTimeout(stoppingSeen, 30000, "the kill's progress notification");
  return { task, agent, killing };
}

function agentEntry(status, agentId) {
  return status.agents.agents_list.find(a => a.id === agentId);
}

// -----------------------------------------------------------------------------------------------

test("handshake at every supported protocol version", T, async t => {
  for (const version of PROTOCOL_VERSIONS) {
    await t.test(version, () => withServer({ protocolVersion: version }, async ({ s, c, tools }) => {
      const init = s.transport.initializeResult;
      assert.equal(init.protocolVersion, version, "the server echoes a version it supports");
      assert.equal(init.serverInfo.name, "herd");
      assert.equal(typeof init.serverInfo.version, "string");
      assert.ok(init.capabilities.tools, "tools capability");
      assert.ok(init.capabilities.resources, "resources capability");
      assert.deepEqual(init.capabilities.logging, {}, "logging capability (logging/setLevel is implemented)");
      assert.equal(typeof init.instructions, "string");
      for (const word of ["create_real_task", "deploy_headless_agent", "get_real_task_status"])
        assert.ok(init.instructions.includes(word), `instructions explain the workflow (${word})`);
      assert.deepEqual(c.getServerVersion(), init.serverInfo);
      assert.equal(c.getInstructions(), init.instructions);
      assert.deepEqual(tools.map(x => x.name).sort(), [...TOOL_NAMES].sort());
      assert.deepEqual(await c.ping(), {});
      // A real call works at this version too.
      const task = await newTask(c);
      assert.match(task.task_id, /^TASK-\d{8}-\d{6}-[0-9a-f]{8}$/);
      assert.deepEqual(s.errors, []);
    }));
  }
});

test("tools/list: the eight reference tools and herd's own, with complete input schemas, output schemas and annotations", T, () =>
  withServer(async ({ c, tools }) => {
    assert.deepEqual(tools.map(x => x.name).sort(), [...TOOL_NAMES].sort());
    const again = await c.listTools();
    assert.deepEqual(again.tools.map(x => x.name), tools.map(x => x.name), "a stable order");
    assert.equal(again.nextCursor, undefined, "every tool on one page");
    const byName = Object.fromEntries(tools.map(x => [x.name, x]));
    const ajv = new AjvJsonSchemaValidator();
    // The SDK compiled a validator for every outputSchema: each callTool in these tests checks
    // structuredContent against it (and throws if it does not conform).
    for (const name of TOOL_NAMES) assert.equal(typeof c.getToolOutputValidator(name), "function", name);

    const required = {
      create_real_task: ["description"],
      deploy_headless_agent: ["task_id", "agent_type", "prompt"],
      get_real_task_status: ["task_id"],
      get_agent_output: ["task_id", "agent_id"],
      kill_real_agent: ["task_id", "agent_id"],
      stop_task: ["task_id"],
      update_agent_progress: ["task_id", "agent_id", "status", "message"],
      report_agent_finding: ["task_id", "agent_id", "finding_type", "severity", "message"],
      spawn_child_agent: ["task_id", "parent_agent_id", "child_agent_type", "child_prompt"],
      get_health_status: [],
      wait_for_agents: ["task_id"],
      send_agent_message: ["task_id", "agent_id", "message"],
      get_agent_diff: ["task_id", "agent_id"],
      merge_agent_work: ["task_id", "agent_id"],
    };
    // The reference's parameters (plus the backend/model choice the issue asks for).
    const properties = {
      create_real_task: ["description", "priority", "client_cwd", "background_context", "expected_deliverables",
                         "success_criteria", "constraints", "relevant_files", "conversation_history"],
      deploy_headless_agent: ["task_id", "agent_type", "prompt", "parent", "backend", "model", "command"],
      get_real_task_status: ["task_id"],
      get_agent_output: ["task_id", "agent_id", "tail", "filter", "format", "include_metadata", "max_bytes",
                         "aggressive_truncate", "response_format"],
      kill_real_agent: ["task_id", "agent_id", "reason"],
      stop_task: ["task_id", "reason", "grace_seconds"],
      update_agent_progress: ["task_id", "agent_id", "status", "message", "progress"],
      report_agent_finding: ["task_id", "agent_id", "finding_type", "severity", "message", "data"],
      spawn_child_agent: ["task_id", "parent_agent_id", "child_agent_type", "child_prompt"],
      get_health_status: ["task_id"],
      wait_for_agents: ["task_id", "agent_ids", "mode", "timeout_seconds"],
      send_agent_message: ["task_id", "agent_id", "message", "interrupt"],
      get_agent_diff: ["task_id", "agent_id", "format", "max_bytes"],
      merge_agent_work: ["task_id", "agent_id", "strategy", "into", "message", "commit_pending"],
    };
    for (const tool of tools) {
      const name = tool.name;
      assert.match(name, /^[a-z0-9_]{1,64}$/, "snake_case name");
      assert.ok(`mcp__herd__${name}`.length <= 64, "prefixed name within Claude Code's 64");
      assert.equal(typeof tool.title, "string", `${name}: title`);
      assert.ok(tool.description.length >= 40, `${name}: a description a model can act on`);
      const input = tool.inputSchema;
      assert.equal(input.type, "object", `${name}: inputSchema.type`);
      assert.deepEqual([...(input.required ?? [])].sort(), [...required[name]].sort(), `${name}: required`);
      for (const key of properties[name]) assert.ok(input.properties[key], `${name}: property ${key}`);
      for (const [key, prop] of Object.entries(input.properties)) {
        assert.ok(prop.type, `${name}.${key}: type`);
        assert.ok(typeof prop.description === "string" && prop.description.length > 3, `${name}.${key}: description`);
      }
      assert.doesNotThrow(() => ajv.getValidator(input), `${name}: inputSchema compiles`);
      assert.equal(tool.outputSchema?.type, "object", `${name}: outputSchema`);
      assert.ok(tool.outputSchema.properties.success, `${name}: outputSchema has success`);
      assert.doesNotThrow(() => ajv.getValidator(tool.outputSchema), `${name}: outputSchema compiles`);
      for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint"])
        assert.equal(typeof tool.annotations?.[hint], "boolean", `${name}: annotations.${hint}`);
      // Claude Code 2.1 keeps results up to this many characters in the conversation (default 50,000).
      assert.equal(tool._meta?.["anthropic/maxResultSizeChars"], 100000, `${name}: _meta`);
      // The schema accepts a call with exactly the required arguments and rejects one without them.
      const minimal = Object.fromEntries(required[name].map(k => [k, input.properties[k].enum?.[0] ?? "x"]));
      assert.equal(ajv.getValidator(input)(minimal).valid, true, `${name}: minimal call valid`);
      if (required[name].length > 0)
        assert.equal(ajv.getValidator(input)({}).valid, false, `${name}: empty call invalid`);
    }
    // Enums a model can pick from.
    const en = (tool, key) => byName[tool].inputSchema.properties[key].enum;
    assert.deepEqual(en("create_real_task", "priority"), ["P0", "P1", "P2", "P3", "P4"]);
    assert.deepEqual(en("get_agent_output", "format").sort(), ["jsonl", "parsed", "text"]);
    assert.deepEqual(en("get_agent_output", "response_format").sort(), ["compact", "full", "summary"]);
    for (const s of ["running", "working", "blocked", "completed", "error", "terminated", "failed"])
      assert.ok(en("update_agent_progress", "status").includes(s), `status enum has ${s}`);
    for (const s of ["low", "medium", "high", "critical"])
      assert.ok(en("report_agent_finding", "severity").includes(s), `severity enum has ${s}`);
    for (const b of ["claude", "command"]) assert.ok(en("deploy_headless_agent", "backend").includes(b));
    assert.equal(byName.create_real_task.inputSchema.properties.expected_deliverables.type, "array");
    assert.equal(byName.create_real_task.inputSchema.properties.conversation_history.items.type, "object");
    const progress = byName.update_agent_progress.inputSchema.properties.progress;
    assert.deepEqual([progress.type, progress.minimum, progress.maximum], ["integer", 0, 100]);
    // Annotations: reads are read-only and idempotent, kill is destructive.
    for (const name of ["get_real_task_status", "get_agent_output"]) {
      assert.equal(byName[name].annotations.readOnlyHint, true, name);
      assert.equal(byName[name].annotations.destructiveHint, false, name);
      assert.equal(byName[name].annotations.idempotentHint, true, name);
    }
    for (const name of ["kill_real_agent", "stop_task"]) {
      assert.equal(byName[name].annotations.destructiveHint, true, name);
      assert.equal(byName[name].annotations.readOnlyHint, false, name);
    }
    for (const name of ["create_real_task", "deploy_headless_agent", "update_agent_progress",
                        "report_agent_finding", "spawn_child_agent"])
      assert.equal(byName[name].annotations.readOnlyHint, false, name);
  }));

test("create_real_task: context fields, validation_warnings, isError results for invalid input", T, () =>
  withServer(async ({ w, c }) => {
    const context = {
      background_context: "The service drops requests under load.",
      expected_deliverables: ["a patch", "a regression test"],
      success_criteria: ["p99 under 100 ms", "no dropped requests"],
      constraints: ["no new dependencies"],
      relevant_files: ["src/server.cc", "src/queue.h"],
      conversation_history: [{ role: "user", content: "please fix", timestamp: "2026-01-01T00:00:00Z" },
                             { role: "assistant", content: "on it" }],
    };
    const full = await call(c, "create_real_task", {
      description: "Fix the request drops in the load balancer", priority: "P1", ...context,
    });
    assert.match(full.task_id, /^TASK-\d{8}-\d{6}-[0-9a-f]{8}$/);
    assert.equal(full.description, "Fix the request drops in the load balancer");
    assert.equal(full.priority, "P1");
    assert.equal(full.status, "INITIALIZED");
    assert.equal(full.has_enhanced_context, true);
    for (const [key, value] of Object.entries(context)) assert.deepEqual(full[key], value, key);
    assert.ok(!full.validation_warnings || full.validation_warnings.length === 0,
              `no warnings for a complete task: ${JSON.stringify(full.validation_warnings)}`);
    assert.equal(full.workspace, path.join(w.ws, full.task_id));
    const registry = w.registry(full.task_id);
    assert.equal(registry.task_id, full.task_id);
    assert.equal(registry.priority, "P1");
    assert.equal(registry.task_description, full.description);

    // The reference's soft warnings: a terse task still works, with validation_warnings.
    const terse = await call(c, "create_real_task", { description: "fix it" });
    assert.equal(terse.priority, "P2", "default priority");
    assert.equal(terse.has_enhanced_context, false);
    assert.ok(Array.isArray(terse.validation_warnings) && terse.validation_warnings.length >= 2,
              JSON.stringify(terse.validation_warnings));
    assert.ok(terse.validation_warnings.some(x => /success_criteria/.test(x)));

    // client_cwd: the task lives in <project>/.agent-workspace and is found from anywhere.
    const project = w.file("project");
    fs.mkdirSync(project);
    const inProject = await call(c, "create_real_task", { description: "work inside the project dir", client_cwd: project });
    assert.equal(inProject.workspace, path.join(project, ".agent-workspace", inProject.task_id));
    const found = await taskStatus(c, inProject.task_id);
    assert.equal(found.task_id, inProject.task_id);

    // Invalid input: an isError tool result that says what to fix (never a protocol error).
    assert.match(await callFails(c, "create_real_task", {}), /description/);
    assert.match(await callFails(c, "create_real_task", { description: "   " }), /description/);
    assert.match(await callFails(c, "create_real_task", { description: 42 }), /description/);
    assert.match(await callFails(c, "create_real_task", { description: "valid description", priority: "P9" }), /priority/);
    assert.match(await callFails(c, "create_real_task", { description: "valid description", expected_deliverables: "a patch" }),
                 /expected_deliverables/);
    assert.match(await callFails(c, "create_real_task", { description: "valid description", conversation_history: [{ role: "user" }] }),
                 /conversation_history|content/);
    assert.match(await callFails(c, "create_real_task", { description: "valid description", client_cwd: w.file("nope") }),
                 /client_cwd|directory/);
    assert.match(await callFails(c, "create_real_task", { description: "valid description", max_concurrent: 0 }),
                 /max_concurrent/);
  }));

test("deploy_headless_agent (backend command) returns as soon as the agent has started", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    const progress = [];
    const agent = await withTimeout(call(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "builder", prompt: "build it", backend: "command",
      command: ["sh", "-c", "echo started as $HERD_AGENT_ID in $HERD_TASK_ID; cat; exec sleep 600"],
    }, { onprogress: p => progress.push(p) }), 60000, "deploy_headless_agent to return");
    // It returned while the agent (which sleeps for ten minutes) runs.
    assert.match(agent.agent_id, /^builder-\d{6}-[0-9a-f]{6}$/);
    assert.equal(agent.status, "deployed");
    assert.equal(agent.type, "builder");
    assert.equal(agent.parent, "orchestrator");
    assert.equal(agent.task_id, task.task_id);
    assert.equal(agent.workspace, path.join(w.ws, task.task_id));
    assert.ok(Number.isInteger(agent.pid) && isAlive(agent.pid), "the agent process is running");
    assert.ok(progress.length >= 1, "progress notifications for a call with onprogress");

    // The command gets its ids in the environment and the prompt on stdin; output goes to its log.
    await waitForLog(w, task.task_id, agent.agent_id, `started as ${agent.agent_id} in ${task.task_id}`);
    await waitForLog(w, task.task_id, agent.agent_id, "build it");
    const status = await taskStatus(c, task.task_id);
    const entry = agentEntry(status, agent.agent_id);
    assert.equal(entry.status, "running");
    assert.equal(entry.pid, agent.pid);
    assert.equal(status.agents.active, 1);
    assert.deepEqual(status.hierarchy.orchestrator, [agent.agent_id]);

    // Refusals are isError results with the reason.
    assert.match(await callFails(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "x", prompt: "p", backend: "command" }), /command/);
    assert.match(await callFails(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "x", prompt: "p", backend: "nope", command: ["true"] }), /backend/);
    assert.match(await callFails(c, "deploy_headless_agent", {
      task_id: "TASK-20200101-000000-deadbeef", agent_type: "x", prompt: "p", backend: "command", command: ["true"] }),
                 /TASK-20200101-000000-deadbeef/);
    assert.match(await callFails(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "x", prompt: "p", backend: "command",
      command: ["/nonexistent/program"] }), /nonexistent|exec|start|No such file/i);
    assert.match(await callFails(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "x" }), /prompt/);

    // Awkward roles become safe ids (the reference let tmux rename sessions and paths escape).
    for (const type of ["re.view:er", "../escape", "two words"]) {
      const odd = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: type, prompt: "p",
                                                           backend: "command", command: ["true"] });
      assert.match(odd.agent_id, /^[A-Za-z0-9][A-Za-z0-9_-]*$/, `agent id for ${JSON.stringify(type)}`);
      assert.ok(odd.log_file.startsWith(path.join(w.ws, task.task_id, "logs") + path.sep), odd.log_file);
    }
    assert.match(await callFails(c, "get_agent_output", { task_id: task.task_id, agent_id: "../../../etc/passwd" }), /agent id/);
    // A long prompt is no problem (the reference passed it inline through tmux, which fails over ~16 KB).
    const long = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "reader", prompt: "x".repeat(200000) + " END",
                                                          backend: "command", command: ["sh", "-c", "echo prompt-bytes=$(wc -c)"] });
    await waitForLog(w, task.task_id, long.agent_id, "prompt-bytes=");
    const got = fs.readFileSync(long.log_file, "utf8");
    assert.ok(Number(/prompt-bytes=\s*(\d+)/.exec(got)[1]) >= 200004, got.slice(0, 200));

    // A limit reached is refused too.
    const small = await newTask(c, { max_concurrent: 1 });
    await deploySleeper(c, small.task_id);
    assert.match(await callFails(c, "deploy_headless_agent", {
      task_id: small.task_id, agent_type: "second", prompt: "p", backend: "command", command: sleeperCommand() }),
                 /concurrent/);

    const killed = await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 0 });
    assert.equal(killed.status, "terminated");
  }));

test("get_real_task_status: agents, hierarchy, newest progress and findings, limits", T, () =>
  withServer(async ({ c }) => {
    const task = await newTask(c, { max_agents: 7, max_concurrent: 6, max_depth: 3 });
    const a = await deploySleeper(c, task.task_id, { type: "alpha" });
    const b = await deploySleeper(c, task.task_id, { type: "beta" });
    for (let i = 1; i <= 12; i++)
      await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: i % 2 ? a.agent_id : b.agent_id,
                                               status: "working", message: `step ${i}`, progress: i });
    for (let i = 1; i <= 7; i++)
      await call(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "insight",
                                              severity: "low", message: `finding ${i}`, data: { i } });
    const s = await taskStatus(c, task.task_id);
    assert.equal(s.task_id, task.task_id);
    assert.equal(s.description, task.description);
    assert.equal(typeof s.status, "string");
    assert.equal(s.workspace, task.workspace);
    assert.equal(s.agents.total_spawned, 2);
    assert.equal(s.agents.active, 2);
    assert.equal(s.agents.completed, 0);
    assert.deepEqual(s.agents.agents_list.map(x => x.id).sort(), [a.agent_id, b.agent_id].sort());
    for (const x of s.agents.agents_list) {
      for (const key of ["id", "type", "parent", "depth", "status", "started_at", "last_update", "progress", "prompt", "tracked_files"])
        assert.ok(key in x, `agent entry has ${key}`);
    }
    assert.equal(agentEntry(s, a.agent_id).progress, 11);
    assert.equal(agentEntry(s, b.agent_id).progress, 12);
    assert.deepEqual([...s.hierarchy.orchestrator].sort(), [a.agent_id, b.agent_id].sort());
    const ep = s.enhanced_progress;
    assert.equal(ep.total_progress_entries, 12);
    assert.equal(ep.total_findings, 7);
    assert.equal(ep.recent_updates.length, 10, "the 10 newest updates");
    assert.deepEqual(ep.recent_updates.map(u => u.message).sort(),
                     Array.from({ length: 10 }, (_, i) => `step ${i + 3}`).sort());
    assert.equal(ep.recent_findings.length, 5, "the 5 newest findings");
    assert.deepEqual(ep.recent_findings.map(f => f.message).sort(),
                     ["finding 3", "finding 4", "finding 5", "finding 6", "finding 7"]);
    assert.ok(s.spiral_status && typeof s.spiral_status === "object");
    assert.deepEqual(s.limits, { max_agents: 7, max_concurrent: 6, max_depth: 3 });

    assert.equal(s.agents.agents_list_format, "full", "a small task gets full entries by default");
    // Summaries: the fields to follow an agent, without prompt or paths.
    const summary = await call(c, "get_real_task_status", { task_id: task.task_id, response_format: "summary" });
    assert.equal(summary.agents.agents_list_format, "summary");
    assert.equal(summary.agents.agents_list.length, 2);
    for (const x of summary.agents.agents_list) {
      for (const key of ["id", "type", "parent", "depth", "status", "liveness", "progress", "last_update"])
        assert.ok(key in x, `summary entry has ${key}`);
      assert.equal(x.prompt, undefined);
      assert.equal(x.tracked_files, undefined);
    }
    assert.equal(agentEntry(summary, a.agent_id).progress, 11);
    assert.deepEqual(summary.enhanced_progress, s.enhanced_progress);
    assert.match(await callFails(c, "get_real_task_status", { task_id: task.task_id, response_format: "tiny" }),
                 /response_format/);

    assert.match(await callFails(c, "get_real_task_status", { task_id: "TASK-20200101-000000-deadbeef" }), /not found|TASK-/);
    assert.match(await callFails(c, "get_real_task_status", { task_id: "../../etc" }), /task/i);
    for (const x of [a, b])
      await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: x.agent_id, grace_seconds: 0 });
  }));

test("get_agent_output: tail, filter, format, max_bytes, include_metadata, response_format", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    const script = 'i=1; while [ $i -le 100 ]; do echo "line $i"; i=$((i+1)); done; ' +
                   'echo \'{"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.5,"num_turns":3}\'';
    const agent = await call(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "printer", prompt: "print", backend: "command", command: ["sh", "-c", script] });
    // It exits 0 on its own: the registry records it as completed, and its output stays readable.
    await waitUntil(async () => agentEntry(await taskStatus(c, task.task_id), agent.agent_id).status === "completed",
                    { what: "the printer agent to be recorded as completed", timeoutMs: 60000 });
    const out = args => call(c, "get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, ...args });
    const lines = text => text.split("\n").filter(Boolean);

    const all = await out({});
    assert.equal(all.agent_id, agent.agent_id);
    assert.equal(all.session_status, "completed");
    assert.equal(all.source, "stream_log");
    assert.equal(typeof all.output, "string");
    assert.equal(lines(all.output).length, 101);
    assert.equal(lines(all.output)[0], "line 1");
    assert.equal(all.metadata, undefined, "no metadata unless asked");

    const tail = await out({ tail: 5 });
    assert.deepEqual(lines(tail.output).slice(0, 4), ["line 97", "line 98", "line 99", "line 100"]);
    assert.equal(lines(tail.output).length, 5);

    const filtered = await out({ filter: "^line 4\\d$" });
    assert.deepEqual(lines(filtered.output), Array.from({ length: 10 }, (_, i) => `line ${40 + i}`));
    const filteredTail = await out({ filter: "^line", tail: 3 });
    assert.deepEqual(lines(filteredTail.output), ["line 98", "line 99", "line 100"]);

    const jsonl = await out({ format: "jsonl", tail: 2 });
    assert.ok(Array.isArray(jsonl.output));
    assert.equal(jsonl.output.length, 2);
    assert.equal(jsonl.output[0], "line 100");
    assert.deepEqual(jsonl.output[1], { type: "result", subtype: "success", is_error: false, total_cost_usd: 0.5, num_turns: 3 });

    const parsed = await out({ format: "parsed", tail: 1 });
    assert.match(parsed.output, /^result: success/);

    const capped = await out({ max_bytes: 50 });
    assert.ok(Buffer.byteLength(capped.output) <= 50, `max_bytes respected: ${capped.output.length}`);
    assert.ok(capped.output.length > 0);
    assert.equal(capped.truncated, true);
    assert.ok(capped.output.endsWith('"num_turns":3}\n'), "the newest lines are kept");

    const meta = await out({ include_metadata: true, tail: 1 });
    assert.equal(typeof meta.metadata, "object");
    assert.equal(meta.metadata.log_file, path.join(w.ws, task.task_id, "logs", `${agent.agent_id}_stream.jsonl`));
    assert.ok(meta.metadata.file_size > 700);
    assert.equal(meta.metadata.exit_code, 0);

    const summary = await out({ response_format: "summary" });
    assert.ok(lines(summary.output).length <= 20);
    const compact = await out({ aggressive_truncate: true });
    assert.ok(Buffer.byteLength(compact.output) <= 8192);

    // A big log: the default answer stays well under Claude Code's 25k-token tool output cap.
    const big = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "chatty", prompt: "p", backend: "command",
      command: ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo \"chatty line $i with some padding to make it longer\"; i=$((i+1)); done; echo chatty-done"] });
    await waitForLog(w, task.task_id, big.agent_id, "chatty-done", { timeoutMs: 60000 });
    const bigOut = await c.callTool({ name: "get_agent_output", arguments: { task_id: task.task_id, agent_id: big.agent_id } });
    // Claude Code counts the text blocks (about 4 characters a token) against MAX_MCP_OUTPUT_TOKENS.
    const textChars = bigOut.content.filter(b => b.type === "text").reduce((n, b) => n + b.text.length, 0);
    assert.ok(textChars < 100000, `default text output ${textChars} characters`);
    assert.ok(Buffer.byteLength(bigOut.structuredContent.output) <= 49152, "the default cap");
    assert.equal(bigOut.structuredContent.truncated, true);
    assert.ok(bigOut.structuredContent.output.endsWith("chatty-done\n"), "the newest lines");

    assert.match(await callFails(c, "get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, filter: "(" }), /filter|regular/);
    assert.match(await callFails(c, "get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, format: "xml" }), /format/);
    assert.match(await callFails(c, "get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, tail: -1 }), /tail/);
    assert.match(await callFails(c, "get_agent_output", { task_id: task.task_id, agent_id: "ghost-000000-abcdef" }), /ghost/);
  }));

test("kill_real_agent: terminated, processes gone (grandchildren too), logs kept, idempotent", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    // The agent starts a grandchild in a session of its own, then sleeps.
    const agent = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "worker", prompt: "p", backend: "command",
      command: ["sh", "-c", "setsid sleep 601 & echo grandchild=$!; echo alive-and-well; exec sleep 600"] });
    await waitForLog(w, task.task_id, agent.agent_id, "alive-and-well");
    const logText = fs.readFileSync(path.join(w.ws, task.task_id, "logs", `${agent.agent_id}_stream.jsonl`), "utf8");
    const grandchild = Number(/grandchild=(\d+)/.exec(logText)[1]);
    await waitUntil(() => isAlive(grandchild) && fs.readFileSync(`/proc/${grandchild}/cmdline`, "utf8").startsWith("sleep"),
                    { what: "the grandchild to run sleep" });
    const killed = await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, reason: "test says stop" });
    assert.equal(killed.agent_id, agent.agent_id);
    assert.equal(killed.status, "terminated");
    assert.equal(killed.reason, "test says stop");
    assert.equal(typeof killed.cleanup, "object");
    assert.equal(killed.cleanup.all_exited, true);
    assert.equal(isAlive(agent.pid), false, "the agent process is gone");
    const grandchildAlive = isAlive(grandchild);
    if (grandchildAlive) process.kill(grandchild, "SIGKILL");
    assert.equal(grandchildAlive, false, "the grandchild in its own session is gone too");
    const entry = agentEntry(await taskStatus(c, task.task_id), agent.agent_id);
    assert.equal(entry.status, "terminated");
    assert.equal(entry.termination_reason, "test says stop");
    assert.ok(entry.terminated_at);
    const output = await call(c, "get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id });
    assert.match(output.output, /alive-and-well/, "the log stays readable after a kill");
    const again = await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id });
    assert.equal(again.status, "terminated");
    assert.equal(again.already_ended, true);
    assert.match(await callFails(c, "kill_real_agent", { task_id: task.task_id, agent_id: "ghost-000000-abcdef" }), /ghost/);
    assert.equal((await taskStatus(c, task.task_id)).agents.active, 0);
  }));

test("stop_task: every agent terminated and gone (pid + start time), later deploys refused, idempotent", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c, { max_concurrent: 10 });
    const agents = [];
    for (let i = 0; i < 4; i++)
      agents.push(await deploySleeper(c, task.task_id, { ignoreTerm: i === 0, marker: `sleeper-${i}` }));
    for (let i = 0; i < 4; i++) await waitForLog(w, task.task_id, agents[i].agent_id, `sleeper-${i}`);
    const before = w.registry(task.task_id).agents;
    const processes = before.flatMap(a => [[a.pid, a.process_start_time], [a.supervisor_pid, a.supervisor_start_time]]);
    for (const [pid, start] of processes) assert.equal(processStartTime(pid), start, `pid ${pid} runs as recorded`);

    const progress = [];
    const stopped = await call(c, "stop_task", { task_id: task.task_id, reason: "the plan changed", grace_seconds: 1 },
                               { onprogress: p => progress.push(p.message) });
    assert.equal(stopped.task_id, task.task_id);
    assert.equal(stopped.status, "stopped");
    assert.equal(stopped.reason, "the plan changed");
    assert.equal(stopped.marked, 4);
    assert.equal(stopped.stopped, 4);
    assert.equal(stopped.failed, 0);
    assert.deepEqual(stopped.failures, []);
    assert.equal(stopped.registry_recorded, true);
    assert.ok(progress.some(m => /stopping every agent/.test(m ?? "")), `progress: ${progress}`);
    for (const agent of agents) assert.equal(isAlive(agent.pid) && processStartTime(agent.pid) === before.find(a => a.id === agent.agent_id).process_start_time, false);
    await waitUntil(() => processes.every(([pid, start]) => !isAlive(pid) || processStartTime(pid) !== start),
                    { timeoutMs: 60000, what: "every agent and supervisor to exit" });
    const status = await taskStatus(c, task.task_id);
    assert.equal(status.agents.active, 0);
    assert.equal(status.stopped.reason, "the plan changed");
    assert.equal(status.stopped.at, stopped.stopped_at);
    for (const agent of agents) {
      const entry = agentEntry(status, agent.agent_id);
      assert.equal(entry.status, "terminated");
      assert.equal(entry.termination_reason, "the plan changed");
    }
    const refused = await callFails(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "late", prompt: "p", backend: "command", command: ["true"] });
    assert.match(refused, /the plan changed/);
    assert.match(refused, /create a new task/);
    const again = await call(c, "stop_task", { task_id: task.task_id });
    assert.equal(again.already_stopped, true);
    assert.equal(again.marked, 0);
    assert.equal(again.reason, "the plan changed", "the first stop's reason stays");
    assert.match(await callFails(c, "stop_task", { task_id: "TASK-20260101-000000-00000000" }), /TASK-20260101-000000-00000000/);
  }));

test("update_agent_progress returns coordination_info with the other agents' status, progress and findings", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    const a = await deploySleeper(c, task.task_id, { type: "frontend" });
    const b = await deploySleeper(c, task.task_id, { type: "backend" });
    await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: b.agent_id, status: "blocked",
                                             message: "waiting for the schema", progress: 30 });
    await call(c, "report_agent_finding", { task_id: task.task_id, agent_id: b.agent_id, finding_type: "issue",
                                            severity: "high", message: "the schema has no index", data: { table: "users" } });
    const r = await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "working",
                                                       message: "building the form", progress: 40 });
    assert.equal(r.own_update.agent_id, a.agent_id);
    assert.equal(r.own_update.status, "working");
    assert.equal(r.own_update.progress, 40);
    assert.equal(r.own_update.message, "building the form");
    assert.ok(!Number.isNaN(Date.parse(r.own_update.timestamp)));
    const info = r.coordination_info;
    assert.ok(info && typeof info === "object");
    assert.equal(info.agents.some(x => x.agent_id === a.agent_id), false, "the agent itself is not among the others");
    const other = info.agents.find(x => x.agent_id === b.agent_id);
    assert.ok(other, JSON.stringify(info.agents));
    assert.equal(other.status, "blocked");
    assert.equal(other.progress, 30);
    assert.ok(info.recent_progress.some(p => p.agent_id === b.agent_id && p.message === "waiting for the schema"));
    assert.ok(info.recent_findings.some(f => f.agent_id === b.agent_id && f.message === "the schema has no index"));

    // Recorded: the agent's JSONL journal and the registry.
    const journal = readJsonLines(path.join(w.ws, task.task_id, "progress", `${a.agent_id}_progress.jsonl`));
    assert.equal(journal.length, 1);
    assert.deepEqual({ ...journal[0], timestamp: undefined },
                     { timestamp: undefined, agent_id: a.agent_id, status: "working", message: "building the form", progress: 40 });
    const entry = w.registry(task.task_id).agents.find(x => x.id === a.agent_id);
    assert.equal(entry.status, "working");
    assert.equal(entry.progress, 40);

    // Invalid reports are isError results.
    assert.match(await callFails(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "dancing", message: "m" }), /status|dancing/);
    assert.match(await callFails(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "working", message: "m", progress: 101 }), /progress/);
    assert.match(await callFails(c, "update_agent_progress", { task_id: task.task_id, agent_id: "ghost-000000-abcdef", status: "working", message: "m" }), /ghost/);
    assert.match(await callFails(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "working" }), /message/);

    // "completed" is final: recorded, counted, and the server handling it keeps serving.
    const done = await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "completed",
                                                          message: "form done", progress: 100 });
    assert.equal(done.own_update.status, "completed");
    assert.deepEqual(await c.ping(), {});
    const s = await taskStatus(c, task.task_id);
    assert.equal(agentEntry(s, a.agent_id).status, "completed");
    assert.equal(s.agents.completed, 1);
    assert.match(await callFails(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "working", message: "again" }),
                 /ended|final|completed/);
    for (const x of [a, b]) await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: x.agent_id, grace_seconds: 0 });
  }));

test("report_agent_finding records the finding and returns coordination_info", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    const a = await deploySleeper(c, task.task_id, { type: "auditor" });
    const b = await deploySleeper(c, task.task_id, { type: "fixer" });
    await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: b.agent_id, status: "working",
                                             message: "patching", progress: 55 });
    const r = await call(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "issue",
                                                      severity: "critical", message: "SQL injection in /login",
                                                      data: { file: "login.py", line: 42 } });
    assert.deepEqual({ ...r.own_finding, timestamp: undefined }, {
      timestamp: undefined, agent_id: a.agent_id, finding_type: "issue", severity: "critical",
      message: "SQL injection in /login", data: { file: "login.py", line: 42 } });
    assert.ok(!Number.isNaN(Date.parse(r.own_finding.timestamp)));
    const other = r.coordination_info.agents.find(x => x.agent_id === b.agent_id);
    assert.equal(other.status, "working");
    assert.ok(r.coordination_info.recent_progress.some(p => p.message === "patching"));
    const journal = readJsonLines(path.join(w.ws, task.task_id, "findings", `${a.agent_id}_findings.jsonl`));
    assert.equal(journal.length, 1);
    assert.equal(journal[0].message, "SQL injection in /login");
    const noData = await call(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "insight",
                                                           severity: "low", message: "fine otherwise" });
    assert.deepEqual(noData.own_finding.data, {});
    assert.match(await callFails(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "issue",
                                                              severity: "apocalyptic", message: "m" }), /severity/);
    assert.match(await callFails(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "issue",
                                                              severity: "low", message: "m", data: [1, 2] }), /data/);
    // Overlong reports are refused with what to do, and change nothing.
    const before = await taskStatus(c, task.task_id);
    assert.match(await callFails(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "issue",
                                                              severity: "low", message: "x".repeat(70000) }), /short summary/);
    assert.match(await callFails(c, "report_agent_finding", { task_id: task.task_id, agent_id: a.agent_id, finding_type: "issue",
                                                              severity: "low", message: "m", data: { blob: "y".repeat(300000) } }), /data is/);
    assert.match(await callFails(c, "update_agent_progress", { task_id: task.task_id, agent_id: a.agent_id, status: "working",
                                                               message: "z".repeat(70000), progress: 5 }), /short summary/);
    const after = await taskStatus(c, task.task_id);
    assert.equal(after.enhanced_progress.total_findings, before.enhanced_progress.total_findings);
    assert.equal(after.enhanced_progress.total_progress_entries, before.enhanced_progress.total_progress_entries);
    for (const x of [a, b]) await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: x.agent_id, grace_seconds: 0 });
  }));

// A stand-in for the claude CLI: prints its argv and the prompt it got on stdin, then sleeps.
function fakeClaude(w) {
  const file = w.file("fake-claude.sh");
  fs.writeFileSync(file, '#!/bin/sh\necho "ARGV: $*"\ncat\necho\necho END-OF-PROMPT\nexec sleep 600\n', { mode: 0o755 });
  return file;
}

test("spawn_child_agent under an MCP-capable (claude backend) parent: default backend, explicit command, depth", T, async () => {
  const w0 = makeWorkspace("herd-fake-");
  const claude = fakeClaude(w0);
  try {
    await withServer({ env: { CLAUDE_EXECUTABLE: claude } }, async ({ w, c }) => {
      const task = await newTask(c, { max_depth: 2 });
      const parent = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "lead", prompt: "lead the work",
                                                              model: "herd-test-model" });
      assert.equal(parent.backend, "claude");
      assert.equal(parent.model, "herd-test-model");
      await waitForLog(w, task.task_id, parent.agent_id, "END-OF-PROMPT");

      // The parent got a per-agent MCP config for `herd serve` on this workspace, and a prompt
      // naming its ids and the exact tools.
      const log = fs.readFileSync(path.join(w.ws, task.task_id, "logs", `${parent.agent_id}_stream.jsonl`), "utf8");
      const configPath = /--mcp-config=(\S+)/.exec(log)?.[1];
      assert.ok(configPath, `--mcp-config=<file> in argv: ${log.slice(0, 500)}`);
      const config = JSON.parse(fs.readFileSync(configPath, "utf8"));
      assert.equal(fs.realpathSync(config.mcpServers.herd.command), fs.realpathSync(HERD));
      assert.deepEqual(config.mcpServers.herd.args.slice(0, 1), ["serve"]);
      assert.ok(JSON.stringify(config.mcpServers.herd).includes(w.ws), "the agent's herd serve uses the same workspace");
      assert.match(log, new RegExp(`^Task ID: ${task.task_id}$`, "m"));
      assert.match(log, new RegExp(`^Agent ID: ${parent.agent_id}$`, "m"));
      for (const tool of ["update_agent_progress", "report_agent_finding", "spawn_child_agent"]) assert.match(log, new RegExp(tool));
      assert.match(log, /lead the work/);
      assert.match(log, /--model herd-test-model/, "the model parameter reaches the agent CLI");

      // Default: the child runs on the parent's backend.
      const child = await call(c, "spawn_child_agent", { task_id: task.task_id, parent_agent_id: parent.agent_id,
                                                         child_agent_type: "helper", child_prompt: "help the lead" });
      assert.equal(child.parent, parent.agent_id);
      assert.equal(child.depth, 2);
      assert.equal(child.backend, "claude");
      assert.equal(child.model, "herd-test-model", "and on the parent's model");
      assert.equal(child.status, "deployed");
      // Explicit backend command with its argv.
      const cmdChild = await call(c, "spawn_child_agent", { task_id: task.task_id, parent_agent_id: parent.agent_id,
                                                            child_agent_type: "scripted", child_prompt: "run a script",
                                                            backend: "command", command: sleeperCommand() });
      assert.equal(cmdChild.parent, parent.agent_id);
      assert.equal(cmdChild.depth, 2);
      assert.equal(cmdChild.backend, "command");
      const s = await taskStatus(c, task.task_id);
      assert.deepEqual([...s.hierarchy[parent.agent_id]].sort(), [child.agent_id, cmdChild.agent_id].sort());
      assert.equal(s.agents.active, 3);
      // max_depth 2: a grandchild is refused with the reason.
      assert.match(await callFails(c, "spawn_child_agent", { task_id: task.task_id, parent_agent_id: child.agent_id,
                                                             child_agent_type: "grandchild", child_prompt: "x",
                                                             backend: "command", command: sleeperCommand() }), /depth/);
      assert.match(await callFails(c, "spawn_child_agent", { task_id: task.task_id, parent_agent_id: "ghost-000000-abcdef",
                                                             child_agent_type: "x", child_prompt: "x",
                                                             backend: "command", command: sleeperCommand() }), /ghost/);
      for (const x of [parent, child, cmdChild])
        await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: x.agent_id, grace_seconds: 0 });
    });
  } finally {
    await w0.cleanup();
  }
});

test("spawn_child_agent under a command agent, with backend \"command\" and command given explicitly", T, () =>
  withServer(async ({ c }) => {
    const task = await newTask(c);
    const parent = await deploySleeper(c, task.task_id, { type: "parent" });
    // Without a backend the child cannot inherit "command" (no argv): a clear refusal.
    assert.match(await callFails(c, "spawn_child_agent", { task_id: task.task_id, parent_agent_id: parent.agent_id,
                                                           child_agent_type: "child", child_prompt: "x" }), /backend/);
    // With backend and command, as that refusal advises, the child starts.
    const result = await c.callTool({ name: "spawn_child_agent", arguments: {
      task_id: task.task_id, parent_agent_id: parent.agent_id, child_agent_type: "child", child_prompt: "x",
      backend: "command", command: sleeperCommand() } });
    try {
      assert.notEqual(result.isError, true, `spawn_child_agent refused: ${JSON.stringify(result.structuredContent)}`);
      const child = structured(result);
      assert.equal(child.parent, parent.agent_id);
      assert.equal(child.depth, 2);
    } finally {
      await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: parent.agent_id, grace_seconds: 0 });
      if (!result.isError)
        await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: result.structuredContent.agent_id, grace_seconds: 0 });
    }
  }));

test("an agent reporting \"completed\" through its own herd serve gets its answer (the server is not killed)", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    // The agent is a shell script that is its own MCP client: it pipes three messages into
    // `herd serve` (its child, in its process group) and logs the replies.
    const script = w.file("reporting-agent.sh");
    fs.writeFileSync(script, [
      "#!/bin/sh",
      `req='{"jsonrpc":"2.0","id":"done","method":"tools/call","params":{"name":"update_agent_progress","arguments":{"task_id":"'"$HERD_TASK_ID"'","agent_id":"'"$HERD_AGENT_ID"'","status":"completed","message":"all finished","progress":100}}}'`,
      `printf '%s\\n' '{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"agent","version":"0"}}}' '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$req" | "$HERD_BIN" serve`,
      'echo "serve-exit=$?"',
      "exec sleep 600",
      ""].join("\n"), { mode: 0o755 });
    const agent = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "reporter", prompt: "report",
                                                           backend: "command", command: [script] });
    await waitForLog(w, task.task_id, agent.agent_id, "serve-exit=", { timeoutMs: 60000 });
    const lines = fs.readFileSync(path.join(w.ws, task.task_id, "logs", `${agent.agent_id}_stream.jsonl`), "utf8").split("\n");
    assert.ok(lines.includes("serve-exit=0"), lines.join("\n"));
    const reply = lines.filter(l => l.startsWith("{")).map(l => JSON.parse(l)).find(m => m.id === "done");
    assert.ok(reply, `the agent got the reply to its completed report:\n${lines.join("\n")}`);
    assert.equal(reply.result.isError, false, JSON.stringify(reply));
    assert.equal(reply.result.structuredContent.own_update.status, "completed");
    const entry = agentEntry(await taskStatus(c, task.task_id), agent.agent_id);
    assert.equal(entry.status, "completed");
    assert.equal(entry.last_message, "all finished");
    // Whatever is left of it is stopped by a kill (idempotent on an ended agent).
    const k = await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 0 });
    assert.equal(k.already_ended, true);
    assert.equal(k.status, "completed");
    assert.equal(isAlive(agent.pid), false);
  }));

test("resources: tasks://list, task://{id}/status, task://{id}/progress-timeline, unknown -> -32002", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    const other = await newTask(c, { description: "the second task of the resources test" });
    const agent = await deploySleeper(c, task.task_id);
    await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: agent.agent_id, status: "working", message: "first", progress: 10 });
    await call(c, "report_agent_finding", { task_id: task.task_id, agent_id: agent.agent_id, finding_type: "insight", severity: "info", message: "second" });
    await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: agent.agent_id, status: "working", message: "third", progress: 20 });

    const { resources } = await c.listResources();
    const uris = resources.map(r => r.uri);
    assert.ok(uris.includes("tasks://list"));
    assert.ok(uris.includes(`task://${task.task_id}/status`));
    assert.ok(uris.includes(`task://${other.task_id}/status`));
    const { resourceTemplates } = await c.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map(r => r.uriTemplate).sort(),
                     ["task://{task_id}/progress-timeline", "task://{task_id}/status"]);

    const read = async uri => {
      const r = await c.readResource({ uri });
      assert.equal(r.contents.length, 1);
      assert.equal(r.contents[0].uri, uri);
      assert.equal(r.contents[0].mimeType, "application/json");
      return JSON.parse(r.contents[0].text);
    };
    let list = await read("tasks://list");
    assert.deepEqual(list.tasks.map(x => x.task_id).sort(), [task.task_id, other.task_id].sort());
    // Across workspace bases: a task in a project's own .agent-workspace is listed too.
    const project = w.file("elsewhere");
    fs.mkdirSync(project);
    const remote = await newTask(c, { client_cwd: project });
    list = await read("tasks://list");
    assert.ok(list.tasks.some(x => x.task_id === remote.task_id), "tasks://list covers every workspace base");
    assert.equal((await read(`task://${remote.task_id}/status`)).task_id, remote.task_id);
    const status = await read(`task://${task.task_id}/status`);
    assert.equal(status.task_id, task.task_id);
    assert.equal(status.agents.agents_list[0].id, agent.agent_id);
    assert.equal(status.enhanced_progress.total_progress_entries, 2);
    const timeline = await read(`task://${task.task_id}/progress-timeline`);
    const entries = timeline.timeline;
    assert.deepEqual(entries.map(e => [e.entry_type, e.message]),
                     [["progress", "first"], ["finding", "second"], ["progress", "third"]], "oldest first, tagged");
    assert.deepEqual(entries.map(e => e.timestamp), [...entries.map(e => e.timestamp)].sort());
    assert.equal(timeline.omitted_older_entries, undefined);

    // A long journal: the newest entries that fit the clients' limits, the count of the rest.
    // Made by real reports: a line appended behind herd's back is past the
    // length the registry records, and readers do not count it.
    const journal = path.join(task.workspace, "progress", `${agent.agent_id}_progress.jsonl`);
    fs.appendFileSync(journal, JSON.stringify({ agent_id: agent.agent_id, message: "not committed" }) + "\n");
    for (let i = 0; i < 600; i++) {
      await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: agent.agent_id, status: "working",
                                               message: `bulk update ${i} `.padEnd(60, "."), progress: 50 });
    }
    assert.ok(!fs.readFileSync(journal, "utf8").includes("not committed"), "the next report cut the uncommitted line off");
    const big = await c.readResource({ uri: `task://${task.task_id}/progress-timeline` });
    assert.ok(big.contents[0].text.length <= 65 * 1024, `${big.contents[0].text.length} bytes`);
    const trimmed = JSON.parse(big.contents[0].text);
    assert.equal(trimmed.total_entries, 603);
    assert.ok(trimmed.omitted_older_entries > 0, "the budget left older entries out");
    assert.equal(trimmed.timeline.length + trimmed.omitted_older_entries, 603);
    assert.equal(trimmed.timeline.at(-1).message, `bulk update 599 `.padEnd(60, "."), "the newest entry is kept");

    for (const uri of ["task://TASK-20200101-000000-deadbeef/status", `task://${task.task_id}/nonsense`,
                       "tasks://nothing", "bogus://x", "task://../../etc/status"]) {
      await assert.rejects(c.readResource({ uri }), e => {
        assert.ok(e instanceof McpError, String(e));
        assert.equal(e.code, -32002, `${uri}: ${e.message}`);
        assert.deepEqual(e.data, { uri });
        return true;
      });
    }
    await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 0 });
  }));

test("resources/subscribe: notifications/resources/updated for a task's status and timeline; unsubscribe stops them", T, () =>
  withServer(async ({ s, c }) => {
    assert.equal(s.transport.initializeResult.capabilities.resources.subscribe, true);
    const task = await newTask(c);
    const fence = await newTask(c, { description: "the fence task of the subscription test" });
    const statusUri = `task://${task.task_id}/status`;
    const timelineUri = `task://${task.task_id}/progress-timeline`;
    const fenceUri = `task://${fence.task_id}/status`;
    const fenceAgent = await deploySleeper(c, fence.task_id);

    const updates = [];
    let waiters = [];
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, n => {
      updates.push(n.params.uri);
      for (const w of [...waiters]) w();
    });
    const count = uri => updates.filter(u => u === uri).length;
    // Resolves at the next notification for `uri` after this call (no timer: wrap it in withTimeout).
    const nextUpdate = uri => {
      const target = count(uri) + 1;
      return new Promise(resolve => {
        const check = () => {
          if (count(uri) < target) return;
          waiters = waiters.filter(w => w !== check);
          resolve();
        };
        waiters.push(check);
      });
    };
    const awaitUpdate = (promise, uri) => withTimeout(promise, 30000, `notifications/resources/updated for ${uri}`);
    // Returns once every change made before it has been notified: two reports to the fence task,
    // each waited for (the second comes from a later pass of the server's watcher).
    const settle = async () => {
      for (let i = 0; i < 2; i++) {
        const next = nextUpdate(fenceUri);
        await call(c, "update_agent_progress", { task_id: fence.task_id, agent_id: fenceAgent.agent_id,
                                                 status: "working", message: `fence ${i}`, progress: i });
        await awaitUpdate(next, fenceUri);
      }
    };

    for (const uri of [statusUri, timelineUri, fenceUri]) assert.deepEqual(await c.subscribeResource({ uri }), {});

    // A real agent that exits after 0.2 s: the status is read only when a notification says it
    // changed, until it shows the agent's end.
    const deployed = nextUpdate(statusUri);
    const agent = await call(c, "deploy_headless_agent", {
      task_id: task.task_id, agent_type: "sleeper", prompt: "sleep", backend: "command", command: ["sleep", "0.2"],
    });
    await awaitUpdate(deployed, statusUri);
    for (;;) {
      const next = nextUpdate(statusUri);
      const r = await c.readResource({ uri: statusUri });
      const entry = agentEntry(JSON.parse(r.contents[0].text), agent.agent_id);
      if (entry.status === "completed") break;
      await awaitUpdate(next, statusUri);
    }
    assert.equal(count(timelineUri), 0, "no report yet: the timeline has not changed");

    const worker = await deploySleeper(c, task.task_id);
    const reported = nextUpdate(timelineUri);
    await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: worker.agent_id,
                                             status: "working", message: "halfway", progress: 50 });
    await awaitUpdate(reported, timelineUri);
    await settle();
    assert.equal(count(timelineUri), 1, "one report, one notification");

    assert.deepEqual(await c.unsubscribeResource({ uri: statusUri }), {});
    assert.deepEqual(await c.unsubscribeResource({ uri: timelineUri }), {});
    const before = [count(statusUri), count(timelineUri)];
    await call(c, "update_agent_progress", { task_id: task.task_id, agent_id: worker.agent_id,
                                             status: "working", message: "after unsubscribing", progress: 60 });
    await settle();
    assert.deepEqual([count(statusUri), count(timelineUri)], before, "no notifications after unsubscribing");
    assert.ok(updates.every(u => [statusUri, timelineUri, fenceUri].includes(u)), JSON.stringify(updates));

    await assert.rejects(c.subscribeResource({ uri: "task://TASK-20200101-000000-deadbeef/status" }), e => {
      assert.ok(e instanceof McpError, String(e));
      assert.equal(e.code, -32002);
      assert.match(e.message, /tasks:\/\/list/);
      return true;
    });
    await assert.rejects(c.subscribeResource({ uri: "tasks://list" }), e => e instanceof McpError && e.code === -32602);
    for (const a of [worker, fenceAgent]) {
      const t = a === worker ? task : fence;
      await call(c, "kill_real_agent", { task_id: t.task_id, agent_id: a.agent_id, grace_seconds: 0 });
    }
    assert.deepEqual(s.errors, []);
  }));

test("progress notifications: strictly increasing, before the response, only when asked", T, () =>
  withServer(async ({ s, c }) => {
    const task = await newTask(c);
    const seen = { deploy: [], kill: [], create: [] };
    const agent = await call(c, "deploy_headless_agent", { task_id: task.task_id, agent_type: "w", prompt: "p",
                                                           backend: "command", command: sleeperCommand() },
                             { onprogress: p => seen.deploy.push(p) });
    await call(c, "create_real_task", { description: "progress for a fast call" }, { onprogress: p => seen.create.push(p) });
    await call(c, "kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 0 },
               { onprogress: p => seen.kill.push(p) });
    for (const [name, list] of Object.entries(seen)) {
      assert.ok(list.length >= 1, `${name}: at least one notification`);
      for (let i = 1; i < list.length; i++) assert.ok(list[i].progress > list[i - 1].progress, `${name}: strictly increasing`);
      for (const p of list) {
        assert.equal(typeof p.progress, "number");
        if (p.message !== undefined) assert.equal(typeof p.message, "string");
        if (p.total !== undefined) assert.ok(p.progress <= p.total);
      }
    }
    // On the wire: every progress notification for a request precedes its response.
    const rx = s.transport.received;
    const notes = rx.filter(m => m.method === "notifications/progress");
    assert.ok(notes.length >= 3);
    for (const n of notes) {
      const token = n.params.progressToken;
      const responseAt = rx.findIndex(m => m.id === token && ("result" in m || "error" in m));
      assert.ok(responseAt > rx.indexOf(n), `progress for request ${token} must come before its response`);
    }
    // No progressToken, no notifications.
    const before = rx.filter(m => m.method === "notifications/progress").length;
    await call(c, "get_real_task_status", { task_id: task.task_id });
    await call(c, "create_real_task", { description: "no progress wanted here" });
    assert.equal(rx.filter(m => m.method === "notifications/progress").length, before);
  }));

test("cancellation: an aborted slow kill_real_agent rejects in the SDK, gets no response, and the server keeps serving", T, async () => {
  const w = makeWorkspace("herd-cancel-");
  const s = await connectSdk(w);
  const c = s.client;
  try {
    await c.listTools();
    const controller = new AbortController();
    const { task, agent, killing } = await startSlowKill(w, c, { graceSeconds: 4, signal: controller.signal });
    const outcome = killing.then(() => "resolved", e => e);
    controller.abort("the test changed its mind");
    const rejected = await outcome;
    assert.notEqual(rejected, "resolved", "the SDK rejects an aborted call");
    const requestId = s.transport.received.find(m => m.method === "notifications/progress" &&
                                                   /stopping/.test(m.params.message ?? ""))?.params.progressToken;
    assert.notEqual(requestId, undefined);

    // The server keeps serving while the cancelled kill finishes in the background.
    assert.deepEqual(await c.ping(), {});
    const status = await taskStatus(c, task.task_id);
    assert.equal(status.task_id, task.task_id);
    await call(c, "create_real_task", { description: "served after a cancellation" });

    // End the session: herd finishes the cancelled work before exiting, and never answers it.
    const exit = await s.close();
    assert.deepEqual(exit, { code: 0, signal: null });
    const answered = s.transport.received.filter(m => m.id === requestId && ("result" in m || "error" in m));
    assert.deepEqual(answered, [], "no response for the cancelled request");
    assert.deepEqual(s.errors.filter(e => /unknown message ID/.test(e.message)), []);
    // The kill itself still happened.
    assert.equal(isAlive(agent.pid), false, "the agent was SIGKILLed after the grace period");
    assert.equal(w.registry(task.task_id).agents.find(x => x.id === agent.agent_id).status, "terminated");
  } finally {
    await c.close().catch(() => {});
    await w.cleanup();
  }
});

test("a client shutting down during a slow kill_real_agent (EOF, then SIGTERM after 2 s, as the SDK does) leaves no agent running", T, async () => {
  const w = makeWorkspace("herd-shutdown-");
  const s = await connectSdk(w);
  const c = s.client;
  try {
    await c.listTools();
    const { task, agent, killing: kill } = await startSlowKill(w, c, { graceSeconds: 5 });
    const killing = kill.catch(e => e);
    // The SDK's close(): end stdin, wait 2 s, SIGTERM, wait 2 s, SIGKILL.
    await c.close();
    await killing;
    // The agent is recorded as terminated; it must not keep running once the grace period is over.
    assert.equal(w.registry(task.task_id).agents.find(x => x.id === agent.agent_id).status, "terminated");
    await waitUntil(() => !isAlive(agent.pid), {
      timeoutMs: 30000, intervalMs: 100,
      what: `agent ${agent.agent_id} (pid ${agent.pid}, recorded "terminated") to be gone after its 5 s grace period; ` +
            `herd serve ended with ${s.proc.signalCode ?? s.proc.exitCode}`,
    });
  } finally {
    await c.close().catch(() => {});
    await w.cleanup();
  }
});

test("ping, logging/setLevel, protocol errors as McpError", T, () =>
  withServer(async ({ c }) => {
    assert.deepEqual(await c.ping(), {});
    for (const level of ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"])
      assert.deepEqual(await c.setLoggingLevel(level), {}, level);
    await assert.rejects(c.setLoggingLevel("verbose"), e => e instanceof McpError && e.code === -32602);
    await assert.rejects(c.callTool({ name: "no_such_tool", arguments: {} }),
                         e => e instanceof McpError && e.code === -32602 && /no_such_tool/.test(e.message));
    await assert.rejects(c.listTools({ cursor: "bogus" }), e => e instanceof McpError && e.code === -32602);
    // Wrong argument types are tool results with isError (SEP-1303), not protocol errors.
    const r = await c.callTool({ name: "get_real_task_status", arguments: { task_id: 12 } });
    assert.equal(r.isError, true);
    assert.match(structured(r).error, /task_id/);
  }));

test("get_health_status: doctor's report through MCP, reads only, finds a zombie entry", T, () =>
  withServer(async ({ w, c }) => {
    const task = await newTask(c);
    const agent = await deploySleeper(c, task.task_id, { type: "doomed" });
    const healthy = await call(c, "get_health_status", {});
    assert.equal(healthy.summary.healthy, true, JSON.stringify(healthy.summary));
    assert.ok(Array.isArray(healthy.workspaces) && healthy.workspaces.length >= 1);
    assert.ok(healthy.workspaces[0].lock_metrics, "lock figures are reported");

    // Kill the agent and its supervisor behind herd's back: the entry stays "running".
    const entry = agentEntry(await taskStatus(c, task.task_id), agent.agent_id);
    for (const pid of [entry.supervisor_pid, entry.pid]) {
      try { process.kill(pid, "SIGKILL"); } catch {}
    }
    await waitUntil(() => !isAlive(entry.pid) && !isAlive(entry.supervisor_pid),
                    { what: "the agent and its supervisor gone" });
    const registry = path.join(task.workspace, "AGENT_REGISTRY.json");
    const before = fs.readFileSync(registry, "utf8");
    const report = await call(c, "get_health_status", { task_id: task.task_id });
    assert.equal(report.summary.healthy, false);
    const findings = report.workspaces.flatMap(ws => ws.tasks.flatMap(t => t.findings));
    assert.ok(findings.some(f => f.kind === "zombie" && f.agent_id === agent.agent_id), JSON.stringify(findings));
    assert.equal(fs.readFileSync(registry, "utf8"), before, "get_health_status repairs nothing");
  }));
