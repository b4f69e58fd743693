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
//
// Placed agents (a shared registry, PostgreSQL, with `herd node` daemons:
// node/node_daemon.h): when the deploy names a node or labels, or any node
// is up, DeployAgent starts nothing itself. The admission transaction
// places the agent on a node (registry/nodes.h ChoosePlacement) and records
// its launch inputs (AgentRecord::launch: the whole prompt, the command,
// the options); the node's daemon, woken by the commit, starts it with
// StartPlacedAgent under a supervisor of its own machine, and DeployAgent
// waits for the start record (Registry::WatchCommits) up to
// kPlacedStartPatience. A node that cannot start it releases the slot and
// leaves the reason in the agent's output tail, which the deploy's error
// quotes; one that does not answer in time finds the agent terminated, so
// it never starts late. The node makes a placed agent's worktree (its own
// or its parent's, agents/agent_worktree.h) in the node's own checkout; a
// child of an agent that works in a worktree is placed on that agent's
// node, in its directory.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent_worktree.h"
#include "agents/liveness.h"
#include "registry/nodes.h"
#include "registry/records.h"
#include "registry/registry.h"
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
  // Where to run it: a named node, or the least loaded with these labels
  // (shared registry only). Unset: a node if any is up, else here.
  std::optional<registry::PlacementRequest> placement;
};

inline constexpr std::chrono::seconds kPlacedStartPatience{60};

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
struct NodeContext;

// A node's daemon passes its NodeContext (below) so the turn's supervisor
// holds the node's lifeline.
Result<registry::AgentRecord> StartFollowUpTurn(const registry::RegistryStores& stores,
                                                const registry::Workspace& workspace,
                                                const std::string& task_id,
                                                const std::string& agent_id, int turn,
                                                const NodeContext* node = nullptr);

// What a node's daemon passes on to the supervisors it starts: the end of
// a pipe whose other end the daemon holds (the lifeline: its EOF means the
// daemon ended or gave up its lease), and the node it runs for.
struct NodeContext {
  std::string name;
  int64_t incarnation = 0;
  int lifeline_read_fd = -1;
};

// Starts agent `agent` of task `task_id`, placed on this node (`node`),
// from its launch inputs: makes its worktree if it gets one, writes its
// prompt, MCP config and launch plan under `workspace` (the node's own),
// and starts `herd supervise` holding
// the lifeline, confirmed by its handshake. If it does not start, the
// admission is released, the reason appended to the agent's output tail,
// and the error says why.
Status StartPlacedAgent(const registry::RegistryStores& stores,
                        const registry::Workspace& workspace, const std::string& task_id,
                        const registry::AgentRecord& agent, const NodeContext& node);

// Waits on `watch` (opened before the commit that placed the agent or
// began its turn) until its node has recorded the start of turn `turn` of
// agent `agent_id`, up to kPlacedStartPatience, and returns the entry. An
// error quotes why it did not start: the node's reason for a released agent
// (from its output tail) or an abandoned turn (its undelivered message), or
// the end recorded before the start (a kill, its node lost). At the
// deadline the agent is marked terminated (so it never starts late) and
// the error says so.
Result<registry::AgentRecord> AwaitPlacedStart(const registry::Registry& registry,
                                               registry::CommitWatch& watch,
                                               const std::string& task_id,
                                               const std::string& agent_id, int turn);

// The prompt an MCP-capable agent receives: its ids on lines of their own
// and the exact herd tools to call, then the caller's prompt.
std::string ComposeAgentPrompt(const std::string& task_id, const std::string& agent_id,
                               const std::string& parent, const std::string& prompt);

}  // namespace herd::agents
