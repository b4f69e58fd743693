// Requests: the input of every operation herd offers, as a plain struct
// whose parameters are declared once, beside it.
//
// Each request has
//   static const ParameterList& Parameters();  // its table (parameters.h)
//   static Result<Request> FromArguments(const json& arguments, ArgumentNames);
// FromArguments checks a JSON argument object against the table and fills
// the struct; the struct's member initializers are the defaults, and the
// table shows them by reading them (or the constant they use). The MCP
// tools (mcp/tools.cc) pass their call's arguments; the CLI (cli/) builds
// the same object from its options, so both take the same checks.
//
// The orchestrator still checks what only it can (an empty description, a
// project directory that is missing, limits reached, ids that are unsafe).
//
// Plain data; the tables are built once and read-only after: thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/conversation.h"
#include "agents/killer.h"
#include "agents/launcher.h"
#include "orchestrator/parameters.h"
#include "registry/task_registry.h"
#include "util/status.h"

namespace herd {

// Upper bounds no sensible request reaches; they keep numbers finite.
inline constexpr int kMaxTaskLimit = 100000;               // max_agents, max_concurrent, max_depth
inline constexpr int kMaxAgentTimeoutSeconds = 7 * 86400;  // a week
inline constexpr double kMaxCostUsd = 1e9;                 // dollars
inline constexpr long long kMaxTokens = 1LL << 50;         // tokens
inline constexpr int kMaxTailLines = 1000000;              // get_agent_output's tail

// create_real_task; herd task create.
struct CreateTaskRequest {
  std::string description;
  std::string priority = "P2";                          // one of Priorities()
  static const std::vector<std::string>& Priorities();  // P0 (most urgent) to P4
  std::string client_cwd;
  // background_context, expected_deliverables, success_criteria,
  // constraints, relevant_files, conversation_history (reference names).
  json context = json::object();
  std::optional<int> max_agents;  // unset: registry::Limits::FromEnvironment()
  std::optional<int> max_concurrent;
  std::optional<int> max_depth;
  registry::Budget budget = registry::Budget::FromEnvironment();
  registry::AgentTimeouts timeouts = registry::AgentTimeouts::FromEnvironment();
  bool isolate_agent_config = false;
  std::string notify_command;    // "" = $HERD_NOTIFY_COMMAND
  bool agent_worktrees = false;  // worktree: the orchestrator's deploys get their own

  // The context's keys, as the reference names them.
  static const std::vector<const char*>& ContextKeys();
  static const ParameterList& Parameters();
  static Result<CreateTaskRequest> FromArguments(const json& arguments,
                                                 ArgumentNames names = ArgumentNames::kJson);
};

// herd task limits: new values for a task's limits; unset ones stay as they are.
struct LimitsUpdate {
  std::string task_id;
  std::optional<int> max_agents;
  std::optional<int> max_concurrent;
  std::optional<int> max_depth;
  registry::Budget budget;  // not from the environment: only what is given

  static const ParameterList& Parameters();
  static Result<LimitsUpdate> FromArguments(const json& arguments,
                                            ArgumentNames names = ArgumentNames::kJson);
};

// get_agent_output; herd logs.
struct OutputRequest {
  static const std::vector<std::string>& Formats();          // text, jsonl, parsed
  static const std::vector<std::string>& ResponseFormats();  // full, summary, compact
  std::string task_id;
  std::string agent_id;
  std::optional<size_t> tail;  // last N lines
  // Only lines with a match of this RE2 regular expression; a longer
  // pattern is refused.
  static constexpr size_t kMaxFilterBytes = 1000;
  std::string filter;
  std::string format = "text";  // text | jsonl | parsed
  bool include_metadata = false;
  // Unset: kDefaultMaxBytes, which keeps MCP clients under their limits.
  static constexpr size_t kDefaultMaxBytes = 48 * 1024;  // ~12k tokens: under Claude Code's 25k
  static constexpr size_t kLargestMaxBytes = 4 * 1024 * 1024;
  std::optional<size_t> max_bytes;
  std::string response_format = "full";  // full | summary | compact

  static const ParameterList& Parameters();
  static Result<OutputRequest> FromArguments(const json& arguments,
                                             ArgumentNames names = ArgumentNames::kJson);
};

// get_real_task_status; herd status and herd watch.
struct StatusRequest {
  std::string task_id;
  // How agent entries are listed (mcp/client_limits.h): auto | full | summary.
  std::string response_format = "auto";

  static const ParameterList& Parameters();
  static Result<StatusRequest> FromArguments(const json& arguments,
                                             ArgumentNames names = ArgumentNames::kJson);
};

// deploy_headless_agent; herd deploy. The fields are agents::DeployRequest's.
struct DeployAgentRequest : agents::DeployRequest {
  static const ParameterList& Parameters();
  static Result<DeployAgentRequest> FromArguments(const json& arguments,
                                                  ArgumentNames names = ArgumentNames::kJson);
};

// spawn_child_agent: a deploy under a parent agent, which by default lends
// the child its backend and model (the caller looks the parent up).
struct SpawnRequest : agents::DeployRequest {
  bool backend_given = false;
  bool model_given = false;

  static const ParameterList& Parameters();
  static Result<SpawnRequest> FromArguments(const json& arguments,
                                            ArgumentNames names = ArgumentNames::kJson);
};

// The reason a kill or a stop records when none is given.
inline constexpr const char kManualTermination[] = "Manual termination";

// kill_real_agent; herd kill.
struct KillRequest {
  std::string task_id;
  std::string agent_id;
  std::string reason = kManualTermination;
  std::chrono::milliseconds grace = agents::kDefaultKillGrace;

  static const ParameterList& Parameters();
  static Result<KillRequest> FromArguments(const json& arguments,
                                           ArgumentNames names = ArgumentNames::kJson);
};

// stop_task; herd kill TASK --all: every agent of the task, and no new ones.
struct StopTaskRequest {
  std::string task_id;
  std::string reason = kManualTermination;
  std::chrono::milliseconds grace = agents::kDefaultKillGrace;

  static const ParameterList& Parameters();
  static Result<StopTaskRequest> FromArguments(const json& arguments,
                                               ArgumentNames names = ArgumentNames::kJson);
};

// update_agent_progress; herd progress.
struct ProgressReport {
  std::string task_id;
  std::string agent_id;
  std::string status;
  std::string message;
  int progress = 0;  // percent

  static const ParameterList& Parameters();
  static Result<ProgressReport> FromArguments(const json& arguments,
                                              ArgumentNames names = ArgumentNames::kJson);
};

// report_agent_finding; herd finding.
struct FindingReport {
  std::string task_id;
  std::string agent_id;
  std::string finding_type;
  std::string severity;
  std::string message;
  json data = json::object();

  static const ParameterList& Parameters();
  static Result<FindingReport> FromArguments(const json& arguments,
                                             ArgumentNames names = ArgumentNames::kJson);
};

// wait_for_agents; herd wait: block until the named agents (or the task's
// active ones) have ended, or the timeout.
struct WaitRequest {
  static const std::vector<std::string>& Modes();  // all, any
  // The default stays under MCP clients' tool-call timeouts (Codex: 60 s);
  // a caller waits longer by calling again.
  static constexpr double kDefaultTimeoutSeconds = 50;
  static constexpr double kMaxTimeoutSeconds = 86400;
  std::string task_id;
  // "": every agent active when the wait starts, and any started while it
  // waits.
  std::vector<std::string> agent_ids;
  std::string mode = "all";  // all: every one has ended; any: one has
  double timeout_seconds = kDefaultTimeoutSeconds;

  static const ParameterList& Parameters();
  static Result<WaitRequest> FromArguments(const json& arguments,
                                           ArgumentNames names = ArgumentNames::kJson);
};

// send_agent_message; herd send: a follow-up message to an agent, which
// runs as the agent's next turn (agents/conversation.h).
struct SendMessageRequest {
  std::string task_id;
  std::string agent_id;
  std::string message;
  bool interrupt = false;

  static const ParameterList& Parameters();
  static Result<SendMessageRequest> FromArguments(const json& arguments,
                                                  ArgumentNames names = ArgumentNames::kJson);
};

// get_health_status; herd doctor (whose --repair and --dry-run only the
// command line offers).
struct HealthRequest {
  std::string task_id;  // "" = every task

  static const ParameterList& Parameters();
  static Result<HealthRequest> FromArguments(const json& arguments,
                                             ArgumentNames names = ArgumentNames::kJson);
};

}  // namespace herd
