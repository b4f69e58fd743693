#include "agents/backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "store/file_system.h"

extern char** environ;

namespace herd::agents {
namespace {

using nlohmann::json;

constexpr const char kDefaultClaudeFlags[] =
    "--print --output-format stream-json --verbose --dangerously-skip-permissions --model sonnet";

std::string EnvironmentOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// Replaces the value after `flag` in `argv`, or appends `flag value`.
void SetFlag(std::vector<std::string>& argv, const std::string& flag, const std::string& value) {
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag) {
      argv[i + 1] = value;
      return;
    }
  }
  argv.push_back(flag);
  argv.push_back(value);
}

// Replaces the entry `name=...` of `environment`, or appends one.
void SetEnvironment(std::vector<std::string>& environment, const std::string& name,
                    const std::string& value) {
  std::string prefix = name + "=";
  for (std::string& entry : environment) {
    if (entry.rfind(prefix, 0) == 0) {
      entry = prefix + value;
      return;
    }
  }
  environment.push_back(prefix + value);
}

// The names of the variables an agent's process gets: this process's
// environment and the plan's additions, sorted, once each.
std::vector<std::string> AgentEnvironmentNames(const std::vector<std::string>& additions) {
  std::vector<std::string> names;
  auto add = [&](const char* entry) {
    const char* equals = std::strchr(entry, '=');
    if (equals != nullptr && equals != entry) names.emplace_back(entry, equals);
  };
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) add(*entry);
  for (const std::string& entry : additions) add(entry.c_str());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// `text` as a TOML basic string (Codex's `-c key=value` values are TOML).
std::string TomlString(const std::string& text) {
  std::string quoted = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", c);
      quoted += escape;
    } else {
      quoted += static_cast<char>(c);
    }
  }
  return quoted + "\"";
}

// Codex's `-c` overrides that declare each server of an McpConfigFor
// document under mcp_servers.<name> (Codex has no --mcp-config file). A
// server of the user's own config.toml of the same name is overridden.
// Codex starts an MCP server with a few variables of its own environment
// (HOME, PATH, USER, ...) and the server's `env`; `pass_through` names the
// others it must pass on, so herd's server sees what the agent sees.
std::vector<std::string> CodexMcpOverrides(const json& config,
                                           const std::vector<std::string>& pass_through) {
  std::string env_vars;
  for (const std::string& name : pass_through) {
    env_vars += (env_vars.empty() ? "" : ",") + TomlString(name);
  }
  std::vector<std::string> overrides;
  for (const auto& [name, server] : config.at("mcpServers").items()) {
    std::string key = "mcp_servers." + name + ".";
    overrides.push_back(key + "command=" + TomlString(server.at("command").get<std::string>()));
    std::string args;
    for (const json& arg : server.at("args")) {
      args += (args.empty() ? "" : ",") + TomlString(arg.get<std::string>());
    }
    overrides.push_back(key + "args=[" + args + "]");
    std::string env;
    for (const auto& [variable, value] : server.at("env").items()) {
      env += (env.empty() ? "" : ",") + TomlString(variable) + "=" +
             TomlString(value.get<std::string>());
    }
    overrides.push_back(key + "env={" + env + "}");
    overrides.push_back(key + "env_vars=[" + env_vars + "]");
    // herd's own server: an unattended agent has nobody to approve a tool
    // call, and `codex exec` turns a call that needs approval into a refusal
    // ("MCP tool call requires approval, but approval policy is never").
    overrides.push_back(key + "default_tools_approval_mode=\"approve\"");
  }
  return overrides;
}

}  // namespace

const std::vector<std::string>& BackendNames() {
  static const std::vector<std::string> names = {"claude", "codex", "cursor-agent", "gemini",
                                                 "command"};
  return names;
}

bool BackendSupportsMcp(const std::string& backend) {
  return backend != "command";
}

std::vector<std::string> SplitWords(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream stream(text);
  std::string word;
  while (stream >> word) words.push_back(word);
  return words;
}

json McpConfigFor(const std::string& herd_binary, const std::string& workspace_base) {
  return {{"mcpServers",
           {{"herd",
             {{"type", "stdio"},
              {"command", herd_binary},
              {"args", {"serve", "--workspace", workspace_base}},
              {"env", {{"CLAUDE_ORCHESTRATOR_WORKSPACE", workspace_base}}}}}}}};
}

bool BackendTakesSessionId(const std::string& backend) {
  return backend == "claude" || backend == "gemini";
}

Status CheckBackendCanResume(const std::string& backend) {
  if (backend == "claude" || backend == "codex" || backend == "gemini" || backend == "command") {
    return Status::Ok();
  }
  return Status::Refused("the " + backend +
                         " backend cannot continue a conversation in herd yet: deploy a new "
                         "agent with the follow-up in its prompt");
}

void SetHerdPort(LaunchPlan* plan, std::optional<int> port) {
  std::vector<std::string>& environment = plan->environment;
  environment.erase(
      std::remove_if(environment.begin(), environment.end(),
                     [](const std::string& entry) { return entry.rfind("HERD_PORT=", 0) == 0; }),
      environment.end());
  if (port) environment.push_back("HERD_PORT=" + std::to_string(*port));
}

Result<LaunchPlan> PlanFollowUpTurn(const LaunchPlan& first, const std::string& session_id,
                                    int turn, const std::string& message_path) {
  HERD_RETURN_IF_ERROR(CheckBackendCanResume(first.backend));
  LaunchPlan plan = first;
  std::vector<std::string>& argv = plan.argv;
  if (first.backend == "claude" || first.backend == "gemini") {
    auto flag = std::find(argv.begin(), argv.end(), "--session-id");
    if (session_id.empty() || flag == argv.end() || flag + 1 == argv.end()) {
      return Status::Refused(
          "this " + first.backend +
          " agent was started without a session id herd fixed, so its conversation "
          "cannot be found: deploy a new agent with the follow-up in its prompt");
    }
    *flag = "--resume";
    *(flag + 1) = session_id;
  } else if (first.backend == "codex") {
    if (session_id.empty()) {
      return Status::Refused(
          "codex did not report a session (no thread.started event in its output), so its "
          "conversation cannot be resumed: deploy a new agent with the follow-up in its prompt");
    }
    // codex exec [options] resume <session> -   (the message on stdin)
    auto stdin_marker = std::find(argv.begin(), argv.end(), "-");
    argv.insert(argv.erase(stdin_marker), {"resume", session_id, "-"});
  }
  plan.stdin_path = message_path;
  SetEnvironment(plan.environment, "HERD_PROMPT_FILE", message_path);
  SetEnvironment(plan.environment, "HERD_TURN", std::to_string(turn));
  return plan;
}

Result<LaunchPlan> PlanLaunch(const LaunchRequest& request) {
  LaunchPlan plan;
  plan.backend = request.backend;
  plan.stdin_path = request.prompt_path;
  plan.supports_mcp = BackendSupportsMcp(request.backend);
  const std::string& backend = request.backend;
  plan.environment = {
      "HERD_TASK_ID=" + request.task_id,
      "HERD_AGENT_ID=" + request.agent_id,
      "HERD_WORKSPACE=" + request.workspace_base,
      "HERD_PROMPT_FILE=" + request.prompt_path,
      "HERD_BIN=" + request.herd_binary,
      "HERD_TURN=1",
      "CLAUDE_ORCHESTRATOR_WORKSPACE=" + request.workspace_base,
  };
  if (backend == "claude") {
    plan.argv.push_back(EnvironmentOr("CLAUDE_EXECUTABLE", "claude"));
    for (std::string& flag : SplitWords(EnvironmentOr("CLAUDE_FLAGS", kDefaultClaudeFlags))) {
      plan.argv.push_back(std::move(flag));
    }
    if (!request.model.empty()) SetFlag(plan.argv, "--model", request.model);
    // The `=` form: --mcp-config takes several values and would swallow a
    // following argument.
    plan.argv.push_back("--mcp-config=" + request.mcp_config_path);
    if (!request.session_id.empty()) SetFlag(plan.argv, "--session-id", request.session_id);
    plan.stream_json = true;
  } else if (backend == "codex") {
    // Full access, as the other backends get (claude
    // --dangerously-skip-permissions, gemini --yolo, cursor-agent --force):
    // Codex's default read-only sandbox cannot edit the project, and
    // workspace-write cannot commit in a worktree (its index lives in the
    // repository's .git).
    plan.argv = {EnvironmentOr("CODEX_EXECUTABLE", "codex"), "exec", "--json",
                 "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"};
    // HERD_REGISTRY (the shared registry) is inherited, not set by the
    // plan: passed on by name, so its value never appears in an argv.
    std::vector<std::string> pass_through = AgentEnvironmentNames(plan.environment);
    if (const char* registry = std::getenv("HERD_REGISTRY"); registry != nullptr && *registry) {
      pass_through.push_back("HERD_REGISTRY");
    }
    for (std::string& override : CodexMcpOverrides(
             McpConfigFor(request.herd_binary, request.workspace_base), pass_through)) {
      plan.argv.push_back("-c");
      plan.argv.push_back(std::move(override));
    }
    if (!request.model.empty()) SetFlag(plan.argv, "--model", request.model);
    plan.argv.push_back("-");  // read the prompt from stdin
    plan.stream_json = true;
  } else if (backend == "cursor-agent") {
    plan.argv = {"cursor-agent", "-p", "--output-format", "stream-json", "--force"};
    if (!request.model.empty()) SetFlag(plan.argv, "--model", request.model);
    plan.stream_json = true;
  } else if (backend == "gemini") {
    // --skip-trust: headless, Gemini CLI refuses a folder the person has not
    // trusted interactively ("Gemini CLI is not running in a trusted
    // directory"), and herd's agents run unattended in the task's directory.
    // -p text is appended to the prompt read from stdin.
    plan.argv = {"gemini", "--output-format", "stream-json", "--yolo", "--skip-trust"};
    if (!request.model.empty()) SetFlag(plan.argv, "-m", request.model);
    if (!request.session_id.empty()) SetFlag(plan.argv, "--session-id", request.session_id);
    SetFlag(plan.argv, "-p", "Follow the instructions given on standard input.");
    plan.stream_json = true;
  } else if (backend == "command") {
    if (request.command_argv.empty()) {
      return Status::InvalidArgument(
          "the command backend needs the agent's argv: `herd deploy TASK --backend command -- "
          "PROGRAM ARGS...`");
    }
    plan.argv = request.command_argv;
  } else {
    std::string names;
    for (const std::string& name : BackendNames()) names += (names.empty() ? "" : ", ") + name;
    return Status::InvalidArgument("unknown backend \"" + backend + "\": use one of " + names);
  }
  // Claude Code refuses --dangerously-skip-permissions as root unless it is
  // told it runs in a sandbox; herd's agents run unattended by design.
  if (backend == "claude" && geteuid() == 0 && std::getenv("IS_SANDBOX") == nullptr) {
    plan.environment.push_back("IS_SANDBOX=1");
  }
  return plan;
}

std::string UserGeminiDirectory() {
  const char* gemini_home = std::getenv("GEMINI_CLI_HOME");
  if (gemini_home != nullptr && *gemini_home != '\0') return std::string(gemini_home) + "/.gemini";
  return EnvironmentOr("HOME", "") + "/.gemini";
}

json GeminiSettingsFor(json user_settings, const std::string& herd_binary,
                       const std::string& workspace_base) {
  if (!user_settings.is_object()) user_settings = json::object();
  json& servers = user_settings["mcpServers"];
  if (!servers.is_object()) servers = json::object();
  servers["herd"] = McpConfigFor(herd_binary, workspace_base)["mcpServers"]["herd"];
  return user_settings;
}

Status PrepareGeminiHome(const std::string& home, const std::string& user_gemini_directory,
                         const std::string& herd_binary, const std::string& workspace_base) {
  namespace fs = std::filesystem;
  const std::string gemini_directory = home + "/.gemini";
  const std::string user_settings_path = user_gemini_directory + "/settings.json";
  json user_settings = json::object();
  std::error_code error;
  Result<std::string> text = store::FileSystem::Default()->ReadFile(user_settings_path);
  if (!text.ok() && !text.status().Is(Status::Code::kNotFound)) {
    return text.status().WithContext("cannot read the Gemini CLI settings");
  }
  if (text.ok()) {
    // Gemini CLI allows comments in its settings files.
    json parsed = json::parse(*text, nullptr, /*allow_exceptions=*/false, /*ignore_comments=*/true);
    if (parsed.is_discarded() || !parsed.is_object()) {
      return Status::Corruption(user_settings_path +
                                " is not a JSON object: fix it so herd can add its MCP server "
                                "to the settings the Gemini agent runs with");
    }
    user_settings = std::move(parsed);
  }
  fs::create_directories(gemini_directory, error);
  if (error) return Status::FromErrno("cannot create " + gemini_directory, error.value());
  HERD_RETURN_IF_ERROR(store::ReplaceFileDurably(
      store::FileSystem::Default(), gemini_directory + "/settings.json",
      GeminiSettingsFor(std::move(user_settings), herd_binary, workspace_base).dump(2) + "\n"));
  // Everything else (credentials, GEMINI.md, extensions, saved sessions)
  // is the person's own, linked rather than copied so it stays one.
  for (fs::directory_iterator entry(user_gemini_directory, error), end; !error && entry != end;
       entry.increment(error)) {
    std::string name = entry->path().filename().string();
    if (name == "settings.json") continue;
    fs::path link = fs::path(gemini_directory) / name;
    if (fs::symlink_status(link).type() != fs::file_type::not_found) continue;
    std::error_code link_error;
    fs::create_symlink(entry->path(), link, link_error);
    if (link_error) {
      return Status::FromErrno("cannot link " + link.string() + " to " + entry->path().string(),
                               link_error.value());
    }
  }
  return Status::Ok();
}

json LaunchPlanToJson(const LaunchPlan& plan) {
  return {{"argv", plan.argv},
          {"environment", plan.environment},
          {"stdin_path", plan.stdin_path},
          {"cwd", plan.cwd},
          {"log_path", plan.log_path},
          {"stream_json", plan.stream_json},
          {"supports_mcp", plan.supports_mcp},
          {"backend", plan.backend},
          {"timeout_seconds", plan.timeout_seconds},
          {"idle_timeout_seconds", plan.idle_timeout_seconds}};
}

Result<LaunchPlan> LaunchPlanFromJson(const json& document) {
  try {
    LaunchPlan plan;
    plan.argv = document.at("argv").get<std::vector<std::string>>();
    plan.environment = document.at("environment").get<std::vector<std::string>>();
    plan.stdin_path = document.at("stdin_path").get<std::string>();
    plan.cwd = document.at("cwd").get<std::string>();
    plan.log_path = document.at("log_path").get<std::string>();
    plan.stream_json = document.value("stream_json", false);
    plan.supports_mcp = document.value("supports_mcp", false);
    plan.backend = document.value("backend", "command");
    plan.timeout_seconds = document.value("timeout_seconds", 0);
    plan.idle_timeout_seconds = document.value("idle_timeout_seconds", 0);
    if (plan.argv.empty()) return Status::InvalidArgument("the launch plan has an empty argv");
    return plan;
  } catch (const json::exception& error) {
    return Status::Corruption(std::string("the launch plan is malformed: ") + error.what());
  }
}

}  // namespace herd::agents
