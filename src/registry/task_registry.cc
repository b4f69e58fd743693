#include "registry/task_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

#include "registry/turns.h"
#include "util/clock.h"
#include "util/json_fields.h"
#include "util/utf8.h"

namespace herd::registry {
namespace {

constexpr const char* kActiveStatuses[] = {"running", "working", "blocked"};
constexpr const char* kTerminalStatuses[] = {"completed", "error", "terminated", "failed"};
constexpr size_t kPromptPreviewLength = 200;

int LimitFromEnvironment(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == nullptr || *end != '\0' || value < 1 || value > 100000) return fallback;
  return static_cast<int>(value);
}

}  // namespace

const std::vector<std::string>& AgentStatuses() {
  static const std::vector<std::string> statuses = [] {
    std::vector<std::string> all(std::begin(kActiveStatuses), std::end(kActiveStatuses));
    all.insert(all.end(), std::begin(kTerminalStatuses), std::end(kTerminalStatuses));
    return all;
  }();
  return statuses;
}

bool IsActiveStatus(const std::string& status) {
  for (const char* active : kActiveStatuses) {
    if (status == active) return true;
  }
  return false;
}

bool IsTerminalStatus(const std::string& status) {
  for (const char* terminal : kTerminalStatuses) {
    if (status == terminal) return true;
  }
  return false;
}

Status ValidateAgentStatus(const std::string& status) {
  if (IsActiveStatus(status) || IsTerminalStatus(status)) return Status::Ok();
  return Status::InvalidArgument(
      "unknown status \"" + status +
      "\": use one of running, working, blocked (active) or completed, error, terminated, "
      "failed (final)");
}

namespace {

std::optional<double> PositiveFromEnvironment(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(text, &end);
  if (end == nullptr || *end != '\0' || !(value > 0)) return std::nullopt;
  return value;
}

std::string FormatNumber(double value) {
  char text[64];
  if (value == static_cast<double>(static_cast<long long>(value))) {
    std::snprintf(text, sizeof text, "%lld", static_cast<long long>(value));
  } else {
    std::snprintf(text, sizeof text, "%.4f", value);
  }
  return text;
}

}  // namespace

Budget Budget::FromEnvironment() {
  Budget budget;
  budget.max_cost_usd = PositiveFromEnvironment("HERD_TASK_MAX_COST_USD");
  if (auto tokens = PositiveFromEnvironment("HERD_TASK_MAX_TOKENS")) {
    budget.max_tokens = static_cast<long long>(*tokens);
  }
  return budget;
}

AgentTimeouts AgentTimeouts::FromEnvironment() {
  AgentTimeouts timeouts;
  timeouts.wall_clock_seconds =
      static_cast<int>(PositiveFromEnvironment("HERD_AGENT_TIMEOUT_SECONDS").value_or(0));
  timeouts.idle_seconds =
      static_cast<int>(PositiveFromEnvironment("HERD_AGENT_IDLE_TIMEOUT_SECONDS").value_or(0));
  return timeouts;
}

Limits Limits::FromEnvironment() {
  Limits limits;
  limits.max_agents = LimitFromEnvironment("CLAUDE_ORCHESTRATOR_MAX_AGENTS", limits.max_agents);
  limits.max_concurrent =
      LimitFromEnvironment("CLAUDE_ORCHESTRATOR_MAX_CONCURRENT", limits.max_concurrent);
  limits.max_depth = LimitFromEnvironment("CLAUDE_ORCHESTRATOR_MAX_DEPTH", limits.max_depth);
  return limits;
}

TaskRecord NewTask(const std::string& task_id, const TaskSpec& spec,
                   const std::string& workspace_base) {
  TaskRecord task;
  task.task_id = task_id;
  task.description = spec.description;
  task.created_at = NowIso8601();
  task.workspace = workspace_base + "/" + task_id;
  task.workspace_base = workspace_base;
  task.client_cwd = spec.client_cwd;
  task.priority = spec.priority;
  task.hierarchy[kOrchestratorParent] = {};
  task.limits = spec.limits;
  task.budget = spec.budget;
  task.timeouts = spec.timeouts;
  task.isolate_agent_config = spec.isolate_agent_config;
  task.notify_command = spec.notify_command;
  task.agent_worktrees = spec.agent_worktrees;
  if (!spec.context.empty()) task.context = spec.context;
  // The reference orchestrator's loop detector; herd keeps its fields.
  task.spiral_checks = {{"enabled", true}, {"last_check", nullptr}, {"violations", 0}};
  RecomputeCounts(task);
  return task;
}

Status ValidateTaskDocument(const json& document) {
  if (!document.is_object()) return Status::Corruption("the registry is not a JSON object");
  auto task_id = document.find("task_id");
  if (task_id == document.end() || !task_id->is_string()) {
    return Status::Corruption("the registry has no task_id");
  }
  auto agents = document.find("agents");
  if (agents == document.end() || !agents->is_array()) {
    return Status::Corruption("the registry has no agents list");
  }
  for (const json& agent : *agents) {
    auto id = agent.is_object() ? agent.find("id") : agent.end();
    if (!agent.is_object() || id == agent.end() || !id->is_string()) {
      return Status::Corruption("the registry has an agent entry without an id");
    }
  }
  return Status::Ok();
}

void RecomputeCounts(TaskRecord& task) {
  int active = 0;
  int completed = 0;
  Usage totals;
  for (const AgentRecord& agent : task.agents) {
    if (IsActiveStatus(agent.status)) ++active;
    if (agent.status == "completed") ++completed;
    totals.Add(AgentUsage(agent));
  }
  task.total_spawned = static_cast<int>(task.agents.size());
  task.active_count = active;
  task.completed_count = completed;
  task.usage_totals = totals;
  if (task.agents.empty()) {
    task.status = "INITIALIZED";
  } else {
    task.status = active > 0 ? "ACTIVE" : "COMPLETED";
  }
}

int AgentDepth(const TaskRecord& task, const std::string& agent_id) {
  const AgentRecord* agent = task.FindAgent(agent_id);
  return agent == nullptr ? 0 : agent->depth;
}

namespace {

// The depth a new child of `parent` would have, or why it may not start.
Result<int> ChildDepth(const TaskRecord& task, const std::string& parent_id) {
  if (parent_id == kOrchestratorParent) return 1;
  const AgentRecord* parent = task.FindAgent(parent_id);
  if (parent == nullptr) {
    return Status::Refused("parent agent " + parent_id + " is not part of task " + task.task_id +
                           ": use an agent id from `herd status " + task.task_id + "`");
  }
  if (!IsActiveStatus(parent->status)) {
    return Status::Refused("parent agent " + parent_id + " has already ended (" + parent->status +
                           "); only an active agent can start children");
  }
  return parent->depth + 1;
}

Status CheckLimits(const TaskRecord& task, const AdmissionRequest& request, int depth) {
  if (task.stopped) {
    return Status::Refused("task " + task.task_id + " was stopped at " + task.stopped->at + " (\"" +
                           task.stopped->reason +
                           "\") and takes no new agents: create a new task for new work "
                           "(create_real_task, `herd task create`)");
  }
  if (std::optional<LimitHit> exceeded = ExceededBudget(task)) {
    return Status::Refused(exceeded->message);
  }
  const Limits& limits = task.limits;
  if (depth > limits.max_depth) {
    return Status::Refused("max_depth reached: a child of " + request.parent +
                           " would be at depth " + std::to_string(depth) + " but task " +
                           task.task_id + " allows " + std::to_string(limits.max_depth) +
                           "; create the task with a higher --max-depth");
  }
  if (task.active_count >= limits.max_concurrent) {
    return Status::Refused("max_concurrent reached: task " + task.task_id + " already has " +
                           std::to_string(limits.max_concurrent) +
                           " active agents; wait for one to finish or kill one, or create the "
                           "task with a higher --max-concurrent");
  }
  if (task.total_spawned >= limits.max_agents) {
    return Status::Refused("max_agents reached: task " + task.task_id + " has started " +
                           std::to_string(limits.max_agents) +
                           " agents in its lifetime; create a new task or one with a higher "
                           "--max-agents");
  }
  if (task.FindAgent(request.agent_id) != nullptr) {
    return Status::Refused("agent id " + request.agent_id + " is already taken; deploy again");
  }
  return Status::Ok();
}

}  // namespace

Result<AgentRecord> AdmitAgent(TaskRecord& task, const AdmissionRequest& request) {
  HERD_ASSIGN_OR_RETURN(int depth, ChildDepth(task, request.parent));
  RecomputeCounts(task);
  HERD_RETURN_IF_ERROR(CheckLimits(task, request, depth));

  std::string now = NowIso8601();
  AgentRecord agent;
  agent.id = request.agent_id;
  agent.type = request.type;
  agent.parent = request.parent;
  agent.depth = depth;
  agent.status = "running";
  agent.phase = "starting";
  agent.started_at = now;
  agent.last_update = now;
  agent.progress = 0;
  agent.prompt = Utf8Prefix(request.prompt, kPromptPreviewLength);
  agent.tracked_files = request.tracked_files;
  agent.backend = request.backend;
  agent.model = request.model;
  agent.session_id = request.session_id;
  agent.cwd = request.cwd;
  agent.worktree = request.worktree;
  agent.launch = request.launch;
  agent.port = FreePort(task, agent.id, request.port_candidates, request.ports_held);
  // Its journals start empty: a line that a report killed before its
  // commit leaves is not counted (Journal).
  RecordJournalBytes(agent, Journal::kProgress, 0);
  RecordJournalBytes(agent, Journal::kFindings, 0);
  task.agents.push_back(agent);
  task.hierarchy[request.parent].push_back(request.agent_id);
  RecomputeCounts(task);
  return agent;
}

std::optional<int> FreePort(const TaskRecord& task, const std::string& agent_id,
                            const std::vector<int>& candidates, const std::set<int>& held) {
  for (int candidate : candidates) {
    if (held.count(candidate)) continue;
    bool taken = std::any_of(task.agents.begin(), task.agents.end(), [&](const AgentRecord& other) {
      return other.id != agent_id && other.port == candidate && IsActiveStatus(other.status);
    });
    if (!taken) return candidate;
  }
  return std::nullopt;
}

void ReleaseAgent(TaskRecord& task, const std::string& agent_id) {
  for (auto it = task.agents.begin(); it != task.agents.end(); ++it) {
    if (it->id != agent_id) continue;
    auto siblings = task.hierarchy.find(it->parent);
    if (siblings != task.hierarchy.end()) {
      std::vector<std::string>& ids = siblings->second;
      auto found = std::find(ids.begin(), ids.end(), agent_id);
      if (found != ids.end()) ids.erase(found);
    }
    task.agents.erase(it);
    break;
  }
  RecomputeCounts(task);
}

Status ValidateReportMessage(const std::string& message) {
  if (message.size() <= kMaxReportMessageBytes) return Status::Ok();
  return Status::InvalidArgument("the message is " + std::to_string(message.size()) +
                                 " bytes, over the limit of " +
                                 std::to_string(kMaxReportMessageBytes) +
                                 ": report a short summary and put the details in "
                                 "a file (or in a finding's data)");
}

Result<ProgressUpdate> ApplyProgress(TaskRecord& task, const std::string& agent_id,
                                     const std::string& status, const std::string& message,
                                     int progress, const std::string& timestamp) {
  HERD_RETURN_IF_ERROR(ValidateAgentStatus(status));
  HERD_RETURN_IF_ERROR(ValidateReportMessage(message));
  if (progress < 0 || progress > 100) {
    return Status::InvalidArgument("progress " + std::to_string(progress) +
                                   " is outside 0-100: report a percentage");
  }
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " + task.task_id +
                            ": check the Agent ID in your prompt");
  }
  if (IsTerminalStatus(agent->status)) {
    return Status::Refused("agent " + agent_id + " has already ended (" + agent->status +
                           "); a final status cannot change");
  }
  agent->status = status;
  agent->progress = progress;
  agent->last_update = timestamp;
  std::string preview = Utf8Prefix(message, kMessagePreviewLength);
  if (preview.size() < message.size()) preview += "...";
  agent->last_message = preview;
  if (status == "completed") agent->completed_at = timestamp;
  if (IsTerminalStatus(status) && status != "completed") agent->ended_reason = preview;
  RecomputeCounts(task);
  return ProgressUpdate{agent_id, status, progress, message, timestamp};
}

const std::vector<std::string>& FindingSeverities() {
  static const std::vector<std::string> severities = {"low", "medium", "high", "critical", "info"};
  return severities;
}

std::string FindingSeveritiesText() {
  std::string text;
  for (const std::string& severity : FindingSeverities()) {
    text += (text.empty() ? "" : ", ") + severity;
  }
  return text;
}

Status ValidateFindingSeverity(const std::string& severity) {
  const std::vector<std::string>& all = FindingSeverities();
  if (std::find(all.begin(), all.end(), severity) != all.end()) return Status::Ok();
  return Status::InvalidArgument("severity \"" + severity + "\" is not one of " +
                                 FindingSeveritiesText());
}

Result<Finding> ApplyFinding(const TaskRecord& task, const std::string& agent_id,
                             const FindingReport& report, const std::string& timestamp) {
  HERD_RETURN_IF_ERROR(ValidateFindingSeverity(report.severity));
  if (report.finding_type.empty()) {
    return Status::InvalidArgument("finding_type is empty: e.g. issue, insight, recommendation");
  }
  HERD_RETURN_IF_ERROR(ValidateReportMessage(report.message));
  size_t data_bytes = report.data.dump(-1, ' ', false, json::error_handler_t::replace).size();
  if (data_bytes > kMaxFindingDataBytes) {
    return Status::InvalidArgument(
        "data is " + std::to_string(data_bytes) + " bytes, over the limit of " +
        std::to_string(kMaxFindingDataBytes) +
        ": keep the essentials and put the rest in a file (name it in the data)");
  }
  if (task.FindAgent(agent_id) == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " + task.task_id +
                            ": check the Agent ID in your prompt");
  }
  Finding finding;
  finding.agent_id = agent_id;
  finding.finding_type = report.finding_type;
  finding.severity = report.severity;
  finding.message = report.message;
  finding.data = report.data.is_null() ? json::object() : report.data;
  finding.timestamp = timestamp;
  return finding;
}

std::optional<uint64_t> CommittedJournalBytes(const AgentRecord& agent, Journal journal) {
  return journal == Journal::kProgress ? agent.progress_journal_bytes
                                       : agent.findings_journal_bytes;
}

void RecordJournalBytes(AgentRecord& agent, Journal journal, uint64_t bytes) {
  (journal == Journal::kProgress ? agent.progress_journal_bytes : agent.findings_journal_bytes) =
      bytes;
}

namespace {

// Marks `agent` terminated; its queued messages will not run (unless
// `keep_queue`: an interrupt, whose message runs next).
void Terminate(AgentRecord& agent, const std::string& reason, const std::string& timestamp,
               const std::optional<LimitHit>& limit, bool keep_queue = false) {
  if (!keep_queue) {
    DropQueuedMessages(agent, "the agent was stopped before it ran: " + reason, timestamp);
  }
  agent.status = "terminated";
  agent.terminated_at = timestamp;
  agent.termination_reason = reason;
  agent.last_update = timestamp;
  if (limit) {
    LimitHit stored = *limit;
    stored.message.clear();  // the reason says it
    stored.at.clear();
    agent.stopped_by_limit = stored;
  }
}

}  // namespace

Result<bool> MarkTerminated(TaskRecord& task, const std::string& agent_id,
                            const std::string& reason, const std::string& timestamp,
                            const std::optional<LimitHit>& limit, bool keep_queue) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " + task.task_id +
                            ": run `herd status " + task.task_id + "` to list its agents");
  }
  if (IsTerminalStatus(agent->status)) return false;
  Terminate(*agent, reason, timestamp, limit, keep_queue);
  RecomputeCounts(task);
  return true;
}

Status RecordStart(TaskRecord& task, const std::string& agent_id,
                   const ProcessIdentity& agent_process, const ProcessIdentity& supervisor) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  agent->process = agent_process;
  agent->supervisor = supervisor;
  agent->phase = "running";
  agent->last_update = NowIso8601();
  return Status::Ok();
}

namespace {

std::string ErrorReason(const ExitRecord& exit) {
  if (!exit.error.empty()) return exit.error;
  if (exit.exit_signal) return "killed by signal " + std::to_string(*exit.exit_signal);
  if (exit.exit_code) return "exited with status " + std::to_string(*exit.exit_code);
  return "";
}

}  // namespace

Status RecordExit(TaskRecord& task, const std::string& agent_id, const ExitRecord& exit) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  agent->exit = ExitInfo{exit.exit_code, exit.exit_signal, exit.ended_at};
  if (agent->session_id.empty()) agent->session_id = exit.session_id;
  agent->phase = "exited";
  if (!exit.result.is_null()) agent->result = exit.result;
  if (!exit.usage.is_null()) agent->usage = exit.usage;
  if (IsActiveStatus(agent->status)) {
    bool success = exit.exit_code && *exit.exit_code == 0 && exit.error.empty();
    agent->status = success ? "completed" : "error";
    agent->last_update = exit.ended_at;
    if (success) {
      agent->completed_at = exit.ended_at;
      agent->progress = 100;
    } else {
      agent->error = ErrorReason(exit);
    }
  }
  RecomputeCounts(task);
  return Status::Ok();
}

namespace {

// One turn's figures: its final result's where it has one, else its
// running usage.
Usage TurnUsage(const json& result, const json& running_usage) {
  const json& usage =
      result.is_object() && result.contains("usage") ? result["usage"] : running_usage;
  Usage figures;
  figures.input_tokens = static_cast<long long>(NumberOr(usage, "input_tokens", 0));
  figures.output_tokens = static_cast<long long>(NumberOr(usage, "output_tokens", 0));
  long long cache = static_cast<long long>(NumberOr(usage, "cache_read_input_tokens", 0) +
                                           NumberOr(usage, "cache_creation_input_tokens", 0));
  // A tracker's own total knows its backend's counting (Codex's cached
  // tokens are part of its input); prefer it when present.
  figures.total_tokens = static_cast<long long>(
      NumberOr(usage, "total_tokens",
               static_cast<double>(figures.input_tokens + figures.output_tokens + cache)));
  figures.total_cost_usd = NumberOr(result, "total_cost_usd", 0);
  figures.num_turns = static_cast<long long>(NumberOr(result, "num_turns", 0));
  return figures;
}

}  // namespace

Usage AgentUsage(const AgentRecord& agent) {
  Usage figures = TurnUsage(agent.result, agent.usage);
  for (const TurnRecord& turn : agent.turns) figures.Add(TurnUsage(turn.result, turn.usage));
  return figures;
}

std::vector<Usage> SubtreeUsage(const TaskRecord& task) {
  size_t count = task.agents.size();
  std::vector<Usage> subtree(count);
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < count; ++i) {
    subtree[i] = AgentUsage(task.agents[i]);
    index_of.emplace(task.agents[i].id, i);
  }
  // Parents are admitted before their children, so adding each agent's
  // subtree to its parent from the newest agent backwards sums every
  // subtree bottom-up in one pass.
  for (size_t i = count; i-- > 0;) {
    auto parent = index_of.find(task.agents[i].parent);
    if (parent != index_of.end() && parent->second < i) subtree[parent->second].Add(subtree[i]);
  }
  return subtree;
}

std::optional<LimitHit> ExceededBudget(const TaskRecord& task) {
  auto exceeded = [&](const char* limit, std::optional<double> limit_value, double used,
                      const char* flag) -> std::optional<LimitHit> {
    if (!limit_value || used < *limit_value) return std::nullopt;
    LimitHit hit;
    hit.limit = limit;
    hit.limit_value = *limit_value;
    hit.used = used;
    hit.message = std::string(limit) + " budget of task " + task.task_id + " is used up (" +
                  FormatNumber(used) + " used of " + FormatNumber(*limit_value) +
                  "); raise it with `herd task limits " + task.task_id + " " + flag + " N`";
    return hit;
  };
  std::optional<double> max_tokens;
  if (task.budget.max_tokens) max_tokens = static_cast<double>(*task.budget.max_tokens);
  std::optional<LimitHit> over =
      exceeded("max_tokens", max_tokens, static_cast<double>(task.usage_totals.total_tokens),
               "--max-tokens");
  if (!over) {
    over = exceeded("max_cost_usd", task.budget.max_cost_usd, task.usage_totals.total_cost_usd,
                    "--max-cost-usd");
  }
  return over;
}

Status RecordUsage(TaskRecord& task, const std::string& agent_id, const json& usage) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  agent->usage = usage;
  RecomputeCounts(task);
  return Status::Ok();
}

std::vector<AgentRecord> StopIfOverBudget(TaskRecord& task, int kill_grace_ms,
                                          const std::string& timestamp) {
  std::optional<LimitHit> exceeded = ExceededBudget(task);
  if (!exceeded) return {};
  if (!task.budget_exceeded) {
    task.budget_exceeded = *exceeded;
    task.budget_exceeded->at = timestamp;
  }
  std::vector<AgentRecord> marked;
  std::string reason = "stopped by herd: " + exceeded->message;
  for (AgentRecord& agent : task.agents) {
    if (!IsActiveStatus(agent.status)) continue;
    Terminate(agent, reason, timestamp, *exceeded);
    agent.kill_grace_ms = kill_grace_ms;
    marked.push_back(agent);
  }
  RecomputeCounts(task);
  return marked;
}

std::vector<AgentRecord> StopTask(TaskRecord& task, const std::string& reason, int kill_grace_ms,
                                  const std::string& timestamp) {
  if (!task.stopped) task.stopped = TaskStop{reason, timestamp};
  std::vector<AgentRecord> marked;
  for (AgentRecord& agent : task.agents) {
    if (!IsActiveStatus(agent.status)) continue;
    Terminate(agent, reason, timestamp, std::nullopt);
    agent.kill_grace_ms = kill_grace_ms;
    marked.push_back(agent);
  }
  RecomputeCounts(task);
  return marked;
}

Status UpdateLimits(TaskRecord& task, const std::optional<int>& max_agents,
                    const std::optional<int>& max_concurrent, const std::optional<int>& max_depth,
                    const Budget& budget) {
  for (const auto& [key, value] :
       {std::pair{"max_agents", max_agents}, std::pair{"max_concurrent", max_concurrent},
        std::pair{"max_depth", max_depth}}) {
    if (value && *value < 1)
      return Status::InvalidArgument(std::string(key) + " must be at least 1");
  }
  if (budget.max_cost_usd && !(*budget.max_cost_usd > 0)) {
    return Status::InvalidArgument("max_cost_usd must be positive");
  }
  if (budget.max_tokens && *budget.max_tokens < 1) {
    return Status::InvalidArgument("max_tokens must be positive");
  }
  if (max_agents) task.limits.max_agents = *max_agents;
  if (max_concurrent) task.limits.max_concurrent = *max_concurrent;
  if (max_depth) task.limits.max_depth = *max_depth;
  if (budget.max_cost_usd) task.budget.max_cost_usd = budget.max_cost_usd;
  if (budget.max_tokens) task.budget.max_tokens = budget.max_tokens;
  RecomputeCounts(task);
  if (!ExceededBudget(task)) task.budget_exceeded.reset();
  return Status::Ok();
}

namespace {

void MarkLostWith(AgentRecord& agent, const char* reason, const std::string& why_dropped,
                  const std::string& detail, const std::string& now) {
  DropQueuedMessages(agent, why_dropped, now);
  agent.status = "error";
  agent.error = reason;
  ExitInfo exit = agent.exit.value_or(ExitInfo{});
  exit.ended_at = now;
  agent.exit = exit;
  agent.last_update = now;
  agent.phase = "lost";
  agent.lost_detail = detail;
}

}  // namespace

void MarkAgentLost(AgentRecord& agent, const std::string& detail, const std::string& now) {
  MarkLostWith(agent, kLostReason, "the agent's process was lost",
               detail + " (found by herd doctor)", now);
}

void MarkAgentNodeLost(AgentRecord& agent, const std::string& detail, const std::string& now) {
  MarkLostWith(agent, kNodeLostReason, "the agent's node was lost", detail, now);
}

Status RecordWorktree(TaskRecord& task, const std::string& agent_id,
                      const WorktreeRecord& worktree) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not in task " + task.task_id);
  }
  agent->worktree = worktree;
  if (!worktree.base_sha.empty() && !worktree.removed_at) agent->cwd = worktree.path;
  return Status::Ok();
}

}  // namespace herd::registry
