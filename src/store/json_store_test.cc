// Tests for JsonStore: every guarantee in json_store.h and the tests that
// registry-store.md requires of the store (the seed's four scenarios, lost
// updates, corruption and recovery, no-change and failed mutations, stats).
//
// Concurrency tests run real processes (fork) on real files in a temp dir;
// they start together through a Gate and report through pipes. The same
// lost-update harness is also run against the seed's algorithm
// (seed_algorithm_for_test.h) to prove that it detects lost updates.
#include "store/json_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/fault_file_system_for_test.h"
#include "store/file_lock.h"
#include "store/seed_algorithm_for_test.h"
#include "store/testing_for_test.h"
#include "util/clock.h"

namespace herd::store {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using namespace ::herd::store::testing;

// --- Files -------------------------------------------------------------------

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The file parsed without the store: what any other tool would see.
json ParseFile(const std::string& path) {
  return json::parse(ReadBytes(path), nullptr, false);
}

std::vector<std::string> FileNamesContaining(const std::string& directory,
                                             const std::string& part) {
  std::vector<std::string> names;
  for (const auto& [name, bytes] : DirectoryContents(directory)) {
    if (name.find(part) != std::string::npos) names.push_back(name);
  }
  return names;
}

struct stat StatOf(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) throw std::runtime_error("cannot stat " + path);
  return info;
}

// --- Mutations ---------------------------------------------------------------

// Adds one to document["counter"]; `produced` receives the new value.
Mutation Increment(uint64_t* produced = nullptr) {
  return [produced](json& document) -> Result<Decision> {
    uint64_t value = document.value("counter", uint64_t{0}) + 1;
    document["counter"] = value;
    if (produced != nullptr) *produced = value;
    return Decision::kCommit;
  };
}

// A task registry as the orchestrator keeps it: agents, plus the counts
// derived from them, recomputed at every change so they cannot drift.
void RecountAgents(json& registry) {
  int active = 0, completed = 0;
  for (const json& agent : registry["agents"]) {
    if (agent["status"] == "running") active++;
    if (agent["status"] == "completed") completed++;
  }
  registry["active_count"] = active;
  registry["completed_count"] = completed;
  registry["total_spawned"] = registry["agents"].size();
}

std::string AgentId(int index) {
  return "agent-" + std::to_string(index);
}

json TaskRegistry(int agent_count) {
  json registry = {{"task_id", "TASK-20251029-225319-45548b6a"},
                   {"description", "fix the registry races"},
                   {"agents", json::array()}};
  for (int i = 1; i <= agent_count; ++i) {
    registry["agents"].push_back({{"id", AgentId(i)},
                                  {"type", "investigator"},
                                  {"status", "running"},
                                  {"progress", 0},
                                  {"last_update", "2025-10-29T23:49:39Z"}});
  }
  RecountAgents(registry);
  return registry;
}

Mutation CreateTaskRegistry(int agent_count) {
  return [agent_count](json& document) -> Result<Decision> {
    document = TaskRegistry(agent_count);
    return Decision::kCommit;
  };
}

Mutation SetAgentStatus(std::string agent_id, std::string status) {
  return [agent_id, status](json& registry) -> Result<Decision> {
    for (json& agent : registry["agents"]) {
      if (agent["id"] == agent_id) {
        agent["status"] = status;
        RecountAgents(registry);
        return Decision::kCommit;
      }
    }
    return Status::NotFound("no agent " + agent_id);
  };
}

// Adds an agent, creating the registry if this is its first agent.
Mutation AddAgent(std::string agent_id) {
  return [agent_id](json& registry) -> Result<Decision> {
    if (!registry.contains("agents")) registry["agents"] = json::array();
    registry["agents"].push_back({{"id", agent_id}, {"status", "running"}});
    RecountAgents(registry);
    return Decision::kCommit;
  };
}

int CountAgentsWithStatus(const json& registry, const std::string& status) {
  return static_cast<int>(
      std::count_if(registry["agents"].begin(), registry["agents"].end(),
                    [&](const json& agent) { return agent["status"] == status; }));
}

// --- Processes ---------------------------------------------------------------

// The body of a child that runs one store update: "" on success, else throws.
std::string UpdateOrThrow(const JsonStore& store, const std::string& path,
                          const Mutation& mutation) {
  Status status = store.Update(path, mutation);
  if (!status.ok()) throw std::runtime_error(status.ToString());
  return "";
}

// Runs `body` in `count` processes that start together; returns their outcomes.
std::vector<ChildProcess::Outcome> RunTogether(int count,
                                               const std::function<std::string(int index)>& body) {
  Gate start;
  std::vector<std::unique_ptr<ChildProcess>> children;
  for (int index = 0; index < count; ++index) {
    children.push_back(std::make_unique<ChildProcess>([&start, &body, index] {
      start.Wait();
      return body(index);
    }));
  }
  start.Open();
  std::vector<ChildProcess::Outcome> outcomes;
  for (auto& child : children) outcomes.push_back(child->Finish());
  return outcomes;
}

void ExpectAllSucceeded(const std::vector<ChildProcess::Outcome>& outcomes) {
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i].exit_code, 0) << "process " << i << ": " << outcomes[i].output;
  }
}

// Forks a child that takes `path`'s lock, tells "H", and keeps it until
// `release` opens or `max_hold` passes.
std::unique_ptr<ChildProcess> StartLockHolder(const std::string& path, Gate& release,
                                              std::chrono::milliseconds max_hold) {
  return std::make_unique<ChildProcess>([&path, &release, max_hold] {
    Result<FileLock> lock = FileLock::Acquire(path + ".lock", 10s);
    if (!lock.ok()) throw std::runtime_error(lock.status().ToString());
    ChildProcess::Tell("H");
    release.WaitFor(max_hold);
    return std::string();
  });
}

class JsonStoreTest : public ::testing::Test {
 protected:
  // Commits `count` increments; the file then holds counter == sequence == count.
  void CommitIncrements(int count) {
    for (int i = 0; i < count; ++i) ASSERT_TRUE(store_.Update(path_, Increment()).ok());
  }

  TempDir dir_;
  std::string path_ = dir_.File("registry.json");
  JsonStore store_;
};

// --- Basic contract ----------------------------------------------------------

TEST_F(JsonStoreTest, FirstUpdateCreatesTheDocumentFromAnEmptyObject) {
  json seen;
  Status status = store_.Update(path_, [&seen](json& document) -> Result<Decision> {
    seen = document;
    document["name"] = "first";
    return Decision::kCommit;
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(seen, json::object());
  json stored = ParseFile(path_);
  EXPECT_EQ(stored["name"], "first");
  EXPECT_EQ(stored[kSequenceKey], 1u);
  auto names = DirectoryContents(dir_.path());
  EXPECT_EQ(names.size(), 2u) << "expected only the document and its lock file";
  EXPECT_TRUE(names.count("registry.json.lock"));
}

TEST_F(JsonStoreTest, EachCommitIncrementsTheSequenceByOne) {
  for (uint64_t expected = 1; expected <= 5; ++expected) {
    TransactionStats stats;
    ASSERT_TRUE(store_.Update(path_, Increment(), &stats).ok());
    EXPECT_EQ(stats.sequence, expected);
    Result<Snapshot> snapshot = store_.Read(path_);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    EXPECT_EQ(snapshot->sequence, expected);
    EXPECT_EQ(snapshot->document[kSequenceKey], expected);
    EXPECT_EQ(snapshot->document["counter"], expected);
    EXPECT_FALSE(snapshot->from_backup);
  }
}

TEST_F(JsonStoreTest, BackupHoldsThePreviousVersion) {
  CommitIncrements(2);
  std::string previous = ReadBytes(path_);
  CommitIncrements(1);
  EXPECT_EQ(ReadBytes(path_ + ".bak"), previous);
  EXPECT_EQ(ParseFile(path_)[kSequenceKey], 3u);
}

TEST_F(JsonStoreTest, ReadOfANeverCreatedDocumentIsNotFound) {
  Result<Snapshot> snapshot = store_.Read(path_);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_TRUE(snapshot.status().Is(Status::Code::kNotFound)) << snapshot.status().ToString();
}

TEST_F(JsonStoreTest, ReadTakesNoLock) {
  CommitIncrements(3);
  Gate release;
  auto holder = StartLockHolder(path_, release, 10s);
  ASSERT_EQ(holder->Hear(1), "H");

  auto start = MonotonicClock::now();
  Result<Snapshot> snapshot = store_.Read(path_);
  double elapsed_ms = MillisecondsSince(start);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->sequence, 3u);
  // The holder keeps the lock for 10 s: a Read that waited for it would
  // take that long. Seconds of margin: a slow machine never fails this.
  EXPECT_LT(elapsed_ms, 5000) << "Read waited for the lock";
  release.Open();
  EXPECT_EQ(holder->Finish().exit_code, 0);
}

TEST_F(JsonStoreTest, ReadOfOneStoreSeesEveryCommitOfAnother) {
  // Documents of identical size, committed back to back: whatever Read
  // caches must never hide a newer version.
  JsonStore reader;
  for (int i = 0; i < 100; ++i) {
    TransactionStats stats;
    ASSERT_TRUE(store_
                    .Update(
                        path_,
                        [i](json& document) -> Result<Decision> {
                          document["flag"] = i % 2;
                          return Decision::kCommit;
                        },
                        &stats)
                    .ok());
    Result<Snapshot> snapshot = reader.Read(path_);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    ASSERT_EQ(snapshot->sequence, stats.sequence) << "after commit " << i;
  }
}

TEST_F(JsonStoreTest, ReadIsNotFooledByAnInPlaceRewriteWithTheSameSizeAndTime) {
  CommitIncrements(2);
  ASSERT_EQ(store_.Read(path_)->document["counter"], 2);
  // Another tool rewrites the file in place: same inode, same size, and
  // the old modification time put back.
  struct stat before = StatOf(path_);
  std::string bytes = ReadBytes(path_);
  size_t digit = bytes.find("\"counter\": 2") + std::string("\"counter\": ").size();
  bytes[digit] = '7';
  {
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path_.c_str(), times, 0), 0);
  ASSERT_EQ(StatOf(path_).st_ino, before.st_ino);

  EXPECT_EQ(store_.Read(path_)->document["counter"], 7);
}

TEST_F(JsonStoreTest, SnapshotsAreIndependentCopies) {
  CommitIncrements(1);
  Result<Snapshot> first = store_.Read(path_);
  ASSERT_TRUE(first.ok());
  first->document["scribbled"] = true;
  Result<Snapshot> second = store_.Read(path_);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->document.contains("scribbled"));
}

TEST_F(JsonStoreTest, ReadSharedGivesOneParseForTheSameBytesAndANewOneForNewBytes) {
  CommitIncrements(1);
  Result<std::shared_ptr<const Snapshot>> first = store_.ReadShared(path_);
  Result<std::shared_ptr<const Snapshot>> again = store_.ReadShared(path_);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->get(), again->get()) << "unchanged bytes are parsed once";

  // A hand edit that keeps the sequence is still a new parse.
  std::string bytes = ReadBytes(path_);
  size_t digit = bytes.find("\"counter\": 1") + std::string("\"counter\": ").size();
  bytes[digit] = '5';
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  Result<std::shared_ptr<const Snapshot>> edited = store_.ReadShared(path_);
  ASSERT_TRUE(edited.ok());
  EXPECT_NE(edited->get(), first->get());
  EXPECT_EQ((*edited)->document["counter"], 5);
  EXPECT_EQ((*edited)->sequence, (*first)->sequence);
  EXPECT_EQ((*first)->document["counter"], 1) << "a shared parse never changes";
}

TEST_F(JsonStoreTest, NoChangeDecisionWritesNothing) {
  CommitIncrements(2);
  auto contents_before = DirectoryContents(dir_.path());
  struct stat before = StatOf(path_);

  TransactionStats stats;
  Status status = store_.Update(
      path_, [](json&) -> Result<Decision> { return Decision::kNoChange; }, &stats);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(stats.committed);
  EXPECT_EQ(stats.flushes, 0);
  EXPECT_EQ(stats.sequence, 2u);

  struct stat after = StatOf(path_);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before);
}

TEST_F(JsonStoreTest, NoChangeDecisionOnANeverCreatedDocumentCreatesNothing) {
  Status status =
      store_.Update(path_, [](json&) -> Result<Decision> { return Decision::kNoChange; });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_TRUE(store_.Read(path_).status().Is(Status::Code::kNotFound));
}

TEST_F(JsonStoreTest, MutationErrorIsReturnedAsIsAndNothingIsWritten) {
  CommitIncrements(2);
  auto contents_before = DirectoryContents(dir_.path());

  Status refused = Status::Refused("task TASK-1 already has 10 running agents (the limit)");
  TransactionStats stats;
  Status status = store_.Update(
      path_,
      [&refused](json& document) -> Result<Decision> {
        document["counter"] = 1000;  // changed, then abandoned
        return refused;
      },
      &stats);
  EXPECT_EQ(status.code(), refused.code());
  EXPECT_EQ(status.message(), refused.message());
  EXPECT_FALSE(stats.committed);
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before);
}

TEST_F(JsonStoreTest, MutationThatThrowsAbortsTheTransaction) {
  CommitIncrements(1);
  auto contents_before = DirectoryContents(dir_.path());
  Status status = store_.Update(path_, [](json& document) -> Result<Decision> {
    document["counter"] = "half-done";
    (void)document.at("missing");  // throws
    return Decision::kCommit;
  });
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path_), std::string::npos) << status.message();
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before);
}

TEST_F(JsonStoreTest, MutationThatMakesTheDocumentANonObjectIsRefused) {
  CommitIncrements(1);
  auto contents_before = DirectoryContents(dir_.path());
  Status status = store_.Update(path_, [](json& document) -> Result<Decision> {
    document = json::array({1, 2, 3});
    return Decision::kCommit;
  });
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.Is(Status::Code::kInvalidArgument)) << status.ToString();
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before);
}

TEST_F(JsonStoreTest, StatsDescribeADurableCommit) {
  CommitIncrements(4);
  TransactionStats stats;
  ASSERT_TRUE(store_.Update(path_, Increment(), &stats).ok());
  std::printf("lock_wait %.3f ms, hold %.3f ms, flushes %d\n", stats.lock_wait_ms, stats.hold_ms,
              stats.flushes);
  EXPECT_GE(stats.lock_wait_ms, 0);
  EXPECT_LT(stats.lock_wait_ms, 5000) << "nobody else holds the lock";
  EXPECT_GT(stats.hold_ms, 0);
  EXPECT_EQ(stats.flushes, 2) << "one fdatasync of the temp file and one directory fsync";
  EXPECT_TRUE(stats.committed);
  EXPECT_TRUE(stats.durable);
  EXPECT_FALSE(stats.recovered);
  EXPECT_TRUE(stats.recovery.empty());
  EXPECT_EQ(stats.sequence, 5u);
}

TEST_F(JsonStoreTest, StatsReportTheTimeSpentWaitingForTheLock) {
  CommitIncrements(1);
  Gate never_opened;
  auto holder = StartLockHolder(path_, never_opened, 100ms);
  ASSERT_EQ(holder->Hear(1), "H");
  TransactionStats stats;
  ASSERT_TRUE(store_.Update(path_, Increment(), &stats).ok());
  EXPECT_EQ(holder->Finish().exit_code, 0);
  std::printf("lock_wait %.3f ms behind a 100 ms holder\n", stats.lock_wait_ms);
  EXPECT_GT(stats.lock_wait_ms, 1);
  EXPECT_TRUE(stats.committed);
}

TEST_F(JsonStoreTest, ObserverIsToldOfEveryTransactionAfterTheLockIsReleased) {
  struct Observation {
    std::string path;
    TransactionStats stats;
    Status status;
    bool lock_was_free;
  };
  std::vector<Observation> observations;
  StoreOptions options;
  options.observer = [&observations](const std::string& path, const TransactionStats& stats,
                                     const Status& status) {
    bool lock_was_free = FileLock::Acquire(path + ".lock", 0ms).ok();
    observations.push_back({path, stats, status, lock_was_free});
  };
  JsonStore store(options);

  ASSERT_TRUE(store.Update(path_, Increment()).ok());
  Status refused =
      store.Update(path_, [](json&) -> Result<Decision> { return Status::Refused("not now"); });
  ASSERT_FALSE(refused.ok());

  ASSERT_EQ(observations.size(), 2u);
  EXPECT_EQ(observations[0].path, path_);
  EXPECT_TRUE(observations[0].status.ok());
  EXPECT_TRUE(observations[0].stats.committed);
  EXPECT_EQ(observations[0].stats.sequence, 1u);
  EXPECT_EQ(observations[1].status.message(), "not now");
  EXPECT_FALSE(observations[1].stats.committed);
  for (const Observation& observation : observations) EXPECT_TRUE(observation.lock_was_free);
}

TEST_F(JsonStoreTest, LockFileIsNeverRenamedOrDeleted) {
  CommitIncrements(1);
  std::string lock_path = path_ + ".lock";
  ino_t lock_inode = StatOf(lock_path).st_ino;
  ino_t document_inode = StatOf(path_).st_ino;
  for (int i = 0; i < 50; ++i) {
    CommitIncrements(1);
    ASSERT_EQ(StatOf(lock_path).st_ino, lock_inode) << "after update " << i;
    ino_t replaced = StatOf(path_).st_ino;
    EXPECT_NE(replaced, document_inode) << "the document must be replaced, not rewritten";
    document_inode = replaced;
  }
  EXPECT_NE(FileLock::ReadHolder(lock_path).find("pid=" + std::to_string(getpid())),
            std::string::npos);
}

TEST_F(JsonStoreTest, ThreadsOfOneProcessNeverLoseUpdates) {
  constexpr int kThreads = 4, kIncrements = 50;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) {
        if (!store_.Update(path_, Increment()).ok()) failures++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ParseFile(path_)["counter"], kThreads * kIncrements);
}

TEST(LockTimeoutFromEnvironment, ReadsMillisecondsAndFallsBackToTenSeconds) {
  const char* saved = std::getenv("HERD_LOCK_TIMEOUT_MS");
  std::string saved_value = saved ? saved : "";
  ::setenv("HERD_LOCK_TIMEOUT_MS", "1234", 1);
  EXPECT_EQ(LockTimeoutFromEnvironment(), 1234ms);
  for (const char* invalid : {"", "abc", "-5", "0", "12ms"}) {
    ::setenv("HERD_LOCK_TIMEOUT_MS", invalid, 1);
    EXPECT_EQ(LockTimeoutFromEnvironment(), 10000ms) << '"' << invalid << '"';
  }
  ::unsetenv("HERD_LOCK_TIMEOUT_MS");
  EXPECT_EQ(LockTimeoutFromEnvironment(), 10000ms);
  if (saved) ::setenv("HERD_LOCK_TIMEOUT_MS", saved_value.c_str(), 1);
}

TEST(WarnIfNetworkFilesystem, IsSilentOnALocalDisk) {
  TempDir dir;
  EXPECT_EQ(WarnIfNetworkFilesystem(dir.path()), "");
}

// --- The seed's four scenarios -----------------------------------------------

class SeedScenario : public JsonStoreTest {};

TEST_F(SeedScenario, FiveAgentsTerminatedConcurrentlyLeaveNoActiveAgent) {
  ASSERT_TRUE(store_.Update(path_, CreateTaskRegistry(5)).ok());
  auto outcomes = RunTogether(5, [this](int index) {
    return UpdateOrThrow(store_, path_, SetAgentStatus(AgentId(index + 1), "terminated"));
  });
  ExpectAllSucceeded(outcomes);

  json registry = ParseFile(path_);
  ASSERT_FALSE(registry.is_discarded()) << "the registry does not parse";
  EXPECT_EQ(registry["active_count"], 0);
  EXPECT_EQ(CountAgentsWithStatus(registry, "terminated"), 5);
  EXPECT_EQ(registry["total_spawned"], 5);
  EXPECT_EQ(registry[kSequenceKey], 6u);
}

TEST_F(SeedScenario, LockHeldTenSecondsMakesAnUpdateTimeOutAtItsDeadline) {
  ASSERT_TRUE(store_.Update(path_, CreateTaskRegistry(3)).ok());
  std::string registry_before = ReadBytes(path_);
  Gate release;
  auto holder = StartLockHolder(path_, release, 10s);
  ASSERT_EQ(holder->Hear(1), "H");

  constexpr auto kTimeout = 1500ms;
  StoreOptions options;
  options.lock_timeout = kTimeout;
  JsonStore impatient(options);
  TransactionStats stats;
  auto start = MonotonicClock::now();
  Status status = impatient.Update(path_, SetAgentStatus(AgentId(1), "terminated"), &stats);
  double elapsed_ms = MillisecondsSince(start);
  std::printf("timed out after %.2f ms (lock_wait_ms %.2f): overshoot %.2f ms\n%s\n", elapsed_ms,
              stats.lock_wait_ms, elapsed_ms - 1500.0, status.ToString().c_str());

  ASSERT_TRUE(status.Is(Status::Code::kTimeout)) << status.ToString();
  EXPECT_NE(status.message().find(path_), std::string::npos);
  EXPECT_NE(status.message().find("pid=" + std::to_string(holder->pid()) + " "), std::string::npos);
  EXPECT_GE(stats.lock_wait_ms, 1500);
  EXPECT_GE(elapsed_ms, 1500);
  // The overshoot is a figure (printed above; herd-bench-store measures
  // it); the behaviour is that the wait ends at the deadline, long before
  // the holder's 10 s.
  EXPECT_LT(elapsed_ms, 1500 + 5000);
  EXPECT_FALSE(stats.committed);
  EXPECT_EQ(ReadBytes(path_), registry_before);

  release.Open();
  EXPECT_EQ(holder->Finish().exit_code, 0);
  EXPECT_TRUE(FileLock::Acquire(path_ + ".lock", 0ms).ok())
      << "the lock was not free right after its holder exited";
  ASSERT_TRUE(impatient.Update(path_, SetAgentStatus(AgentId(1), "terminated"), &stats).ok());
  EXPECT_EQ(ParseFile(path_)["active_count"], 2);
}

TEST_F(SeedScenario, TenAgentsKilledConcurrentlyWithSlowWritesGiveExactCounts) {
  ASSERT_TRUE(store_.Update(path_, CreateTaskRegistry(10)).ok());
  auto outcomes = RunTogether(10, [this](int index) {
    FaultFileSystem slow_disk;
    slow_disk.SlowDownWrites(10ms);
    StoreOptions options;
    options.file_system = &slow_disk;
    JsonStore store(options);
    return UpdateOrThrow(store, path_, SetAgentStatus(AgentId(index + 1), "terminated"));
  });
  ExpectAllSucceeded(outcomes);

  json registry = ParseFile(path_);
  ASSERT_FALSE(registry.is_discarded());
  EXPECT_EQ(registry["active_count"], 0);
  EXPECT_EQ(registry["completed_count"], 0);
  EXPECT_EQ(registry["total_spawned"], 10);
  EXPECT_EQ(CountAgentsWithStatus(registry, "terminated"), 10);
  EXPECT_EQ(registry[kSequenceKey], 11u);
}

TEST_F(SeedScenario, TwoProcessesCreatingTheSameRegistryBothLand) {
  for (int round = 0; round < 20; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::string path = dir_.File("registry-" + std::to_string(round) + ".json");
    ExpectAllSucceeded(RunTogether(2, [this, &path](int index) {
      return UpdateOrThrow(store_, path, AddAgent(AgentId(index + 1)));
    }));

    json registry = ParseFile(path);
    ASSERT_FALSE(registry.is_discarded());
    std::vector<std::string> ids;
    for (const json& agent : registry["agents"]) ids.push_back(agent["id"]);
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(ids, (std::vector<std::string>{AgentId(1), AgentId(2)}));
    EXPECT_EQ(registry["total_spawned"], 2);
    EXPECT_EQ(registry[kSequenceKey], 2u);
  }
  // One file per registry (plus its lock and backup), no temp files left.
  EXPECT_EQ(DirectoryContents(dir_.path()).size(), 20u * 3);
  EXPECT_TRUE(FileNamesContaining(dir_.path(), ".tmp.").empty());
}

// --- Lost updates, and the same harness against the seed's algorithm ---------

// One read-modify-write of `path`, by herd's store or by the seed's code.
using Updater = std::function<Status(const std::string& path, const Mutation& mutation)>;

Status HerdUpdate(const std::string& path, const Mutation& mutation) {
  return JsonStore().Update(path, mutation);
}

struct IncrementRun {
  int processes = 0;
  int increments = 0;               // per process
  uint64_t final_counter = 0;       // in the file once every process is done
  std::vector<uint64_t> produced;   // the value each successful increment wrote
  std::vector<std::string> errors;  // failed increments and processes

  uint64_t expected() const { return static_cast<uint64_t>(processes) * increments; }
  // Increments that reported success but did not survive.
  int64_t lost() const {
    return static_cast<int64_t>(produced.size()) - static_cast<int64_t>(final_counter);
  }
};

// The body of each incrementing process: one line per increment, either the
// value it produced or "error ...".
//
// Each increment spends 200 us between reading the count and handing back
// the new one, as a real caller does (the seed's kill_real_agent signalled
// the agent's process between its read and its write). Under herd's lock
// this only costs time; without a lock across the transaction it is the
// window in which another process reads the same count.
constexpr std::chrono::microseconds kCallerWork{200};

std::string IncrementRepeatedly(const Updater& update, const std::string& path, int increments) {
  std::string report;
  for (int i = 0; i < increments; ++i) {
    uint64_t produced = 0;
    Mutation increment = Increment(&produced);
    Status status = update(path, [&increment](json& document) {
      std::this_thread::sleep_for(kCallerWork);
      return increment(document);
    });
    report += status.ok() ? std::to_string(produced) + "\n" : "error " + status.ToString() + "\n";
  }
  return report;
}

IncrementRun RunConcurrentIncrements(const Updater& update, int processes, int increments) {
  TempDir dir;
  std::string path = dir.File("counter.json");
  WriteBytes(path, std::string("{\"counter\": 0, \"") + kSequenceKey + "\": 0}\n");

  IncrementRun run;
  run.processes = processes;
  run.increments = increments;
  auto outcomes =
      RunTogether(processes, [&](int) { return IncrementRepeatedly(update, path, increments); });
  for (const auto& outcome : outcomes) {
    if (outcome.exit_code != 0) run.errors.push_back("a process failed: " + outcome.output);
    std::istringstream lines(outcome.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("error ", 0) == 0) {
        run.errors.push_back(line);
      } else {
        run.produced.push_back(std::stoull(line));
      }
    }
  }
  json document = ParseFile(path);
  if (document.is_discarded()) {
    run.errors.push_back("the final file does not parse");
  } else {
    run.final_counter = document.value("counter", uint64_t{0});
  }
  return run;
}

// What a correct store must never show; the seed's algorithm must show some.
std::vector<std::string> LostUpdateProblems(const IncrementRun& run) {
  std::vector<std::string> problems = run.errors;
  if (run.final_counter != run.expected()) {
    problems.push_back("final counter " + std::to_string(run.final_counter) + ", expected " +
                       std::to_string(run.expected()) + " (" + std::to_string(run.lost()) +
                       " successful increments lost)");
  }
  std::vector<uint64_t> sorted = run.produced;
  std::sort(sorted.begin(), sorted.end());
  size_t duplicates =
      sorted.size() -
      static_cast<size_t>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
  if (duplicates > 0) {
    problems.push_back(std::to_string(duplicates) +
                       " values were produced twice (two increments read the same count)");
  }
  std::vector<uint64_t> one_to_n(run.expected());
  for (size_t i = 0; i < one_to_n.size(); ++i) one_to_n[i] = i + 1;
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (sorted != one_to_n) problems.push_back("the produced values are not exactly {1..N*M}");
  return problems;
}

std::string Describe(const std::vector<std::string>& problems) {
  std::string text;
  for (size_t i = 0; i < problems.size() && i < 10; ++i) text += "\n  " + problems[i];
  return text;
}

class LostUpdates : public ::testing::TestWithParam<int> {
 protected:
  static constexpr int kIncrements = 200;
};

// N processes x M increments: the counter ends at exactly N*M, and the
// values the increments produced are exactly {1..N*M}, each once.
TEST_P(LostUpdates, NoIncrementIsLostOrDuplicated) {
  IncrementRun run = RunConcurrentIncrements(HerdUpdate, GetParam(), kIncrements);
  EXPECT_EQ(run.final_counter, run.expected());
  EXPECT_EQ(run.produced.size(), run.expected());
  EXPECT_EQ(run.lost(), 0);
  std::vector<std::string> problems = LostUpdateProblems(run);
  EXPECT_TRUE(problems.empty()) << Describe(problems);
}

INSTANTIATE_TEST_SUITE_P(Processes, LostUpdates, ::testing::Values(2, 16),
                         [](const auto& info) { return std::to_string(info.param) + "Processes"; });

TEST(LostUpdateHarness, DetectsTheSeedAlgorithmsLostUpdates) {
  // Test the test: the seed releases its lock between read and write, so
  // the checks above must catch it. One round has always lost most of its
  // updates when measured (about 3 in 4); the extra rounds only make a
  // chance miss practically impossible and cost nothing otherwise.
  constexpr int kMaxRounds = 5;
  int64_t lost = 0;
  std::vector<std::string> problems;
  for (int round = 1; round <= kMaxRounds && (lost == 0 || problems.empty()); ++round) {
    IncrementRun run = RunConcurrentIncrements(seed::Update, 4, 100);
    lost = run.lost();
    problems = LostUpdateProblems(run);
    std::printf(
        "seed round %d: %zu increments reported success, %llu survived, %lld lost, "
        "%zu errors\n",
        round, run.produced.size(), static_cast<unsigned long long>(run.final_counter),
        static_cast<long long>(lost), run.errors.size());
  }
  EXPECT_GT(lost, 0);
  EXPECT_FALSE(problems.empty());
}

// --- Corruption and recovery -------------------------------------------------

// kDeeplyNested: a hand edit that nests 100,000 levels (valid JSON that
// would overflow the stack once copied).
enum class Damage { kTruncated, kGarbage, kEmpty, kDeleted, kEmptyObject, kDeeplyNested };

std::string DamageName(Damage damage) {
  switch (damage) {
    case Damage::kTruncated: return "Truncated";
    case Damage::kGarbage: return "Garbage";
    case Damage::kEmpty: return "Empty";
    case Damage::kDeleted: return "Deleted";
    case Damage::kEmptyObject: return "EmptyObject";
    case Damage::kDeeplyNested: return "DeeplyNested";
  }
  return "?";
}

void PrintTo(Damage damage, std::ostream* out) {
  *out << DamageName(damage);
}

void Inflict(Damage damage, const std::string& path) {
  switch (damage) {
    case Damage::kTruncated: {
      std::string bytes = ReadBytes(path);
      WriteBytes(path, bytes.substr(0, bytes.size() / 2));
      break;
    }
    case Damage::kGarbage: WriteBytes(path, std::string("\x00\xff\x13garbage{{[", 13)); break;
    case Damage::kEmpty: WriteBytes(path, ""); break;
    case Damage::kDeleted: std::filesystem::remove(path); break;
    case Damage::kEmptyObject: WriteBytes(path, "{}\n"); break;
    case Damage::kDeeplyNested:
      WriteBytes(path, std::string("{\"") + kSequenceKey + "\": 9, \"x\": " +
                           std::string(100000, '[') + std::string(100000, ']') + "}\n");
      break;
  }
}

class Corruption : public JsonStoreTest, public ::testing::WithParamInterface<Damage> {
 protected:
  // Three commits: the file holds sequence 3, the backup sequence 2.
  void CommitThreeVersions() {
    CommitIncrements(3);
    ASSERT_EQ(ParseFile(path_ + ".bak")[kSequenceKey], 2u);
  }
  bool DeletesTheFile() const { return GetParam() == Damage::kDeleted; }
};

TEST_P(Corruption, UpdateRestoresFromTheBackupAndQuarantinesTheBadFile) {
  CommitThreeVersions();
  Inflict(GetParam(), path_);
  std::string damaged = ReadBytes(path_);

  TransactionStats stats;
  Status status = store_.Update(path_, Increment(), &stats);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(stats.recovered);
  EXPECT_NE(stats.recovery.find(".bak"), std::string::npos) << stats.recovery;
  std::printf("recovery: %s\n", stats.recovery.c_str());
  EXPECT_EQ(stats.sequence, 4u)
      << "the sequence continues from the backup's (2), skipping the lost version's (3)";

  json restored = ParseFile(path_);
  EXPECT_EQ(restored["counter"], 3) << "the backup's counter (2) plus this increment";
  EXPECT_EQ(restored[kSequenceKey], 4u);

  std::vector<std::string> quarantined = FileNamesContaining(dir_.path(), ".corrupt.");
  if (DeletesTheFile()) {
    EXPECT_TRUE(quarantined.empty());
  } else {
    ASSERT_EQ(quarantined.size(), 1u);
    EXPECT_EQ(quarantined[0].rfind("registry.json.corrupt.", 0), 0u) << quarantined[0];
    EXPECT_EQ(ReadBytes(dir_.File(quarantined[0])), damaged);
  }

  TransactionStats next;
  ASSERT_TRUE(store_.Update(path_, Increment(), &next).ok());
  EXPECT_FALSE(next.recovered);
  EXPECT_EQ(next.sequence, 5u);
}

TEST_P(Corruption, ReadReturnsTheBackupWithoutWritingAnything) {
  CommitThreeVersions();
  Inflict(GetParam(), path_);
  auto contents_before = DirectoryContents(dir_.path());

  Result<Snapshot> snapshot = store_.Read(path_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_TRUE(snapshot->from_backup);
  EXPECT_EQ(snapshot->sequence, 2u);
  EXPECT_EQ(snapshot->document, ParseFile(path_ + ".bak"));
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before);
}

// A damaged document whose first version had no backup yet. (A deleted one
// is indistinguishable from one never created, and starts anew.)
class CorruptionWithoutBackup : public Corruption {};

TEST_P(CorruptionWithoutBackup, UpdateFailsAndLeavesTheFileInPlace) {
  CommitIncrements(1);  // the first version has no backup
  ASSERT_FALSE(std::filesystem::exists(path_ + ".bak"));
  Inflict(GetParam(), path_);
  auto contents_before = DirectoryContents(dir_.path());

  TransactionStats stats;
  Status status = store_.Update(path_, Increment(), &stats);
  ASSERT_TRUE(status.Is(Status::Code::kCorruption)) << status.ToString();
  EXPECT_NE(status.message().find(path_), std::string::npos) << status.message();
  EXPECT_FALSE(stats.committed);
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before) << "never a silent reset";
}

TEST_F(JsonStoreTest, DeeplyNestedDocumentIsCorruptionThatSaysWhy) {
  CommitIncrements(1);
  Inflict(Damage::kDeeplyNested, path_);
  Result<Snapshot> snapshot = store_.Read(path_);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_TRUE(snapshot.status().Is(Status::Code::kCorruption)) << snapshot.status().ToString();
  EXPECT_NE(snapshot.status().message().find(path_), std::string::npos);
  EXPECT_NE(snapshot.status().message().find("nested deeper than 512 levels"), std::string::npos)
      << snapshot.status().message();
}

TEST_P(CorruptionWithoutBackup, ReadReportsCorruption) {
  CommitIncrements(1);
  Inflict(GetParam(), path_);
  Result<Snapshot> snapshot = store_.Read(path_);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_TRUE(snapshot.status().Is(Status::Code::kCorruption)) << snapshot.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Damages, Corruption,
                         ::testing::Values(Damage::kTruncated, Damage::kGarbage, Damage::kEmpty,
                                           Damage::kDeleted, Damage::kEmptyObject,
                                           Damage::kDeeplyNested),
                         [](const auto& info) { return DamageName(info.param); });

INSTANTIATE_TEST_SUITE_P(Damages, CorruptionWithoutBackup,
                         ::testing::Values(Damage::kTruncated, Damage::kGarbage, Damage::kEmpty,
                                           Damage::kEmptyObject, Damage::kDeeplyNested),
                         [](const auto& info) { return DamageName(info.param); });

// Two losses in a row: the first restoring commit becomes the backup, so
// the second restores it and skips past its number too. No number is ever
// written twice.
TEST_F(JsonStoreTest, RepeatedLossesNeverReuseASequenceNumber) {
  CommitIncrements(3);  // file 3, backup 2
  std::set<uint64_t> written = {1, 2, 3};
  for (int loss = 0; loss < 3; ++loss) {
    Inflict(loss % 2 ? Damage::kGarbage : Damage::kDeleted, path_);
    TransactionStats stats;
    ASSERT_TRUE(store_.Update(path_, Increment(), &stats).ok());
    EXPECT_TRUE(stats.recovered);
    EXPECT_TRUE(written.insert(stats.sequence).second)
        << "sequence " << stats.sequence << " was written before (loss " << loss << ")";
    EXPECT_EQ(ParseFile(path_ + ".bak"), ParseFile(path_)) << "the restoring commit is the backup";
  }
  TransactionStats normal;
  ASSERT_TRUE(store_.Update(path_, Increment(), &normal).ok());
  EXPECT_FALSE(normal.recovered);
  EXPECT_TRUE(written.insert(normal.sequence).second);
}

TEST_F(JsonStoreTest, RecoveryIsCommittedEvenWhenTheMutationChangesNothing) {
  CommitIncrements(3);
  Inflict(Damage::kGarbage, path_);
  TransactionStats stats;
  Status status = store_.Update(
      path_, [](json&) -> Result<Decision> { return Decision::kNoChange; }, &stats);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(stats.recovered);
  EXPECT_TRUE(stats.committed);
  EXPECT_EQ(ParseFile(path_)[kSequenceKey], 4u) << "the backup's 2, skipping the lost 3";
  EXPECT_EQ(ParseFile(path_)["counter"], 2);
}

TEST_F(JsonStoreTest, DamagedFileWithADamagedBackupIsLeftInPlace) {
  CommitIncrements(3);
  Inflict(Damage::kGarbage, path_);
  Inflict(Damage::kTruncated, path_ + ".bak");
  auto contents_before = DirectoryContents(dir_.path());
  Status status = store_.Update(path_, Increment());
  ASSERT_TRUE(status.Is(Status::Code::kCorruption)) << status.ToString();
  EXPECT_EQ(DirectoryContents(dir_.path()), contents_before);
  EXPECT_TRUE(store_.Read(path_).status().Is(Status::Code::kCorruption));
}

TEST_F(JsonStoreTest, DocumentRejectedByTheValidatorIsTreatedAsCorrupt) {
  auto require_agents = [](const json& document) {
    HERD_RETURN_IF_ERROR(RequireSequence(document));
    if (!document.contains("agents") || !document["agents"].is_array()) {
      return Status::Corruption("the registry has no \"agents\" list");
    }
    return Status::Ok();
  };
  StoreOptions options;
  options.validator = require_agents;
  JsonStore store(options);
  ASSERT_TRUE(store.Update(path_, CreateTaskRegistry(2)).ok());
  ASSERT_TRUE(store.Update(path_, SetAgentStatus(AgentId(1), "completed")).ok());
  // Valid JSON with a sequence, but not a registry.
  WriteBytes(path_, std::string("{\"") + kSequenceKey + "\": 9}\n");

  TransactionStats stats;
  ASSERT_TRUE(store.Update(path_, SetAgentStatus(AgentId(2), "completed"), &stats).ok());
  EXPECT_TRUE(stats.recovered);
  EXPECT_NE(stats.recovery.find("agents"), std::string::npos) << stats.recovery;
  json registry = ParseFile(path_);
  EXPECT_EQ(registry["active_count"], 1) << "restored the first version, then applied this update";
  EXPECT_EQ(FileNamesContaining(dir_.path(), ".corrupt.").size(), 1u);
}

// rename(2) replaces an existing file: quarantine names must be unique, or a
// second recovery within the same second would destroy the first evidence.
TEST_F(JsonStoreTest, RepeatedRecoveriesKeepEveryQuarantinedFile) {
  CommitIncrements(3);
  for (int i = 0; i < 2; ++i) {
    WriteBytes(path_, "damage number " + std::to_string(i));
    TransactionStats stats;
    ASSERT_TRUE(store_.Update(path_, Increment(), &stats).ok());
    ASSERT_TRUE(stats.recovered);
  }
  EXPECT_EQ(FileNamesContaining(dir_.path(), ".corrupt.").size(), 2u)
      << "the second quarantine overwrote the first";
}

}  // namespace
}  // namespace herd::store
