// HTTP-level tests of the scripted model server (no agent CLI needed).
// Run: cd tests/interop && node --test model_server.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { makeSandbox, startModelServer, readJsonLines } from "./lib/claude_harness.mjs";

const TOOLS = ["Bash", "mcp__herd__update_agent_progress", "mcp__herd__report_agent_finding"]
  .map(name => ({ name, description: name, input_schema: { type: "object" } }));
const FIRST = { role: "user", content: [{ type: "text", text: "Task ID: TASK-1\nAgent ID: agent-9\ngo" }] };

async function post(url, body, path = "/v1/messages?beta=true") {
  const res = await fetch(url + path, { method: "POST", headers: { "content-type": "application/json" },
                                        body: JSON.stringify(body) });
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}
function parseSse(text) {
  return text.split("\n\n").filter(Boolean).map(chunk => {
    const [ev, data] = chunk.split("\n");
    const parsed = JSON.parse(data.replace(/^data: /, ""));
    assert.equal(ev, `event: ${parsed.type}`);
    return parsed;
  });
}
// Rebuilds the content blocks the way an SDK client does from the SSE deltas.
function assemble(events) {
  const blocks = [];
  for (const e of events) {
    if (e.type === "content_block_start") blocks[e.index] = { ...e.content_block, json: "" };
    if (e.type === "content_block_delta" && e.delta.type === "text_delta") blocks[e.index].text += e.delta.text;
    if (e.type === "content_block_delta" && e.delta.type === "input_json_delta") blocks[e.index].json += e.delta.partial_json;
  }
  return blocks.map(({ json, ...b }) => (b.type === "tool_use" ? { ...b, input: JSON.parse(json) } : b));
}
async function withServer(scenario, fn) {
  const sb = makeSandbox("herd-model-");
  const server = await startModelServer(scenario, { logPath: sb.file("model.log") });
  try { await fn(server, sb); } finally { await server.stop(); sb.cleanup(); }
}

test("streams a tool_use with ids substituted, then advances by tool_result count", () =>
  withServer("progress", async ({ url }, sb) => {
    const r = await post(url, { model: "m", stream: true, messages: [FIRST], tools: TOOLS });
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/event-stream/);
    const events = parseSse(r.text);
    assert.deepEqual([...new Set(events.map(e => e.type))],
                     ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                      "message_delta", "message_stop"]);
    const md = events.find(e => e.type === "message_delta");
    assert.equal(md.delta.stop_reason, "tool_use");
    assert.ok(md.usage.output_tokens > 0);
    const [call] = assemble(events);
    assert.equal(call.name, "mcp__herd__update_agent_progress");
    assert.deepEqual(call.input, { task_id: "TASK-1", agent_id: "agent-9", status: "working",
                                   message: "Started work", progress: 10 });

    const convo = [FIRST, { role: "assistant", content: [{ type: "tool_use", id: call.id, name: call.name, input: call.input }] },
                   { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "ok" }] }];
    const second = assemble(parseSse((await post(url, { stream: true, messages: convo, tools: TOOLS })).text));
    assert.equal(second[0].input.status, "completed");
    assert.notEqual(second[0].id, call.id);

    // Same conversation again: same answer (stateless, deterministic).
    const again = assemble(parseSse((await post(url, { stream: true, messages: convo, tools: TOOLS })).text));
    assert.deepEqual(again, second);

    const log = readJsonLines(sb.file("model.log")).filter(e => e.role === "agent");
    assert.deepEqual(log.map(e => e.step), [0, 1, 1]);
  }));

test("non-streaming requests get a plain JSON message; side requests get end_turn text", () =>
  withServer("progress", async ({ url }) => {
    const r = await post(url, { model: "m", messages: [FIRST], tools: TOOLS });
    assert.match(r.type, /^application\/json/);
    const msg = JSON.parse(r.text);
    assert.equal(msg.type, "message");
    assert.equal(msg.stop_reason, "tool_use");
    assert.equal(msg.content[0].input.agent_id, "agent-9");
    assert.ok(msg.usage.input_tokens > 0);

    const side = JSON.parse((await post(url, { model: "m", messages: [{ role: "user", content: "title?" }] })).text);
    assert.equal(side.stop_reason, "end_turn");
    assert.equal(side.content[0].type, "text");
  }));

test("count_tokens, unknown routes and the error scenario", async () => {
  await withServer("progress", async ({ url }) => {
    const c = await post(url, { messages: [FIRST] }, "/v1/messages/count_tokens?beta=true");
    assert.equal(c.status, 200);
    assert.ok(JSON.parse(c.text).input_tokens > 0);
    const nf = await fetch(url + "/v1/models");
    assert.equal(nf.status, 404);
    assert.equal((await nf.json()).type, "error");
  });
  await withServer("error", async ({ url }) => {
    const r = await post(url, { stream: true, messages: [FIRST], tools: TOOLS });
    assert.equal(r.status, 500);
    assert.equal(JSON.parse(r.text).error.type, "api_error");
    assert.equal((await post(url, { messages: [{ role: "user", content: "x" }] })).status, 500);
  });
});

test("script files: missing tools, parallel calls, custom extract, fail_stream", async () => {
  const sb = makeSandbox("herd-script-");
  try {
    const script = sb.file("s.json");
    fs.writeFileSync(script, JSON.stringify({
      extract: { ticket: "Ticket: (\\w+)" },
      steps: [
        { calls: [{ tool: "update_agent_progress", input: { n: "{{ticket}}" } },
                  { tool: "report_agent_finding", input: { a: "{{agent_id}}", missing: "{{nope}}" } }],
          text: "step {{step}}" },
        { tool: "no_such_tool", input: {} },
      ],
    }));
    await withServer(script, async ({ url }) => {
      const first = { role: "user", content: "Agent ID: z1\nTicket: ABC" };
      const m1 = JSON.parse((await post(url, { messages: [first], tools: TOOLS })).text);
      assert.deepEqual(m1.content.map(b => b.type), ["text", "tool_use", "tool_use"]);
      assert.equal(m1.content[0].text, "step 0");
      assert.deepEqual(m1.content[1].input, { n: "ABC" });
      assert.deepEqual(m1.content[2].input, { a: "z1", missing: "{{nope}}" });
      const results = { role: "user", content: m1.content.slice(1).map(b => ({ type: "tool_result", tool_use_id: b.id, content: "ok" })) };
      const m2 = JSON.parse((await post(url, { messages: [first, { role: "assistant", content: m1.content }, results], tools: TOOLS })).text);
      assert.equal(m2.stop_reason, "end_turn");
      assert.match(m2.content[0].text, /no_such_tool not offered/);
    });

    fs.writeFileSync(script, JSON.stringify({ steps: [{ text: "hi", fail_stream: { status: 529, type: "overloaded_error" } }] }));
    await withServer(script, async ({ url }) => {
      assert.equal((await post(url, { stream: true, messages: [FIRST], tools: TOOLS })).status, 529);
      const m = JSON.parse((await post(url, { messages: [FIRST], tools: TOOLS })).text);
      assert.equal(m.content[0].text, "hi");
    });
  } finally { sb.cleanup(); }
});

// Claude Code 2.1 defers MCP tools: the request offers ToolSearch and names the deferred tools in a
// "system" message of the conversation (this shape is what 2.1.332 sent, trimmed); after the
// ToolSearch result the tool is in the next request's tools.
test("deferred tools are loaded with ToolSearch first; its results do not advance the script", () =>
  withServer("progress", async ({ url }, sb) => {
    const offered = ["Bash", "Read", "ToolSearch"].map(name => ({ name, description: name, input_schema: { type: "object" } }));
    const first = { role: "user", content: [
      { type: "text", text: "<system-reminder>\nAttribution for git commits ...\n</system-reminder>\n" },
      { type: "text", text: "Task ID: TASK-1\nAgent ID: agent-9\ngo" }] };
    const system = { role: "system", content: [{ type: "text", text:
      "# Environment\n - Primary working directory: /tmp/p\n\nThe following deferred tools are now available via " +
      "ToolSearch. Their schemas are NOT loaded — calling them directly will fail with InputValidationError. Use " +
      "ToolSearch with query \"select:<name>[,<name>...]\" to load tool schemas before calling them:\nCronCreate\n" +
      "mcp__herd__report_agent_finding\nmcp__herd__update_agent_progress\n\nAvailable agent types ..." }] };
    const [search] = assemble(parseSse((await post(url, { stream: true, messages: [first, system], tools: offered })).text));
    assert.equal(search.name, "ToolSearch");
    assert.deepEqual(search.input, { query: "select:mcp__herd__update_agent_progress", max_results: 1 });

    const loaded = [...offered, TOOLS[1]];
    const convo = [first, system, { role: "assistant", content: [{ type: "tool_use", ...search }] },
                   { role: "user", content: [{ type: "tool_result", tool_use_id: search.id,
                                               content: [{ type: "tool_reference", tool_name: TOOLS[1].name }] },
                                             { type: "text", text: "Tool loaded." }] }];
    const [call] = assemble(parseSse((await post(url, { stream: true, messages: convo, tools: loaded })).text));
    assert.equal(call.name, "mcp__herd__update_agent_progress");
    assert.equal(call.input.progress, 10, "still step 0");

    // A tool that stays missing after its ToolSearch is not searched for again.
    const [stuck] = assemble(parseSse((await post(url, { stream: true, messages: convo, tools: offered })).text));
    assert.equal(stuck.type, "text");
    assert.match(stuck.text, /Cannot continue: tool\(s\) update_agent_progress not offered/);

    const log = readJsonLines(sb.file("model.log")).filter(e => e.role === "agent");
    assert.deepEqual(log.map(e => [e.step, e.tool_search ?? null]),
                     [[0, ["mcp__herd__update_agent_progress"]], [0, null], [0, null]]);
    assert.equal(log[0].prompt_head, "Task ID: TASK-1\nAgent ID: agent-9\ngo", "the system-reminder is not the prompt");
  }));

test("HEAD /api/hello answers 200; --dump writes each request", async () => {
  const sb = makeSandbox("herd-model-");
  const server = await startModelServer("text", { logPath: sb.file("model.log"), dumpDir: sb.file("dump") });
  try {
    const hello = await fetch(`${server.url}/api/hello`, { method: "HEAD", headers: { "user-agent": "Bun/1.4.6" } });
    assert.equal(hello.status, 200);
    await post(server.url, { model: "m", messages: [FIRST] });
    const log = readJsonLines(sb.file("model.log")).filter(e => e.method);
    assert.deepEqual(log.map(e => [e.method, e.path, e.status ?? null]),
                     [["HEAD", "/api/hello", 200], ["POST", "/v1/messages?beta=true", null]]);
    assert.equal(log[0].user_agent, "Bun/1.4.6");
    const dumped = fs.readdirSync(sb.file("dump")).sort();
    assert.deepEqual(dumped, ["0001.json", "0002.json"]);
    const second = JSON.parse(fs.readFileSync(sb.file("dump/0002.json"), "utf8"));
    assert.equal(second.url, "/v1/messages?beta=true");
    assert.equal(JSON.parse(second.body).messages[0].content[0].text, FIRST.content[0].text);
  } finally {
    await server.stop();
    sb.cleanup();
  }
});
