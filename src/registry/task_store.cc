#include "registry/task_store.h"

#include "registry/task_registry.h"

namespace herd::registry {

Result<TaskSnapshot> ReadTaskRecord(const store::JsonStore& tasks, const std::string& path) {
  HERD_ASSIGN_OR_RETURN(store::Snapshot snapshot, tasks.Read(path));
  HERD_ASSIGN_OR_RETURN(TaskRecord task, DecodeTask(snapshot.document, path));
  RecomputeCounts(task);
  return TaskSnapshot{std::move(task), snapshot.sequence, snapshot.from_backup};
}

Status UpdateTaskRecord(const store::JsonStore& tasks, const std::string& path,
                        const TaskMutation& mutation, TaskSnapshot* committed,
                        store::TransactionStats* stats) {
  store::TransactionStats own_stats;
  if (stats == nullptr) stats = &own_stats;
  TaskRecord written;
  Status status = tasks.Update(
      path,
      [&](nlohmann::json& document) -> Result<store::Decision> {
        Result<TaskRecord> decoded =
            document.empty() ? Result<TaskRecord>(TaskRecord{}) : DecodeTask(document, path);
        if (!decoded.ok()) return decoded.status();
        TaskRecord task = std::move(decoded).value();
        RecomputeCounts(task);
        HERD_ASSIGN_OR_RETURN(store::Decision decision, mutation(task));
        if (decision == store::Decision::kNoChange) return decision;
        RecomputeCounts(task);
        document = EncodeTask(task);
        if (committed != nullptr) written = std::move(task);
        return decision;
      },
      stats);
  if (committed != nullptr && stats->committed) {
    *committed = TaskSnapshot{std::move(written), stats->sequence, false};
  }
  return status;
}

namespace {

constexpr const char* kCountKeys[] = {"total_spawned", "active_count", "completed_count"};

// The drift between `stored` and `derived` (EncodeTask of the decoded task).
std::string CountDrift(const nlohmann::json& stored, const nlohmann::json& derived) {
  std::string differences;
  for (const char* key : kCountKeys) {
    nlohmann::json value = stored.value(key, nlohmann::json(nullptr));
    if (value != derived[key]) {
      differences += std::string(differences.empty() ? "" : ", ") + key + " is " + value.dump() +
                     " but the agent list gives " + derived[key].dump();
    }
  }
  return differences;
}

}  // namespace

Result<std::string> StoredCountDrift(const store::JsonStore& tasks, const std::string& path) {
  HERD_ASSIGN_OR_RETURN(store::Snapshot snapshot, tasks.Read(path));
  HERD_ASSIGN_OR_RETURN(TaskRecord task, DecodeTask(snapshot.document, path));
  RecomputeCounts(task);
  return CountDrift(snapshot.document, EncodeTask(task));
}

Result<bool> RewriteDerivedCounts(const store::JsonStore& tasks, const std::string& path,
                                  TaskSnapshot* committed) {
  store::TransactionStats stats;
  TaskRecord written;
  Status status = tasks.Update(
      path,
      [&](nlohmann::json& document) -> Result<store::Decision> {
        HERD_ASSIGN_OR_RETURN(TaskRecord task, DecodeTask(document, path));
        RecomputeCounts(task);
        nlohmann::json derived = EncodeTask(task);
        if (CountDrift(document, derived).empty()) return store::Decision::kNoChange;
        for (const char* key : kCountKeys) document[key] = derived[key];
        written = std::move(task);
        return store::Decision::kCommit;
      },
      &stats);
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  if (stats.committed && committed != nullptr) {
    *committed = TaskSnapshot{std::move(written), stats.sequence, false};
  }
  return stats.committed;
}

}  // namespace herd::registry
