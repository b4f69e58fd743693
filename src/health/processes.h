// herd's own processes as herd doctor sees them, and stopping an orphan.
//
// Supervisors are recognised by agents/process.h (agents::SupervisorOf,
// agents::FindSupervisors): by command line, whatever herd binary runs
// them. Everything below a supervisor (it is a child subreaper) belongs to
// that agent. StopProcessTrees stops a supervisor (or a lone agent process)
// and everything below it with agents::StopProcesses, the staged kill that
// identifies processes by pid + start time and signals them through pidfds,
// so a recycled pid is never hit.
//
// Reads /proc only; safe to call from any thread.
#pragma once

#include <chrono>
#include <vector>

#include "agents/process.h"

namespace herd::health {

using agents::StopFigures;
using agents::SupervisorProcess;

// Staged kill of `roots` and all their descendants: SIGTERM, wait up to
// `grace`, then SIGKILL whatever is left (including descendants that
// appeared meanwhile) and wait again. Roots that are no longer alive are
// skipped; the calling process is never signalled.
StopFigures StopProcessTrees(const std::vector<ProcessIdentity>& roots,
                             std::chrono::milliseconds grace);

}  // namespace herd::health
