// The task registry document (AGENT_REGISTRY.json) and its rules.
//
// These are pure functions on the typed task (registry/records.h): they
// never touch files.
// Callers apply them inside one store transaction (store/json_store.h), so
// every check and the change it guards happen under one lock hold. The
// document keeps the reference orchestrator's keys (task_id, agents[],
// agent_hierarchy, max_*, total_spawned, active_count, completed_count...)
// and adds herd's own (pid, process start time, exit status, backend...).
//
// Rules enforced here:
// - Agent statuses: active running|working|blocked, terminal
//   completed|error|terminated|failed. A terminal agent stays terminal;
//   only a follow-up message begins a new turn of it (registry/turns.h).
//   Unknown statuses and progress outside 0-100 are refused.
// - Counts (total_spawned, active_count, completed_count) and the task
//   status are derived from the agent list by RecomputeCounts, which every
//   mutation calls before it commits, so they cannot drift.
// - Admission (AdmitAgent) checks max_concurrent, max_agents, max_depth and
//   the parent's existence and liveness, and reserves the slot by adding the
//   entry, all at once.
// - A stopped task (StopTask) takes no new agents, whatever its limits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "registry/nodes.h"
#include "registry/records.h"
#include "util/status.h"

namespace herd::registry {

// The seven agent statuses, active ones first.
const std::vector<std::string>& AgentStatuses();
bool IsActiveStatus(const std::string& status);
bool IsTerminalStatus(const std::string& status);
// Accepts the seven statuses above; the error lists them.
Status ValidateAgentStatus(const std::string& status);

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
  // Run on each agent's end instead of HERD_NOTIFY_COMMAND ("" = that).
  std::string notify_command;
  // The orchestrator's deploys get their own git worktree by default.
  bool agent_worktrees = false;
};

// A fresh task `task_id` in `workspace_base`.
TaskRecord NewTask(const std::string& task_id, const TaskSpec& spec,
                   const std::string& workspace_base);

// The store validator for task registries: an object with a string
// task_id and an agents array of objects with string ids. Field types are
// checked when the document is decoded (DecodeTask), so a hand-edited
// field is reported, not replaced by the backup.
Status ValidateTaskDocument(const json& document);

// Recomputes total_spawned, active_count, completed_count, usage_totals
// and the task status from the agent list.
void RecomputeCounts(TaskRecord& task);

// An agent's usage: the sum over its turns (registry/turns.h) of each
// turn's final result's figures where it has one, else its running usage.
Usage AgentUsage(const AgentRecord& agent);

// The usage of every agent's subtree (the agent and all its descendants),
// in the order of task.agents.
std::vector<Usage> SubtreeUsage(const TaskRecord& task);

// Which budget the task's usage has passed (message saying how to raise
// it), if any.
std::optional<LimitHit> ExceededBudget(const TaskRecord& task);

// Records an agent's running usage ({input_tokens, output_tokens, ...,
// total_tokens}). NotFound for an unknown agent.
Status RecordUsage(TaskRecord& task, const std::string& agent_id, const json& usage);

// If the task's usage has passed a budget: marks the task budget_exceeded
// (once, with the time) and every active agent terminated, recording the
// limit, the figures and the kill grace their supervisors will apply.
// Returns the entries it marked (none when no budget is passed).
std::vector<AgentRecord> StopIfOverBudget(TaskRecord& task, int kill_grace_ms,
                                          const std::string& timestamp);

// Stops the task as a whole: records the stop on the task (the first
// stop's reason and time are kept) and marks every active agent terminated
// with `reason`, `timestamp` and the kill grace its supervisor applies.
// Returns the entries it marked (none on a second stop). From then on
// AdmitAgent refuses, quoting the reason.
std::vector<AgentRecord> StopTask(TaskRecord& task, const std::string& reason, int kill_grace_ms,
                                  const std::string& timestamp);

// Replaces the task's limits and budgets with the given ones (those set),
// clearing budget_exceeded when the usage is back under every budget.
Status UpdateLimits(TaskRecord& task, const std::optional<int>& max_agents,
                    const std::optional<int>& max_concurrent, const std::optional<int>& max_depth,
                    const Budget& budget);

struct AdmissionRequest {
  std::string agent_id;
  std::string type;
  std::string parent = kOrchestratorParent;
  std::string prompt;
  std::string backend;
  std::string model;
  std::string session_id;  // "" = none fixed (agents/backend.h LaunchRequest)
  std::string cwd;
  TrackedFiles tracked_files;
  std::optional<WorktreeRecord> worktree;  // its own worktree, as planned
  // HERD_PORT: the first of these that no active agent holds, of the task
  // or (ports_held) elsewhere on the machine, is reserved for the agent
  // (none if all are taken, or none given).
  std::vector<int> port_candidates;
  std::set<int> ports_held;
  // A client-made id of this admission request: an engine that may have to
  // retry a commit whose outcome it does not know (PostgreSQL) records it,
  // so a second attempt returns the agent admitted by the first instead of
  // admitting it again. "" = the engine makes one per Admit call.
  std::string request_id;
  // The node to run it on (registry/nodes.h ChoosePlacement), decided in
  // the admission's transaction; only a shared registry (PostgreSQL) has
  // nodes. Unset: it runs where it is deployed.
  std::optional<PlacementRequest> placement;
  // What the node needs to start a placed agent (AgentRecord::launch).
  json launch = nullptr;
};

// Checks every limit and rule and, if all pass, appends the agent entry
// (status "running", phase "starting") and returns a copy of it. A refusal
// is Status::Refused naming the limit and what to do.
Result<AgentRecord> AdmitAgent(TaskRecord& task, const AdmissionRequest& request);

// The first of `candidates` that is not in `held` (ports active agents
// elsewhere on the machine hold) and that no other active agent of `task`
// holds; none if all are taken.
std::optional<int> FreePort(const TaskRecord& task, const std::string& agent_id,
                            const std::vector<int>& candidates, const std::set<int>& held);

// Removes an agent that was admitted but never started, releasing its slot.
void ReleaseAgent(TaskRecord& task, const std::string& agent_id);

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
// line for the progress journal, with the whole message.
Result<ProgressUpdate> ApplyProgress(TaskRecord& task, const std::string& agent_id,
                                     const std::string& status, const std::string& message,
                                     int progress, const std::string& timestamp);

// A finding as an agent reports it.
struct FindingReport {
  std::string finding_type;
  std::string severity;
  std::string message;
  json data = json::object();
};

// Checks a finding (severity, type, message and data sizes) and that the
// agent belongs to the task; returns the line for its findings journal.
// Findings may come from agents that have ended (a last word).
Result<Finding> ApplyFinding(const TaskRecord& task, const std::string& agent_id,
                             const FindingReport& report, const std::string& timestamp);

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
std::optional<uint64_t> CommittedJournalBytes(const AgentRecord& agent, Journal journal);
void RecordJournalBytes(AgentRecord& agent, Journal journal, uint64_t bytes);

// Marks an active agent terminated. Returns false (and changes nothing) if
// it had already ended. `limit`, when given, records which limit stopped
// it and the figures. Its queued messages are dropped (registry/turns.h)
// unless `keep_queue` (an interrupt for the first of them).
Result<bool> MarkTerminated(TaskRecord& task, const std::string& agent_id,
                            const std::string& reason, const std::string& timestamp,
                            const std::optional<LimitHit>& limit = std::nullopt,
                            bool keep_queue = false);

// The reason doctor records on a lost agent.
inline constexpr const char kLostReason[] = "process lost";

// Marks `agent` error "process lost" (kLostReason), with `detail` (what
// doctor found) and its queued messages dropped (registry.h MarkLost).
void MarkAgentLost(AgentRecord& agent, const std::string& detail, const std::string& now);

// The reason recorded on an active agent whose node was lost: its lease
// expired, or its daemon registered again (a new incarnation).
inline constexpr const char kNodeLostReason[] = "node lost";

// Marks `agent` error "node lost" (kNodeLostReason), with `detail` (which
// node, and how it was lost) and its queued messages dropped.
void MarkAgentNodeLost(AgentRecord& agent, const std::string& detail, const std::string& now);

// Records the started agent process and its supervisor.
Status RecordStart(TaskRecord& task, const std::string& agent_id, const ProcessIdentity& agent,
                   const ProcessIdentity& supervisor);

struct ExitRecord {
  std::optional<int> exit_code;    // set when the agent exited
  std::optional<int> exit_signal;  // set when a signal ended it
  std::string ended_at;
  std::string error;      // extra reason for an error status
  json result = nullptr;  // stream-json `result` figures, if any
  json usage = nullptr;   // final running usage, if tracked
  // The session the backend reported (codex's thread id), kept as the
  // agent's session_id when it has none yet.
  std::string session_id;
};

// Records how the agent process ended. An agent that is still active
// becomes completed (exit 0) or error (anything else); an agent that had
// already ended (killed, or reported its own terminal status) keeps it.
// Its queued messages stay: BeginQueuedTurn (registry/turns.h) runs them.
Status RecordExit(TaskRecord& task, const std::string& agent_id, const ExitRecord& exit);

// Replaces the record of the agent's own worktree; once it is created (and
// not removed), the agent works in it: its cwd becomes the worktree's path
// (a node creates a placed agent's worktree after the admission recorded
// the task's directory). NotFound for an unknown agent.
Status RecordWorktree(TaskRecord& task, const std::string& agent_id,
                      const WorktreeRecord& worktree);

// Depth of `agent_id` (1 for a direct child of the orchestrator), 0 if unknown.
int AgentDepth(const TaskRecord& task, const std::string& agent_id);

}  // namespace herd::registry
