// Raw stdio tests of `herd serve`: EVERY stdout line must parse as one JSON-RPC 2.0 message
// (RawSession records any that do not in .badLines). Framing, malformed input, error codes,
// version negotiation, batches, EOF draining, cancellation, exact id echo, stdout hygiene while
// agents start and die, SIGPIPE.
// Run: HERD_BINARY=$PWD/build/herd node --test tests/interop/mcp_raw.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  PROTOCOL_VERSIONS, TOOL_NAMES, makeWorkspace, RawSession, sleeperCommand, waitForLog, waitUntil, isAlive,
  cleanupAllWorkspaces, withTimeout,
} from "./lib/herd_client.mjs";

const T = { timeout: 240000 };
after(cleanupAllWorkspaces);

// A workspace and a raw session; asserts at the end that every stdout line parsed and that the
// server exited 0 on stdin EOF.
async function withRaw(opts, fn) {
  if (typeof opts === "function") [opts, fn] = [{}, opts];
  const w = makeWorkspace("herd-raw-");
  const s = new RawSession(w, opts);
  try {
    const out = await fn({ w, s });
    if (!s.proc._herdClosed) {
      const exit = await s.close();
      assert.deepEqual(exit, { code: 0, signal: null }, `herd serve exit; stderr:\n${s.stderr.slice(-2000)}`);
    }
    assert.deepEqual(s.badLines, [], "every stdout line is a JSON-RPC message");
    return out;
  } finally {
    await s.kill();
    await w.cleanup();
  }
}

function assertError(reply, code, id) {
  assert.ok(reply.error, `an error reply: ${JSON.stringify(reply)}`);
  assert.equal(reply.error.code, code, JSON.stringify(reply));
  assert.equal(typeof reply.error.message, "string");
  assert.equal("result" in reply, false, "exactly one of result/error");
  if (id !== undefined) assert.deepEqual(reply.id, id);
}

// Sends `line` (raw), then a ping; returns the messages that arrived in between plus the ping's
// reply. Inline-handled lines are answered in order, so this is deterministic.
async function sendThenPing(s, line, pingId) {
  const from = s.messages.length;
  if (Buffer.isBuffer(line) || typeof line === "string") s.send(line);
  else s.send(JSON.stringify(line));
  await s.request("ping", undefined, { id: pingId, timeoutMs: 120000 });
  return s.messages.slice(from);
}

async function deployVia(s, taskId, command, type = "worker") {
  return s.tool("deploy_headless_agent", { task_id: taskId, agent_type: type, prompt: "p", backend: "command", command });
}

// -----------------------------------------------------------------------------------------------

test("lifecycle: ping before initialize, -32600 for other requests, -32601 for unknown methods, version negotiation", T, () =>
  withRaw(async ({ s }) => {
    assert.deepEqual(await s.request("ping", undefined, { id: "early-ping" }), { jsonrpc: "2.0", id: "early-ping", result: {} });
    assertError(await s.request("tools/list", {}, { id: 1 }), -32600, 1);
    assertError(await s.request("tools/call", { name: "create_real_task", arguments: { description: "too early" } }, { id: 2 }), -32600, 2);
    assertError(await s.request("resources/read", { uri: "tasks://list" }, { id: 3 }), -32600, 3);
    assertError(await s.request("server/discover", {}, { id: 4 }), -32601, 4);
    assertError(await s.request("no/such/method", {}, { id: 5 }), -32601, 5);
    // initialize without a protocolVersion may be refused; the session is still uninitialized.
    const noVersion = await s.request("initialize", { capabilities: {}, clientInfo: { name: "x", version: "0" } }, { id: 6 });
    assertError(noVersion, -32602, 6);
    // A version herd does not speak: it answers with one it does (the latest).
    const init = await s.request("initialize", {
      protocolVersion: "2099-01-01", capabilities: {}, clientInfo: { name: "raw", version: "0" } }, { id: 7 });
    assert.ok(PROTOCOL_VERSIONS.includes(init.result.protocolVersion), init.result.protocolVersion);
    assert.equal(init.result.protocolVersion, PROTOCOL_VERSIONS[0]);
    assert.equal(init.result.serverInfo.name, "herd");
    s.notify("notifications/initialized");
    // A second initialize is an invalid request.
    assertError(await s.request("initialize", {
      protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } }, { id: 8 }), -32600, 8);
    assertError(await s.request("server/discover", {}, { id: 9 }), -32601, 9);
    // Subscriptions exist for a task's status and timeline, not for the task list.
    assertError(await s.request("resources/subscribe", { uri: "tasks://list" }, { id: 10 }), -32602, 10);
    s.notify("notifications/some_unknown_notification", { x: 1 });
    s.send({ jsonrpc: "2.0", id: "from-client", result: {} });   // a response to nothing: ignored
    s.send({ jsonrpc: "2.0", id: "from-client-2", error: { code: -1, message: "x" } });
    s.notify("notifications/cancelled", { requestId: "never-sent" });
    const list = await s.request("tools/list", {}, { id: 11 });
    assert.equal(list.result.tools.length, TOOL_NAMES.length);
    // Exactly one reply per request, none for the notifications.
    const ids = s.messages.map(m => m.id);
    assert.deepEqual(ids, ["early-ping", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  }));

test("negotiation echoes each supported version", T, async () => {
  for (const version of PROTOCOL_VERSIONS) {
    await withRaw(async ({ s }) => {
      const result = await s.initialize(version);
      assert.equal(result.protocolVersion, version);
      assert.deepEqual(await s.request("ping", undefined, { id: "p" }), { jsonrpc: "2.0", id: "p", result: {} });
    });
  }
});

test("malformed input: -32700 with id null for invalid JSON, invalid UTF-8, huge lines; the server keeps serving", T, () =>
  withRaw(async ({ s }) => {
    await s.initialize();
    const cases = [
      ["invalid JSON", "{not json"],
      ["truncated JSON", '{"jsonrpc":"2.0","id":1,"method":"ping"'],
      ["a lone 0xff byte", Buffer.from([0xff])],
      ["invalid UTF-8 inside a string", Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":"u","method":"ping","params":{"x":"'),
                                                       Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}}')])],
      ["an overlong UTF-8 encoding", Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":"o","method":"ping","params":{"x":"'),
                                                    Buffer.from([0xc0, 0xaf]), Buffer.from('"}}')])],
    ];
    let n = 0;
    for (const [what, line] of cases) {
      const got = await sendThenPing(s, line, `after-${++n}`);
      assert.equal(got.length, 2, `${what}: one error then the ping reply: ${JSON.stringify(got)}`);
      assertError(got[0], -32700, null);
      assert.deepEqual(got[1], { jsonrpc: "2.0", id: `after-${n}`, result: {} }, what);
    }
    // Well-formed JSON that is not a valid request: -32600, never -32700.
    for (const [what, line] of [["a number", "42"], ["a string", '"ping"'], ["null", "null"],
                                ["jsonrpc 1.0", '{"jsonrpc":"1.0","id":"v1","method":"ping"}'],
                                ["a null id", '{"jsonrpc":"2.0","id":null,"method":"ping"}'],
                                ["a method that is not a string", '{"jsonrpc":"2.0","id":"m","method":7}']]) {
      const got = await sendThenPing(s, line, `after-${++n}`);
      assert.equal(got.length, 2, `${what}: ${JSON.stringify(got)}`);
      assertError(got[0], -32600);
    }
    // Blank lines and CRLF framing.
    let got = await sendThenPing(s, "   ", `after-${++n}`);
    assert.equal(got.length, 1, "a blank line gets no reply");
    got = await sendThenPing(s, '{"jsonrpc":"2.0","id":"crlf","method":"ping"}\r', `after-${++n}`);
    assert.deepEqual(got[0], { jsonrpc: "2.0", id: "crlf", result: {} }, "a trailing CR is stripped");

    // A line over 16 MiB: one -32700, the rest of the line is discarded, the next line works.
    const huge = Buffer.alloc(17 * 1024 * 1024 + 123, "a");
    const hugeLine = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":"huge","method":"tools/call","params":{"name":"create_real_task","arguments":{"description":"'),
                                    huge, Buffer.from('"}}}')]);
    got = await sendThenPing(s, hugeLine, "after-huge");
    assert.equal(got.length, 2, `huge line: ${JSON.stringify(got).slice(0, 500)}`);
    assertError(got[0], -32700, null);
    assert.deepEqual(s.responsesFor("huge"), [], "the huge request is not executed");
    // Still fully working.
    const task = await s.tool("create_real_task", { description: "created after all that garbage" });
    assert.match(task.task_id, /^TASK-/);
  }));

test("numbers out of range in arguments: isError tool results (progress 1e15), -32602 with the id for 1e400", T, () =>
  withRaw(async ({ s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "numbers out of range" });
    const agent = await deployVia(s, task.task_id, sleeperCommand());
    for (const progress of [1e15, -1, 101, 50.5, 1.8446744073709552e19, "50"]) {
      const r = await s.callTool("update_agent_progress", { task_id: task.task_id, agent_id: agent.agent_id,
                                                            status: "working", message: "m", progress });
      assert.equal(r.isError, true, `progress ${progress}: ${JSON.stringify(r)}`);
      assert.match(r.structuredContent.error, /progress/);
    }
    // Typed by hand so the numbers reach herd exactly as written.
    const send = (id, number) => s.send(`{"jsonrpc":"2.0","id":"${id}","method":"tools/call","params":{"name":"update_agent_progress",` +
      `"arguments":{"task_id":"${task.task_id}","agent_id":"${agent.agent_id}","status":"working","message":"m","progress":${number}}}}`);
    let reply = s.response("n1");
    send("n1", "1000000000000000");
    assert.equal((await reply).result.isError, true);
    reply = s.response("n2");
    send("n2", "18446744073709551616");   // one past uint64
    assert.equal((await reply).result.isError, true);
    reply = s.response("n3");
    send("n3", "99999999999999999999999999999999");
    assert.equal((await reply).result.isError, true);
    reply = s.response("n4");
    send("n4", "1e400");
    assertError(await reply, -32602, "n4");
    for (const tail of [1e300, -5, 1e15]) {
      const r = await s.callTool("get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, tail });
      assert.equal(r.isError, true, `tail ${tail}`);
    }
    const r = await s.callTool("kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 1e308 });
    assert.equal(r.isError, true, "grace_seconds out of range");
    // The valid call after all of that works and was recorded once.
    const ok = await s.tool("update_agent_progress", { task_id: task.task_id, agent_id: agent.agent_id,
                                                       status: "working", message: "fine", progress: 100 });
    assert.equal(ok.own_update.progress, 100);
    await s.tool("kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 0 });
  }));

test("1e400 in a tool's arguments: -32602 invalid params with that request's id, wherever the id is", T, () =>
  withRaw(async ({ s }) => {
    await s.initialize();
    const got = await sendThenPing(s,
      '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_agent_output","arguments":{"task_id":"x","tail":1e400}}}', "after-7");
    assert.equal(got.length, 2, JSON.stringify(got));
    assertError(got[0], -32602, 7);
    assert.match(got[0].error.message, /out of the range of a double.*1e400/);
    // The id after the number, a string id, a negative overflow, an overflow deeper inside.
    for (const [line, id] of [
      ['{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x","arguments":{"tail":-1e400}},"id":"late"}', "late"],
      ['{"jsonrpc":"2.0","id":"s","method":"ping","params":{"x":[1,{"y":1e999}]}}', "s"],
    ]) {
      const reply = await sendThenPing(s, line, `after-${id}`);
      assert.equal(reply.length, 2, JSON.stringify(reply));
      assertError(reply[0], -32602, id);
    }
    // An id that is itself out of range cannot be echoed: id null.
    const bad = await sendThenPing(s, '{"jsonrpc":"2.0","id":1e400,"method":"ping"}', "after-bad-id");
    assertError(bad[0], -32602, null);
    const list = await s.request("tools/list", {}, { id: "list" });
    assert.equal(list.result.tools.length, TOOL_NAMES.length);
  }));

test("deep nesting: a request nested 200,000 levels deep gets -32600 with its id and the server keeps serving", T, () =>
  withRaw(async ({ s }) => {
    await s.initialize();
    const depth = 200000;
    const arrays = "[".repeat(depth) + "]".repeat(depth);
    const objects = '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
    const cases = [
      ["deep-arrays", `{"jsonrpc":"2.0","id":"deep-arrays","method":"tools/call","params":{"name":"create_real_task","arguments":{"description":"d","x":${arrays}}}}`],
      ["deep-objects", `{"jsonrpc":"2.0","id":"deep-objects","method":"ping","params":${objects}}`],
      [4711, `{"jsonrpc":"2.0","method":"ping","params":{"p":${arrays}},"id":4711}`],
      [null, `[${arrays}]`],                         // a batch: no top-level id to answer with
      [null, "[".repeat(depth)],                     // unterminated as well
    ];
    for (const [id, line] of cases) {
      const got = await sendThenPing(s, line, `after-${id}`);
      assert.equal(got.length, 2, `${id}: one error, then the ping's reply: ${JSON.stringify(got).slice(0, 500)}`);
      assertError(got[0], -32600, id);
      assert.match(got[0].error.message, /deeper than 64 levels/);
    }
    // Nesting within the limit is an ordinary request.
    const shallow = "[".repeat(50) + "]".repeat(50);
    assert.deepEqual(await s.request("ping", { x: JSON.parse(shallow) }, { id: "shallow" }), { jsonrpc: "2.0", id: "shallow", result: {} });
    const list = await s.request("tools/list", {}, { id: "list-after-deep" });
    assert.equal(list.result.tools.length, TOOL_NAMES.length);
    const task = await s.tool("create_real_task", { description: "created after the deep requests" });
    assert.match(task.task_id, /^TASK-/);
  }));

test("get_agent_output filter: backtracking patterns and 100 KB lines answer, long or unsupported patterns get a clear error", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "regular expressions over long lines" });
    // Lines that make a backtracking engine take exponential time or recurse once per character.
    const script = `process.stdout.write(["a".repeat(30) + "b", "a".repeat(100000) + "b",
      "x".repeat(50000) + " error: something failed " + "y".repeat(50000), "filter-output-done"].join("\\n") + "\\n")`;
    const agent = await deployVia(s, task.task_id, [process.execPath, "-e", script], "printer");
    await waitForLog(w, task.task_id, agent.agent_id, "filter-output-done");
    const output = (filter, extra = {}) =>
      s.callTool("get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, filter, max_bytes: 4194304, ...extra },
                 { timeoutMs: 120000 });

    let r = await output(".*error.*");
    assert.notEqual(r.isError, true, JSON.stringify(r).slice(0, 500));
    assert.equal(r.structuredContent.lines, 1);
    assert.match(r.structuredContent.output, /^x+ error: something failed y+\n$/);
    for (const filter of ["(a+)+$", "^(a|aa)+$", "(x+x+)+z"]) {
      r = await output(filter);
      assert.notEqual(r.isError, true, `${filter}: ${JSON.stringify(r).slice(0, 500)}`);
      assert.equal(r.structuredContent.lines, 0, filter);
    }
    r = await output("^(a+)+b$");
    assert.equal(r.structuredContent.lines, 2);

    r = await output("a".repeat(1001));
    assert.equal(r.isError, true);
    assert.match(r.structuredContent.error, /1001 bytes.*limit is 1000.*shorter/);
    assert.equal((await output("a".repeat(1000))).isError, false, "1000 bytes is within the limit");
    for (const filter of ["(a)\\1", "(?=a)b", "(?<!x)error"]) {
      r = await output(filter);
      assert.equal(r.isError, true, filter);
      assert.match(r.structuredContent.error, /not a valid RE2 regular expression.*backreferences.*lookaround/, filter);
    }
    r = await output("((((a{100}){100}){100}){100})");
    assert.equal(r.isError, true, "a pattern too large to compile is refused");
    // Still serving.
    assert.deepEqual(await s.request("ping", undefined, { id: "after-filters" }), { jsonrpc: "2.0", id: "after-filters", result: {} });
    const list = await s.request("tools/list", {}, { id: "list-after-filters" });
    const schema = list.result.tools.find(t => t.name === "get_agent_output").inputSchema.properties.filter;
    assert.match(schema.description, /RE2/);
    assert.equal(schema.maxLength, 1000);
  }));

test("get_agent_output over an agent's line nested 200,000 levels deep: text, jsonl and parsed all answer", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "an agent that prints deeply nested JSON" });
    const script = `const d = "[".repeat(200000) + "]".repeat(200000);
      process.stdout.write('{"type":"assistant","message":{"content":' + d + '}}\\n{"type":"system","subtype":"init"}\\ndeep-output-done\\n')`;
    const agent = await deployVia(s, task.task_id, [process.execPath, "-e", script], "deep");
    await waitForLog(w, task.task_id, agent.agent_id, "deep-output-done");
    for (const format of ["text", "jsonl", "parsed"]) {
      const r = await s.callTool("get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, format, max_bytes: 4194304 },
                                 { id: `deep-${format}` });
      assert.notEqual(r.isError, true, `${format}: ${JSON.stringify(r).slice(0, 500)}`);
      const output = r.structuredContent.output;
      assert.equal(r.structuredContent.lines, 3, format);
      if (format === "jsonl") {
        assert.equal(typeof output[0], "string", "a line too deep to handle as JSON comes back as its text");
        assert.equal(output[0].length, 400000 + '{"type":"assistant","message":{"content":}}'.length);
        assert.deepEqual(output[1], { type: "system", subtype: "init" });
      } else {
        assert.ok(output.includes("[".repeat(200000)), format);
        if (format === "parsed") assert.match(output, /^system: init$/m);
      }
    }
    assert.deepEqual(await s.request("ping", undefined, { id: "after-deep-output" }), { jsonrpc: "2.0", id: "after-deep-output", result: {} });
  }));

test("batches: accepted under 2025-03-26 (array reply, nothing for notifications)", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize("2025-03-26");
    const reply = s.waitFor(m => Array.isArray(m), { what: "the batch reply" });
    s.send([
      { jsonrpc: "2.0", id: "b1", method: "ping" },
      { jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: "x", progress: 1 } },
      { jsonrpc: "2.0", id: "b2", method: "tools/list" },
      { jsonrpc: "2.0", id: "b3", method: "tools/call", params: { name: "create_real_task", arguments: { description: "created inside a batch" } } },
      { jsonrpc: "2.0", id: "b4", method: "no/such/method" },
      42,
    ]);
    const batch = await reply;
    assert.equal(batch.length, 5, JSON.stringify(batch).slice(0, 1000));
    const byId = Object.fromEntries(batch.filter(m => m.id !== null).map(m => [m.id, m]));
    assert.deepEqual(Object.keys(byId).sort(), ["b1", "b2", "b3", "b4"]);
    assert.deepEqual(byId.b1.result, {});
    assert.equal(byId.b2.result.tools.length, TOOL_NAMES.length);
    assert.equal(byId.b3.result.isError, false);
    const created = byId.b3.result.structuredContent;
    assert.ok(fs.existsSync(path.join(w.ws, created.task_id)));
    assertError(byId.b4, -32601);
    assertError(batch.find(m => m.id === null), -32600);
    // Only notifications: no reply at all. An empty batch: one -32600.
    let got = await sendThenPing(s, JSON.stringify([{ jsonrpc: "2.0", method: "notifications/initialized" }]), "p1");
    assert.equal(got.length, 1, `nothing for a batch of notifications: ${JSON.stringify(got)}`);
    got = await sendThenPing(s, "[]", "p2");
    assert.equal(got.length, 2);
    assert.equal(Array.isArray(got[0]), false, "an empty batch gets a single error object");
    assertError(got[0], -32600, null);
  }));

test("batches: a single -32600 under every other version, and nothing in it runs", T, async () => {
  for (const version of ["2025-11-25", "2025-06-18", "2024-11-05"]) {
    await withRaw(async ({ w, s }) => {
      await s.initialize(version);
      const got = await sendThenPing(s, JSON.stringify([
        { jsonrpc: "2.0", id: "x1", method: "ping" },
        { jsonrpc: "2.0", id: "x2", method: "tools/call", params: { name: "create_real_task", arguments: { description: "must not be created" } } },
      ]), "p");
      assert.equal(got.length, 2, `${version}: ${JSON.stringify(got)}`);
      assert.equal(Array.isArray(got[0]), false, `${version}: not an array`);
      assertError(got[0], -32600, null);
      assert.deepEqual(s.responsesFor("x1"), []);
      const tasks = fs.readdirSync(w.ws).filter(n => n.startsWith("TASK-"));
      assert.deepEqual(tasks, [], `${version}: the batch did not run`);
    });
  }
});

test("ids: strings and integers are echoed exactly; other id types get -32600", T, () =>
  withRaw(async ({ s }) => {
    await s.initialize();
    const ids = ["abc", "", "0", "1", "01", "1.0", "null", "ünïcødé ✓ 🐑", 'with "quotes" and \\ backslash', "x".repeat(1000),
                 0, 1, -7, 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1)];
    for (const id of ids) {
      const reply = await s.request("ping", undefined, { id });
      assert.deepEqual(reply, { jsonrpc: "2.0", id, result: {} }, `id ${JSON.stringify(id)}`);
    }
    // Integers beyond 2^53 (int64 and uint64 extremes): compare the raw text, since JavaScript
    // numbers cannot hold them.
    for (const text of ["9223372036854775807", "-9223372036854775808", "18446744073709551615", "12345678901234567890"]) {
      const before = s.lines.length;
      s.send(`{"jsonrpc":"2.0","id":${text},"method":"ping"}`);
      await s.request("ping", undefined, { id: `after-${text}` });
      const line = s.lines.slice(before).find(l => l.includes(`"id":${text}`) || l.includes(`"id": ${text}`));
      assert.ok(line, `id ${text} echoed verbatim: ${s.lines.slice(before).join("\n")}`);
    }
    // Tool call replies carry the same id, from worker threads too.
    const r = await s.request("tools/call", { name: "create_real_task", arguments: { description: "id echo check" } }, { id: "tool-id-✓" });
    assert.equal(r.id, "tool-id-✓");
    for (const [what, idText] of [["a float", "1.5"], ["a boolean", "true"], ["an object", '{"a":1}'], ["an array", "[1]"]]) {
      const got = await sendThenPing(s, `{"jsonrpc":"2.0","id":${idText},"method":"ping"}`, `after-${what}`);
      assert.equal(got.length, 2, what);
      assertError(got[0], -32600);
    }
  }));

test("stdin EOF right after several tools/call: every id is answered before exit", T, async () => {
  const w = makeWorkspace("herd-eof-");
  try {
    const created = await w.herd(["task", "create", "a task for the EOF test", "--max-concurrent", "10"]);
    assert.equal(created.code, 0, created.stderr);
    const taskId = created.json.task_id;
    // A TERM-ignoring agent makes one of the calls slow (a kill with a grace period).
    const stubborn = await w.herd(["deploy", taskId, "--type", "stubborn", "--backend", "command", "--prompt", "p",
                                   "--", ...sleeperCommand({ ignoreTerm: true, marker: "stubborn-ready" })]);
    assert.equal(stubborn.code, 0, stubborn.stderr);
    await waitForLog(w, taskId, stubborn.json.agent_id, "stubborn-ready");

    const s = new RawSession(w);
    const lines = [
      { jsonrpc: "2.0", id: "init", method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "eof", version: "0" } } },
      { jsonrpc: "2.0", method: "notifications/initialized" },
    ];
    const expected = [];
    const call = (id, name, args, meta) => {
      lines.push({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });
      expected.push(id);
    };
    call("kill-slow", "kill_real_agent", { task_id: taskId, agent_id: stubborn.json.agent_id, grace_seconds: 2 }, { progressToken: "pk" });
    for (let i = 0; i < 4; i++) call(`create-${i}`, "create_real_task", { description: `created right before EOF ${i}` });
    for (let i = 0; i < 4; i++)
      call(i, "deploy_headless_agent", { task_id: taskId, agent_type: `eof${i}`, prompt: "p", backend: "command", command: sleeperCommand() },
           { progressToken: `d${i}` });
    for (let i = 0; i < 3; i++) call(`status-${i}`, "get_real_task_status", { task_id: taskId });
    call("bad-tool", "create_real_task", {});
    lines.push({ jsonrpc: "2.0", id: "last-ping", method: "ping" });
    expected.push("last-ping");
    // Everything in one write, the last line without its newline, then EOF at once.
    s.end(lines.map(l => JSON.stringify(l)).join("\n"));
    const exit = await withTimeout(s.exit, 120000, "herd serve to exit after EOF");
    assert.deepEqual(exit, { code: 0, signal: null }, s.stderr);
    assert.deepEqual(s.badLines, []);
    for (const id of expected) {
      const replies = s.responsesFor(id);
      assert.equal(replies.length, 1, `exactly one reply for ${JSON.stringify(id)}; got ${replies.length}`);
    }
    assert.equal(s.responsesFor("init").length, 1);
    const reply = id => s.responsesFor(id)[0].result;
    assert.equal(reply("kill-slow").structuredContent.status, "terminated");
    assert.equal(isAlive(stubborn.json.pid), false);
    for (let i = 0; i < 4; i++) {
      assert.equal(reply(`create-${i}`).isError, false);
      assert.equal(reply(i).isError, false, JSON.stringify(reply(i)));
      assert.ok(isAlive(reply(i).structuredContent.pid), "deployed agents outlive the server");
    }
    assert.equal(reply("bad-tool").isError, true);
    // No progress after a request's response.
    for (const [token, id] of [["pk", "kill-slow"], ["d0", 0], ["d1", 1], ["d2", 2], ["d3", 3]]) {
      const responseAt = s.messages.findIndex(m => JSON.stringify(m.id) === JSON.stringify(id) && !("method" in m));
      const late = s.messages.slice(responseAt).filter(m => m.method === "notifications/progress" && m.params.progressToken === token);
      assert.deepEqual(late, [], `no progress for ${token} after its response`);
    }
  } finally {
    await w.cleanup();
  }
});

test("notifications/cancelled: no response for the cancelled ids, the server keeps serving", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "cancellation over raw stdio" });
    const a = await deployVia(s, task.task_id, sleeperCommand({ ignoreTerm: true, marker: "a-ready" }), "a");
    const b = await deployVia(s, task.task_id, sleeperCommand({ ignoreTerm: true, marker: "b-ready" }), "b");
    await waitForLog(w, task.task_id, a.agent_id, "a-ready");
    await waitForLog(w, task.task_id, b.agent_id, "b-ready");
    const stopping = token => s.waitFor(m => m.method === "notifications/progress" && m.params.progressToken === token &&
                                             /stopping/.test(m.params.message ?? ""), { what: `"stopping" progress for ${token}` });
    // A string id and an integer id; both kills wait out a 3 s grace period.
    s.send({ jsonrpc: "2.0", id: "cancel-me", method: "tools/call",
             params: { name: "kill_real_agent", arguments: { task_id: task.task_id, agent_id: a.agent_id, grace_seconds: 3 }, _meta: { progressToken: "tok-a" } } });
    s.send({ jsonrpc: "2.0", id: 4242, method: "tools/call",
             params: { name: "kill_real_agent", arguments: { task_id: task.task_id, agent_id: b.agent_id, grace_seconds: 3 }, _meta: { progressToken: 77 } } });
    await stopping("tok-a");
    await stopping(77);
    s.notify("notifications/cancelled", { requestId: "cancel-me", reason: "changed my mind" });
    s.notify("notifications/cancelled", { requestId: 4242 });
    s.notify("notifications/cancelled", { requestId: "no-such-request" });
    s.notify("notifications/cancelled", {});
    // Still serving, while both kills run.
    assert.deepEqual((await s.request("ping", undefined, { id: "still-here" })).result, {});
    const status = await s.tool("get_real_task_status", { task_id: task.task_id });
    assert.equal(status.task_id, task.task_id);
    // Drain: EOF makes herd finish the cancelled kills; it must still not answer them.
    const exit = await s.close();
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.deepEqual(s.responsesFor("cancel-me"), [], "no response for the cancelled string id");
    assert.deepEqual(s.responsesFor(4242), [], "no response for the cancelled integer id");
    // The kills themselves completed.
    for (const x of [a, b]) {
      assert.equal(isAlive(x.pid), false);
      assert.equal(w.registry(task.task_id).agents.find(e => e.id === x.agent_id).status, "terminated");
    }
  }));

test("stdout stays clean while noisy agents are started and killed", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "noisy agents everywhere" });
    const noisy = ["sh", "-c",
      'i=0; while [ $i -lt 3000 ]; do echo "stdout noise $i {not json"; echo "stderr noise $i" >&2; i=$((i+1)); done; ' +
      'printf "no newline at the end"; echo; echo noisy-done; exec sleep 600'];
    // Six deploys in flight at once, with status reads between them.
    const deploys = [];
    for (let i = 0; i < 6; i++) {
      deploys.push(deployVia(s, task.task_id, noisy, `noisy${i}`));
      deploys.push(s.tool("get_real_task_status", { task_id: task.task_id }).then(() => null));
    }
    const agents = (await Promise.all(deploys)).filter(Boolean);
    assert.equal(agents.length, 6);
    // Also an agent that dies at once, loudly.
    const crasher = await deployVia(s, task.task_id, ["sh", "-c", "echo crash-out; echo crash-err >&2; exit 3"], "crasher");
    for (const a of agents) await waitForLog(w, task.task_id, a.agent_id, "noisy-done", { timeoutMs: 60000 });
    await waitUntil(async () => {
      const st = await s.tool("get_real_task_status", { task_id: task.task_id });
      return st.agents.agents_list.find(x => x.id === crasher.agent_id).status === "error";
    }, { what: "the crasher to be recorded as error" });
    // All output went to the agents' logs.
    const log = fs.readFileSync(path.join(w.ws, task.task_id, "logs", `${agents[0].agent_id}_stream.jsonl`), "utf8");
    assert.match(log, /stdout noise 2999/);
    assert.match(log, /stderr noise 2999/);
    const tail = await s.tool("get_agent_output", { task_id: task.task_id, agent_id: agents[0].agent_id, tail: 3 }, { id: "read-output" });
    assert.match(tail.output, /noisy-done/);
    // Kill them all at once.
    const kills = await Promise.all(agents.map(a =>
      s.tool("kill_real_agent", { task_id: task.task_id, agent_id: a.agent_id, grace_seconds: 2 }, { meta: { progressToken: `k-${a.agent_id}` } })));
    for (const k of kills) assert.equal(k.status, "terminated");
    const st = await s.tool("get_real_task_status", { task_id: task.task_id });
    assert.equal(st.agents.active, 0);
    // Every stdout line parsed (checked by withRaw), and none of it is agent output.
    assert.deepEqual(s.badLines, []);
    // Agent output appears on herd's stdout only inside the get_agent_output reply that asked for it.
    const mentions = s.lines.filter(l => /stdout noise|stderr noise|crash-out|crash-err/.test(l)).map(l => JSON.parse(l).id);
    assert.deepEqual(mentions, ["read-output"], "no agent output on herd's stdout");
    assert.ok(!/stdout noise|stderr noise/.test(s.stderr), "no agent output on herd's stderr either");
  }));

test("a tool result containing invalid UTF-8 (agent output) still goes out as valid UTF-8 JSON", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "agents that print bytes" });
    const agent = await deployVia(s, task.task_id, ["sh", "-c",
      "printf 'before \\377\\376 bytes \\300\\257 after\\n'; printf '{\"type\":\"x\",\"v\":\"\\377\"}\\n'; echo bytes-done; exec sleep 600"], "bytes");
    await waitForLog(w, task.task_id, agent.agent_id, "bytes-done");
    for (const format of ["text", "jsonl", "parsed"]) {
      const before = s.lines.length;
      const r = await s.callTool("get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, format }, { id: `out-${format}` });
      assert.notEqual(r.isError, true, `${format}: ${JSON.stringify(r)}`);
      const text = JSON.stringify(r.structuredContent.output);
      assert.match(text, /before .* after/, format);
      assert.match(text, /\uFFFD|\\ufffd/i, `${format}: invalid bytes are replaced`);
      assert.ok(s.lines.length > before);
    }
    const filtered = await s.tool("get_agent_output", { task_id: task.task_id, agent_id: agent.agent_id, filter: "bytes" });
    assert.match(filtered.output, /bytes-done/);
    assert.deepEqual(s.badLines, [], "every line is valid UTF-8 JSON");
    await s.tool("kill_real_agent", { task_id: task.task_id, agent_id: agent.agent_id, grace_seconds: 0 });
  }));

test("SIGPIPE: the client closes its end of stdout; herd exits cleanly on EOF without a crash", T, () =>
  withRaw(async ({ w, s }) => {
    await s.initialize();
    const task = await s.tool("create_real_task", { description: "the reader goes away" });
    s.proc.stdout.destroy();   // the read end of herd's stdout is closed: writes now fail with EPIPE
    for (let i = 0; i < 50; i++) s.send({ jsonrpc: "2.0", id: i, method: "ping" });
    s.send({ jsonrpc: "2.0", id: "t", method: "tools/call", params: { name: "get_real_task_status", arguments: { task_id: task.task_id } } });
    s.send({ jsonrpc: "2.0", id: "d", method: "tools/call", params: { name: "deploy_headless_agent", arguments: {
      task_id: task.task_id, agent_type: "orphan", prompt: "p", backend: "command", command: sleeperCommand() }, _meta: { progressToken: 1 } } });
    s.send("{broken json");
    const exit = await s.close();
    assert.deepEqual(exit, { code: 0, signal: null }, `herd must not die of SIGPIPE; stderr:\n${s.stderr.slice(-2000)}`);
    assert.match(s.stderr, /broken pipe|EPIPE|went away/i, "herd saw the failed write (the EPIPE path ran)");
    // The work it was given still happened (the deploy); cleanup kills that agent.
    const doc = w.registry(task.task_id);
    assert.equal(doc.agents.length, 1);
  }));

test("SIGPIPE while idle: stdout closed before initialize, then stdin EOF", T, async () => {
  await withRaw(async ({ s }) => {
    s.proc.stdout.destroy();
    s.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "x", version: "0" } } });
    const exit = await s.close();
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(s.stderr, /broken pipe|EPIPE|went away/i, "herd saw the failed write (the EPIPE path ran)");
  });
});
