// The requests of the worktree operations (herd diff, merge, worktree
// list/remove/prune; MCP get_agent_diff, merge_agent_work), declared as
// orchestrator/requests.h declares the others: a struct, its parameter
// table, FromArguments. Also the worktree options every deploy and spawn
// takes (WorktreeOptions, GetWorktreeOptions).
//
// Plain data; the tables are built once and read-only after: thread-safe.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "agents/agent_worktree.h"
#include "orchestrator/parameters.h"
#include "util/status.h"

namespace herd {

// worktree, base, branch, copy, setup: the rows deploy_headless_agent and
// spawn_child_agent share.
ParameterList WorktreeOptions();
// Reads those rows into `request`.
void GetWorktreeOptions(const CheckedArguments& checked, agents::WorktreeRequest* request);

// get_agent_diff; herd diff.
struct DiffRequest {
  static const std::vector<std::string>& Formats();      // patch, stat, name-only
  static constexpr size_t kDefaultMaxBytes = 48 * 1024;  // as get_agent_output's
  static constexpr size_t kLargestMaxBytes = 16 * 1024 * 1024;
  std::string task_id;
  std::string agent_id;
  std::string format = "patch";
  size_t max_bytes = kDefaultMaxBytes;

  static const ParameterList& Parameters();
  static Result<DiffRequest> FromArguments(const json& arguments,
                                           ArgumentNames names = ArgumentNames::kJson);
};

// merge_agent_work; herd merge.
struct MergeRequest {
  static const std::vector<std::string>& Strategies();  // squash, rebase, ff-only
  std::string task_id;
  std::string agent_id;
  std::string strategy = "squash";
  std::string into;  // "" = the branch the worktree started from
  std::string message;
  bool commit_pending = false;

  static const ParameterList& Parameters();
  static Result<MergeRequest> FromArguments(const json& arguments,
                                            ArgumentNames names = ArgumentNames::kJson);
};

// herd worktree list.
struct WorktreeListRequest {
  std::string task_id;  // "" = every task

  static const ParameterList& Parameters();
  static Result<WorktreeListRequest> FromArguments(const json& arguments,
                                                   ArgumentNames names = ArgumentNames::kJson);
};

// herd worktree remove.
struct WorktreeRemoveRequest {
  std::string task_id;
  std::string agent_id;
  bool force = false;  // even if work would be lost (listed in the reply)

  static const ParameterList& Parameters();
  static Result<WorktreeRemoveRequest> FromArguments(const json& arguments,
                                                     ArgumentNames names = ArgumentNames::kJson);
};

// herd worktree prune: removes every ended agent's worktree that would
// lose nothing.
struct WorktreePruneRequest {
  std::string task_id;  // "" = every task
  bool dry_run = false;

  static const ParameterList& Parameters();
  static Result<WorktreePruneRequest> FromArguments(const json& arguments,
                                                    ArgumentNames names = ArgumentNames::kJson);
};

}  // namespace herd
