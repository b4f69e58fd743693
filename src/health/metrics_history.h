// Metrics history: the lock figures of per-process metrics files that were
// folded away, so the metrics directory stays small.
//
// Every herd process appends one line per registry transaction to
// <base>/metrics/<pid>.jsonl (registry/metrics.h): the directory gains a file
// per process and a line per transaction, forever. `herd doctor --repair`
// folds the files of processes that have exited, once they were last written
// more than an hour ago (so the last hour's figures stay exact), into
// <base>/metrics/history.json: counts, flush sum, first and last times,
// maxima and log-scale histograms of lock wait and hold times (16 buckets per
// doubling from 1 µs: a percentile read from them is within 4.4% of the
// exact one). history.json is a store document (lock, atomic replace,
// backup, sequence).
//
// Folding is crash-safe and never counts a line twice:
//   1. rename <pid>.jsonl to folding-<pid>-<random>.jsonl (a process that
//      reuses the pid appends to a new <pid>.jsonl);
//   2. in one history transaction, add the figures of each folding-* file
//      whose name is not yet in history's "folded" list, and add its name;
//   3. delete the folding-* files; names of deleted files leave the list at
//      the next fold.
// A crash after 1 leaves folding-* files that the next fold takes; after 2,
// files whose names are listed, which readers skip and the next fold deletes.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "health/check_context.h"
#include "health/findings.h"
#include "store/json_store.h"
#include "util/status.h"

namespace herd::health {

// One metrics line: {"t", "wait_ms", "hold_ms", "flushes", "committed",
// "recovered", "outcome"}.
struct MetricsLine {
  double t = 0;
  double wait_ms = 0;
  double hold_ms = 0;
  double flushes = 0;
  bool committed = false;
  bool recovered = false;
  std::string_view outcome;  // points into the parsed text
};

// Parses a line as herd writes it (compact JSON); nullopt if it lacks a figure.
std::optional<MetricsLine> ParseMetricsLine(std::string_view text);

// Milliseconds in log-scale buckets; sparse.
class LatencyHistogram {
 public:
  void Add(double ms, uint64_t count = 1);
  void Merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  double max() const { return max_; }
  // Nearest-rank percentile, as the upper bound of its bucket (capped at max).
  double Percentile(double fraction) const;

  nlohmann::json ToJson() const;  // {"max", "buckets": {"<index>": count}}
  static LatencyHistogram FromJson(const nlohmann::json& value);

 private:
  std::map<int, uint64_t> buckets_;
  uint64_t count_ = 0;
  double max_ = 0;
};

// The totals of many transactions: what history.json keeps.
struct MetricsTally {
  long transactions = 0;
  long committed = 0;
  long recoveries = 0;
  long timeouts = 0;
  long corruption_failures = 0;
  long not_durable = 0;
  long errors = 0;
  double flushes = 0;
  double first = 0;  // Unix seconds; 0 when empty
  double last = 0;
  LatencyHistogram wait_ms;
  LatencyHistogram hold_ms;

  void Add(const MetricsLine& line);
  void Merge(const MetricsTally& other);
  nlohmann::json ToJson() const;
  static MetricsTally FromJson(const nlohmann::json& value);
};

// The complete lines of a metrics file's contents, in order (an unterminated
// tail is a line still being written); lines that do not parse are counted
// in `unreadable`.
std::vector<MetricsLine> MetricsLinesOf(std::string_view contents, long* unreadable);

// What history.json holds now: its tally and the names of folded files
// (readers skip those). An absent history is empty.
struct MetricsHistory {
  MetricsTally tally;
  std::vector<std::string> folded;
};
Result<MetricsHistory> ReadMetricsHistory(const store::JsonStore& store, const std::string& base);

// The metrics files (names) in <base>/metrics that a fold would take: those
// of exited processes last written at least `min_age` before `now`, and
// folding-* files a crashed fold left.
std::vector<std::string> FoldableMetricsFiles(const std::string& base, double now,
                                              std::chrono::seconds min_age);

struct FoldResult {
  int files = 0;       // files folded into the history
  long lines = 0;      // transactions they held
  uint64_t bytes = 0;  // their size
};

// Folds FoldableMetricsFiles (re-checked) into history.json, as above.
Result<FoldResult> FoldMetrics(const store::JsonStore& store, const std::string& base, double now,
                               std::chrono::seconds min_age);

// How old an exited process's metrics file must be before it is folded.
inline constexpr std::chrono::seconds kMetricsFoldAge{3600};

// Doctor's check: a metrics_backlog warning when there are files to fold,
// with FoldMetrics as its repair.
std::vector<Finding> CheckMetricsBacklog(const CheckContext& context);

}  // namespace herd::health
