// Process identity and control on Linux, by pid + start time and pidfd.
//
// herd never identifies a process by name. A process is (pid, start time):
// field 22 of /proc/<pid>/stat, in clock ticks since boot, which differs for
// a recycled pid. Signals go through pidfds opened after the identity check,
// so a pid recycled between the check and the signal is never hit.
//
// herd recognises its own processes through their supervisor: a process
// whose command line is
//   <herd binary> supervise --workspace <base> --task <T> --agent <A>
// as the launcher starts it. Only argv[1..] is compared, since the binary
// path may differ between herd builds. Everything below a supervisor (a
// child subreaper) belongs to that agent.
//
// Everything here reads /proc and holds no state: safe to call from any
// thread. StopProcesses blocks for up to its grace plus a few seconds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "util/process_identity.h"
#include "util/status.h"

namespace herd::agents {

// Pointers to `strings`' characters, null-terminated, for exec and spawn.
std::vector<char*> CStrings(std::vector<std::string>& strings);

// This process's environment with `extra` ("KEY=value") added or replacing
// the variables of the same name.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra);

// The path of the running herd binary (/proc/self/exe), or "herd" if it
// cannot be read.
std::string HerdBinaryPath();

// The start time of `pid`, or 0 if it does not exist.
unsigned long long ProcessStartTime(pid_t pid);

// The identity of `pid` now (start_time 0 if it does not exist).
ProcessIdentity IdentityOf(pid_t pid);

// True if the process described by `identity` still exists (zombies count
// as gone).
bool IsAlive(const ProcessIdentity& identity);

// Every live process whose process group is `pgid`.
std::vector<ProcessIdentity> ProcessGroupMembers(pid_t pgid);

// Every live process by process group, as one pass over /proc saw it: for
// asking about many agents at once (a whole task's stop) with one pass
// instead of one per agent. A snapshot: immutable once read, so a caller
// that needs the processes of now reads another.
class ProcessTable {
 public:
  static ProcessTable Read();
  // The live members of group `pgid` when the table was read.
  std::vector<ProcessIdentity> GroupMembers(pid_t pgid) const;

 private:
  std::unordered_map<pid_t, std::vector<ProcessIdentity>> by_group_;
};

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

// A running herd supervisor and the agent it supervises.
struct SupervisorProcess {
  ProcessIdentity identity;
  std::string workspace_base;  // normalised absolute path, as registry::Workspace
  std::string task_id;
  std::string agent_id;
};

// Recognises a supervisor's argv (identity left empty); nullopt for anything
// else. The three options may come in any order, each exactly once, with
// nothing else; the ids must be valid and the workspace absolute.
std::optional<SupervisorProcess> ParseSupervisorCommandLine(const std::vector<std::string>& argv);

// `pid` as a herd supervisor, whatever herd binary it runs; nullopt if it
// is something else or gone.
std::optional<SupervisorProcess> SupervisorOf(pid_t pid);

// Every live supervisor on the machine that this user can see. A process
// whose parent is a supervisor for the same agent (its child between fork
// and exec) is left out: it belongs to that supervisor.
std::vector<SupervisorProcess> FindSupervisors();

// A pidfd for `identity`, or -1 if that process is gone (or the pid now
// belongs to someone else). O_CLOEXEC.
int OpenPidfd(const ProcessIdentity& identity);

// Waits until every pidfd in `pidfds` is readable (its process exited) or
// `deadline` passes. Returns true if all exited.
bool WaitForExit(const std::vector<int>& pidfds, std::chrono::steady_clock::time_point deadline);

// Sends `signal` through a pidfd.
bool SignalPidfd(int pidfd, int signal);

// Sends `signal` through a pidfd with `value` attached, as sigqueue(3) does
// (si_code SI_QUEUE, si_value.sival_int), so a receiver installed with
// SA_SIGINFO can tell who asked.
bool SignalPidfdWithValue(int pidfd, int signal, int value);

struct StopFigures {
  int signalled = 0;  // processes sent SIGTERM
  int sigkilled = 0;  // of which (plus late arrivals) needed SIGKILL
  bool all_exited = true;
};

// The processes a caller wants stopped, as /proc shows them now. May list a
// process more than once.
using ProcessCollector = std::function<std::vector<ProcessIdentity>()>;

// The staged kill: SIGTERM through pidfds to every process `collect`
// returns, wait up to `grace` on the pidfds, then SIGKILL whatever is left
// plus whatever `collect` returns now that it did not before (started
// meanwhile), and wait up to 5 s more. Processes that are gone or whose pid
// was recycled are skipped; the calling process is never signalled.
StopFigures StopProcesses(const ProcessCollector& collect, std::chrono::milliseconds grace);

}  // namespace herd::agents
