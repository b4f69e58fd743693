// wait_for_agents through the official MCP TypeScript SDK client (@modelcontextprotocol/sdk 1.32.2)
// against the real `herd serve`, with real agents (command backend): it returns once the last
// agent has exited (how soon is measured by `herd-bench-mcp --wait`, not here), times out with the agents still active, stops waiting when the call is
// cancelled (AbortSignal -> notifications/cancelled) while the server keeps serving, and sends
// progress notifications when the call carries a progress token (the SDK sends one when
// `onprogress` is given).
// Run: HERD_BINARY=$PWD/build/herd node --test --test-concurrency=1 tests/interop/mcp_wait.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { makeWorkspace, connectSdk, structured, sleeperCommand, waitUntil, cleanupAllWorkspaces,
         withTimeout } from "./lib/herd_client.mjs";

const T = { timeout: 180000 };
after(cleanupAllWorkspaces);

async function withServer(fn) {
  const w = makeWorkspace("herd-wait-");
  let s;
  try {
    s = await connectSdk(w);
    await s.client.listTools();  // so the SDK validates structuredContent against outputSchema
    await fn({ w, s, c: s.client });
    const status = await s.close();
    s = undefined;
    assert.deepEqual(status, { code: 0, signal: null }, "herd serve exits 0 on stdin EOF");
  } finally {
    if (s) await s.client.close().catch(() => {});
    await w.cleanup();
  }
}

async function call(c, name, args, options) {
  const result = await c.callTool({ name, arguments: args }, undefined, options);
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result.structuredContent)}`);
  return structured(result);
}
async function newTask(c) {
  return (await call(c, "create_real_task", { description: "wait_for_agents interop test" })).task_id;
}
async function deploy(c, taskId, command) {
  const agent = await call(c, "deploy_headless_agent", {
    task_id: taskId, agent_type: "worker", prompt: "p", backend: "command", command,
  });
  return agent.agent_id;
}

// An ISO 8601 UTC timestamp with microseconds, as herd writes them, in milliseconds since the epoch
// (Date.parse keeps only milliseconds).
function epochMs(iso) {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
  assert.ok(m, `a timestamp: ${iso}`);
  return Date.parse(`${m[1]}Z`) + (m[2] ? Number(m[2]) * 1000 : 0);
}
const nowMs = () => performance.timeOrigin + performance.now();

function threadCount(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^Threads:\s+(\d+)/m.exec(status)[1]);
}

// An agent that ends when the test writes a line to its FIFO.
function heldAgentCommand(w, name) {
  const fifo = w.file(name);
  execFileSync("mkfifo", [fifo]);
  return { command: ["sh", "-c", `read line < '${fifo}'`], release: () => fs.promises.writeFile(fifo, "go\n") };
}

test("wait_for_agents returns once the last agent has exited, with each agent's record", T, () =>
  withServer(async ({ c }) => {
    for (let run = 0; run < 3; run++) {
      const taskId = await newTask(c);
      const agents = [];
      for (const seconds of ["0.3", "0.6", "1.2"]) agents.push(await deploy(c, taskId, ["sleep", seconds]));
      const started = nowMs();
      const reply = await call(c, "wait_for_agents", { task_id: taskId, agent_ids: agents });
      const returned = nowMs();
      assert.equal(reply.condition_met, true, reply.summary);
      assert.deepEqual(reply.still_active, []);
      assert.equal(reply.agents.length, 3);
      for (const agent of reply.agents) {
        assert.equal(agent.status, "completed", JSON.stringify(agent));
        assert.equal(agent.exit_code, 0);
        assert.equal(typeof agent.usage.total_tokens, "number");
        assert.equal(agent.findings, 0);
      }
      const lastExit = Math.max(...reply.agents.map(a => epochMs(a.ended_at)));
      assert.ok(lastExit > started, "the last agent ended while the call was waiting");
      assert.ok(returned >= lastExit, "the reply came after the last recorded exit");
    }
  }));

test("a timed-out wait is a normal result naming the agents still active", T, () =>
  withServer(async ({ c }) => {
    const taskId = await newTask(c);
    const sleeper = await deploy(c, taskId, sleeperCommand());
    const done = await deploy(c, taskId, ["true"]);
    await waitUntil(async () => (await call(c, "wait_for_agents", { task_id: taskId, agent_ids: [done], timeout_seconds: 0 })).condition_met,
                    { what: "the quick agent to end" });
    const started = nowMs();
    const reply = await call(c, "wait_for_agents", { task_id: taskId, agent_ids: [sleeper, done], timeout_seconds: 0.5 });
    assert.ok(nowMs() - started >= 500, "it waited for its timeout");
    assert.equal(reply.condition_met, false);
    assert.equal(reply.timed_out, true);
    assert.deepEqual(reply.still_active, [sleeper]);
    assert.match(reply.summary, /^timed out after [\d.]+ s: 1 of 2 agents have ended \(1 completed\); 1 still active/);
    assert.match(reply.summary, /Call wait_for_agents again/);
    const entry = reply.agents.find(a => a.agent_id === sleeper);
    assert.equal(entry.status, "running");
    assert.equal(entry.liveness, "alive");
  }));

test("cancelling a wait (AbortSignal) stops it in the server, which keeps serving meanwhile", T, () =>
  withServer(async ({ s, c }) => {
    const taskId = await newTask(c);
    const sleeper = await deploy(c, taskId, sleeperCommand());
    const pid = s.proc.pid;
    const baseline = threadCount(pid);
    // More waits than the server has workers (4): they must not hold up other calls.
    const waits = [];
    for (let i = 0; i < 6; i++) {
      const controller = new AbortController();
      let started;
      const running = new Promise(resolve => (started = resolve));
      const promise = c.callTool({ name: "wait_for_agents", arguments: { task_id: taskId, agent_ids: [sleeper] } },
                                 undefined, { signal: controller.signal, onprogress: started });
      promise.catch(() => {});  // rejected on abort; checked below
      await withTimeout(running, 30000, "the wait's first progress notification");
      waits.push({ controller, promise });
    }
    assert.equal(threadCount(pid), baseline + 6, "each wait blocks on a thread of its own");
    const status = await call(c, "get_real_task_status", { task_id: taskId });
    assert.equal(status.agents.active, 1, "other calls are answered while the waits block");

    for (const { controller } of waits) controller.abort("the test is done waiting");
    for (const { promise } of waits) await assert.rejects(promise, /the test is done waiting/);
    // The default timeout is 50 s: the waits' threads end long before it only if the server
    // stopped waiting on the cancellation.
    await waitUntil(() => threadCount(pid) === baseline, { timeoutMs: 10000, what: "the waits' threads to end" });
    const tokens = new Set(s.transport.received
      .filter(m => m.method === "notifications/progress").map(m => m.params.progressToken));
    assert.equal(tokens.size, 6);
    assert.deepEqual(s.transport.received.filter(m => tokens.has(m.id)), [], "no reply to a cancelled wait");
    // And the server still answers waits.
    const again = await call(c, "wait_for_agents", { task_id: taskId, timeout_seconds: 0 });
    assert.deepEqual(again.still_active, [sleeper]);
  }));

test("progress notifications while waiting when the call carries a progress token", T, () =>
  withServer(async ({ w, s, c }) => {
    const taskId = await newTask(c);
    const first = heldAgentCommand(w, "first"), second = heldAgentCommand(w, "second");
    const agents = [await deploy(c, taskId, first.command), await deploy(c, taskId, second.command)];
    const seen = [];
    let heard;
    const oneEnded = new Promise(resolve => (heard = resolve));
    const waiting = call(c, "wait_for_agents", { task_id: taskId }, {
      onprogress: p => {
        seen.push(p);
        if (/^running wait_for_agents/.test(p.message)) first.release();
        if (/^1 of 2 agents ended; waiting for 1/.test(p.message)) heard();
      },
    });
    await withTimeout(oneEnded, 30000, "progress saying that one agent ended");
    await second.release();
    const reply = await waiting;
    assert.equal(reply.condition_met, true, reply.summary);
    assert.deepEqual(reply.agents.map(a => a.agent_id), agents);
    assert.equal(seen[0].message, "running wait_for_agents");
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i].progress > seen[i - 1].progress, "progress increases");

    // Without a token: no notification at all.
    const third = heldAgentCommand(w, "third");
    const quiet = await deploy(c, taskId, third.command);
    const before = seen.length;
    const received = () => s.transport.received;
    const count = received().filter(m => m.method === "notifications/progress").length;
    const silent = call(c, "wait_for_agents", { task_id: taskId, agent_ids: [quiet] });
    await third.release();
    assert.equal((await silent).condition_met, true);
    assert.equal(seen.length, before);
    assert.equal(received().filter(m => m.method === "notifications/progress").length, count);
  }));
