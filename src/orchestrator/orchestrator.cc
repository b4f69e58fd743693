#include "orchestrator/orchestrator.h"

#include <re2/re2.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <string_view>

#include "agents/killer.h"
#include "agents/liveness.h"
#include "agents/process.h"
#include "agents/stream_events.h"
#include "agents/tmux_view.h"
#include "orchestrator/worktree_status.h"
#include "registry/file_names.h"
#include "registry/global_index.h"
#include "registry/ids.h"
#include "registry/incomplete_task.h"
#include "util/clock.h"
#include "util/json_fields.h"
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

bool IsOneOf(const std::string& value, const std::vector<std::string>& values) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

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

// The timestamp of a journal line; "" (sorted first) for a damaged one.
std::string JournalTimestamp(registry::Journal journal, const json& line) {
  if (journal == registry::Journal::kProgress) {
    Result<registry::ProgressUpdate> update = registry::DecodeProgressUpdate(line, "journal");
    return update.ok() ? update->timestamp : "";
  }
  Result<registry::Finding> finding = registry::DecodeFinding(line, "journal");
  return finding.ok() ? finding->timestamp : "";
}

// The string at `key` of `event`, or "" when it is absent or not a string.
std::string JsonString(const json& event, const char* key) {
  auto found = event.find(key);
  return found != event.end() && found->is_string() ? found->get<std::string>() : "";
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
  // Gemini CLI's stream-json: init, message, tool_use, tool_result, error
  // and a result with status and stats instead of subtype and cost.
  if (type == "message" && event.value("role", "") == "assistant") {
    return "assistant: " + JsonString(event, "content");
  }
  if (type == "message") return "user: " + JsonString(event, "content");
  if (type == "tool_use") return "assistant: [tool " + JsonString(event, "tool_name") + "]";
  if (type == "tool_result") return "user: [tool result " + JsonString(event, "status") + "]";
  if (type == "init") return "system: init";
  if (type == "result" && event.contains("status")) {
    json stats = event.value("stats", json::object());
    auto figure = [&](const char* key) {
      return stats.is_object() && stats.contains(key) && stats[key].is_number() ? stats[key].dump()
                                                                                : "0";
    };
    return "result: " + JsonString(event, "status") + " tokens=" + figure("total_tokens") +
           " tool_calls=" + figure("tool_calls");
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

std::unique_ptr<const registry::Registry> Orchestrator::RegistryOf(
    const Workspace& workspace) const {
  return registry::RegistryFor(stores_, workspace);
}

namespace {

// The task a request describes, checked: limits from the environment unless
// given, the description, priority, context, budgets and timeouts.
// `warnings` receives what is allowed but unwise.
Result<registry::TaskSpec> SpecFor(const CreateTaskRequest& request,
                                   std::vector<std::string>* warnings) {
  const std::string& description = request.description;
  if (description.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::InvalidArgument("description is empty: say what the agents should achieve");
  }
  if (!IsOneOf(request.priority, CreateTaskRequest::Priorities())) {
    return Status::InvalidArgument("priority \"" + request.priority + "\" is not one of P0-P4");
  }
  if (description.size() < 10) warnings->push_back("description is very short");
  HERD_RETURN_IF_ERROR(ValidateContext(request.context, warnings));
  registry::TaskSpec spec;
  spec.description = description;
  spec.priority = request.priority;
  spec.context = request.context;
  spec.limits = registry::Limits::FromEnvironment();
  spec.budget = request.budget;
  spec.timeouts = request.timeouts;
  spec.isolate_agent_config = request.isolate_agent_config;
  spec.notify_command = request.notify_command;
  spec.agent_worktrees = request.agent_worktrees;
  if (spec.budget.max_cost_usd && !(*spec.budget.max_cost_usd > 0)) {
    return Status::InvalidArgument("max_cost_usd must be a positive number of dollars");
  }
  if (spec.budget.max_tokens && *spec.budget.max_tokens < 1) {
    return Status::InvalidArgument("max_tokens must be at least 1");
  }
  if (spec.timeouts.wall_clock_seconds < 0 || spec.timeouts.idle_seconds < 0) {
    return Status::InvalidArgument("agent timeouts must be 0 (none) or a number of seconds");
  }
  for (const auto& [given, limit, name] :
       {std::tuple{request.max_agents, &spec.limits.max_agents, "max_agents"},
        std::tuple{request.max_concurrent, &spec.limits.max_concurrent, "max_concurrent"},
        std::tuple{request.max_depth, &spec.limits.max_depth, "max_depth"}}) {
    if (!given) continue;
    if (*given < 1) return Status::InvalidArgument(std::string(name) + " must be at least 1");
    *limit = *given;
  }
  return spec;
}

// The create_real_task result.
json CreatedReply(const std::string& task_id, const registry::TaskSpec& spec,
                  const Workspace& workspace, const std::vector<std::string>& warnings) {
  json result = {{"task_id", task_id},
                 {"description", spec.description},
                 {"priority", spec.priority},
                 {"workspace", workspace.TaskDirectory(task_id)},
                 {"workspace_base", workspace.base()},
                 {"client_cwd", NullIfEmpty(spec.client_cwd)},
                 {"status", "INITIALIZED"},
                 {"has_enhanced_context", !spec.context.empty()},
                 {"limits", registry::EncodeLimits(spec.limits)},
                 {"budget", registry::EncodeBudget(spec.budget)},
                 {"agent_timeout_seconds", spec.timeouts.wall_clock_seconds},
                 {"agent_idle_timeout_seconds", spec.timeouts.idle_seconds},
                 {"isolate_agent_config", spec.isolate_agent_config},
                 {"notify_command", NullIfEmpty(spec.notify_command)}};
  for (const auto& [key, value] : spec.context.items()) result[key] = value;
  if (!warnings.empty()) result["validation_warnings"] = warnings;
  return result;
}

}  // namespace

Result<json> Orchestrator::CreateTask(const CreateTaskRequest& request) const {
  std::vector<std::string> warnings;
  HERD_ASSIGN_OR_RETURN(registry::TaskSpec spec, SpecFor(request, &warnings));
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
  if (spec.agent_worktrees) {
    // Refused now rather than at every deploy.
    // Where the agents will run (launcher.cc AgentWorkingDirectory).
    std::string project = !spec.client_cwd.empty()
                              ? spec.client_cwd
                              : workspace.base().substr(0, workspace.base().rfind('/'));
    Result<std::string> repository = worktrees::RepositoryTopLevel(project);
    if (!repository.ok()) return repository.status().WithContext("worktree");
  }
  std::string task_id = registry::NewTaskId();
  Status made = workspace.CreateTaskDirectories(task_id);
  if (made.ok()) {
    store::WarnIfNetworkFilesystem(workspace.base());
    Result<registry::TaskSnapshot> created = RegistryOf(workspace)->CreateTask(task_id, spec);
    if (!created.ok()) made = created.status();
  }
  if (!made.ok()) {
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
  if (!registry::UsesPostgres(stores_)) {
    Status remembered = registry::RememberWorkspace(stores_, workspace.base());
    if (!remembered.ok()) spdlog::warn("workspace not recorded: {}", remembered.ToString());
  }
  return CreatedReply(task_id, spec, workspace, warnings);
}

std::vector<TaskListing> Orchestrator::TaskListings() const {
  std::vector<TaskListing> listings;
  for (const Workspace& workspace : registry::RegistryBases(stores_, workspace_)) {
    std::unique_ptr<const registry::Registry> registry = RegistryOf(workspace);
    Result<std::vector<std::string>> task_ids = registry->TaskIds();
    if (!task_ids.ok()) {
      spdlog::warn("tasks not listed: {}", task_ids.status().ToString());
      continue;
    }
    for (const std::string& name : *task_ids) {
      Result<registry::SharedTask> snapshot = registry->ReadTask(name);
      // A damaged registry is listed with the reason, not hidden; one that
      // cannot be read at all (an incomplete task) is doctor's to report.
      if (!snapshot.ok() && !snapshot.status().Is(Status::Code::kCorruption)) continue;
      TaskListing listing;
      listing.workspace_base = workspace.base();
      if (snapshot.ok()) {
        listing.task = (*snapshot)->task;
        // One registry for every base: the task's row says which is its.
        if (registry::UsesPostgres(stores_)) listing.workspace_base = listing.task.workspace_base;
      } else {
        listing.task.task_id = name;
        listing.error = snapshot.status().message();
      }
      listings.push_back(std::move(listing));
    }
  }
  std::stable_sort(listings.begin(), listings.end(), [](const auto& a, const auto& b) {
    return a.task.created_at > b.task.created_at;
  });
  return listings;
}

json TaskListing::ToJson() const {
  json summary = {{"task_id", task.task_id},
                  {"description", task.description},
                  {"status", task.status},
                  {"priority", task.priority},
                  {"created_at", task.created_at},
                  {"workspace_base", workspace_base},
                  {"client_cwd", NullIfEmpty(task.client_cwd)},
                  {"total_spawned", task.total_spawned},
                  {"active_count", task.active_count},
                  {"completed_count", task.completed_count}};
  if (!error.empty()) summary["error"] = error;
  return summary;
}

Result<json> Orchestrator::ListTasks() const {
  json tasks = json::array();
  for (const TaskListing& listing : TaskListings()) tasks.push_back(listing.ToJson());
  return json{{"tasks", tasks}, {"total", tasks.size()}};
}

Result<DeployedAgent> Orchestrator::StartAgent(const agents::DeployRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  DeployedAgent deployed;
  HERD_ASSIGN_OR_RETURN(deployed.agent, agents::DeployAgent(stores_, workspace, request));
  deployed.task_id = request.task_id;
  deployed.workspace = workspace.TaskDirectory(request.task_id);
  deployed.log_file = workspace.StreamLogPath(request.task_id, deployed.agent.id);
  if (request.tmux) {
    const std::string& agent_id = deployed.agent.id;
    Result<std::string> session =
        agents::OpenTmuxView(agents::HerdBinaryPath(), workspace.base(), request.task_id, agent_id);
    if (!session.ok()) {
      // The agent runs regardless; only the view is missing.
      spdlog::warn("agent {} runs, but without a tmux view: {}", agent_id,
                   session.status().message());
    } else {
      deployed.tmux_session = *session;
      Status recorded =
          RegistryOf(workspace)->RecordTmuxSession(request.task_id, agent_id, *session);
      if (!recorded.ok()) spdlog::warn("tmux session not recorded: {}", recorded.ToString());
    }
  }
  return deployed;
}

json DeployedAgent::ToJson() const {
  return json{{"tmux_session", NullIfEmpty(tmux_session)},
              {"agent_id", agent.id},
              {"type", agent.type},
              {"parent", agent.parent},
              {"depth", agent.depth},
              {"task_id", task_id},
              {"status", "deployed"},
              {"agent_status", agent.status},
              {"backend", agent.backend},
              {"model", NullIfEmpty(agent.model)},
              {"pid", agent.process.recorded() ? json(agent.process.pid) : json(nullptr)},
              {"workspace", workspace},
              {"cwd", agent.cwd},
              {"log_file", log_file}};
}

Result<json> Orchestrator::Deploy(const agents::DeployRequest& request) const {
  HERD_ASSIGN_OR_RETURN(DeployedAgent deployed, StartAgent(request));
  return deployed.ToJson();
}

namespace {

// The newest `keep` journal lines across agents, newest first, decoded; a
// damaged line is left out.
template <typename Record>
std::vector<Record> NewestRecords(const std::vector<std::string>& lines, size_t keep,
                                  Result<Record> (*decode)(const json&, const std::string&)) {
  std::vector<Record> records;
  for (const json& line : Newest(lines, keep)) {
    Result<Record> record = decode(line, "journal");
    if (record.ok()) records.push_back(std::move(record).value());
  }
  return records;
}

}  // namespace

Result<registry::SharedTask> Orchestrator::ReadTask(const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(task_id));
  return RegistryOf(workspace)->ReadTask(task_id);
}

Result<std::string> Orchestrator::TaskDirectory(const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(task_id));
  return workspace.TaskDirectory(task_id);
}

bool Orchestrator::OutputIsInRegistry(const std::string& task_id,
                                      const std::string& agent_id) const {
  if (!registry::UsesPostgres(stores_)) return false;
  Result<std::string> directory = TaskDirectory(task_id);
  if (!directory.ok() || !registry::ValidateAgentId(agent_id).ok()) return false;
  std::string log =
      *directory + "/" + registry::AgentFileName(agent_id, registry::AgentFile::kStreamLog);
  struct stat info {};
  return ::lstat(log.c_str(), &info) != 0;
}

Result<TaskStatusReport> Orchestrator::StatusReport(const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(task_id));
  TaskStatusReport report;
  std::unique_ptr<const registry::Registry> registry = RegistryOf(workspace);
  HERD_ASSIGN_OR_RETURN(report.snapshot, registry->ReadTask(task_id));
  report.workspace = workspace.TaskDirectory(task_id);
  report.subtree_usage = registry::SubtreeUsage(report.task());
  std::vector<std::string> updates, findings;
  const double now = NowUnixSeconds();
  for (const registry::AgentRecord& agent : report.task().agents) {
    agents::Liveness liveness =
        agents::ClassifyLiveness(agent, now, agents::kStartingGrace, processes_.get());
    report.liveness.push_back(liveness);
    if (agents::IsLost(liveness)) ++report.lost;
    HERD_ASSIGN_OR_RETURN(
        JournalSlice progress,
        registry->ReadJournal(task_id, agent, registry::Journal::kProgress, kRecentUpdates));
    report.total_progress_entries += progress.total;
    updates.insert(updates.end(), progress.newest.begin(), progress.newest.end());
    HERD_ASSIGN_OR_RETURN(
        JournalSlice found,
        registry->ReadJournal(task_id, agent, registry::Journal::kFindings, kRecentFindings));
    report.total_findings += found.total;
    findings.insert(findings.end(), found.newest.begin(), found.newest.end());
  }
  report.worktrees = WorktreeSummaries(report.task());
  report.recent_updates = NewestRecords(updates, kRecentUpdates, &registry::DecodeProgressUpdate);
  report.recent_findings = NewestRecords(findings, kRecentFindings, &registry::DecodeFinding);
  return report;
}

namespace {

// A placed agent's launch inputs and its messages' whole texts stay in the
// registry, for its node: a status reply shows previews only.
void DropNodeInputs(json& entry) {
  entry.erase("launch");
  auto drop_text = [](json& message) {
    if (message.is_object()) message.erase("text");
  };
  if (entry.contains("turn_message")) drop_text(entry["turn_message"]);
  for (const char* list : {"message_queue", "undelivered_messages"}) {
    if (!entry.contains(list)) continue;
    for (json& message : entry[list]) drop_text(message);
  }
  if (entry.contains("turns")) {
    for (json& turn : entry["turns"]) {
      if (turn.contains("message")) drop_text(turn["message"]);
    }
  }
}

}  // namespace

json TaskStatusReport::ToJson() const {
  const registry::TaskRecord& task = snapshot->task;
  // Built key by key so the large parts are moved, not copied.
  json agents_list = json::array();
  for (size_t i = 0; i < task.agents.size(); ++i) {
    // The registry entry as the reference returns it, plus liveness.
    json entry = registry::EncodeAgent(task.agents[i]);
    DropNodeInputs(entry);
    entry["liveness"] = agents::LivenessName(liveness[i]);
    entry["subtree_usage"] = subtree_usage[i].ToJson();
    if (i < worktrees.size() && worktrees[i]) {
      entry["worktree_summary"] = WorktreeSummaryJson(task.agents[i], *worktrees[i]);
    }
    agents_list.push_back(std::move(entry));
  }
  json agents = {{"total_spawned", task.total_spawned},
                 {"active", task.active_count},
                 {"completed", task.completed_count},
                 {"lost", lost}};
  agents["agents_list"] = std::move(agents_list);
  json progress = {{"recent_updates", json::array()},
                   {"recent_findings", json::array()},
                   {"total_progress_entries", total_progress_entries},
                   {"total_findings", total_findings}};
  for (const registry::ProgressUpdate& update : recent_updates) {
    progress["recent_updates"].push_back(registry::EncodeProgressUpdate(update));
  }
  for (const registry::Finding& finding : recent_findings) {
    progress["recent_findings"].push_back(registry::EncodeFinding(finding));
  }
  json status = {
      {"task_id", task.task_id},
      {"description", task.description},
      {"status", task.status},
      {"priority", task.priority},
      {"created_at", task.created_at},
      {"workspace", workspace},
      {"client_cwd", NullIfEmpty(task.client_cwd)},
      {"hierarchy", registry::EncodeHierarchy(task)},
      {"spiral_status", task.spiral_checks.is_null() ? json::object() : task.spiral_checks},
      {"limits", registry::EncodeLimits(task.limits)},
      {"usage", task.usage_totals.ToJson()},
      {"budget", registry::EncodeBudget(task.budget)},
      {"budget_exceeded", registry::EncodeLimitHitOrNull(task.budget_exceeded)},
      {"stopped", task.stopped ? json{{"at", task.stopped->at}, {"reason", task.stopped->reason}}
                               : json(nullptr)},
      {"agent_timeout_seconds", task.timeouts.wall_clock_seconds},
      {"agent_idle_timeout_seconds", task.timeouts.idle_seconds},
      {"registry_sequence", snapshot->sequence}};
  status["agents"] = std::move(agents);
  status["enhanced_progress"] = std::move(progress);
  return status;
}

Result<json> Orchestrator::TaskStatus(const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(TaskStatusReport report, StatusReport(task_id));
  return report.ToJson();
}

namespace {

// The compiled `pattern`, or null for none.
// RE2, not std::regex: it matches in time linear in the line with memory
// bounded by max_mem, where a backtracking engine can take exponential
// time on a pattern like (a+)+$ or overflow the stack on a 100 KB line.
Result<std::unique_ptr<RE2>> CompileFilter(const std::string& pattern) {
  constexpr size_t kMaxFilterBytes = OutputRequest::kMaxFilterBytes;
  constexpr int64_t kFilterMemoryBytes = 8 << 20;
  if (pattern.empty()) return std::unique_ptr<RE2>();
  if (pattern.size() > kMaxFilterBytes) {
    return Status::InvalidArgument("filter is " + std::to_string(pattern.size()) +
                                   " bytes long; the limit is " + std::to_string(kMaxFilterBytes) +
                                   ": use a shorter pattern (a distinctive word of the "
                                   "lines you want is usually enough)");
  }
  RE2::Options options;
  options.set_max_mem(kFilterMemoryBytes);
  options.set_log_errors(false);
  auto filter = std::make_unique<RE2>(pattern, options);
  if (!filter->ok()) {
    std::string why =
        filter->error_code() == RE2::ErrorPatternTooLarge
            ? "it needs more than 8 MiB compiled; use a simpler pattern"
            : filter->error() +
                  ". RE2 syntax (https://github.com/google/re2/wiki/Syntax) "
                  "is Perl's without backreferences (\\1) or lookaround ((?=...), (?!...), "
                  "(?<=...), (?<!...))";
    return Status::InvalidArgument("filter \"" + pattern +
                                   "\" is not a valid RE2 regular expression: " + why);
  }
  return filter;
}

// The last `max_lines` lines of `text` within its last `max_bytes`, as
// ReadTailLines reads them from a file (a line cut at the start is kept
// from where the bytes begin).
Tail TailOfText(const std::string& text, size_t max_lines, size_t max_bytes) {
  Tail tail;
  tail.file_size = text.size();
  size_t begin = text.size() > max_bytes ? text.size() - max_bytes : 0;
  tail.truncated = begin > 0;
  std::string_view kept(text.data() + begin, text.size() - begin);
  if (!kept.empty() && kept.back() == '\n') kept.remove_suffix(1);
  std::vector<std::string> lines;
  size_t start = 0;
  while (!kept.empty()) {
    size_t newline = kept.find('\n', start);
    lines.emplace_back(kept.substr(
        start, newline == std::string_view::npos ? std::string_view::npos : newline - start));
    if (newline == std::string_view::npos) break;
    start = newline + 1;
  }
  if (lines.size() > max_lines) {
    lines.erase(lines.begin(), lines.end() - static_cast<long>(max_lines));
    tail.truncated = true;
  }
  tail.lines = std::move(lines);
  return tail;
}

// Keeps the newest `lines` that fit in `max_bytes` (newline included);
// returns whether any were dropped.
bool KeepNewestThatFit(std::vector<std::string>* lines, size_t max_bytes) {
  size_t bytes = 0;
  size_t keep_from = lines->size();
  while (keep_from > 0 && bytes + (*lines)[keep_from - 1].size() + 1 <= max_bytes) {
    bytes += (*lines)[keep_from - 1].size() + 1;
    --keep_from;
  }
  lines->erase(lines->begin(), lines->begin() + static_cast<long>(keep_from));
  return keep_from > 0;
}

// The lines as get_agent_output returns them: one text (text, parsed) or
// a list of events, a line that is not JSON kept as its text (jsonl).
json FormatOutput(const std::vector<std::string>& lines, const std::string& format) {
  if (format != "jsonl") {
    std::string text;
    for (const std::string& line : lines) text += line + "\n";
    return text;
  }
  json output = json::array();
  for (const std::string& line : lines) {
    Result<json> event = ParseJson(line, kMaxMessageDepth);
    output.push_back(event.ok() ? std::move(event).value() : json(line));
  }
  return output;
}

// What get_agent_output adds with include_metadata.
json OutputMetadata(const registry::AgentRecord& agent, const std::string& log_path,
                    uint64_t file_size, size_t max_bytes) {
  const std::optional<registry::ExitInfo>& exit = agent.exit;
  auto optional_int = [](const std::optional<int>& value) {
    return value ? json(*value) : json(nullptr);
  };
  return {{"log_file", log_path},
          {"file_size", file_size},
          {"status", agent.status},
          {"pid", agent.process.recorded() ? json(agent.process.pid) : json(nullptr)},
          {"exit_code", exit ? optional_int(exit->exit_code) : json(nullptr)},
          {"exit_signal", exit ? optional_int(exit->exit_signal) : json(nullptr)},
          {"ended_at", exit ? NullIfEmpty(exit->ended_at) : json(nullptr)},
          {"result", agent.result},
          {"max_bytes", max_bytes}};
}

}  // namespace

Result<json> Orchestrator::AgentOutput(const OutputRequest& request) const {
  Result<Workspace> workspace = Locate(request.task_id);
  if (!workspace.ok()) return workspace.status();
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(request.agent_id));
  if (!IsOneOf(request.format, OutputRequest::Formats())) {
    return Status::InvalidArgument("format must be " + Alternatives(OutputRequest::Formats()));
  }
  if (!IsOneOf(request.response_format, OutputRequest::ResponseFormats())) {
    return Status::InvalidArgument("response_format must be " +
                                   Alternatives(OutputRequest::ResponseFormats()));
  }
  std::unique_ptr<const registry::Registry> registry = RegistryOf(*workspace);
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry->ReadTask(request.task_id));
  const registry::AgentRecord* agent = snapshot->task.FindAgent(request.agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + request.agent_id + " is not part of task " +
                            request.task_id + ": run `herd status " + request.task_id + "`");
  }
  size_t max_bytes = std::min(request.max_bytes.value_or(kDefaultOutputBytes), kMaxOutputBytes);
  if (request.response_format == "compact") max_bytes = std::min<size_t>(max_bytes, 8 * 1024);
  size_t wanted_lines = request.tail.value_or(SIZE_MAX);
  if (request.response_format == "summary") wanted_lines = std::min<size_t>(wanted_lines, 20);

  HERD_ASSIGN_OR_RETURN(std::unique_ptr<RE2> filter, CompileFilter(request.filter));
  std::string log_path = workspace->StreamLogPath(request.task_id, request.agent_id);
  size_t scan_lines = filter ? SIZE_MAX : wanted_lines;
  size_t scan_bytes = filter ? kFilterScanBytes : max_bytes;
  Result<Tail> tail = ReadTailLines(log_path, scan_lines, scan_bytes);
  const char* source = "stream_log";
  if (tail.status().Is(Status::Code::kNotFound)) {
    // Not on this machine: the tail the registry keeps, if it keeps one.
    Result<std::string> kept = registry->ReadOutputTail(request.task_id, request.agent_id);
    if (kept.ok()) {
      tail = TailOfText(*kept, scan_lines, scan_bytes);
      source = "registry_tail";
    }
  }
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
  if (KeepNewestThatFit(&lines, max_bytes)) truncated = true;
  json result = {{"agent_id", request.agent_id},
                 {"task_id", request.task_id},
                 {"session_status", agent->status},
                 {"output", FormatOutput(lines, request.format)},
                 {"source", tail.ok() ? source : "none"},
                 {"lines", lines.size()},
                 {"truncated", truncated}};
  if (request.include_metadata) {
    result["metadata"] = OutputMetadata(*agent, log_path, file_size, max_bytes);
  }
  return result;
}

Result<LineWindow> Orchestrator::AgentOutputWindow(const OutputWindowRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(request.agent_id));
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot,
                        RegistryOf(workspace)->ReadTask(request.task_id));
  if (snapshot->task.FindAgent(request.agent_id) == nullptr) {
    return Status::NotFound("agent " + request.agent_id + " is not part of task " +
                            request.task_id + ": run `herd status " + request.task_id + "`");
  }
  std::string log_path = workspace.StreamLogPath(request.task_id, request.agent_id);
  size_t max_bytes = std::clamp<size_t>(request.max_bytes, 1, OutputRequest::kLargestMaxBytes);
  Result<LineWindow> window =
      request.from ? ReadLinesFrom(log_path, *request.from, max_bytes)
                   : ReadLinesBefore(log_path, request.before.value_or(UINT64_MAX), max_bytes);
  if (window.status().Is(Status::Code::kNotFound)) return LineWindow{};
  return window;
}

Result<json> Orchestrator::Kill(const KillRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  return agents::KillAgent(stores_, workspace, request.task_id, request.agent_id, request.reason,
                           request.grace);
}

Result<agents::TaskStopResult> Orchestrator::StopTask(const StopTaskRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  return agents::StopTask(stores_, workspace, request.task_id, request.reason, request.grace);
}

Result<agents::SentMessage> Orchestrator::SendMessage(const SendMessageRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  return agents::SendMessage(
      stores_, workspace,
      agents::FollowUp{request.task_id, request.agent_id, request.message, request.interrupt});
}

json Orchestrator::CoordinationInfo(const registry::Registry& registry,
                                    const registry::TaskRecord& task,
                                    const std::string& for_agent) const {
  const std::string& task_id = task.task_id;
  json others = json::array();
  std::vector<std::string> progress, findings;
  for (const registry::AgentRecord& agent : task.agents) {
    const std::string& agent_id = agent.id;
    if (agent_id == for_agent) continue;
    others.push_back({{"agent_id", agent_id},
                      {"type", agent.type},
                      {"status", agent.status},
                      {"progress", agent.progress},
                      {"last_update", agent.last_update},
                      {"parent", agent.parent}});
    // The report committed already: a journal that cannot be read now is
    // left out of the coordination info rather than failing the report.
    Result<JournalSlice> recent =
        registry.ReadJournal(task_id, agent, registry::Journal::kProgress, 5);
    if (recent.ok()) progress.insert(progress.end(), recent->newest.begin(), recent->newest.end());
    Result<JournalSlice> found =
        registry.ReadJournal(task_id, agent, registry::Journal::kFindings, 5);
    if (found.ok()) findings.insert(findings.end(), found->newest.begin(), found->newest.end());
  }
  return {{"task_status", task.status},
          {"active_count", task.active_count},
          {"agents", others},
          {"recent_progress", Newest(progress, kRecentUpdates)},
          {"recent_findings", Newest(findings, kRecentFindings)}};
}

Result<json> Orchestrator::ReportProgress(const ProgressReport& request) const {
  const std::string& task_id = request.task_id;
  const std::string& agent_id = request.agent_id;
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(agent_id));
  std::unique_ptr<const registry::Registry> registry = RegistryOf(*workspace);
  HERD_ASSIGN_OR_RETURN(registry::ReportOutcome report,
                        registry->ReportProgress(task_id, agent_id, request.status, request.message,
                                                 request.progress));
  json result = {
      {"own_update", report.line},
      {"coordination_info", CoordinationInfo(*registry, report.task_after.task, agent_id)}};
  if (!report.warning.empty()) result["warning"] = report.warning;
  return result;
}

Result<json> Orchestrator::ReportFinding(const FindingReport& request) const {
  const std::string& task_id = request.task_id;
  const std::string& agent_id = request.agent_id;
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(agent_id));
  registry::FindingReport finding{request.finding_type, request.severity, request.message,
                                  request.data};
  std::unique_ptr<const registry::Registry> registry = RegistryOf(*workspace);
  HERD_ASSIGN_OR_RETURN(registry::ReportOutcome report,
                        registry->ReportFinding(task_id, agent_id, finding));
  json result = {
      {"own_finding", report.line},
      {"coordination_info", CoordinationInfo(*registry, report.task_after.task, agent_id)}};
  if (!report.warning.empty()) result["warning"] = report.warning;
  return result;
}

Result<registry::TaskSnapshot> Orchestrator::ChangeLimits(const LimitsUpdate& update) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(update.task_id));
  registry::LimitsChange change{update.max_agents, update.max_concurrent, update.max_depth,
                                update.budget};
  return RegistryOf(workspace)->ChangeLimits(update.task_id, change);
}

Result<json> Orchestrator::UpdateLimits(const LimitsUpdate& update) const {
  HERD_ASSIGN_OR_RETURN(registry::TaskSnapshot after, ChangeLimits(update));
  return LimitsReply(after.task);
}

json Orchestrator::LimitsReply(const registry::TaskRecord& task) {
  return json{{"task_id", task.task_id},
              {"limits", registry::EncodeLimits(task.limits)},
              {"budget", registry::EncodeBudget(task.budget)},
              {"usage", task.usage_totals.ToJson()},
              {"budget_exceeded", registry::EncodeLimitHitOrNull(task.budget_exceeded)}};
}

Result<std::unique_ptr<registry::CommitWatch>> Orchestrator::WatchCommits(
    const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(task_id));
  return RegistryOf(workspace)->WatchCommits(task_id);
}

Result<json> Orchestrator::ProgressTimeline(const std::string& task_id) const {
  Result<Workspace> workspace = Locate(task_id);
  if (!workspace.ok()) return workspace.status();
  std::unique_ptr<const registry::Registry> registry = RegistryOf(*workspace);
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry->ReadTask(task_id));
  std::vector<std::pair<std::string, json>> timeline;  // by timestamp
  for (const registry::AgentRecord& agent : snapshot->task.agents) {
    for (const auto& [kind, type] : {std::pair{registry::Journal::kProgress, "progress"},
                                     std::pair{registry::Journal::kFindings, "finding"}}) {
      Result<JournalSlice> journal =
          registry->ReadJournal(task_id, agent, kind, registry::Registry::kWholeJournal);
      if (!journal.ok()) continue;
      for (const std::string& line : journal->newest) {
        Result<json> entry = ParseJson(line, kMaxMessageDepth);
        if (!entry.ok() || !entry->is_object()) continue;
        std::string timestamp = JournalTimestamp(kind, *entry);
        (*entry)["entry_type"] = type;
        timeline.emplace_back(std::move(timestamp), std::move(entry).value());
      }
    }
  }
  std::stable_sort(timeline.begin(), timeline.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json entries = json::array();
  for (auto& [timestamp, entry] : timeline) entries.push_back(std::move(entry));
  return json{{"task_id", task_id}, {"timeline", entries}, {"total_entries", timeline.size()}};
}

}  // namespace herd
