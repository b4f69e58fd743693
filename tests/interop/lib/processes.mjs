// Processes by identity, for the end-to-end tests that check an agent left nothing behind: pid +
// start time (field 22 of /proc/<pid>/stat, as herd records it), never a name.
import fs from "node:fs";

export function procStat(pid) {
  let text;
  try { text = fs.readFileSync(`/proc/${pid}/stat`, "utf8"); } catch { return undefined; }
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");  // fields 3.. of stat
  return { state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), startTime: Number(fields[19]) };
}

export function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" "); }
  catch { return ""; }
}

// True while the process with this identity exists and is not a zombie.
export function running(pid, startTime) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const st = procStat(pid);
  return st !== undefined && st.startTime === startTime && st.state !== "Z" && st.state !== "X";
}

function allPids() {
  return fs.readdirSync("/proc").filter(n => /^\d+$/.test(n)).map(Number);
}

// Every live process whose environment mentions `marker` (a test's unique temp root, under which
// its HOME, XDG_STATE_HOME and workspace live), except `exclude` and this process. Whatever herd
// starts for the test inherits that environment: supervisors, agent CLIs, their MCP servers.
export function processesMarkedWith(marker, exclude = []) {
  const found = [];
  for (const pid of allPids()) {
    if (pid === process.pid || exclude.includes(pid)) continue;
    let environ;
    try { environ = fs.readFileSync(`/proc/${pid}/environ`, "utf8"); } catch { continue; }
    if (!environ.includes(marker)) continue;
    const st = procStat(pid);
    if (!st || st.state === "Z" || st.state === "X") continue;
    found.push({ pid, ppid: st.ppid, pgrp: st.pgrp, state: st.state, cmd: cmdline(pid) });
  }
  return found;
}

// The live process tree under `root` (root included), by parent links.
export function processTree(root) {
  const stats = new Map(allPids().map(pid => [pid, procStat(pid)]).filter(([, st]) => st));
  const tree = [];
  const visit = pid => {
    const st = stats.get(pid);
    if (!st || st.state === "Z") return;
    tree.push({ pid, startTime: st.startTime, pgrp: st.pgrp, cmd: cmdline(pid) });
    for (const [child, cst] of stats) if (cst.ppid === pid) visit(child);
  };
  visit(root);
  return tree;
}
