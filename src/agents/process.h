// Process identity and control on Linux, by pid + start time and pidfd.
//
// herd never identifies a process by name. A process is (pid, start time):
// field 22 of /proc/<pid>/stat, in clock ticks since boot, which differs for
// a recycled pid. Signals go through pidfds opened after the identity check,
// so a pid recycled between the check and the signal is never hit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "registry/task_registry.h"
#include "util/status.h"

namespace herd::agents {

using registry::ProcessIdentity;

// The start time of `pid`, or 0 if it does not exist.
unsigned long long ProcessStartTime(pid_t pid);

// The identity of `pid` now (start_time 0 if it does not exist).
ProcessIdentity IdentityOf(pid_t pid);

// True if the process described by `identity` still exists (zombies count
// as gone).
bool IsAlive(const ProcessIdentity& identity);

// The process group of `pid`, or -1.
pid_t ProcessGroupOf(pid_t pid);

// Every live process whose process group is `pgid`.
std::vector<ProcessIdentity> ProcessGroupMembers(pid_t pgid);

// Every live descendant of `pid` (children, grandchildren, ...), through
// /proc/<pid>/task/*/children. Includes processes that left the group or
// the session. Other agents' supervisors and everything under them are left
// out: a supervisor started from inside an agent (spawn_child_agent) is
// adopted by that agent's supervisor, a subreaper, but belongs to its own
// agent.
std::vector<ProcessIdentity> Descendants(pid_t pid);

// Every live process whose environment carries HERD_TASK_ID=`task_id` and
// HERD_AGENT_ID=`agent_id`, herd's mark on everything an agent starts. The
// fallback for finding an agent's processes once its supervisor (the
// subreaper that keeps them in one tree) is gone. Supervisors are excluded.
std::vector<ProcessIdentity> ProcessesMarkedFor(const std::string& task_id,
                                                const std::string& agent_id);

// Whether `pid` runs this herd binary as `herd supervise`.
bool IsHerdSupervisor(pid_t pid);

// A pidfd for `identity`, or -1 if that process is gone (or the pid now
// belongs to someone else). O_CLOEXEC.
int OpenPidfd(const ProcessIdentity& identity);

// Waits until every pidfd in `pidfds` is readable (its process exited) or
// `deadline` passes. Returns true if all exited.
bool WaitForExit(const std::vector<int>& pidfds, std::chrono::steady_clock::time_point deadline);

// Sends `signal` through a pidfd.
bool SignalPidfd(int pidfd, int signal);

}  // namespace herd::agents
