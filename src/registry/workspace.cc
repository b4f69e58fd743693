#include "registry/workspace.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "registry/ids.h"
#include "util/clock.h"

namespace herd::registry {

bool IsDirectory(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
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

Status MakeDirectories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error && !IsDirectory(path)) {
    return Status::IOError("cannot create directory " + path + ": " + error.message());
  }
  return Status::Ok();
}

Workspace::Workspace(const std::string& base) : base_(AbsolutePath(base)) {
  while (base_.size() > 1 && base_.back() == '/') base_.pop_back();
}

Workspace Workspace::Resolve(const std::string& explicit_base) {
  if (!explicit_base.empty()) return Workspace(explicit_base);
  const char* from_environment = std::getenv("CLAUDE_ORCHESTRATOR_WORKSPACE");
  if (from_environment != nullptr && *from_environment != '\0') return Workspace(from_environment);
  return Workspace(".agent-workspace");
}

Workspace Workspace::ForProject(const std::string& client_cwd) {
  return Workspace(AbsolutePath(client_cwd) + "/.agent-workspace");
}

std::string Workspace::MetricsDirectory() const { return base_ + "/metrics"; }

std::string Workspace::GlobalRegistryPath() const {
  return base_ + "/registry/GLOBAL_REGISTRY.json";
}
std::string Workspace::TaskDirectory(const std::string& task_id) const {
  return base_ + "/" + task_id;
}
std::string Workspace::TaskRegistryPath(const std::string& task_id) const {
  return TaskDirectory(task_id) + "/AGENT_REGISTRY.json";
}
std::string Workspace::ProgressPath(const std::string& task_id, const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/progress/" + agent_id + "_progress.jsonl";
}
std::string Workspace::FindingsPath(const std::string& task_id, const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/findings/" + agent_id + "_findings.jsonl";
}
std::string Workspace::StreamLogPath(const std::string& task_id,
                                     const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/logs/" + agent_id + "_stream.jsonl";
}
std::string Workspace::SupervisorLogPath(const std::string& task_id,
                                         const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/logs/" + agent_id + "_supervisor.log";
}
std::string Workspace::PromptPath(const std::string& task_id, const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/prompts/" + agent_id + ".txt";
}
std::string Workspace::LaunchPlanPath(const std::string& task_id,
                                      const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/prompts/" + agent_id + "_launch.json";
}
std::string Workspace::McpConfigPath(const std::string& task_id,
                                     const std::string& agent_id) const {
  return TaskDirectory(task_id) + "/prompts/" + agent_id + "_mcp.json";
}

std::vector<std::string> Workspace::TaskIds() const {
  std::vector<std::string> task_ids;
  for (const std::string& name : ListDirectory(base_)) {
    if (name.rfind("TASK-", 0) == 0 && ValidateTaskId(name).ok() &&
        IsDirectory(TaskDirectory(name))) {
      task_ids.push_back(name);
    }
  }
  return task_ids;
}

Status Workspace::CreateTaskDirectories(const std::string& task_id) const {
  HERD_RETURN_IF_ERROR(MakeDirectories(base_ + "/registry"));
  for (const char* sub : {"progress", "findings", "logs", "prompts"}) {
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
  return directory + "/workspaces.json";
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
  for (const std::string& base : KnownWorkspaces(stores, preferred.base())) {
    Workspace workspace(base);
    std::string registry = workspace.TaskRegistryPath(task_id);
    if (access(registry.c_str(), F_OK) == 0 || access((registry + ".bak").c_str(), F_OK) == 0) {
      return workspace;
    }
  }
  return Status::NotFound("task " + task_id + " was not found in " + preferred.base() +
                          " or any other workspace herd has used; run `herd task list` to see "
                          "the tasks herd knows");
}

}  // namespace herd::registry
