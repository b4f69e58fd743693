#include "cli/commands.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agents/backend.h"
#include "agents/killer.h"
#include "agents/supervisor.h"
#include "cli/table.h"
#include "health/doctor.h"
#include "orchestrator/orchestrator.h"
#include "registry/task_registry.h"
#include "util/clock.h"
#include "util/json_parse.h"
#include "util/text_file.h"

namespace herd::cli {
namespace {

using nlohmann::json;

struct GlobalOptions {
  std::string workspace;
  bool json_output = false;
};

Orchestrator MakeOrchestrator(const GlobalOptions& options) {
  return Orchestrator(registry::Workspace::Resolve(options.workspace), registry::RegistryStores());
}

std::string Text(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

// Prints a result (JSON or `render`ed text) or an error; returns the exit code.
int Report(const GlobalOptions& options, const Result<json>& result,
           const std::function<std::string(const json&)>& render) {
  if (!result.ok()) {
    if (options.json_output) {
      json error = {{"success", false}, {"error", result.status().message()}};
      std::cout << error.dump(2) << "\n";
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

std::string RenderAgents(const json& agents_list) {
  Table table({"AGENT", "TYPE", "STATUS", "PROGRESS", "DEPTH", "PARENT", "PID", "LIVENESS", "EXIT",
               "USAGE", "LAST MESSAGE"});
  for (const json& agent : agents_list) {
    std::string exit = "-";
    if (agent.value("exit_code", json(nullptr)).is_number()) {
      exit = "code " + Text(agent["exit_code"]);
    } else if (agent.value("exit_signal", json(nullptr)).is_number()) {
      exit = "signal " + Text(agent["exit_signal"]);
    }
    std::string message = agent.value("termination_reason", agent.value("error", ""));
    if (message.empty()) message = agent.value("last_message", "");
    // Own tokens (and cost once reported); the subtree's figures are in --json.
    std::string usage = "-";
    Result<registry::AgentRecord> record = registry::DecodeAgent(agent, "the status reply");
    registry::Usage own = record.ok() ? registry::AgentUsage(*record) : registry::Usage{};
    if (own.total_tokens > 0 || own.total_cost_usd > 0) {
      char text[64];
      std::snprintf(text, sizeof text, "%lld tok $%.4f", own.total_tokens, own.total_cost_usd);
      usage = text;
    }
    table.AddRow({agent.value("id", ""), agent.value("type", ""), agent.value("status", ""),
                  std::to_string(agent.value("progress", 0)) + "%",
                  std::to_string(agent.value("depth", 1)), agent.value("parent", ""),
                  Text(agent.value("pid", json(nullptr))), agent.value("liveness", ""), exit, usage,
                  message});
  }
  return table.Render(48);
}

std::string RenderStatus(const json& status) {
  std::ostringstream out;
  const json& agents = status["agents"];
  out << status.value("task_id", "") << "  " << status.value("status", "") << "  "
      << status.value("description", "") << "\n";
  out << "workspace " << status.value("workspace", "") << "\n";
  out << "agents: " << agents.value("active", 0) << " active, " << agents.value("completed", 0)
      << " completed, " << agents.value("total_spawned", 0) << " spawned";
  const json& limits = status["limits"];
  out << "  (limits: " << limits.value("max_concurrent", 0) << " concurrent, "
      << limits.value("max_agents", 0) << " total, depth " << limits.value("max_depth", 0) << ")\n";
  if (agents.value("lost", 0) > 0) {
    out << "warning: " << agents["lost"] << " agent(s) marked active have no process left\n";
  }
  const json& usage = status["usage"];
  if (usage.value("total_cost_usd", 0.0) > 0 || usage.value("total_tokens", 0) > 0) {
    char cost[32];
    std::snprintf(cost, sizeof cost, "%.4f", usage.value("total_cost_usd", 0.0));
    out << "usage: $" << cost << ", " << usage.value("num_turns", 0) << " turns, "
        << usage.value("input_tokens", 0) << " input + " << usage.value("output_tokens", 0)
        << " output tokens (" << usage.value("total_tokens", 0) << " with cache)\n";
  }
  if (!status.value("budget_exceeded", json(nullptr)).is_null()) {
    out << "budget exceeded: " << status["budget_exceeded"].value("message", "") << "\n";
  }
  out << "\n" << RenderAgents(agents["agents_list"]);
  const json& progress = status["enhanced_progress"];
  if (!progress["recent_updates"].empty()) {
    out << "\nrecent progress (" << progress.value("total_progress_entries", 0) << " in all):\n";
    for (const json& update : progress["recent_updates"]) {
      out << "  " << update.value("timestamp", "") << "  " << update.value("agent_id", "") << "  "
          << update.value("status", "") << " " << update.value("progress", 0) << "%  "
          << update.value("message", "") << "\n";
    }
  }
  if (!progress["recent_findings"].empty()) {
    out << "\nrecent findings (" << progress.value("total_findings", 0) << " in all):\n";
    for (const json& finding : progress["recent_findings"]) {
      out << "  " << finding.value("timestamp", "") << "  " << finding.value("agent_id", "")
          << "  [" << finding.value("severity", "") << "] " << finding.value("finding_type", "")
          << ": " << finding.value("message", "") << "\n";
    }
  }
  return out.str();
}

Result<std::string> ReadPromptFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return Status::NotFound("cannot read the prompt file " + path);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// Prints new bytes of the agent's log as they arrive until it has ended.
int FollowLog(const Orchestrator& orchestrator, const std::string& task_id,
              const std::string& agent_id, uint64_t offset) {
  // Only the agent's state is wanted from these reads, not its output.
  OutputRequest state;
  state.task_id = task_id;
  state.agent_id = agent_id;
  state.tail = 0;
  state.include_metadata = true;
  Result<json> status = orchestrator.AgentOutput(state);
  if (!status.ok()) return kExitFailed;
  std::string log_path = status->at("metadata").value("log_file", "");
  std::string logs_directory = log_path.substr(0, log_path.rfind('/'));
  std::string task_directory = logs_directory.substr(0, logs_directory.rfind('/'));
  int inotify = inotify_init1(IN_CLOEXEC);
  inotify_add_watch(inotify, logs_directory.c_str(), IN_MODIFY | IN_CREATE);
  inotify_add_watch(inotify, task_directory.c_str(), IN_MOVED_TO);
  for (;;) {
    std::ifstream file(log_path, std::ios::binary);
    if (file) {
      file.seekg(static_cast<std::streamoff>(offset));
      char buffer[65536];
      while (file.read(buffer, sizeof buffer) || file.gcount() > 0) {
        std::cout.write(buffer, file.gcount());
        offset += static_cast<uint64_t>(file.gcount());
      }
      std::cout.flush();
    }
    Result<json> now = orchestrator.AgentOutput(state);
    if (!now.ok() || registry::IsTerminalStatus(now->value("session_status", ""))) break;
    pollfd waiting{inotify, POLLIN, 0};
    if (poll(&waiting, 1, -1) > 0) {
      char events[4096];
      ssize_t ignored = read(inotify, events, sizeof events);
      (void)ignored;
    }
  }
  close(inotify);
  return kExitOk;
}

// Redraws the task's status whenever its registry or journals change, until
// at most `until_active` agents are active. Blocks on inotify, never polls.
int WatchTask(const Orchestrator& orchestrator, const std::string& task_id, int until_active,
              bool json_output) {
  Result<json> first = orchestrator.TaskStatus(task_id);
  if (!first.ok()) {
    std::cerr << "herd: " << first.status().message() << "\n";
    return kExitFailed;
  }
  std::string task_directory = first->value("workspace", "");
  int inotify = inotify_init1(IN_CLOEXEC);
  inotify_add_watch(inotify, task_directory.c_str(), IN_MOVED_TO);
  for (const char* sub : {"/progress", "/findings"}) {
    inotify_add_watch(inotify, (task_directory + sub).c_str(), IN_MODIFY | IN_CREATE);
  }
  bool terminal = isatty(STDOUT_FILENO) && !json_output;
  std::string last_shown;
  for (;;) {
    Result<json> status = orchestrator.TaskStatus(task_id);
    if (!status.ok()) break;
    // A terminal gets the full view redrawn; a log gets the agents table.
    std::string shown = json_output ? status->dump()
                        : terminal  ? RenderStatus(*status)
                                    : RenderAgents((*status)["agents"]["agents_list"]);
    if (shown != last_shown) {
      if (terminal) std::cout << "\x1b[H\x1b[2J";
      if (!terminal && !json_output) std::cout << "---- " << NowIso8601() << "\n";
      std::cout << shown << (json_output ? "\n" : "");
      std::cout.flush();
      last_shown = shown;
    }
    if ((*status)["agents"].value("active", 0) <= until_active) break;
    // Wait for a change; the timeout only refreshes liveness of silent agents.
    pollfd waiting{inotify, POLLIN, 0};
    if (poll(&waiting, 1, 5000) > 0) {
      char events[8192];
      ssize_t ignored = read(inotify, events, sizeof events);
      (void)ignored;
      // Let a burst of changes settle into one redraw.
      while (poll(&waiting, 1, 200) > 0) ignored = read(inotify, events, sizeof events);
    }
  }
  close(inotify);
  return kExitOk;
}

}  // namespace

int Run(int argc, char** argv, const ServeFunction& serve) {
  CLI::App app{
      "herd: run many headless coding agents at once, within limits, and stop them "
      "cleanly.\nWorks from a terminal and, through `herd serve`, from MCP clients."};
  app.set_version_flag("--version", std::string("herd ") + HERD_VERSION);
  app.require_subcommand(1);
  app.fallthrough();  // --json and --workspace work after the subcommand too
  GlobalOptions options;
  app.add_option("--workspace", options.workspace,
                 "workspace base directory (default $CLAUDE_ORCHESTRATOR_WORKSPACE or "
                 "./.agent-workspace)")
      ->envname("CLAUDE_ORCHESTRATOR_WORKSPACE");
  app.add_flag("--json", options.json_output, "print machine-readable JSON");
  std::function<int()> action;

  // herd task create / list
  CLI::App* task = app.add_subcommand("task", "create and list tasks");
  task->require_subcommand(1);
  CreateTaskRequest create;
  std::string context_json;
  std::string task_id_for_limits;
  CLI::App* task_create = task->add_subcommand("create", "create a task for agents to work on");
  task_create->add_option("description", create.description, "what the agents should achieve")
      ->required();
  task_create->add_option("--priority", create.priority, "P0 (urgent) to P4; default P2");
  task_create->add_option("--cwd", create.client_cwd,
                          "the project directory agents work in (its own .agent-workspace)");
  task_create->add_option("--max-concurrent", create.max_concurrent, "active agents at once");
  task_create->add_option("--max-agents", create.max_agents, "agents in the task's lifetime");
  task_create->add_option("--max-depth", create.max_depth, "depth of the parent/child tree");
  std::optional<double> max_cost_usd;
  std::optional<long long> max_tokens;
  task_create->add_option("--max-cost-usd", max_cost_usd,
                          "stop the task's agents once their reported cost passes this");
  task_create->add_option("--max-tokens", max_tokens,
                          "stop the task's agents once their tokens together pass this");
  task_create->add_option("--agent-timeout", create.timeouts.wall_clock_seconds,
                          "stop an agent after this many seconds (0 = never)");
  task_create->add_option("--agent-idle-timeout", create.timeouts.idle_seconds,
                          "stop an agent that prints nothing for this many seconds (0 = never)");
  task_create->add_flag("--isolate-config", create.isolate_agent_config,
                        "give each Claude Code agent its own CLAUDE_CONFIG_DIR");
  task_create->add_option("--context", context_json,
                          "JSON object with background_context, expected_deliverables, "
                          "success_criteria, constraints, relevant_files");
  task_create->callback([&] {
    action = [&] {
      if (max_cost_usd) create.budget.max_cost_usd = max_cost_usd;
      if (max_tokens) create.budget.max_tokens = max_tokens;
      if (!context_json.empty()) {
        Result<json> context = ParseJson(context_json, kMaxMessageDepth);
        if (!context.ok() || !context->is_object()) {
          std::cerr << "herd: --context must be a JSON object"
                    << (context.ok() ? "" : ": " + context.status().message()) << "\n";
          return kExitUsage;
        }
        create.context = std::move(context).value();
      }
      return Report(options, MakeOrchestrator(options).CreateTask(create), [](const json& r) {
        std::string text =
            "created " + r.value("task_id", "") + " in " + r.value("workspace", "") + "\n";
        for (const json& warning : r.value("validation_warnings", json::array())) {
          text += "warning: " + warning.get<std::string>() + "\n";
        }
        return text;
      });
    };
  });
  LimitsUpdate limits_update;
  std::optional<double> new_cost;
  std::optional<long long> new_tokens;
  CLI::App* task_limits = task->add_subcommand("limits", "change a task's limits and budgets");
  task_limits->add_option("task_id", task_id_for_limits, "the task")->required();
  task_limits->add_option("--max-agents", limits_update.max_agents,
                          "agents in the task's lifetime");
  task_limits->add_option("--max-concurrent", limits_update.max_concurrent,
                          "active agents at once");
  task_limits->add_option("--max-depth", limits_update.max_depth, "depth of the parent/child tree");
  task_limits->add_option("--max-cost-usd", new_cost, "cost budget in dollars");
  task_limits->add_option("--max-tokens", new_tokens, "token budget");
  task_limits->callback([&] {
    action = [&] {
      limits_update.budget.max_cost_usd = new_cost;
      limits_update.budget.max_tokens = new_tokens;
      return Report(
          options, MakeOrchestrator(options).UpdateLimits(task_id_for_limits, limits_update),
          [](const json& r) {
            std::string text = "limits of " + r.value("task_id", "") + ": " + r["limits"].dump() +
                               ", budget " + r["budget"].dump() + "\n";
            if (!r["budget_exceeded"].is_null()) {
              text += "still over budget: " + r["budget_exceeded"].value("message", "") + "\n";
            }
            return text;
          });
    };
  });
  CLI::App* task_list = task->add_subcommand("list", "list every task herd knows");
  task_list->callback([&] {
    action = [&] {
      return Report(options, MakeOrchestrator(options).ListTasks(), [](const json& r) {
        Table table({"TASK", "STATUS", "ACTIVE", "SPAWNED", "CREATED", "DESCRIPTION"});
        for (const json& t : r["tasks"]) {
          table.AddRow({t.value("task_id", ""), t.value("status", ""),
                        std::to_string(t.value("active_count", 0)),
                        std::to_string(t.value("total_spawned", 0)), t.value("created_at", ""),
                        t.value("description", "")});
        }
        return table.Render();
      });
    };
  });

  // herd deploy
  agents::DeployRequest deploy;
  std::string prompt_file;
  CLI::App* deploy_command = app.add_subcommand("deploy", "start an agent on a task");
  deploy_command->add_option("task_id", deploy.task_id, "the task")->required();
  deploy_command->add_option("--type", deploy.agent_type, "the agent's role, e.g. tester")
      ->required();
  deploy_command->add_option("--parent", deploy.parent, "parent agent id (default orchestrator)");
  deploy_command
      ->add_option("--backend", deploy.backend, "claude, codex, cursor-agent, gemini or command")
      ->check(CLI::IsMember(agents::BackendNames()));
  deploy_command->add_option("--model", deploy.model, "model for the agent CLI");
  deploy_command->add_flag("--isolate-config", deploy.isolate_config,
                           "give this Claude Code agent its own CLAUDE_CONFIG_DIR");
  deploy_command->add_flag("--tmux", deploy.tmux,
                           "also open a tmux session following the agent's output, to attach to");
  auto* prompt_option = deploy_command->add_option("--prompt", deploy.prompt, "the prompt text");
  deploy_command->add_option("--prompt-file", prompt_file, "read the prompt from a file")
      ->excludes(prompt_option);
  deploy_command->add_option("argv", deploy.command_argv,
                             "with --backend command: the agent's program and arguments, after --");
  deploy_command->callback([&] {
    action = [&] {
      if (!prompt_file.empty()) {
        Result<std::string> text = ReadPromptFile(prompt_file);
        if (!text.ok()) {
          std::cerr << "herd: " << text.status().message() << "\n";
          return kExitUsage;
        }
        deploy.prompt = *text;
      }
      if (deploy.backend != "command" && !deploy.command_argv.empty()) {
        std::cerr << "herd: an argv after -- is only for --backend command\n";
        return kExitUsage;
      }
      return Report(options, MakeOrchestrator(options).Deploy(deploy), [](const json& r) {
        std::string text = "deployed " + r.value("agent_id", "") + " (pid " + Text(r["pid"]) +
                           ", depth " + std::to_string(r.value("depth", 1)) +
                           ")\nlog: " + r.value("log_file", "") + "\n";
        if (r["tmux_session"].is_string()) {
          text += "watch: tmux attach -t " + r["tmux_session"].get<std::string>() + "\n";
        }
        return text;
      });
    };
  });

  // herd status
  std::string task_id, agent_id;
  CLI::App* status_command = app.add_subcommand("status", "show a task's agents and progress");
  status_command->add_option("task_id", task_id, "the task")->required();
  status_command->callback([&] {
    action = [&] {
      return Report(options, MakeOrchestrator(options).TaskStatus(task_id), RenderStatus);
    };
  });

  // herd watch
  int until_active = 0;
  CLI::App* watch =
      app.add_subcommand("watch", "show a task's status live until few agents are active");
  watch->add_option("task_id", task_id, "the task")->required();
  watch->add_option("--until-active", until_active,
                    "stop once at most this many agents are active (default 0)");
  watch->callback([&] {
    action = [&] {
      return WatchTask(MakeOrchestrator(options), task_id, until_active, options.json_output);
    };
  });

  // herd logs
  size_t tail_lines = 0;
  bool follow = false;
  CLI::App* logs = app.add_subcommand("logs", "print an agent's output");
  logs->add_option("task_id", task_id, "the task")->required();
  logs->add_option("agent_id", agent_id, "the agent")->required();
  logs->add_option("--tail", tail_lines, "only the last N lines");
  logs->add_flag("--follow,-f", follow, "keep printing new output until the agent ends");
  logs->callback([&] {
    action = [&] {
      Orchestrator orchestrator = MakeOrchestrator(options);
      OutputRequest request;
      request.task_id = task_id;
      request.agent_id = agent_id;
      if (tail_lines > 0) request.tail = tail_lines;
      // A terminal has no MCP reply limit: print up to 4 MiB of the newest output.
      request.max_bytes = 4 * 1024 * 1024;
      request.include_metadata = true;
      Result<json> output = orchestrator.AgentOutput(request);
      int code = Report(options, output, [](const json& r) { return Text(r["output"]); });
      if (code != kExitOk || !follow || options.json_output) return code;
      return FollowLog(orchestrator, task_id, agent_id,
                       output->at("metadata").value("file_size", 0ULL));
    };
  });

  // herd progress / finding
  std::string progress_status, message;
  int progress_value = 0;
  CLI::App* progress = app.add_subcommand("progress", "report an agent's progress");
  progress->add_option("task_id", task_id, "the task")->required();
  progress->add_option("agent_id", agent_id, "the agent")->required();
  progress
      ->add_option("--status", progress_status,
                   "running, working, blocked, completed, error, "
                   "terminated or failed")
      ->required();
  progress->add_option("--message", message, "what happened")->required();
  progress->add_option("--progress", progress_value, "percent done, 0-100");
  progress->callback([&] {
    action = [&] {
      return Report(options,
                    MakeOrchestrator(options).ReportProgress(task_id, agent_id, progress_status,
                                                             message, progress_value),
                    [](const json& r) {
                      const json& update = r["own_update"];
                      return "recorded " + update.value("status", "") + " " +
                             std::to_string(update.value("progress", 0)) + "% for " +
                             update.value("agent_id", "") + "\n";
                    });
    };
  });
  std::string finding_type, severity, data_json;
  CLI::App* finding = app.add_subcommand("finding", "report something an agent found");
  finding->add_option("task_id", task_id, "the task")->required();
  finding->add_option("agent_id", agent_id, "the agent")->required();
  finding->add_option("--type", finding_type, "issue, insight, recommendation, ...")->required();
  finding->add_option("--severity", severity, registry::FindingSeveritiesText())->required();
  finding->add_option("--message", message, "the finding")->required();
  finding->add_option("--data", data_json, "extra JSON data");
  finding->callback([&] {
    action = [&] {
      json data = json::object();
      if (!data_json.empty()) {
        Result<json> parsed = ParseJson(data_json, kMaxMessageDepth);
        if (!parsed.ok()) {
          std::cerr << "herd: --data is not valid JSON: " << parsed.status().message() << "\n";
          return kExitUsage;
        }
        data = std::move(parsed).value();
      }
      return Report(options,
                    MakeOrchestrator(options).ReportFinding(task_id, agent_id, finding_type,
                                                            severity, message, data),
                    [](const json& r) {
                      return "recorded finding from " + r["own_finding"].value("agent_id", "") +
                             "\n";
                    });
    };
  });

  // herd kill
  std::string reason = "Manual termination";
  double grace_seconds = static_cast<double>(agents::kDefaultKillGrace.count()) / 1000;
  CLI::App* kill_command = app.add_subcommand("kill", "stop an agent and everything it started");
  kill_command->add_option("task_id", task_id, "the task")->required();
  kill_command->add_option("agent_id", agent_id, "the agent")->required();
  kill_command->add_option("--reason", reason, "recorded with the termination");
  kill_command
      ->add_option("--grace", grace_seconds,
                   "seconds between SIGTERM and SIGKILL (" +
                       std::to_string(agents::kDefaultKillGrace.count() / 1000) + ")")
      ->check(CLI::Range(0.0, agents::kMaxKillGraceSeconds));
  kill_command->callback([&] {
    action = [&] {
      auto grace = agents::KillGraceFromSeconds(grace_seconds);
      Result<json> killed = MakeOrchestrator(options).Kill(task_id, agent_id, reason, grace);
      int code = Report(options, killed, [](const json& r) {
        if (r.value("already_ended", false)) {
          return r.value("agent_id", "") + " had already ended (" + r.value("status", "") + ")\n";
        }
        const json& cleanup = r["cleanup"];
        return std::string(r.value("registry_recorded", true) ? "terminated " : "stopped ") +
               r.value("agent_id", "") + ": " + std::to_string(cleanup.value("signalled", 0)) +
               " process(es) sent SIGTERM, " + std::to_string(cleanup.value("sigkilled", 0)) +
               " needed SIGKILL\n";
      });
      if (code != kExitOk) return code;
      // On stderr, with --json too: a script's log should show it.
      if (killed->contains("warning")) {
        std::cerr << "herd: warning: " << killed->value("warning", "") << "\n";
      }
      return killed->value("registry_recorded", true) ? kExitOk : kExitNotRecorded;
    };
  });

  // herd doctor
  health::DoctorOptions doctor_options;
  CLI::App* doctor = app.add_subcommand(
      "doctor", "find zombie entries, orphans, drift and damaged files, and repair them");
  doctor->add_option("task_id", doctor_options.task_id, "check only this task");
  doctor->add_flag("--repair", doctor_options.repair, "fix what is found");
  doctor->add_flag("--dry-run", doctor_options.dry_run, "with --repair: show what would change");
  doctor->callback([&] {
    action = [&] {
      Orchestrator orchestrator = MakeOrchestrator(options);
      Result<json> report =
          health::Diagnose(orchestrator.stores(), orchestrator.workspace(), doctor_options);
      int code = Report(options, report, health::RenderReport);
      // Like any check: exit 1 while something is left to fix.
      if (code == kExitOk && !report->at("summary").value("healthy", true)) code = kExitFailed;
      return code;
    };
  });

  // herd serve
  CLI::App* serve_command = app.add_subcommand("serve",
                                               "speak MCP over stdio (for Claude Code, "
                                               "Cursor, Codex and herd's own agents)");
  serve_command->callback([&] {
    action = [&] { return serve(registry::Workspace::Resolve(options.workspace).base()); };
  });

  // herd supervise (internal)
  agents::SupervisorArgs supervisor;
  CLI::App* supervise = app.add_subcommand("supervise", "");  // hidden: started by deploy
  supervise->group("");
  supervise->add_option("--task", supervisor.task_id)->required();
  supervise->add_option("--agent", supervisor.agent_id)->required();
  supervise->callback([&] {
    action = [&] {
      supervisor.workspace_base = registry::Workspace::Resolve(options.workspace).base();
      return agents::RunSupervisor(supervisor);
    };
  });

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
  return action ? action() : kExitUsage;
}

}  // namespace herd::cli
