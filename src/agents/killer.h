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
// finish recording. Logs are never
// moved. Killing an agent that has already ended changes nothing and says so.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::agents {

inline constexpr std::chrono::milliseconds kDefaultKillGrace{5000};

// Returns {agent_id, status, reason, previous_status, cleanup:{...}}.
Result<nlohmann::json> KillAgent(const registry::RegistryStores& stores,
                                 const registry::Workspace& workspace, const std::string& task_id,
                                 const std::string& agent_id, const std::string& reason,
                                 std::chrono::milliseconds grace = kDefaultKillGrace);

// Asks each agent's supervisor to stop its agent: the supervisor sends
// SIGTERM to the agent's group at once and SIGKILL once the entry's
// kill_grace_ms has passed, even if the caller has exited. An agent whose
// supervisor is gone gets SIGTERM directly. Returns at once.
void RequestStop(const std::vector<nlohmann::json>& agents);

// Signals every process of an agent described by its registry entry:
// SIGTERM, wait up to `grace`, SIGKILL (StopProcesses). Returns cleanup
// figures {signalled, sigkilled, all_exited, supervisor_finished,
// log_file_kept, elapsed_ms}. Used by KillAgent and by herd doctor.
nlohmann::json StopAgentProcesses(const nlohmann::json& agent, std::chrono::milliseconds grace);

}  // namespace herd::agents
