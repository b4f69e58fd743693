// Orchestrator: every operation herd offers, in one place, for every surface.
//
// The CLI (cli/) and the MCP server (mcp/) are thin layers over this class:
// each operation validates its input, does its work through the registry
// and agents layers, and returns the reference orchestrator's result keys
// as JSON (without "success": surfaces add it), or a Status whose message
// says what to do. Every registry change is a store transaction; reads
// (TaskStatus, ListTasks, AgentOutput, ProgressTimeline) never write.
//
// Requests and their parameters are in orchestrator/requests.h; the
// overloads taking a request struct are what the surfaces call.
//
// Every registry access goes through the Registry of the task
// (registry/registries.h RegistryFor): the JSON workspace's files, or the
// PostgreSQL registry the stores carry; the agents' local files (prompt,
// launch plan, logs) are in the task's workspace base either way.
//
// WaitForAgents blocks (on the task's commits: Registry::WatchCommits,
// never a timer loop) until agents end or its timeout passes; it holds no
// lock while it waits.
//
// Thread-safe: its only state is caches (the stores' parsed documents, the
// journal reader's tails, the process watch's pidfds), each thread-safe and
// shared by copies, so one instance may serve concurrent MCP calls.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/killer.h"
#include "agents/launcher.h"
#include "agents/liveness.h"
#include "agents/process_watch.h"
#include "orchestrator/requests.h"
#include "orchestrator/worktree_requests.h"
#include "registry/registries.h"
#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "util/journal_reader.h"
#include "util/status.h"
#include "util/stop_signal.h"
#include "util/text_file.h"
#include "worktrees/worktree.h"

namespace herd {

using nlohmann::json;

// A task's status: the registry's view plus what herd sees of its
// processes and journals, in the task's agent order.
struct TaskStatusReport {
  registry::SharedTask snapshot;
  std::string workspace;                                 // the task directory
  std::vector<agents::Liveness> liveness;                // per agent
  std::vector<registry::Usage> subtree_usage;            // per agent: it and its descendants
  int lost = 0;                                          // active entries whose processes are gone
  std::vector<registry::ProgressUpdate> recent_updates;  // newest first
  std::vector<registry::Finding> recent_findings;        // newest first
  size_t total_progress_entries = 0;
  size_t total_findings = 0;
  // Per agent: its own worktree's summary (unset without one, or once removed).
  std::vector<std::optional<worktrees::Summary>> worktrees;

  const registry::TaskRecord& task() const { return snapshot->task; }
  // The reference orchestrator's get_real_task_status result.
  json ToJson() const;
};

// An agent just started: its entry as recorded at start, and where to
// find it.
struct DeployedAgent {
  registry::AgentRecord agent;
  std::string task_id;
  std::string workspace;     // the task directory
  std::string log_file;      // the agent's own output
  std::string tmux_session;  // "" unless asked for and opened

  json ToJson() const;
};

// A task as `herd task list` shows it. A registry that does not decode is
// listed with the reason (`error`) and its id only.
struct TaskListing {
  registry::TaskRecord task;
  std::string workspace_base;
  std::string error;

  json ToJson() const;
};

// An agent as a wait reports it: its entry, how many findings it
// recorded, and whether its processes are still there. It has ended when
// its status is terminal and no follow-up message waits to run.
struct WaitedAgent {
  registry::AgentRecord agent;
  size_t findings = 0;
  agents::Liveness liveness = agents::Liveness::kEnded;

  bool ended() const;
  json ToJson() const;
};

// What a wait saw when it returned. A timed-out wait is a result, not an
// error: it says who is still active.
struct WaitReport {
  enum class Outcome {
    kConditionMet,  // all (or, with mode any, one) of the agents have ended
    kTimedOut,      // the timeout passed first
    kStopped,       // the caller stopped it (WaitHooks::stop) first
  };
  Outcome outcome = Outcome::kConditionMet;
  std::string task_id;
  std::string mode;  // all | any
  double waited_seconds = 0;
  double timeout_seconds = 0;
  std::vector<WaitedAgent> agents;  // the agents waited for, in the task's order

  std::vector<std::string> StillActive() const;
  // "3 of 5 agents have ended; 2 still active: ...", for people and models.
  std::string Summary() const;
  // wait_for_agents' result.
  json ToJson() const;
};

// How a wait reports while it blocks, and how it is stopped early.
struct WaitHooks {
  // Called when another agent ends and at least every `progress_interval`
  // while waiting; unset: no progress, and no wake-ups for it.
  std::function<void(const std::string& message)> progress;
  std::chrono::milliseconds progress_interval{5000};
  // When given and stopped, the wait returns at once (Outcome::kStopped).
  const StopSignal* stop = nullptr;
};

// A window of an agent's output log in whole lines, for a reader that shows
// the newest part of a log of any size and pages back, or follows it: the
// lines before `before` (unset: the end), or with `from` set, from there on.
struct OutputWindowRequest {
  static constexpr size_t kDefaultMaxBytes = 256 * 1024;
  std::string task_id;
  std::string agent_id;
  std::optional<uint64_t> before;
  std::optional<uint64_t> from;
  size_t max_bytes = kDefaultMaxBytes;  // at most OutputRequest::kLargestMaxBytes
};

class Orchestrator {
 public:
  // `workspace` is where new tasks go (unless they name a client_cwd) and
  // the first place tasks are looked up.
  Orchestrator(registry::Workspace workspace, registry::RegistryStores stores);

  const registry::Workspace& workspace() const { return workspace_; }
  const registry::RegistryStores& stores() const { return stores_; }

  Result<json> CreateTask(const CreateTaskRequest& request) const;
  // Every task in every known workspace base, newest first; ListTasks is
  // its reply ({tasks, total}).
  std::vector<TaskListing> TaskListings() const;
  Result<json> ListTasks() const;
  // Starts an agent; Deploy is its reply (deploy_headless_agent's result).
  Result<DeployedAgent> StartAgent(const agents::DeployRequest& request) const;
  Result<json> Deploy(const agents::DeployRequest& request) const;
  // The task as last committed: no journals, no process checks.
  Result<registry::SharedTask> ReadTask(const std::string& task_id) const;
  // The directory holding the task's AGENT_REGISTRY.json, whichever
  // workspace base it is in: every commit to the task renames a file into
  // it. InvalidArgument for a malformed id, NotFound for an unknown task.
  Result<std::string> TaskDirectory(const std::string& task_id) const;
  // The task, its agents' liveness and its recent reports, typed
  // (TaskStatus is this as the reference's reply).
  Result<TaskStatusReport> StatusReport(const std::string& task_id) const;
  Result<json> TaskStatus(const std::string& task_id) const;
  Result<json> AgentOutput(const OutputRequest& request) const;
  // Whether the agent's output is read from the tail the registry keeps
  // rather than from its log: a shared (PostgreSQL) registry and no log of
  // it on this machine (it ran on another). False for ids that do not
  // resolve: the output's own read says what is wrong with them.
  bool OutputIsInRegistry(const std::string& task_id, const std::string& agent_id) const;
  // Lines of the agent's output log (empty, at 0, while it has none).
  // NotFound for an unknown task or agent.
  Result<LineWindow> AgentOutputWindow(const OutputWindowRequest& request) const;
  Result<json> Kill(const KillRequest& request) const;
  // Stops every agent of a task and refuses new ones (agents::StopTask);
  // the reply is its ToJson.
  Result<agents::TaskStopResult> StopTask(const StopTaskRequest& request) const;
  Result<json> ReportProgress(const ProgressReport& report) const;
  Result<json> ReportFinding(const FindingReport& report) const;
  // Sends a follow-up message to an agent: a new turn if it has ended, else
  // queued behind (or, with interrupt, in place of) its running turn
  // (agents/conversation.h).
  Result<agents::SentMessage> SendMessage(const SendMessageRequest& request) const;
  // Raises (or lowers) a task's limits and budgets in one transaction.
  // UpdateLimits is ChangeLimits' reply ({task_id, limits, budget, usage,
  // budget_exceeded}, LimitsReply).
  Result<registry::TaskSnapshot> ChangeLimits(const LimitsUpdate& update) const;
  Result<json> UpdateLimits(const LimitsUpdate& update) const;
  static json LimitsReply(const registry::TaskRecord& task);
  // Blocks until the request's condition holds, its timeout passes or
  // `hooks.stop` is stopped (each a WaitReport), woken by changes to the
  // task's registry. NotFound for an unknown task or agent id.
  Result<WaitReport> WaitForAgents(const WaitRequest& request, const WaitHooks& hooks = {}) const;
  // A wait for the task's commits (registry::Registry::WatchCommits): open
  // it, read, then block on it.
  Result<std::unique_ptr<registry::CommitWatch>> WatchCommits(const std::string& task_id) const;
  // Progress and findings merged, oldest first, each tagged entry_type.
  Result<json> ProgressTimeline(const std::string& task_id) const;

  // Agents' worktrees (orchestrator/worktree_operations.cc). Merging and
  // removing wait for nothing: they are refused while the agent's
  // processes run. Each registry change is one transaction (RecordWorktree).
  Result<json> AgentDiff(const DiffRequest& request) const;
  Result<json> MergeAgentWork(const MergeRequest& request) const;
  Result<json> ListWorktrees(const WorktreeListRequest& request) const;
  Result<json> RemoveWorktree(const WorktreeRemoveRequest& request) const;
  Result<json> PruneWorktrees(const WorktreePruneRequest& request) const;

 private:
  Result<registry::Workspace> Locate(const std::string& task_id) const;
  // The registry of the tasks in `workspace`.
  std::unique_ptr<const registry::Registry> RegistryOf(const registry::Workspace& workspace) const;
  // Other agents' status, recent progress and findings, for agents' reports.
  json CoordinationInfo(const registry::Registry& registry, const registry::TaskRecord& task,
                        const std::string& for_agent) const;

  registry::Workspace workspace_;
  registry::RegistryStores stores_;
  std::shared_ptr<agents::ProcessWatch> processes_;  // liveness of running agents
};

}  // namespace herd
