// Store metrics: every herd process appends one line per registry
// transaction to its own file, <workspace base>/metrics/<pid>.jsonl.
//
// Appending costs one write(2) of ~150 bytes, no fsync and no lock, after
// the transaction's lock is released: nothing measurable next to the
// durable commit (~1 ms) and it never blocks the transaction. Files are
// per process, so writers never contend; readers aggregate all of them.
// Lines: {"t": unix seconds, "file": path relative to the base, "wait_ms",
// "hold_ms", "flushes", "committed", "recovered", "outcome"} where outcome
// is ok, timeout, corruption, not_durable or error.
#pragma once

#include <string>

#include "store/json_store.h"

namespace herd::registry {

// The workspace base that holds a registry file (its task or registry/
// directory's parent).
std::string WorkspaceBaseOf(const std::string& registry_path);

// The TransactionObserver RegistryStores installs.
void RecordTransactionMetrics(const std::string& path, const store::TransactionStats& stats,
                              const Status& status);

}  // namespace herd::registry
