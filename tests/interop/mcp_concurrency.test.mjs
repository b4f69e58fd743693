// Concurrency through the real interface: 16 `herd serve` processes at once, each reporting
// progress for its own agent of one task (50 calls each) while another process reads the task;
// then 5 concurrent kill_real_agent calls from 5 processes; then the rest.
// Run: HERD_BINARY=$PWD/build/herd node --test tests/interop/mcp_concurrency.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import {
  makeWorkspace, RawSession, sleeperCommand, isAlive, readJsonLines, cleanupAllWorkspaces,
} from "./lib/herd_client.mjs";

const AGENTS = 16;
const CALLS = 50;
const KILLERS = 5;
after(cleanupAllWorkspaces);

test(`${AGENTS} herd serve processes x ${CALLS} update_agent_progress calls, then ${KILLERS} concurrent kills, then the rest`, { timeout: 600000 }, async () => {
  const w = makeWorkspace("herd-conc-");
  const sessions = [];
  const open = () => {
    const s = new RawSession(w);
    sessions.push(s);
    return s;
  };
  try {
    // One task, 16 sleeping command agents, deployed first.
    const setup = open();
    await setup.initialize();
    const task = await setup.tool("create_real_task", { description: "many agents reporting at once", max_concurrent: 20 });
    const taskId = task.task_id;
    const agents = await Promise.all(Array.from({ length: AGENTS }, (_, i) =>
      setup.tool("deploy_headless_agent", { task_id: taskId, agent_type: `agent${i}`, prompt: "sleep",
                                            backend: "command", command: sleeperCommand() })));
    assert.equal(new Set(agents.map(a => a.agent_id)).size, AGENTS);
    for (const a of agents) assert.ok(isAlive(a.pid), `${a.agent_id} runs`);
    assert.equal(w.registry(taskId).active_count, AGENTS);

    // 16 processes, each with its own agent, all at once.
    const reporters = Array.from({ length: AGENTS }, open);
    await Promise.all(reporters.map(s => s.initialize()));
    const failures = [];
    let writersDone = false;
    const reporting = Promise.all(reporters.map(async (s, i) => {
      const agent = agents[i];
      for (let j = 1; j <= CALLS; j++) {
        try {
          const r = await s.callTool("update_agent_progress", {
            task_id: taskId, agent_id: agent.agent_id, status: "working", message: `agent ${i} update ${j}`, progress: j,
          }, { timeoutMs: 120000 });
          if (r.isError) failures.push({ i, j, error: r.structuredContent?.error });
          else if (r.structuredContent.own_update.progress !== j) failures.push({ i, j, own_update: r.structuredContent.own_update });
        } catch (e) {
          failures.push({ i, j, error: e.message });
        }
      }
    })).finally(() => { writersDone = true; });
    // Meanwhile a reader sees a consistent task every time.
    const reader = open();
    await reader.initialize();
    let reads = 0;
    const readerErrors = [];
    const reading = (async () => {
      while (!writersDone) {
        const r = await reader.callTool("get_real_task_status", { task_id: taskId }, { timeoutMs: 120000 });
        if (r.isError) readerErrors.push(r.structuredContent.error);
        else if (r.structuredContent.agents.agents_list.length !== AGENTS) readerErrors.push("agents missing");
        reads++;
      }
    })();
    await reporting;
    await reading;
    assert.deepEqual(failures, [], "every update_agent_progress call succeeded");
    assert.deepEqual(readerErrors, [], "every concurrent status read succeeded");
    assert.ok(reads >= 1);

    // Every update is recorded: 50 journal lines per agent, in order, and the registry holds each
    // agent's last report.
    const doc = w.registry(taskId);
    for (let i = 0; i < AGENTS; i++) {
      const id = agents[i].agent_id;
      const journal = readJsonLines(path.join(w.ws, taskId, "progress", `${id}_progress.jsonl`));
      assert.equal(journal.length, CALLS, `${id}: ${journal.length} progress lines`);
      assert.deepEqual(journal.map(e => e.progress), Array.from({ length: CALLS }, (_, j) => j + 1), `${id}: in order`);
      assert.ok(journal.every((e, j) => e.agent_id === id && e.message === `agent ${i} update ${j + 1}` && e.status === "working"));
      const entry = doc.agents.find(a => a.id === id);
      assert.equal(entry.progress, CALLS, `${id}: registry progress`);
      assert.equal(entry.status, "working");
      assert.equal(entry.last_message, `agent ${i} update ${CALLS}`);
    }
    assert.equal(doc.agents.length, AGENTS);
    assert.equal(doc.active_count, AGENTS);
    const status = await setup.tool("get_real_task_status", { task_id: taskId });
    assert.equal(status.enhanced_progress.total_progress_entries, AGENTS * CALLS);
    assert.equal(status.agents.active, AGENTS);

    // 5 processes kill 5 agents at the same time.
    const kills = await Promise.all(reporters.slice(0, KILLERS).map((s, i) =>
      s.tool("kill_real_agent", { task_id: taskId, agent_id: agents[i].agent_id, reason: `concurrent kill ${i}` }, { timeoutMs: 120000 })));
    for (let i = 0; i < KILLERS; i++) {
      assert.equal(kills[i].status, "terminated");
      assert.equal(kills[i].cleanup.all_exited, true);
      assert.equal(isAlive(agents[i].pid), false, `${agents[i].agent_id} is gone`);
    }
    let after5 = w.registry(taskId);
    for (let i = 0; i < KILLERS; i++) {
      const entry = after5.agents.find(a => a.id === agents[i].agent_id);
      assert.equal(entry.status, "terminated");
      assert.equal(entry.termination_reason, `concurrent kill ${i}`);
    }
    assert.equal(after5.active_count, AGENTS - KILLERS);
    for (let i = KILLERS; i < AGENTS; i++) assert.ok(isAlive(agents[i].pid), `${agents[i].agent_id} still runs`);

    // The rest, also concurrently, each from its own process.
    const rest = await Promise.all(reporters.slice(KILLERS).map((s, k) =>
      s.tool("kill_real_agent", { task_id: taskId, agent_id: agents[KILLERS + k].agent_id }, { timeoutMs: 120000 })));
    for (const r of rest) assert.equal(r.status, "terminated");
    const final = w.registry(taskId);
    assert.equal(final.active_count, 0);
    assert.ok(final.agents.every(a => a.status === "terminated"));
    for (const a of agents) assert.equal(isAlive(a.pid), false);
    const finalStatus = await setup.tool("get_real_task_status", { task_id: taskId });
    assert.equal(finalStatus.agents.active, 0);
    const list = await w.herd(["task", "list"]);
    assert.equal(list.json.tasks.find(t => t.task_id === taskId).active_count, 0);

    // Every process exits cleanly, and every line any of them wrote was a JSON-RPC message.
    const exits = await Promise.all(sessions.map(s => s.close()));
    for (const e of exits) assert.deepEqual(e, { code: 0, signal: null });
    for (const s of sessions) assert.deepEqual(s.badLines, []);
  } finally {
    await Promise.all(sessions.map(s => s.kill()));
    await w.cleanup();
  }
});
