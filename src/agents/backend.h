// Backends: how each agent CLI is started and how its output is read.
//
// A backend turns a deploy request into a LaunchPlan (argv vector, extra
// environment, what goes on stdin); it never builds a shell string. The
// prompt always travels through a file (on stdin), never on the command
// line, so prompts of any size work.
//
//   claude        $CLAUDE_EXECUTABLE (claude) + $CLAUDE_FLAGS (the reference's
//                 defaults) + --mcp-config <per-agent file> + --session-id
//                 <uuid herd records>; prompt on stdin
//   codex         $CODEX_EXECUTABLE (codex) exec --json --skip-git-repo-check
//                 --dangerously-bypass-approvals-and-sandbox
//                 -c mcp_servers.herd.{command,args,env,...}=<the per-agent
//                 MCP server, as TOML> [--model M] -     ; prompt on stdin
//   cursor-agent  cursor-agent -p --output-format stream-json [--model M]
//   gemini        gemini --output-format stream-json --yolo --skip-trust [-m M]
//                 --session-id <uuid herd records> -p <pointer to stdin>;
//                 prompt on stdin; GEMINI_CLI_HOME=<per-agent home> whose
//                 settings add herd's MCP server (PrepareGeminiHome)
//   command       any argv; prompt on stdin and in $HERD_PROMPT_FILE
//
// Every agent gets HERD_TASK_ID, HERD_AGENT_ID, HERD_WORKSPACE,
// HERD_PROMPT_FILE, HERD_BIN (this herd binary), HERD_TURN (1, then 2, ...
// for each follow-up message: PlanFollowUpTurn) and
// CLAUDE_ORCHESTRATOR_WORKSPACE in its environment.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd::agents {

struct LaunchRequest {
  std::string backend = "claude";
  std::string model;
  std::vector<std::string> command_argv;  // the `command` backend's argv
  std::string task_id;
  std::string agent_id;
  std::string workspace_base;
  std::string prompt_path;
  std::string mcp_config_path;
  std::string herd_binary;
  // The session the agent's conversation is saved under, fixed at deploy
  // so a later turn can resume it (claude, gemini: --session-id); "" for backends
  // that cannot be told one.
  std::string session_id;
};

struct LaunchPlan {
  std::vector<std::string> argv;
  std::vector<std::string> environment;  // "KEY=value" added to the inherited environment
  std::string stdin_path;                // the prompt file
  std::string cwd;                       // the task's project directory
  std::string log_path;                  // stdout and stderr are appended here
  bool stream_json = false;              // output is JSON lines with a final result event
  bool supports_mcp = false;             // the agent can call herd's MCP tools
  std::string backend;                   // which event format the output uses
  int timeout_seconds = 0;               // wall-clock limit; 0 = none
  int idle_timeout_seconds = 0;          // limit on time without output; 0 = none
};

// The names accepted by PlanLaunch, for help texts and errors.
const std::vector<std::string>& BackendNames();

// Whether agents of `backend` can call herd back through MCP.
bool BackendSupportsMcp(const std::string& backend);

// Whether herd fixes the session id of `backend`'s agents at deploy.
bool BackendTakesSessionId(const std::string& backend);

Result<LaunchPlan> PlanLaunch(const LaunchRequest& request);

// Ok if agents of `backend` can be sent follow-up messages (each a new turn
// that resumes the conversation); otherwise Refused, saying so.
Status CheckBackendCanResume(const std::string& backend);

// The plan for turn `turn` (2 or more) of an agent whose first turn ran
// `first`: the same program, directory, environment and log, with the
// message file on stdin (and in HERD_PROMPT_FILE) and HERD_TURN=`turn`;
//   claude   --resume <session> in place of --session-id <session>
//   gemini   the same
//   codex    codex exec ... resume <session> -
//   command  the same argv
// Refused for the other backends, or without the session to resume.
Result<LaunchPlan> PlanFollowUpTurn(const LaunchPlan& first, const std::string& session_id,
                                    int turn, const std::string& message_path);

// Sets the plan's HERD_PORT to `port` (the one the registry reserved for
// the agent), or removes it when the agent holds none.
void SetHerdPort(LaunchPlan* plan, std::optional<int> port);

// The per-agent MCP client configuration that starts `herd serve` on the
// agent's workspace ({"mcpServers":{"herd":{...}}}).
nlohmann::json McpConfigFor(const std::string& herd_binary, const std::string& workspace_base);

// The person's Gemini CLI directory: $GEMINI_CLI_HOME/.gemini, else
// $HOME/.gemini.
std::string UserGeminiDirectory();

// `user_settings` (a Gemini CLI settings.json; anything but an object
// counts as {}) with herd's server (McpConfigFor) as mcpServers.herd,
// replacing one of that name and keeping the others.
nlohmann::json GeminiSettingsFor(nlohmann::json user_settings, const std::string& herd_binary,
                                 const std::string& workspace_base);

// Makes `home` the Gemini CLI home (GEMINI_CLI_HOME) of one agent:
// `home`/.gemini/settings.json is GeminiSettingsFor(the settings.json of
// `user_gemini_directory`, comments allowed, or {} if it has none), and
// every other entry there (credentials, GEMINI.md, extensions, saved
// sessions) is a symbolic link to the person's own. Gemini CLI 0.61.0 has
// no flag or variable that adds an MCP server for one run, and it skips a
// system settings file (GEMINI_CLI_SYSTEM_SETTINGS_PATH,
// GEMINI_CLI_SYSTEM_DEFAULTS_PATH) unless root owns it and every directory
// above it, none writable by group or others. Corruption if the person's
// settings are not a JSON object; entries already in `home` are kept.
Status PrepareGeminiHome(const std::string& home, const std::string& user_gemini_directory,
                         const std::string& herd_binary, const std::string& workspace_base);

// The launch plan as JSON and back, for handing to the supervisor.
nlohmann::json LaunchPlanToJson(const LaunchPlan& plan);
Result<LaunchPlan> LaunchPlanFromJson(const nlohmann::json& document);

// Splits `text` on whitespace (for CLAUDE_FLAGS); quotes are not special.
std::vector<std::string> SplitWords(const std::string& text);

}  // namespace herd::agents
