// DirectoryWatch and StopSignal on a real directory: a rename into it (how
// the stores commit) wakes a wait, an append wakes a watch for growing
// files, changes made before a wait are not lost, a burst wakes one wait,
// the deadline is honoured (never early), and a StopSignal wakes a blocked
// wait from another thread. Deadlines are generous: a wait that takes that
// long has failed.
#include "util/directory_watch.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "util/testing_for_test.h"

namespace herd {
namespace {

using std::chrono::milliseconds;
using testing_util::TempDir;
using testing_util::WriteFile;

constexpr std::chrono::seconds kGenerous{30};

class DirectoryWatchTest : public ::testing::Test {
 protected:
  DirectoryWatch Watch(WatchFor what) {
    Result<DirectoryWatch> watch = DirectoryWatch::Open();
    EXPECT_TRUE(watch.ok()) << watch.status().ToString();
    Status added = watch->Add(directory_.path(), what);
    EXPECT_TRUE(added.ok()) << added.ToString();
    return std::move(watch).value();
  }

  // Writes `name` beside its final place and renames it there, as
  // store::JsonStore commits a document.
  void ReplaceFile(const std::string& name, const std::string& contents) {
    std::string temp = elsewhere_.path() + "/" + name + ".tmp";
    WriteFile(temp, contents);
    ASSERT_EQ(::rename(temp.c_str(), (directory_.path() + "/" + name).c_str()), 0);
  }

  static Wake WaitFor(DirectoryWatch& watch, MonotonicClock::duration timeout,
                      const StopSignal* stop = nullptr) {
    Result<Wake> wake = watch.WaitUntil(MonotonicClock::now() + timeout, stop);
    EXPECT_TRUE(wake.ok()) << wake.status().ToString();
    return wake.ok() ? *wake : Wake::kDeadline;
  }

  TempDir directory_;
  TempDir elsewhere_;  // the same file system: /tmp
};

TEST_F(DirectoryWatchTest, RenameIntoTheDirectoryWakesABlockedWait) {
  DirectoryWatch watch = Watch(WatchFor::kReplacedFiles);
  std::thread writer([&] { ReplaceFile("AGENT_REGISTRY.json", "{}"); });
  Wake wake = WaitFor(watch, kGenerous);
  writer.join();
  EXPECT_EQ(wake, Wake::kChanged);
}

TEST_F(DirectoryWatchTest, ChangeBeforeTheWaitIsNotLost) {
  DirectoryWatch watch = Watch(WatchFor::kReplacedFiles);
  ReplaceFile("AGENT_REGISTRY.json", "{}");  // after the watch, before the wait
  EXPECT_EQ(WaitFor(watch, kGenerous), Wake::kChanged);
}

TEST_F(DirectoryWatchTest, BurstOfChangesWakesOneWait) {
  DirectoryWatch watch = Watch(WatchFor::kReplacedFiles);
  for (int i = 0; i < 20; ++i) ReplaceFile("AGENT_REGISTRY.json", std::to_string(i));
  EXPECT_EQ(WaitFor(watch, kGenerous), Wake::kChanged);
  EXPECT_EQ(WaitFor(watch, milliseconds(100)), Wake::kDeadline) << "the burst was consumed";
}

TEST_F(DirectoryWatchTest, AppendWakesAWatchForGrowingFiles) {
  WriteFile(directory_.path() + "/journal.jsonl", "one\n");
  DirectoryWatch watch = Watch(WatchFor::kGrowingFiles);
  std::ofstream(directory_.path() + "/journal.jsonl", std::ios::app) << "two\n";
  EXPECT_EQ(WaitFor(watch, kGenerous), Wake::kChanged);
}

TEST_F(DirectoryWatchTest, ReturnsAtTheDeadlineNeverBefore) {
  DirectoryWatch watch = Watch(WatchFor::kReplacedFiles);
  auto deadline = MonotonicClock::now() + milliseconds(150);
  Result<Wake> wake = watch.WaitUntil(deadline);
  ASSERT_TRUE(wake.ok()) << wake.status().ToString();
  EXPECT_EQ(*wake, Wake::kDeadline);
  EXPECT_GE(MonotonicClock::now(), deadline);
}

TEST_F(DirectoryWatchTest, StopFromAnotherThreadWakesAWaitWithoutDeadline) {
  DirectoryWatch watch = Watch(WatchFor::kReplacedFiles);
  Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
  ASSERT_TRUE(stop.ok()) << stop.status().ToString();
  std::thread canceller([&] { (*stop)->Stop(); });
  // No deadline: only the stop can end this wait (the test's own timeout
  // catches a failure).
  Result<Wake> wake = watch.WaitUntil(MonotonicClock::time_point::max(), stop->get());
  canceller.join();
  ASSERT_TRUE(wake.ok()) << wake.status().ToString();
  EXPECT_EQ(*wake, Wake::kStopped);
  EXPECT_TRUE((*stop)->stopped());
}

TEST_F(DirectoryWatchTest, StopWinsOverAPendingChangeAndStays) {
  DirectoryWatch watch = Watch(WatchFor::kReplacedFiles);
  Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
  ASSERT_TRUE(stop.ok());
  ReplaceFile("AGENT_REGISTRY.json", "{}");
  (*stop)->Stop();
  (*stop)->Stop();  // idempotent
  EXPECT_EQ(WaitFor(watch, kGenerous, stop->get()), Wake::kStopped);
  EXPECT_EQ(WaitFor(watch, kGenerous, stop->get()), Wake::kStopped);
}

TEST_F(DirectoryWatchTest, MissingDirectoryIsNotFound) {
  Result<DirectoryWatch> watch = DirectoryWatch::Open();
  ASSERT_TRUE(watch.ok());
  Status added = watch->Add(directory_.path() + "/missing", WatchFor::kReplacedFiles);
  EXPECT_TRUE(added.Is(Status::Code::kNotFound)) << added.ToString();
  EXPECT_NE(added.message().find("/missing"), std::string::npos) << added.message();
}

}  // namespace
}  // namespace herd
