// What the three scripted model servers (model_server.mjs for Claude Code, openai_model_server.mjs
// for Codex, gemini_model_server.mjs for Gemini CLI) share, whatever API they speak: placeholder
// substitution in script values, the request log, and shutting the server down. Each server keeps
// its own wire format and the way it reads a conversation out of a request.
import fs from "node:fs";

// `value` with every {{name}} replaced by vars[name] (names not in vars are left as they are),
// through strings, arrays and objects.
export function substitute(value, vars) {
  if (typeof value === "string")
    return value.replace(/\{\{(\w+)\}\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  if (Array.isArray(value)) return value.map(v => substitute(v, vars));
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}

// A logger writing one JSON line per entry, with its time, to `logPath` or else to stderr.
export function requestLogger(logPath) {
  return entry => {
    const line = JSON.stringify({ t: new Date().toISOString(), ...entry }) + "\n";
    if (logPath) fs.appendFileSync(logPath, line);
    else process.stderr.write(line);
  };
}

// Ends the held responses, closes the server and exits with `code` once it has closed (at the
// latest after 2 s, should a client keep a connection open).
export function shutdownServer(server, hanging, code) {
  for (const res of hanging) res.destroy();
  server.close(() => process.exit(code));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(code), 2000).unref();
}
