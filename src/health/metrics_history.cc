#include "health/metrics_history.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>

#include "registry/file_names.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "store/file_system.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using nlohmann::json;

constexpr double kSmallestMs = 0.001;  // bucket 0 holds everything up to 1 µs
constexpr int kBucketsPerDoubling = 16;

// The text after `"key":` in a compact JSON object line, or nullopt.
// Lines are written by herd itself (nlohmann dump: no spaces), so a search
// is enough and far cheaper than parsing millions of lines.
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

int BucketOf(double ms) {
  if (!(ms > kSmallestMs)) return 0;
  return 1 + static_cast<int>(std::floor(std::log2(ms / kSmallestMs) * kBucketsPerDoubling));
}

double UpperBoundOf(int bucket) {
  return kSmallestMs * std::exp2(static_cast<double>(bucket) / kBucketsPerDoubling);
}

std::string MetricsDirectory(const std::string& base) {
  return registry::Workspace(base).MetricsDirectory();
}

std::string HistoryPath(const std::string& base) {
  return MetricsDirectory(base) + "/" + registry::kMetricsHistoryFile;
}

bool HasExited(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

bool Exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

std::optional<MetricsLine> ParseMetricsLine(std::string_view text) {
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return std::nullopt;
  MetricsLine line;
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

std::vector<MetricsLine> MetricsLinesOf(std::string_view contents, long* unreadable) {
  std::vector<MetricsLine> lines;
  size_t begin = 0;
  for (size_t end = contents.find('\n'); end != std::string_view::npos;
       begin = end + 1, end = contents.find('\n', begin)) {
    if (end == begin) continue;
    std::optional<MetricsLine> line = ParseMetricsLine(contents.substr(begin, end - begin));
    if (line) {
      lines.push_back(*line);
    } else {
      ++*unreadable;
    }
  }
  return lines;
}

void LatencyHistogram::Add(double ms, uint64_t count) {
  buckets_[BucketOf(ms)] += count;
  count_ += count;
  max_ = std::max(max_, ms);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (const auto& [bucket, count] : other.buckets_) buckets_[bucket] += count;
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

double LatencyHistogram::Percentile(double fraction) const {
  if (count_ == 0) return 0;
  uint64_t rank = static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (const auto& [bucket, count] : buckets_) {
    seen += count;
    if (seen >= rank) return std::min(bucket == 0 ? kSmallestMs : UpperBoundOf(bucket), max_);
  }
  return max_;
}

json LatencyHistogram::ToJson() const {
  json buckets = json::object();
  for (const auto& [bucket, count] : buckets_) buckets[std::to_string(bucket)] = count;
  return {{"max", max_}, {"buckets", std::move(buckets)}};
}

LatencyHistogram LatencyHistogram::FromJson(const json& value) {
  LatencyHistogram histogram;
  if (!value.is_object()) return histogram;
  auto buckets = value.find("buckets");
  if (buckets != value.end() && buckets->is_object()) {
    for (const auto& [key, count] : buckets->items()) {
      if (!count.is_number_unsigned()) continue;
      char* end = nullptr;
      long bucket = std::strtol(key.c_str(), &end, 10);
      if (end == key.c_str() || *end != '\0' || bucket < 0 || bucket > 4096) continue;
      histogram.buckets_[static_cast<int>(bucket)] += count.get<uint64_t>();
      histogram.count_ += count.get<uint64_t>();
    }
  }
  auto max = value.find("max");
  if (max != value.end() && max->is_number()) histogram.max_ = max->get<double>();
  return histogram;
}

void MetricsTally::Add(const MetricsLine& line) {
  ++transactions;
  committed += line.committed ? 1 : 0;
  recoveries += line.recovered ? 1 : 0;
  if (line.outcome == "timeout")
    ++timeouts;
  else if (line.outcome == "corruption")
    ++corruption_failures;
  else if (line.outcome == "not_durable")
    ++not_durable;
  else if (line.outcome != "ok")
    ++errors;
  flushes += line.flushes;
  first = transactions == 1 ? line.t : std::min(first, line.t);
  last = std::max(last, line.t);
  wait_ms.Add(line.wait_ms);
  hold_ms.Add(line.hold_ms);
}

void MetricsTally::Merge(const MetricsTally& other) {
  if (other.transactions == 0) return;
  first = transactions == 0 ? other.first : std::min(first, other.first);
  last = std::max(last, other.last);
  transactions += other.transactions;
  committed += other.committed;
  recoveries += other.recoveries;
  timeouts += other.timeouts;
  corruption_failures += other.corruption_failures;
  not_durable += other.not_durable;
  errors += other.errors;
  flushes += other.flushes;
  wait_ms.Merge(other.wait_ms);
  hold_ms.Merge(other.hold_ms);
}

json MetricsTally::ToJson() const {
  return {{"transactions", transactions},
          {"committed", committed},
          {"recoveries", recoveries},
          {"timeouts", timeouts},
          {"corruption_failures", corruption_failures},
          {"not_durable", not_durable},
          {"errors", errors},
          {"flushes", flushes},
          {"first", first},
          {"last", last},
          {"wait_ms", wait_ms.ToJson()},
          {"hold_ms", hold_ms.ToJson()}};
}

MetricsTally MetricsTally::FromJson(const json& value) {
  MetricsTally tally;
  if (!value.is_object()) return tally;
  auto number = [&](const char* key) {
    auto found = value.find(key);
    return found != value.end() && found->is_number() ? found->get<double>() : 0.0;
  };
  tally.transactions = static_cast<long>(number("transactions"));
  tally.committed = static_cast<long>(number("committed"));
  tally.recoveries = static_cast<long>(number("recoveries"));
  tally.timeouts = static_cast<long>(number("timeouts"));
  tally.corruption_failures = static_cast<long>(number("corruption_failures"));
  tally.not_durable = static_cast<long>(number("not_durable"));
  tally.errors = static_cast<long>(number("errors"));
  tally.flushes = number("flushes");
  tally.first = number("first");
  tally.last = number("last");
  tally.wait_ms = LatencyHistogram::FromJson(value.value("wait_ms", json::object()));
  tally.hold_ms = LatencyHistogram::FromJson(value.value("hold_ms", json::object()));
  return tally;
}

Result<MetricsHistory> ReadMetricsHistory(const store::JsonStore& store, const std::string& base) {
  MetricsHistory history;
  Result<store::Snapshot> snapshot = store.Read(HistoryPath(base));
  if (!snapshot.ok()) {
    if (snapshot.status().Is(Status::Code::kNotFound)) return history;
    return snapshot.status();
  }
  const json& document = snapshot->document;
  history.tally = MetricsTally::FromJson(document.value("tally", json::object()));
  for (const json& name : document.value("folded", json::array())) {
    if (name.is_string()) history.folded.push_back(name.get<std::string>());
  }
  return history;
}

std::vector<std::string> FoldableMetricsFiles(const std::string& base, double now,
                                              std::chrono::seconds min_age) {
  std::vector<std::string> foldable;
  std::string directory = MetricsDirectory(base);
  for (const std::string& name : registry::ListDirectory(directory)) {
    std::optional<registry::ParsedMetricsFile> parsed = registry::ParseMetricsFileName(name);
    if (!parsed || parsed->file == registry::MetricsFile::kHistory) continue;
    if (parsed->file == registry::MetricsFile::kFoldingLines) {
      foldable.push_back(name);
      continue;
    }
    if (!HasExited(parsed->writer)) continue;
    struct stat info {};
    if (::stat((directory + "/" + name).c_str(), &info) != 0) continue;
    double modified = static_cast<double>(info.st_mtim.tv_sec) + info.st_mtim.tv_nsec / 1e9;
    if (now - modified >= static_cast<double>(min_age.count())) foldable.push_back(name);
  }
  return foldable;
}

Result<FoldResult> FoldMetrics(const store::JsonStore& store, const std::string& base, double now,
                               std::chrono::seconds min_age) {
  std::string directory = MetricsDirectory(base);
  store::FileSystem* fs = store::FileSystem::Default();

  // 1. Take each file out of its writer's name.
  std::vector<std::string> taken;
  for (const std::string& name : FoldableMetricsFiles(base, now, min_age)) {
    std::optional<registry::ParsedMetricsFile> parsed = registry::ParseMetricsFileName(name);
    if (parsed && parsed->file == registry::MetricsFile::kFoldingLines) {
      taken.push_back(name);
      continue;
    }
    std::string folding = registry::FoldingMetricsFileName(name);
    Status renamed = fs->Rename(directory + "/" + name, directory + "/" + folding);
    if (renamed.ok()) taken.push_back(folding);  // else another fold took it
  }
  if (taken.empty()) {
    // Nothing to fold; still drop names of deleted files from the history.
    Result<MetricsHistory> history = ReadMetricsHistory(store, base);
    if (!history.ok() || history->folded.empty()) return FoldResult{};
  }

  // 2. Their figures, added once each in one history transaction.
  struct Taken {
    std::string name;
    MetricsTally tally;
    uint64_t bytes = 0;
  };
  std::vector<Taken> files;
  for (const std::string& name : taken) {
    Result<std::string> contents = fs->ReadFile(directory + "/" + name);
    if (!contents.ok()) continue;  // folded and deleted by a concurrent fold
    Taken file{name, {}, contents->size()};
    long unreadable = 0;
    for (const MetricsLine& line : MetricsLinesOf(*contents, &unreadable)) file.tally.Add(line);
    files.push_back(std::move(file));
  }
  FoldResult result;
  std::string history_path = HistoryPath(base);
  Status committed = store.Update(history_path, [&](json& document) -> Result<store::Decision> {
    result = FoldResult{};
    MetricsTally tally = MetricsTally::FromJson(document.value("tally", json::object()));
    std::set<std::string> folded;
    for (const json& name : document.value("folded", json::array())) {
      // Names of files already deleted are dropped: nothing can count them again.
      if (name.is_string() && Exists(directory + "/" + name.get<std::string>())) {
        folded.insert(name.get<std::string>());
      }
    }
    for (const Taken& file : files) {
      // Gone: a concurrent fold counted it, then deleted it.
      if (!Exists(directory + "/" + file.name)) continue;
      if (!folded.insert(file.name).second) continue;  // counted by an earlier fold
      tally.Merge(file.tally);
      ++result.files;
      result.lines += file.tally.transactions;
      result.bytes += file.bytes;
    }
    document["tally"] = tally.ToJson();
    document["folded"] = folded;
    return store::Decision::kCommit;
  });
  if (!committed.ok()) {
    // The files stay (renamed folding-*): readers still count them, and the
    // next fold takes them once the history can be written.
    return committed.WithContext("cannot update " + history_path +
                                 " (no metrics were lost; fix the cause, then run "
                                 "`herd doctor --repair` again)");
  }

  // 3. Counted: delete them.
  for (const Taken& file : files) (void)fs->Remove(directory + "/" + file.name);
  return result;
}

std::vector<Finding> CheckMetricsBacklog(const CheckContext& context) {
  std::string base = context.workspace.base();
  std::vector<std::string> foldable = FoldableMetricsFiles(base, context.now, kMetricsFoldAge);
  if (foldable.empty()) return {};
  uint64_t bytes = 0;
  for (const std::string& name : foldable) {
    struct stat info {};
    if (::stat((MetricsDirectory(base) + "/" + name).c_str(), &info) == 0) {
      bytes += static_cast<uint64_t>(info.st_size);
    }
  }
  Finding finding;
  finding.kind = FindingKind::kMetricsBacklog;
  finding.severity = Severity::kWarning;
  finding.path = MetricsDirectory(base);
  finding.detail = std::to_string(foldable.size()) + " metrics file(s) (" +
                   std::to_string(bytes / 1024) + " KiB) of exited herd processes, each a line " +
                   "per transaction; they only grow";
  const registry::RegistryStores* stores = context.stores;
  finding.fix = std::make_shared<Fix>(
      FindingKind::kMetricsBacklog, finding.path,
      "fold them into " + HistoryPath(base) +
          " (counts and histograms; the lock figures keep every transaction)",
      [stores, base] {
        Result<FoldResult> folded =
            FoldMetrics(stores->metrics, base, NowUnixSeconds(), kMetricsFoldAge);
        if (!folded.ok()) return RepairOutcome::Failed(folded.status());
        if (folded->files == 0) return RepairOutcome::Unchanged("nothing left to fold");
        return RepairOutcome::Changed("folded " + std::to_string(folded->files) + " file(s), " +
                                      std::to_string(folded->lines) + " transaction(s), " +
                                      std::to_string(folded->bytes / 1024) + " KiB into " +
                                      registry::kMetricsHistoryFile);
      });
  return {finding};
}

}  // namespace herd::health
