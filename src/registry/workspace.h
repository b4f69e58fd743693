// Workspace: where herd's files live, and how to find a task from anywhere.
//
// A workspace base is a directory (default ./.agent-workspace, or
// $CLAUDE_ORCHESTRATOR_WORKSPACE, or <client_cwd>/.agent-workspace for a task
// created for another project) laid out as the reference orchestrator does;
// registry/file_names.h names every file in it:
//
//   registry/GLOBAL_REGISTRY.json        index of every task and agent
//   metrics/<pid>.jsonl, history.json    lock figures of each herd process
//   <TASK_ID>/AGENT_REGISTRY.json        the task's registry
//   <TASK_ID>/progress/, findings/       each agent's journals
//   <TASK_ID>/logs/, prompts/            each agent's output, prompt and launch files
//
// Every base herd has used is recorded in a small registry of its own
// ($XDG_STATE_HOME/herd/workspaces.json, default ~/.local/state/herd), so a
// task created for another project directory stays findable from any
// directory. Paths returned here are absolute. Ids passed in must already
// be validated (registry/ids.h).
//
// Symbolic links: a project can ship `.agent-workspace/` in git, links
// included, so herd never follows a link it did not create anywhere at or
// below a base. A base the user named (--workspace, the environment) is
// resolved once, so it may be reached through links of the user's own;
// below it, CheckLayout refuses a link or a non-directory wherever herd
// keeps a directory, and every file is opened with O_NOFOLLOW (store/,
// util/text_file.h). The checks see the workspace as a repository left it;
// they do not defend against another process of the same user swapping
// directories while herd runs (that user can write the files anyway).
//
// Permissions: prompts, registries and logs carry secrets. Every directory
// herd creates is 0700 and every file 0600 (store::kPrivate*Mode), whatever
// the umask; `herd doctor --repair` tightens workspaces made before.
#pragma once

#include <string>
#include <vector>

#include "registry/file_names.h"
#include "registry/registry_stores.h"
#include "util/status.h"

namespace herd::registry {

class Workspace {
 public:
  // `base` is made absolute; it need not exist yet.
  explicit Workspace(const std::string& base);

  // --workspace if given, else $CLAUDE_ORCHESTRATOR_WORKSPACE, else
  // ./.agent-workspace.
  static Workspace Resolve(const std::string& explicit_base);
  // The base used for tasks created with `client_cwd`.
  static Workspace ForProject(const std::string& client_cwd);

  const std::string& base() const { return base_; }
  // registry/, which holds the global index.
  std::string IndexDirectory() const;
  std::string GlobalRegistryPath() const;
  // Per-process lock figures (registry/metrics.h) and their folded history.
  std::string MetricsDirectory() const;
  std::string TaskDirectory(const std::string& task_id) const;
  std::string TaskRegistryPath(const std::string& task_id) const;
  std::string ProgressPath(const std::string& task_id, const std::string& agent_id) const;
  std::string FindingsPath(const std::string& task_id, const std::string& agent_id) const;
  std::string StreamLogPath(const std::string& task_id, const std::string& agent_id) const;
  std::string SupervisorLogPath(const std::string& task_id, const std::string& agent_id) const;
  std::string PromptPath(const std::string& task_id, const std::string& agent_id) const;
  std::string LaunchPlanPath(const std::string& task_id, const std::string& agent_id) const;
  std::string McpConfigPath(const std::string& task_id, const std::string& agent_id) const;
  std::string MessagePath(const std::string& task_id, const std::string& agent_id,
                          const std::string& message_id) const;
  // agents/<agent>/: the agent's own configuration, when it is isolated.
  std::string AgentConfigDirectory(const std::string& task_id, const std::string& agent_id) const;

  // Creates the base, registry/ and the task's subdirectories (0700), after
  // CheckLayout.
  Status CreateTaskDirectories(const std::string& task_id) const;

  // Refuses (InvalidArgument, naming the path, what it is and what to do) a
  // symbolic link or a non-directory where herd keeps a directory: the base,
  // registry/, metrics/ and, for `task_id`, the task directory and its
  // subdirectories. Missing directories pass: herd creates them.
  Status CheckLayout(const std::string& task_id = "") const;

  // The directories CheckLayout looks at, outermost first.
  std::vector<std::string> LayoutDirectories(const std::string& task_id) const;

  // Every task directory under the base (named TASK-..., a valid id, a real
  // directory and not a link), sorted.
  std::vector<std::string> TaskIds() const;

 private:
  std::string base_;
};

// The file recording every workspace base herd has used.
std::string KnownWorkspacesPath();

// Records `base` in the known-workspaces registry (one store transaction;
// no write when it is already there).
Status RememberWorkspace(const RegistryStores& stores, const std::string& base);

// Every recorded base that still exists, `first` first (deduplicated).
std::vector<std::string> KnownWorkspaces(const RegistryStores& stores, const std::string& first);

// Finds the base holding `task_id`: `preferred` first, then every known
// base; with the PostgreSQL registry (registries.h), the base its row
// records (NotFound if it has none).
Result<Workspace> LocateTask(const RegistryStores& stores, const Workspace& preferred,
                             const std::string& task_id);

// True if `path` is a directory (following symlinks).
bool IsDirectory(const std::string& path);

// True if `path` itself is a symbolic link.
bool IsSymbolicLink(const std::string& path);

// The names in directory `path`, without "." and "..", sorted; none if it
// cannot be read.
std::vector<std::string> ListDirectory(const std::string& path);

// Creates `path` and its missing parents (mkdir -p), each new one 0700.
Status MakeDirectories(const std::string& path);

// Absolute, normalised form of `path` relative to the current directory.
std::string AbsolutePath(const std::string& path);

// `path` with every symbolic link resolved (realpath) if it exists, else
// AbsolutePath(path).
std::string ResolvedPath(const std::string& path);

}  // namespace herd::registry
