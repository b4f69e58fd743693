// Crash and concurrency tests with real processes: writers killed with
// SIGKILL at random moments, and readers that take no lock while writers
// replace the file. After every kill the file must parse, its sequence must
// not go backwards and the lock must be free at once; a lock-free reader
// must never see a torn file. The reader check is also run against the
// seed's in-place writes to prove that it catches torn files.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/file_lock.h"
#include "store/json_store.h"
#include "store/seed_algorithm_for_test.h"
#include "store/testing_for_test.h"
#include "util/clock.h"

namespace herd::store {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using namespace ::herd::store::testing;

// The sequence of the file at `path` parsed without the store, or an error
// text: what any other tool reading the registry would get.
Result<uint64_t> RawSequence(const std::string& path) {
  std::string bytes = ReadBytes(path);
  json document = json::parse(bytes, nullptr, false);
  if (document.is_discarded()) {
    return Status::Corruption(path + " does not parse (" + std::to_string(bytes.size()) +
                              " bytes)");
  }
  if (!document.is_object() || !document.contains(kSequenceKey)) {
    return Status::Corruption(path + " has no " + kSequenceKey);
  }
  return document[kSequenceKey].get<uint64_t>();
}

// A registry of realistic size (20 agents, about 10 KB), so that a replace
// writes real data.
json RealisticRegistry() {
  json registry = {{"task_id", "TASK-20251029-225319-45548b6a"},
                   {"counter", 0},
                   {kSequenceKey, 0},
                   {"agents", json::array()}};
  for (int i = 0; i < 20; ++i) {
    registry["agents"].push_back(
        {{"id", "agent-" + std::to_string(i)},
         {"type", "investigator"},
         {"status", "running"},
         {"progress", 0},
         {"prompt", std::string(300, 'a' + static_cast<char>(i % 26))},
         {"log_path", "/workspace/TASK-1/logs/agent-" + std::to_string(i) + ".jsonl"}});
  }
  return registry;
}

// One registry change: the counter, and one agent's progress.
Result<Decision> Touch(json& registry) {
  uint64_t counter = registry.value("counter", uint64_t{0}) + 1;
  registry["counter"] = counter;
  registry["agents"][counter % 20]["progress"] = counter % 101;
  return Decision::kCommit;
}

// One read-modify-write, by herd's store or by the seed's code.
using Updater = std::function<Status(const std::string& path, const Mutation& mutation)>;

Status HerdUpdate(const std::string& path, const Mutation& mutation) {
  return JsonStore().Update(path, mutation);
}

// Creates `path` holding RealisticRegistry().
void CreateRegistry(const std::string& path) {
  json registry = RealisticRegistry();
  Status status = JsonStore().Update(path, [&registry](json& document) -> Result<Decision> {
    document = registry;
    return Decision::kCommit;
  });
  if (!status.ok()) throw std::runtime_error(status.ToString());
}

// "key=value key=value" reports from child processes.
uint64_t Field(const std::string& report, const std::string& key) {
  size_t at = report.find(key + "=");
  if (at == std::string::npos) throw std::runtime_error("no " + key + " in: " + report);
  return std::stoull(report.substr(at + key.size() + 1));
}

// --- SIGKILL loop --------------------------------------------------------------

// What must hold after a writer died at any instant; "" if all of it does.
std::string CheckAfterKill(const std::string& path, uint64_t* last_sequence) {
  Result<Snapshot> snapshot = JsonStore().Read(path);
  if (!snapshot.ok()) return "Read failed: " + snapshot.status().ToString();
  if (snapshot->from_backup) return "Read had to fall back to the backup";
  Result<uint64_t> raw = RawSequence(path);
  if (!raw.ok()) return raw.status().ToString();
  if (*raw < *last_sequence) {
    return "the sequence went back from " + std::to_string(*last_sequence) + " to " +
           std::to_string(*raw);
  }
  *last_sequence = *raw;
  if (std::filesystem::exists(path + ".bak")) {
    Result<uint64_t> backup = RawSequence(path + ".bak");
    if (!backup.ok()) return "backup: " + backup.status().ToString();
    if (*backup > *raw) return "the backup is newer than the file";
  }
  // A zero timeout fails unless the lock is free right now.
  Result<FileLock> lock = FileLock::Acquire(path + ".lock", 0ms);
  if (!lock.ok()) return "the lock was not free at once: " + lock.status().ToString();
  return "";
}

// When a writer tells the parent it is running, which starts the random
// delay before it is killed.
enum class StartSignal { kBeforeFirstUpdate, kAfterFirstCommit };

// Forks a writer that updates `path` in a loop until it is killed.
std::unique_ptr<ChildProcess> StartEndlessWriter(const std::string& path, StartSignal signal) {
  return std::make_unique<ChildProcess>([&path, signal] {
    JsonStore store;
    if (signal == StartSignal::kBeforeFirstUpdate) ChildProcess::Tell("S");
    Status first = store.Update(path, Touch);
    if (!first.ok()) throw std::runtime_error(first.ToString());
    if (signal == StartSignal::kAfterFirstCommit) ChildProcess::Tell("S");
    for (;;) (void)store.Update(path, Touch);
    return std::string();
  });
}

TEST(SigkillLoop, KilledWriterAlwaysLeavesAWholeFileAndAFreeLock) {
  // Half the writers are killed 0-3 ms after they start, anywhere in their
  // first update; the other half 0-3 ms after their first commit, so the
  // sequence must move forward in at least those iterations whatever the
  // speed of the disk.
  constexpr int kIterations = 400;
  TempDir dir;
  std::string path = dir.File("registry.json");
  CreateRegistry(path);

  unsigned seed = std::random_device{}();
  std::printf("random seed %u\n", seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_us(0, 3000);

  uint64_t last_sequence = 1;
  int advanced = 0;
  auto start = MonotonicClock::now();
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    StartSignal signal =
        iteration % 2 == 0 ? StartSignal::kBeforeFirstUpdate : StartSignal::kAfterFirstCommit;
    auto writer = StartEndlessWriter(path, signal);
    ASSERT_EQ(writer->Hear(1), "S") << "the writer failed: " << writer->Finish().output;
    // The randomness of the test, not a wait for an event.
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
    ASSERT_EQ(writer->Kill().signal, SIGKILL);

    uint64_t before = last_sequence;
    std::string problem = CheckAfterKill(path, &last_sequence);
    ASSERT_EQ(problem, "") << "after kill " << iteration;
    if (last_sequence > before) {
      advanced++;
    } else {
      ASSERT_EQ(signal, StartSignal::kBeforeFirstUpdate) << "a committed update vanished";
    }
  }
  size_t leftover_temps = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".corrupt."), std::string::npos) << "a kill needed a recovery: " << name;
    if (name.find(".tmp.") != std::string::npos) leftover_temps++;
  }
  std::printf(
      "%d kills in %.0f ms; the sequence went 1 -> %llu and advanced in %d of them; "
      "%zu temp files of killed writers left behind\n",
      kIterations, MillisecondsSince(start), static_cast<unsigned long long>(last_sequence),
      advanced, leftover_temps);

  TransactionStats stats;
  ASSERT_TRUE(JsonStore().Update(path, Touch, &stats).ok());
  EXPECT_FALSE(stats.recovered);
  EXPECT_EQ(stats.sequence, last_sequence + 1);
}

// --- Lock-free readers -----------------------------------------------------------

// A reader: Read() and a raw parse of the file, in a loop until `stop`
// opens. Counts reads that fail or fall back to the backup, and sequences
// that go backwards (Read and raw parses interleaved, in time order).
std::string ReadUntilStopped(const std::string& path, Gate& stop) {
  JsonStore store;
  uint64_t reads = 0, failures = 0, regressions = 0, versions = 0, last = 0;
  std::string first_failure = "none";
  auto observe = [&](const Status& status, uint64_t sequence) {
    if (!status.ok()) {
      if (failures++ == 0) first_failure = status.ToString();
      return;
    }
    if (sequence < last) regressions++;
    if (sequence != last) versions++;
    last = sequence;
  };
  while (!stop.IsOpen()) {
    Result<Snapshot> snapshot = store.Read(path);
    if (snapshot.ok() && snapshot->from_backup) {
      observe(Status::Corruption("Read fell back to the backup"), 0);
    } else {
      observe(snapshot.status(), snapshot.ok() ? snapshot->sequence : 0);
    }
    Result<uint64_t> raw = RawSequence(path);
    observe(raw.status(), raw.ok() ? *raw : 0);
    reads += 2;
  }
  return "reads=" + std::to_string(reads) + " failures=" + std::to_string(failures) +
         " regressions=" + std::to_string(regressions) + " versions=" + std::to_string(versions) +
         " first_failure: " + first_failure;
}

// A writer: `update` with Touch in a loop for `duration`.
std::string WriteFor(const Updater& update, const std::string& path,
                     std::chrono::milliseconds duration) {
  uint64_t commits = 0;
  for (auto end = MonotonicClock::now() + duration; MonotonicClock::now() < end;) {
    Status status = update(path, Touch);
    if (!status.ok()) throw std::runtime_error(status.ToString());
    commits++;
  }
  return "commits=" + std::to_string(commits);
}

struct ReaderTotals {
  uint64_t reads = 0, failures = 0, regressions = 0, versions = 0, commits = 0;
};

// Two readers that take no lock, and two writers using `update` for
// `duration`, on one registry.
ReaderTotals HammerWithReadersAndWriters(const Updater& update,
                                         std::chrono::milliseconds duration) {
  TempDir dir;
  std::string path = dir.File("registry.json");
  CreateRegistry(path);

  Gate stop;
  std::vector<std::unique_ptr<ChildProcess>> readers, writers;
  for (int i = 0; i < 2; ++i) {
    readers.push_back(std::make_unique<ChildProcess>([&] { return ReadUntilStopped(path, stop); }));
  }
  for (int i = 0; i < 2; ++i) {
    writers.push_back(
        std::make_unique<ChildProcess>([&] { return WriteFor(update, path, duration); }));
  }
  ReaderTotals totals;
  for (auto& writer : writers) {
    ChildProcess::Outcome outcome = writer->Finish();
    EXPECT_EQ(outcome.exit_code, 0) << "signal " << outcome.signal << ": " << outcome.output;
    if (outcome.exit_code == 0) totals.commits += Field(outcome.output, "commits");
  }
  stop.Open();
  for (auto& reader : readers) {
    ChildProcess::Outcome outcome = reader->Finish();
    EXPECT_EQ(outcome.exit_code, 0) << "signal " << outcome.signal << ": " << outcome.output;
    if (outcome.exit_code != 0) continue;
    std::printf("reader: %s\n", outcome.output.c_str());
    totals.reads += Field(outcome.output, "reads");
    totals.failures += Field(outcome.output, "failures");
    totals.regressions += Field(outcome.output, "regressions");
    totals.versions += Field(outcome.output, "versions");
  }
  std::printf("%llu commits, %llu reads, %llu failed, %llu regressions\n",
              static_cast<unsigned long long>(totals.commits),
              static_cast<unsigned long long>(totals.reads),
              static_cast<unsigned long long>(totals.failures),
              static_cast<unsigned long long>(totals.regressions));
  return totals;
}

TEST(LockFreeReaders, NeverSeeATornFileOrAnOlderVersion) {
  ReaderTotals totals = HammerWithReadersAndWriters(HerdUpdate, 2000ms);
  EXPECT_EQ(totals.failures, 0u);
  EXPECT_EQ(totals.regressions, 0u);
  EXPECT_GT(totals.reads, 200u) << "the readers barely ran";
  EXPECT_GT(totals.versions, 20u) << "the readers saw too few versions to prove anything";
}

TEST(LockFreeReaders, CheckDetectsTornFilesFromTheSeedsInPlaceWrites) {
  // Test the test: the seed truncates and rewrites the file in place, so a
  // reader that takes no lock sees it empty or half-written now and then.
  ReaderTotals totals = HammerWithReadersAndWriters(seed::Update, 2000ms);
  EXPECT_GT(totals.failures, 0u);
}

}  // namespace
}  // namespace herd::store
