// An agent's worktree at deploy: which one it works in, creating it, its
// setup command, and its HERD_PORT candidates.
//
// The launcher (agents/launcher.h) asks PlanAgentWorktree before admission
// (reads only: is the project a git repository, where will the worktree
// go), records the plan in the admission transaction, then, outside every
// registry lock, PrepareAgentWorktree creates the worktree
// (worktrees/worktree.h), records what it made, and runs the setup
// command with its output in the agent's log. A failure there leaves
// nothing: the worktree and the branch herd made are removed again, and the
// launcher releases the slot.
//
// Who gets which directory:
// - an agent of the orchestrator gets its own worktree when it asks
//   (--worktree), or when its task says so (task create --worktree), unless
//   it asks not to;
// - a child agent works in its parent's directory (its worktree, if it has
//   one) unless it asks for its own, whose base is then the parent's branch.
//
// The setup command is the request's, else the repository's `git config
// herd.setup`; it runs under /bin/sh in the new worktree for at most
// HERD_SETUP_TIMEOUT_SECONDS (default 600) with HERD_TASK_ID, HERD_AGENT_ID,
// HERD_WORKTREE and HERD_PORT set.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "registry/records.h"
#include "util/status.h"
#include "worktrees/worktree.h"

namespace herd::agents {

// A deploy's worktree options (DeployRequest::worktree).
struct WorktreeRequest {
  // Its own worktree: true/false as asked; unset = the rules above.
  std::optional<bool> own;
  std::string base;    // "" = what the project (or the parent's worktree) has checked out
  std::string branch;  // "" = herd/<task>/<agent>
  std::vector<std::string> copy_paths;
  std::string setup;  // "" = git config herd.setup, if set
};

// Where herd keeps worktrees: <state directory>/worktrees.
std::string WorktreeRoot();

struct WorktreePlan {
  std::string cwd;  // "" = the task's directory; else the worktree (own or the parent's)
  std::optional<registry::WorktreeRecord> record;  // its own, as planned
  worktrees::CreateSpec spec;                      // to create it
  std::string setup;
};

// Decides the agent's directory; InvalidArgument with what to do when the
// project is not a git repository or options need --worktree.
Result<WorktreePlan> PlanAgentWorktree(const WorktreeRequest& request,
                                       const registry::TaskRecord& task, const std::string& parent,
                                       const std::string& task_cwd, const std::string& agent_id);

// Creates the planned worktree and runs the setup command (output appended
// to `log_path`). Returns the record as created, plus warnings. On failure
// nothing is left of the worktree.
struct PreparedWorktree {
  registry::WorktreeRecord record;
  std::vector<std::string> warnings;
};
Result<PreparedWorktree> PrepareAgentWorktree(const WorktreePlan& plan, const std::string& log_path,
                                              std::optional<int> port);

// Removes a worktree made for an agent that then failed to start (its
// content is only what herd put there).
void DiscardAgentWorktree(const registry::WorktreeRecord& record);

worktrees::WorktreeInfo ToWorktreeInfo(const registry::WorktreeRecord& record);

// Ports in $HERD_PORT_RANGE (FIRST-LAST, 20000-29999 by default) that
// could be bound just now, a few, starting at a place that depends on the
// task so tasks rarely meet. The admission picks the first no active agent
// on the machine holds (registry/global_index.h MachineReservation). A
// malformed range is an InvalidArgument saying how to write it.
Result<std::vector<int>> PortCandidates(const std::string& task_id);

}  // namespace herd::agents
