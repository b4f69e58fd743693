#include "orchestrator/requests.h"

#include "agents/backend.h"
#include "orchestrator/worktree_requests.h"

namespace herd {
namespace {

using Type = ParameterType;

// ---- rows several requests share --------------------------------------------

ParameterSpec TaskId() {
  return {.name = "task_id",
          .type = Type::kString,
          .description = "the task id, e.g. TASK-20261127-034936-1a2b3c4d",
          .required = true,
          .cli = "task_id"};
}

ParameterSpec AgentId() {
  return {.name = "agent_id",
          .type = Type::kString,
          .description = "the agent id (from your prompt's \"Agent ID:\" line)",
          .required = true,
          .cli = "agent_id"};
}

// max_agents, max_concurrent, max_depth: `shown` is the default a new task
// gets (none for an update, which leaves what is set).
ParameterSpec TaskLimit(const char* name, const char* description, json shown, const char* cli) {
  return {.name = name,
          .type = Type::kInteger,
          .description = description,
          .default_value = std::move(shown),
          .minimum = 1,
          .maximum = kMaxTaskLimit,
          .cli = cli};
}

ParameterSpec MaxCost() {
  return {.name = "max_cost_usd",
          .type = Type::kNumber,
          .description = "stop the task's agents once their reported cost passes this",
          .minimum = 0,
          .exclusive_minimum = true,
          .maximum = kMaxCostUsd,
          .cli = "--max-cost-usd"};
}

ParameterSpec MaxTokens() {
  return {.name = "max_tokens",
          .type = Type::kInteger,
          .description = "stop the task's agents once their tokens together pass this",
          .minimum = 1,
          .maximum = static_cast<double>(kMaxTokens),
          .cli = "--max-tokens"};
}

ParameterSpec AgentTimeout(const char* name, const char* description, int shown, const char* cli) {
  return {.name = name,
          .type = Type::kInteger,
          .description = description,
          .default_value = shown,
          .minimum = 0,
          .maximum = kMaxAgentTimeoutSeconds,
          .cli = cli};
}

// cursor-agent is not published where a test can install it (npm or
// Debian), so herd has never run it end to end: it is offered as
// experimental, and says so wherever a backend is chosen.
constexpr const char kBackendsTested[] =
    " (claude, codex, gemini and command are tested end to end with their real CLIs; "
    "cursor-agent is experimental: its CLI cannot be installed offline, so only its argv and "
    "event parsing are tested)";

ParameterSpec Backend(const std::string& description, json shown) {
  return {.name = "backend",
          .type = Type::kString,
          .description = description + kBackendsTested,
          .default_value = std::move(shown),
          .values = agents::BackendNames(),
          .cli = "--backend"};
}

ParameterSpec Model(const char* description) {
  return {.name = "model", .type = Type::kString, .description = description, .cli = "--model"};
}

// Options of a deploy and a spawn beyond who and what.
ParameterList DeployOptions() {
  return {
      {.name = "isolate_config",
       .type = Type::kBoolean,
       .description = "give this Claude Code agent its own CLAUDE_CONFIG_DIR",
       .cli = "--isolate-config"},
      {.name = "tmux",
       .type = Type::kBoolean,
       .description = "also open a tmux session following the agent's output, to attach to",
       .cli = "--tmux"},
      {.name = "node",
       .type = Type::kString,
       .description = "shared PostgreSQL registry only: the node (herd node run) to run it on; "
                      "default: the least loaded node with room",
       .cli = "--node"},
      {.name = "node_labels",
       .type = Type::kStringList,
       .description = "shared PostgreSQL registry only: run it on a node that has every one of "
                      "these labels",
       .cli = "--node-label"},
  };
}

// The placement a deploy or a spawn asks for, if any.
void GetPlacement(const CheckedArguments& checked, agents::DeployRequest* request) {
  if (!checked.Has("node") && !checked.Has("node_labels")) return;
  registry::PlacementRequest placement;
  checked.Get("node", &placement.node);
  checked.Get("node_labels", &placement.labels);
  request->placement = std::move(placement);
}

ParameterSpec Command() {
  return {.name = "command",
          .type = Type::kStringList,
          .description =
              "for backend \"command\": the agent's program and its arguments (on the "
              "command line, after --)",
          .cli = "argv"};
}

ParameterSpec ReportMessage(const char* description) {
  return {.name = "message",
          .type = Type::kString,
          .description = description,
          .required = true,
          .max_length = registry::kMaxReportMessageBytes,
          .cli = "--message"};
}

// A kill's or a stop's reason.
ParameterSpec Reason(const char* description) {
  return {.name = "reason",
          .type = Type::kString,
          .description = description,
          .default_value = kManualTermination,
          .cli = "--reason"};
}

// The grace between SIGTERM and SIGKILL, for a kill and a stop.
ParameterSpec KillGrace() {
  return {.name = "grace_seconds",
          .type = Type::kNumber,
          .description = "SIGTERM to SIGKILL delay in seconds",
          .default_value = std::chrono::duration<double>(agents::kDefaultKillGrace).count(),
          .minimum = 0,
          .maximum = agents::kMaxKillGraceSeconds,
          .cli = "--grace"};
}

ParameterList Concatenate(std::vector<ParameterList> lists) {
  ParameterList all;
  for (ParameterList& list : lists) all.insert(all.end(), list.begin(), list.end());
  return all;
}

}  // namespace

const std::vector<std::string>& CreateTaskRequest::Priorities() {
  static const std::vector<std::string> priorities = {"P0", "P1", "P2", "P3", "P4"};
  return priorities;
}

const std::vector<std::string>& OutputRequest::Formats() {
  static const std::vector<std::string> formats = {"text", "jsonl", "parsed"};
  return formats;
}

const std::vector<std::string>& OutputRequest::ResponseFormats() {
  static const std::vector<std::string> formats = {"full", "summary", "compact"};
  return formats;
}

// ---- create_real_task ---------------------------------------------------------

const std::vector<const char*>& CreateTaskRequest::ContextKeys() {
  static const std::vector<const char*> keys = {"background_context", "expected_deliverables",
                                                "success_criteria",   "constraints",
                                                "relevant_files",     "conversation_history"};
  return keys;
}

const ParameterList& CreateTaskRequest::Parameters() {
  static const registry::Limits limits;  // the defaults, before the environment
  static const ParameterList parameters = {
      {.name = "description",
       .type = Type::kString,
       .description = "what the agents should achieve",
       .required = true,
       .cli = "description"},
      {.name = "priority",
       .type = Type::kString,
       .description = "P0 is most urgent",
       .default_value = CreateTaskRequest().priority,
       .values = CreateTaskRequest::Priorities(),
       .cli = "--priority"},
      {.name = "client_cwd",
       .type = Type::kString,
       .description = "absolute path of the project the agents work in; the task goes in its "
                      ".agent-workspace",
       .cli = "--cwd"},
      TaskLimit("max_concurrent", "agents active at once", limits.max_concurrent,
                "--max-concurrent"),
      TaskLimit("max_agents", "agents in the task's lifetime", limits.max_agents, "--max-agents"),
      TaskLimit("max_depth", "depth of the parent/child tree", limits.max_depth, "--max-depth"),
      MaxCost(),
      MaxTokens(),
      AgentTimeout("agent_timeout_seconds", "stop an agent after this many seconds, 0 for never",
                   registry::AgentTimeouts().wall_clock_seconds, "--agent-timeout"),
      AgentTimeout("agent_idle_timeout_seconds",
                   "stop an agent that prints nothing for this many seconds, 0 for never",
                   registry::AgentTimeouts().idle_seconds, "--agent-idle-timeout"),
      {.name = "isolate_agent_config",
       .type = Type::kBoolean,
       .description = "give each Claude Code agent its own CLAUDE_CONFIG_DIR",
       .cli = "--isolate-config"},
      {.name = "worktree",
       .type = Type::kBoolean,
       .description = "give each agent you deploy its own git worktree and branch by default "
                      "(the project must be a git repository; a deploy may say worktree false)",
       .cli = "--worktree"},
      {.name = "notify_command",
       .type = Type::kString,
       .description = "shell command run once for each agent that ends (completed, failed, "
                      "killed, stopped by a limit), with HERD_EVENT, HERD_TASK_ID, "
                      "HERD_AGENT_ID, HERD_NEW_STATUS, HERD_REASON... in its environment; "
                      "default $HERD_NOTIFY_COMMAND",
       .cli = "--notify-command"},
      // The task context (on the command line: --context, one JSON object).
      {.name = "background_context",
       .type = Type::kString,
       .description = "background the agents need"},
      {.name = "expected_deliverables",
       .type = Type::kStringList,
       .description = "what should exist when the task is done"},
      {.name = "success_criteria",
       .type = Type::kStringList,
       .description = "how to tell the task is done"},
      {.name = "constraints",
       .type = Type::kStringList,
       .description = "rules the agents must follow"},
      {.name = "relevant_files",
       .type = Type::kStringList,
       .description = "paths the agents should look at"},
      {.name = "conversation_history",
       .type = Type::kObjectList,
       .description = "relevant earlier conversation",
       .items = {{"type", "object"},
                 {"properties",
                  {{"role", {{"type", "string"}}},
                   {"content", {{"type", "string"}}},
                   {"timestamp", {{"type", "string"}}}}},
                 {"required", {"role", "content"}}}},
  };
  return parameters;
}

Result<CreateTaskRequest> CreateTaskRequest::FromArguments(const json& arguments,
                                                           ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  CreateTaskRequest request;
  checked->Get("description", &request.description);
  checked->Get("priority", &request.priority);
  checked->Get("client_cwd", &request.client_cwd);
  for (const char* key : ContextKeys()) {
    if (const json* value = checked->Find(key)) request.context[key] = *value;
  }
  checked->Get("max_agents", &request.max_agents);
  checked->Get("max_concurrent", &request.max_concurrent);
  checked->Get("max_depth", &request.max_depth);
  checked->Get("max_cost_usd", &request.budget.max_cost_usd);
  checked->Get("max_tokens", &request.budget.max_tokens);
  checked->Get("agent_timeout_seconds", &request.timeouts.wall_clock_seconds);
  checked->Get("agent_idle_timeout_seconds", &request.timeouts.idle_seconds);
  checked->Get("isolate_agent_config", &request.isolate_agent_config);
  checked->Get("notify_command", &request.notify_command);
  checked->Get("worktree", &request.agent_worktrees);
  return request;
}

// ---- herd task limits ---------------------------------------------------------

const ParameterList& LimitsUpdate::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      TaskLimit("max_agents", "agents in the task's lifetime", nullptr, "--max-agents"),
      TaskLimit("max_concurrent", "agents active at once", nullptr, "--max-concurrent"),
      TaskLimit("max_depth", "depth of the parent/child tree", nullptr, "--max-depth"),
      MaxCost(),
      MaxTokens(),
  };
  return parameters;
}

Result<LimitsUpdate> LimitsUpdate::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  LimitsUpdate update;
  checked->Get("task_id", &update.task_id);
  checked->Get("max_agents", &update.max_agents);
  checked->Get("max_concurrent", &update.max_concurrent);
  checked->Get("max_depth", &update.max_depth);
  checked->Get("max_cost_usd", &update.budget.max_cost_usd);
  checked->Get("max_tokens", &update.budget.max_tokens);
  return update;
}

// ---- get_agent_output -----------------------------------------------------------

const ParameterList& OutputRequest::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      AgentId(),
      {.name = "tail",
       .type = Type::kInteger,
       .description = "only the last N lines",
       .minimum = 0,
       .maximum = kMaxTailLines,
       .cli = "--tail"},
      {.name = "filter",
       .type = Type::kString,
       .description = "only lines containing a match of this RE2 regular expression (Perl-like "
                      "syntax without backreferences or lookaround)",
       .max_length = kMaxFilterBytes},
      {.name = "format",
       .type = Type::kString,
       .description = "how the lines are returned",
       .default_value = OutputRequest().format,
       .values = OutputRequest::Formats()},
      {.name = "include_metadata", .type = Type::kBoolean, .description = "add file and exit info"},
      {.name = "max_bytes",
       .type = Type::kInteger,
       .description = "cap on returned bytes",
       .default_value = kDefaultMaxBytes,
       .minimum = 1,
       .maximum = kLargestMaxBytes},
      {.name = "aggressive_truncate",
       .type = Type::kBoolean,
       .description = "same as response_format compact"},
      {.name = "response_format",
       .type = Type::kString,
       .description = "summary: last 20 lines; compact: 8 KB",
       .default_value = OutputRequest().response_format,
       .values = OutputRequest::ResponseFormats()},
  };
  return parameters;
}

Result<OutputRequest> OutputRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  OutputRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("agent_id", &request.agent_id);
  checked->Get("tail", &request.tail);
  checked->Get("filter", &request.filter);
  checked->Get("format", &request.format);
  checked->Get("include_metadata", &request.include_metadata);
  checked->Get("max_bytes", &request.max_bytes);
  checked->Get("response_format", &request.response_format);
  bool aggressive = false;
  checked->Get("aggressive_truncate", &aggressive);
  if (aggressive) request.response_format = "compact";
  return request;
}

// ---- get_real_task_status ----------------------------------------------------------

const ParameterList& StatusRequest::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      {.name = "response_format",
       .type = Type::kString,
       .description = "agent entries: auto gives full entries while they fit about 64 KB and "
                      "summaries beyond; summary always; full always, which may exceed a "
                      "client's limit",
       .default_value = StatusRequest().response_format,
       .values = {"auto", "full", "summary"}},
  };
  return parameters;
}

Result<StatusRequest> StatusRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  StatusRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("response_format", &request.response_format);
  return request;
}

// ---- deploy_headless_agent -------------------------------------------------------------

const ParameterList& DeployAgentRequest::Parameters() {
  static const agents::DeployRequest defaults;
  static const ParameterList parameters = Concatenate({
      {TaskId(),
       {.name = "agent_type",
        .type = Type::kString,
        .description = "the agent's role, e.g. investigator or tester",
        .required = true,
        .cli = "--type"},
       {.name = "parent",
        .type = Type::kString,
        .description = "parent agent id",
        .default_value = defaults.parent,
        .cli = "--parent"},
       Backend("agent CLI to run", defaults.backend),
       Model("model name passed to the agent CLI")},
      DeployOptions(),
      WorktreeOptions(),
      {{.name = "prompt",
        .type = Type::kString,
        .description = "the agent's instructions (any length)",
        .required = true,
        .cli = "--prompt"},
       Command()},
  });
  return parameters;
}

Result<DeployAgentRequest> DeployAgentRequest::FromArguments(const json& arguments,
                                                             ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  DeployAgentRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("agent_type", &request.agent_type);
  checked->Get("parent", &request.parent);
  checked->Get("backend", &request.backend);
  checked->Get("model", &request.model);
  checked->Get("isolate_config", &request.isolate_config);
  checked->Get("tmux", &request.tmux);
  GetPlacement(*checked, &request);
  GetWorktreeOptions(*checked, &request.worktree);
  checked->Get("prompt", &request.prompt);
  checked->Get("command", &request.command_argv);
  return request;
}

// ---- spawn_child_agent ----------------------------------------------------------------

const ParameterList& SpawnRequest::Parameters() {
  static const ParameterList parameters = Concatenate({
      {TaskId(),
       {.name = "parent_agent_id",
        .type = Type::kString,
        .description = "your own agent id",
        .required = true},
       {.name = "child_agent_type",
        .type = Type::kString,
        .description = "the child's role",
        .required = true},
       {.name = "child_prompt",
        .type = Type::kString,
        .description = "the child's instructions",
        .required = true},
       Backend("agent CLI to run; default: the parent's backend", nullptr),
       Model("default: the parent's model"),
       Command()},
      DeployOptions(),
      WorktreeOptions(),
  });
  return parameters;
}

Result<SpawnRequest> SpawnRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  SpawnRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("parent_agent_id", &request.parent);
  checked->Get("child_agent_type", &request.agent_type);
  checked->Get("child_prompt", &request.prompt);
  request.backend_given = checked->Has("backend");
  request.model_given = checked->Has("model");
  checked->Get("backend", &request.backend);
  checked->Get("model", &request.model);
  checked->Get("command", &request.command_argv);
  checked->Get("isolate_config", &request.isolate_config);
  checked->Get("tmux", &request.tmux);
  GetPlacement(*checked, &request);
  GetWorktreeOptions(*checked, &request.worktree);
  return request;
}

// ---- kill_real_agent --------------------------------------------------------------------

const ParameterList& KillRequest::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      AgentId(),
      Reason("recorded with the termination"),
      KillGrace(),
  };
  return parameters;
}

namespace {

// reason and grace_seconds of a kill or a stop, read into their fields.
template <typename Request>
void GetReasonAndGrace(const CheckedArguments& checked, Request* request) {
  checked.Get("reason", &request->reason);
  std::optional<double> grace_seconds;
  checked.Get("grace_seconds", &grace_seconds);
  if (grace_seconds) request->grace = agents::KillGraceFromSeconds(*grace_seconds);
}

}  // namespace

Result<KillRequest> KillRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  KillRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("agent_id", &request.agent_id);
  GetReasonAndGrace(*checked, &request);
  return request;
}

// ---- stop_task ---------------------------------------------------------------------------

const ParameterList& StopTaskRequest::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      Reason("recorded on every agent it stops and on the task; later deploys to the task are "
             "refused, quoting it"),
      KillGrace(),
  };
  return parameters;
}

Result<StopTaskRequest> StopTaskRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  StopTaskRequest request;
  checked->Get("task_id", &request.task_id);
  GetReasonAndGrace(*checked, &request);
  return request;
}

// ---- update_agent_progress ---------------------------------------------------------------

const ParameterList& ProgressReport::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      AgentId(),
      {.name = "status",
       .type = Type::kString,
       .description = "your status; completed, error and failed are final",
       .required = true,
       .values = registry::AgentStatuses(),
       .cli = "--status"},
      ReportMessage("what you did or found, one line"),
      {.name = "progress",
       .type = Type::kInteger,
       .description = "percent done",
       .default_value = ProgressReport().progress,
       .minimum = 0,
       .maximum = 100,
       .cli = "--progress"},
  };
  return parameters;
}

Result<ProgressReport> ProgressReport::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  ProgressReport report;
  checked->Get("task_id", &report.task_id);
  checked->Get("agent_id", &report.agent_id);
  checked->Get("status", &report.status);
  checked->Get("message", &report.message);
  checked->Get("progress", &report.progress);
  return report;
}

// ---- report_agent_finding -----------------------------------------------------------------

const ParameterList& FindingReport::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      AgentId(),
      {.name = "finding_type",
       .type = Type::kString,
       .description = "e.g. issue, insight, recommendation, solution",
       .required = true,
       .cli = "--type"},
      {.name = "severity",
       .type = Type::kString,
       .description = "how important",
       .required = true,
       .values = registry::FindingSeverities(),
       .cli = "--severity"},
      ReportMessage("the finding"),
      {.name = "data", .type = Type::kObject, .description = "structured details", .cli = "--data"},
  };
  return parameters;
}

Result<FindingReport> FindingReport::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  FindingReport report;
  checked->Get("task_id", &report.task_id);
  checked->Get("agent_id", &report.agent_id);
  checked->Get("finding_type", &report.finding_type);
  checked->Get("severity", &report.severity);
  checked->Get("message", &report.message);
  checked->Get("data", &report.data);
  return report;
}

// ---- send_agent_message ----------------------------------------------------------------------

const ParameterList& SendMessageRequest::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      {.name = "agent_id",
       .type = Type::kString,
       .description = "the agent to send it to",
       .required = true,
       .cli = "agent_id"},
      {.name = "message",
       .type = Type::kString,
       .description = "what the agent should do next; it continues its conversation",
       .required = true,
       .max_length = agents::kMaxFollowUpMessageBytes,
       .cli = "message"},
      {.name = "interrupt",
       .type = Type::kBoolean,
       .description = "stop the agent's running turn first, so this message runs at once",
       .default_value = SendMessageRequest().interrupt,
       .cli = "--interrupt"},
  };
  return parameters;
}

Result<SendMessageRequest> SendMessageRequest::FromArguments(const json& arguments,
                                                             ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  SendMessageRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("agent_id", &request.agent_id);
  checked->Get("message", &request.message);
  checked->Get("interrupt", &request.interrupt);
  return request;
}

// ---- wait_for_agents -----------------------------------------------------------------------

const std::vector<std::string>& WaitRequest::Modes() {
  static const std::vector<std::string> modes = {"all", "any"};
  return modes;
}

const ParameterList& WaitRequest::Parameters() {
  static const ParameterList parameters = {
      TaskId(),
      {.name = "agent_ids",
       .type = Type::kStringList,
       .description = "the agents to wait for (default: every agent active when the wait "
                      "starts, and any started while it waits)",
       .cli = "agent_ids"},
      // On the command line: --all or --any (cli/commands.cc).
      {.name = "mode",
       .type = Type::kString,
       .description = "all: return once every one has ended; any: once one has",
       .default_value = WaitRequest().mode,
       .values = WaitRequest::Modes()},
      {.name = "timeout_seconds",
       .type = Type::kNumber,
       .description = "return after this many seconds even if agents are still running",
       .default_value = kDefaultTimeoutSeconds,
       .minimum = 0,
       .maximum = kMaxTimeoutSeconds,
       .cli = "--timeout"},
  };
  return parameters;
}

Result<WaitRequest> WaitRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  WaitRequest request;
  checked->Get("task_id", &request.task_id);
  checked->Get("agent_ids", &request.agent_ids);
  checked->Get("mode", &request.mode);
  checked->Get("timeout_seconds", &request.timeout_seconds);
  return request;
}

// ---- get_health_status -------------------------------------------------------------------

const ParameterList& HealthRequest::Parameters() {
  static const ParameterList parameters = {
      {.name = "task_id",
       .type = Type::kString,
       .description = "check only this task (default: every task)",
       .cli = "task_id"},
  };
  return parameters;
}

Result<HealthRequest> HealthRequest::FromArguments(const json& arguments, ArgumentNames names) {
  Result<CheckedArguments> checked = CheckArguments(Parameters(), arguments, names);
  if (!checked.ok()) return checked.status();
  HealthRequest request;
  checked->Get("task_id", &request.task_id);
  return request;
}

}  // namespace herd
