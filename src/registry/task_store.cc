#include "registry/task_store.h"

#include <map>
#include <mutex>

#include "registry/task_registry.h"
#include "registry/transitions.h"

namespace herd::registry {

namespace {

// The decoded form of the store's cached parses. The store hands out the
// same parse object for the same bytes (JsonStore::ReadShared), so a read
// whose parse is the one decoded last time decodes nothing: any change to
// the file, a commit or a hand edit, is a new parse. Entries hold their
// parse, so an address is never reused while it is a key.
class DecodedTasks {
 public:
  SharedTask Find(const std::string& path, const store::Snapshot* parse) {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = entries_.find(path);
    if (found == entries_.end() || found->second.parse.get() != parse) return nullptr;
    return found->second.decoded;
  }

  void Remember(const std::string& path, std::shared_ptr<const store::Snapshot> parse,
                SharedTask decoded) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_[path] = {std::move(parse), std::move(decoded)};
  }

 private:
  static constexpr size_t kMaxEntries = 64;  // as many as the store caches
  struct Entry {
    std::shared_ptr<const store::Snapshot> parse;
    SharedTask decoded;
  };
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
};

DecodedTasks& Decoded() {
  static DecodedTasks* decoded = new DecodedTasks;  // never destroyed: used by exiting threads
  return *decoded;
}

}  // namespace

Result<SharedTask> ReadTaskRecord(const store::JsonStore& tasks, const std::string& path) {
  HERD_ASSIGN_OR_RETURN(std::shared_ptr<const store::Snapshot> parse, tasks.ReadShared(path));
  if (SharedTask cached = Decoded().Find(path, parse.get())) return cached;
  HERD_ASSIGN_OR_RETURN(TaskRecord task, DecodeTask(parse->document, path));
  RecomputeCounts(task);
  // Braces: clang 14 (the fuzz build) has no parenthesized aggregate init.
  auto decoded = std::make_shared<const TaskSnapshot>(
      TaskSnapshot{std::move(task), parse->sequence, parse->from_backup});
  if (!parse->from_backup) Decoded().Remember(path, std::move(parse), decoded);
  return decoded;
}

Status UpdateTaskRecord(const store::JsonStore& tasks, const std::string& path,
                        const TaskMutation& mutation, TaskSnapshot* committed,
                        store::TransactionStats* stats) {
  store::TransactionStats own_stats;
  if (stats == nullptr) stats = &own_stats;
  TaskRecord written;
  std::vector<AgentTransition> transitions;
  Status status = tasks.Update(
      path,
      [&](nlohmann::json& document) -> Result<store::Decision> {
        transitions.clear();  // from an attempt that did not commit
        Result<TaskRecord> decoded =
            document.empty() ? Result<TaskRecord>(TaskRecord{}) : DecodeTask(document, path);
        if (!decoded.ok()) return decoded.status();
        TaskRecord task = std::move(decoded).value();
        RecomputeCounts(task);
        StatusesBefore before = StatusesOf(task);
        HERD_ASSIGN_OR_RETURN(store::Decision decision, mutation(task));
        if (decision == store::Decision::kNoChange) return decision;
        RecomputeCounts(task);
        document = EncodeTask(task);
        transitions = TransitionsBetween(before, task);
        if (committed != nullptr) written = std::move(task);
        return decision;
      },
      stats);
  if (!stats->committed) return status;
  if (committed != nullptr) *committed = TaskSnapshot{std::move(written), stats->sequence, false};
  ObserveTransitions(transitions);  // the lock is released: tell of what committed
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
