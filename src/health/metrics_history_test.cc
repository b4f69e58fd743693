// Folding metrics files into metrics/history.json: figures kept, nothing
// counted twice (a second fold, a crash at either step, two folds at once),
// the last hour and live writers' files left alone.
#include "health/metrics_history.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <thread>

#include "health/metrics_report.h"
#include "health/testing_for_test.h"
#include "registry/registry_stores.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using namespace herd::health::testing;

std::string Line(double t, double wait_ms, double hold_ms, const std::string& outcome = "ok") {
  return json{{"t", t},
              {"file", "TASK-20260101-000000-00000000/AGENT_REGISTRY.json"},
              {"wait_ms", wait_ms},
              {"hold_ms", hold_ms},
              {"flushes", 2},
              {"committed", outcome == "ok"},
              {"recovered", false},
              {"outcome", outcome}}
      .dump();
}

// Stores whose transactions write no metrics lines themselves, so the
// figures are exactly the files the tests write.
store::StoreOptions WithoutMetrics() {
  store::StoreOptions options = registry::RegistryStores::DefaultOptions();
  options.observer = nullptr;
  return options;
}

class health_MetricsHistory : public ::testing::Test {
 protected:
  void SetUp() override { std::filesystem::create_directories(Metrics()); }

  std::string Metrics() const { return dir_.path() + "/metrics"; }

  // A metrics file `name` with `lines`, last written `age` ago.
  void WriteMetrics(const std::string& name, const std::string& lines,
                    std::chrono::seconds age = std::chrono::hours(2)) {
    WriteFile(Metrics() + "/" + name, lines);
    Backdate(Metrics() + "/" + name, age);
  }

  // Three exited writers' old files: waits 1..900 ms, holds 0.1..90 ms, a
  // timeout, all two to three hours ago.
  void WriteOldFiles() {
    std::vector<pid_t> pids = UnusedPids(3);
    ASSERT_EQ(pids.size(), 3u);
    std::string files[3];
    for (int i = 1; i <= 900; ++i) files[i % 3] += Line(now_ - 9000 + i, i, i / 10.0) + "\n";
    files[0] += Line(now_ - 8000, 7000, 1, "timeout") + "\n";
    for (int f = 0; f < 3; ++f) WriteMetrics(std::to_string(pids[f]) + ".jsonl", files[f]);
  }

  json Figures() { return LockMetrics(stores_.metrics, dir_.path(), now_); }

  Result<FoldResult> Fold() {
    return FoldMetrics(stores_.metrics, dir_.path(), now_, kMetricsFoldAge);
  }

  std::vector<std::string> MetricsFiles() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(Metrics())) {
      std::string name = entry.path().filename().string();
      if (name.size() > 6 && name.compare(name.size() - 6, 6, ".jsonl") == 0) names.push_back(name);
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  TempDir dir_;
  registry::RegistryStores stores_{WithoutMetrics()};
  double now_ = NowUnixSeconds();
};

// Every count equal, percentiles within the histogram's 4.4% (one bucket).
void ExpectSameFigures(const json& exact, const json& folded) {
  for (const char* key :
       {"transactions", "committed", "timeouts", "corruption_recoveries", "corruption_failures",
        "not_durable", "errors", "first", "last", "flushes_per_transaction"}) {
    EXPECT_EQ(folded[key], exact[key]) << key;
  }
  EXPECT_EQ(folded["lock_wait_ms"]["max"], exact["lock_wait_ms"]["max"]);
  EXPECT_EQ(folded["hold_ms"]["max"], exact["hold_ms"]["max"]);
  for (const char* p : {"p50", "p95", "p99"}) {
    double want = exact["lock_wait_ms"][p].get<double>();
    double got = folded["lock_wait_ms"][p].get<double>();
    EXPECT_GE(got, want) << p << " (a bucket's upper bound)";
    EXPECT_LE(got, want * 1.045) << p;
  }
}

TEST_F(health_MetricsHistory, FoldKeepsEveryFigureAndRemovesTheFiles) {
  WriteOldFiles();
  json before = Figures();
  ASSERT_EQ(before["all_time"]["transactions"], 901);
  ASSERT_TRUE(before["all_time"]["exact_percentiles"].get<bool>());

  Result<FoldResult> folded = Fold();
  ASSERT_TRUE(folded.ok()) << folded.status().ToString();
  EXPECT_EQ(folded->files, 3);
  EXPECT_EQ(folded->lines, 901);
  EXPECT_THAT(MetricsFiles(), ::testing::IsEmpty());
  EXPECT_TRUE(FileExists(Metrics() + "/history.json"));

  json after = Figures();
  EXPECT_FALSE(after["all_time"]["exact_percentiles"].get<bool>());
  ExpectSameFigures(before["all_time"], after["all_time"]);
  EXPECT_EQ(after["files"], 0);
}

TEST_F(health_MetricsHistory, LastHourAndLiveWritersAreLeftAlone) {
  std::vector<pid_t> pids = UnusedPids(1);
  std::string recent = std::to_string(pids[0]) + ".jsonl";
  std::string live = std::to_string(getpid()) + ".jsonl";
  WriteMetrics(recent, Line(now_ - 60, 1, 1) + "\n", std::chrono::seconds(60));
  WriteMetrics(live, Line(now_ - 9000, 2, 2) + "\n");  // old, but its writer runs
  EXPECT_THAT(FoldableMetricsFiles(dir_.path(), now_, kMetricsFoldAge), ::testing::IsEmpty());
  ASSERT_TRUE(Fold().ok());
  std::vector<std::string> kept = {live, recent};
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(MetricsFiles(), kept);
  EXPECT_EQ(Figures()["last_hour"]["transactions"], 1);
  EXPECT_TRUE(Figures()["last_hour"]["exact_percentiles"].get<bool>());
}

TEST_F(health_MetricsHistory, FoldingAgainAddsNothing) {
  WriteOldFiles();
  ASSERT_TRUE(Fold().ok());
  json once = Figures();
  Result<FoldResult> again = Fold();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->files, 0);
  EXPECT_EQ(Figures()["all_time"], once["all_time"]);
  // More files later are added to what was folded.
  std::vector<pid_t> pids = UnusedPids(1);
  WriteMetrics(std::to_string(pids[0]) + ".jsonl", Line(now_ - 5000, 3, 3) + "\n");
  ASSERT_EQ(Fold()->files, 1);
  EXPECT_EQ(Figures()["all_time"]["transactions"], 902);
}

// A fold that crashed after renaming a file (before its transaction) left a
// folding-* file: it is counted, once, by readers and by the next fold.
TEST_F(health_MetricsHistory, FileLeftByACrashBeforeTheTransactionIsCountedOnce) {
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += Line(now_ - 9000, 1, 1) + "\n";
  WriteMetrics("folding-123-deadbeef.jsonl", lines);
  EXPECT_EQ(Figures()["all_time"]["transactions"], 10);
  ASSERT_EQ(Fold()->files, 1);
  EXPECT_EQ(Figures()["all_time"]["transactions"], 10);
  EXPECT_THAT(MetricsFiles(), ::testing::IsEmpty());
}

// A fold that crashed after its transaction (before deleting) left a
// folding-* file the history already counts: readers skip it, the next fold
// deletes it without counting it again.
TEST_F(health_MetricsHistory, FileLeftByACrashAfterTheTransactionIsNotCountedAgain) {
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += Line(now_ - 9000, 1, 1) + "\n";
  std::string name = "folding-123-deadbeef.jsonl";
  WriteMetrics(name, lines);
  ASSERT_EQ(Fold()->files, 1);
  WriteMetrics(name, lines);  // as if the delete had not happened
  EXPECT_EQ(Figures()["all_time"]["transactions"], 10);
  Result<FoldResult> again = Fold();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->files, 0);
  EXPECT_THAT(MetricsFiles(), ::testing::IsEmpty());
  EXPECT_EQ(Figures()["all_time"]["transactions"], 10);
  // Its name leaves the history's list once the file is gone.
  ASSERT_TRUE(Fold().ok());
  EXPECT_THAT(ReadMetricsHistory(stores_.metrics, dir_.path())->folded, ::testing::IsEmpty());
}

TEST_F(health_MetricsHistory, ConcurrentFoldsCountEveryFileOnce) {
  std::vector<pid_t> pids = UnusedPids(40);
  ASSERT_EQ(pids.size(), 40u);
  for (pid_t pid : pids) {
    std::string lines;
    for (int i = 0; i < 25; ++i) lines += Line(now_ - 9000, 1, 1) + "\n";
    WriteMetrics(std::to_string(pid) + ".jsonl", lines);
  }
  std::atomic<int> folded{0};
  std::vector<std::thread> folders;
  for (int t = 0; t < 4; ++t) {
    folders.emplace_back([&] {
      registry::RegistryStores own(WithoutMetrics());  // as separate doctor processes would
      Result<FoldResult> result = FoldMetrics(own.metrics, dir_.path(), now_, kMetricsFoldAge);
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      folded += result->files;
    });
  }
  for (auto& thread : folders) thread.join();
  EXPECT_EQ(folded.load(), 40);
  EXPECT_EQ(Figures()["all_time"]["transactions"], 1000);
  EXPECT_THAT(MetricsFiles(), ::testing::IsEmpty());
}

// A damaged history (and no backup) is reported, never silently reset:
// readers still count the files, and folding refuses to write over it.
TEST_F(health_MetricsHistory, DamagedHistoryIsReportedAndNotOverwritten) {
  WriteOldFiles();
  WriteFile(Metrics() + "/history.json", "{\"tally\": garbage");
  json figures = Figures();
  EXPECT_EQ(figures["all_time"]["transactions"], 901);
  ASSERT_TRUE(figures.contains("history_error"));
  Result<FoldResult> folded = Fold();
  EXPECT_FALSE(folded.ok());
  EXPECT_EQ(ReadFile(Metrics() + "/history.json"), "{\"tally\": garbage");
  // Nothing was lost: every line is still counted, once.
  EXPECT_EQ(Figures()["all_time"]["transactions"], 901);
}

TEST(health_LatencyHistogram, PercentilesAreBucketUpperBoundsWithinFourPointFivePercent) {
  LatencyHistogram histogram;
  for (int i = 1; i <= 1000; ++i) histogram.Add(i * 0.01);  // 0.01 .. 10 ms
  EXPECT_EQ(histogram.count(), 1000u);
  EXPECT_EQ(histogram.max(), 10.0);
  for (double fraction : {0.5, 0.9, 0.99}) {
    double exact = std::ceil(fraction * 1000) * 0.01;
    EXPECT_GE(histogram.Percentile(fraction), exact - 1e-12) << fraction;
    EXPECT_LE(histogram.Percentile(fraction), exact * 1.045) << fraction;
  }
  EXPECT_EQ(histogram.Percentile(1.0), 10.0);
  LatencyHistogram round_trip = LatencyHistogram::FromJson(histogram.ToJson());
  EXPECT_EQ(round_trip.ToJson(), histogram.ToJson());
  histogram.Add(0);  // zero waits land in the first bucket
  EXPECT_EQ(histogram.Percentile(0.0001), 0.001);
}

}  // namespace
}  // namespace herd::health
