// The task registry document (AGENT_REGISTRY.json) and its rules.
//
// These are pure functions on the JSON document: they never touch files.
// Callers apply them inside one store transaction (store/json_store.h), so
// every check and the change it guards happen under one lock hold. The
// document keeps the reference orchestrator's keys (task_id, agents[],
// agent_hierarchy, max_*, total_spawned, active_count, completed_count...)
// and adds herd's own (pid, process start time, exit status, backend...).
//
// Rules enforced here:
// - Agent statuses: active running|working|blocked, terminal
//   completed|error|terminated|failed. A terminal agent stays terminal.
//   Unknown statuses and progress outside 0-100 are refused.
// - Counts (total_spawned, active_count, completed_count) and the task
//   status are derived from the agent list by RecomputeCounts, which every
//   mutation calls before it commits, so they cannot drift.
// - Admission (AdmitAgent) checks max_concurrent, max_agents, max_depth and
//   the parent's existence and liveness, and reserves the slot by adding the
//   entry, all at once.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace herd::registry {

using nlohmann::json;

// The parent name of agents deployed directly by the orchestrator.
inline constexpr const char kOrchestratorParent[] = "orchestrator";

bool IsActiveStatus(const std::string& status);
bool IsTerminalStatus(const std::string& status);
// Accepts the seven statuses above; the error lists them.
Status ValidateAgentStatus(const std::string& status);

// Per-task limits, copied into the task when it is created.
struct Limits {
  int max_agents = 45;
  int max_concurrent = 20;
  int max_depth = 5;
  // Defaults overridden by CLAUDE_ORCHESTRATOR_MAX_AGENTS, _MAX_CONCURRENT,
  // _MAX_DEPTH (as the reference orchestrator).
  static Limits FromEnvironment();
};

struct TaskSpec {
  std::string description;
  std::string priority = "P2";
  std::string client_cwd;  // the project the agents work in; "" = none
  json context = json::object();  // background_context, expected_deliverables, ...
  Limits limits;
};

// A fresh registry document for `task_id`.
json NewTaskDocument(const std::string& task_id, const TaskSpec& spec,
                     const std::string& workspace_base);

// The store validator for task registries: an object with a string
// task_id and an agents array.
Status ValidateTaskDocument(const json& document);

// Recomputes total_spawned, active_count, completed_count and the task
// status from the agent list.
void RecomputeCounts(json& task);

// The agent entry with `agent_id`, or nullptr.
json* FindAgent(json& task, const std::string& agent_id);
const json* FindAgent(const json& task, const std::string& agent_id);

struct AdmissionRequest {
  std::string agent_id;
  std::string type;
  std::string parent = kOrchestratorParent;
  std::string prompt;
  std::string backend;
  std::string model;
  std::string cwd;
  json tracked_files = json::object();
};

// Checks every limit and rule and, if all pass, appends the agent entry
// (status "running", phase "starting") and returns a copy of it. A refusal
// is Status::Refused naming the limit and what to do.
Result<json> AdmitAgent(json& task, const AdmissionRequest& request);

// Removes an agent that was admitted but never started, releasing its slot.
void ReleaseAgent(json& task, const std::string& agent_id);

// Applies a progress report. `progress` is 0-100. Refuses unknown statuses,
// out-of-range progress, unknown agents and reports to terminal agents.
// Returns the stored update {agent_id, status, progress, message, timestamp}.
Result<json> ApplyProgress(json& task, const std::string& agent_id, const std::string& status,
                           const std::string& message, int progress,
                           const std::string& timestamp);

// Marks an active agent terminated. Returns false (and changes nothing) if
// it had already ended.
Result<bool> MarkTerminated(json& task, const std::string& agent_id, const std::string& reason,
                            const std::string& timestamp);

// What the supervisor learnt about a started agent.
struct ProcessIdentity {
  int pid = 0;
  unsigned long long start_time = 0;  // field 22 of /proc/<pid>/stat
};

// Records the started agent process and its supervisor.
Status RecordStart(json& task, const std::string& agent_id, const ProcessIdentity& agent,
                   const ProcessIdentity& supervisor);

struct ExitRecord {
  std::optional<int> exit_code;    // set when the agent exited
  std::optional<int> exit_signal;  // set when a signal ended it
  std::string ended_at;
  std::string error;               // extra reason for an error status
  json result = nullptr;           // stream-json `result` figures, if any
};

// Records how the agent process ended. An agent that is still active
// becomes completed (exit 0) or error (anything else); an agent that had
// already ended (killed, or reported its own terminal status) keeps it.
Status RecordExit(json& task, const std::string& agent_id, const ExitRecord& exit);

// Depth of `agent_id` (1 for a direct child of the orchestrator), 0 if unknown.
int AgentDepth(const json& task, const std::string& agent_id);

}  // namespace herd::registry
