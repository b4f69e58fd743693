// PgRegistry beyond the conformance suite (registry_conformance_test.cc runs
// every Registry guarantee against it): its schema's migrations, request ids
// that make a retried admission apply once, the limits under admissions from
// many processes, a server restart in the middle of a run, and the setting
// that selects it. Real servers only (registry/pg_testing_for_test.h).
#include "registry/pg_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "registry/ids.h"
#include "registry/pg_schema.h"
#include "registry/pg_testing_for_test.h"
#include "registry/registry_setting.h"

namespace herd::registry {
namespace {

using ::testing::HasSubstr;

class PgRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
  }

  std::unique_ptr<PgRegistry> Open(const pg::ConnectOptions& options) {
    Result<std::unique_ptr<PgRegistry>> opened = PgRegistry::Open(options, "/tmp/herd-pg-test");
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }
  std::unique_ptr<PgRegistry> Open() { return Open(database_.options()); }

  std::unique_ptr<pg::Connection> Connect() {
    Result<std::unique_ptr<pg::Connection>> connection = pg::Connection::Open(database_.options());
    EXPECT_TRUE(connection.ok()) << connection.status().ToString();
    return connection.ok() ? std::move(connection).value() : nullptr;
  }

  static std::string CreateTask(const Registry& registry, int max_concurrent = 20,
                                int max_agents = 200) {
    std::string task_id = NewTaskId();
    TaskSpec spec;
    spec.description = "a PostgreSQL task";
    spec.limits = {max_agents, max_concurrent, 5};
    Result<TaskSnapshot> created = registry.CreateTask(task_id, spec);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return task_id;
  }

  static AdmissionRequest Request(const std::string& agent_id, const std::string& request_id = "") {
    AdmissionRequest request;
    request.agent_id = agent_id;
    request.type = "worker";
    request.prompt = "work";
    request.backend = "command";
    request.request_id = request_id;
    return request;
  }

  pg_test::TestDatabase database_;
};

TEST_F(PgRegistryTest, MigrationsAreIdempotent) {
  std::unique_ptr<pg::Connection> connection = Connect();
  Result<int> first = MigratePgSchema(*connection);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, 0);
  Result<int> second = MigratePgSchema(*connection);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, PgSchemaVersion());
  EXPECT_EQ(*PgStoredSchemaVersion(*connection), PgSchemaVersion());
  Result<pg::Rows> rows = connection->Exec("SELECT count(*) FROM herd_schema_migrations");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->Integer(0, 0), PgSchemaVersion()) << "one row per migration, once";
  // Opening a migrated registry changes nothing and works.
  std::unique_ptr<PgRegistry> registry = Open();
  ASSERT_NE(registry, nullptr);
  CreateTask(*registry);
}

TEST_F(PgRegistryTest, ConcurrentOpensOfAnEmptyDatabaseMigrateItOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] {
      if (!PgRegistry::Open(database_.options(), "/tmp/x").ok()) ++failures;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  Result<pg::Rows> rows = Connect()->Exec("SELECT count(*) FROM herd_schema_migrations");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->Integer(0, 0), PgSchemaVersion());
}

TEST_F(PgRegistryTest, ASchemaNewerThanTheBinaryIsRefused) {
  ASSERT_NE(Open(), nullptr);
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_TRUE(connection
                  ->Exec("INSERT INTO herd_schema_migrations (version, description) "
                         "VALUES ($1, 'from a newer herd')",
                         {std::to_string(PgSchemaVersion() + 1)})
                  .ok());
  Result<std::unique_ptr<PgRegistry>> opened = PgRegistry::Open(database_.options(), "/tmp/x");
  EXPECT_TRUE(opened.status().Is(Status::Code::kRefused)) << opened.status().ToString();
  EXPECT_THAT(opened.status().message(), HasSubstr("upgrade herd"));
  Result<int> migrated = MigratePgSchema(*connection);
  EXPECT_TRUE(migrated.status().Is(Status::Code::kRefused)) << migrated.status().ToString();
}

TEST_F(PgRegistryTest, AnOlderSchemaIsRefusedWhenMigrationIsNotAllowed) {
  Result<std::unique_ptr<PgRegistry>> opened =
      PgRegistry::Open(database_.options(), "/tmp/x", PgRegistry::OnOpen::kRequireCurrentSchema);
  EXPECT_TRUE(opened.status().Is(Status::Code::kRefused)) << opened.status().ToString();
  EXPECT_THAT(opened.status().message(), HasSubstr("herd registry migrate"));
}

TEST_F(PgRegistryTest, ARetriedAdmissionWithTheSameRequestIdIsAppliedOnce) {
  std::unique_ptr<PgRegistry> registry = Open();
  std::string task_id = CreateTask(*registry);
  Result<AgentRecord> first = registry->Admit(task_id, Request("worker-1", "request-1"), 0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  uint64_t sequence = (*registry->ReadTask(task_id))->sequence;
  // The same request again (a retry after a commit in doubt), from another connection.
  Result<AgentRecord> again = Open()->Admit(task_id, Request("worker-1", "request-1"), 0);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, "worker-1");
  SharedTask task = *registry->ReadTask(task_id);
  EXPECT_EQ(task->task.agents.size(), 1u);
  EXPECT_EQ(task->task.total_spawned, 1);
  EXPECT_EQ(task->sequence, sequence) << "nothing committed the second time";
  // Another request for the same agent id is a new admission: refused as a duplicate.
  EXPECT_FALSE(registry->Admit(task_id, Request("worker-1", "request-2"), 0).ok());
}

TEST_F(PgRegistryTest, ConcurrentAdmissionsFromProcessesRespectEveryLimitExactly) {
  constexpr int kProcesses = 8, kEach = 4, kPerTask = 6, kCap = 9;
  std::unique_ptr<PgRegistry> registry = Open();
  std::string first = CreateTask(*registry, kPerTask);
  std::string second = CreateTask(*registry, kPerTask);
  int admitted =
      pg_test::AdmitFromProcesses(database_.options(), kProcesses, kEach, kCap, [&](int p, int i) {
        return std::pair{(p + i) % 2 ? first : second,
                         Request("worker-" + std::to_string(p) + "-" + std::to_string(i))};
      });
  ASSERT_GE(admitted, 0) << "a child failed";
  // 12 slots in the tasks, 9 under the cluster cap: the cap binds.
  EXPECT_EQ(admitted, kCap);
  int active = 0;
  for (const std::string& task_id : {first, second}) {
    SharedTask task = *registry->ReadTask(task_id);
    EXPECT_LE(task->task.active_count, kPerTask);
    EXPECT_EQ(task->task.total_spawned, static_cast<int>(task->task.agents.size()));
    active += task->task.active_count;
  }
  EXPECT_EQ(active, kCap);
}

TEST_F(PgRegistryTest, JournalsAreRowsInCommitOrder) {
  std::unique_ptr<PgRegistry> registry = Open();
  std::string task_id = CreateTask(*registry);
  ASSERT_TRUE(registry->Admit(task_id, Request("worker-1"), 0).ok());
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        registry->ReportProgress(task_id, "worker-1", "working", "step " + std::to_string(i), i)
            .ok());
  }
  ASSERT_TRUE(registry->ReportFinding(task_id, "worker-1", {"insight", "info", "seen", {}}).ok());
  EXPECT_FALSE(registry->ReportProgress(task_id, "worker-1", "working", "x", 101).ok());
  Result<std::vector<json>> progress =
      registry->ReadJournal(task_id, "worker-1", Journal::kProgress);
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  ASSERT_EQ(progress->size(), 3u) << "a refused report leaves no line";
  EXPECT_EQ((*progress)[2]["message"], "step 3");
  Result<std::vector<json>> findings =
      registry->ReadJournal(task_id, "worker-1", Journal::kFindings);
  ASSERT_TRUE(findings.ok());
  ASSERT_EQ(findings->size(), 1u);
  EXPECT_EQ((*findings)[0]["message"], "seen");
}

TEST_F(PgRegistryTest, UnknownKeysInStoredDocumentsRoundTrip) {
  std::unique_ptr<PgRegistry> registry = Open();
  std::string task_id = CreateTask(*registry);
  ASSERT_TRUE(registry->Admit(task_id, Request("worker-1"), 0).ok());
  std::unique_ptr<pg::Connection> connection = Connect();
  ASSERT_TRUE(connection
                  ->Exec("UPDATE herd_agents SET document = document || '{\"other_tool\": 7}' "
                         "WHERE task_id = $1",
                         {task_id})
                  .ok());
  ASSERT_TRUE(registry->ReportProgress(task_id, "worker-1", "working", "x", 5).ok());
  Result<pg::Rows> kept = connection->Exec(
      "SELECT document->>'other_tool' FROM herd_agents WHERE task_id = $1", {task_id});
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->Text(0, 0), "7");
}

// pg_ctl restart -m fast in the middle of admissions and reports: every
// operation either succeeds (retried on a new connection) or fails saying
// what happened; what succeeded is there once, nothing is there twice.
TEST_F(PgRegistryTest, AServerRestartMidRunLosesNothingAndAppliesNothingTwice) {
  pg_test::TestServer server;
  ASSERT_TRUE(server.started());
  pg_test::TestDatabase database(server.host());
  std::unique_ptr<PgRegistry> registry = Open(database.options());
  ASSERT_NE(registry, nullptr);
  std::string task_id = CreateTask(*registry, 500, 500);
  // Each thread runs until it has done kAfter operations after the restart.
  constexpr int kThreads = 4, kAfter = 10, kMaxEach = 100000;
  std::atomic<int> done{0}, after_restart{0};
  std::atomic<bool> restarted{false};
  std::mutex mutex;
  std::set<std::string> admitted, reported;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<PgRegistry> mine = Open(database.options());
      if (mine == nullptr) return;
      int mine_after = 0;
      for (int i = 0; i < kMaxEach && mine_after < kAfter; ++i) {
        bool late = restarted;
        std::string agent_id = "w" + std::to_string(t) + "-" + std::to_string(i);
        Result<AgentRecord> agent = mine->Admit(task_id, Request(agent_id), 0);
        Status report = agent.ok() ? mine->ReportProgress(task_id, agent_id, "working",
                                                          "report of " + agent_id, 10)
                                         .status()
                                   : agent.status();
        std::lock_guard<std::mutex> guard(mutex);
        if (agent.ok()) admitted.insert(agent_id);
        if (agent.ok() && report.ok()) reported.insert(agent_id);
        if (!report.ok()) errors.push_back(report.message());
        ++done;
        if (late) ++mine_after;
        if (late && report.ok()) ++after_restart;
      }
    });
  }
  while (done.load() < kThreads * 4) std::this_thread::yield();  // under way
  EXPECT_EQ(server.Restart(), 0);
  restarted = true;
  for (std::thread& thread : threads) thread.join();

  EXPECT_GT(after_restart.load(), 0) << "operations resumed after the restart";
  for (const std::string& error : errors) EXPECT_THAT(error, HasSubstr("PostgreSQL"));
  SharedTask task = *Open(database.options())->ReadTask(task_id);
  std::set<std::string> stored;
  for (const AgentRecord& agent : task->task.agents) {
    EXPECT_TRUE(stored.insert(agent.id).second) << agent.id << " twice";
  }
  for (const std::string& id : admitted) EXPECT_TRUE(stored.count(id)) << id << " lost";
  EXPECT_EQ(task->task.total_spawned, static_cast<int>(stored.size()));
  for (const std::string& id : reported) {
    Result<std::vector<json>> lines =
        Open(database.options())->ReadJournal(task_id, id, Journal::kProgress);
    ASSERT_TRUE(lines.ok());
    EXPECT_EQ(lines->size(), 1u) << id << ": a successful report is there exactly once";
  }
}

TEST(RegistrySettingTest, OneSettingSelectsTheEngineAndATypoIsRefused) {
  EXPECT_FALSE(ParseRegistrySetting("")->postgres());
  EXPECT_FALSE(ParseRegistrySetting("json")->postgres());
  EXPECT_TRUE(ParseRegistrySetting("postgresql://herd@db.example/herd")->postgres());
  EXPECT_TRUE(ParseRegistrySetting("postgres://db.example/herd")->postgres());
  EXPECT_TRUE(ParseRegistrySetting("host=/tmp dbname=herd")->postgres());
  Result<RegistrySetting> typo = ParseRegistrySetting("postgresq://db/herd");
  EXPECT_TRUE(typo.status().Is(Status::Code::kInvalidArgument));
  EXPECT_EQ(ParseRegistrySetting("postgresql://herd:secret@db/herd")->Describe(),
            "PostgreSQL at postgresql://herd:***@db/herd");
}

// The output tail: appended chunks read back in order, arbitrary bytes
// kept exactly, and only the newest within kOutputTailLines lines.
TEST_F(PgRegistryTest, TheOutputTailKeepsTheNewestChunksWithinItsBounds) {
  std::unique_ptr<PgRegistry> registry = Open();
  std::string task_id = CreateTask(*registry);
  EXPECT_TRUE(registry->ReadOutputTail(task_id, "worker-1").status().Is(Status::Code::kNotFound));
  std::string binary("first\n\0\xff\xfe\n", 11);
  ASSERT_TRUE(registry->AppendOutput(task_id, "worker-1", binary).ok());
  ASSERT_TRUE(registry->AppendOutput(task_id, "worker-1", "second\n").ok());
  Result<std::string> tail = registry->ReadOutputTail(task_id, "worker-1");
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_EQ(*tail, binary + "second\n");

  // Chunks of 500 lines: only the newest that fit in 2,000 lines stay.
  std::string chunk;
  for (int i = 0; i < 500; ++i) chunk += "line\n";
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(registry->AppendOutput(task_id, "worker-1", chunk + std::to_string(i) + "\n").ok());
  }
  tail = registry->ReadOutputTail(task_id, "worker-1");
  ASSERT_TRUE(tail.ok());
  size_t lines = std::count(tail->begin(), tail->end(), '\n');
  EXPECT_LE(lines, Registry::kOutputTailLines);
  EXPECT_GT(lines, Registry::kOutputTailLines / 2);
  EXPECT_NE(tail->find("\n5\n"), std::string::npos) << "the newest chunk is kept";
  EXPECT_EQ(tail->find("first"), std::string::npos) << "the oldest are dropped";
  // Another agent's tail is its own.
  EXPECT_TRUE(registry->ReadOutputTail(task_id, "worker-2").status().Is(Status::Code::kNotFound));
}

// Following the output: a watch opened before an append wakes for it, and
// ReadOutputAfter returns each chunk once, in order, saying when chunks
// went by unread (dropped by the bound before the reader got to them).
TEST_F(PgRegistryTest, OutputIsFollowedChunkByChunkAndADropIsReported) {
  std::unique_ptr<PgRegistry> registry = Open();
  std::string task_id = CreateTask(*registry);
  Result<std::unique_ptr<CommitWatch>> watch =
      registry->WatchCommitsAndOutput(task_id, task_id, "worker-1");
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  Result<PgRegistry::OutputAfter> read = registry->ReadOutputAfter(task_id, "worker-1", 0);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->bytes, "");
  EXPECT_EQ(read->last_chunk, 0);

  ASSERT_TRUE(registry->AppendOutput(task_id, "worker-1", "one\n").ok());
  EXPECT_EQ((*watch)->WaitUntil(MonotonicClock::now() + std::chrono::seconds(60), nullptr).value(),
            Wake::kChanged);
  ASSERT_TRUE(registry->AppendOutput(task_id, "worker-1", "two\n").ok());
  read = registry->ReadOutputAfter(task_id, "worker-1", 0);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->bytes, "one\ntwo\n");
  EXPECT_EQ(read->last_chunk, 2);
  EXPECT_FALSE(read->dropped);
  read = registry->ReadOutputAfter(task_id, "worker-1", 1);
  EXPECT_EQ(read->bytes, "two\n");
  read = registry->ReadOutputAfter(task_id, "worker-1", 2);
  EXPECT_EQ(read->bytes, "");
  EXPECT_EQ(read->last_chunk, 2);

  // Chunks of 1,000 lines: after four more, chunks 1 to 4 are gone, so a
  // reader that had read chunk 2 missed chunks 3 and 4.
  std::string chunk;
  for (int i = 0; i < 1000; ++i) chunk += "line\n";
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(registry->AppendOutput(task_id, "worker-1", chunk).ok());
  read = registry->ReadOutputAfter(task_id, "worker-1", 2);
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read->dropped);
  EXPECT_EQ(read->last_chunk, 6);
  EXPECT_EQ(read->bytes, chunk + chunk);
  read = registry->ReadOutputAfter(task_id, "worker-1", 5);
  EXPECT_FALSE(read->dropped);
  EXPECT_EQ(read->bytes, chunk);
}

}  // namespace
}  // namespace herd::registry
