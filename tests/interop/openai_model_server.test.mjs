// HTTP-level tests of the scripted OpenAI Responses API server (no agent CLI needed), with
// requests shaped like those Codex CLI 0.171.0 sends (see openai_model_server.mjs).
// Run: cd tests/interop && node --test openai_model_server.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { makeSandbox, startModelServer, readJsonLines, INTEROP_DIR } from "./lib/claude_harness.mjs";

const SERVER = path.join(INTEROP_DIR, "openai_model_server.mjs");
const TOOLS = [
  { type: "function", name: "exec_command", parameters: { type: "object" } },
  { type: "namespace", name: "mcp__herd", description: "Tools in the mcp__herd namespace.",
    tools: ["update_agent_progress", "report_agent_finding"].map(name => ({ type: "function", name, parameters: { type: "object" } })) },
];
const text = (role, t) => ({ type: "message", role, content: [{ type: "input_text", text: t }] });
const START = [text("developer", "You are a coding agent."), text("user", "<environment_context>\n  <cwd>/x</cwd>\n</environment_context>"),
               text("user", "Task ID: TASK-1\nAgent ID: agent-9\ngo")];

function parseSse(body) {
  return body.split("\n\n").filter(Boolean).map(chunk => {
    const [event, data] = chunk.split("\n");
    const parsed = JSON.parse(data.replace(/^data: /, ""));
    assert.equal(event, `event: ${parsed.type}`);
    return parsed;
  });
}
async function respond(url, input) {
  const res = await fetch(`${url}/v1/responses`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "scripted", stream: true, input, tools: TOOLS }),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/event-stream/);
  const events = parseSse(await res.text());
  assert.equal(events[0].type, "response.created");
  assert.equal(events.at(-1).type, "response.completed");
  return { items: events.filter(e => e.type === "response.output_item.done").map(e => e.item), completed: events.at(-1) };
}
async function withServer(scenario, fn) {
  const sb = makeSandbox("herd-openai-model-");
  const server = await startModelServer(scenario, { logPath: sb.file("model.log"), server: SERVER });
  try { await fn(server, sb); } finally { await server.stop(); sb.cleanup(); }
}

test("calls a namespaced MCP tool with the ids substituted, advances by function_call_output, and logs the usage it sent", () =>
  withServer("progress", async ({ url }, sb) => {
    const first = await respond(url, START);
    assert.equal(first.items.length, 1);
    const [call] = first.items;
    assert.equal(call.type, "function_call");
    assert.equal(call.name, "update_agent_progress");
    assert.equal(call.namespace, "mcp__herd");
    assert.deepEqual(JSON.parse(call.arguments), { task_id: "TASK-1", agent_id: "agent-9", status: "working",
                                                   message: "Started work", progress: 10 });
    const usage = first.completed.response.usage;
    assert.ok(usage.input_tokens > 0 && usage.input_tokens_details.cached_tokens > 0 && usage.output_tokens > 0);
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);

    const after = [...START, { type: "function_call", name: call.name, namespace: call.namespace, call_id: call.call_id,
                               arguments: call.arguments },
                   { type: "function_call_output", call_id: call.call_id, output: "{\"success\":true}" }];
    const second = await respond(url, after);
    assert.equal(JSON.parse(second.items[0].arguments).status, "completed");
    const done = [...after, { type: "function_call", name: "update_agent_progress", namespace: "mcp__herd",
                              call_id: second.items[0].call_id, arguments: second.items[0].arguments },
                  { type: "function_call_output", call_id: second.items[0].call_id, output: "ok" }];
    const third = await respond(url, done);
    assert.deepEqual(third.items.map(i => [i.type, i.content?.[0].text]), [["message", "Task complete."]]);

    const logged = readJsonLines(sb.file("model.log")).filter(e => e.role === "agent");
    assert.deepEqual(logged.map(e => e.step), [0, 1, 2]);
    assert.deepEqual(logged[0].usage, usage, "the log has exactly the usage sent");
    assert.equal(logged[0].prompt_head, "Task ID: TASK-1\nAgent ID: agent-9\ngo", "Codex's own context blocks are not the prompt");
    assert.deepEqual(logged[0].mcp_tools, ["mcp__herd__update_agent_progress", "mcp__herd__report_agent_finding"]);
  }));

test("a tool that is not offered ends the turn saying so", () =>
  withServer("progress", async ({ url }) => {
    const res = await fetch(`${url}/v1/responses`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ stream: true, input: START, tools: [TOOLS[0]] }),
    });
    const items = parseSse(await res.text()).filter(e => e.type === "response.output_item.done").map(e => e.item);
    assert.match(items[0].content[0].text, /^Cannot continue: tool\(s\) update_agent_progress not offered/);
  }));

test("the error scenario answers with the OpenAI error shape", () =>
  withServer("error", async ({ url }) => {
    const res = await fetch(`${url}/v1/responses`, { method: "POST", body: JSON.stringify({ input: START, tools: TOOLS }) });
    assert.equal(res.status, 500);
    assert.deepEqual(await res.json(), { error: { message: "Internal server error (scripted)", type: "server_error",
                                                  param: null, code: null } });
  }));
