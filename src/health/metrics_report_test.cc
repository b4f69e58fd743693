// Lock figures aggregated from per-process metrics files: written by real
// transactions, and by hand for exact percentiles and damaged lines.
#include "health/metrics_report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "health/findings.h"
#include "health/testing_for_test.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using namespace herd::health::testing;

std::string Line(double t, double wait_ms, double hold_ms, const std::string& outcome = "ok",
                 bool recovered = false) {
  return json{{"t", t},
              {"file", "TASK-20260101-000000-00000000/AGENT_REGISTRY.json"},
              {"wait_ms", wait_ms},
              {"hold_ms", hold_ms},
              {"flushes", 2},
              {"committed", outcome == "ok"},
              {"recovered", recovered},
              {"outcome", outcome}}
      .dump();
}

TEST(health_LockMetrics, PercentilesOverTheLastHourAndSinceCreation) {
  TempDir dir;
  std::string metrics = dir.path() + "/metrics";
  std::filesystem::create_directories(metrics);
  double now = 1'800'000'000;
  std::string recent, old;
  // Two files, as two processes would write them: waits 1..100 ms this hour.
  for (int i = 1; i <= 100; ++i) {
    (i % 2 ? recent : old) += Line(now - 60, i, i / 10.0) + "\n";
  }
  // Older than an hour: a slow wait, a timeout and a recovery.
  old += Line(now - 7200, 5000, 1, "timeout") + "\n";
  old += Line(now - 7200, 2, 3, "ok", /*recovered=*/true) + "\n";
  old += Line(now - 7200, 1, 1, "corruption") + "\n";
  WriteFile(metrics + "/100.jsonl", recent);
  WriteFile(metrics + "/200.jsonl", old);

  json figures = LockMetrics(registry::RegistryStores().metrics, dir.path(), now);
  EXPECT_EQ(figures["files"], 2);
  EXPECT_EQ(figures["unreadable_lines"], 0);
  const json& hour = figures["last_hour"];
  EXPECT_EQ(hour["transactions"], 100);
  EXPECT_EQ(hour["lock_wait_ms"]["p50"], 50.0);
  EXPECT_EQ(hour["lock_wait_ms"]["p95"], 95.0);
  EXPECT_EQ(hour["lock_wait_ms"]["p99"], 99.0);
  EXPECT_EQ(hour["lock_wait_ms"]["max"], 100.0);
  EXPECT_EQ(hour["hold_ms"]["p50"], 5.0);
  EXPECT_EQ(hour["hold_ms"]["p99"], 9.9);
  EXPECT_EQ(hour["timeouts"], 0);
  EXPECT_EQ(hour["flushes_per_transaction"], 2.0);
  const json& all = figures["all_time"];
  EXPECT_EQ(all["transactions"], 103);
  EXPECT_EQ(all["lock_wait_ms"]["max"], 5000.0);
  EXPECT_EQ(all["timeouts"], 1);
  EXPECT_EQ(all["corruption_recoveries"], 1);
  EXPECT_EQ(all["corruption_failures"], 1);
  EXPECT_EQ(all["committed"], 101);
  EXPECT_EQ(all["first"], FormatIso8601(now - 7200));
}

TEST(health_LockMetrics, PartialLastLineAndGarbageAreSkippedNotFatal) {
  TempDir dir;
  std::string metrics = dir.path() + "/metrics";
  std::filesystem::create_directories(metrics);
  double now = NowUnixSeconds();
  std::string whole = Line(now, 1, 1);
  WriteFile(metrics + "/1.jsonl", whole + "\n" + "garbage line\n" + "{\"t\":1}\n" +
                                      whole.substr(0, whole.size() / 2));  // being written
  WriteFile(metrics + "/notes.txt", "not a metrics file\n");
  json figures = LockMetrics(registry::RegistryStores().metrics, dir.path(), now);
  EXPECT_EQ(figures["all_time"]["transactions"], 1);
  EXPECT_EQ(figures["unreadable_lines"], 2);
  EXPECT_EQ(figures["files"], 1);
}

TEST(health_LockMetrics, EmptyOrMissingDirectoryGivesZeroes) {
  TempDir dir;
  json figures = LockMetrics(registry::RegistryStores().metrics, dir.path(), NowUnixSeconds());
  EXPECT_EQ(figures["all_time"]["transactions"], 0);
  EXPECT_EQ(figures["last_hour"]["lock_wait_ms"]["p99"], 0.0);
  EXPECT_TRUE(figures["all_time"]["first"].is_null());
}

TEST(health_LockMetrics, CountsRealTransactionsOfEveryProcess) {
  TempDir dir;
  registry::RegistryStores stores;
  registry::Workspace workspace(dir.path() + "/ws");
  ASSERT_TRUE(workspace.CreateTaskDirectories("TASK-20260101-000000-00000001").ok());
  std::string path = workspace.TaskRegistryPath("TASK-20260101-000000-00000001");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(stores.tasks
                    .Update(path,
                            [&](json& task) -> Result<store::Decision> {
                              task["task_id"] = "TASK-20260101-000000-00000001";
                              task["agents"] = json::array();
                              task["n"] = i;
                              return store::Decision::kCommit;
                            })
                    .ok());
  }
  // A deleted registry: the next transaction recovers it from the backup.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ASSERT_TRUE(
      stores.tasks
          .Update(path, [](json&) -> Result<store::Decision> { return store::Decision::kNoChange; })
          .ok());
  json figures = LockMetrics(stores.metrics, workspace.base(), NowUnixSeconds());
  EXPECT_EQ(figures["last_hour"]["transactions"], 6);
  EXPECT_EQ(figures["last_hour"]["committed"], 6);
  EXPECT_EQ(figures["last_hour"]["corruption_recoveries"], 1);
  EXPECT_GT(figures["last_hour"]["hold_ms"]["max"].get<double>(), 0);
}

}  // namespace
}  // namespace herd::health
