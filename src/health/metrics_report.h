// Lock and transaction figures of a workspace base, aggregated on read.
//
// Every herd process appends one line per registry transaction to
// <base>/metrics/<pid>.jsonl (registry/metrics.h). This reads all of them,
// and the history of those folded away (health/metrics_history.h), and
// summarises: transactions and commits, lock acquisition time (wait_ms)
// p50/p95/p99/max, hold time p50/p99/max, flushes per transaction, lock
// timeouts, corruption recoveries (a transaction that restored a backup) and
// corruption failures (nothing intact to restore), commits that were not
// durable and other errors, over the last hour and since the first line.
//
// Robust to concurrent appends and damage: a line is counted only once its
// '\n' is there (a line being written is skipped), and lines that do not
// parse or lack the figures are counted as unreadable, never fatal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "store/json_store.h"

namespace herd::health {

// {"last_hour": Figures, "all_time": Figures, "files": N,
//  "unreadable_lines": N, "directory": path}
// where Figures = {"transactions", "committed", "lock_wait_ms": {"p50",
// "p95", "p99", "max"}, "hold_ms": {"p50", "p99", "max"}, "timeouts",
// "corruption_recoveries", "corruption_failures", "not_durable", "errors",
// "flushes_per_transaction", "first", "last", "exact_percentiles"}. `now` is
// Unix seconds.
// Files folded into metrics/history.json (health/metrics_history.h, read
// through `history_store`) count in "all_time", whose percentiles then come
// from the history's histograms ("exact_percentiles": false).
nlohmann::json LockMetrics(const store::JsonStore& history_store, const std::string& workspace_base,
                           double now);

}  // namespace herd::health
