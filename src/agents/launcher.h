// Deploying an agent: admission, then a supervised start, confirmed.
//
// DeployAgent reserves the agent's slot in the task registry (one
// transaction that checks every limit: registry/task_registry.h), indexes it
// globally (enforcing the optional machine-wide HERD_MAX_RUNNING_AGENTS cap),
// writes the prompt and launch plan files, starts `herd supervise` and waits
// on its handshake pipe until the agent has exec'd and its pid is recorded.
// No lock is held while it forks or waits. If the start fails, the
// reservation is released in a second transaction, so a failed start never
// uses up a slot.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agents/agent_worktree.h"
#include "registry/records.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::agents {

struct DeployRequest {
  std::string task_id;
  std::string agent_type;
  std::string prompt;
  std::string parent = "orchestrator";
  std::string backend = "claude";
  std::string model;
  std::vector<std::string> command_argv;  // for backend "command"
  // Give this Claude Code agent its own CLAUDE_CONFIG_DIR (also on when the
  // task asks for it).
  bool isolate_config = false;
  // Also open a detached tmux session that follows the agent's output, so a
  // person can attach (agents/tmux_view.h).
  bool tmux = false;
  // Its own git worktree (agents/agent_worktree.h).
  WorktreeRequest worktree;
};

// Deploys and returns the agent's registry entry as recorded at start
// (with pid). `workspace` must hold the task.
Result<registry::AgentRecord> DeployAgent(const registry::RegistryStores& stores,
                                          const registry::Workspace& workspace,
                                          const DeployRequest& request);

// Starts turn `turn` of an agent that a follow-up message began
// (registry/turns.h: its entry waits in phase "starting"): a supervisor for
// that turn, confirmed by its handshake as a deploy's is. If it does not
// start, the turn is abandoned (the ended turn is restored, the message
// kept as undelivered) and the error says why. Returns the entry as
// recorded at start.
Result<registry::AgentRecord> StartFollowUpTurn(const registry::RegistryStores& stores,
                                                const registry::Workspace& workspace,
                                                const std::string& task_id,
                                                const std::string& agent_id, int turn);

// The prompt an MCP-capable agent receives: its ids on lines of their own
// and the exact herd tools to call, then the caller's prompt.
std::string ComposeAgentPrompt(const std::string& task_id, const std::string& agent_id,
                               const std::string& parent, const std::string& prompt);

}  // namespace herd::agents
