#include "registry/task_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_map>

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

json NewTaskDocument(const std::string& task_id, const TaskSpec& spec,
                     const std::string& workspace_base) {
  json task = {
      {"task_id", task_id},
      {"task_description", spec.description},
      {"created_at", NowIso8601()},
      {"workspace", workspace_base + "/" + task_id},
      {"workspace_base", workspace_base},
      {"client_cwd", spec.client_cwd.empty() ? json(nullptr) : json(spec.client_cwd)},
      {"status", "INITIALIZED"},
      {"priority", spec.priority},
      {"agents", json::array()},
      {"agent_hierarchy", {{kOrchestratorParent, json::array()}}},
      {"max_agents", spec.limits.max_agents},
      {"max_concurrent", spec.limits.max_concurrent},
      {"max_depth", spec.limits.max_depth},
      {"total_spawned", 0},
      {"active_count", 0},
      {"completed_count", 0},
      {"spiral_checks", {{"enabled", true}, {"last_check", nullptr}, {"violations", 0}}},
  };
  if (!spec.context.empty()) task["task_context"] = spec.context;
  task["budget"] = {
      {"max_cost_usd", spec.budget.max_cost_usd ? json(*spec.budget.max_cost_usd) : json(nullptr)},
      {"max_tokens", spec.budget.max_tokens ? json(*spec.budget.max_tokens) : json(nullptr)}};
  task["agent_timeout_seconds"] = spec.timeouts.wall_clock_seconds;
  task["agent_idle_timeout_seconds"] = spec.timeouts.idle_seconds;
  task["isolate_agent_config"] = spec.isolate_agent_config;
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
    if (!agent.is_object() || !agent.contains("id") || !agent["id"].is_string()) {
      return Status::Corruption("the registry has an agent entry without an id");
    }
  }
  return Status::Ok();
}

void RecomputeCounts(json& task) {
  int active = 0;
  int completed = 0;
  const json& agents = task["agents"];
  for (const json& agent : agents) {
    std::string status = StringOr(agent, "status");
    if (IsActiveStatus(status)) ++active;
    if (status == "completed") ++completed;
  }
  task["total_spawned"] = static_cast<int>(agents.size());
  task["active_count"] = active;
  task["completed_count"] = completed;
  std::vector<const json*> all;
  for (const json& agent : agents) all.push_back(&agent);
  task["usage_totals"] = SumUsage(all);
  if (agents.empty()) {
    task["status"] = "INITIALIZED";
  } else {
    task["status"] = active > 0 ? "ACTIVE" : "COMPLETED";
  }
}

json* FindAgent(json& task, const std::string& agent_id) {
  auto agents = task.find("agents");
  if (agents == task.end() || !agents->is_array()) return nullptr;
  for (json& agent : *agents) {
    if (agent.is_object() && StringOr(agent, "id") == agent_id) return &agent;
  }
  return nullptr;
}

const json* FindAgent(const json& task, const std::string& agent_id) {
  return FindAgent(const_cast<json&>(task), agent_id);
}

int AgentDepth(const json& task, const std::string& agent_id) {
  const json* agent = FindAgent(task, agent_id);
  return agent == nullptr ? 0 : IntOr(*agent, "depth", 1);
}

Result<json> AdmitAgent(json& task, const AdmissionRequest& request) {
  const std::string task_id = StringOr(task, "task_id");
  int depth = 1;
  if (request.parent != kOrchestratorParent) {
    const json* parent = FindAgent(task, request.parent);
    if (parent == nullptr) {
      return Status::Refused("parent agent " + request.parent + " is not part of task " + task_id +
                             ": use an agent id from `herd status " + task_id + "`");
    }
    std::string parent_status = StringOr(*parent, "status");
    if (!IsActiveStatus(parent_status)) {
      return Status::Refused("parent agent " + request.parent + " has already ended (" +
                             parent_status + "); only an active agent can start children");
    }
    depth = IntOr(*parent, "depth", 1) + 1;
  }

  RecomputeCounts(task);
  json exceeded = ExceededBudget(task);
  if (!exceeded.is_null()) {
    return Status::Refused(exceeded.value("message", std::string("a budget is used up")));
  }
  int max_depth = IntOr(task, "max_depth", 5);
  int max_concurrent = IntOr(task, "max_concurrent", 20);
  int max_agents = IntOr(task, "max_agents", 45);
  if (depth > max_depth) {
    return Status::Refused("max_depth reached: a child of " + request.parent +
                           " would be at depth " + std::to_string(depth) + " but task " + task_id +
                           " allows " + std::to_string(max_depth) +
                           "; create the task with a higher --max-depth");
  }
  if (task["active_count"].get<int>() >= max_concurrent) {
    return Status::Refused("max_concurrent reached: task " + task_id + " already has " +
                           std::to_string(max_concurrent) +
                           " active agents; wait for one to finish or kill one, or create the "
                           "task with a higher --max-concurrent");
  }
  if (task["total_spawned"].get<int>() >= max_agents) {
    return Status::Refused("max_agents reached: task " + task_id + " has started " +
                           std::to_string(max_agents) +
                           " agents in its lifetime; create a new task or one with a higher "
                           "--max-agents");
  }
  if (FindAgent(task, request.agent_id) != nullptr) {
    return Status::Refused("agent id " + request.agent_id + " is already taken; deploy again");
  }

  std::string now = NowIso8601();
  json agent = {
      {"id", request.agent_id},
      {"type", request.type},
      {"parent", request.parent},
      {"depth", depth},
      {"status", "running"},
      {"phase", "starting"},
      {"started_at", now},
      {"last_update", now},
      {"progress", 0},
      {"prompt", Utf8Prefix(request.prompt, kPromptPreviewLength)},
      {"tracked_files", request.tracked_files},
      {"backend", request.backend},
      {"model", request.model.empty() ? json(nullptr) : json(request.model)},
      {"cwd", request.cwd},
  };
  // Its journals start empty: a line that a report killed before its
  // commit leaves is not counted (Journal).
  RecordJournalBytes(agent, Journal::kProgress, 0);
  RecordJournalBytes(agent, Journal::kFindings, 0);
  task["agents"].push_back(agent);
  json& hierarchy = task["agent_hierarchy"];
  if (!hierarchy.is_object()) hierarchy = json::object();
  if (!hierarchy[request.parent].is_array()) hierarchy[request.parent] = json::array();
  hierarchy[request.parent].push_back(request.agent_id);
  RecomputeCounts(task);
  return agent;
}

void ReleaseAgent(json& task, const std::string& agent_id) {
  json& agents = task["agents"];
  for (auto it = agents.begin(); it != agents.end(); ++it) {
    if (StringOr(*it, "id") == agent_id) {
      std::string parent = StringOr(*it, "parent", kOrchestratorParent);
      agents.erase(it);
      json& siblings = task["agent_hierarchy"][parent];
      if (siblings.is_array()) {
        for (auto sibling = siblings.begin(); sibling != siblings.end(); ++sibling) {
          if (*sibling == agent_id) {
            siblings.erase(sibling);
            break;
          }
        }
      }
      break;
    }
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

Result<json> ApplyProgress(json& task, const std::string& agent_id, const std::string& status,
                           const std::string& message, int progress, const std::string& timestamp) {
  HERD_RETURN_IF_ERROR(ValidateAgentStatus(status));
  HERD_RETURN_IF_ERROR(ValidateReportMessage(message));
  if (progress < 0 || progress > 100) {
    return Status::InvalidArgument("progress " + std::to_string(progress) +
                                   " is outside 0-100: report a percentage");
  }
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " +
                            StringOr(task, "task_id") + ": check the Agent ID in your prompt");
  }
  std::string current = StringOr(*agent, "status");
  if (IsTerminalStatus(current)) {
    return Status::Refused("agent " + agent_id + " has already ended (" + current +
                           "); a final status cannot change");
  }
  (*agent)["status"] = status;
  (*agent)["progress"] = progress;
  (*agent)["last_update"] = timestamp;
  std::string preview = Utf8Prefix(message, kMessagePreviewLength);
  if (preview.size() < message.size()) preview += "...";
  (*agent)["last_message"] = preview;
  if (status == "completed") (*agent)["completed_at"] = timestamp;
  if (IsTerminalStatus(status) && status != "completed") (*agent)["ended_reason"] = preview;
  RecomputeCounts(task);
  return json{{"agent_id", agent_id},
              {"status", status},
              {"progress", progress},
              {"message", message},
              {"timestamp", timestamp}};
}

namespace {
const char* JournalBytesKey(Journal journal) {
  return journal == Journal::kProgress ? "progress_journal_bytes" : "findings_journal_bytes";
}
}  // namespace

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

std::optional<uint64_t> CommittedJournalBytes(const json& agent, Journal journal) {
  auto found = agent.find(JournalBytesKey(journal));
  if (found == agent.end() || !found->is_number_unsigned()) return std::nullopt;
  return found->get<uint64_t>();
}

void RecordJournalBytes(json& agent, Journal journal, uint64_t bytes) {
  agent[JournalBytesKey(journal)] = bytes;
}

Result<bool> MarkTerminated(json& task, const std::string& agent_id, const std::string& reason,
                            const std::string& timestamp, const json& limit) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " +
                            StringOr(task, "task_id") + ": run `herd status " +
                            StringOr(task, "task_id") + "` to list its agents");
  }
  if (IsTerminalStatus(StringOr(*agent, "status"))) return false;
  (*agent)["status"] = "terminated";
  (*agent)["terminated_at"] = timestamp;
  (*agent)["termination_reason"] = reason;
  (*agent)["last_update"] = timestamp;
  if (!limit.is_null()) (*agent)["stopped_by_limit"] = limit;
  RecomputeCounts(task);
  return true;
}

namespace {

ProcessIdentity IdentityFromEntry(const json& agent, const char* pid_key, const char* start_key) {
  ProcessIdentity identity;
  auto pid = agent.find(pid_key);
  if (pid != agent.end() && pid->is_number_integer()) identity.pid = pid->get<int>();
  auto start = agent.find(start_key);
  if (start != agent.end() && start->is_number_unsigned()) {
    identity.start_time = start->get<unsigned long long>();
  }
  return identity;
}

}  // namespace

ProcessIdentity RecordedAgentProcess(const json& agent) {
  return IdentityFromEntry(agent, "pid", "process_start_time");
}

ProcessIdentity RecordedSupervisor(const json& agent) {
  return IdentityFromEntry(agent, "supervisor_pid", "supervisor_start_time");
}

Status RecordStart(json& task, const std::string& agent_id, const ProcessIdentity& agent_process,
                   const ProcessIdentity& supervisor) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  (*agent)["pid"] = agent_process.pid;
  (*agent)["pgid"] = agent_process.pid;
  (*agent)["process_start_time"] = agent_process.start_time;
  (*agent)["supervisor_pid"] = supervisor.pid;
  (*agent)["supervisor_start_time"] = supervisor.start_time;
  (*agent)["phase"] = "running";
  (*agent)["last_update"] = NowIso8601();
  return Status::Ok();
}

Status RecordExit(json& task, const std::string& agent_id, const ExitRecord& exit) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  (*agent)["exit_code"] = exit.exit_code ? json(*exit.exit_code) : json(nullptr);
  (*agent)["exit_signal"] = exit.exit_signal ? json(*exit.exit_signal) : json(nullptr);
  (*agent)["ended_at"] = exit.ended_at;
  (*agent)["phase"] = "exited";
  if (!exit.result.is_null()) (*agent)["result"] = exit.result;
  if (!exit.usage.is_null()) (*agent)["usage"] = exit.usage;
  std::string status = StringOr(*agent, "status");
  if (IsActiveStatus(status)) {
    bool success = exit.exit_code && *exit.exit_code == 0 && exit.error.empty();
    (*agent)["status"] = success ? "completed" : "error";
    (*agent)["last_update"] = exit.ended_at;
    if (success) {
      (*agent)["completed_at"] = exit.ended_at;
      (*agent)["progress"] = 100;
    } else {
      std::string reason = exit.error;
      if (reason.empty() && exit.exit_signal) {
        reason = "killed by signal " + std::to_string(*exit.exit_signal);
      } else if (reason.empty() && exit.exit_code) {
        reason = "exited with status " + std::to_string(*exit.exit_code);
      }
      (*agent)["error"] = reason;
    }
  }
  RecomputeCounts(task);
  return Status::Ok();
}

namespace {

// Usage figures as plain numbers: summing many agents must not build JSON.
struct UsageFigures {
  double cost = 0;
  long long total_tokens = 0, input_tokens = 0, output_tokens = 0, turns = 0;

  void Add(const UsageFigures& other) {
    cost += other.cost;
    total_tokens += other.total_tokens;
    input_tokens += other.input_tokens;
    output_tokens += other.output_tokens;
    turns += other.turns;
  }
  json ToJson() const {
    return {{"total_cost_usd", cost},
            {"total_tokens", total_tokens},
            {"input_tokens", input_tokens},
            {"output_tokens", output_tokens},
            {"num_turns", turns}};
  }
};

UsageFigures FiguresOf(const json& agent) {
  static const json kNone = nullptr;
  auto result_it = agent.find("result");
  const json& result = result_it != agent.end() ? *result_it : kNone;
  auto running_it = agent.find("usage");
  const json& running = running_it != agent.end() ? *running_it : kNone;
  const json& usage = result.is_object() && result.contains("usage") ? result["usage"] : running;
  UsageFigures figures;
  figures.input_tokens = static_cast<long long>(NumberOr(usage, "input_tokens", 0));
  figures.output_tokens = static_cast<long long>(NumberOr(usage, "output_tokens", 0));
  long long cache = static_cast<long long>(NumberOr(usage, "cache_read_input_tokens", 0) +
                                           NumberOr(usage, "cache_creation_input_tokens", 0));
  // A tracker's own total knows its backend's counting (Codex's cached
  // tokens are part of its input); prefer it when present.
  figures.total_tokens = static_cast<long long>(
      NumberOr(usage, "total_tokens",
               static_cast<double>(figures.input_tokens + figures.output_tokens + cache)));
  figures.cost = NumberOr(result, "total_cost_usd", 0);
  figures.turns = static_cast<long long>(NumberOr(result, "num_turns", 0));
  return figures;
}

}  // namespace

json AgentUsage(const json& agent) {
  return FiguresOf(agent).ToJson();
}

json SumUsage(const std::vector<const json*>& agents) {
  UsageFigures sum;
  for (const json* agent : agents) sum.Add(FiguresOf(*agent));
  return sum.ToJson();
}

std::vector<json> SubtreeUsage(const json& task) {
  static const json kNoAgents = json::array();
  const json& agents = task.contains("agents") ? task["agents"] : kNoAgents;
  size_t count = agents.size();
  std::vector<UsageFigures> subtree(count);
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < count; ++i) {
    subtree[i] = FiguresOf(agents[i]);
    index_of.emplace(StringOr(agents[i], "id"), i);
  }
  // Parents are admitted before their children, so adding each agent's
  // subtree to its parent from the newest agent backwards sums every
  // subtree bottom-up in one pass.
  for (size_t i = count; i-- > 0;) {
    auto parent = index_of.find(StringOr(agents[i], "parent", kOrchestratorParent));
    if (parent != index_of.end() && parent->second < i) subtree[parent->second].Add(subtree[i]);
  }
  std::vector<json> result;
  result.reserve(count);
  for (const UsageFigures& figures : subtree) result.push_back(figures.ToJson());
  return result;
}

json ExceededBudget(const json& task) {
  const json budget = task.value("budget", json::object());
  const json totals = task.value("usage_totals", json::object());
  std::string task_id = StringOr(task, "task_id");
  auto exceeded = [&](const char* limit, const char* used_key, const char* flag) -> json {
    double limit_value = NumberOr(budget, limit, -1);
    double used = NumberOr(totals, used_key, 0);
    if (limit_value < 0 || used < limit_value) return nullptr;
    return {{"limit", limit},
            {"limit_value", limit_value},
            {"used", used},
            {"message", std::string(limit) + " budget of task " + task_id + " is used up (" +
                            FormatNumber(used) + " used of " + FormatNumber(limit_value) +
                            "); raise it with `herd task limits " + task_id + " " + flag + " N`"}};
  };
  json over = exceeded("max_tokens", "total_tokens", "--max-tokens");
  if (over.is_null()) over = exceeded("max_cost_usd", "total_cost_usd", "--max-cost-usd");
  return over;
}

json RecordUsage(json& task, const std::string& agent_id, const json& usage) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) return nullptr;
  (*agent)["usage"] = usage;
  RecomputeCounts(task);
  json over = ExceededBudget(task);
  if (!over.is_null() && !task.contains("budget_exceeded")) {
    json mark = over;
    mark["at"] = NowIso8601();
    task["budget_exceeded"] = mark;
  }
  return over;
}

std::vector<json> TerminateActiveAgents(json& task, const json& exceeded, int kill_grace_ms,
                                        const std::string& timestamp) {
  std::vector<json> marked;
  json limit = exceeded;
  limit.erase("message");
  std::string reason = "stopped by herd: " + exceeded.value("message", std::string("a limit"));
  for (json& agent : task["agents"]) {
    if (!IsActiveStatus(StringOr(agent, "status"))) continue;
    agent["status"] = "terminated";
    agent["terminated_at"] = timestamp;
    agent["termination_reason"] = reason;
    agent["last_update"] = timestamp;
    agent["stopped_by_limit"] = limit;
    agent["kill_grace_ms"] = kill_grace_ms;
    marked.push_back(agent);
  }
  RecomputeCounts(task);
  return marked;
}

Status UpdateLimits(json& task, const std::optional<int>& max_agents,
                    const std::optional<int>& max_concurrent, const std::optional<int>& max_depth,
                    const Budget& budget) {
  for (const auto& [key, value] :
       {std::pair{"max_agents", max_agents}, std::pair{"max_concurrent", max_concurrent},
        std::pair{"max_depth", max_depth}}) {
    if (!value) continue;
    if (*value < 1) return Status::InvalidArgument(std::string(key) + " must be at least 1");
    task[key] = *value;
  }
  json& stored = task["budget"];
  if (!stored.is_object()) stored = {{"max_cost_usd", nullptr}, {"max_tokens", nullptr}};
  if (budget.max_cost_usd) {
    if (!(*budget.max_cost_usd > 0))
      return Status::InvalidArgument("max_cost_usd must be positive");
    stored["max_cost_usd"] = *budget.max_cost_usd;
  }
  if (budget.max_tokens) {
    if (*budget.max_tokens < 1) return Status::InvalidArgument("max_tokens must be positive");
    stored["max_tokens"] = *budget.max_tokens;
  }
  RecomputeCounts(task);
  if (ExceededBudget(task).is_null()) task.erase("budget_exceeded");
  return Status::Ok();
}

}  // namespace herd::registry
