#include "health/metrics_report.h"

#include <dirent.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>
#include <vector>

#include "health/findings.h"
#include "store/file_system.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using nlohmann::json;

constexpr double kHour = 3600;

struct Line {
  double t = 0;
  double wait_ms = 0;
  double hold_ms = 0;
  double flushes = 0;
  bool committed = false;
  bool recovered = false;
  std::string_view outcome;
};

// The text after `"key":` in a compact JSON object line, or nullopt.
// Lines are written by herd itself (nlohmann dump: no spaces, sorted keys),
// so a search is enough and far cheaper than parsing millions of lines.
std::optional<std::string_view> ValueOf(std::string_view line, std::string_view key) {
  std::string pattern;
  pattern.reserve(key.size() + 3);
  pattern.append("\"").append(key).append("\":");
  size_t at = line.find(pattern);
  if (at == std::string_view::npos) return std::nullopt;
  return line.substr(at + pattern.size());
}

std::optional<double> NumberOf(std::string_view line, std::string_view key) {
  std::optional<std::string_view> value = ValueOf(line, key);
  if (!value || value->empty()) return std::nullopt;
  // strtod needs a terminated string; numbers are short.
  char buffer[64];
  size_t length = std::min(value->size(), sizeof buffer - 1);
  std::memcpy(buffer, value->data(), length);
  buffer[length] = '\0';
  char* end = nullptr;
  double number = std::strtod(buffer, &end);
  if (end == buffer || !std::isfinite(number)) return std::nullopt;
  return number;
}

std::optional<bool> BoolOf(std::string_view line, std::string_view key) {
  std::optional<std::string_view> value = ValueOf(line, key);
  if (!value) return std::nullopt;
  if (value->substr(0, 4) == "true") return true;
  if (value->substr(0, 5) == "false") return false;
  return std::nullopt;
}

std::optional<std::string_view> StringOf(std::string_view line, std::string_view key) {
  std::optional<std::string_view> value = ValueOf(line, key);
  if (!value || value->empty() || value->front() != '"') return std::nullopt;
  size_t end = value->find('"', 1);
  if (end == std::string_view::npos) return std::nullopt;
  return value->substr(1, end - 1);
}

std::optional<Line> ParseLine(std::string_view text) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  Line line;
  std::optional<double> t = NumberOf(text, "t");
  std::optional<double> wait = NumberOf(text, "wait_ms");
  std::optional<double> hold = NumberOf(text, "hold_ms");
  std::optional<std::string_view> outcome = StringOf(text, "outcome");
  if (!t || !wait || !hold || !outcome) return std::nullopt;
  line.t = *t;
  line.wait_ms = *wait;
  line.hold_ms = *hold;
  line.flushes = NumberOf(text, "flushes").value_or(0);
  line.committed = BoolOf(text, "committed").value_or(false);
  line.recovered = BoolOf(text, "recovered").value_or(false);
  line.outcome = *outcome;
  return line;
}

double Round(double value) { return std::round(value * 1000.0) / 1000.0; }

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double fraction) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(fraction * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

class Figures {
 public:
  void Add(const Line& line) {
    waits_.push_back(line.wait_ms);
    holds_.push_back(line.hold_ms);
    flushes_ += line.flushes;
    committed_ += line.committed ? 1 : 0;
    recoveries_ += line.recovered ? 1 : 0;
    if (line.outcome == "timeout") ++timeouts_;
    else if (line.outcome == "corruption") ++corruption_failures_;
    else if (line.outcome == "not_durable") ++not_durable_;
    else if (line.outcome != "ok") ++errors_;
    first_ = std::min(first_, line.t);
    last_ = std::max(last_, line.t);
  }

  json ToJson() {
    std::sort(waits_.begin(), waits_.end());
    std::sort(holds_.begin(), holds_.end());
    size_t count = waits_.size();
    json figures = {
        {"transactions", count},
        {"committed", committed_},
        {"lock_wait_ms",
         {{"p50", Round(Percentile(waits_, 0.50))},
          {"p95", Round(Percentile(waits_, 0.95))},
          {"p99", Round(Percentile(waits_, 0.99))},
          {"max", Round(waits_.empty() ? 0 : waits_.back())}}},
        {"hold_ms",
         {{"p50", Round(Percentile(holds_, 0.50))},
          {"p99", Round(Percentile(holds_, 0.99))},
          {"max", Round(holds_.empty() ? 0 : holds_.back())}}},
        {"timeouts", timeouts_},
        {"corruption_recoveries", recoveries_},
        {"corruption_failures", corruption_failures_},
        {"not_durable", not_durable_},
        {"errors", errors_},
        {"flushes_per_transaction", count == 0 ? 0.0 : Round(flushes_ / count)},
        {"first", count == 0 ? json(nullptr) : json(FormatIso8601(first_))},
        {"last", count == 0 ? json(nullptr) : json(FormatIso8601(last_))},
    };
    return figures;
  }

 private:
  std::vector<double> waits_;
  std::vector<double> holds_;
  double flushes_ = 0;
  long committed_ = 0;
  long recoveries_ = 0;
  long timeouts_ = 0;
  long corruption_failures_ = 0;
  long not_durable_ = 0;
  long errors_ = 0;
  double first_ = std::numeric_limits<double>::max();
  double last_ = 0;
};

}  // namespace

json LockMetrics(const std::string& workspace_base, double now) {
  std::string directory = workspace_base + "/metrics";
  Figures last_hour;
  Figures all_time;
  long files = 0;
  long unreadable = 0;
  if (DIR* listing = opendir(directory.c_str())) {
    while (dirent* entry = readdir(listing)) {
      std::string name = entry->d_name;
      if (name.size() <= 6 || name.compare(name.size() - 6, 6, ".jsonl") != 0) continue;
      Result<std::string> contents = store::FileSystem::Default()->ReadFile(directory + "/" + name);
      if (!contents.ok()) continue;
      ++files;
      std::string_view data = *contents;
      size_t begin = 0;
      // Only whole lines: an unterminated tail is a line still being written.
      for (size_t end = data.find('\n'); end != std::string_view::npos;
           begin = end + 1, end = data.find('\n', begin)) {
        if (end == begin) continue;
        std::optional<Line> line = ParseLine(data.substr(begin, end - begin));
        if (!line) {
          ++unreadable;
          continue;
        }
        all_time.Add(*line);
        if (line->t >= now - kHour) last_hour.Add(*line);
      }
    }
    closedir(listing);
  }
  return {{"directory", directory},
          {"files", files},
          {"unreadable_lines", unreadable},
          {"last_hour", last_hour.ToJson()},
          {"all_time", all_time.ToJson()}};
}

}  // namespace herd::health
