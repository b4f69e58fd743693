#include "registry/global_index.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "registry/file_names.h"
#include "registry/task_registry.h"
#include "store/file_lock.h"
#include "util/clock.h"
#include "util/json_fields.h"

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

json TaskSummary(const TaskSnapshot& snapshot) {
  const TaskRecord& task = snapshot.task;
  return {{"description", task.description},
          {"created_at", task.created_at},
          {"workspace", task.workspace},
          {"client_cwd", task.client_cwd.empty() ? json(nullptr) : json(task.client_cwd)},
          {"status", task.status},
          {"priority", task.priority},
          {"total_spawned", task.total_spawned},
          {"active_count", task.active_count},
          {"registry_sequence", snapshot.sequence}};
}

json AgentSummary(const std::string& task_id, const AgentRecord& agent) {
  return {{"task_id", task_id},
          {"type", agent.type},
          {"parent", agent.parent},
          {"depth", agent.depth},
          {"status", agent.status},
          {"started_at", agent.started_at},
          {"last_update", agent.last_update},
          {"port", agent.port ? json(*agent.port) : json(nullptr)}};
}

// Writes the summaries into `index`; returns whether anything changed. A
// summary older than the one indexed (a slower writer's) is ignored, so the
// index never goes backwards.
bool MergeTask(json& index, const TaskSnapshot& snapshot) {
  const std::string& task_id = snapshot.task.task_id;
  json before_task = ObjectAt(index, "tasks").value(task_id, json(nullptr));
  json summary = TaskSummary(snapshot);
  if (before_task.is_object() &&
      before_task.value("registry_sequence", 0ULL) > summary.value("registry_sequence", 0ULL)) {
    return false;
  }
  bool changed = before_task != summary;
  if (changed) index["tasks"][task_id] = summary;
  json& agents = ObjectAt(index, "agents");
  std::set<std::string> listed;
  for (const AgentRecord& agent : snapshot.task.agents) {
    const std::string& agent_id = agent.id;
    listed.insert(agent_id);
    json agent_summary = AgentSummary(task_id, agent);
    if (agents.value(agent_id, json(nullptr)) != agent_summary) {
      agents[agent_id] = agent_summary;
      changed = true;
    }
  }
  // An agent the task no longer lists (an admission released after a failed
  // start or a refusal by the cap) leaves the index with this version, so
  // an older version merged later cannot bring it back as running.
  for (auto it = agents.begin(); it != agents.end();) {
    if (it->is_object() && StringOr(*it, "task_id") == task_id && !listed.count(it.key())) {
      it = agents.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  return changed;
}

const json& ObjectOr(const json& document, const char* key) {
  static const json kEmpty = json::object();
  auto found = document.find(key);
  return found != document.end() && found->is_object() ? *found : kEmpty;
}

// A directory as the file system knows it, whatever path names it.
using FileIdentity = std::pair<dev_t, ino_t>;

std::optional<FileIdentity> IdentityOfPath(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return std::nullopt;
  return FileIdentity{info.st_dev, info.st_ino};
}

// The index to compare with the task registries: an empty one if it was
// never written, none if it cannot be read (the file checks report it).
std::optional<json> ReadIndexToCompare(const RegistryStores& stores, const Workspace& workspace) {
  Result<store::Snapshot> read = stores.global.Read(workspace.GlobalRegistryPath());
  if (read.ok()) return std::move(read->document);
  if (read.status().Is(Status::Code::kNotFound)) {
    return json{{"tasks", json::object()}, {"agents", json::object()}};
  }
  return std::nullopt;
}

// The task registries that could be read, and the ids of those that exist
// but could not.
struct TaskRegistries {
  std::map<std::string, TaskRecord> tasks;
  std::set<std::string> unreadable;
};

TaskRegistries ReadTaskRegistries(const RegistryStores& stores, const Workspace& workspace,
                                  const std::vector<std::string>& task_ids) {
  TaskRegistries registries;
  for (const std::string& task_id : task_ids) {
    Result<SharedTask> task = ReadTaskRecord(stores.tasks, workspace.TaskRegistryPath(task_id));
    if (task.ok()) {
      registries.tasks[task_id] = (*task)->task;
    } else if (!task.status().Is(Status::Code::kNotFound)) {
      // The file checks report it; the index keeps its entry.
      registries.unreadable.insert(task_id);
    }
  }
  return registries;
}

// The task's own index entry against its registry.
void CompareTaskEntry(const std::string& task_id, const TaskRecord& task, const json& indexed_tasks,
                      std::vector<std::string>* mismatches) {
  auto entry = indexed_tasks.find(task_id);
  if (entry == indexed_tasks.end() || !entry->is_object()) {
    mismatches->push_back("task " + task_id + " is missing from the index");
    return;
  }
  for (const auto& [key, in_task] :
       {std::pair<const char*, json>{"status", task.status},
        std::pair<const char*, json>{"total_spawned", task.total_spawned},
        std::pair<const char*, json>{"active_count", task.active_count}}) {
    json in_index = entry->value(key, json(nullptr));
    if (in_index != in_task) {
      mismatches->push_back("task " + task_id + ": the index has " + key + " " + in_index.dump() +
                            ", the task registry " + in_task.dump());
    }
  }
}

// The index entries of the agents the task's registry lists.
void CompareAgentEntries(const std::string& task_id, const TaskRecord& task,
                         const json& indexed_agents, std::vector<std::string>* mismatches) {
  for (const AgentRecord& agent : task.agents) {
    const std::string& agent_id = agent.id;
    auto indexed = indexed_agents.find(agent_id);
    if (indexed == indexed_agents.end() || !indexed->is_object()) {
      mismatches->push_back("agent " + agent_id + " of task " + task_id +
                            " is missing from the index");
      continue;
    }
    if (StringOr(*indexed, "task_id") != task_id) {
      mismatches->push_back("agent " + agent_id + ": the index puts it in task " +
                            StringOr(*indexed, "task_id") + ", the registry of " + task_id +
                            " lists it");
    }
    if (StringOr(*indexed, "status") != agent.status) {
      mismatches->push_back("agent " + agent_id + ": the index has status \"" +
                            StringOr(*indexed, "status") + "\", task " + task_id + " has \"" +
                            agent.status + "\"");
    }
  }
}

// Index entries, in scope, of tasks without a registry and of agents their
// task's registry does not list. Entries of unreadable tasks are left alone.
void FindEntriesWithoutRegistry(const TaskRegistries& registries, const json& indexed_tasks,
                                const json& indexed_agents, const std::string& scope_task_id,
                                std::vector<std::string>* mismatches) {
  auto in_scope = [&](const std::string& task_id) {
    return scope_task_id.empty() || task_id == scope_task_id;
  };
  const std::map<std::string, TaskRecord>& tasks = registries.tasks;
  const std::set<std::string>& unreadable = registries.unreadable;
  for (const auto& [task_id, entry] : indexed_tasks.items()) {
    if (in_scope(task_id) && !tasks.count(task_id) && !unreadable.count(task_id)) {
      mismatches->push_back("the index lists task " + task_id +
                            ", which has no registry in this workspace");
    }
  }
  for (const auto& [agent_id, entry] : indexed_agents.items()) {
    std::string task_id = entry.is_object() ? StringOr(entry, "task_id") : "";
    if (!in_scope(task_id) || unreadable.count(task_id)) continue;
    auto task = tasks.find(task_id);
    if (task == tasks.end()) {
      mismatches->push_back("the index lists agent " + agent_id + " of task " +
                            (task_id.empty() ? "(none)" : task_id) + ", which does not exist");
    } else if (task->second.FindAgent(agent_id) == nullptr) {
      mismatches->push_back("the index lists agent " + agent_id + " under task " + task_id +
                            ", whose registry does not");
    }
  }
}

// The index's stored totals against its own entries.
void CompareTotals(const json& index, std::vector<std::string>* mismatches) {
  const json& indexed_tasks = ObjectOr(index, "tasks");
  const json& indexed_agents = ObjectOr(index, "agents");
  size_t active = 0;
  for (const auto& [agent_id, entry] : indexed_agents.items()) {
    if (entry.is_object() && IsActiveStatus(StringOr(entry, "status"))) ++active;
  }
  std::pair<const char*, size_t> totals[] = {{"total_tasks", indexed_tasks.size()},
                                             {"total_agents_spawned", indexed_agents.size()},
                                             {"active_agents", active}};
  for (const auto& [key, expected] : totals) {
    json stored = index.value(key, json(nullptr));
    // An index that was never written has no totals yet.
    if (stored.is_null() && indexed_tasks.empty()) continue;
    if (stored != json(expected)) {
      mismatches->push_back(std::string("the index's ") + key + " is " + stored.dump() +
                            " but its own entries give " + std::to_string(expected));
    }
  }
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
                          const std::string& task_id, const TaskMutation& mutation,
                          TaskSnapshot* committed) {
  TaskSnapshot captured;
  store::TransactionStats stats;
  Status status = UpdateTaskRecord(stores.tasks, workspace.TaskRegistryPath(task_id), mutation,
                                   &captured, &stats);
  if (!stats.committed) return status;
  Status indexed = UpsertTask(stores, workspace, captured);
  if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  if (committed != nullptr) *committed = std::move(captured);
  return status;
}

Status UpsertTask(const RegistryStores& stores, const Workspace& workspace,
                  const TaskSnapshot& task) {
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

Status CheckRunningCap(int running, int cap, const std::string& scope, const std::string& counted) {
  if (cap <= 0 || running < cap) return Status::Ok();
  return Status::Refused("the cap of " + std::to_string(cap) + " running agents " + scope +
                         " (HERD_MAX_RUNNING_AGENTS) is reached: " + counted +
                         "; wait for an agent to finish, kill one, or raise "
                         "HERD_MAX_RUNNING_AGENTS (`herd doctor --repair` settles agents whose "
                         "processes are gone)");
}

Result<MachineReservation> MachineReservation::Begin(const RegistryStores& stores,
                                                     const Workspace& workspace) {
  std::string lock_path = RunningAgentsLockPath();
  HERD_RETURN_IF_ERROR(MakeDirectories(lock_path.substr(0, lock_path.rfind('/'))));
  HERD_ASSIGN_OR_RETURN(store::FileLock lock,
                        store::FileLock::Acquire(lock_path, store::LockTimeoutFromEnvironment()));
  MachineReservation reservation(stores, workspace, std::move(lock));
  std::optional<FileIdentity> here = IdentityOfPath(workspace.base());
  for (const std::string& base : KnownWorkspaces(stores, workspace.base())) {
    // The same directory under another spelling (a symlink) is not elsewhere.
    if (base == workspace.base() || (here && IdentityOfPath(base) == here)) continue;
    // Lock-free: every reservation waits for our lock, and what else adds
    // agents to an index (upserts, rebuilds) adds ones already admitted.
    Result<store::Snapshot> index = stores.global.Read(Workspace(base).GlobalRegistryPath());
    if (!index.ok()) {
      if (!index.status().Is(Status::Code::kNotFound)) {
        spdlog::warn("running agents of {} not counted: {}", base, index.status().ToString());
      }
      continue;
    }
    auto active = index->document.find("active_agents");
    if (active != index->document.end() && active->is_number_integer()) {
      reservation.active_elsewhere_ += active->get<int>();
    }
    for (const auto& [agent_id, agent] : ObjectOr(index->document, "agents").items()) {
      if (!agent.is_object() || !IsActiveStatus(StringOr(agent, "status"))) continue;
      auto port = agent.find("port");
      if (port != agent.end() && port->is_number_integer()) {
        reservation.ports_elsewhere_[agent_id] = port->get<int>();
      }
    }
  }
  return reservation;
}

std::set<int> MachineReservation::PortsHeld(const std::string& agent_id) const {
  std::set<int> held;
  for (const auto& [other, port] : ports_elsewhere_) {
    if (other != agent_id) held.insert(port);
  }
  // This workspace's index: lock-free too, complete for the same reason.
  Result<store::Snapshot> index = stores_->global.Read(workspace_->GlobalRegistryPath());
  if (!index.ok()) return held;
  for (const auto& [other, agent] : ObjectOr(index->document, "agents").items()) {
    if (other == agent_id || !agent.is_object() || !IsActiveStatus(StringOr(agent, "status"))) {
      continue;
    }
    auto port = agent.find("port");
    if (port != agent.end() && port->is_number_integer()) held.insert(port->get<int>());
  }
  return held;
}

Status MachineReservation::Commit(const TaskSnapshot& task, const std::string& agent_id,
                                  int cap) const {
  int elsewhere = active_elsewhere_;
  return stores_->global.Update(
      workspace_->GlobalRegistryPath(), [&](json& index) -> Result<store::Decision> {
        // The others: another change to the task may have indexed this
        // agent already (the index follows whole tasks).
        int here = 0;
        for (const auto& [other, agent] : ObjectAt(index, "agents").items()) {
          here +=
              other != agent_id && agent.is_object() && IsActiveStatus(StringOr(agent, "status"));
        }
        HERD_RETURN_IF_ERROR(CheckRunningCap(here + elsewhere, cap, "on this machine",
                                             std::to_string(here) + " in this workspace, " +
                                                 std::to_string(elsewhere) +
                                                 " in other workspaces"));
        ObjectAt(index, "tasks");
        MergeTask(index, task);
        RecomputeTotals(index);
        return store::Decision::kCommit;
      });
}

Status ReserveGlobalSlot(const RegistryStores& stores, const Workspace& workspace,
                         const TaskSnapshot& task, const std::string& agent_id, int cap) {
  HERD_ASSIGN_OR_RETURN(MachineReservation reservation,
                        MachineReservation::Begin(stores, workspace));
  return reservation.Commit(task, agent_id, cap);
}

Status RebuildGlobalIndex(const RegistryStores& stores, const Workspace& workspace) {
  // Read every task registry first (lock-free), then replace the index in
  // one transaction: never two registry locks at once.
  json rebuilt = {{"tasks", json::object()}, {"agents", json::object()}};
  if (!IsDirectory(workspace.base())) {
    return Status::NotFound("workspace " + workspace.base() + " does not exist: check the path");
  }
  for (const std::string& task_id : workspace.TaskIds()) {
    Result<SharedTask> task = ReadTaskRecord(stores.tasks, workspace.TaskRegistryPath(task_id));
    if (task.ok()) MergeTask(rebuilt, **task);
  }
  return stores.global.Update(workspace.GlobalRegistryPath(),
                              [&](json& index) -> Result<store::Decision> {
                                index["tasks"] = rebuilt["tasks"];
                                index["agents"] = rebuilt["agents"];
                                RecomputeTotals(index);
                                return store::Decision::kCommit;
                              });
}

std::vector<std::string> IndexMismatches(const RegistryStores& stores, const Workspace& workspace,
                                         const std::vector<std::string>& task_ids,
                                         const std::string& scope_task_id) {
  std::vector<std::string> mismatches;
  std::optional<json> index = ReadIndexToCompare(stores, workspace);
  if (!index) return mismatches;
  const json& indexed_tasks = ObjectOr(*index, "tasks");
  const json& indexed_agents = ObjectOr(*index, "agents");
  TaskRegistries registries = ReadTaskRegistries(stores, workspace, task_ids);
  for (const auto& [task_id, task] : registries.tasks) {
    CompareTaskEntry(task_id, task, indexed_tasks, &mismatches);
    CompareAgentEntries(task_id, task, indexed_agents, &mismatches);
  }
  FindEntriesWithoutRegistry(registries, indexed_tasks, indexed_agents, scope_task_id, &mismatches);
  if (scope_task_id.empty()) CompareTotals(*index, &mismatches);
  return mismatches;
}

}  // namespace herd::registry
