// Worktrees: each coding agent in its own git worktree, on its own branch;
// its work read as a diff, brought back by a merge, removed only when
// nothing would be lost.
//
// Layout: every worktree herd makes lives under one root (herd's state
// directory, <state>/worktrees), one folder per repository
// (<root>/<name>-<hash of its git directory>, holding a `repository` file
// naming it and the lock file that serialises herd's worktree changes in
// it), one folder per task and agent below that:
//   <root>/<repo-key>/<task_id>/<agent_id>
// It is created with `git worktree add --lock --reason "herd <task>/<agent>"`
// so `git worktree prune` never drops it, on a new branch herd/<task>/<agent>
// (or one the caller names) started at the base ref's commit.
//
// Safety (../shared/notes/worktrees.md):
// - herd removes only worktrees under its root that carry its lock reason,
//   deletes only branches it created, and only when nothing would be lost
//   (no uncommitted or untracked files; every commit of the branch in the
//   target, as an ancestor or because the target already has the same tree:
//   squash merges count as merged). Otherwise WhatWouldBeLost lists it and
//   removal needs RemoveMode::kForce.
// - Reading a diff never touches the agent's index: it is built in a
//   temporary copy (GIT_INDEX_FILE).
// - A merge first computes the result with `git merge-tree --write-tree`; on
//   a conflict it changes nothing and reports the files. It never touches a
//   dirty target checkout.
// - Creation and removal in one repository hold herd's lock for that
//   repository (store/file_lock.h), so parallel deploys never meet git's
//   own index and ref locks. That lock is not a registry lock: git runs
//   while it is held, which is its purpose.
//
// Everything here runs git (worktrees/git.h) and blocks until it is done.
// Thread- and process-safe through the per-repository lock.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd::worktrees {

// An agent's worktree as the registry records it.
struct WorktreeInfo {
  std::string repository = {};  // the main checkout's top-level directory
  std::string path = {};        // the worktree
  std::string branch = {};      // e.g. herd/<task>/<agent>
  std::string base_ref = {};    // as given, or the branch checked out in `repository`
  std::string base_sha = {};    // the commit the branch started at
  bool created_branch = false;  // herd made the branch (and may delete it)
};

// What a new worktree is made from.
struct CreateSpec {
  std::string directory = {};  // any directory inside the repository
  std::string root = {};       // herd's worktree root
  std::string task_id = {};
  std::string agent_id = {};
  std::string base_ref = {};  // "" = what `directory`'s repository has checked out
  std::string branch = {};    // "" = herd/<task_id>/<agent_id>
  // Relative paths (files or directories) to copy in besides those the
  // repository's .worktreeinclude lists (which are copied when gitignored).
  std::vector<std::string> copy_paths = {};
};

struct Created {
  WorktreeInfo info;
  std::vector<std::string> copied;    // relative paths copied in
  std::vector<std::string> warnings;  // submodules that did not initialise, ...
};

// The top-level directory of the repository holding `directory`;
// InvalidArgument saying what to do when it is not in one.
Result<std::string> RepositoryTopLevel(const std::string& directory);

// <root>/<repo-key>/<task_id>/<agent_id> for the repository of `directory`.
Result<std::string> PlannedPath(const std::string& directory, const std::string& root,
                                const std::string& task_id, const std::string& agent_id);

// Creates the locked worktree and its branch, copies the included files in
// and initialises submodules (a failure there is a warning). On failure
// nothing is left: the worktree and a branch it created are removed again.
Result<Created> CreateWorktree(const CreateSpec& spec);

// ---- reading the work --------------------------------------------------------

enum class DiffFormat { kPatch, kStat, kNameOnly };

struct Diff {
  std::string text;
  bool truncated = false;  // cut at max_bytes
};

// The worktree's changes against its base commit: committed, uncommitted
// and untracked (not ignored) files, built in a temporary index.
Result<Diff> DiffAgainstBase(const WorktreeInfo& worktree, DiffFormat format, size_t max_bytes);

struct Summary {
  bool present = false;  // the worktree exists on disk
  int files_changed = 0;
  long long lines_added = 0;
  long long lines_removed = 0;
  int commits_ahead = 0;  // commits on the branch since the base
  bool dirty = false;     // uncommitted or untracked files
  std::vector<std::string> uncommitted_files;
};

Result<Summary> Summarize(const WorktreeInfo& worktree);

// ---- bringing it back ----------------------------------------------------------

enum class MergeStrategy { kSquash, kRebase, kFfOnly };
const char* MergeStrategyName(MergeStrategy strategy);
// "squash" | "rebase" | "ff-only"; InvalidArgument listing them otherwise.
Result<MergeStrategy> ParseMergeStrategy(const std::string& name);

struct MergeOptions {
  MergeStrategy strategy = MergeStrategy::kSquash;
  std::string into = {};     // a branch; "" = the worktree's base_ref
  std::string message = {};  // the squash commit's; "" = one naming the agent
  // Commit uncommitted work in the agent's worktree first (else refused).
  bool commit_pending = false;
  std::string pending_message = {};  // that commit's message
};

struct MergeResult {
  bool merged = false;
  std::string commit;  // the target's new head
  std::string into;    // the branch merged into
  std::string strategy;
  std::vector<std::string> files;      // changed by the merge
  std::vector<std::string> conflicts;  // when refused for a conflict
  std::string pending_commit;          // the commit made of uncommitted work, if any
};

// Merges the worktree's branch into `options.into`. Refused (changing
// nothing) when the branch has uncommitted work and commit_pending is off
// (listing the files), when the target's checkout has uncommitted changes,
// and on a conflict (merged false, conflicts listed, with a Refused status
// returned by the caller's choice: here the result carries them). The
// caller checks that the agent is no longer active.
Result<MergeResult> Merge(const WorktreeInfo& worktree, const MergeOptions& options);

// ---- cleaning up --------------------------------------------------------------

struct LossReport {
  bool present = true;                         // the worktree exists on disk
  std::vector<std::string> uncommitted_files;  // modified, staged or untracked
  std::vector<std::string> unmerged_commits;   // "<sha> <subject>", not in the target
  std::string target;                          // what the commits were compared with

  bool nothing_lost() const { return uncommitted_files.empty() && unmerged_commits.empty(); }
  // "2 uncommitted files (a.txt, b.txt); 1 commit not in main (abc123 fix)".
  std::string Describe() const;
};

// What removing the worktree (and its branch, if herd created it) would
// lose, compared with `target` ("" = base_ref; with no base_ref either,
// the commits no other branch has).
Result<LossReport> WhatWouldBeLost(const WorktreeInfo& worktree, const std::string& target = "");

enum class RemoveMode { kSafe, kForce };

struct Removal {
  bool worktree_removed = false;
  bool branch_deleted = false;
  LossReport loss;  // what was (kForce) or would have been lost
};

// Removes the worktree and, if herd created it, its branch. Refused
// (Status::Refused with what would be lost) in kSafe mode unless nothing
// would be lost. Refused for any path outside `root` or without herd's
// lock reason. A worktree already gone from disk has its git entry pruned.
Result<Removal> RemoveWorktree(const WorktreeInfo& worktree, const std::string& root,
                               RemoveMode mode);

// ---- finding them ----------------------------------------------------------------

// A worktree git knows of that herd created (its lock reason), under `root`.
struct FoundWorktree {
  std::string repository;
  std::string path;
  std::string branch;  // "" when detached
  std::string lock_reason;
  bool missing = false;  // registered with git, gone from disk (prunable)
};

// Every herd worktree of every repository under `root` (from the
// `repository` files there), as git lists them.
std::vector<FoundWorktree> FindHerdWorktrees(const std::string& root);

// The lock reason herd gives a worktree.
std::string LockReason(const std::string& task_id, const std::string& agent_id);

}  // namespace herd::worktrees
