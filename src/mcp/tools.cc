#include "mcp/tools.h"

#include <cstdlib>
#include <limits>
#include <set>

#include "agents/backend.h"
#include "agents/killer.h"
#include "health/doctor.h"
#include "mcp/client_limits.h"
#include "registry/task_registry.h"

namespace herd::mcp {
namespace {

// ---- schema building ------------------------------------------------------

json StringProperty(const std::string& description) {
  return {{"type", "string"}, {"description", description}};
}

json EnumProperty(const std::vector<std::string>& values, const std::string& description) {
  return {{"type", "string"}, {"enum", values}, {"description", description}};
}

json IntegerProperty(const std::string& description, int minimum, int maximum) {
  return {{"type", "integer"},
          {"minimum", minimum},
          {"maximum", maximum},
          {"description", description}};
}

json StringList(const std::string& description) {
  return {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", description}};
}

json ObjectSchema(json properties, std::vector<std::string> required) {
  json schema = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = required;
  return schema;
}

// Output schemas describe the keys every result has; failures are
// {success:false, error} and validate too.
json OutputSchema(json properties) {
  properties["success"] = {{"type", "boolean"}};
  properties["error"] = {{"type", "string"}, {"description", "why the call failed, when it did"}};
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", {"success"}}};
}

json Annotations(const std::string& title, bool read_only, bool destructive, bool idempotent) {
  return {{"title", title},
          {"readOnlyHint", read_only},
          {"destructiveHint", destructive},
          {"idempotentHint", idempotent},
          {"openWorldHint", false}};
}

json Tool(const std::string& name, const std::string& title, const std::string& description,
          json input, json output, json annotations) {
  return {{"name", name},
          {"title", title},
          {"description", description},
          {"inputSchema", std::move(input)},
          {"outputSchema", std::move(output)},
          {"annotations", std::move(annotations)}};
}

const std::vector<std::string> kStatuses = {"running", "working",    "blocked", "completed",
                                            "error",   "terminated", "failed"};

json BuildDefinitions() {
  json ids = {{"task_id", StringProperty("the task id, e.g. TASK-20261127-034936-1a2b3c4d")}};
  json agent_ref = ids;
  agent_ref["agent_id"] = StringProperty("the agent id (from your prompt's \"Agent ID:\" line)");
  json deploy_output = OutputSchema({{"agent_id", {{"type", "string"}}},
                                     {"task_id", {{"type", "string"}}},
                                     {"type", {{"type", "string"}}},
                                     {"parent", {{"type", "string"}}},
                                     {"depth", {{"type", "integer"}}},
                                     {"status", {{"type", "string"}}},
                                     {"pid", {{"type", {"integer", "null"}}}},
                                     {"workspace", {{"type", "string"}}}});
  json coordination = {{"type", "object"},
                       {"description", "the other agents' status, recent progress and findings"}};

  json tools = json::array();
  tools.push_back(Tool(
      "create_real_task", "Create task",
      "Create a task that agents will work on. Returns its task_id; then call "
      "deploy_headless_agent with it. Give client_cwd (the project's absolute path) so agents "
      "work in that project. Optional limits cap how many agents run at once, in all, and how "
      "deep children may nest.",
      ObjectSchema(
          {{"description", StringProperty("what the agents should achieve")},
           {"priority",
            EnumProperty({"P0", "P1", "P2", "P3", "P4"}, "P0 is most urgent; default P2")},
           {"client_cwd", StringProperty("absolute path of the project the agents work in")},
           {"background_context", StringProperty("background the agents need")},
           {"expected_deliverables", StringList("what should exist when the task is done")},
           {"success_criteria", StringList("how to tell the task is done")},
           {"constraints", StringList("rules the agents must follow")},
           {"relevant_files", StringList("paths the agents should look at")},
           {"conversation_history",
            {{"type", "array"},
             {"description", "relevant earlier conversation"},
             {"items", ObjectSchema({{"role", {{"type", "string"}}},
                                     {"content", {{"type", "string"}}},
                                     {"timestamp", {{"type", "string"}}}},
                                    {"role", "content"})}}},
           {"max_agents", IntegerProperty("agents in the task's lifetime (default 45)", 1, 100000)},
           {"max_concurrent", IntegerProperty("agents active at once (default 20)", 1, 100000)},
           {"max_depth", IntegerProperty("depth of the parent/child tree (default 5)", 1, 100000)},
           {"max_cost_usd",
            {{"type", "number"},
             {"exclusiveMinimum", 0},
             {"description", "stop the task's agents once their reported cost passes this"}}},
           {"max_tokens",
            {{"type", "integer"},
             {"minimum", 1},
             {"description", "stop the task's agents once their tokens together pass this"}}},
           {"agent_timeout_seconds",
            IntegerProperty("stop an agent after this many seconds (0 = never)", 0, 604800)},
           {"agent_idle_timeout_seconds",
            IntegerProperty("stop an agent that prints nothing this long (0 = never)", 0, 604800)},
           {"isolate_agent_config",
            {{"type", "boolean"},
             {"description", "give each Claude Code agent its own CLAUDE_CONFIG_DIR"}}}},
          {"description"}),
      OutputSchema({{"task_id", {{"type", "string"}}},
                    {"description", {{"type", "string"}}},
                    {"priority", {{"type", "string"}}},
                    {"workspace", {{"type", "string"}}},
                    {"status", {{"type", "string"}}},
                    {"has_enhanced_context", {{"type", "boolean"}}},
                    {"validation_warnings", {{"type", "array"}, {"items", {{"type", "string"}}}}}}),
      Annotations("Create task", false, false, false)));

  json deploy_input = ids;
  deploy_input["agent_type"] = StringProperty("the agent's role, e.g. investigator or tester");
  deploy_input["prompt"] = StringProperty("the agent's instructions (any length)");
  deploy_input["parent"] = StringProperty("parent agent id; default \"orchestrator\"");
  deploy_input["backend"] =
      EnumProperty(agents::BackendNames(), "agent CLI to run; default claude");
  deploy_input["model"] = StringProperty("model name passed to the agent CLI");
  deploy_input["command"] = StringList("for backend \"command\": the program and its arguments");
  deploy_input["tmux"] = {{"type", "boolean"},
                          {"description", "also open a tmux session following the agent's output"}};
  deploy_input["isolate_config"] = {
      {"type", "boolean"},
      {"description", "give this Claude Code agent its own CLAUDE_CONFIG_DIR"}};
  tools.push_back(Tool(
      "deploy_headless_agent", "Deploy agent",
      "Start a headless agent on a task. Returns as soon as the agent process has started, with "
      "its agent_id; follow it with get_real_task_status and get_agent_output. Refused (with the "
      "reason) when a task limit is reached.",
      ObjectSchema(deploy_input, {"task_id", "agent_type", "prompt"}), deploy_output,
      Annotations("Deploy agent", false, false, false)));

  json status_input = ids;
  status_input["response_format"] = EnumProperty(
      {"auto", "full", "summary"},
      "agent entries: auto (default) gives full entries while they fit about 64 KB and "
      "summaries beyond; summary always; full always (may exceed a client's limit)");

  tools.push_back(Tool(
      "get_real_task_status", "Task status",
      "A task's agents (status, progress, liveness, exit), their tree, the 10 newest progress "
      "updates, the 5 newest findings, limits and usage. Reads only. On a large task the agents "
      "are listed in summary form (agents.agents_list_format) so the reply fits MCP clients' "
      "output limits; response_format \"full\" asks for every field of every agent.",
      ObjectSchema(status_input, {"task_id"}),
      OutputSchema({{"task_id", {{"type", "string"}}},
                    {"status", {{"type", "string"}}},
                    {"agents", {{"type", "object"}}},
                    {"hierarchy", {{"type", "object"}}},
                    {"enhanced_progress", {{"type", "object"}}},
                    {"limits", {{"type", "object"}}}}),
      Annotations("Task status", true, false, true)));

  json output_input = agent_ref;
  output_input["tail"] = IntegerProperty("only the last N lines", 0, 1000000);
  output_input["filter"] = StringProperty(
      "only lines containing a match of this RE2 regular expression (Perl-like syntax without "
      "backreferences or lookaround; at most " +
      std::to_string(OutputRequest::kMaxFilterBytes) + " bytes)");
  output_input["filter"]["maxLength"] = OutputRequest::kMaxFilterBytes;
  output_input["format"] = EnumProperty({"text", "jsonl", "parsed"}, "default text");
  output_input["include_metadata"] = {{"type", "boolean"},
                                      {"description", "add file and exit info"}};
  output_input["max_bytes"] =
      IntegerProperty("cap on returned bytes (default 49152, max 4194304)", 1, 4194304);
  output_input["aggressive_truncate"] = {{"type", "boolean"},
                                         {"description", "same as response_format compact"}};
  output_input["response_format"] =
      EnumProperty({"full", "summary", "compact"}, "summary: last 20 lines; compact: 8 KB");
  tools.push_back(
      Tool("get_agent_output", "Agent output",
           "An agent's own output (its stream log), newest lines, capped to stay within client "
           "limits. Works for running and finished agents.",
           ObjectSchema(output_input, {"task_id", "agent_id"}),
           OutputSchema({{"agent_id", {{"type", "string"}}},
                         {"session_status", {{"type", "string"}}},
                         {"output", {{"type", {"string", "array"}}}},
                         {"source", {{"type", "string"}}},
                         {"truncated", {{"type", "boolean"}}}}),
           Annotations("Agent output", true, false, true)));

  json kill_input = agent_ref;
  kill_input["reason"] = StringProperty("recorded with the termination");
  kill_input["grace_seconds"] = {
      {"type", "number"},
      {"minimum", 0},
      {"maximum", agents::kMaxKillGraceSeconds},
      {"description", "SIGTERM to SIGKILL delay in seconds (default " +
                          std::to_string(agents::kDefaultKillGrace.count() / 1000) + ")"}};
  tools.push_back(
      Tool("kill_real_agent", "Kill agent",
           "Stop an agent and every process it started (SIGTERM, then SIGKILL after the grace "
           "period) and mark it terminated. Its logs stay readable. The processes are stopped even "
           "when the registry cannot be written (a full disk): then registry_recorded is false and "
           "warning says what to do.",
           ObjectSchema(kill_input, {"task_id", "agent_id"}),
           OutputSchema({{"agent_id", {{"type", "string"}}},
                         {"status", {{"type", "string"}}},
                         {"reason", {{"type", "string"}}},
                         {"registry_recorded",
                          {{"type", "boolean"},
                           {"description",
                            "false when the processes were stopped but the "
                            "termination could not be written to the registry"}}},
                         {"warning",
                          {{"type", "string"},
                           {"description", "what went wrong with the record and what to do"}}},
                         {"cleanup", {{"type", "object"}}}}),
           Annotations("Kill agent", false, true, true)));

  json progress_input = agent_ref;
  progress_input["status"] =
      EnumProperty(kStatuses, "your status; completed/error/failed are final");
  progress_input["message"] = StringProperty("what you did or found, one line");
  progress_input["message"]["maxLength"] = registry::kMaxReportMessageBytes;
  progress_input["progress"] = IntegerProperty("percent done", 0, 100);
  tools.push_back(Tool(
      "update_agent_progress", "Report progress",
      "For agents: report your status and progress. Returns coordination_info with the other "
      "agents' status and their recent progress and findings.",
      ObjectSchema(progress_input, {"task_id", "agent_id", "status", "message"}),
      OutputSchema({{"own_update", {{"type", "object"}}}, {"coordination_info", coordination}}),
      Annotations("Report progress", false, false, false)));

  json finding_input = agent_ref;
  finding_input["finding_type"] = StringProperty("e.g. issue, insight, recommendation, solution");
  finding_input["severity"] = EnumProperty(registry::FindingSeverities(), "how important");
  finding_input["message"] = StringProperty("the finding");
  finding_input["message"]["maxLength"] = registry::kMaxReportMessageBytes;
  finding_input["data"] = {{"type", "object"}, {"description", "structured details"}};
  tools.push_back(Tool(
      "report_agent_finding", "Report finding",
      "For agents: record something you found, for the orchestrator and the other agents.",
      ObjectSchema(finding_input, {"task_id", "agent_id", "finding_type", "severity", "message"}),
      OutputSchema({{"own_finding", {{"type", "object"}}}, {"coordination_info", coordination}}),
      Annotations("Report finding", false, false, false)));

  json spawn_input = ids;
  spawn_input["parent_agent_id"] = StringProperty("your own agent id");
  spawn_input["child_agent_type"] = StringProperty("the child's role");
  spawn_input["child_prompt"] = StringProperty("the child's instructions");
  spawn_input["backend"] = EnumProperty(agents::BackendNames(), "default: the parent's backend");
  spawn_input["model"] = StringProperty("default: the parent's model");
  tools.push_back(Tool(
      "spawn_child_agent", "Spawn child agent",
      "For agents: start a child agent under you (depth and task limits apply). Returns as soon "
      "as it has started.",
      ObjectSchema(spawn_input, {"task_id", "parent_agent_id", "child_agent_type", "child_prompt"}),
      deploy_output, Annotations("Spawn child agent", false, false, false)));
  tools.push_back(Tool(
      "get_health_status", "Health status",
      "herd doctor's report without repairing: zombie entries, orphaned processes, count "
      "drift, global index mismatches, damaged or leftover files, and lock figures "
      "(p50/p95/p99/max wait, timeouts, recoveries). Reads only.",
      ObjectSchema({{"task_id", StringProperty("check only this task (default: every task)")}}, {}),
      OutputSchema({{"workspaces", {{"type", "array"}}}, {"summary", {{"type", "object"}}}}),
      Annotations("Health status", true, false, true)));
  return tools;
}

// ---- argument access ------------------------------------------------------

class Arguments {
 public:
  explicit Arguments(const json& arguments) : arguments_(arguments) {}

  Result<std::string> RequiredString(const char* key) const {
    auto found = Find(key);
    if (found == nullptr || found->is_null()) {
      return Status::InvalidArgument(std::string("missing required argument \"") + key + "\"");
    }
    if (!found->is_string()) {
      return Status::InvalidArgument(std::string("argument \"") + key + "\" must be a string");
    }
    return found->get<std::string>();
  }

  Result<std::string> OptionalString(const char* key, const std::string& fallback) const {
    auto found = Find(key);
    if (found == nullptr || found->is_null()) return fallback;
    if (!found->is_string()) {
      return Status::InvalidArgument(std::string("argument \"") + key + "\" must be a string");
    }
    return found->get<std::string>();
  }

  Result<std::optional<long long>> OptionalInteger(const char* key, long long minimum,
                                                   long long maximum) const {
    auto found = Find(key);
    if (found == nullptr || found->is_null()) return std::optional<long long>();
    long long value = 0;
    if (found->is_number_integer()) {
      if (found->is_number_unsigned() &&
          found->get<unsigned long long>() > static_cast<unsigned long long>(maximum)) {
        return OutOfRange(key, minimum, maximum);
      }
      value = found->get<long long>();
    } else if (found->is_number_float()) {
      double number = found->get<double>();
      // Range first: converting an out-of-range double is undefined.
      if (!(number >= static_cast<double>(minimum) && number <= static_cast<double>(maximum))) {
        return OutOfRange(key, minimum, maximum);
      }
      if (number != static_cast<double>(static_cast<long long>(number))) {
        return Status::InvalidArgument(std::string("argument \"") + key + "\" must be an integer");
      }
      value = static_cast<long long>(number);
    } else {
      return Status::InvalidArgument(std::string("argument \"") + key + "\" must be an integer");
    }
    if (value < minimum || value > maximum) return OutOfRange(key, minimum, maximum);
    return std::optional<long long>(value);
  }

  Result<std::optional<double>> OptionalNumber(const char* key, double minimum,
                                               double maximum) const {
    auto found = Find(key);
    if (found == nullptr || found->is_null()) return std::optional<double>();
    if (!found->is_number()) {
      return Status::InvalidArgument(std::string("argument \"") + key + "\" must be a number");
    }
    double value = found->get<double>();
    if (!(value >= minimum && value <= maximum)) {
      return Status::InvalidArgument(std::string("argument \"") + key + "\" must be between " +
                                     std::to_string(minimum) + " and " + std::to_string(maximum));
    }
    return std::optional<double>(value);
  }

  Result<bool> OptionalBool(const char* key, bool fallback) const {
    auto found = Find(key);
    if (found == nullptr || found->is_null()) return fallback;
    if (!found->is_boolean()) {
      return Status::InvalidArgument(std::string("argument \"") + key + "\" must be true or false");
    }
    return found->get<bool>();
  }

  const json* Find(const char* key) const {
    if (!arguments_.is_object()) return nullptr;
    auto found = arguments_.find(key);
    return found == arguments_.end() ? nullptr : &*found;
  }

 private:
  static Status OutOfRange(const char* key, long long minimum, long long maximum) {
    return Status::InvalidArgument(std::string("argument \"") + key + "\" must be between " +
                                   std::to_string(minimum) + " and " + std::to_string(maximum));
  }

  const json& arguments_;
};

using Handler =
    std::function<Result<json>(const Orchestrator&, const Arguments&, const ProgressReporter&)>;

Result<json> CreateRealTask(const Orchestrator& orchestrator, const Arguments& args,
                            const ProgressReporter&) {
  CreateTaskRequest request;
  HERD_ASSIGN_OR_RETURN(auto description, args.RequiredString("description"));
  HERD_ASSIGN_OR_RETURN(auto priority, args.OptionalString("priority", "P2"));
  HERD_ASSIGN_OR_RETURN(auto client_cwd, args.OptionalString("client_cwd", ""));
  request.description = description;
  request.priority = priority;
  request.client_cwd = client_cwd;
  for (const char* key : {"background_context", "expected_deliverables", "success_criteria",
                          "constraints", "relevant_files", "conversation_history"}) {
    const json* value = args.Find(key);
    if (value != nullptr && !value->is_null()) request.context[key] = *value;
  }
  HERD_ASSIGN_OR_RETURN(auto max_agents, args.OptionalInteger("max_agents", 1, 100000));
  HERD_ASSIGN_OR_RETURN(auto max_concurrent, args.OptionalInteger("max_concurrent", 1, 100000));
  HERD_ASSIGN_OR_RETURN(auto max_depth, args.OptionalInteger("max_depth", 1, 100000));
  if (max_agents) request.max_agents = static_cast<int>(*max_agents);
  if (max_concurrent) request.max_concurrent = static_cast<int>(*max_concurrent);
  if (max_depth) request.max_depth = static_cast<int>(*max_depth);
  HERD_ASSIGN_OR_RETURN(auto max_cost, args.OptionalNumber("max_cost_usd", 1e-9, 1e9));
  HERD_ASSIGN_OR_RETURN(auto max_tokens, args.OptionalInteger("max_tokens", 1, 1LL << 50));
  HERD_ASSIGN_OR_RETURN(auto timeout, args.OptionalInteger("agent_timeout_seconds", 0, 604800));
  HERD_ASSIGN_OR_RETURN(auto idle, args.OptionalInteger("agent_idle_timeout_seconds", 0, 604800));
  HERD_ASSIGN_OR_RETURN(auto isolate, args.OptionalBool("isolate_agent_config", false));
  if (max_cost) request.budget.max_cost_usd = *max_cost;
  if (max_tokens) request.budget.max_tokens = *max_tokens;
  if (timeout) request.timeouts.wall_clock_seconds = static_cast<int>(*timeout);
  if (idle) request.timeouts.idle_seconds = static_cast<int>(*idle);
  request.isolate_agent_config = isolate;
  return orchestrator.CreateTask(request);
}

std::string DefaultBackend() {
  const char* backend = std::getenv("HERD_DEFAULT_BACKEND");
  return backend != nullptr && *backend != '\0' ? backend : "claude";
}

Result<json> Deploy(const Orchestrator& orchestrator, agents::DeployRequest request,
                    const Arguments& args, const ProgressReporter& progress) {
  HERD_ASSIGN_OR_RETURN(auto backend, args.OptionalString("backend", request.backend));
  HERD_ASSIGN_OR_RETURN(auto model, args.OptionalString("model", request.model));
  request.backend = backend;
  request.model = model;
  HERD_ASSIGN_OR_RETURN(auto isolate, args.OptionalBool("isolate_config", false));
  HERD_ASSIGN_OR_RETURN(auto tmux, args.OptionalBool("tmux", false));
  request.isolate_config = isolate;
  request.tmux = tmux;
  if (const json* command = args.Find("command"); command != nullptr && !command->is_null()) {
    if (!command->is_array()) {
      return Status::InvalidArgument("argument \"command\" must be a list of strings");
    }
    for (const json& word : *command) {
      if (!word.is_string()) {
        return Status::InvalidArgument("argument \"command\" must be a list of strings");
      }
      request.command_argv.push_back(word.get<std::string>());
    }
  }
  progress("starting a " + request.backend + " agent");
  return orchestrator.Deploy(request);
}

Result<json> DeployHeadlessAgent(const Orchestrator& orchestrator, const Arguments& args,
                                 const ProgressReporter& progress) {
  agents::DeployRequest request;
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto agent_type, args.RequiredString("agent_type"));
  HERD_ASSIGN_OR_RETURN(auto prompt, args.RequiredString("prompt"));
  HERD_ASSIGN_OR_RETURN(auto parent, args.OptionalString("parent", registry::kOrchestratorParent));
  request.task_id = task_id;
  request.agent_type = agent_type;
  request.prompt = prompt;
  request.parent = parent;
  request.backend = DefaultBackend();
  return Deploy(orchestrator, std::move(request), args, progress);
}

Result<json> SpawnChildAgent(const Orchestrator& orchestrator, const Arguments& args,
                             const ProgressReporter& progress) {
  agents::DeployRequest request;
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto parent, args.RequiredString("parent_agent_id"));
  HERD_ASSIGN_OR_RETURN(auto agent_type, args.RequiredString("child_agent_type"));
  HERD_ASSIGN_OR_RETURN(auto prompt, args.RequiredString("child_prompt"));
  request.task_id = task_id;
  request.parent = parent;
  request.agent_type = agent_type;
  request.prompt = prompt;
  request.backend = DefaultBackend();
  // A child runs on its parent's backend and model unless the caller names
  // them; a command parent's argv is not inherited.
  Result<json> status = orchestrator.TaskStatus(task_id);
  if (status.ok()) {
    for (const json& agent : (*status)["agents"]["agents_list"]) {
      if (agent.value("id", "") != parent) continue;
      std::string parent_backend = agent.value("backend", request.backend);
      if (parent_backend == "command" && args.Find("backend") == nullptr) {
        return Status::InvalidArgument(
            "parent " + parent +
            " is a command agent, whose argv a child cannot inherit: give "
            "\"backend\" (and, for backend \"command\", \"command\") for the child");
      }
      request.backend = parent_backend;
      if (agent.value("model", json(nullptr)).is_string()) request.model = agent["model"];
    }
  }
  return Deploy(orchestrator, std::move(request), args, progress);
}

Result<json> GetRealTaskStatus(const Orchestrator& orchestrator, const Arguments& args,
                               const ProgressReporter&) {
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto response_format, args.OptionalString("response_format", "auto"));
  static const std::set<std::string> kFormats = {"auto", "full", "summary"};
  if (kFormats.count(response_format) == 0) {
    return Status::InvalidArgument("response_format must be auto, full or summary");
  }
  Result<json> status = orchestrator.TaskStatus(task_id);
  if (!status.ok()) return status.status();
  return FitAgentsList(std::move(*status), response_format);
}

Result<json> GetAgentOutput(const Orchestrator& orchestrator, const Arguments& args,
                            const ProgressReporter&) {
  OutputRequest request;
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto agent_id, args.RequiredString("agent_id"));
  HERD_ASSIGN_OR_RETURN(auto tail, args.OptionalInteger("tail", 0, 1000000));
  HERD_ASSIGN_OR_RETURN(auto filter, args.OptionalString("filter", ""));
  HERD_ASSIGN_OR_RETURN(auto format, args.OptionalString("format", "text"));
  HERD_ASSIGN_OR_RETURN(auto metadata, args.OptionalBool("include_metadata", false));
  HERD_ASSIGN_OR_RETURN(auto max_bytes, args.OptionalInteger("max_bytes", 1, 4194304));
  HERD_ASSIGN_OR_RETURN(auto aggressive, args.OptionalBool("aggressive_truncate", false));
  HERD_ASSIGN_OR_RETURN(auto response_format, args.OptionalString("response_format", "full"));
  request.task_id = task_id;
  request.agent_id = agent_id;
  if (tail) request.tail = static_cast<size_t>(*tail);
  request.filter = filter;
  request.format = format;
  request.include_metadata = metadata;
  if (max_bytes) request.max_bytes = static_cast<size_t>(*max_bytes);
  request.response_format = aggressive ? "compact" : response_format;
  return orchestrator.AgentOutput(request);
}

Result<json> KillRealAgent(const Orchestrator& orchestrator, const Arguments& args,
                           const ProgressReporter& progress) {
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto agent_id, args.RequiredString("agent_id"));
  HERD_ASSIGN_OR_RETURN(auto reason, args.OptionalString("reason", "Manual termination"));
  HERD_ASSIGN_OR_RETURN(auto grace,
                        args.OptionalNumber("grace_seconds", 0, agents::kMaxKillGraceSeconds));
  progress("stopping " + agent_id);
  return orchestrator.Kill(
      task_id, agent_id, reason,
      grace ? agents::KillGraceFromSeconds(*grace) : agents::kDefaultKillGrace);
}

Result<json> UpdateAgentProgress(const Orchestrator& orchestrator, const Arguments& args,
                                 const ProgressReporter&) {
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto agent_id, args.RequiredString("agent_id"));
  HERD_ASSIGN_OR_RETURN(auto status, args.RequiredString("status"));
  HERD_ASSIGN_OR_RETURN(auto message, args.RequiredString("message"));
  HERD_ASSIGN_OR_RETURN(auto progress, args.OptionalInteger("progress", 0, 100));
  return orchestrator.ReportProgress(task_id, agent_id, status, message,
                                     static_cast<int>(progress.value_or(0)));
}

Result<json> ReportAgentFinding(const Orchestrator& orchestrator, const Arguments& args,
                                const ProgressReporter&) {
  HERD_ASSIGN_OR_RETURN(auto task_id, args.RequiredString("task_id"));
  HERD_ASSIGN_OR_RETURN(auto agent_id, args.RequiredString("agent_id"));
  HERD_ASSIGN_OR_RETURN(auto finding_type, args.RequiredString("finding_type"));
  HERD_ASSIGN_OR_RETURN(auto severity, args.RequiredString("severity"));
  HERD_ASSIGN_OR_RETURN(auto message, args.RequiredString("message"));
  json data = json::object();
  if (const json* given = args.Find("data"); given != nullptr && !given->is_null()) {
    if (!given->is_object()) return Status::InvalidArgument("argument \"data\" must be an object");
    data = *given;
  }
  return orchestrator.ReportFinding(task_id, agent_id, finding_type, severity, message, data);
}

Result<json> GetHealthStatus(const Orchestrator& orchestrator, const Arguments& args,
                             const ProgressReporter& progress) {
  HERD_ASSIGN_OR_RETURN(auto task_id, args.OptionalString("task_id", ""));
  health::DoctorOptions options;
  options.task_id = task_id;
  progress("checking registries, processes and lock figures");
  return health::Diagnose(orchestrator.stores(), orchestrator.workspace(), options);
}

const std::map<std::string, Handler>& Handlers() {
  static const std::map<std::string, Handler> handlers = {
      {"create_real_task", CreateRealTask},         {"deploy_headless_agent", DeployHeadlessAgent},
      {"get_real_task_status", GetRealTaskStatus},  {"get_agent_output", GetAgentOutput},
      {"kill_real_agent", KillRealAgent},           {"update_agent_progress", UpdateAgentProgress},
      {"report_agent_finding", ReportAgentFinding}, {"spawn_child_agent", SpawnChildAgent},
      {"get_health_status", GetHealthStatus},
  };
  return handlers;
}

}  // namespace

ToolSet::ToolSet(const Orchestrator& orchestrator)
    : orchestrator_(orchestrator), definitions_(BuildDefinitions()) {}

bool ToolSet::Has(const std::string& name) const {
  return Handlers().count(name) > 0;
}

ToolOutcome ToolSet::Call(const std::string& name, const json& arguments,
                          const ProgressReporter& progress) const {
  ToolOutcome outcome;
  if (!arguments.is_null() && !arguments.is_object()) {
    outcome.structured = {{"success", false}, {"error", "arguments must be a JSON object"}};
    outcome.is_error = true;
    return outcome;
  }
  Result<json> result = Status::InvalidArgument("unknown tool " + name);
  try {
    result = Handlers().at(name)(orchestrator_, Arguments(arguments), progress);
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
  Result<json> tasks = orchestrator_.ListTasks();
  if (tasks.ok()) {
    size_t listed = 0;
    for (const json& task : (*tasks)["tasks"]) {
      if (++listed > 50) break;  // the newest; the rest are reachable by template
      std::string task_id = task.value("task_id", "");
      resources.push_back({{"uri", "task://" + task_id + "/status"},
                           {"name", task_id + " status"},
                           {"description", task.value("description", "")},
                           {"mimeType", "application/json"}});
    }
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

Result<json> ToolSet::ReadResource(const std::string& uri) const {
  Result<json> content = Status::NotFound("unknown resource " + uri);
  const std::string task_prefix = "task://";
  if (uri == "tasks://list") {
    content = orchestrator_.ListTasks();
    if (content.ok()) content = FitTaskList(std::move(*content));
  } else if (uri.rfind(task_prefix, 0) == 0) {
    std::string rest = uri.substr(task_prefix.size());
    size_t slash = rest.find('/');
    std::string task_id = rest.substr(0, slash);
    std::string view = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (view == "status") {
      content = orchestrator_.TaskStatus(task_id);
      if (content.ok()) content = FitAgentsList(std::move(*content), "auto");
    } else if (view == "progress-timeline") {
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
