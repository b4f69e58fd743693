#include "health/metrics_report.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "health/findings.h"
#include "health/metrics_history.h"
#include "registry/file_names.h"
#include "registry/workspace.h"
#include "store/file_system.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using nlohmann::json;

constexpr double kHour = 3600;

double Round(double value) {
  return std::round(value * 1000.0) / 1000.0;
}

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

// The figures of a period. Percentiles are exact while every transaction is
// a line; once folded history is part of it they come from the histograms.
class Figures {
 public:
  explicit Figures(MetricsTally history = {})
      : tally_(std::move(history)), exact_(tally_.transactions == 0) {}

  void Add(const MetricsLine& line) {
    tally_.Add(line);
    if (exact_) {
      waits_.push_back(line.wait_ms);
      holds_.push_back(line.hold_ms);
    }
  }

  json ToJson() {
    std::sort(waits_.begin(), waits_.end());
    std::sort(holds_.begin(), holds_.end());
    auto wait = [&](double fraction) {
      return Round(exact_ ? Percentile(waits_, fraction) : tally_.wait_ms.Percentile(fraction));
    };
    auto hold = [&](double fraction) {
      return Round(exact_ ? Percentile(holds_, fraction) : tally_.hold_ms.Percentile(fraction));
    };
    long count = tally_.transactions;
    return {
        {"transactions", count},
        {"committed", tally_.committed},
        {"lock_wait_ms",
         {{"p50", wait(0.50)},
          {"p95", wait(0.95)},
          {"p99", wait(0.99)},
          {"max", Round(tally_.wait_ms.max())}}},
        {"hold_ms",
         {{"p50", hold(0.50)}, {"p99", hold(0.99)}, {"max", Round(tally_.hold_ms.max())}}},
        {"timeouts", tally_.timeouts},
        {"corruption_recoveries", tally_.recoveries},
        {"corruption_failures", tally_.corruption_failures},
        {"not_durable", tally_.not_durable},
        {"errors", tally_.errors},
        {"flushes_per_transaction",
         count == 0 ? 0.0 : Round(tally_.flushes / static_cast<double>(count))},
        {"first", count == 0 ? json(nullptr) : json(FormatIso8601(tally_.first))},
        {"last", count == 0 ? json(nullptr) : json(FormatIso8601(tally_.last))},
        {"exact_percentiles", exact_},
    };
  }

 private:
  MetricsTally tally_;
  bool exact_;
  std::vector<double> waits_;
  std::vector<double> holds_;
};

}  // namespace

json LockMetrics(const store::JsonStore& history_store, const std::string& workspace_base,
                 double now) {
  std::string directory = registry::Workspace(workspace_base).MetricsDirectory();
  // History first: a file folded after this read is then still read below.
  Result<MetricsHistory> history = ReadMetricsHistory(history_store, workspace_base);
  MetricsHistory folded_history = history.ok() ? std::move(*history) : MetricsHistory{};
  std::set<std::string> folded(folded_history.folded.begin(), folded_history.folded.end());
  Figures last_hour;
  Figures all_time(folded_history.tally);
  long files = 0;
  long unreadable = 0;
  for (const std::string& name : registry::ListDirectory(directory)) {
    if (!registry::IsMetricsLinesFileName(name)) continue;
    if (folded.count(name) != 0) continue;  // already in the history
    Result<std::string> contents = store::FileSystem::Default()->ReadFile(directory + "/" + name);
    if (!contents.ok()) continue;
    ++files;
    for (const MetricsLine& line : MetricsLinesOf(*contents, &unreadable)) {
      all_time.Add(line);
      if (line.t >= now - kHour) last_hour.Add(line);
    }
  }
  json figures = {{"directory", directory},
                  {"files", files},
                  {"unreadable_lines", unreadable},
                  {"last_hour", last_hour.ToJson()},
                  {"all_time", all_time.ToJson()}};
  if (!history.ok()) figures["history_error"] = history.status().ToString();
  return figures;
}

}  // namespace herd::health
