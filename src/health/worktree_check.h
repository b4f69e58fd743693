// Doctor checks on agents' git worktrees (worktrees/worktree.h), for the
// tasks of the diagnosed base:
// - orphan_worktree (warning): a worktree with herd's lock under herd's
//   root that no agent of its task records (a deploy killed while creating
//   it, or a record lost). Repair: removed, with the branch herd named
//   herd/<task>/<agent>, only if the agent's processes are gone and nothing
//   would be lost (no uncommitted files; no commit that no other branch
//   has); otherwise left alone, saying what is there.
// - stale_worktree (warning): git lists a herd worktree whose folder is
//   gone. Repair: unlock it and `git worktree prune` (its branch stays).
// - missing_worktree (warning): an agent's recorded worktree is neither on
//   disk nor known to git. Repair: the record is marked removed (one store
//   transaction); its branch, if any, stays. Not for an agent placed on a
//   node (its worktree is on its node's machine).
// Reads only (git and lock-free registry reads); the fixes re-check first.
#pragma once

#include <vector>

#include "health/check_context.h"
#include "health/findings.h"

namespace herd::health {

std::vector<Finding> CheckWorktrees(const CheckContext& context);

}  // namespace herd::health
