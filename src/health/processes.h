// Finding herd's own processes and stopping them, for herd doctor.
//
// herd recognises its processes through their supervisor, never by name: a
// supervisor is a process whose command line is
//   <herd binary> supervise --workspace <base> --task <T> --agent <A>
// (the binary path may differ between herd builds, so only argv[1..] is
// compared). Everything below a supervisor (it is a child subreaper) belongs
// to that agent. Processes are identified by pid + start time and signalled
// through pidfds opened after the identity check (agents/process.h), so a
// recycled pid is never hit.
//
// Reads /proc only; safe to call from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "agents/process.h"

namespace herd::health {

struct SupervisorProcess {
  agents::ProcessIdentity identity;
  std::string workspace_base;  // normalised absolute path, as registry::Workspace
  std::string task_id;
  std::string agent_id;
};

// Recognises a supervisor's argv; nullopt for anything else. The three
// options may come in any order, each exactly once, with nothing else.
std::optional<SupervisorProcess> ParseSupervisorCommandLine(const std::vector<std::string>& argv);

// Every live supervisor on the machine that this user can see. A process
// whose parent is a supervisor for the same agent (its child between fork
// and exec) is left out: it belongs to that supervisor.
std::vector<SupervisorProcess> FindSupervisors();

struct StopFigures {
  int signalled = 0;   // processes sent SIGTERM
  int sigkilled = 0;   // of which (plus late arrivals) needed SIGKILL
  bool all_exited = true;
};

// Staged kill of `roots` and all their descendants: SIGTERM through
// pidfds, wait up to `grace` on the pidfds, then SIGKILL whatever is left
// (including descendants that appeared meanwhile) and wait again. Roots that
// are no longer alive are skipped; the calling process is never signalled.
StopFigures StopProcessTrees(const std::vector<agents::ProcessIdentity>& roots,
                             std::chrono::milliseconds grace);

}  // namespace herd::health
