// The task registries as typed records: the store edge.
//
// Each function here is one store transaction or one lock-free read of a
// task's AGENT_REGISTRY.json (store/json_store.h holds the guarantees: no
// lost update, crash-safe replace, sequence never backwards). The document
// is decoded into a TaskRecord before the caller sees it and encoded again
// when a mutation commits, so no layer above handles its JSON. A document
// that decodes with an error (a hand-edited field of the wrong type) fails
// the read or the transaction with that error, naming the file, the entry
// and the field, and is left exactly as it is.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "registry/records.h"
#include "store/json_store.h"
#include "util/status.h"

namespace herd::registry {

struct TaskSnapshot {
  TaskRecord task;
  uint64_t sequence = 0;     // the document's herd_sequence
  bool from_backup = false;  // the file was missing or damaged
};

// A committed version as readers share it: immutable, never copied.
using SharedTask = std::shared_ptr<const TaskSnapshot>;

// Changes `task` in place; an error aborts the transaction, writing nothing.
// Counts are recomputed before a commit whatever the mutation did.
using TaskMutation = std::function<Result<store::Decision>(TaskRecord& task)>;

// The latest committed version of the task registry at `path`. A file
// whose bytes are unchanged since the last read is neither parsed nor
// decoded again: every such read shares the one decoded version.
Result<SharedTask> ReadTaskRecord(const store::JsonStore& tasks, const std::string& path);

// One transaction on the task registry at `path`. The mutation of a task
// not yet created receives an empty record (task_id ""). When it commits,
// `committed` (if given) receives the version written, with its sequence.
Status UpdateTaskRecord(const store::JsonStore& tasks, const std::string& path,
                        const TaskMutation& mutation, TaskSnapshot* committed = nullptr,
                        store::TransactionStats* stats = nullptr);

// The derived fields (total_spawned, active_count, completed_count) as the
// file at `path` stores them, where they differ from what its agent list
// gives: "active_count is 3 but the agent list gives 1, ...", or "" when they
// agree. Readers never trust the stored values; doctor reports a drift.
Result<std::string> StoredCountDrift(const store::JsonStore& tasks, const std::string& path);

// Rewrites the stored derived fields from the agent list, in one
// transaction, when they differ (StoredCountDrift). Returns whether it
// committed; `committed` then receives the version written.
Result<bool> RewriteDerivedCounts(const store::JsonStore& tasks, const std::string& path,
                                  TaskSnapshot* committed);

}  // namespace herd::registry
