// Benchmark of `herd dashboard` (not a test; prints its figures): the time from a registry
// change to a browser showing it, p50/p99, measured in the browser, while `--pages` pages are
// open on a task with `--agents` busy agents (each reports progress every 2 s and prints a
// stream-json line); and the server's CPU and memory over that time.
//
// A probe agent's progress is reported `--probes` times from here; each report's commit time is
// its journal timestamp (written by herd under the registry lock), and the moment the page shows
// it is taken by a MutationObserver in the page (same machine, same wall clock).
//
// Run: HERD_BINARY=$PWD/build/herd node tests/interop/dashboard_bench.mjs [--pages 10] [--agents 50] [--probes 40]
import fs from "node:fs";
import path from "node:path";
import { spawn } from "node:child_process";
import { chromium } from "playwright-core";
import { HERD, makeWorkspace, exited, withTimeout } from "./lib/herd_client.mjs";

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? Number(process.argv[index + 1]) : fallback;
}
const PAGES = option("pages", 10), AGENTS = option("agents", 50), PROBES = option("probes", 40);
const TICKS_PER_SECOND = 100;

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
function epochMs(iso) {
  const m = /^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
  return Date.parse(`${m[1]}Z`) + (m[2] ? Number(m[2]) * 1000 : 0);
}
function cpuTicks(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);  // utime + stime
}
function memoryKb(pid, field) {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
}

const w = makeWorkspace("herd-dash-bench-");
const dashboard = spawn(HERD, ["dashboard"], { env: { ...process.env, ...w.env }, stdio: ["ignore", "pipe", "inherit"] });
const closed = exited(dashboard);
let browser;
try {
  const url = await withTimeout(new Promise(resolve => {
    let out = "";
    dashboard.stdout.on("data", d => { out += d; const m = /(http:\S+token=\w+)/.exec(out); if (m) resolve(m[1]); });
  }), 30000, "the dashboard's URL");

  const created = await w.herd(["task", "create", "dashboard benchmark", "--max-concurrent", String(AGENTS + 5),
                                "--max-agents", String(AGENTS + 5)]);
  const taskId = created.json.task_id;
  const busy = `i=0; while [ $i -lt 300 ]; do i=$((i+1));
    echo '{"type":"assistant","message":{"content":[{"type":"text","text":"working on step"}]}}';
    "$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status working --progress $((i % 100)) --message "step $i" >/dev/null;
    sleep 2; done`;
  for (let i = 0; i < AGENTS; i++) {
    const r = await w.herd(["deploy", taskId, "--type", `busy${i}`, "--backend", "command", "--prompt", "p", "--", "sh", "-c", busy]);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  const probe = (await w.herd(["deploy", taskId, "--type", "probe", "--backend", "command", "--prompt", "p", "--", "sleep", "900"])).json.agent_id;

  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
  // One browser context per page, as separate browsers: one browser holds at most 6 HTTP/1.1
  // connections to a host, so it keeps a stream open only for the pages in sight (see the README).
  const pages = [];
  for (let i = 0; i < PAGES; i++) {
    const page = await (await browser.newContext()).newPage();
    await page.goto(url);
    await page.evaluate(([task, agent]) => { location.hash = `task=${task}&agent=${agent}`; }, [taskId, i === 0 ? probe : `busy${i}`]);
    pages.push(page);
  }
  const watcher = pages[0];
  await watcher.locator(`.agent[data-agent-id="${probe}"]`).waitFor({ timeout: 60000 });
  await watcher.evaluate(agentId => {
    window.__seen = {};
    new MutationObserver(() => {
      const message = document.querySelector(`.agent[data-agent-id="${agentId}"] .last-message`);
      const m = message && /^probe (\d+)$/.exec(message.textContent);
      if (m && !(m[1] in window.__seen)) window.__seen[m[1]] = performance.timeOrigin + performance.now();
    }).observe(document.getElementById("agents"), { childList: true, subtree: true, characterData: true });
  }, probe);

  const startTicks = cpuTicks(dashboard.pid), startTime = performance.now();
  for (let k = 1; k <= PROBES; k++) {
    const r = await w.herd(["progress", taskId, probe, "--status", "working", "--progress", String(k % 100), "--message", `probe ${k}`]);
    if (r.code !== 0) throw new Error(r.stderr);
    await watcher.waitForFunction(n => n in window.__seen, String(k), { timeout: 60000 });
  }
  const seconds = (performance.now() - startTime) / 1000;
  const cpuPercent = ((cpuTicks(dashboard.pid) - startTicks) / TICKS_PER_SECOND / seconds) * 100;
  const seen = await watcher.evaluate(() => window.__seen);
  const journal = fs.readFileSync(path.join(w.taskDir(taskId), "progress", `${probe}_progress.jsonl`), "utf8")
    .split("\n").filter(Boolean).map(line => JSON.parse(line));
  const latencies = [];
  for (const entry of journal) {
    const m = /^probe (\d+)$/.exec(entry.message ?? "");
    if (m && seen[m[1]]) latencies.push(seen[m[1]] - epochMs(entry.timestamp));
  }
  console.log(JSON.stringify({
    pages: PAGES, busy_agents: AGENTS, probes: latencies.length,
    change_to_browser_ms: { p50: +percentile(latencies, 50).toFixed(1), p99: +percentile(latencies, 99).toFixed(1),
                            max: +Math.max(...latencies).toFixed(1) },
    server_cpu_percent_of_one_core: +cpuPercent.toFixed(1), measured_seconds: +seconds.toFixed(1),
    server_rss_mb: +(memoryKb(dashboard.pid, "VmRSS") / 1024).toFixed(1),
    server_peak_rss_mb: +(memoryKb(dashboard.pid, "VmHWM") / 1024).toFixed(1),
    server_threads: memoryKb(dashboard.pid, "Threads"),
  }, null, 1));
} finally {
  if (browser) await browser.close();
  dashboard.kill("SIGINT");
  await withTimeout(closed, 30000, "the dashboard to stop");
  await w.cleanup();
}
