#include "cli/commands.h"

#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <list>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agents/notify_hook.h"
#include "agents/supervisor.h"
#include "cli/follow.h"
#include "cli/table.h"
#include "dashboard/dashboard.h"
#include "health/doctor.h"
#include "node/node_daemon.h"
#include "orchestrator/orchestrator.h"
#include "orchestrator/requests.h"
#include "registry/pg_registry.h"
#include "registry/pg_schema.h"
#include "registry/registries.h"
#include "registry/registry_setting.h"
#include "registry/task_registry.h"
#include "util/clock.h"
#include "util/directory_watch.h"
#include "util/json_parse.h"
#include "util/stop_signal.h"
#include "util/text_file.h"

namespace herd::cli {
namespace {

using nlohmann::json;

struct GlobalOptions {
  std::string workspace;
  std::string registry;  // --registry or HERD_REGISTRY (registry/registry_setting.h)
  bool json_output = false;
};

// The stores of this process, with the registry the setting selects
// (SelectProcessRegistry, once, before the command runs).
registry::RegistryStores& ProcessStores() {
  static registry::RegistryStores stores;
  return stores;
}

Orchestrator MakeOrchestrator(const GlobalOptions& options) {
  return Orchestrator(registry::Workspace::Resolve(options.workspace), ProcessStores());
}

std::string Text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Prints a result (JSON or `render`ed text) or an error; returns the exit code.
int Report(const GlobalOptions& options, const Result<json>& result,
           const std::function<std::string(const json&)>& render) {
  if (!result.ok()) {
    if (options.json_output) {
      json error = {{"success", false}, {"error", result.status().message()}};
      std::cout << error.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    }
    std::cerr << "herd: " << result.status().message() << "\n";
    return kExitFailed;
  }
  if (options.json_output) {
    json output = *result;
    output["success"] = true;
    std::cout << output.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    std::cout << render(*result);
  }
  std::cout.flush();
  return kExitOk;
}

// Prints a typed result: its reply JSON with --json, else `render`ed text.
template <typename Value>
int ReportValue(const GlobalOptions& options, const Result<Value>& result,
                std::string (*render)(const Value&)) {
  if (!result.ok()) return Report(options, result.status(), nullptr);
  if (options.json_output) {
    return Report(options, result->ToJson(), [](const json&) { return std::string(); });
  }
  std::cout << render(*result);
  std::cout.flush();
  return kExitOk;
}

std::string ExitText(const registry::AgentRecord& agent) {
  if (!agent.exit) return "-";
  if (agent.exit->exit_code) return "code " + std::to_string(*agent.exit->exit_code);
  if (agent.exit->exit_signal) return "signal " + std::to_string(*agent.exit->exit_signal);
  return "-";
}

// Own tokens (and cost once reported); the subtree's figures are in --json.
std::string OwnUsageText(const registry::AgentRecord& agent) {
  registry::Usage own = registry::AgentUsage(agent);
  if (own.total_tokens <= 0 && own.total_cost_usd <= 0) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%lld tok $%.4f", own.total_tokens, own.total_cost_usd);
  return text;
}

std::string LastMessage(const registry::AgentRecord& agent) {
  return agent.termination_reason.value_or(agent.error.value_or(agent.last_message.value_or("")));
}

// "running", "completed, turn 2", "running, 2 queued" (registry/turns.h).
std::string StatusText(const registry::AgentRecord& agent) {
  std::string text = agent.status;
  if (agent.turn > 1) text += ", turn " + std::to_string(agent.turn);
  if (!agent.message_queue.empty()) {
    text += ", " + std::to_string(agent.message_queue.size()) + " queued";
  }
  return text;
}

std::string RenderAgents(const TaskStatusReport& report) {
  Table table({"AGENT", "TYPE", "STATUS", "PROGRESS", "DEPTH", "PARENT", "PID", "LIVENESS", "EXIT",
               "USAGE", "LAST MESSAGE"});
  const std::vector<registry::AgentRecord>& agents = report.task().agents;
  for (size_t i = 0; i < agents.size(); ++i) {
    const registry::AgentRecord& agent = agents[i];
    table.AddRow({agent.id, agent.type, StatusText(agent), std::to_string(agent.progress) + "%",
                  std::to_string(agent.depth), agent.parent,
                  agent.process.recorded() ? std::to_string(agent.process.pid) : "-",
                  agents::LivenessName(report.liveness[i]), ExitText(agent), OwnUsageText(agent),
                  LastMessage(agent)});
  }
  return table.Render(48);
}

std::string RenderUsage(const registry::Usage& usage) {
  if (usage.total_cost_usd <= 0 && usage.total_tokens <= 0) return "";
  char cost[32];
  std::snprintf(cost, sizeof cost, "%.4f", usage.total_cost_usd);
  return "usage: $" + std::string(cost) + ", " + std::to_string(usage.num_turns) + " turns, " +
         std::to_string(usage.input_tokens) + " input + " + std::to_string(usage.output_tokens) +
         " output tokens (" + std::to_string(usage.total_tokens) + " with cache)\n";
}

std::string RenderReports(const TaskStatusReport& report) {
  std::ostringstream out;
  if (!report.recent_updates.empty()) {
    out << "\nrecent progress (" << report.total_progress_entries << " in all):\n";
    for (const registry::ProgressUpdate& update : report.recent_updates) {
      out << "  " << update.timestamp << "  " << update.agent_id << "  " << update.status << " "
          << update.progress << "%  " << update.message << "\n";
    }
  }
  if (!report.recent_findings.empty()) {
    out << "\nrecent findings (" << report.total_findings << " in all):\n";
    for (const registry::Finding& finding : report.recent_findings) {
      out << "  " << finding.timestamp << "  " << finding.agent_id << "  [" << finding.severity
          << "] " << finding.finding_type << ": " << finding.message << "\n";
    }
  }
  return out.str();
}

// Each agent's own worktree: branch, changes, commits ahead, dirt.
std::string RenderWorktrees(const TaskStatusReport& report) {
  Table table({"AGENT", "BRANCH", "FILES", "+/-", "AHEAD", "DIRTY", "MERGED"});
  const std::vector<registry::AgentRecord>& agents = report.task().agents;
  bool any = false;
  for (size_t i = 0; i < agents.size() && i < report.worktrees.size(); ++i) {
    if (!report.worktrees[i]) continue;
    const worktrees::Summary& summary = *report.worktrees[i];
    const registry::WorktreeRecord& worktree = *agents[i].worktree;
    any = true;
    table.AddRow(
        {agents[i].id, worktree.branch, std::to_string(summary.files_changed),
         "+" + std::to_string(summary.lines_added) + "/-" + std::to_string(summary.lines_removed),
         std::to_string(summary.commits_ahead), summary.dirty ? "yes" : "no",
         worktree.merge ? worktree.merge->into : "-"});
  }
  return any ? "\nworktrees:\n" + table.Render() : "";
}

std::string RenderStatus(const TaskStatusReport& report) {
  const registry::TaskRecord& task = report.task();
  std::ostringstream out;
  out << task.task_id << "  " << task.status << "  " << task.description << "\n";
  out << "workspace " << report.workspace << "\n";
  out << "agents: " << task.active_count << " active, " << task.completed_count << " completed, "
      << task.total_spawned << " spawned";
  out << "  (limits: " << task.limits.max_concurrent << " concurrent, " << task.limits.max_agents
      << " total, depth " << task.limits.max_depth << ")\n";
  if (report.lost > 0) {
    out << "warning: " << report.lost << " agent(s) marked active have no process left\n";
  }
  out << RenderUsage(task.usage_totals);
  if (task.budget_exceeded) out << "budget exceeded: " << task.budget_exceeded->message << "\n";
  if (task.stopped) {
    out << "stopped at " << task.stopped->at << " (" << task.stopped->reason
        << "): takes no new agents\n";
  }
  out << "\n" << RenderAgents(report) << RenderWorktrees(report) << RenderReports(report);
  return out.str();
}

Result<std::string> ReadPromptFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::NotFound("cannot read the prompt file " + path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Redraws the task's status whenever its registry or journals change, until
// at most `until_active` agents are active. Blocks on the task's commits
// (a report is one too), never polls.
int WatchTask(const Orchestrator& orchestrator, const std::string& task_id, int until_active,
              bool json_output) {
  // Watch first, then read: a commit after the read wakes the first wait.
  Result<std::unique_ptr<registry::CommitWatch>> watch = orchestrator.WatchCommits(task_id);
  if (!watch.ok()) {
    std::cerr << "herd: " << watch.status().message() << "\n";
    return kExitFailed;
  }
  bool terminal = isatty(STDOUT_FILENO) && !json_output;
  std::string last_shown;
  for (;;) {
    Result<TaskStatusReport> status = orchestrator.StatusReport(task_id);
    if (!status.ok()) break;
    // A terminal gets the full view redrawn; a log gets the agents table.
    std::string shown = json_output
                            ? status->ToJson().dump(-1, ' ', false, json::error_handler_t::replace)
                        : terminal ? RenderStatus(*status)
                                   : RenderAgents(*status);
    if (shown != last_shown) {
      if (terminal) std::cout << "\x1b[H\x1b[2J";
      if (!terminal && !json_output) std::cout << "---- " << NowIso8601() << "\n";
      std::cout << shown << (json_output ? "\n" : "");
      std::cout.flush();
      last_shown = shown;
    }
    if (status->task().active_count <= until_active) break;
    // Wait for a change; the timeout only refreshes liveness of silent agents.
    using std::chrono::milliseconds;
    Result<Wake> woken = (*watch)->WaitUntil(MonotonicClock::now() + milliseconds(5000), nullptr);
    // Let a burst of changes settle into one redraw.
    while (woken.ok() && *woken == Wake::kChanged) {
      woken = (*watch)->WaitUntil(MonotonicClock::now() + milliseconds(200), nullptr);
    }
    if (!woken.ok()) {
      std::cerr << "herd: " << woken.status().message() << "\n";
      return kExitFailed;
    }
  }
  return kExitOk;
}

// ---- options from request parameters --------------------------------------------

// One request parameter bound to a CLI11 option; what CLI11 parsed stays
// here until ToArguments turns it into JSON.
struct BoundOption {
  const ParameterSpec* parameter = nullptr;
  CLI::Option* option = nullptr;
  std::string text;  // kString, and kObject / kObjectList as JSON text
  long long integer = 0;
  double number = 0;
  bool flag = false;
  std::vector<std::string> list;
};

// Adds an option (or positional) for each parameter the command line
// spells, typed so CLI11 refuses "many" for an integer, with HelpText.
void AddParameterOptions(CLI::App* command, const ParameterList& parameters,
                         std::list<BoundOption>* bound) {
  for (const ParameterSpec& parameter : parameters) {
    if (parameter.cli == nullptr) continue;
    BoundOption& binding = bound->emplace_back();
    binding.parameter = &parameter;
    std::string help = HelpText(parameter);
    switch (parameter.type) {
      case ParameterType::kInteger:
        binding.option = command->add_option(parameter.cli, binding.integer, help);
        break;
      case ParameterType::kNumber:
        binding.option = command->add_option(parameter.cli, binding.number, help);
        break;
      case ParameterType::kBoolean:
        binding.option = command->add_flag(parameter.cli, binding.flag, help);
        break;
      case ParameterType::kStringList:
        binding.option = command->add_option(parameter.cli, binding.list, help);
        break;
      case ParameterType::kString:
      case ParameterType::kObject:
      case ParameterType::kObjectList:
        binding.option = command->add_option(parameter.cli, binding.text, help);
        break;
    }
    if (parameter.required) binding.option->required();
  }
}

// The options given, as the argument object an MCP client would send.
Status ToArguments(const std::list<BoundOption>& bound, json* arguments) {
  for (const BoundOption& binding : bound) {
    if (binding.option->count() == 0) continue;
    const ParameterSpec& parameter = *binding.parameter;
    json& value = (*arguments)[parameter.name];
    switch (parameter.type) {
      case ParameterType::kString: value = binding.text; break;
      case ParameterType::kInteger: value = binding.integer; break;
      case ParameterType::kNumber: value = binding.number; break;
      case ParameterType::kBoolean: value = binding.flag; break;
      case ParameterType::kStringList: value = binding.list; break;
      case ParameterType::kObject:
      case ParameterType::kObjectList: {
        Result<json> parsed = ParseJson(binding.text, kMaxMessageDepth);
        if (!parsed.ok()) {
          return Status::InvalidArgument(std::string(parameter.cli) +
                                         " is not valid JSON: " + parsed.status().message());
        }
        value = std::move(parsed).value();
        break;
      }
    }
  }
  return Status::Ok();
}

// ---- commands ---------------------------------------------------------------------

// What one invocation gave: the global options, the request's options as
// JSON arguments, and the options only the command line has.
struct Invocation {
  GlobalOptions global;
  json arguments = json::object();
  ServeFunction serve;
  std::string prompt_file;    // deploy
  std::string context_json;   // task create
  bool follow = false;        // logs
  int until_active = 0;       // watch
  bool wait_any = false;      // wait --any
  bool wait_all = false;      // wait --all
  bool repair = false;        // doctor
  bool dry_run = false;       // doctor
  bool all = false;           // kill: every agent of the task
  int port = 0;               // dashboard
  bool open_browser = false;  // dashboard --open
  agents::SupervisorArgs supervisor;
  int notify_timeout_seconds = agents::kDefaultNotifyTimeoutSeconds;  // notify-hook
  std::string notify_command;                                         // notify-hook
  bool diff_stat = false, diff_name_only = false;                     // diff
  bool squash = false, rebase = false, ff_only = false;               // merge
  node::NodeOptions node;                                             // node run
  int node_lease_seconds = static_cast<int>(node::kDefaultLeaseTtl.count());
};

// Arguments the request refuses (a value out of range or not among the
// allowed ones): refused, in the words an MCP client gets.
int Refuse(const Invocation& invocation, const Status& status) {
  return Report(invocation.global, status, nullptr);
}

// A command line that cannot make a request (JSON that does not parse, a
// prompt file that cannot be read...).
int UsageError(const Invocation& invocation, const Status& status) {
  if (invocation.global.json_output) {
    std::cout << json{{"success", false}, {"error", status.message()}}.dump(
                     2, ' ', false, json::error_handler_t::replace)
              << "\n";
  }
  std::cerr << "herd: " << status.message() << "\n";
  return kExitUsage;
}

Orchestrator MakeOrchestrator(const Invocation& invocation) {
  return MakeOrchestrator(invocation.global);
}

// --context: the task context's keys, merged into the arguments.
Status MergeContext(const std::string& text, json* arguments) {
  Result<json> context = ParseJson(text, kMaxMessageDepth);
  if (!context.ok() || !context->is_object()) {
    return Status::InvalidArgument("--context must be a JSON object" +
                                   (context.ok() ? "" : ": " + context.status().message()));
  }
  const std::vector<const char*>& keys = CreateTaskRequest::ContextKeys();
  for (const auto& [key, value] : context->items()) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::string known;
      for (const char* name : keys) known += (known.empty() ? "" : ", ") + std::string(name);
      return Status::InvalidArgument("--context has \"" + key + "\", which is not one of " + known);
    }
    (*arguments)[key] = value;
  }
  return Status::Ok();
}

void TaskCreateOptions(CLI::App* command, Invocation* invocation) {
  command->add_option("--context", invocation->context_json,
                      "JSON object with background_context, expected_deliverables, "
                      "success_criteria, constraints, relevant_files, conversation_history");
}

std::string RenderCreated(const json& r) {
  std::string text = "created " + r.value("task_id", "") + " in " + r.value("workspace", "") + "\n";
  for (const json& warning : r.value("validation_warnings", json::array())) {
    text += "warning: " + warning.get<std::string>() + "\n";
  }
  return text;
}

int TaskCreate(Invocation& invocation) {
  if (!invocation.context_json.empty()) {
    Status merged = MergeContext(invocation.context_json, &invocation.arguments);
    if (!merged.ok()) return UsageError(invocation, merged);
  }
  Result<CreateTaskRequest> request =
      CreateTaskRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return Report(invocation.global, MakeOrchestrator(invocation).CreateTask(*request),
                RenderCreated);
}

int TaskLimits(Invocation& invocation) {
  Result<LimitsUpdate> update =
      LimitsUpdate::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!update.ok()) return Refuse(invocation, update.status());
  Result<registry::TaskSnapshot> changed = MakeOrchestrator(invocation).ChangeLimits(*update);
  if (!changed.ok() || invocation.global.json_output) {
    return Report(invocation.global,
                  changed.ok() ? Result<json>(Orchestrator::LimitsReply(changed->task))
                               : Result<json>(changed.status()),
                  nullptr);
  }
  const registry::TaskRecord& task = changed->task;
  std::cout << "limits of " << task.task_id << ": " << registry::EncodeLimits(task.limits).dump()
            << ", budget " << registry::EncodeBudget(task.budget).dump() << "\n";
  if (task.budget_exceeded) {
    std::cout << "still over budget: " << task.budget_exceeded->message << "\n";
  }
  return kExitOk;
}

std::string RenderTaskList(const std::vector<TaskListing>& listings) {
  Table table({"TASK", "STATUS", "ACTIVE", "SPAWNED", "CREATED", "DESCRIPTION"});
  for (const TaskListing& listing : listings) {
    const registry::TaskRecord& task = listing.task;
    bool damaged = !listing.error.empty();
    table.AddRow({task.task_id, damaged ? "DAMAGED" : task.status,
                  std::to_string(task.active_count), std::to_string(task.total_spawned),
                  task.created_at, damaged ? listing.error : task.description});
  }
  return table.Render();
}

int TaskList(Invocation& invocation) {
  Orchestrator orchestrator = MakeOrchestrator(invocation);
  if (invocation.global.json_output) {
    return Report(invocation.global, orchestrator.ListTasks(), nullptr);
  }
  std::cout << RenderTaskList(orchestrator.TaskListings());
  return kExitOk;
}

void DeployOptions(CLI::App* command, Invocation* invocation) {
  // Not required here: --prompt-file may give the prompt, and a command
  // agent may need none (it then gets an empty one).
  CLI::Option* prompt = command->get_option("--prompt");
  prompt->required(false);
  command->add_option("--prompt-file", invocation->prompt_file, "read the prompt from a file")
      ->excludes(prompt);
}

std::string RenderDeployed(const DeployedAgent& deployed) {
  const registry::AgentRecord& agent = deployed.agent;
  std::string text = "deployed " + agent.id + " (pid " +
                     (agent.process.recorded() ? std::to_string(agent.process.pid) : "-") +
                     ", depth " + std::to_string(agent.depth) + ")\nlog: " + deployed.log_file +
                     "\n";
  if (!deployed.tmux_session.empty()) {
    text += "watch: tmux attach -t " + deployed.tmux_session + "\n";
  }
  return text;
}

int Deploy(Invocation& invocation) {
  if (!invocation.prompt_file.empty()) {
    Result<std::string> text = ReadPromptFile(invocation.prompt_file);
    if (!text.ok()) return UsageError(invocation, text.status());
    invocation.arguments["prompt"] = *text;
  }
  if (!invocation.arguments.contains("prompt")) invocation.arguments["prompt"] = "";
  Result<DeployAgentRequest> request =
      DeployAgentRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  if (request->backend != "command" && !request->command_argv.empty()) {
    return UsageError(invocation,
                      Status::InvalidArgument("an argv after -- is only for --backend command"));
  }
  return ReportValue(invocation.global, MakeOrchestrator(invocation).StartAgent(*request),
                     RenderDeployed);
}

int TaskStatus(Invocation& invocation) {
  Result<StatusRequest> request =
      StatusRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return ReportValue(invocation.global, MakeOrchestrator(invocation).StatusReport(request->task_id),
                     RenderStatus);
}

void WatchOptions(CLI::App* command, Invocation* invocation) {
  command->add_option("--until-active", invocation->until_active,
                      "stop once at most this many agents are active (default 0)");
}

int Watch(Invocation& invocation) {
  Result<StatusRequest> request =
      StatusRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return WatchTask(MakeOrchestrator(invocation), request->task_id, invocation.until_active,
                   invocation.global.json_output);
}

void WaitOptions(CLI::App* command, Invocation* invocation) {
  CLI::Option* any =
      command->add_flag("--any", invocation->wait_any, "return once any of the agents has ended");
  command->add_flag("--all", invocation->wait_all, "return once all of them have ended (default)")
      ->excludes(any);
}

std::string RenderWait(const WaitReport& report) {
  Table table({"AGENT", "TYPE", "STATUS", "EXIT", "FINDINGS", "USAGE", "LAST MESSAGE"});
  for (const WaitedAgent& waited : report.agents) {
    const registry::AgentRecord& agent = waited.agent;
    table.AddRow({agent.id, agent.type, StatusText(agent), ExitText(agent),
                  std::to_string(waited.findings), OwnUsageText(agent), LastMessage(agent)});
  }
  return report.Summary() + "\n" + (report.agents.empty() ? "" : "\n" + table.Render(48));
}

int Wait(Invocation& invocation) {
  if (invocation.wait_any) invocation.arguments["mode"] = "any";
  Result<WaitRequest> request =
      WaitRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  Result<WaitReport> report = MakeOrchestrator(invocation).WaitForAgents(*request);
  int code = ReportValue(invocation.global, report, RenderWait);
  if (code != kExitOk) return code;
  return report->outcome == WaitReport::Outcome::kConditionMet ? kExitOk : kExitTimedOut;
}

void LogsOptions(CLI::App* command, Invocation* invocation) {
  command->add_flag("--follow,-f", invocation->follow,
                    "keep printing new output until the agent ends");
}

int Logs(Invocation& invocation) {
  json& arguments = invocation.arguments;
  if (arguments.value("tail", 0) == 0) arguments.erase("tail");  // --tail 0: every line
  // A terminal has no MCP reply limit: print up to 4 MiB of the newest output.
  arguments["max_bytes"] = OutputRequest::kLargestMaxBytes;
  arguments["include_metadata"] = true;
  Result<OutputRequest> request =
      OutputRequest::FromArguments(arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  Orchestrator orchestrator = MakeOrchestrator(invocation);
  bool follow = invocation.follow && !invocation.global.json_output;
  // The agent ran on another machine: the follow prints the registry's tail first.
  if (follow && orchestrator.OutputIsInRegistry(request->task_id, request->agent_id)) {
    return FollowRegistryOutput(orchestrator, request->task_id, request->agent_id,
                                request->tail.value_or(SIZE_MAX));
  }
  Result<json> output = orchestrator.AgentOutput(*request);
  int code = Report(invocation.global, output, [](const json& r) { return Text(r["output"]); });
  if (code != kExitOk || !follow) return code;
  return FollowLogFile(orchestrator, request->task_id, request->agent_id,
                       output->at("metadata").value("log_file", ""),
                       output->at("metadata").value("file_size", 0ULL));
}

int Progress(Invocation& invocation) {
  Result<ProgressReport> report =
      ProgressReport::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!report.ok()) return Refuse(invocation, report.status());
  // What was recorded is what was asked: the reply adds the other agents'.
  return Report(invocation.global, MakeOrchestrator(invocation).ReportProgress(*report),
                [&](const json&) {
                  return "recorded " + report->status + " " + std::to_string(report->progress) +
                         "% for " + report->agent_id + "\n";
                });
}

int Finding(Invocation& invocation) {
  Result<FindingReport> report =
      FindingReport::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!report.ok()) return Refuse(invocation, report.status());
  return Report(invocation.global, MakeOrchestrator(invocation).ReportFinding(*report),
                [&](const json&) { return "recorded finding from " + report->agent_id + "\n"; });
}

std::string RenderKilled(const json& r) {
  if (r.value("already_ended", false)) {
    return r.value("agent_id", "") + " had already ended (" + r.value("status", "") + ")\n";
  }
  const json& cleanup = r["cleanup"];
  if (cleanup.contains("node")) {
    return "terminated " + r.value("agent_id", "") + " on node " + cleanup.value("node", "") +
           (cleanup.value("stopped_by_node", false)
                ? ": its node stopped it and recorded the exit\n"
                : ": its node has not confirmed the stop yet (" + r.value("warning", "") + ")\n");
  }
  return std::string(r.value("registry_recorded", true) ? "terminated " : "stopped ") +
         r.value("agent_id", "") + ": " + std::to_string(cleanup.value("signalled", 0)) +
         " process(es) sent SIGTERM, " + std::to_string(cleanup.value("sigkilled", 0)) +
         " needed SIGKILL\n";
}

void KillOptions(CLI::App* command, Invocation* invocation) {
  // Not required here: --all names no agent.
  command->get_option("agent_id")->required(false);
  command->add_flag("--all", invocation->all,
                    "stop every agent of the task at once and refuse new deploys to it (the MCP "
                    "tool stop_task)");
}

std::string RenderStopped(const agents::TaskStopResult& r) {
  std::string text = r.already_stopped && r.marked == 0
                         ? "task " + r.task_id + " was already stopped at " + r.stop.at
                         : "stopped task " + r.task_id;
  text += " (" + r.stop.reason + "): " + std::to_string(r.marked) +
          " agent(s) marked terminated, " + std::to_string(r.stopped) + " stopped, " +
          std::to_string(r.already_exited) + " had already exited";
  if (r.starting > 0) text += ", " + std::to_string(r.starting) + " stopped as they start";
  text += "; new deploys are refused\n";
  if (r.supervisors_recording > 0) {
    text += std::to_string(r.supervisors_recording) +
            " supervisor(s) are still recording their agent's end\n";
  }
  for (const agents::TaskStopResult::Failure& failure : r.failures) {
    text += "failed: " + failure.agent_id + ": " + failure.error + "\n";
  }
  return text;
}

int StopTask(Invocation& invocation) {
  Result<StopTaskRequest> request =
      StopTaskRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  Result<agents::TaskStopResult> stopped = MakeOrchestrator(invocation).StopTask(*request);
  int code = ReportValue(invocation.global, stopped, RenderStopped);
  if (code != kExitOk) return code;
  if (!stopped->warning.empty()) std::cerr << "herd: warning: " << stopped->warning << "\n";
  if (!stopped->failures.empty()) return kExitFailed;
  return stopped->registry_recorded ? kExitOk : kExitNotRecorded;
}

int Kill(Invocation& invocation) {
  bool agent_given = invocation.arguments.contains("agent_id");
  if (agent_given == invocation.all) {
    return UsageError(invocation, Status::InvalidArgument(
                                      agent_given ? "give an AGENT or --all, not both (--all stops "
                                                    "every agent of the task)"
                                                  : "give the AGENT to stop, or --all to stop "
                                                    "every agent of the task"));
  }
  if (invocation.all) return StopTask(invocation);
  Result<KillRequest> request =
      KillRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  Result<json> killed = MakeOrchestrator(invocation).Kill(*request);
  int code = Report(invocation.global, killed, RenderKilled);
  if (code != kExitOk) return code;
  // On stderr, with --json too: a script's log should show it.
  if (killed->contains("warning")) {
    std::cerr << "herd: warning: " << killed->value("warning", "") << "\n";
  }
  return killed->value("registry_recorded", true) ? kExitOk : kExitNotRecorded;
}

void SendOptions(CLI::App* command, Invocation* invocation) {
  // Not required here: --message-file may give it.
  CLI::Option* message = command->get_option("message");
  message->required(false);
  command->add_option("--message-file", invocation->prompt_file, "read the message from a file")
      ->excludes(message);
}

std::string RenderSent(const agents::SentMessage& sent) {
  return sent.message_id + " to " + sent.agent_id + ": " + sent.note + "\n";
}

int Send(Invocation& invocation) {
  if (!invocation.prompt_file.empty()) {
    Result<std::string> text = ReadPromptFile(invocation.prompt_file);
    if (!text.ok()) return UsageError(invocation, text.status());
    invocation.arguments["message"] = *text;
  }
  if (!invocation.arguments.contains("message")) {
    return UsageError(invocation, Status::InvalidArgument(
                                      "give the MESSAGE, or --message-file FILE to read it from"));
  }
  Result<SendMessageRequest> request =
      SendMessageRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  Result<agents::SentMessage> sent = MakeOrchestrator(invocation).SendMessage(*request);
  int code = ReportValue(invocation.global, sent, RenderSent);
  if (code == kExitOk && !sent->warning.empty()) {
    std::cerr << "herd: warning: " << sent->warning << "\n";
  }
  return code;
}

void DoctorOptions(CLI::App* command, Invocation* invocation) {
  command->add_flag("--repair", invocation->repair, "fix what is found");
  command->add_flag("--dry-run", invocation->dry_run, "with --repair: show what would change");
}

int Doctor(Invocation& invocation) {
  Result<HealthRequest> request =
      HealthRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  health::DoctorOptions options;
  options.task_id = request->task_id;
  options.repair = invocation.repair;
  options.dry_run = invocation.dry_run;
  Orchestrator orchestrator = MakeOrchestrator(invocation);
  Result<json> report = health::Diagnose(orchestrator.stores(), orchestrator.workspace(), options);
  int code = Report(invocation.global, report, health::RenderReport);
  // Like any check: exit 1 while something is left to fix.
  if (code == kExitOk && !report->at("summary").value("healthy", true)) code = kExitFailed;
  return code;
}

int Serve(Invocation& invocation) {
  return invocation.serve(registry::Workspace::Resolve(invocation.global.workspace).base());
}

void DashboardOptions(CLI::App* command, Invocation* invocation) {
  command->add_option("--port", invocation->port, "port on 127.0.0.1 (default 0: any free one)")
      ->check(CLI::Range(0, 65535));
  command->add_flag("--open", invocation->open_browser, "open the page in a browser (xdg-open)");
}

int Dashboard(Invocation& invocation) {
  dashboard::DashboardOptions options;
  options.port = invocation.port;
  options.open_browser = invocation.open_browser;
  return dashboard::RunDashboard(MakeOrchestrator(invocation), options, std::cout);
}

void SuperviseOptions(CLI::App* command, Invocation* invocation) {
  command->add_option("--task", invocation->supervisor.task_id)->required();
  command->add_option("--agent", invocation->supervisor.agent_id)->required();
  command->add_option("--turn", invocation->supervisor.turn)->check(CLI::Range(1, 1000000));
  command->add_option("--lifeline-fd", invocation->supervisor.lifeline_fd)
      ->check(CLI::Range(3, 1023));
}

void NotifyHookOptions(CLI::App* command, Invocation* invocation) {
  command->add_option("--timeout", invocation->notify_timeout_seconds)->check(CLI::Range(1, 86400));
  command->add_option("command", invocation->notify_command)->required();
}

int NotifyHook(Invocation& invocation) {
  return agents::RunNotifyHook(invocation.notify_timeout_seconds, invocation.notify_command);
}

int Supervise(Invocation& invocation) {
  invocation.supervisor.workspace_base =
      registry::Workspace::Resolve(invocation.global.workspace).base();
  return agents::RunSupervisor(invocation.supervisor);
}

// ---- agents' worktrees ---------------------------------------------------------------

void DiffOptions(CLI::App* command, Invocation* invocation) {
  CLI::Option* stat =
      command->add_flag("--stat", invocation->diff_stat, "files changed and line counts");
  command->add_flag("--name-only", invocation->diff_name_only, "only the changed paths")
      ->excludes(stat);
}

int Diff(Invocation& invocation) {
  if (invocation.diff_stat) invocation.arguments["format"] = "stat";
  if (invocation.diff_name_only) invocation.arguments["format"] = "name-only";
  // A terminal has no MCP reply limit.
  if (!invocation.arguments.contains("max_bytes")) {
    invocation.arguments["max_bytes"] = DiffRequest::kLargestMaxBytes;
  }
  Result<DiffRequest> request =
      DiffRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return Report(invocation.global, MakeOrchestrator(invocation).AgentDiff(*request),
                [](const json& r) {
                  std::string text = r.value("diff", "");
                  if (r.value("truncated", false)) text += "\n[" + r.value("note", "") + "]\n";
                  return text;
                });
}

void MergeOptions(CLI::App* command, Invocation* invocation) {
  CLI::Option* squash = command->add_flag(
      "--squash", invocation->squash, "one new commit on the target with all the work (default)");
  CLI::Option* rebase = command->add_flag("--rebase", invocation->rebase,
                                          "replay the agent's commits onto the target");
  command->add_flag("--ff-only", invocation->ff_only, "only if the target has not moved")
      ->excludes(squash)
      ->excludes(rebase);
  rebase->excludes(squash);
}

int Merge(Invocation& invocation) {
  if (invocation.rebase) invocation.arguments["strategy"] = "rebase";
  if (invocation.ff_only) invocation.arguments["strategy"] = "ff-only";
  Result<MergeRequest> request =
      MergeRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return Report(
      invocation.global, MakeOrchestrator(invocation).MergeAgentWork(*request), [](const json& r) {
        std::string text = "merged " + r.value("branch", "") + " into " + r.value("into", "") +
                           " (" + r.value("strategy", "") + "): " + r.value("commit", "") + ", " +
                           std::to_string(r["files"].size()) + " file(s)\n";
        if (r.contains("warning")) text += "warning: " + r.value("warning", "") + "\n";
        return text;
      });
}

std::string RenderWorktreeList(const json& r) {
  Table table({"TASK", "AGENT", "STATUS", "BRANCH", "FILES", "+/-", "AHEAD", "DIRTY", "PATH"});
  for (const json& entry : r["worktrees"]) {
    const json& worktree = entry["worktree"];
    const json summary = entry.value("summary", json::object());
    bool removed = worktree.contains("removed_at");
    table.AddRow({entry.value("task_id", ""), entry.value("agent_id", ""),
                  entry.value("agent_status", ""), worktree.value("branch", ""),
                  removed ? "removed" : std::to_string(summary.value("files_changed", 0)),
                  removed ? "-"
                          : "+" + std::to_string(summary.value("lines_added", 0)) + "/-" +
                                std::to_string(summary.value("lines_removed", 0)),
                  removed ? "-" : std::to_string(summary.value("commits_ahead", 0)),
                  summary.value("dirty", false) ? "yes" : "no", worktree.value("path", "")});
  }
  return table.Render();
}

int WorktreeList(Invocation& invocation) {
  Result<WorktreeListRequest> request =
      WorktreeListRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return Report(invocation.global, MakeOrchestrator(invocation).ListWorktrees(*request),
                RenderWorktreeList);
}

std::string RenderRemoved(const json& r) {
  std::string text =
      "removed " + r.value("path", "") +
      (r.value("branch_deleted", false) ? " and branch " + r.value("branch", "")
                                        : " (branch " + r.value("branch", "") + " kept)") +
      "\n";
  if (!r["lost"].is_null()) text += "lost (--force): " + r.value("lost", "") + "\n";
  return text;
}

int WorktreeRemove(Invocation& invocation) {
  Result<WorktreeRemoveRequest> request =
      WorktreeRemoveRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return Report(invocation.global, MakeOrchestrator(invocation).RemoveWorktree(*request),
                RenderRemoved);
}

int WorktreePrune(Invocation& invocation) {
  Result<WorktreePruneRequest> request =
      WorktreePruneRequest::FromArguments(invocation.arguments, ArgumentNames::kCommandLine);
  if (!request.ok()) return Refuse(invocation, request.status());
  return Report(
      invocation.global, MakeOrchestrator(invocation).PruneWorktrees(*request), [](const json& r) {
        bool dry = r.value("dry_run", false);
        std::string text;
        for (const json& entry : r["removed"]) {
          text += (dry ? "would remove " : "removed ") + entry.value("path", "") + "\n";
        }
        for (const json& entry : r["kept"]) {
          text += "kept " + entry.value("path", "") + ": " + entry.value("reason", "") + "\n";
        }
        return text.empty() ? std::string("no worktrees to prune\n") : text;
      });
}

// herd registry migrate: creates or migrates the PostgreSQL registry's
// schema (opening it does so too; this says what it did).
// ---- nodes -----------------------------------------------------------------------------

void NodeRunOptions(CLI::App* command, Invocation* invocation) {
  registry::NodeSpec& spec = invocation->node.spec;
  command->add_option("--name", spec.name, "this machine's node name (default: its hostname)");
  command
      ->add_option("--capacity", spec.capacity,
                   "how many agents may be active on this machine at once")
      ->required()
      ->check(CLI::Range(1, 100000));
  command
      ->add_option("--label", spec.labels,
                   "a label deploys can ask for (--node-label); repeat for more")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  command->add_option(
      "--state-dir", invocation->node.state_directory,
      "the node's own directory: its lock, its agents' files and logs "
      "(default: $XDG_STATE_HOME/herd/nodes/NAME, or ~/.local/state/herd/nodes/NAME)");
  command
      ->add_option("--lease-seconds", invocation->node_lease_seconds,
                   "how long the node's lease lasts; it renews every third of it")
      ->check(CLI::Range(static_cast<int>(node::kShortestLeaseTtl.count()), 3600));
}

std::atomic<StopSignal*> g_node_stop{nullptr};

void StopNode(int) {
  if (StopSignal* stop = g_node_stop.load()) stop->Stop();
}

int NodeRun(Invocation& invocation) {
  node::NodeOptions& options = invocation.node;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  options.spec.hostname = host;
  if (options.spec.name.empty()) options.spec.name = host;
  options.lease_ttl = std::chrono::seconds(invocation.node_lease_seconds);
  if (options.state_directory.empty()) {
    std::string known = registry::KnownWorkspacesPath();
    options.state_directory = known.substr(0, known.rfind('/')) + "/nodes/" + options.spec.name;
  }
  if (Status valid = node::ValidateNodeOptions(options); !valid.ok()) {
    return Refuse(invocation, valid);
  }
  options.on_registered = [&options](int64_t incarnation) {
    std::cout << "node " << options.spec.name << " up: incarnation " << incarnation << ", capacity "
              << options.spec.capacity << ", state " << options.state_directory << std::endl;
  };
  Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
  if (!stop.ok()) return Refuse(invocation, stop.status());
  g_node_stop.store(stop->get());
  struct sigaction action {};
  action.sa_handler = StopNode;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Status ran = node::RunNode(ProcessStores(), options, **stop);
  g_node_stop.store(nullptr);
  if (!ran.ok()) return Refuse(invocation, ran);
  return kExitOk;
}

int NodeList(Invocation& invocation) {
  Result<json> listed = [&]() -> Result<json> {
    if (!registry::UsesPostgres(ProcessStores())) {
      return Status::InvalidArgument(
          "nodes belong to the shared PostgreSQL registry: set HERD_REGISTRY (or --registry) "
          "to its URL");
    }
    HERD_ASSIGN_OR_RETURN(std::vector<registry::NodeView> nodes,
                          ProcessStores().postgres->ListNodes());
    json rows = json::array();
    for (const registry::NodeView& node : nodes) {
      rows.push_back({{"name", node.spec.name},
                      {"hostname", node.spec.hostname},
                      {"state", node.state},
                      {"leased", node.leased()},
                      {"incarnation", node.incarnation},
                      {"capacity", node.spec.capacity},
                      {"running", node.running},
                      {"labels", node.spec.labels},
                      {"lease_expires_at", node.lease_expires_at},
                      {"lease_remaining_ms", node.lease_remaining_ms}});
    }
    return json{{"nodes", rows}, {"total", rows.size()}};
  }();
  return Report(invocation.global, listed, [](const json& r) {
    Table table({"NODE", "HOST", "STATE", "RUNNING", "CAPACITY", "LABELS", "LEASE"});
    for (const json& node : r["nodes"]) {
      std::string labels;
      for (const json& label : node["labels"]) {
        labels += (labels.empty() ? "" : ",") + label.get<std::string>();
      }
      long long remaining = node["lease_remaining_ms"].get<long long>();
      table.AddRow({node["name"].get<std::string>(), node["hostname"].get<std::string>(),
                    node["state"].get<std::string>(), std::to_string(node["running"].get<int>()),
                    std::to_string(node["capacity"].get<int>()), labels.empty() ? "-" : labels,
                    remaining > 0 ? std::to_string(remaining / 1000) + " s left" : "expired"});
    }
    return r["nodes"].empty() ? std::string("no nodes: start `herd node run` on each machine\n")
                              : table.Render();
  });
}

int RegistryMigrate(Invocation& invocation) {
  Result<registry::RegistrySetting> setting =
      registry::ParseRegistrySetting(invocation.global.registry);
  if (!setting.ok()) return UsageError(invocation, setting.status());
  if (!setting->postgres()) {
    return Refuse(invocation,
                  Status::InvalidArgument("herd registry migrate: the JSON workspace has no "
                                          "schema to migrate; set HERD_REGISTRY (or --registry) "
                                          "to the PostgreSQL registry's URL"));
  }
  Result<json> migrated = [&]() -> Result<json> {
    HERD_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> connection,
                          pg::Connection::Open(registry::PgOptionsOf(*setting)));
    HERD_ASSIGN_OR_RETURN(int before, registry::MigratePgSchema(*connection));
    return json{{"registry", setting->Describe()},
                {"schema_version_before", before},
                {"schema_version", registry::PgSchemaVersion()}};
  }();
  return Report(invocation.global, migrated, [](const json& r) {
    int before = r["schema_version_before"].get<int>(), now = r["schema_version"].get<int>();
    return r["registry"].get<std::string>() + ": " +
           (before == now ? "schema already at version " + std::to_string(now)
                          : "schema migrated from version " + std::to_string(before) + " to " +
                                std::to_string(now)) +
           "\n";
  });
}

struct Command {
  const char* path;                      // the words that select it, e.g. "task create"
  const char* help;                      // "": hidden (internal)
  const ParameterList& (*parameters)();  // options from a request, or nullptr
  void (*add_options)(CLI::App* command, Invocation* invocation);  // command-line only ones
  int (*run)(Invocation& invocation);  // nullptr: a group of subcommands
};

// In --help order; a group comes before its subcommands.
const Command kCommands[] = {
    {"task", "create and list tasks", nullptr, nullptr, nullptr},
    {"task create", "create a task for agents to work on", CreateTaskRequest::Parameters,
     TaskCreateOptions, TaskCreate},
    {"task limits", "change a task's limits and budgets", LimitsUpdate::Parameters, nullptr,
     TaskLimits},
    {"task list", "list every task herd knows", nullptr, nullptr, TaskList},
    {"deploy", "start an agent on a task", DeployAgentRequest::Parameters, DeployOptions, Deploy},
    {"status", "show a task's agents and progress", StatusRequest::Parameters, nullptr, TaskStatus},
    {"watch", "show a task's status live until few agents are active", StatusRequest::Parameters,
     WatchOptions, Watch},
    {"wait",
     "wait until a task's agents (or those named) have ended, or --timeout; exit 4 on timeout",
     WaitRequest::Parameters, WaitOptions, Wait},
    {"logs", "print an agent's output", OutputRequest::Parameters, LogsOptions, Logs},
    {"progress", "report an agent's progress", ProgressReport::Parameters, nullptr, Progress},
    {"finding", "report something an agent found", FindingReport::Parameters, nullptr, Finding},
    {"kill", "stop an agent and everything it started, or with --all every agent of the task",
     KillRequest::Parameters, KillOptions, Kill},
    {"send",
     "say more to an agent: a new turn of its conversation, now if it has ended, else after its "
     "turn (or at once with --interrupt)",
     SendMessageRequest::Parameters, SendOptions, Send},
    {"diff",
     "show an agent's changes in its worktree against its base (committed, "
     "uncommitted and untracked)",
     DiffRequest::Parameters, DiffOptions, Diff},
    {"merge",
     "bring an ended agent's worktree branch back (checked first; a conflict changes nothing)",
     MergeRequest::Parameters, MergeOptions, Merge},
    {"worktree", "list and remove agents' worktrees", nullptr, nullptr, nullptr},
    {"worktree list", "list agents' worktrees with their changes", WorktreeListRequest::Parameters,
     nullptr, WorktreeList},
    {"worktree remove",
     "remove an ended agent's worktree (and the branch herd made) if nothing would be lost",
     WorktreeRemoveRequest::Parameters, nullptr, WorktreeRemove},
    {"worktree prune", "remove every ended agent's worktree that would lose nothing",
     WorktreePruneRequest::Parameters, nullptr, WorktreePrune},
    {"doctor", "find zombie entries, orphans, drift and damaged files, and repair them",
     HealthRequest::Parameters, DoctorOptions, Doctor},
    {"serve", "speak MCP over stdio (for Claude Code, Cursor, Codex and herd's own agents)",
     nullptr, nullptr, Serve},
    {"dashboard",
     "serve a live page of every task on 127.0.0.1 until Ctrl-C; open the URL it prints", nullptr,
     DashboardOptions, Dashboard},
    {"registry", "manage the PostgreSQL registry (HERD_REGISTRY)", nullptr, nullptr, nullptr},
    {"registry migrate", "create or migrate the PostgreSQL registry's schema", nullptr, nullptr,
     RegistryMigrate},
    {"node", "the machines that run the agents of a shared PostgreSQL registry", nullptr, nullptr,
     nullptr},
    {"node run", "run this machine's node daemon: it starts and stops the agents placed here",
     nullptr, NodeRunOptions, NodeRun},
    {"node list", "list the nodes, their leases and how many agents each runs", nullptr, nullptr,
     NodeList},
    {"supervise", "", nullptr, SuperviseOptions, Supervise},      // started by deploy
    {"notify-hook", "", nullptr, NotifyHookOptions, NotifyHook},  // started on an agent's end
};
constexpr size_t kCommandCount = sizeof kCommands / sizeof kCommands[0];

void AddGlobalOptions(CLI::App* app, GlobalOptions* options) {
  app->set_version_flag("--version", std::string("herd ") + HERD_VERSION);
  app->require_subcommand(1);
  app->fallthrough();  // --json and --workspace work after the subcommand too
  app->add_option("--workspace", options->workspace,
                  "workspace base directory (default $CLAUDE_ORCHESTRATOR_WORKSPACE or "
                  "./.agent-workspace)")
      ->envname("CLAUDE_ORCHESTRATOR_WORKSPACE");
  app->add_option("--registry", options->registry,
                  "the registry: a postgresql:// URL or libpq conninfo for the PostgreSQL "
                  "registry; unset (or \"json\") for the JSON workspace (default)")
      ->envname("HERD_REGISTRY");
  app->add_flag("--json", options->json_output, "print machine-readable JSON");
}

// The commands that open the registry themselves (or need none open).
bool OpensOwnRegistry(const std::string& path) {
  return path == "registry migrate" || path == "supervise" || path == "notify-hook" ||
         path == "serve";
}

// Selects the registry for command `path` (ProcessStores), and passes the
// setting on to every process herd starts (supervisors, agents and their
// `herd serve`) through HERD_REGISTRY.
Status SelectProcessRegistry(const std::string& path, const GlobalOptions& options) {
  HERD_ASSIGN_OR_RETURN(registry::RegistrySetting setting,
                        registry::ParseRegistrySetting(options.registry));
  if (setting.postgres()) {
    setenv("HERD_REGISTRY", setting.conninfo.c_str(), 1);
  } else {
    unsetenv("HERD_REGISTRY");
  }
  if (OpensOwnRegistry(path)) return Status::Ok();
  return registry::SelectRegistry(setting, registry::Workspace::Resolve(options.workspace).base(),
                                  &ProcessStores());
}

// Adds every command of kCommands to `app`; apps[i] is kCommands[i]'s.
void AddCommands(CLI::App* app, Invocation* invocation, CLI::App* apps[],
                 std::list<BoundOption> bound[]) {
  for (size_t i = 0; i < kCommandCount; ++i) {
    const Command& command = kCommands[i];
    std::string path = command.path;
    size_t space = path.rfind(' ');
    CLI::App* parent = app;
    for (size_t j = 0; j < i && space != std::string::npos; ++j) {
      if (path.compare(0, space, kCommands[j].path) == 0) parent = apps[j];
    }
    apps[i] = parent->add_subcommand(path.substr(space + 1), command.help);
    if (*command.help == '\0') apps[i]->group("");
    if (command.run == nullptr) apps[i]->require_subcommand(1);
    if (command.parameters != nullptr) {
      AddParameterOptions(apps[i], command.parameters(), &bound[i]);
    }
    if (command.add_options != nullptr) command.add_options(apps[i], invocation);
  }
}

}  // namespace

int Run(int argc, char** argv, const ServeFunction& serve) {
  CLI::App app{
      "herd: run many headless coding agents at once, within limits, and stop them "
      "cleanly.\nWorks from a terminal and, through `herd serve`, from MCP clients."};
  Invocation invocation;
  invocation.serve = serve;
  AddGlobalOptions(&app, &invocation.global);
  CLI::App* apps[kCommandCount] = {};
  std::list<BoundOption> bound[kCommandCount];
  AddCommands(&app, &invocation, apps, bound);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForAllHelp& help) {
    return app.exit(help);
  } catch (const CLI::CallForVersion& version) {
    return app.exit(version);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return kExitUsage;
  }
  for (size_t i = 0; i < kCommandCount; ++i) {
    if (kCommands[i].run == nullptr || !apps[i]->parsed()) continue;
    Status given = ToArguments(bound[i], &invocation.arguments);
    if (!given.ok()) return UsageError(invocation, given);
    Status servable = SelectProcessRegistry(kCommands[i].path, invocation.global);
    if (servable.Is(Status::Code::kInvalidArgument)) return UsageError(invocation, servable);
    if (!servable.ok()) return Refuse(invocation, servable);
    return kCommands[i].run(invocation);
  }
  return kExitUsage;
}

}  // namespace herd::cli
