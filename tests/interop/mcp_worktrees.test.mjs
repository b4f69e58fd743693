// Agents' worktrees through the official MCP TypeScript SDK client against the real `herd serve`:
// two command agents of one task (worktree by the task's default) edit the same line of the same
// file in parallel, each in its own worktree, and commit; both diffs are read with get_agent_diff;
// merge_agent_work brings the first back, and refuses the second with the conflicting file named,
// changing nothing; neither agent's work is lost.
// Run: HERD_BINARY=$PWD/build/herd node --test --test-concurrency=1 tests/interop/mcp_worktrees.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { makeWorkspace, makeGitRepo, connectSdk, structured, cleanupAllWorkspaces } from "./lib/herd_client.mjs";

const T = { timeout: 180000 };
after(cleanupAllWorkspaces);


test("two agents edit one file in their own worktrees; one merges, the other's conflict is named", T, async () => {
  const w = makeWorkspace("herd-worktrees-");
  const project = path.join(w.root, "project");
  const git = makeGitRepo(project, { "a.txt": "one\ntwo\nthree\n" });
  const s = await connectSdk(w);
  try {
    const c = s.client;
    await c.listTools();
    const call = async (name, args) => {
      const result = await c.callTool({ name, arguments: args });
      return { isError: result.isError === true, value: structured(result) };
    };
    const ok = async (name, args) => {
      const { isError, value } = await call(name, args);
      assert.equal(isError, false, `${name}: ${JSON.stringify(value)}`);
      return value;
    };
    const task = await ok("create_real_task", {
      description: "parallel edits in worktrees", client_cwd: project, worktree: true,
    });
    const edit = word => ["sh", "-c", `printf 'one\\n${word}\\nthree\\n' > a.txt && git commit -qam '${word}'`];
    const [first, second] = await Promise.all(["FIRST", "SECOND"].map(word =>
      ok("deploy_headless_agent", {
        task_id: task.task_id, agent_type: "coder", prompt: "edit", backend: "command", command: edit(word),
      })));
    const waited = await ok("wait_for_agents", { task_id: task.task_id, timeout_seconds: 60 });
    assert.equal(waited.condition_met, true, JSON.stringify(waited));

    for (const [agent, word] of [[first, "FIRST"], [second, "SECOND"]]) {
      const diff = await ok("get_agent_diff", { task_id: task.task_id, agent_id: agent.agent_id });
      assert.match(diff.diff, new RegExp(`^\\+${word}$`, "m"));
      assert.equal(diff.summary.commits_ahead, 1);
      assert.equal(diff.summary.dirty, false);
    }
    const status = await ok("get_real_task_status", { task_id: task.task_id });
    for (const entry of status.agents.agents_list) {
      assert.equal(entry.worktree_summary.files_changed, 1, JSON.stringify(entry));
    }

    const merged = await ok("merge_agent_work", { task_id: task.task_id, agent_id: first.agent_id });
    assert.equal(merged.merged, true);
    assert.deepEqual(merged.files, ["a.txt"]);
    const mainHead = git("rev-parse", "main");
    const refused = await call("merge_agent_work", { task_id: task.task_id, agent_id: second.agent_id });
    assert.equal(refused.isError, true);
    assert.match(refused.value.error, /conflicts in a\.txt/);
    assert.equal(git("rev-parse", "main"), mainHead, "the refused merge changed nothing");
    assert.equal(fs.readFileSync(path.join(project, "a.txt"), "utf8"), "one\nFIRST\nthree\n");
    // Nothing of either agent is lost: both branches keep their commit.
    const registry = JSON.parse(fs.readFileSync(
      path.join(project, ".agent-workspace", task.task_id, "AGENT_REGISTRY.json"), "utf8"));
    for (const agent of registry.agents) {
      assert.equal(git("log", "-1", "--format=%s", agent.worktree.branch),
                   agent.id === first.agent_id ? "FIRST" : "SECOND");
    }
  } finally {
    await s.close();
    await w.cleanup();
  }
});
