// Killing an agent: staged, exact, and leaving nothing behind.
//
// KillAgent marks the agent `terminated` with its reason in one
// transaction (so its supervisor records the exit without overriding the
// status), then sends SIGTERM to every process that belongs to the agent:
// its process group, and every descendant of the agent and of its
// supervisor, including grandchildren that moved to a session of their own.
// Processes are identified by pid + start time and signalled through pidfds
// (agents::StopProcesses, process.h). It waits on the pidfds up to the grace
// period, sends SIGKILL to whatever is left, and waits for the supervisor to
// finish recording. Logs are never moved. Killing an agent that has already
// ended changes nothing and says so.
//
// A kill never depends on the registry being writable: a runaway agent
// filling the disk is exactly when it must work. When the terminate
// transaction fails for want of a writable registry (ENOSPC, EIO, a
// read-only file system, a lock held too long), KillAgent reads the last
// committed version without locking, stops the agent's processes exactly as
// usual, and says so in its result: registry_recorded false and a warning
// naming the error and what to do. The supervisor, told by the marked
// SIGTERM that herd asked (kStopRequestMark), records the end as terminated
// once it can write (supervisor.h); `herd doctor --repair` reconciles an
// entry nobody could record.
//
// StopTask stops a whole task: one registry transaction marks every active
// agent terminated and the task stopped (registry::Registry::StopTask), then
// every agent is stopped outside the lock exactly as KillAgent stops one,
// kParallelStops at a time. Each supervisor is asked to stop before any
// grace starts, so the grace runs for all agents at once: the stop takes one
// grace period at most, however many agents there are. It returns once the
// agents' processes are gone, without waiting for their supervisors to
// record each exit. The same fallback applies when the registry cannot be
// written.
//
// Thread-safe: no state; StopTask runs its own threads and joins them.
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "registry/records.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::agents {

// The grace between SIGTERM and SIGKILL: its default and its largest value,
// for every surface (MCP schema and checks, CLI option and help).
inline constexpr std::chrono::milliseconds kDefaultKillGrace{5000};
inline constexpr double kMaxKillGraceSeconds = 600;
inline std::chrono::milliseconds KillGraceFromSeconds(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// The value RequestStop attaches to its SIGTERM (SignalPidfdWithValue), so
// a supervisor can tell herd's stop request from a signal sent by anyone else.
inline constexpr int kStopRequestMark = 0x68657264;  // "herd"

// Returns {agent_id, task_id, status, reason, registry_recorded, cleanup:{...}},
// plus already_ended when the agent had ended, and warning when the outcome
// is not (durably) in the registry. Fails without stopping anything only when
// the request is wrong (unknown task or agent) or even the last committed
// version cannot be read.
Result<nlohmann::json> KillAgent(const registry::RegistryStores& stores,
                                 const registry::Workspace& workspace, const std::string& task_id,
                                 const std::string& agent_id, const std::string& reason,
                                 std::chrono::milliseconds grace = kDefaultKillGrace);

// How many agents StopTask stops at once (threads), and how many failures
// its reply lists.
inline constexpr size_t kParallelStops = 32;
inline constexpr size_t kMaxListedStopFailures = 20;

// What stopping a whole task did.
struct TaskStopResult {
  struct Failure {
    std::string agent_id;
    std::string error;
  };
  std::string task_id;
  registry::TaskStop stop;       // as recorded (the first stop's, on a second one)
  bool already_stopped = false;  // stopped before this call
  bool registry_recorded = true;
  int marked = 0;          // agents this call marked terminated
  int stopped = 0;         // agents whose processes were signalled and have exited
  int already_exited = 0;  // agents with no process left when the stop began
  // Admitted but not started: each supervisor stops its agent as soon as it
  // records the start (it finds the entry terminated).
  int starting = 0;
  // Supervisors still recording their agent's exit when StopTask returned:
  // their agents are gone and the status is final already; each exits once
  // its exit code is recorded.
  int supervisors_recording = 0;
  std::vector<Failure> failures;  // agents with processes left after SIGKILL
  std::string warning;            // the record is missing or not durable: what to do
  long long elapsed_ms = 0;

  // {task_id, status:"stopped", reason, stopped_at, already_stopped,
  // registry_recorded, marked, stopped, already_exited, starting,
  // supervisors_recording, failed, failures (the first
  // kMaxListedStopFailures), elapsed_ms, warning?}.
  nlohmann::json ToJson() const;
};

// Stops every agent of task `task_id` and refuses new ones with `reason`
// (see the top of this file). Fails without stopping anything only when the
// task is unknown or even its last committed version cannot be read.
Result<TaskStopResult> StopTask(const registry::RegistryStores& stores,
                                const registry::Workspace& workspace, const std::string& task_id,
                                const std::string& reason,
                                std::chrono::milliseconds grace = kDefaultKillGrace);

// Asks each agent's supervisor to stop its agent (SIGTERM marked with
// kStopRequestMark): the supervisor sends SIGTERM to the agent's group at
// once and SIGKILL once the entry's kill_grace_ms has passed, even if the
// caller has exited. An agent whose supervisor is gone gets SIGTERM
// directly. Returns at once.
void RequestStop(const std::vector<registry::AgentRecord>& agents);

// Whether StopAgentProcesses waits (a few seconds at most) for the
// supervisor to record the exit and finish.
enum class AwaitSupervisor { kYes, kNo };

// Signals every process of agent `agent` of task `task_id`:
// SIGTERM, wait up to `grace`, SIGKILL (StopProcesses). The supervisor itself
// is only asked (RequestStop): it records the exit. Returns cleanup figures
// {signalled, sigkilled, all_exited, supervisor_finished, log_file_kept,
// elapsed_ms}. Used by KillAgent and by herd doctor.
nlohmann::json StopAgentProcesses(const std::string& task_id, const registry::AgentRecord& agent,
                                  std::chrono::milliseconds grace,
                                  AwaitSupervisor await = AwaitSupervisor::kYes);

}  // namespace herd::agents
