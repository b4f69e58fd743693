// The registry's data as plain structs: a task (AGENT_REGISTRY.json), its
// agents, and the lines of the progress and findings journals.
//
// Every layer above registry/ reads and changes these structs, never the
// JSON they are stored as. The conversion happens here and only here
// (DecodeTask / EncodeTask, DecodeAgent / EncodeAgent), at the store edge:
// registry/task_store.h decodes each document it reads and encodes each
// one it commits.
//
// Compatibility: the keys are the reference orchestrator's (task_id,
// agents[], agent_hierarchy, max_*, total_spawned, ...) plus herd's own
// (pid, process_start_time, exit_code, backend, ...). A key herd does not
// know, written by the reference orchestrator or another tool, is kept in
// `unknown` and written back unchanged, so such files round-trip: decoding
// and encoding a document gives the same JSON value, except that the
// derived fields (counts, usage totals, task status) are recomputed.
//
// Damage: a modelled field of the wrong type (a string where a number
// belongs, a negative pid) is an error naming the file, the entry and the
// field, and what to do; never an exception, never a silent default. A
// missing field, or null, takes its default.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/process_identity.h"
#include "util/status.h"

namespace herd::registry {

using nlohmann::json;

// The parent name of agents deployed directly by the orchestrator.
inline constexpr const char kOrchestratorParent[] = "orchestrator";

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

// What agents used, as plain numbers: summing many agents builds no JSON.
struct Usage {
  double total_cost_usd = 0;
  long long total_tokens = 0;
  long long input_tokens = 0;
  long long output_tokens = 0;
  long long num_turns = 0;

  void Add(const Usage& other);
  json ToJson() const;
};

// Which limit stopped an agent or passed a budget, with the figures.
struct LimitHit {
  std::string limit;  // "max_tokens", "max_cost_usd", "wall_clock", ...
  double limit_value = 0;
  double used = 0;
  std::string message;  // says how to raise it; not stored on agents
  std::string at;       // when the task passed it (budget_exceeded only)
  json unknown = json::object();
};

// A task stopped as a whole (herd kill --all, stop_task): when and why.
// A stopped task takes no new agents.
struct TaskStop {
  std::string reason;
  std::string at;
};

// The files herd keeps for an agent (reference key: tracked_files).
struct TrackedFiles {
  std::string prompt_file;
  std::string log_file;  // the agent's own output
  std::string progress_file;
  std::string findings_file;
  json unknown = json::object();
};

// How an agent's process ended, as its supervisor saw it.
struct ExitInfo {
  std::optional<int> exit_code;    // set when the process exited
  std::optional<int> exit_signal;  // set when a signal ended it
  std::string ended_at;
};

// A follow-up message to an agent (herd send, send_agent_message). Its
// whole text is in a file of the task (Workspace::MessagePath); the
// registry keeps its first bytes.
struct AgentMessage {
  std::string id;  // msg-<random>
  std::string text_file;
  // The whole text, for an agent on another machine (a placed agent):
  // the supervisor that runs the turn writes it to a file of its own
  // machine. "" = the text is in text_file only.
  std::string text;
  std::string preview;
  std::string sent_at;
  bool interrupt = false;  // asked to stop the turn that was running
  // Set on a message that will never run (undelivered_messages): why.
  std::string undelivered_reason;
  std::string undelivered_at;
  json unknown = json::object();
};

// One ended turn of an agent, kept (AgentRecord::turns) once a follow-up
// message began the next: the per-turn fields of the entry as they were
// when the turn ended.
struct TurnRecord {
  int number = 1;
  std::optional<AgentMessage> message;  // what began it; none for the first turn
  std::string started_at;
  std::string status;  // its final status
  int progress = 0;
  std::optional<std::string> completed_at;
  std::optional<std::string> ended_reason;
  std::optional<std::string> error;
  std::optional<std::string> terminated_at;
  std::optional<std::string> termination_reason;
  std::optional<LimitHit> stopped_by_limit;
  ProcessIdentity process;
  ProcessIdentity supervisor;
  std::optional<ExitInfo> exit;
  json result = nullptr;
  json usage = nullptr;
  json unknown = json::object();
};

// What a merge of an agent's worktree brought back (herd merge).
struct MergeRecord {
  std::string commit = {};    // the target's new head
  std::string strategy = {};  // squash | rebase | ff-only
  std::string into = {};      // the branch merged into
  std::vector<std::string> files = {};
  std::string at = {};
  json unknown = json::object();
};

// An agent's own git worktree (herd deploy --worktree): recorded at
// admission, completed once created (worktrees/worktree.h).
struct WorktreeRecord {
  std::string repository = {};  // the main checkout
  std::string path = {};
  std::string branch = {};
  std::string base_ref = {};
  std::string base_sha = {};    // "" until the worktree is created
  bool created_branch = false;  // herd made the branch, so may delete it
  std::optional<MergeRecord> merge = {};
  std::optional<std::string> removed_at = {};  // herd removed it (worktree remove/prune)
  json unknown = json::object();
};

// The node (machine) an agent was placed on by a shared registry
// (registry/nodes.h), and the incarnation of that node's daemon: an agent of
// an earlier incarnation is never run again.
struct NodePlacement {
  std::string name = {};
  int64_t incarnation = 0;
  json unknown = json::object();
};

struct AgentRecord {
  std::string id;
  std::string type;
  std::string parent = kOrchestratorParent;
  int depth = 1;
  std::string status;  // registry/task_registry.h: active or terminal
  std::string phase;   // starting | running | exited (| lost, from doctor)
  int progress = 0;    // 0-100
  std::string started_at;
  std::string last_update;
  std::string prompt;  // its first bytes
  std::string backend;
  std::string model;  // "" = the backend's default (stored as null)
  // The session its conversation is saved under, fixed at deploy (claude);
  // "" = none (not stored).
  std::string session_id;
  std::string cwd;
  TrackedFiles tracked_files;

  std::optional<std::string> last_message;  // a preview of the last report
  std::optional<std::string> completed_at;
  std::optional<std::string> ended_reason;  // an agent's own failure report
  std::optional<std::string> error;         // why it ended in error
  std::optional<std::string> terminated_at;
  std::optional<std::string> termination_reason;
  std::optional<std::string> lost_detail;   // doctor: what it found
  std::optional<std::string> tmux_session;  // herd deploy --tmux
  std::optional<LimitHit> stopped_by_limit;
  std::optional<int> kill_grace_ms;        // the grace its supervisor applies
  std::optional<WorktreeRecord> worktree;  // its own git worktree, if it has one
  std::optional<int> port;                 // HERD_PORT, reserved at admission
  std::optional<NodePlacement> node;       // where a shared registry placed it
  // A placed agent's launch inputs, for the node that starts it
  // (agents/launcher.h StartPlacedAgent): its whole prompt, command and
  // options; null for an agent started where it was deployed.
  json launch = nullptr;

  ProcessIdentity process;     // pid (= pgid), process_start_time
  ProcessIdentity supervisor;  // supervisor_pid, supervisor_start_time
  std::optional<ExitInfo> exit;

  // The backend's final result (stream-json `result` event) and running
  // usage, as the backend wrote them.
  json result = nullptr;
  json usage = nullptr;

  // Committed lengths of its journals (task_registry.h Journal); unset for
  // entries made before herd recorded them.
  std::optional<uint64_t> progress_journal_bytes;
  std::optional<uint64_t> findings_journal_bytes;

  // Conversation (registry/turns.h). The fields above from status to
  // usage describe the current turn; earlier turns are in `turns`.
  int turn = 1;                                    // stored only from 2 on
  std::string turn_started_at;                     // "" for the first turn
  std::optional<AgentMessage> turn_message;        // what began the current turn
  std::vector<TurnRecord> turns;                   // earlier turns, oldest first
  std::vector<AgentMessage> message_queue;         // waiting for the current turn to end
  std::vector<AgentMessage> undelivered_messages;  // dropped, with the reason

  json unknown = json::object();  // keys herd does not model, kept as found
};

struct TaskRecord {
  std::string task_id;
  std::string description;  // task_description
  std::string created_at;
  std::string workspace;       // the task directory
  std::string workspace_base;  // the base holding it
  std::string client_cwd;      // "" = none (stored as null)
  std::string priority = "P2";
  json context = nullptr;  // task_context: background_context, ...
  Limits limits;
  Budget budget;
  AgentTimeouts timeouts;
  bool isolate_agent_config = false;
  // The shell command run on each agent's end (agents/notify_hook.h); ""
  // = HERD_NOTIFY_COMMAND, if set. Stored only when set.
  std::string notify_command;
  // Deploys by the orchestrator get their own git worktree unless they say
  // otherwise (herd task create --worktree). Stored only when set.
  bool agent_worktrees = false;
  std::optional<LimitHit> budget_exceeded;
  std::optional<TaskStop> stopped;  // stored as stopped_at and stopped_reason
  // The reference orchestrator's loop detector state, shown as it is.
  json spiral_checks = nullptr;

  std::vector<AgentRecord> agents;  // in admission order
  // Parent name -> its children's ids, in admission order.
  std::map<std::string, std::vector<std::string>> hierarchy;

  // Derived from `agents` (RecomputeCounts); never trusted from the file.
  std::string status = "INITIALIZED";  // INITIALIZED | ACTIVE | COMPLETED
  int total_spawned = 0;
  int active_count = 0;
  int completed_count = 0;
  Usage usage_totals;

  json unknown = json::object();  // keys herd does not model, kept as found

  AgentRecord* FindAgent(const std::string& agent_id);
  const AgentRecord* FindAgent(const std::string& agent_id) const;
};

// A progress journal line.
struct ProgressUpdate {
  std::string agent_id;
  std::string status;
  int progress = 0;
  std::string message;
  std::string timestamp;
};

// A findings journal line.
struct Finding {
  std::string agent_id;
  std::string finding_type;
  std::string severity;
  std::string message;
  json data = json::object();
  std::string timestamp;
};

// `source` names the document in errors (its path, or "the reply").
Result<TaskRecord> DecodeTask(const json& document, const std::string& source);
json EncodeTask(const TaskRecord& task);

Result<AgentRecord> DecodeAgent(const json& entry, const std::string& source);
json EncodeAgent(const AgentRecord& agent);

// {limit, limit_value, used}, and message and at when set.
json EncodeLimitHit(const LimitHit& hit);
// The hit, or null when there is none (as replies show budget_exceeded).
json EncodeLimitHitOrNull(const std::optional<LimitHit>& hit);
// agent_hierarchy: {parent: [child ids]}.
json EncodeHierarchy(const TaskRecord& task);
// {max_agents, max_concurrent, max_depth}.
json EncodeLimits(const Limits& limits);
// An agent's worktree entry, as stored.
json EncodeWorktree(const WorktreeRecord& worktree);
// {max_cost_usd, max_tokens}, null where unset.
json EncodeBudget(const Budget& budget);

Result<ProgressUpdate> DecodeProgressUpdate(const json& line, const std::string& source);
json EncodeProgressUpdate(const ProgressUpdate& update);
Result<Finding> DecodeFinding(const json& line, const std::string& source);
json EncodeFinding(const Finding& finding);

}  // namespace herd::registry
