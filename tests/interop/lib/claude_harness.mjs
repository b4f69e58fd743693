// Helpers for node tests that drive the real Claude Code CLIs (2.0.30 and the newest, 2.1.332)
// against the scripted model server (model_server.mjs) and a stdio MCP server. No fixed sleeps:
// everything waits on process events or stdout lines, with watchdog timers that kill and fail
// instead of hanging.
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

export const INTEROP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const MODEL_SERVER = path.join(INTEROP_DIR, "model_server.mjs");
export const ECHO_MCP_SERVER = path.join(INTEROP_DIR, "fixtures/echo_mcp_server.mjs");

// The Claude Code CLIs the suites run against, each by path (node_modules/.bin/claude is whichever
// package npm linked last). What differs between them, as seen with the real CLIs here:
//   toolSearch   MCP tools are "deferred": the first request offers only their names and a
//                ToolSearch tool; the (scripted) model loads a tool's schema with one ToolSearch
//                call before its first use, so each MCP tool a conversation uses costs one more
//                model request and one more num_turns.
//   warmups      side requests without tools before the first turn ("Warmup").
//   sessionCost  a resumed session's result total_cost_usd counts its earlier runs too (the run's
//                own is the sum of model_usage_since_last_result's costUSD).
//   savesLargeResults  an MCP result over 25,000 tokens (or over 50,000 characters, unless the tool
//                declares more in _meta "anthropic/maxResultSizeChars") is saved to a file and the
//                model gets a pointer to it, not an is_error result.
export const CLAUDE_CLIS = [
  { version: "2.0.30", bin: path.join(INTEROP_DIR, "node_modules/@anthropic-ai/claude-code/cli.js"),
    node: true, toolSearch: false, warmups: 2, sessionCost: false, savesLargeResults: false },
  { version: "2.1.332", bin: path.join(INTEROP_DIR, "node_modules/claude-code-latest/bin/claude.exe"),
    node: false, toolSearch: true, warmups: 0, sessionCost: true, savesLargeResults: true },
];
// HERD_CLAUDE_VERSIONS=2.1.332 (a comma-separated list) runs the suites against some of them only.
export const TESTED_CLIS = (() => {
  const wanted = process.env.HERD_CLAUDE_VERSIONS?.split(",").map(v => v.trim()).filter(Boolean);
  if (!wanted) return CLAUDE_CLIS;
  const unknown = wanted.filter(v => !CLAUDE_CLIS.some(c => c.version === v));
  if (unknown.length) throw new Error(`HERD_CLAUDE_VERSIONS names unknown versions: ${unknown.join(", ")}`);
  return CLAUDE_CLIS.filter(c => wanted.includes(c.version));
})();

export function assertInstalled(clis = TESTED_CLIS) {
  for (const cli of clis) {
    if (!fs.existsSync(cli.bin))
      throw new Error(`${cli.bin} (Claude Code ${cli.version}) missing: run \`npm ci --no-audit --no-fund\` in ${INTEROP_DIR}`);
  }
}

// The number of model requests (and result num_turns) of a conversation that makes `calls` tool
// calls using `deferredTools` distinct MCP tools, then ends with text.
export function expectedTurns(cli, calls, deferredTools = 0) {
  return calls + 1 + (cli.toolSearch ? deferredTools : 0);
}

// A fresh directory with home/ (the CLI's HOME) and proj/ (its cwd). Call cleanup() when done.
export function makeSandbox(prefix = "herd-claude-") {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.mkdirSync(path.join(root, "home"));
  fs.mkdirSync(path.join(root, "proj"));
  return {
    root, home: path.join(root, "home"), proj: path.join(root, "proj"),
    file: name => path.join(root, name),
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

// Starts model_server.mjs (or `server`, e.g. openai_model_server.mjs, which takes the same
// options) with a scenario name or script path. Resolves once it printed its port.
// dumpDir: every request (method, path, headers, body) is written there, one file each.
export function startModelServer(scenario, { logPath, dumpDir, timeoutMs = 15000, server = MODEL_SERVER } = {}) {
  const args = [server, "--scenario", scenario];
  if (logPath) args.push("--log", logPath);
  if (dumpDir) args.push("--dump", dumpDir);
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", d => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill("SIGKILL"); reject(new Error(`model server silent; stderr: ${stderr}`)); }, timeoutMs);
    proc.on("exit", (code, sig) => { clearTimeout(timer); reject(new Error(`model server exited ${code ?? sig}: ${stderr}`)); });
    readline.createInterface({ input: proc.stdout }).once("line", line => {
      clearTimeout(timer);
      proc.removeAllListeners("exit");
      const { port } = JSON.parse(line);
      resolve({
        port, proc, url: `http://127.0.0.1:${port}`,
        stop: () => new Promise(res => {
          if (proc.exitCode !== null || proc.signalCode !== null) return res();
          proc.once("exit", () => res());
          proc.kill("SIGTERM");
        }),
      });
    });
  });
}

// Writes an --mcp-config file naming one stdio server "herd" and returns its path.
export function writeMcpConfig(file, { command = process.execPath, args = [ECHO_MCP_SERVER], env = {} } = {}) {
  fs.writeFileSync(file, JSON.stringify({ mcpServers: { herd: { command, args, env } } }));
  return file;
}

export function claudeEnv(port, home, extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: home,
    ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}`,
    ANTHROPIC_API_KEY: "test",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    DISABLE_AUTOUPDATER: "1",
    // As root (this machine, CI) the CLI refuses --dangerously-skip-permissions unless IS_SANDBOX
    // is set: "--dangerously-skip-permissions cannot be used with root/sudo privileges", exit 1.
    IS_SANDBOX: "1",
    ...extra,
  };
}

// Runs `claude -p` headless. prompt goes in argv (stdin is /dev/null), or on stdin when
// promptOnStdin is set (stdin is then closed right after). Resolves on exit with
// {code, signal, lines (parsed stdout JSON lines), stdout, stderr, result (the result line)}.
// onLine(obj, child) is called for each stdout JSON line, e.g. to send a signal at the right time.
// cli is one of CLAUDE_CLIS (2.0.30 by default).
export function runClaude({ cli = CLAUDE_CLIS[0], port, home, cwd, mcpConfig, prompt, promptOnStdin = false,
                            extraArgs = [], env = {}, onLine, timeoutMs = 90000 }) {
  const args = ["-p", "--output-format", "stream-json", "--verbose",
                "--dangerously-skip-permissions", "--strict-mcp-config"];
  // --mcp-config is variadic: the `=` form keeps it from swallowing the prompt argument.
  if (mcpConfig) args.push(`--mcp-config=${mcpConfig}`);
  args.push(...extraArgs);
  if (!promptOnStdin) args.push(prompt);
  const child = spawn(cli.node ? process.execPath : cli.bin, cli.node ? [cli.bin, ...args] : args, {
    cwd, env: claudeEnv(port, home, env), stdio: [promptOnStdin ? "pipe" : "ignore", "pipe", "pipe"],
  });
  if (promptOnStdin) child.stdin.end(prompt);
  let stdout = "", stderr = "";
  const lines = [];
  child.stderr.on("data", d => (stderr += d));
  child.stdout.on("data", d => (stdout += d));
  readline.createInterface({ input: child.stdout }).on("line", l => {
    let obj;
    try { obj = JSON.parse(l); } catch { obj = { unparsed: l }; }
    lines.push(obj);
    onLine?.(obj, child);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`claude did not exit within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on("error", e => { clearTimeout(timer); reject(e); });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, lines, stdout, stderr, result: lines.findLast(l => l.type === "result") });
    });
  });
}

// The init line's MCP servers as {name, status} (2.1 adds "source":"dynamic" for --mcp-config ones).
export function mcpServerStatus(init) {
  return (init?.mcp_servers ?? []).map(({ name, status }) => ({ name, status }));
}

export function readJsonLines(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map(l => JSON.parse(l));
}
