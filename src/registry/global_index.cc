#include "registry/global_index.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <optional>
#include <utility>

#include "registry/file_names.h"
#include "registry/task_registry.h"
#include "store/file_lock.h"
#include "util/clock.h"

namespace herd::registry {
namespace {

using nlohmann::json;

json& ObjectAt(json& document, const char* key) {
  json& value = document[key];
  if (!value.is_object()) value = json::object();
  return value;
}

void RecomputeTotals(json& index) {
  int active = 0;
  for (const auto& [id, agent] : ObjectAt(index, "agents").items()) {
    if (agent.is_object() && IsActiveStatus(agent.value("status", ""))) ++active;
  }
  index["total_tasks"] = ObjectAt(index, "tasks").size();
  index["total_agents_spawned"] = ObjectAt(index, "agents").size();
  index["active_agents"] = active;
  index["updated_at"] = NowIso8601();
}

json TaskSummary(const json& task) {
  return {{"description", task.value("task_description", "")},
          {"created_at", task.value("created_at", "")},
          {"workspace", task.value("workspace", "")},
          {"client_cwd", task.value("client_cwd", json(nullptr))},
          {"status", task.value("status", "")},
          {"priority", task.value("priority", "P2")},
          {"total_spawned", task.value("total_spawned", 0)},
          {"active_count", task.value("active_count", 0)},
          {"registry_sequence", task.value(store::kSequenceKey, 0ULL)}};
}

json AgentSummary(const std::string& task_id, const json& agent) {
  return {{"task_id", task_id},
          {"type", agent.value("type", "")},
          {"parent", agent.value("parent", kOrchestratorParent)},
          {"depth", agent.value("depth", 1)},
          {"status", agent.value("status", "")},
          {"started_at", agent.value("started_at", "")},
          {"last_update", agent.value("last_update", "")}};
}

// Writes the summaries into `index`; returns whether anything changed. A
// summary older than the one indexed (a slower writer's) is ignored, so the
// index never goes backwards.
bool MergeTask(json& index, const json& task) {
  std::string task_id = task.value("task_id", "");
  json before_task = ObjectAt(index, "tasks").value(task_id, json(nullptr));
  json summary = TaskSummary(task);
  if (before_task.is_object() &&
      before_task.value("registry_sequence", 0ULL) > summary.value("registry_sequence", 0ULL)) {
    return false;
  }
  bool changed = before_task != summary;
  if (changed) index["tasks"][task_id] = summary;
  json& agents = ObjectAt(index, "agents");
  for (const json& agent : task["agents"]) {
    std::string agent_id = agent.value("id", "");
    json agent_summary = AgentSummary(task_id, agent);
    if (agents.value(agent_id, json(nullptr)) != agent_summary) {
      agents[agent_id] = agent_summary;
      changed = true;
    }
  }
  return changed;
}

// A directory as the file system knows it, whatever path names it.
using FileIdentity = std::pair<dev_t, ino_t>;

std::optional<FileIdentity> IdentityOfPath(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileIdentity{info.st_dev, info.st_ino};
}

}  // namespace

Status ValidateGlobalDocument(const json& document) {
  if (!document.is_object()) return Status::Corruption("the global registry is not a JSON object");
  for (const char* key : {"tasks", "agents"}) {
    if (!document.contains(key) || !document[key].is_object()) {
      return Status::Corruption(std::string("the global registry has no \"") + key + "\" map");
    }
  }
  return Status::Ok();
}

int GlobalRunningCapFromEnvironment() {
  const char* text = std::getenv("HERD_MAX_RUNNING_AGENTS");
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == nullptr || *end != '\0' || value < 0) return 0;
  return static_cast<int>(value);
}

Status UpdateTaskAndIndex(const RegistryStores& stores, const Workspace& workspace,
                          const std::string& task_id, const store::Mutation& mutation,
                          json* committed) {
  json captured;
  store::TransactionStats stats;
  Status status = stores.tasks.Update(
      workspace.TaskRegistryPath(task_id),
      [&](json& task) -> Result<store::Decision> {
        Result<store::Decision> decision = mutation(task);
        if (decision.ok()) captured = task;
        return decision;
      },
      &stats);
  if (!stats.committed) return status;
  captured[store::kSequenceKey] = stats.sequence;
  Status indexed = UpsertTask(stores, workspace, captured);
  if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  if (committed != nullptr) *committed = std::move(captured);
  return status;
}

Status UpsertTask(const RegistryStores& stores, const Workspace& workspace, const json& task) {
  return stores.global.Update(workspace.GlobalRegistryPath(),
                              [&](json& index) -> Result<store::Decision> {
                                ObjectAt(index, "tasks");
                                ObjectAt(index, "agents");
                                if (!MergeTask(index, task) && index.contains("total_tasks"))
                                  return store::Decision::kNoChange;
                                RecomputeTotals(index);
                                return store::Decision::kCommit;
                              });
}

std::string RunningAgentsLockPath() {
  std::string known = KnownWorkspacesPath();
  return known.substr(0, known.rfind('/')) + "/" + kRunningAgentsLockFile;
}

Status ReserveGlobalSlot(const RegistryStores& stores, const Workspace& workspace, const json& task,
                         int cap) {
  auto reserve = [&](int elsewhere) {
    return stores.global.Update(
        workspace.GlobalRegistryPath(), [&](json& index) -> Result<store::Decision> {
          ObjectAt(index, "tasks");
          ObjectAt(index, "agents");
          RecomputeTotals(index);
          int here = index["active_agents"].get<int>();
          if (cap > 0 && here + elsewhere >= cap) {
            return Status::Refused(
                "the cap of " + std::to_string(cap) + " running agents on this machine " +
                "(HERD_MAX_RUNNING_AGENTS) is reached: " + std::to_string(here) +
                " in this workspace, " + std::to_string(elsewhere) + " in other workspaces; wait " +
                "for an agent to finish, kill one, or raise HERD_MAX_RUNNING_AGENTS (`herd "
                "doctor " +
                "--repair` settles agents whose processes are gone)");
          }
          MergeTask(index, task);
          RecomputeTotals(index);
          return store::Decision::kCommit;
        });
  };
  if (cap <= 0) return reserve(0);

  // Every capped reservation on this machine (for this user) counts and
  // reserves under this one lock, so two deploys cannot both take the last
  // slot, whichever workspaces they are in. Taken before the index's lock
  // and never while a task registry's lock is held: no cycle.
  std::string lock_path = RunningAgentsLockPath();
  HERD_RETURN_IF_ERROR(MakeDirectories(lock_path.substr(0, lock_path.rfind('/'))));
  Result<store::FileLock> lock =
      store::FileLock::Acquire(lock_path, store::LockTimeoutFromEnvironment());
  if (!lock.ok()) return lock.status();
  int elsewhere = 0;
  std::optional<FileIdentity> here = IdentityOfPath(workspace.base());
  for (const std::string& base : KnownWorkspaces(stores, workspace.base())) {
    // The same directory under another spelling (a symlink) is not elsewhere.
    if (base == workspace.base() || (here && IdentityOfPath(base) == here)) continue;
    // Lock-free: every capped reservation waits for our lock, and what else
    // adds agents to an index (upserts, rebuilds) adds ones already admitted.
    Result<store::Snapshot> index = stores.global.Read(Workspace(base).GlobalRegistryPath());
    if (!index.ok()) {
      if (!index.status().Is(Status::Code::kNotFound)) {
        spdlog::warn("running agents of {} not counted: {}", base, index.status().ToString());
      }
      continue;
    }
    auto active = index->document.find("active_agents");
    if (active != index->document.end() && active->is_number_integer()) {
      elsewhere += active->get<int>();
    }
  }
  return reserve(elsewhere);
}

Status ForgetAgent(const RegistryStores& stores, const Workspace& workspace,
                   const std::string& agent_id) {
  return stores.global.Update(workspace.GlobalRegistryPath(),
                              [&](json& index) -> Result<store::Decision> {
                                if (ObjectAt(index, "agents").erase(agent_id) == 0)
                                  return store::Decision::kNoChange;
                                ObjectAt(index, "tasks");
                                RecomputeTotals(index);
                                return store::Decision::kCommit;
                              });
}

Status RebuildGlobalIndex(const RegistryStores& stores, const Workspace& workspace) {
  // Read every task registry first (lock-free), then replace the index in
  // one transaction: never two registry locks at once.
  json rebuilt = {{"tasks", json::object()}, {"agents", json::object()}};
  if (!IsDirectory(workspace.base())) {
    return Status::NotFound("workspace " + workspace.base() + " does not exist: check the path");
  }
  for (const std::string& task_id : workspace.TaskIds()) {
    Result<store::Snapshot> task = stores.tasks.Read(workspace.TaskRegistryPath(task_id));
    if (task.ok()) MergeTask(rebuilt, task->document);
  }
  return stores.global.Update(workspace.GlobalRegistryPath(),
                              [&](json& index) -> Result<store::Decision> {
                                index["tasks"] = rebuilt["tasks"];
                                index["agents"] = rebuilt["agents"];
                                RecomputeTotals(index);
                                return store::Decision::kCommit;
                              });
}

}  // namespace herd::registry
