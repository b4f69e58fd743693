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

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

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

// Optional per-task budgets: when the task's agents together pass one, herd
// stops the task's active agents and refuses new deploys until it is raised.
struct Budget {
  std::optional<double> max_cost_usd;   // from the agents' reported cost
  std::optional<long long> max_tokens;  // input + output + cache tokens
  // Defaults from HERD_TASK_MAX_COST_USD and HERD_TASK_MAX_TOKENS.
  static Budget FromEnvironment();
};

// Per-agent time limits applied to every agent of the task (0 = none).
struct AgentTimeouts {
  int wall_clock_seconds = 0;  // total run time
  int idle_seconds = 0;        // time without any output
  // Defaults from HERD_AGENT_TIMEOUT_SECONDS and HERD_AGENT_IDLE_TIMEOUT_SECONDS.
  static AgentTimeouts FromEnvironment();
};

struct TaskSpec {
  std::string description;
  std::string priority = "P2";
  std::string client_cwd;         // the project the agents work in; "" = none
  json context = json::object();  // background_context, expected_deliverables, ...
  Limits limits;
  Budget budget;
  AgentTimeouts timeouts;
  // Give each Claude Code agent its own CLAUDE_CONFIG_DIR.
  bool isolate_agent_config = false;
};

// A fresh registry document for `task_id`.
json NewTaskDocument(const std::string& task_id, const TaskSpec& spec,
                     const std::string& workspace_base);

// The store validator for task registries: an object with a string
// task_id and an agents array.
Status ValidateTaskDocument(const json& document);

// Recomputes total_spawned, active_count, completed_count, usage_totals
// and the task status from the agent list.
void RecomputeCounts(json& task);

// An agent's usage: its final result's figures where it has one, else its
// running usage: {total_cost_usd, total_tokens, input_tokens, output_tokens,
// num_turns}.
json AgentUsage(const json& agent);

// The sum of AgentUsage over `agents`.
json SumUsage(const std::vector<const json*>& agents);

// The usage of every agent's subtree (the agent and all its descendants),
// in the order of task["agents"].
std::vector<json> SubtreeUsage(const json& task);

// Which budget the task's usage has passed, as {limit, limit_value, used,
// message}, or null. The message says how to raise the limit.
json ExceededBudget(const json& task);

// Records an agent's running usage ({input_tokens, output_tokens, ...,
// total_tokens}) and, if a budget is now passed, marks the task with
// budget_exceeded. Returns the exceeded budget (as ExceededBudget) or null.
json RecordUsage(json& task, const std::string& agent_id, const json& usage);

// Marks every active agent terminated because `exceeded` (as returned by
// ExceededBudget) was passed, recording the limit and figures and the kill
// grace their supervisors will apply. Returns the entries it marked.
std::vector<json> TerminateActiveAgents(json& task, const json& exceeded, int kill_grace_ms,
                                        const std::string& timestamp);

// Replaces the task's limits and budgets with the given ones (those set),
// clearing budget_exceeded when the usage is back under every budget.
Status UpdateLimits(json& task, const std::optional<int>& max_agents,
                    const std::optional<int>& max_concurrent, const std::optional<int>& max_depth,
                    const Budget& budget);

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

// What agents may report. Models sometimes paste whole files into a
// message; the registry, rewritten by every transaction, must not grow with
// them, and status replies must stay readable.
inline constexpr size_t kMaxReportMessageBytes = 64 * 1024;
inline constexpr size_t kMaxFindingDataBytes = 256 * 1024;
inline constexpr size_t kMessagePreviewLength = 1000;  // kept in the registry entry

// The severities a finding may have, most important last but "info".
const std::vector<std::string>& FindingSeverities();
// "low, medium, high, critical, info" (for help texts and errors).
std::string FindingSeveritiesText();
// InvalidArgument, listing them, unless `severity` is one of them.
Status ValidateFindingSeverity(const std::string& severity);

// InvalidArgument, saying what to do, if a reported message is too long.
Status ValidateReportMessage(const std::string& message);

// Applies a progress report. `progress` is 0-100. Refuses unknown statuses,
// out-of-range progress, messages over kMaxReportMessageBytes, unknown
// agents and reports to terminal agents. The entry keeps the first
// kMessagePreviewLength bytes of the message (last_message). Returns the
// update for the progress journal {agent_id, status, progress, message,
// timestamp}, with the whole message.
Result<json> ApplyProgress(json& task, const std::string& agent_id, const std::string& status,
                           const std::string& message, int progress, const std::string& timestamp);

// An agent's two journals (Workspace::ProgressPath and FindingsPath). Each
// report appends its line under the task's lock and records the journal's
// new length in the agent's entry in the same transaction, so the journal
// and the registry agree: what is past the recorded length belongs to a
// transaction that never committed, and is neither read nor kept
// (AppendJournalLine, JournalReader in util/).
enum class Journal { kProgress, kFindings };

// The committed length of the agent's journal as its entry records it, or
// nullopt for an entry made before herd recorded it (the file as found is
// then taken as committed).
std::optional<uint64_t> CommittedJournalBytes(const json& agent, Journal journal);
void RecordJournalBytes(json& agent, Journal journal, uint64_t bytes);

// Marks an active agent terminated. Returns false (and changes nothing) if
// it had already ended. `limit`, when given, records which limit stopped
// it and the figures ({limit, limit_value, used}).
Result<bool> MarkTerminated(json& task, const std::string& agent_id, const std::string& reason,
                            const std::string& timestamp, const json& limit = nullptr);

// What the supervisor learnt about a started agent.
struct ProcessIdentity {
  int pid = 0;
  unsigned long long start_time = 0;  // field 22 of /proc/<pid>/stat
};

// The agent's process and its supervisor as recorded in its entry (pid 0
// when not recorded).
ProcessIdentity RecordedAgentProcess(const json& agent);
ProcessIdentity RecordedSupervisor(const json& agent);

// Records the started agent process and its supervisor.
Status RecordStart(json& task, const std::string& agent_id, const ProcessIdentity& agent,
                   const ProcessIdentity& supervisor);

struct ExitRecord {
  std::optional<int> exit_code;    // set when the agent exited
  std::optional<int> exit_signal;  // set when a signal ended it
  std::string ended_at;
  std::string error;      // extra reason for an error status
  json result = nullptr;  // stream-json `result` figures, if any
  json usage = nullptr;   // final running usage, if tracked
};

// Records how the agent process ended. An agent that is still active
// becomes completed (exit 0) or error (anything else); an agent that had
// already ended (killed, or reported its own terminal status) keeps it.
Status RecordExit(json& task, const std::string& agent_id, const ExitRecord& exit);

// Depth of `agent_id` (1 for a direct child of the orchestrator), 0 if unknown.
int AgentDepth(const json& task, const std::string& agent_id);

}  // namespace herd::registry
