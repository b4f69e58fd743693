// `herd dashboard` in a real browser: Debian's chromium (/usr/bin/chromium) driven by
// playwright-core 1.64.1 (the release built for Chromium 156), nothing downloaded. Real command
// agents report progress and findings through `$HERD_BIN`; the page must show each change
// without a reload, render the agent's stream-json output, kill an agent from its button (the
// process is gone), come back after the server restarts, and refuse every request that is not
// its own (wrong Host through DNS rebinding, a foreign page's POST, no token, a token in a
// Referer) and show an agent's `<script>` as text. Screenshots go to the test's directory, or
// to docs/ (for the README) with HERD_UPDATE_SCREENSHOTS=1.
// Run: HERD_BINARY=$PWD/build/herd node --test --test-concurrency=1 tests/interop/dashboard.test.mjs
import { test, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { spawn, execFileSync } from "node:child_process";
import { chromium } from "playwright-core";
import { HERD, REPO_DIR, makeWorkspace, makeGitRepo, cleanupAllWorkspaces, exited, isAlive, waitUntil, withTimeout }
  from "./lib/herd_client.mjs";

const T = { timeout: 240000 };
const CHROMIUM = "/usr/bin/chromium";
const EVENT_WAIT = { timeout: 30000 };  // page updates are pushed at once; this is only a ceiling
after(cleanupAllWorkspaces);

// `herd dashboard` on `port` (0: any); resolves once it printed its URL.
async function startDashboard(w, port = 0) {
  const proc = spawn(HERD, ["dashboard", "--port", String(port)], {
    env: { ...process.env, ...w.env }, stdio: ["ignore", "pipe", "pipe"] });
  const closed = exited(proc);
  let stdout = "", stderr = "";
  proc.stderr.on("data", d => (stderr += d));
  const url = await withTimeout(new Promise((resolve, reject) => {
    proc.stdout.on("data", d => {
      stdout += d;
      const match = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/.exec(stdout);
      if (match) resolve(match[1]);
    });
    closed.then(status => reject(new Error(`herd dashboard exited early: ${JSON.stringify(status)} ${stderr}`)));
  }), 30000, "herd dashboard's URL");
  const parsed = new URL(url);
  return {
    proc, url, port: Number(parsed.port), token: parsed.searchParams.get("token"),
    origin: parsed.origin,
    stop: async () => {
      proc.kill("SIGINT");
      const status = await withTimeout(closed, 30000, "herd dashboard to stop");
      assert.deepEqual(status, { code: 0, signal: null }, `herd dashboard stops cleanly on SIGINT: ${stderr}`);
    },
  };
}

async function launch() {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM, headless: true,
    // As root Chromium needs --no-sandbox. rebind.test resolves to 127.0.0.1, as a DNS
    // rebinding attack would make it.
    args: ["--no-sandbox", "--host-resolver-rules=MAP rebind.test 127.0.0.1, MAP foreign.test 127.0.0.1"],
  });
}

// An agent that reports through $HERD_BIN, prints stream-json, and waits on FIFOs between steps.
function scriptedAgent(w, name) {
  const fifo = step => w.file(`${name}-${step}`);
  for (const step of ["a", "b"]) execFileSync("mkfifo", [fifo(step)]);
  const assistant = JSON.stringify({ type: "assistant", message: { content: [
    { type: "text", text: "Looking at the login test now." },
    { type: "tool_use", name: "Bash", input: { command: "npm test -- login" } }] } });
  const result = JSON.stringify({ type: "user", message: { content: [
    { type: "tool_result", content: "1 failing: login times out" }] } });
  const script = [
    `"$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status working --progress 30 --message "reading the test" >/dev/null`,
    `echo '${assistant}'`,
    `read line < '${fifo("a")}'`,
    `echo '${result}'`,
    `"$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status working --progress 60 --message "found the race" >/dev/null`,
    `"$HERD_BIN" finding "$HERD_TASK_ID" "$HERD_AGENT_ID" --type issue --severity high --message '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">race in login' >/dev/null`,
    `"$HERD_BIN" finding "$HERD_TASK_ID" "$HERD_AGENT_ID" --type note --severity low --message "a low note" >/dev/null`,
    `read line < '${fifo("b")}'`,
  ].join("\n");
  return {
    command: ["sh", "-c", script],
    release: step => fs.promises.writeFile(fifo(step), "go\n"),
  };
}

async function deploy(w, taskId, command, type = "worker") {
  const reply = await w.herd(["deploy", taskId, "--type", type, "--backend", "command", "--prompt", "p", "--", ...command]);
  assert.equal(reply.code, 0, reply.stderr);
  return reply.json.agent_id;
}

async function createTask(w, description, extra = []) {
  const reply = await w.herd(["task", "create", description, ...extra]);
  assert.equal(reply.code, 0, reply.stderr);
  return reply.json.task_id;
}

function screenshotPath(w, name) {
  if (process.env.HERD_UPDATE_SCREENSHOTS === "1") {
    fs.mkdirSync(path.join(REPO_DIR, "docs"), { recursive: true });
    return path.join(REPO_DIR, "docs", name);
  }
  return w.file(name);
}

const agentCard = (page, agentId) => page.locator(`.agent[data-agent-id="${agentId}"]`);

test("the page follows real agents live, renders their output, and kills one from its button", T, async () => {
  const w = makeWorkspace("herd-dash-");
  const dashboard = await startDashboard(w);
  const browser = await launch();
  try {
    const taskId = await createTask(w, "Fix the flaky login test", ["--max-cost-usd", "5", "--max-tokens", "200000"]);
    const agent = scriptedAgent(w, "talker");
    const agentId = await deploy(w, taskId, agent.command, "investigator");
    const sleeperId = await deploy(w, taskId, ["sleep", "300"], "reviewer");

    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const consoleErrors = [];
    page.on("console", message => { if (message.type() === "error") consoleErrors.push(message.text()); });
    const reply = await page.goto(dashboard.url);
    assert.equal(reply.status(), 200);
    assert.equal(new URL(page.url()).search, "", "the redirect drops the token from the address bar");
    const [cookie] = (await context.cookies()).filter(c => c.name === "herd_dashboard");
    assert.ok(cookie, "the token became a cookie");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    await page.evaluate(() => { window.__sameDocument = true; });

    await page.locator(`#tasks tr[data-task-id="${taskId}"]`).click();
    await agentCard(page, agentId).locator(".progress-text").filter({ hasText: "30%" }).waitFor(EVENT_WAIT);
    await agentCard(page, agentId).locator(".last-message").filter({ hasText: "reading the test" }).waitFor(EVENT_WAIT);

    // The output, rendered from stream-json, then following as it grows.
    await agentCard(page, agentId).locator(".show-output").click();
    await page.locator("#output .block-text").filter({ hasText: "Looking at the login test now." }).waitFor(EVENT_WAIT);
    await page.locator("#output .block-tool").filter({ hasText: "→ Bash" }).waitFor(EVENT_WAIT);
    await agent.release("a");
    await page.locator("#output .block-result").filter({ hasText: "1 failing: login times out" }).waitFor(EVENT_WAIT);
    await agentCard(page, agentId).locator(".progress-text").filter({ hasText: "60%" }).waitFor(EVENT_WAIT);
    await page.locator("#timeline li.finding[data-severity=low]").waitFor(EVENT_WAIT);
    await page.locator("#raw-output").check();
    assert.match(await page.locator("#output-raw").textContent(), /"type":"tool_result"/);
    await page.locator("#raw-output").uncheck();

    // The agent's <script> is text: shown verbatim, never run, no element made from it.
    const finding = page.locator("#timeline li.finding[data-severity=high]");
    await finding.waitFor(EVENT_WAIT);
    assert.match(await finding.textContent(), /<script>window.__xss=1<\/script><img src=x onerror="window.__xss=2">race in login/);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator("#timeline img, #timeline script").count(), 0);

    // Findings filtered by severity.
    await page.locator("#severity-filter").selectOption("high");
    assert.equal(await page.locator("#timeline li.finding[data-severity=low]").count(), 0);
    assert.equal(await page.locator("#timeline li.finding[data-severity=high]").count(), 1);
    await page.locator("#severity-filter").selectOption("all");
    assert.equal(await page.locator("#timeline li.finding").count(), 2);

    assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");
    await page.screenshot({ path: screenshotPath(w, "dashboard.png") });

    // Kill the sleeper from its button: a confirmation with a reason, then the process is gone.
    const sleeper = w.registry(taskId).agents.find(a => a.id === sleeperId);
    assert.ok(isAlive(sleeper.pid), "the sleeper runs before the kill");
    await agentCard(page, sleeperId).locator("button.kill").click();
    await page.locator("#confirm-reason").fill("not needed any more");
    await page.locator("#confirm-ok").click();
    await agentCard(page, sleeperId).locator(".status").filter({ hasText: "terminated" }).waitFor(EVENT_WAIT);
    await waitUntil(() => !isAlive(sleeper.pid), { what: `the sleeper (pid ${sleeper.pid}) to be gone` });
    const killed = w.registry(taskId).agents.find(a => a.id === sleeperId);
    assert.equal(killed.status, "terminated");
    assert.equal(killed.termination_reason, "not needed any more");

    // Stop the task: every agent, and no new deploys.
    await page.locator("#stop-task").click();
    await page.locator("#confirm-reason").fill("done for today");
    await page.locator("#confirm-ok").click();
    await agentCard(page, agentId).locator(".status").filter({ hasText: "terminated" }).waitFor(EVENT_WAIT);
    await page.locator("#task-summary").filter({ hasText: "done for today" }).waitFor(EVENT_WAIT);
    await waitUntil(() => !isAlive(w.registry(taskId).agents.find(a => a.id === agentId).pid), { what: "the talker to be gone" });
    assert.deepEqual(consoleErrors, [], "the page logged no errors (a CSP violation would be one)");
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload happened");
  } finally {
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});

test("a follow-up sent from the page runs as the agent's next turn", T, async () => {
  const w = makeWorkspace("herd-dash-");
  const dashboard = await startDashboard(w);
  const browser = await launch();
  try {
    const taskId = await createTask(w, "Talk to an agent");
    // Prints its turn and what it was told on stdin, then ends.
    const agentId = await deploy(w, taskId, ["sh", "-c", "printf 'turn %s: %s\\n' \"$HERD_TURN\" \"$(cat)\""]);
    await waitUntil(() => w.registry(taskId).agents.find(a => a.id === agentId).ended_at,
                    { what: "the first turn to end" });
    const page = await browser.newPage();
    await page.goto(dashboard.url);
    await page.locator(`#tasks tr[data-task-id="${taskId}"]`).click();
    await agentCard(page, agentId).locator(".status").filter({ hasText: "completed" }).waitFor(EVENT_WAIT);

    await agentCard(page, agentId).locator("button.send").click();
    await page.locator("#confirm-reason").fill("now the <b>second</b> step");
    await page.locator("#confirm-ok").click();
    await page.locator("#notice").filter({ hasText: "turn 2 started" }).waitFor(EVENT_WAIT);
    await waitUntil(() => {
      const agent = w.registry(taskId).agents.find(a => a.id === agentId);
      return agent.turn === 2 && agent.ended_at;
    }, { what: "the second turn to end" });
    const log = fs.readFileSync(path.join(w.taskDir(taskId), "logs", `${agentId}_stream.jsonl`), "utf8");
    assert.deepEqual(log.trim().split("\n"), ["turn 1: p", "turn 2: now the <b>second</b> step"]);
    const agent = w.registry(taskId).agents.find(a => a.id === agentId);
    assert.equal(agent.turns.length, 1);
    assert.equal(agent.status, "completed");
  } finally {
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});

test("an agent in its own worktree shows its branch and what it changed", T, async () => {
  const w = makeWorkspace("herd-dash-");
  const project = w.file("project");
  makeGitRepo(project, { "a.txt": "one\n" });
  const dashboard = await startDashboard(w);
  const browser = await launch();
  try {
    const taskId = await createTask(w, "Work in a worktree", ["--cwd", project]);
    const reply = await w.herd(["deploy", taskId, "--type", "coder", "--worktree", "--backend", "command",
                                "--prompt", "p", "--", "sh", "-c", "printf 'two\\nthree\\n' >> a.txt && git commit -qam more"]);
    assert.equal(reply.code, 0, reply.stderr);
    const agentId = reply.json.agent_id;
    // With --cwd the task lives in the project's own workspace.
    const registry = () => JSON.parse(fs.readFileSync(
      path.join(project, ".agent-workspace", taskId, "AGENT_REGISTRY.json"), "utf8"));
    await waitUntil(() => registry().agents.find(a => a.id === agentId).ended_at, { what: "the agent to end" });
    const page = await browser.newPage();
    await page.goto(dashboard.url);
    await page.locator(`#tasks tr[data-task-id="${taskId}"]`).click();
    const facts = agentCard(page, agentId).locator(".facts").filter({ hasText: `branch herd/${taskId}/${agentId}` });
    await facts.waitFor(EVENT_WAIT);
    assert.match(await facts.textContent(), /1 files \+2 -0, 1 commits ahead/);
  } finally {
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});

test("a page reconnects after the server restarts and resumes where it left off", T, async () => {
  const w = makeWorkspace("herd-dash-");
  let dashboard = await startDashboard(w);
  const browser = await launch();
  try {
    const taskId = await createTask(w, "Survive a restart");
    const agentId = await deploy(w, taskId, ["sleep", "300"]);
    const page = await browser.newPage();
    await page.goto(dashboard.url);
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.locator(`#tasks tr[data-task-id="${taskId}"]`).click();
    await agentCard(page, agentId).waitFor(EVENT_WAIT);
    await page.locator("#connection[data-state=live]").waitFor(EVENT_WAIT);

    const port = dashboard.port;
    await dashboard.stop();
    await page.locator("#connection[data-state=connecting]").waitFor(EVENT_WAIT);
    // A change while the server is down arrives once it is back.
    await w.herd(["progress", taskId, agentId, "--status", "working", "--progress", "77", "--message", "while you were away"]);
    dashboard = await startDashboard(w, port);
    await page.locator("#connection[data-state=live]").waitFor(EVENT_WAIT);
    await agentCard(page, agentId).locator(".progress-text").filter({ hasText: "77%" }).waitFor(EVENT_WAIT);
    await agentCard(page, agentId).locator(".last-message").filter({ hasText: "while you were away" }).waitFor(EVENT_WAIT);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page did not reload");
  } finally {
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});

// What switching tabs does to a page: document.hidden and a visibilitychange event.
const setHidden = (page, hidden) => page.evaluate(value => {
  Object.defineProperty(document, "hidden", { value, configurable: true });
  Object.defineProperty(document, "visibilityState", { value: value ? "hidden" : "visible", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}, hidden);

test("eight tabs of one browser work: hidden ones give their stream back and resume when shown", T, async () => {
  const w = makeWorkspace("herd-dash-");
  const dashboard = await startDashboard(w);
  const browser = await launch();
  try {
    const taskId = await createTask(w, "Many tabs");
    const agentId = await deploy(w, taskId, ["sleep", "300"]);
    const context = await browser.newContext();
    const pages = [];
    for (let i = 0; i < 8; i++) {
      if (pages.length) await setHidden(pages[pages.length - 1], true);  // the person switches tabs
      const page = await context.newPage();
      await page.goto(dashboard.url);
      await page.locator("#connection[data-state=live]").waitFor(EVENT_WAIT);
      await page.evaluate(([task, agent]) => { location.hash = `task=${task}&agent=${agent}`; }, [taskId, agentId]);
      await agentCard(page, agentId).waitFor(EVENT_WAIT);
      pages.push(page);
    }
    const first = pages[0];
    assert.equal(await first.locator("#connection").getAttribute("data-state"), "connecting", "a hidden tab holds no stream");
    await w.herd(["progress", taskId, agentId, "--status", "working", "--progress", "42", "--message", "while hidden"]);
    await setHidden(pages[7], true);
    await setHidden(first, false);
    await first.locator("#connection[data-state=live]").waitFor(EVENT_WAIT);
    await agentCard(first, agentId).locator(".last-message").filter({ hasText: "while hidden" }).waitFor(EVENT_WAIT);
  } finally {
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});

test("a long log loads only its tail and pages back on request", T, async () => {
  const w = makeWorkspace("herd-dash-");
  const dashboard = await startDashboard(w);
  const browser = await launch();
  try {
    const taskId = await createTask(w, "Read a long log");
    const agentId = await deploy(w, taskId, ["seq", "1", "400000"]);  // 2.7 MB of output
    const waited = await w.herd(["wait", taskId, agentId, "--timeout", "120"]);
    assert.equal(waited.code, 0, waited.stderr);
    const size = fs.statSync(path.join(w.taskDir(taskId), "logs", `${agentId}_stream.jsonl`)).size;
    const page = await browser.newPage();
    await page.goto(dashboard.url);
    await page.evaluate(([task, agent]) => { location.hash = `task=${task}&agent=${agent}`; }, [taskId, agentId]);
    const range = page.locator("#output-range");
    await range.filter({ hasText: `of ${size.toLocaleString("en")}` }).waitFor(EVENT_WAIT);
    await page.locator("#raw-output").check();
    const rangeBytes = async () => (await range.textContent()).match(/[\d,]+/g).map(n => Number(n.replaceAll(",", "")));
    const [begin, end] = await rangeBytes();
    assert.equal(end, size);
    assert.ok(begin > 0 && end - begin <= 256 * 1024, `only the tail is loaded: ${begin}-${end}`);
    const tail = await page.locator("#output-raw").textContent();
    assert.ok(tail.endsWith("400000\n"), "the last line is shown");
    const firstShown = Number(tail.split("\n")[0]);

    await page.locator("#load-earlier").click();
    await waitUntil(async () => (await rangeBytes())[0] < begin, { what: "an earlier page" });
    const [earlierBegin] = await rangeBytes();
    assert.ok(begin - earlierBegin <= 256 * 1024);
    const both = await page.locator("#output-raw").textContent();
    assert.ok(both.includes(`\n${firstShown - 1}\n${firstShown}\n`), "the earlier page joins the tail line for line");
    assert.ok(both.endsWith("400000\n"));
  } finally {
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});

// A raw request with exactly these headers (fetch() would not let a test set Host).
function rawRequest(port, { method = "GET", path: target = "/", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    if (body) headers = { ...headers, "Content-Length": Buffer.byteLength(body) };
    const request = http.request({ host: "127.0.0.1", port, method, path: target, headers }, response => {
      let text = "";
      response.on("data", d => (text += d));
      response.on("end", () => resolve({ status: response.statusCode, headers: response.headers, text }));
    });
    request.on("error", reject);
    if (body) request.write(body);
    request.end();
  });
}

test("every request that is not the dashboard's own page is refused", T, async () => {
  const w = makeWorkspace("herd-dash-");
  const dashboard = await startDashboard(w);
  const browser = await launch();
  const foreign = http.createServer();
  try {
    const taskId = await createTask(w, "Hold still");
    const agentId = await deploy(w, taskId, ["sleep", "300"]);
    const host = `127.0.0.1:${dashboard.port}`;
    const cookie = `herd_dashboard=${dashboard.token}`;
    const killBody = JSON.stringify({ task_id: taskId, agent_id: agentId, reason: "csrf" });

    // Wrong Host (DNS rebinding), at the HTTP level and from the browser through a rebound name.
    assert.equal((await rawRequest(dashboard.port, { headers: { Host: `rebind.test:${dashboard.port}`, Cookie: cookie } })).status, 403);
    const page = await browser.newPage();
    const rebound = await page.goto(`http://rebind.test:${dashboard.port}/?token=${dashboard.token}`);
    assert.equal(rebound.status(), 403);
    assert.match(await page.textContent("body"), /answers only to Host 127\.0\.0\.1/);

    // No token, a wrong token, the token only in a Referer.
    assert.equal((await rawRequest(dashboard.port, { path: "/", headers: { Host: host } })).status, 401);
    assert.equal((await rawRequest(dashboard.port, { path: "/?token=" + "0".repeat(32), headers: { Host: host } })).status, 403);
    const referred = await rawRequest(dashboard.port, { path: "/api/doctor", headers: { Host: host, Referer: dashboard.url } });
    assert.equal(referred.status, 401);

    // A foreign Origin, with the cookie even: refused, and no CORS header to read the reply by.
    const forged = await rawRequest(dashboard.port, { method: "POST", path: "/api/kill", body: killBody,
      headers: { Host: host, Cookie: cookie, Origin: "http://foreign.test", "Content-Type": "application/json" } });
    assert.equal(forged.status, 403);
    assert.equal(Object.keys(forged.headers).filter(h => h.startsWith("access-control-")).length, 0);

    // A real foreign page in the same browser, after the person signed in, tries to kill the agent.
    const signedIn = await browser.newContext();
    const own = await signedIn.newPage();
    await own.goto(dashboard.url);
    assert.equal((await signedIn.cookies()).filter(c => c.name === "herd_dashboard").length, 1);
    const attempts = [];
    {
      foreign.on("request", (request, response) => {
        response.setHeader("Content-Type", "text/html");
        response.end(`<!doctype html><script>
          const target = "http://127.0.0.1:${dashboard.port}/api/kill";
          const body = ${JSON.stringify(killBody)};
          Promise.allSettled([
            fetch(target, { method: "POST", mode: "no-cors", credentials: "include", body, headers: { "Content-Type": "text/plain" } }),
            fetch(target, { method: "POST", credentials: "include", body, headers: { "Content-Type": "application/json" } }),
          ]).then(results => { document.title = results.map(r => r.status).join(","); });
        </script>`);
      });
      await new Promise(resolve => foreign.listen(0, "127.0.0.1", resolve));
    }
    const attacker = await signedIn.newPage();
    attacker.on("request", request => { if (request.url().includes("/api/kill")) attempts.push(request.method()); });
    await attacker.goto(`http://foreign.test:${foreign.address().port}/`);
    await waitUntil(async () => (await attacker.title()).includes(","), { what: "the foreign page's attempts" });
    assert.ok(attempts.length >= 1, "the foreign page did send its requests");
    const registry = w.registry(taskId);
    const target = registry.agents.find(a => a.id === agentId);
    assert.equal(target.status, "running", "the agent was not killed by a foreign page");
    assert.ok(isAlive(target.pid));
  } finally {
    foreign.close();
    await browser.close();
    await dashboard.stop();
    await w.cleanup();
  }
});
