#include "registry/workspace.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "registry/ids.h"
#include "registry/pg_registry.h"
#include "store/file_names.h"
#include "store/file_system.h"
#include "util/clock.h"

namespace herd::registry {

bool IsDirectory(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool IsSymbolicLink(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode);
}

std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> names;
  DIR* directory = opendir(path.c_str());
  if (directory == nullptr) return names;
  while (dirent* entry = readdir(directory)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(directory);
  std::sort(names.begin(), names.end());
  return names;
}

std::string AbsolutePath(const std::string& path) {
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) return path;
  return absolute.lexically_normal().string();
}

std::string ResolvedPath(const std::string& path) {
  char* resolved = ::realpath(path.c_str(), nullptr);
  if (resolved == nullptr) return AbsolutePath(path);
  std::string result = resolved;
  std::free(resolved);
  return result;
}

Status MakeDirectories(const std::string& path) {
  if (IsDirectory(path)) return Status::Ok();
  std::string absolute = AbsolutePath(path);
  // Parents first; mkdir's mode is masked by the umask, which may only
  // take bits away from 0700.
  for (size_t slash = absolute.find('/', 1);; slash = absolute.find('/', slash + 1)) {
    std::string prefix = absolute.substr(0, slash);
    if (::mkdir(prefix.c_str(), store::kPrivateDirectoryMode) != 0 && errno != EEXIST) {
      return Status::FromErrno("cannot create directory " + prefix, errno);
    }
    if (slash == std::string::npos) break;
  }
  if (!IsDirectory(absolute)) {
    return Status::IOError("cannot create directory " + absolute +
                           ": something that is not a directory is in the way");
  }
  return Status::Ok();
}

Workspace::Workspace(const std::string& base) : base_(AbsolutePath(base)) {
  while (base_.size() > 1 && base_.back() == '/') base_.pop_back();
}

Workspace Workspace::Resolve(const std::string& explicit_base) {
  // A base the user named may be reached through links of the user's own:
  // resolved here, once, it holds no link that CheckLayout would refuse.
  if (!explicit_base.empty()) return Workspace(ResolvedPath(explicit_base));
  const char* from_environment = std::getenv("CLAUDE_ORCHESTRATOR_WORKSPACE");
  if (from_environment != nullptr && *from_environment != '\0') {
    return Workspace(ResolvedPath(from_environment));
  }
  // The project's own .agent-workspace is the project's content: a link
  // there is refused, not resolved.
  return Workspace(ResolvedPath(".") + "/" + kDefaultWorkspaceDirectory);
}

Workspace Workspace::ForProject(const std::string& client_cwd) {
  return Workspace(ResolvedPath(client_cwd) + "/" + kDefaultWorkspaceDirectory);
}

std::string Workspace::MetricsDirectory() const {
  return base_ + "/" + kMetricsDirectory;
}
std::string Workspace::IndexDirectory() const {
  return base_ + "/" + kIndexDirectory;
}
std::string Workspace::GlobalRegistryPath() const {
  return IndexDirectory() + "/" + kGlobalRegistryFile;
}
std::string Workspace::TaskDirectory(const std::string& task_id) const {
  return base_ + "/" + task_id;
}
std::string Workspace::TaskRegistryPath(const std::string& task_id) const {
  return TaskDirectory(task_id) + "/" + kTaskRegistryFile;
}

namespace {

std::string AgentFilePath(const Workspace& workspace, const std::string& task_id,
                          const std::string& agent_id, AgentFile file) {
  return workspace.TaskDirectory(task_id) + "/" + AgentFileName(agent_id, file);
}

}  // namespace

std::string Workspace::ProgressPath(const std::string& task_id, const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kProgressJournal);
}
std::string Workspace::FindingsPath(const std::string& task_id, const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kFindingsJournal);
}
std::string Workspace::StreamLogPath(const std::string& task_id,
                                     const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kStreamLog);
}
std::string Workspace::SupervisorLogPath(const std::string& task_id,
                                         const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kSupervisorLog);
}
std::string Workspace::PromptPath(const std::string& task_id, const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kPrompt);
}
std::string Workspace::LaunchPlanPath(const std::string& task_id,
                                      const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kLaunchPlan);
}
std::string Workspace::McpConfigPath(const std::string& task_id,
                                     const std::string& agent_id) const {
  return AgentFilePath(*this, task_id, agent_id, AgentFile::kMcpConfig);
}
std::string Workspace::MessagePath(const std::string& task_id, const std::string& agent_id,
                                   const std::string& message_id) const {
  return TaskDirectory(task_id) + "/" + AgentMessageFileName(agent_id, message_id);
}
std::string Workspace::AgentConfigDirectory(const std::string& task_id,
                                            const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/" + kAgentConfigsDirectory + "/" + agent_id;
}

std::vector<std::string> Workspace::TaskIds() const {
  std::vector<std::string> task_ids;
  for (const std::string& name : ListDirectory(base_)) {
    if (name.rfind("TASK-", 0) == 0 && ValidateTaskId(name).ok() &&
        IsDirectory(TaskDirectory(name)) && !IsSymbolicLink(TaskDirectory(name))) {
      task_ids.push_back(name);
    }
  }
  return task_ids;
}

std::vector<std::string> Workspace::LayoutDirectories(const std::string& task_id) const {
  std::vector<std::string> directories = {base_, IndexDirectory(), MetricsDirectory()};
  if (task_id.empty()) return directories;
  directories.push_back(TaskDirectory(task_id));
  for (const char* sub : kTaskSubdirectories)
    directories.push_back(TaskDirectory(task_id) + "/" + sub);
  directories.push_back(TaskDirectory(task_id) + "/" + kAgentConfigsDirectory);
  return directories;
}

Status Workspace::CheckLayout(const std::string& task_id) const {
  for (const std::string& directory : LayoutDirectories(task_id)) {
    struct stat info {};
    if (::lstat(directory.c_str(), &info) != 0) {
      if (errno == ENOENT) continue;
      return Status::FromErrno("cannot inspect " + directory, errno);
    }
    if (S_ISLNK(info.st_mode)) {
      char target[4096];
      ssize_t length = ::readlink(directory.c_str(), target, sizeof target - 1);
      std::string pointing =
          length > 0 ? " (pointing to " + std::string(target, static_cast<size_t>(length)) + ")"
                     : "";
      return Status::InvalidArgument(
          directory + " is a symbolic link" + pointing +
          ". herd never follows links inside a workspace: a repository can ship one to "
          "redirect herd's writes. Remove the link (rm " +
          directory + ") or use another workspace (--workspace or CLAUDE_ORCHESTRATOR_WORKSPACE)");
    }
    if (!S_ISDIR(info.st_mode)) {
      return Status::InvalidArgument(directory +
                                     " is not a directory, and herd keeps a directory there: "
                                     "move it away or use another workspace");
    }
  }
  return Status::Ok();
}

Status Workspace::CreateTaskDirectories(const std::string& task_id) const {
  HERD_RETURN_IF_ERROR(CheckLayout(task_id));
  HERD_RETURN_IF_ERROR(MakeDirectories(IndexDirectory()));
  for (const char* sub : kTaskSubdirectories) {
    HERD_RETURN_IF_ERROR(MakeDirectories(TaskDirectory(task_id) + "/" + sub));
  }
  return Status::Ok();
}

std::string KnownWorkspacesPath() {
  const char* state = std::getenv("XDG_STATE_HOME");
  std::string directory;
  if (state != nullptr && *state == '/') {
    directory = std::string(state) + "/herd";
  } else {
    const char* home = std::getenv("HOME");
    directory = std::string(home != nullptr && *home ? home : "/tmp") + "/.local/state/herd";
  }
  return directory + "/" + kKnownWorkspacesFile;
}

Status RememberWorkspace(const RegistryStores& stores, const std::string& base) {
  std::string path = KnownWorkspacesPath();
  HERD_RETURN_IF_ERROR(MakeDirectories(path.substr(0, path.rfind('/'))));
  return stores.workspaces.Update(path, [&](nlohmann::json& document) -> Result<store::Decision> {
    nlohmann::json& bases = document["workspaces"];
    if (!bases.is_object()) bases = nlohmann::json::object();
    if (bases.contains(base)) return store::Decision::kNoChange;
    bases[base] = {{"first_used", NowIso8601()}};
    return store::Decision::kCommit;
  });
}

std::vector<std::string> KnownWorkspaces(const RegistryStores& stores, const std::string& first) {
  std::vector<std::string> bases{first};
  Result<store::Snapshot> known = stores.workspaces.Read(KnownWorkspacesPath());
  if (!known.ok()) return bases;
  auto found = known->document.find("workspaces");
  if (found == known->document.end() || !found->is_object()) return bases;
  for (const auto& [base, info] : found->items()) {
    if (base != first && IsDirectory(base)) bases.push_back(base);
  }
  return bases;
}

Result<Workspace> LocateTask(const RegistryStores& stores, const Workspace& preferred,
                             const std::string& task_id) {
  HERD_RETURN_IF_ERROR(ValidateTaskId(task_id));
  if (stores.postgres) {
    // The task's row says where its local files are.
    HERD_ASSIGN_OR_RETURN(SharedTask task, stores.postgres->ReadTask(task_id));
    Workspace workspace(task->task.workspace_base.empty() ? preferred.base()
                                                          : task->task.workspace_base);
    HERD_RETURN_IF_ERROR(workspace.CheckLayout(task_id));
    return workspace;
  }
  for (const std::string& base : KnownWorkspaces(stores, preferred.base())) {
    Workspace workspace(base);
    std::string registry = workspace.TaskRegistryPath(task_id);
    if (access(registry.c_str(), F_OK) == 0 ||
        access(store::BackupFileName(registry).c_str(), F_OK) == 0 || IsSymbolicLink(registry) ||
        IsSymbolicLink(workspace.TaskDirectory(task_id))) {
      HERD_RETURN_IF_ERROR(workspace.CheckLayout(task_id));
      return workspace;
    }
  }
  return Status::NotFound("task " + task_id + " was not found in " + preferred.base() +
                          " or any other workspace herd has used; run `herd task list` to see "
                          "the tasks herd knows");
}

}  // namespace herd::registry
