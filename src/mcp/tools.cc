#include "mcp/tools.h"

#include <cstdlib>

#include "health/doctor.h"
#include "mcp/client_limits.h"
#include "orchestrator/requests.h"

namespace herd::mcp {
namespace {

// ---- output schemas -----------------------------------------------------------
//
// They describe the keys every result has; failures are {success:false,
// error} and validate too.

json OutputSchema(json properties) {
  properties["success"] = {{"type", "boolean"}};
  properties["error"] = {{"type", "string"}, {"description", "why the call failed, when it did"}};
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", {"success"}}};
}

json Typed(const char* type) {
  return {{"type", type}};
}

json CreateTaskOutput() {
  return OutputSchema({{"task_id", Typed("string")},
                       {"description", Typed("string")},
                       {"priority", Typed("string")},
                       {"workspace", Typed("string")},
                       {"status", Typed("string")},
                       {"has_enhanced_context", Typed("boolean")},
                       {"validation_warnings", {{"type", "array"}, {"items", Typed("string")}}}});
}

json DeployOutput() {
  return OutputSchema({{"agent_id", Typed("string")},
                       {"task_id", Typed("string")},
                       {"type", Typed("string")},
                       {"parent", Typed("string")},
                       {"depth", Typed("integer")},
                       {"status", Typed("string")},
                       {"pid", {{"type", {"integer", "null"}}}},
                       {"workspace", Typed("string")}});
}

json StatusOutput() {
  return OutputSchema({{"task_id", Typed("string")},
                       {"status", Typed("string")},
                       {"agents", Typed("object")},
                       {"hierarchy", Typed("object")},
                       {"enhanced_progress", Typed("object")},
                       {"limits", Typed("object")}});
}

json AgentOutputOutput() {
  return OutputSchema({{"agent_id", Typed("string")},
                       {"session_status", Typed("string")},
                       {"output", {{"type", {"string", "array"}}}},
                       {"source", Typed("string")},
                       {"truncated", Typed("boolean")}});
}

json KillOutput() {
  return OutputSchema(
      {{"agent_id", Typed("string")},
       {"status", Typed("string")},
       {"reason", Typed("string")},
       {"registry_recorded",
        {{"type", "boolean"},
         {"description",
          "false when the processes were stopped but the termination could not be written to "
          "the registry"}}},
       {"warning",
        {{"type", "string"}, {"description", "what went wrong with the record and what to do"}}},
       {"cleanup", Typed("object")}});
}

json StopTaskOutput() {
  auto count = [](const char* description) {
    return json{{"type", "integer"}, {"description", description}};
  };
  return OutputSchema(
      {{"task_id", Typed("string")},
       {"status", Typed("string")},
       {"reason", Typed("string")},
       {"stopped_at", Typed("string")},
       {"already_stopped", Typed("boolean")},
       {"registry_recorded",
        {{"type", "boolean"},
         {"description",
          "false when the processes were stopped but the stop could not be written to the "
          "registry"}}},
       {"marked", count("agents this call marked terminated")},
       {"stopped", count("agents whose processes were signalled and have exited")},
       {"already_exited", count("agents with no process left when the stop began")},
       {"starting", count("agents not started yet: each is stopped as it starts")},
       {"supervisors_recording", count("supervisors still recording their agent's end")},
       {"failed", count("agents with processes left after SIGKILL")},
       {"failures", {{"type", "array"}, {"items", Typed("object")}}},
       {"warning",
        {{"type", "string"}, {"description", "what went wrong with the record and what to do"}}}});
}

json CoordinationInfo() {
  return {{"type", "object"},
          {"description", "the other agents' status, recent progress and findings"}};
}

json ProgressOutput() {
  return OutputSchema({{"own_update", Typed("object")}, {"coordination_info", CoordinationInfo()}});
}

json FindingOutput() {
  return OutputSchema(
      {{"own_finding", Typed("object")}, {"coordination_info", CoordinationInfo()}});
}

json WaitOutput() {
  return OutputSchema(
      {{"task_id", Typed("string")},
       {"condition_met",
        {{"type", "boolean"},
         {"description", "false when the timeout passed first: call wait_for_agents again"}}},
       {"timed_out", Typed("boolean")},
       {"still_active",
        {{"type", "array"},
         {"items", Typed("string")},
         {"description", "the agents waited for that are still running"}}},
       {"summary", Typed("string")},
       {"agents",
        {{"type", "array"},
         {"items", Typed("object")},
         {"description",
          "each agent waited for: status, exit_code, last_message, final_result, findings, "
          "usage"}}}});
}

json SendMessageOutput() {
  return OutputSchema(
      {{"task_id", Typed("string")},
       {"agent_id", Typed("string")},
       {"message_id", Typed("string")},
       {"delivery",
        {{"type", "string"},
         {"enum", {"new_turn", "queued"}},
         {"description",
          "new_turn: the agent had ended and now runs again; queued: it runs when the current "
          "turn ends"}}},
       {"turn",
        {{"type", "integer"},
         {"description", "new_turn: the turn it began; queued: the turn running now"}}},
       {"queue_position", Typed("integer")},
       {"interrupt_sent", Typed("boolean")},
       {"status", Typed("string")},
       {"note", Typed("string")},
       {"warning", Typed("string")}});
}

json HealthOutput() {
  return OutputSchema({{"workspaces", Typed("array")}, {"summary", Typed("object")}});
}

json AgentDiffOutput() {
  return OutputSchema({{"agent_id", Typed("string")},
                       {"branch", Typed("string")},
                       {"base_sha", Typed("string")},
                       {"format", Typed("string")},
                       {"diff", Typed("string")},
                       {"truncated", Typed("boolean")},
                       {"summary", Typed("object")},
                       {"uncommitted_files", {{"type", "array"}, {"items", Typed("string")}}}});
}

json MergeOutput() {
  return OutputSchema({{"agent_id", Typed("string")},
                       {"merged", Typed("boolean")},
                       {"commit", Typed("string")},
                       {"into", Typed("string")},
                       {"strategy", Typed("string")},
                       {"files", {{"type", "array"}, {"items", Typed("string")}}}});
}

// ---- handlers -----------------------------------------------------------------
//
// Each turns the call's arguments into its request (which checks them
// against the request's parameters) and runs it.

using Handler = Result<json> (*)(const Orchestrator& orchestrator, const json& arguments,
                                 const CallContext& context);

bool Given(const json& arguments, const char* name) {
  return arguments.is_object() && arguments.contains(name) && !arguments[name].is_null();
}

// HERD_DEFAULT_BACKEND: the backend of MCP deploys that name none.
std::string DefaultBackend() {
  const char* backend = std::getenv("HERD_DEFAULT_BACKEND");
  return backend != nullptr && *backend != '\0' ? backend : agents::DeployRequest().backend;
}

Result<json> StartAgent(const Orchestrator& orchestrator, const agents::DeployRequest& request,
                        const CallContext& context) {
  context.Progress("starting a " + request.backend + " agent");
  return orchestrator.Deploy(request);
}

Result<json> CreateRealTask(const Orchestrator& orchestrator, const json& arguments,
                            const CallContext&) {
  Result<CreateTaskRequest> request = CreateTaskRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  return orchestrator.CreateTask(*request);
}

Result<json> DeployHeadlessAgent(const Orchestrator& orchestrator, const json& arguments,
                                 const CallContext& context) {
  Result<DeployAgentRequest> request = DeployAgentRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  if (!Given(arguments, "backend")) request->backend = DefaultBackend();
  return StartAgent(orchestrator, *request, context);
}

// A child runs on its parent's backend and model unless the caller names
// them; a command parent's argv is not inherited.
Status InheritFromParent(const Orchestrator& orchestrator, SpawnRequest* request) {
  // The entry only: no journals read, no processes checked.
  Result<registry::SharedTask> task = orchestrator.ReadTask(request->task_id);
  if (!task.ok()) return Status::Ok();  // the deploy says what is wrong with the task
  if (const registry::AgentRecord* parent = (*task)->task.FindAgent(request->parent)) {
    const std::string& parent_backend =
        parent->backend.empty() ? request->backend : parent->backend;
    if (!request->backend_given) {
      if (parent_backend == "command") {
        return Status::InvalidArgument(
            "parent " + request->parent +
            " is a command agent, whose argv a child cannot inherit: give "
            "\"backend\" (and, for backend \"command\", \"command\") for the child");
      }
      request->backend = parent_backend;
    }
    if (!request->model_given && !parent->model.empty()) request->model = parent->model;
  }
  return Status::Ok();
}

Result<json> SpawnChildAgent(const Orchestrator& orchestrator, const json& arguments,
                             const CallContext& context) {
  Result<SpawnRequest> request = SpawnRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  if (!request->backend_given) request->backend = DefaultBackend();
  HERD_RETURN_IF_ERROR(InheritFromParent(orchestrator, &*request));
  return StartAgent(orchestrator, *request, context);
}

Result<json> GetRealTaskStatus(const Orchestrator& orchestrator, const json& arguments,
                               const CallContext&) {
  Result<StatusRequest> request = StatusRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  Result<json> status = orchestrator.TaskStatus(request->task_id);
  if (!status.ok()) return status.status();
  return FitAgentsList(std::move(*status), request->response_format);
}

Result<json> GetAgentOutput(const Orchestrator& orchestrator, const json& arguments,
                            const CallContext&) {
  Result<OutputRequest> request = OutputRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  return orchestrator.AgentOutput(*request);
}

Result<json> GetAgentDiff(const Orchestrator& orchestrator, const json& arguments,
                          const CallContext&) {
  HERD_ASSIGN_OR_RETURN(DiffRequest request, DiffRequest::FromArguments(arguments));
  return orchestrator.AgentDiff(request);
}

Result<json> MergeAgentWork(const Orchestrator& orchestrator, const json& arguments,
                            const CallContext&) {
  HERD_ASSIGN_OR_RETURN(MergeRequest request, MergeRequest::FromArguments(arguments));
  return orchestrator.MergeAgentWork(request);
}

Result<json> KillRealAgent(const Orchestrator& orchestrator, const json& arguments,
                           const CallContext& context) {
  Result<KillRequest> request = KillRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  context.Progress("stopping " + request->agent_id);
  return orchestrator.Kill(*request);
}

Result<json> StopTask(const Orchestrator& orchestrator, const json& arguments,
                      const CallContext& context) {
  Result<StopTaskRequest> request = StopTaskRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  if (context.progress) context.progress("stopping every agent of " + request->task_id);
  Result<agents::TaskStopResult> stopped = orchestrator.StopTask(*request);
  if (!stopped.ok()) return stopped.status();
  return stopped->ToJson();
}

Result<json> SendAgentMessage(const Orchestrator& orchestrator, const json& arguments,
                              const CallContext&) {
  Result<SendMessageRequest> request = SendMessageRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  Result<agents::SentMessage> sent = orchestrator.SendMessage(*request);
  if (!sent.ok()) return sent.status();
  return sent->ToJson();
}

Result<json> UpdateAgentProgress(const Orchestrator& orchestrator, const json& arguments,
                                 const CallContext&) {
  Result<ProgressReport> report = ProgressReport::FromArguments(arguments);
  if (!report.ok()) return report.status();
  return orchestrator.ReportProgress(*report);
}

Result<json> ReportAgentFinding(const Orchestrator& orchestrator, const json& arguments,
                                const CallContext&) {
  Result<FindingReport> report = FindingReport::FromArguments(arguments);
  if (!report.ok()) return report.status();
  return orchestrator.ReportFinding(*report);
}

Result<json> GetHealthStatus(const Orchestrator& orchestrator, const json& arguments,
                             const CallContext& context) {
  Result<HealthRequest> request = HealthRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  health::DoctorOptions options;
  options.task_id = request->task_id;
  context.Progress("checking registries, processes and lock figures");
  return health::Diagnose(orchestrator.stores(), orchestrator.workspace(), options);
}

Result<json> WaitForAgents(const Orchestrator& orchestrator, const json& arguments,
                           const CallContext& context) {
  Result<WaitRequest> request = WaitRequest::FromArguments(arguments);
  if (!request.ok()) return request.status();
  WaitHooks hooks;
  hooks.progress = context.progress;
  hooks.stop = context.stop;
  Result<WaitReport> report = orchestrator.WaitForAgents(*request, hooks);
  if (!report.ok()) return report.status();
  return FitWaitReply(report->ToJson());
}

// ---- the tools ----------------------------------------------------------------

struct Hints {
  bool read_only = false;
  bool destructive = false;
  bool idempotent = false;
};

struct Tool {
  const char* name;
  const char* title;
  const char* description;
  Hints hints;
  const ParameterList& (*parameters)();  // the request's: the inputSchema
  json (*output_schema)();
  Handler handler;
  bool blocks = false;  // may wait for a long time (ToolSet::Blocks)
};

// In tools/list order.
const Tool kTools[] = {
    {"create_real_task",
     "Create task",
     "Create a task that agents will work on. Returns its task_id; then call "
     "deploy_headless_agent with it. Give client_cwd (the project's absolute path) so agents "
     "work in that project. Optional limits cap how many agents run at once, in all, and how "
     "deep children may nest.",
     {},
     CreateTaskRequest::Parameters,
     CreateTaskOutput,
     CreateRealTask},
    {"deploy_headless_agent",
     "Deploy agent",
     "Start a headless agent on a task. Returns as soon as the agent process has started, with "
     "its agent_id; follow it with get_real_task_status and get_agent_output. Refused (with the "
     "reason) when a task limit is reached.",
     {},
     DeployAgentRequest::Parameters,
     DeployOutput,
     DeployHeadlessAgent},
    {"get_real_task_status",
     "Task status",
     "A task's agents (status, progress, liveness, exit), their tree, the 10 newest progress "
     "updates, the 5 newest findings, limits and usage. Reads only. On a large task the agents "
     "are listed in summary form (agents.agents_list_format) so the reply fits MCP clients' "
     "output limits; response_format \"full\" asks for every field of every agent.",
     {.read_only = true, .idempotent = true},
     StatusRequest::Parameters,
     StatusOutput,
     GetRealTaskStatus},
    {"get_agent_output",
     "Agent output",
     "An agent's own output (its stream log), newest lines, capped to stay within client "
     "limits. Works for running and finished agents.",
     {.read_only = true, .idempotent = true},
     OutputRequest::Parameters,
     AgentOutputOutput,
     GetAgentOutput},
    {"get_agent_diff",
     "Agent diff",
     "What an agent deployed with worktree true changed in its own git worktree, against the "
     "commit it started from: committed, uncommitted and untracked files, as a patch, a stat "
     "or names only, capped by max_bytes. Works while it runs and after. Reads only; the "
     "agent's index is not touched.",
     {.read_only = true, .idempotent = true},
     DiffRequest::Parameters,
     AgentDiffOutput,
     GetAgentDiff},
    {"merge_agent_work",
     "Merge agent work",
     "Bring an ended agent's worktree branch back into its base branch (or into): squash "
     "(default), rebase or ff-only. Checked first with git merge-tree: on a conflict nothing "
     "changes and the error names the conflicting files. Refused while the agent runs, when "
     "the target checkout has uncommitted changes, and when the agent left uncommitted files "
     "unless commit_pending is true.",
     {.destructive = false},
     MergeRequest::Parameters,
     MergeOutput,
     MergeAgentWork},
    {"kill_real_agent",
     "Kill agent",
     "Stop an agent and every process it started (SIGTERM, then SIGKILL after the grace "
     "period) and mark it terminated. Its logs stay readable. The processes are stopped even "
     "when the registry cannot be written (a full disk): then registry_recorded is false and "
     "warning says what to do.",
     {.destructive = true, .idempotent = true},
     KillRequest::Parameters,
     KillOutput,
     KillRealAgent},
    {"stop_task",
     "Stop task",
     "Stop a whole task: every agent still running is marked terminated at once and stopped "
     "with everything it started (SIGTERM, then SIGKILL after the grace period; all agents in "
     "parallel), and later deploys to the task are refused with the reason. Use it to end a "
     "task, when its work is done or going wrong, instead of calling kill_real_agent for each "
     "agent; to stop one agent, use kill_real_agent. Calling it again is harmless. The reply "
     "counts the agents stopped and lists any that could not be.",
     {.destructive = true, .idempotent = true},
     StopTaskRequest::Parameters,
     StopTaskOutput,
     StopTask},
    {"update_agent_progress",
     "Report progress",
     "For agents: report your status and progress. Returns coordination_info with the other "
     "agents' status and their recent progress and findings.",
     {},
     ProgressReport::Parameters,
     ProgressOutput,
     UpdateAgentProgress},
    {"report_agent_finding",
     "Report finding",
     "For agents: record something you found, for the orchestrator and the other agents.",
     {},
     FindingReport::Parameters,
     FindingOutput,
     ReportAgentFinding},
    {"spawn_child_agent",
     "Spawn child agent",
     "For agents: start a child agent under you (depth and task limits apply). Returns as soon "
     "as it has started.",
     {},
     SpawnRequest::Parameters,
     DeployOutput,
     SpawnChildAgent},
    {"get_health_status",
     "Health status",
     "herd doctor's report without repairing: zombie entries, orphaned processes, count "
     "drift, global index mismatches, damaged or leftover files, and lock figures "
     "(p50/p95/p99/max wait, timeouts, recoveries). Reads only.",
     {.read_only = true, .idempotent = true},
     HealthRequest::Parameters,
     HealthOutput,
     GetHealthStatus},
    {"wait_for_agents",
     "Wait for agents",
     "Wait until a task's agents have ended, instead of polling get_real_task_status. Returns "
     "as soon as every agent named in agent_ids (default: every agent of the task that is "
     "active) has ended, or with mode \"any\" the first of them, or when timeout_seconds "
     "passes (default 50, under clients' 60 s tool-call limits). The reply gives each agent's "
     "final status, exit code, last message, final result, findings count and usage. A wait "
     "that times out is not an error: condition_met is false and still_active lists the "
     "agents still running; call wait_for_agents again to keep waiting. Reads only.",
     {.read_only = true, .idempotent = true},
     WaitRequest::Parameters,
     WaitOutput,
     WaitForAgents,
     /*blocks=*/true},
    {"send_agent_message",
     "Send a follow-up",
     "Say more to an agent after it started: a correction, the next step, an answer. The agent "
     "continues the same conversation (same agent_id, directory and session) in a new turn. "
     "To an agent that has ended, the turn starts now (task limits apply); to a running agent, "
     "the message is queued and runs when its current turn ends, or at once with interrupt "
     "true (the running turn is stopped first). Then call wait_for_agents to get the answer. "
     "The agent's record lists its turns, each with its exit and usage; its usage is their "
     "sum.",
     {},
     SendMessageRequest::Parameters,
     SendMessageOutput,
     SendAgentMessage},
};

const Tool* FindTool(const std::string& name) {
  for (const Tool& tool : kTools) {
    if (name == tool.name) return &tool;
  }
  return nullptr;
}

json Definition(const Tool& tool) {
  return {{"name", tool.name},
          {"title", tool.title},
          {"description", tool.description},
          {"inputSchema", InputSchema(tool.parameters())},
          {"outputSchema", tool.output_schema()},
          {"annotations",
           {{"title", tool.title},
            {"readOnlyHint", tool.hints.read_only},
            {"destructiveHint", tool.hints.destructive},
            {"idempotentHint", tool.hints.idempotent},
            {"openWorldHint", false}}},
          {"_meta", {{"anthropic/maxResultSizeChars", kDeclaredMaxResultChars}}}};
}

json BuildDefinitions() {
  json definitions = json::array();
  for (const Tool& tool : kTools) definitions.push_back(Definition(tool));
  return definitions;
}

}  // namespace

ToolSet::ToolSet(const Orchestrator& orchestrator)
    : orchestrator_(orchestrator), definitions_(BuildDefinitions()) {}

bool ToolSet::Has(const std::string& name) const {
  return FindTool(name) != nullptr;
}

bool ToolSet::Blocks(const std::string& name) const {
  const Tool* tool = FindTool(name);
  return tool != nullptr && tool->blocks;
}

ToolOutcome ToolSet::Call(const std::string& name, const json& arguments,
                          const CallContext& context) const {
  ToolOutcome outcome;
  if (!arguments.is_null() && !arguments.is_object()) {
    outcome.structured = {{"success", false}, {"error", "arguments must be a JSON object"}};
    outcome.is_error = true;
    return outcome;
  }
  Result<json> result = Status::InvalidArgument("unknown tool " + name);
  try {
    if (const Tool* tool = FindTool(name))
      result = tool->handler(orchestrator_, arguments, context);
  } catch (const std::exception& error) {
    result = Status::InvalidArgument(std::string("internal error: ") + error.what());
  }
  if (!result.ok()) {
    outcome.structured = {{"success", false}, {"error", result.status().message()}};
    outcome.is_error = true;
    return outcome;
  }
  outcome.structured = std::move(result).value();
  outcome.structured["success"] = true;
  return outcome;
}

json ToolSet::ListResources() const {
  json resources = json::array();
  resources.push_back({{"uri", "tasks://list"},
                       {"name", "tasks"},
                       {"title", "All tasks"},
                       {"description",
                        "every task herd knows, across workspace bases, newest first (the "
                        "newest 64 KB of them when there are very many)"},
                       {"mimeType", "application/json"}});
  size_t listed = 0;
  for (const TaskListing& listing : orchestrator_.TaskListings()) {
    if (++listed > 50) break;  // the newest; the rest are reachable by template
    const std::string& task_id = listing.task.task_id;
    resources.push_back({{"uri", "task://" + task_id + "/status"},
                         {"name", task_id + " status"},
                         {"description", listing.task.description},
                         {"mimeType", "application/json"}});
  }
  return {{"resources", resources}};
}

json ToolSet::ListResourceTemplates() const {
  return {{"resourceTemplates",
           {{{"uriTemplate", "task://{task_id}/status"},
             {"name", "task status"},
             {"description", "the same content as get_real_task_status"},
             {"mimeType", "application/json"}},
            {{"uriTemplate", "task://{task_id}/progress-timeline"},
             {"name", "task progress timeline"},
             {"description",
              "progress updates and findings, oldest first, tagged entry_type (the newest "
              "64 KB of them on a large task)"},
             {"mimeType", "application/json"}}}}};
}

std::optional<TaskResourceUri> ParseTaskResourceUri(const std::string& uri) {
  const std::string prefix = "task://";
  if (uri.rfind(prefix, 0) != 0) return std::nullopt;
  size_t slash = uri.find('/', prefix.size());
  if (slash == std::string::npos) return std::nullopt;
  TaskResourceUri parsed;
  parsed.task_id = uri.substr(prefix.size(), slash - prefix.size());
  std::string view = uri.substr(slash + 1);
  if (view == "status") {
    parsed.view = TaskResourceUri::View::kStatus;
  } else if (view == "progress-timeline") {
    parsed.view = TaskResourceUri::View::kProgressTimeline;
  } else {
    return std::nullopt;
  }
  return parsed;
}

Result<json> ToolSet::ReadResource(const std::string& uri) const {
  Result<json> content = Status::NotFound("unknown resource " + uri);
  std::optional<TaskResourceUri> task_resource = ParseTaskResourceUri(uri);
  if (uri == "tasks://list") {
    content = orchestrator_.ListTasks();
    if (content.ok()) content = FitTaskList(std::move(*content));
  } else if (task_resource) {
    const std::string& task_id = task_resource->task_id;
    if (task_resource->view == TaskResourceUri::View::kStatus) {
      content = orchestrator_.TaskStatus(task_id);
      if (content.ok()) content = FitAgentsList(std::move(*content), "auto");
    } else {
      content = orchestrator_.ProgressTimeline(task_id);
      if (content.ok()) content = FitTimeline(std::move(*content));
    }
    if (!content.ok() && !content.status().Is(Status::Code::kNotFound) &&
        !content.status().Is(Status::Code::kInvalidArgument)) {
      return content.status();
    }
    if (!content.ok()) return Status::NotFound(content.status().message());
  }
  if (!content.ok()) return content.status();
  return json{{"contents",
               {{{"uri", uri},
                 {"mimeType", "application/json"},
                 {"text", content->dump(-1, ' ', false, json::error_handler_t::replace)}}}}};
}

}  // namespace herd::mcp
