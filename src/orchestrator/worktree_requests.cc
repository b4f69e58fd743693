#include "orchestrator/worktree_requests.h"

namespace herd {
namespace {

using Type = ParameterType;

ParameterSpec TaskIdRow() {
  return {.name = "task_id",
          .type = Type::kString,
          .description = "the task id, e.g. TASK-20261127-034936-1a2b3c4d",
          .required = true,
          .cli = "task_id"};
}

ParameterSpec AgentIdRow() {
  return {.name = "agent_id",
          .type = Type::kString,
          .description = "the agent id",
          .required = true,
          .cli = "agent_id"};
}

ParameterSpec OptionalTaskIdRow(const char* description) {
  return {.name = "task_id", .type = Type::kString, .description = description, .cli = "task_id"};
}

}  // namespace

ParameterList WorktreeOptions() {
  return {
      {.name = "worktree",
       .type = Type::kBoolean,
       .description = "run the agent in its own git worktree on its own branch "
                      "(herd/<task>/<agent>), made from the project (or, for a child, from its "
                      "parent's worktree); false: not even when the task asks for it",
       .cli = "--worktree"},
      {.name = "base",
       .type = Type::kString,
       .description = "with worktree: the branch, tag or commit the worktree starts from "
                      "(default: what is checked out)",
       .cli = "--base"},
      {.name = "branch",
       .type = Type::kString,
       .description = "with worktree: the branch name (default herd/<task>/<agent>)",
       .cli = "--branch"},
      {.name = "copy",
       .type = Type::kStringList,
       .description = "with worktree: files or directories (relative to the repository) copied "
                      "in, besides the gitignored ones its .worktreeinclude lists",
       .cli = "--copy"},
      {.name = "setup",
       .type = Type::kString,
       .description = "with worktree: a shell command run in the new worktree before the agent "
                      "(default: git config herd.setup); its failure fails the deploy",
       .cli = "--setup"},
  };
}

void GetWorktreeOptions(const CheckedArguments& checked, agents::WorktreeRequest* request) {
  if (checked.Has("worktree")) {
    bool own = false;
    checked.Get("worktree", &own);
    request->own = own;
  }
  checked.Get("base", &request->base);
  checked.Get("branch", &request->branch);
  checked.Get("copy", &request->copy_paths);
  checked.Get("setup", &request->setup);
}

// ---- get_agent_diff ---------------------------------------------------------------

const std::vector<std::string>& DiffRequest::Formats() {
  static const std::vector<std::string> formats = {"patch", "stat", "name-only"};
  return formats;
}

const ParameterList& DiffRequest::Parameters() {
  static const ParameterList parameters = {
      TaskIdRow(),
      AgentIdRow(),
      {.name = "format",
       .type = Type::kString,
       .description = "patch: the full diff; stat: files and line counts; name-only: paths "
                      "(on the command line --stat or --name-only)",
       .default_value = DiffRequest().format,
       .values = DiffRequest::Formats()},
      {.name = "max_bytes",
       .type = Type::kInteger,
       .description = "cap on the returned diff",
       .default_value = kDefaultMaxBytes,
       .minimum = 1,
       .maximum = kLargestMaxBytes,
       .cli = "--max-bytes"},
  };
  return parameters;
}

Result<DiffRequest> DiffRequest::FromArguments(const json& arguments, ArgumentNames names) {
  HERD_ASSIGN_OR_RETURN(CheckedArguments checked, CheckArguments(Parameters(), arguments, names));
  DiffRequest request;
  checked.Get("task_id", &request.task_id);
  checked.Get("agent_id", &request.agent_id);
  checked.Get("format", &request.format);
  std::optional<size_t> max_bytes;
  checked.Get("max_bytes", &max_bytes);
  if (max_bytes) request.max_bytes = *max_bytes;
  return request;
}

// ---- merge_agent_work ---------------------------------------------------------------

const std::vector<std::string>& MergeRequest::Strategies() {
  static const std::vector<std::string> strategies = {"squash", "rebase", "ff-only"};
  return strategies;
}

const ParameterList& MergeRequest::Parameters() {
  static const ParameterList parameters = {
      TaskIdRow(),
      AgentIdRow(),
      {.name = "strategy",
       .type = Type::kString,
       .description = "squash: one new commit on the target; rebase: the agent's commits "
                      "replayed onto it; ff-only: only if the target has not moved (on the "
                      "command line --squash, --rebase or --ff-only)",
       .default_value = MergeRequest().strategy,
       .values = MergeRequest::Strategies()},
      {.name = "into",
       .type = Type::kString,
       .description = "the branch to merge into (default: the one the worktree started from)",
       .cli = "--into"},
      {.name = "message",
       .type = Type::kString,
       .description = "the squash commit's message",
       .cli = "--message"},
      {.name = "commit_pending",
       .type = Type::kBoolean,
       .description = "commit the agent's uncommitted files first, as its own commit (else a "
                      "merge with uncommitted work is refused, listing the files)",
       .cli = "--commit-pending"},
  };
  return parameters;
}

Result<MergeRequest> MergeRequest::FromArguments(const json& arguments, ArgumentNames names) {
  HERD_ASSIGN_OR_RETURN(CheckedArguments checked, CheckArguments(Parameters(), arguments, names));
  MergeRequest request;
  checked.Get("task_id", &request.task_id);
  checked.Get("agent_id", &request.agent_id);
  checked.Get("strategy", &request.strategy);
  checked.Get("into", &request.into);
  checked.Get("message", &request.message);
  checked.Get("commit_pending", &request.commit_pending);
  return request;
}

// ---- herd worktree ... -----------------------------------------------------------------

const ParameterList& WorktreeListRequest::Parameters() {
  static const ParameterList parameters = {
      OptionalTaskIdRow("only this task's worktrees (default: every task's)")};
  return parameters;
}

Result<WorktreeListRequest> WorktreeListRequest::FromArguments(const json& arguments,
                                                               ArgumentNames names) {
  HERD_ASSIGN_OR_RETURN(CheckedArguments checked, CheckArguments(Parameters(), arguments, names));
  WorktreeListRequest request;
  checked.Get("task_id", &request.task_id);
  return request;
}

const ParameterList& WorktreeRemoveRequest::Parameters() {
  static const ParameterList parameters = {
      TaskIdRow(),
      AgentIdRow(),
      {.name = "force",
       .type = Type::kBoolean,
       .description = "remove it even if uncommitted files or unmerged commits would be lost",
       .cli = "--force"},
  };
  return parameters;
}

Result<WorktreeRemoveRequest> WorktreeRemoveRequest::FromArguments(const json& arguments,
                                                                   ArgumentNames names) {
  HERD_ASSIGN_OR_RETURN(CheckedArguments checked, CheckArguments(Parameters(), arguments, names));
  WorktreeRemoveRequest request;
  checked.Get("task_id", &request.task_id);
  checked.Get("agent_id", &request.agent_id);
  checked.Get("force", &request.force);
  return request;
}

const ParameterList& WorktreePruneRequest::Parameters() {
  static const ParameterList parameters = {
      OptionalTaskIdRow("only this task's worktrees (default: every task's)"),
      {.name = "dry_run",
       .type = Type::kBoolean,
       .description = "list what would be removed and kept, remove nothing",
       .cli = "--dry-run"},
  };
  return parameters;
}

Result<WorktreePruneRequest> WorktreePruneRequest::FromArguments(const json& arguments,
                                                                 ArgumentNames names) {
  HERD_ASSIGN_OR_RETURN(CheckedArguments checked, CheckArguments(Parameters(), arguments, names));
  WorktreePruneRequest request;
  checked.Get("task_id", &request.task_id);
  checked.Get("dry_run", &request.dry_run);
  return request;
}

}  // namespace herd
