#include "orchestrator/orchestrator.h"

#include <re2/re2.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <regex>
#include <string_view>

#include "agents/killer.h"
#include "agents/liveness.h"
#include "agents/process.h"
#include "agents/stream_events.h"
#include "agents/tmux_view.h"
#include "registry/global_index.h"
#include "registry/ids.h"
#include "registry/incomplete_task.h"
#include "util/clock.h"
#include "util/json_parse.h"
#include "util/text_file.h"

namespace herd {
namespace {

using registry::RegistryStores;
using registry::Workspace;

constexpr size_t kRecentUpdates = 10;
constexpr size_t kRecentFindings = 5;
constexpr size_t kDefaultOutputBytes = OutputRequest::kDefaultMaxBytes;
constexpr size_t kMaxOutputBytes = OutputRequest::kLargestMaxBytes;
constexpr size_t kFilterScanBytes = 16 * 1024 * 1024;

const char* const kContextArrays[] = {"expected_deliverables", "success_criteria", "constraints",
                                      "relevant_files"};

// The "timestamp" value of a journal line, found without parsing it.
std::string_view TimestampOf(const std::string& line) {
  static constexpr std::string_view kKey = "\"timestamp\":\"";
  size_t start = line.find(kKey);
  if (start == std::string::npos) return {};
  start += kKey.size();
  size_t end = line.find('"', start);
  if (end == std::string::npos) return {};
  return std::string_view(line).substr(start, end - start);
}

// The newest `keep` journal lines across agents, newest first, parsed.
json Newest(const std::vector<std::string>& lines, size_t keep) {
  std::vector<std::pair<std::string_view, size_t>> stamped;
  stamped.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) stamped.emplace_back(TimestampOf(lines[i]), i);
  size_t count = std::min(keep, stamped.size());
  std::partial_sort(stamped.begin(), stamped.begin() + static_cast<long>(count), stamped.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  json entries = json::array();
  for (size_t i = 0; i < count; ++i) {
    Result<json> entry = ParseJson(lines[stamped[i].second], kMaxMessageDepth);
    if (entry.ok()) entries.push_back(std::move(entry).value());
  }
  return entries;
}

Status ValidateContext(const json& context, std::vector<std::string>* warnings) {
  if (!context.is_object()) return Status::InvalidArgument("task context must be an object");
  for (const char* key : kContextArrays) {
    if (!context.contains(key)) continue;
    const json& value = context[key];
    if (!value.is_array()) {
      return Status::InvalidArgument(std::string(key) + " must be a list of strings");
    }
    for (const json& item : value) {
      if (!item.is_string()) {
        return Status::InvalidArgument(std::string(key) + " must contain only strings");
      }
    }
  }
  if (context.contains("background_context") && !context["background_context"].is_string()) {
    return Status::InvalidArgument("background_context must be a string");
  }
  if (context.contains("conversation_history")) {
    const json& history = context["conversation_history"];
    if (!history.is_array()) {
      return Status::InvalidArgument("conversation_history must be a list of {role, content}");
    }
    for (const json& message : history) {
      if (!message.is_object() || !message.contains("role") || !message["role"].is_string() ||
          !message.contains("content") || !message["content"].is_string()) {
        return Status::InvalidArgument(
            "each conversation_history entry needs string \"role\" and \"content\"");
      }
    }
  }
  if (!context.contains("success_criteria") || context["success_criteria"].empty()) {
    warnings->push_back("no success_criteria given: agents cannot tell when they are done");
  }
  if (!context.contains("expected_deliverables") || context["expected_deliverables"].empty()) {
    warnings->push_back("no expected_deliverables given");
  }
  return Status::Ok();
}

std::string ParsedLine(const std::string& line) {
  Result<json> parsed = ParseJson(line, kMaxMessageDepth);
  if (!parsed.ok() || !parsed->is_object()) return line;
  const json& event = *parsed;
  std::string type = event.value("type", "");
  if (type == "assistant" && event.contains("message")) {
    std::string text;
    for (const json& block : event["message"].value("content", json::array())) {
      if (block.value("type", "") == "text") text += block.value("text", "");
      if (block.value("type", "") == "tool_use") text += "[tool " + block.value("name", "") + "]";
    }
    return "assistant: " + text;
  }
  if (type == "result") {
    return "result: " + event.value("subtype", std::string()) +
           " cost=" + std::to_string(event.value("total_cost_usd", 0.0)) +
           " turns=" + std::to_string(event.value("num_turns", 0));
  }
  if (type == "system") return "system: " + event.value("subtype", std::string());
  if (type == "user") return "user: [tool result]";
  return line;
}

}  // namespace

Orchestrator::Orchestrator(Workspace workspace, RegistryStores stores)
    : workspace_(std::move(workspace)),
      stores_(std::move(stores)),
      processes_(std::make_shared<agents::ProcessWatch>()) {}

Result<Workspace> Orchestrator::Locate(const std::string& task_id) const {
  HERD_RETURN_IF_ERROR(registry::ValidateTaskId(task_id));
  return registry::LocateTask(stores_, workspace_, task_id);
}

Result<json> Orchestrator::ReadTask(const Workspace& workspace, const std::string& task_id) const {
  Result<store::Snapshot> snapshot = stores_.tasks.Read(workspace.TaskRegistryPath(task_id));
  if (!snapshot.ok()) return snapshot.status();
  return std::move(snapshot->document);
}

Result<json> Orchestrator::CreateTask(const CreateTaskRequest& request) const {
  std::string description = request.description;
  if (description.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("description is empty: say what the agents should achieve");
  }
  static const std::regex kPriority("P[0-4]");
  if (!std::regex_match(request.priority, kPriority)) {
    return Status::InvalidArgument("priority \"" + request.priority + "\" is not one of P0-P4");
  }
  std::vector<std::string> warnings;
  if (description.size() < 10) warnings.push_back("description is very short");
  HERD_RETURN_IF_ERROR(ValidateContext(request.context, &warnings));
  registry::TaskSpec spec;
  spec.description = description;
  spec.priority = request.priority;
  spec.context = request.context;
  spec.limits = registry::Limits::FromEnvironment();
  spec.budget = request.budget;
  spec.timeouts = request.timeouts;
  spec.isolate_agent_config = request.isolate_agent_config;
  if (spec.budget.max_cost_usd && !(*spec.budget.max_cost_usd > 0)) {
    return Status::InvalidArgument("max_cost_usd must be a positive number of dollars");
  }
  if (spec.budget.max_tokens && *spec.budget.max_tokens < 1) {
    return Status::InvalidArgument("max_tokens must be at least 1");
  }
  if (spec.timeouts.wall_clock_seconds < 0 || spec.timeouts.idle_seconds < 0) {
    return Status::InvalidArgument("agent timeouts must be 0 (none) or a number of seconds");
  }
  auto apply_limit = [](const std::optional<int>& given, int* limit, const char* name) -> Status {
    if (!given) return Status::Ok();
    if (*given < 1) return Status::InvalidArgument(std::string(name) + " must be at least 1");
    *limit = *given;
    return Status::Ok();
  };
  HERD_RETURN_IF_ERROR(apply_limit(request.max_agents, &spec.limits.max_agents, "max_agents"));
  HERD_RETURN_IF_ERROR(
      apply_limit(request.max_concurrent, &spec.limits.max_concurrent, "max_concurrent"));
  HERD_RETURN_IF_ERROR(apply_limit(request.max_depth, &spec.limits.max_depth, "max_depth"));

  Workspace workspace = workspace_;
  if (!request.client_cwd.empty()) {
    std::string project = registry::AbsolutePath(request.client_cwd);
    if (!registry::IsDirectory(project)) {
      return Status::InvalidArgument("client_cwd " + project +
                                     " is not a directory: give the project's absolute path");
    }
    spec.client_cwd = project;
    workspace = Workspace::ForProject(project);
  }
  std::string task_id = registry::NewTaskId();
  json task;
  Status made = workspace.CreateTaskDirectories(task_id);
  if (made.ok()) {
    store::WarnIfNetworkFilesystem(workspace.base());
    made = registry::UpdateTaskAndIndex(
        stores_, workspace, task_id,
        [&](json& document) -> Result<store::Decision> {
          if (document.contains("task_id")) return Status::Refused("task id collision; retry");
          document = registry::NewTaskDocument(task_id, spec, workspace.base());
          return store::Decision::kCommit;
        },
        &task);
  }
  // Not durable: committed, the task exists.
  if (!made.ok() && !made.Is(Status::Code::kNotDurable)) {
    // Nothing was committed: take back the directories made for it, or they
    // stay as a task without a registry. Only herd's empty scaffolding goes;
    // the base and registry/ stay (other tasks share them).
    Status removed = registry::RemoveTaskScaffolding(stores_, workspace, task_id);
    if (!removed.ok()) {
      return made.WithContext("task not created, and " + workspace.TaskDirectory(task_id) +
                              " is left behind (" + removed.message() +
                              "; `herd doctor --repair` removes it)");
    }
    return made.WithContext("task not created (nothing of it was left behind)");
  }
  HERD_RETURN_IF_ERROR(made);
  Status remembered = registry::RememberWorkspace(stores_, workspace.base());
  if (!remembered.ok()) spdlog::warn("workspace not recorded: {}", remembered.ToString());

  json result = {{"task_id", task_id},
                 {"description", description},
                 {"priority", spec.priority},
                 {"workspace", workspace.TaskDirectory(task_id)},
                 {"workspace_base", workspace.base()},
                 {"client_cwd", spec.client_cwd.empty() ? json(nullptr) : json(spec.client_cwd)},
                 {"status", "INITIALIZED"},
                 {"has_enhanced_context", !request.context.empty()},
                 {"limits",
                  {{"max_agents", spec.limits.max_agents},
                   {"max_concurrent", spec.limits.max_concurrent},
                   {"max_depth", spec.limits.max_depth}}},
                 {"budget", task["budget"]},
                 {"agent_timeout_seconds", spec.timeouts.wall_clock_seconds},
                 {"agent_idle_timeout_seconds", spec.timeouts.idle_seconds},
                 {"isolate_agent_config", spec.isolate_agent_config}};
  for (const auto& [key, value] : request.context.items()) result[key] = value;
  if (!warnings.empty()) result["validation_warnings"] = warnings;
  return result;
}

Result<json> Orchestrator::ListTasks() const {
  json tasks = json::array();
  for (const std::string& base : registry::KnownWorkspaces(stores_, workspace_.base())) {
    Workspace workspace(base);
    for (const std::string& name : workspace.TaskIds()) {
      Result<store::Snapshot> snapshot = stores_.tasks.Read(workspace.TaskRegistryPath(name));
      if (!snapshot.ok()) continue;
      const json& task = snapshot->document;
      tasks.push_back({{"task_id", task.value("task_id", name)},
                       {"description", task.value("task_description", "")},
                       {"status", task.value("status", "")},
                       {"priority", task.value("priority", "")},
                       {"created_at", task.value("created_at", "")},
                       {"workspace_base", base},
                       {"client_cwd", task.value("client_cwd", json(nullptr))},
                       {"total_spawned", task.value("total_spawned", 0)},
                       {"active_count", task.value("active_count", 0)},
                       {"completed_count", task.value("completed_count", 0)}});
    }
  }
  std::sort(tasks.begin(), tasks.end(), [](const json& a, const json& b) {
    return a.value("created_at", "") > b.value("created_at", "");
  });
  return json{{"tasks", tasks}, {"total", tasks.size()}};
}

Result<json> Orchestrator::Deploy(const agents::DeployRequest& request) const {
  Result<Workspace> workspace = Locate(request.task_id);
  if (!workspace.ok()) return workspace.status();
  Result<json> agent = agents::DeployAgent(stores_, *workspace, request);
  if (!agent.ok()) return agent.status();
  json tmux_session = nullptr;
  if (request.tmux) {
    std::string agent_id = agent->value("id", "");
    Result<std::string> session = agents::OpenTmuxView(agents::HerdBinaryPath(), workspace->base(),
                                                       request.task_id, agent_id);
    if (!session.ok()) {
      // The agent runs regardless; only the view is missing.
      spdlog::warn("agent {} runs, but without a tmux view: {}", agent_id,
                   session.status().message());
    } else {
      tmux_session = *session;
      Status recorded = stores_.tasks.Update(workspace->TaskRegistryPath(request.task_id),
                                             [&](json& task) -> Result<store::Decision> {
                                               json* entry = registry::FindAgent(task, agent_id);
                                               if (entry == nullptr)
                                                 return store::Decision::kNoChange;
                                               (*entry)["tmux_session"] = *session;
                                               return store::Decision::kCommit;
                                             });
      if (!recorded.ok()) spdlog::warn("tmux session not recorded: {}", recorded.ToString());
    }
  }
  return json{{"tmux_session", tmux_session},
              {"agent_id", agent->value("id", "")},
              {"type", agent->value("type", "")},
              {"parent", agent->value("parent", "")},
              {"depth", agent->value("depth", 1)},
              {"task_id", request.task_id},
              {"status", "deployed"},
              {"agent_status", agent->value("status", "")},
              {"backend", agent->value("backend", "")},
              {"model", agent->value("model", json(nullptr))},
              {"pid", agent->value("pid", json(nullptr))},
              {"workspace", workspace->TaskDirectory(request.task_id)},
              {"cwd", agent->value("cwd", "")},
              {"log_file", workspace->StreamLogPath(request.task_id, agent->value("id", ""))}};
}

Result<json> Orchestrator::TaskStatus(const std::string& task_id) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  Result<json> task = ReadTask(*workspace, task_id);
  if (!task.ok()) return task.status();

  json agents_list = json::array();
  std::vector<std::string> updates, findings;
  size_t total_progress = 0, total_findings = 0;
  std::vector<json> subtree_usage = registry::SubtreeUsage(*task);
  size_t agent_index = 0;
  int zombies = 0;
  const double now = NowUnixSeconds();
  for (json& agent : (*task)["agents"]) {
    // The registry entry as the reference returns it, plus liveness.
    std::string agent_id = agent.value("id", "");
    std::optional<uint64_t> progress_bytes =
        registry::CommittedJournalBytes(agent, registry::Journal::kProgress);
    std::optional<uint64_t> findings_bytes =
        registry::CommittedJournalBytes(agent, registry::Journal::kFindings);
    json entry = std::move(agent);
    agents::Liveness liveness =
        agents::ClassifyLiveness(entry, now, agents::kStartingGrace, processes_.get());
    entry["liveness"] = agents::LivenessName(liveness);
    entry["subtree_usage"] = std::move(subtree_usage[agent_index++]);
    if (agents::IsLost(liveness)) ++zombies;
    agents_list.push_back(std::move(entry));
    JournalSlice progress =
        journals_.Read(workspace->ProgressPath(task_id, agent_id), kRecentUpdates, progress_bytes);
    total_progress += progress.total;
    updates.insert(updates.end(), progress.newest.begin(), progress.newest.end());
    JournalSlice found =
        journals_.Read(workspace->FindingsPath(task_id, agent_id), kRecentFindings, findings_bytes);
    total_findings += found.total;
    findings.insert(findings.end(), found.newest.begin(), found.newest.end());
  }
  const json& document = *task;
  // Built key by key so the large parts are moved, not copied.
  json agents = json::object();
  agents["total_spawned"] = document.value("total_spawned", 0);
  agents["active"] = document.value("active_count", 0);
  agents["completed"] = document.value("completed_count", 0);
  agents["lost"] = zombies;
  std::vector<const json*> listed;
  for (const json& agent : agents_list) listed.push_back(&agent);
  json usage = registry::SumUsage(listed);
  agents["agents_list"] = std::move(agents_list);
  json progress = json::object();
  progress["recent_updates"] = Newest(updates, kRecentUpdates);
  progress["recent_findings"] = Newest(findings, kRecentFindings);
  progress["total_progress_entries"] = total_progress;
  progress["total_findings"] = total_findings;
  json status = {{"task_id", task_id},
                 {"description", document.value("task_description", "")},
                 {"status", document.value("status", "")},
                 {"priority", document.value("priority", "")},
                 {"created_at", document.value("created_at", "")},
                 {"workspace", workspace->TaskDirectory(task_id)},
                 {"client_cwd", document.value("client_cwd", json(nullptr))},
                 {"hierarchy", document.value("agent_hierarchy", json::object())},
                 {"spiral_status", document.value("spiral_checks", json::object())},
                 {"limits",
                  {{"max_agents", document.value("max_agents", 0)},
                   {"max_concurrent", document.value("max_concurrent", 0)},
                   {"max_depth", document.value("max_depth", 0)}}},
                 {"usage", std::move(usage)},
                 {"budget", document.value("budget", json::object())},
                 {"budget_exceeded", document.value("budget_exceeded", json(nullptr))},
                 {"agent_timeout_seconds", document.value("agent_timeout_seconds", 0)},
                 {"agent_idle_timeout_seconds", document.value("agent_idle_timeout_seconds", 0)},
                 {"registry_sequence", document.value(store::kSequenceKey, 0ULL)}};
  status["agents"] = std::move(agents);
  status["enhanced_progress"] = std::move(progress);
  return status;
}

Result<json> Orchestrator::AgentOutput(const OutputRequest& request) const {
  Result<Workspace> workspace = Locate(request.task_id);
  if (!workspace.ok()) return workspace.status();
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(request.agent_id));
  if (request.format != "text" && request.format != "jsonl" && request.format != "parsed") {
    return Status::InvalidArgument("format must be text, jsonl or parsed");
  }
  if (request.response_format != "full" && request.response_format != "summary" &&
      request.response_format != "compact") {
    return Status::InvalidArgument("response_format must be full, summary or compact");
  }
  Result<json> task = ReadTask(*workspace, request.task_id);
  if (!task.ok()) return task.status();
  const json* agent = registry::FindAgent(*task, request.agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + request.agent_id + " is not part of task " +
                            request.task_id + ": run `herd status " + request.task_id + "`");
  }
  size_t max_bytes = std::min(request.max_bytes.value_or(kDefaultOutputBytes), kMaxOutputBytes);
  if (request.response_format == "compact") max_bytes = std::min<size_t>(max_bytes, 8 * 1024);
  size_t wanted_lines = request.tail.value_or(SIZE_MAX);
  if (request.response_format == "summary") wanted_lines = std::min<size_t>(wanted_lines, 20);

  // RE2, not std::regex: it matches in time linear in the line with memory
  // bounded by max_mem, where a backtracking engine can take exponential
  // time on a pattern like (a+)+$ or overflow the stack on a 100 KB line.
  constexpr size_t kMaxFilterBytes = OutputRequest::kMaxFilterBytes;
  constexpr int64_t kFilterMemoryBytes = 8 << 20;
  std::optional<RE2> filter;
  if (!request.filter.empty()) {
    if (request.filter.size() > kMaxFilterBytes) {
      return Status::InvalidArgument("filter is " + std::to_string(request.filter.size()) +
                                     " bytes long; the limit is " +
                                     std::to_string(kMaxFilterBytes) +
                                     ": use a shorter pattern (a distinctive word of the "
                                     "lines you want is usually enough)");
    }
    RE2::Options options;
    options.set_max_mem(kFilterMemoryBytes);
    options.set_log_errors(false);
    filter.emplace(request.filter, options);
    if (!filter->ok()) {
      std::string why =
          filter->error_code() == RE2::ErrorPatternTooLarge
              ? "it needs more than 8 MiB compiled; use a simpler pattern"
              : filter->error() +
                    ". RE2 syntax (https://github.com/google/re2/wiki/Syntax) "
                    "is Perl's without backreferences (\\1) or lookaround ((?=...), (?!...), "
                    "(?<=...), (?<!...))";
      return Status::InvalidArgument("filter \"" + request.filter +
                                     "\" is not a valid RE2 regular expression: " + why);
    }
  }
  std::string log_path = workspace->StreamLogPath(request.task_id, request.agent_id);
  size_t scan_lines = filter ? SIZE_MAX : wanted_lines;
  size_t scan_bytes = filter ? kFilterScanBytes : max_bytes;
  Result<Tail> tail = ReadTailLines(log_path, scan_lines, scan_bytes);
  std::vector<std::string> lines;
  bool truncated = false;
  uint64_t file_size = 0;
  if (tail.ok()) {
    file_size = tail->file_size;
    truncated = tail->truncated;
    for (std::string& line : tail->lines) {
      if (filter && !RE2::PartialMatch(line, *filter)) continue;
      lines.push_back(std::move(line));
    }
  } else if (!tail.status().Is(Status::Code::kNotFound)) {
    return tail.status();
  }
  if (lines.size() > wanted_lines) {
    lines.erase(lines.begin(), lines.end() - static_cast<long>(wanted_lines));
    truncated = true;
  }
  // Agents print what they like, and an event is copied and serialised
  // recursively: a line nested deeper than this stays the text it is.
  if (request.format == "parsed") {
    for (std::string& line : lines) {
      line = ParsedLine(line);
    }
  }
  // Keep the newest lines that fit in max_bytes.
  size_t bytes = 0;
  size_t keep_from = lines.size();
  while (keep_from > 0 && bytes + lines[keep_from - 1].size() + 1 <= max_bytes) {
    bytes += lines[keep_from - 1].size() + 1;
    --keep_from;
  }
  if (keep_from > 0) truncated = true;
  lines.erase(lines.begin(), lines.begin() + static_cast<long>(keep_from));

  json output;
  if (request.format == "jsonl") {
    output = json::array();
    for (const std::string& line : lines) {
      Result<json> event = ParseJson(line, kMaxMessageDepth);
      output.push_back(event.ok() ? std::move(event).value() : json(line));
    }
  } else {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    output = text;
  }
  json result = {{"agent_id", request.agent_id},
                 {"task_id", request.task_id},
                 {"session_status", agent->value("status", "")},
                 {"output", output},
                 {"source", tail.ok() ? "stream_log" : "none"},
                 {"lines", lines.size()},
                 {"truncated", truncated}};
  if (request.include_metadata) {
    result["metadata"] = {{"log_file", log_path},
                          {"file_size", file_size},
                          {"status", agent->value("status", "")},
                          {"pid", agent->value("pid", json(nullptr))},
                          {"exit_code", agent->value("exit_code", json(nullptr))},
                          {"exit_signal", agent->value("exit_signal", json(nullptr))},
                          {"ended_at", agent->value("ended_at", json(nullptr))},
                          {"result", agent->value("result", json(nullptr))},
                          {"max_bytes", max_bytes}};
  }
  return result;
}

Result<json> Orchestrator::Kill(const std::string& task_id, const std::string& agent_id,
                                const std::string& reason, std::chrono::milliseconds grace) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  return agents::KillAgent(stores_, *workspace, task_id, agent_id, reason, grace);
}

json Orchestrator::CoordinationInfo(const Workspace& workspace, const json& task,
                                    const std::string& for_agent) const {
  std::string task_id = task.value("task_id", "");
  json others = json::array();
  std::vector<std::string> progress, findings;
  for (const json& agent : task["agents"]) {
    std::string agent_id = agent.value("id", "");
    if (agent_id == for_agent) continue;
    others.push_back({{"agent_id", agent_id},
                      {"type", agent.value("type", "")},
                      {"status", agent.value("status", "")},
                      {"progress", agent.value("progress", 0)},
                      {"last_update", agent.value("last_update", "")},
                      {"parent", agent.value("parent", "")}});
    JournalSlice recent =
        journals_.Read(workspace.ProgressPath(task_id, agent_id), 5,
                       registry::CommittedJournalBytes(agent, registry::Journal::kProgress));
    progress.insert(progress.end(), recent.newest.begin(), recent.newest.end());
    JournalSlice found =
        journals_.Read(workspace.FindingsPath(task_id, agent_id), 5,
                       registry::CommittedJournalBytes(agent, registry::Journal::kFindings));
    findings.insert(findings.end(), found.newest.begin(), found.newest.end());
  }
  return {{"task_status", task.value("status", "")},
          {"active_count", task.value("active_count", 0)},
          {"agents", others},
          {"recent_progress", Newest(progress, kRecentUpdates)},
          {"recent_findings", Newest(findings, kRecentFindings)}};
}

namespace {

// What a report (progress or finding) committed.
struct CommittedReport {
  json line;        // the journal line, as appended
  json task_after;  // the task as committed
  bool status_changed = false;
  std::string warning;  // set when the commit is visible but not durable
};

// One transaction for a report and its journal line: `apply` changes the
// task (or refuses) and returns the line; the line is appended to the
// agent's journal under the task's lock and the journal's new length is
// recorded with the change (task_registry.h, Journal). So journal order is
// commit order, a report killed half-way leaves nothing that counts, and a
// caller told of an error has nothing recorded: it may retry without the
// report being applied twice. A commit that failed after the append has the
// line cut off again, under the lock, at once (a reader never counts it:
// it stops at the recorded length).
Result<CommittedReport> CommitReport(const RegistryStores& stores, const Workspace& workspace,
                                     const std::string& task_id, const std::string& agent_id,
                                     registry::Journal journal,
                                     const std::function<Result<json>(json& task)>& apply) {
  std::string registry_path = workspace.TaskRegistryPath(task_id);
  std::string journal_path = journal == registry::Journal::kProgress
                                 ? workspace.ProgressPath(task_id, agent_id)
                                 : workspace.FindingsPath(task_id, agent_id);
  CommittedReport report;
  bool appended = false;
  store::TransactionStats stats;
  Status status = stores.tasks.Update(
      registry_path,
      [&](json& task) -> Result<store::Decision> {
        const json* before = registry::FindAgent(task, agent_id);
        std::string previous = before ? before->value("status", "") : "";
        Result<json> line = apply(task);
        if (!line.ok()) return line.status();
        json* entry = registry::FindAgent(task, agent_id);
        Result<uint64_t> length =
            AppendJournalLine(journal_path, registry::CommittedJournalBytes(*entry, journal),
                              line->dump(-1, ' ', false, json::error_handler_t::replace));
        if (!length.ok()) {
          return length.status().WithContext("the report was not recorded; nothing changed");
        }
        appended = true;
        registry::RecordJournalBytes(*entry, journal, *length);
        report.line = std::move(*line);
        report.status_changed = previous != entry->value("status", "");
        report.task_after = task;
        return store::Decision::kCommit;
      },
      &stats);
  if (status.Is(Status::Code::kNotDurable)) {
    // Renamed into place: recorded, and readers see it. Saying "failed"
    // would invite a retry that records it twice.
    report.warning = status.message();
    spdlog::warn("{}", status.message());
  } else if (!status.ok()) {
    if (appended && !stats.committed) {
      Status cut = stores.tasks.Update(registry_path, [&](json& task) -> Result<store::Decision> {
        const json* entry = registry::FindAgent(task, agent_id);
        if (entry == nullptr) return store::Decision::kNoChange;
        std::optional<uint64_t> committed = registry::CommittedJournalBytes(*entry, journal);
        if (committed) HERD_RETURN_IF_ERROR(CutJournal(journal_path, *committed));
        return store::Decision::kNoChange;
      });
      if (!cut.ok()) {
        spdlog::warn("an uncommitted line stays in {} until the agent's next report: {}",
                     journal_path, cut.ToString());
      }
    }
    return status;
  }
  report.task_after[store::kSequenceKey] = stats.sequence;
  return report;
}

}  // namespace

Result<json> Orchestrator::ReportProgress(const std::string& task_id, const std::string& agent_id,
                                          const std::string& status, const std::string& message,
                                          int progress) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(agent_id));
  std::string timestamp = NowIso8601();
  Result<CommittedReport> report = CommitReport(
      stores_, *workspace, task_id, agent_id, registry::Journal::kProgress, [&](json& task) {
        return registry::ApplyProgress(task, agent_id, status, message, progress, timestamp);
      });
  if (!report.ok()) return report.status();
  // The index holds statuses, not progress: only a status change touches it.
  if (report->status_changed) {
    Status indexed = registry::UpsertTask(stores_, *workspace, report->task_after);
    if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  }
  json result = {{"own_update", report->line},
                 {"coordination_info", CoordinationInfo(*workspace, report->task_after, agent_id)}};
  if (!report->warning.empty()) result["warning"] = report->warning;
  return result;
}

Result<json> Orchestrator::ReportFinding(const std::string& task_id, const std::string& agent_id,
                                         const std::string& finding_type,
                                         const std::string& severity, const std::string& message,
                                         const json& data) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(agent_id));
  HERD_RETURN_IF_ERROR(registry::ValidateFindingSeverity(severity));
  if (finding_type.empty()) {
    return Status::InvalidArgument("finding_type is empty: e.g. issue, insight, recommendation");
  }
  HERD_RETURN_IF_ERROR(registry::ValidateReportMessage(message));
  size_t data_bytes = data.dump(-1, ' ', false, json::error_handler_t::replace).size();
  if (data_bytes > registry::kMaxFindingDataBytes) {
    return Status::InvalidArgument(
        "data is " + std::to_string(data_bytes) + " bytes, over the limit of " +
        std::to_string(registry::kMaxFindingDataBytes) +
        ": keep the essentials and put the rest in a file (name it in the data)");
  }
  Result<CommittedReport> report = CommitReport(
      stores_, *workspace, task_id, agent_id, registry::Journal::kFindings,
      [&](json& task) -> Result<json> {
        if (registry::FindAgent(task, agent_id) == nullptr) {
          return Status::NotFound("agent " + agent_id + " is not part of task " + task_id +
                                  ": check the Agent ID in your prompt");
        }
        return json{
            {"timestamp", NowIso8601()},    {"agent_id", agent_id},
            {"finding_type", finding_type}, {"severity", severity},
            {"message", message},           {"data", data.is_null() ? json::object() : data}};
      });
  if (!report.ok()) return report.status();
  json result = {{"own_finding", report->line},
                 {"coordination_info", CoordinationInfo(*workspace, report->task_after, agent_id)}};
  if (!report->warning.empty()) result["warning"] = report->warning;
  return result;
}

Result<json> Orchestrator::UpdateLimits(const std::string& task_id,
                                        const LimitsUpdate& update) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  json task_after;
  HERD_RETURN_IF_ERROR(stores_.tasks.Update(
      workspace->TaskRegistryPath(task_id), [&](json& task) -> Result<store::Decision> {
        HERD_RETURN_IF_ERROR(registry::UpdateLimits(task, update.max_agents, update.max_concurrent,
                                                    update.max_depth, update.budget));
        task_after = task;
        return store::Decision::kCommit;
      }));
  return json{{"task_id", task_id},
              {"limits",
               {{"max_agents", task_after.value("max_agents", 0)},
                {"max_concurrent", task_after.value("max_concurrent", 0)},
                {"max_depth", task_after.value("max_depth", 0)}}},
              {"budget", task_after.value("budget", json::object())},
              {"usage", task_after.value("usage_totals", json::object())},
              {"budget_exceeded", task_after.value("budget_exceeded", json(nullptr))}};
}

Result<json> Orchestrator::ProgressTimeline(const std::string& task_id) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  Result<json> task = ReadTask(*workspace, task_id);
  if (!task.ok()) return task.status();
  std::vector<json> timeline;
  for (const json& agent : (*task)["agents"]) {
    std::string agent_id = agent.value("id", "");
    struct Source {
      std::string path;
      const char* type;
      std::optional<uint64_t> committed_bytes;
    };
    for (const Source& source :
         {Source{workspace->ProgressPath(task_id, agent_id), "progress",
                 registry::CommittedJournalBytes(agent, registry::Journal::kProgress)},
          Source{workspace->FindingsPath(task_id, agent_id), "finding",
                 registry::CommittedJournalBytes(agent, registry::Journal::kFindings)}}) {
      Result<std::vector<std::string>> lines = ReadAllLines(source.path);
      if (!lines.ok()) continue;
      uint64_t offset = 0;
      for (const std::string& line : *lines) {
        offset += line.size() + 1;
        // Past the recorded length: a transaction that never committed.
        if (source.committed_bytes && offset > *source.committed_bytes) break;
        Result<json> entry = ParseJson(line, kMaxMessageDepth);
        if (!entry.ok() || !entry->is_object()) continue;
        (*entry)["entry_type"] = source.type;
        timeline.push_back(std::move(entry).value());
      }
    }
  }
  std::stable_sort(timeline.begin(), timeline.end(), [](const json& a, const json& b) {
    return a.value("timestamp", "") < b.value("timestamp", "");
  });
  return json{{"task_id", task_id}, {"timeline", timeline}, {"total_entries", timeline.size()}};
}

}  // namespace herd
