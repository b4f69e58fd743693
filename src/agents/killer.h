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
#pragma once

#include <chrono>
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
