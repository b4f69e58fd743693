// The Registry conformance suite: the guarantees of registry/registry.h,
// stated against the interface only, and run against every storage engine.
//
// An engine joins by adding a RegistryEngine to kEngines below: it makes a
// fresh, empty registry for each test and opens further connections to the
// same registry (a new process opens its own: the cross-process tests fork
// and open one in each child). Today: the JSON workspace (JsonRegistry)
// and PostgreSQL (PgRegistry, a database of its own per test on the ctest
// fixture's server; skipped when the binary runs outside ctest).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "registry/ids.h"
#include "registry/json_registry.h"
#include "registry/pg_registry.h"
#include "registry/pg_testing_for_test.h"
#include "registry/registry.h"

namespace herd::registry {
namespace {

using test_util::ScopedEnvironment;
using test_util::TempDir;
using ::testing::HasSubstr;

// One registry under test, empty when made.
class RegistryEngine {
 public:
  virtual ~RegistryEngine() = default;
  // A new connection to the registry (from this process or a forked child).
  virtual std::unique_ptr<Registry> Open() const = 0;
  // Prepares `task_id` to be created (the JSON engine's task directory).
  virtual void PrepareTask(const std::string& task_id) const = 0;
};

class JsonEngine : public RegistryEngine {
 public:
  JsonEngine() : workspace_(root_.path() + "/workspace") {
    environment_.Set("XDG_STATE_HOME", root_.Subdirectory("state"));
  }
  std::unique_ptr<Registry> Open() const override {
    return std::make_unique<JsonRegistry>(RegistryStores(), workspace_);
  }
  void PrepareTask(const std::string& task_id) const override {
    ASSERT_TRUE(workspace_.CreateTaskDirectories(task_id).ok());
  }

 private:
  TempDir root_{"herd-conformance"};
  ScopedEnvironment environment_;
  Workspace workspace_;
};

class PgEngine : public RegistryEngine {
 public:
  std::unique_ptr<Registry> Open() const override {
    Result<std::unique_ptr<PgRegistry>> opened =
        PgRegistry::Open(database_.options(), root_.path() + "/workspace");
    if (!opened.ok()) {
      ADD_FAILURE() << opened.status().ToString();
      std::abort();  // every test needs it; a child must not carry on either
    }
    return std::move(opened).value();
  }
  void PrepareTask(const std::string&) const override {}  // nothing local to prepare

 private:
  TempDir root_{"herd-conformance-pg"};
  pg_test::TestDatabase database_;
};

struct EngineFactory {
  const char* name;
  std::function<std::unique_ptr<RegistryEngine>()> make;
};

void PrintTo(const EngineFactory& factory, std::ostream* out) {
  *out << factory.name;
}

const EngineFactory kEngines[] = {
    {"Json", [] { return std::make_unique<JsonEngine>(); }},
    {"Pg",
     []() -> std::unique_ptr<RegistryEngine> {
       if (pg_test::FixtureHost().empty()) return nullptr;  // not run by ctest
       return std::make_unique<PgEngine>();
     }},
};

class RegistryConformanceTest : public ::testing::TestWithParam<EngineFactory> {
 protected:
  void SetUp() override {
    engine_ = GetParam().make();
    if (engine_ == nullptr) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
    registry_ = engine_->Open();
  }

  // Creates a task with the given limits and returns its id.
  std::string CreateTask(int max_agents = 45, int max_concurrent = 20, int max_depth = 5,
                         Budget budget = {}) {
    std::string task_id = NewTaskId();
    engine_->PrepareTask(task_id);
    TaskSpec spec;
    spec.description = "a conformance task";
    spec.limits = {max_agents, max_concurrent, max_depth};
    spec.budget = budget;
    Result<TaskSnapshot> created = registry_->CreateTask(task_id, spec);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return task_id;
  }

  static AdmissionRequest Request(const std::string& agent_id,
                                  const std::string& parent = kOrchestratorParent) {
    AdmissionRequest request;
    request.agent_id = agent_id;
    request.type = "worker";
    request.parent = parent;
    request.prompt = "work";
    request.backend = "command";
    return request;
  }

  // Admits `agent_id`, requiring success.
  AgentRecord Admit(const std::string& task_id, const std::string& agent_id,
                    const std::string& parent = kOrchestratorParent) {
    Result<AgentRecord> admitted = registry_->Admit(task_id, Request(agent_id, parent), 0);
    EXPECT_TRUE(admitted.ok()) << admitted.status().ToString();
    return admitted.ok() ? *admitted : AgentRecord{};
  }

  TaskRecord Read(const std::string& task_id) {
    Result<SharedTask> snapshot = registry_->ReadTask(task_id);
    EXPECT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    return snapshot.ok() ? (*snapshot)->task : TaskRecord{};
  }

  uint64_t Sequence(const std::string& task_id) {
    Result<SharedTask> snapshot = registry_->ReadTask(task_id);
    EXPECT_TRUE(snapshot.ok());
    return snapshot.ok() ? (*snapshot)->sequence : 0;
  }

  static ExitRecord Exited(int code) {
    ExitRecord exit;
    exit.exit_code = code;
    exit.ended_at = "2026-11-27T03:55:00Z";
    return exit;
  }

  // The counts as the agent list gives them.
  static void ExpectCountsDerived(const TaskRecord& task) {
    int active = 0, completed = 0;
    for (const AgentRecord& agent : task.agents) {
      active += IsActiveStatus(agent.status);
      completed += agent.status == "completed";
    }
    EXPECT_EQ(task.total_spawned, static_cast<int>(task.agents.size()));
    EXPECT_EQ(task.active_count, active);
    EXPECT_EQ(task.completed_count, completed);
    EXPECT_EQ(task.status, task.agents.empty() ? "INITIALIZED" : active ? "ACTIVE" : "COMPLETED");
  }

  std::unique_ptr<RegistryEngine> engine_;
  std::unique_ptr<Registry> registry_;
};

TEST_P(RegistryConformanceTest, ACreatedTaskReadsBackAndCannotBeCreatedTwice) {
  std::string task_id = CreateTask(7, 3, 2);
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.task_id, task_id);
  EXPECT_EQ(task.limits.max_agents, 7);
  EXPECT_EQ(task.limits.max_concurrent, 3);
  EXPECT_EQ(task.status, "INITIALIZED");
  Result<TaskSnapshot> again = registry_->CreateTask(task_id, TaskSpec{});
  EXPECT_TRUE(again.status().Is(Status::Code::kRefused)) << again.status().ToString();
  EXPECT_EQ(Read(task_id).limits.max_agents, 7);
}

TEST_P(RegistryConformanceTest, AnUnknownTaskOrAgentIsNotFound) {
  EXPECT_TRUE(
      registry_->ReadTask("TASK-20260101-000000-00000000").status().Is(Status::Code::kNotFound));
  std::string task_id = CreateTask();
  Termination termination{"stop", std::nullopt, std::nullopt};
  EXPECT_TRUE(
      registry_->Terminate(task_id, "ghost-1", termination).status().Is(Status::Code::kNotFound));
  EXPECT_TRUE(registry_->ReportProgress(task_id, "ghost-1", "working", "hi", 5)
                  .status()
                  .Is(Status::Code::kNotFound));
  EXPECT_TRUE(registry_->ReportFinding(task_id, "ghost-1", {"issue", "low", "hi", {}})
                  .status()
                  .Is(Status::Code::kNotFound));
  EXPECT_FALSE(registry_->RecordEnd(task_id, "ghost-1", Exited(0), std::nullopt, 0).ok());
}

TEST_P(RegistryConformanceTest, ConcurrentAdmissionsFromThreadsAdmitExactlyTheLimit) {
  constexpr int kLimit = 5, kThreads = 16;
  std::string task_id = CreateTask(45, kLimit);
  std::atomic<int> admitted{0}, refused{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Registry> connection = engine_->Open();
      Result<AgentRecord> agent =
          connection->Admit(task_id, Request("worker-" + std::to_string(i)), 0);
      if (agent.ok()) {
        ++admitted;
      } else if (agent.status().Is(Status::Code::kRefused) &&
                 agent.status().message().find("max_concurrent") != std::string::npos) {
        ++refused;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), kLimit);
  EXPECT_EQ(refused.load(), kThreads - kLimit);
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.active_count, kLimit);
  ExpectCountsDerived(task);
}

TEST_P(RegistryConformanceTest, ConcurrentAdmissionsFromProcessesAdmitExactlyTheLimit) {
  constexpr int kLimit = 4, kProcesses = 6, kEach = 3;
  std::string task_id = CreateTask(kProcesses * kEach, kLimit);
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::unique_ptr<Registry> connection = engine_->Open();
      int mine = 0;
      for (int i = 0; i < kEach; ++i) {
        std::string agent_id = "worker-" + std::to_string(p) + "-" + std::to_string(i);
        if (connection->Admit(task_id, Request(agent_id), 0).ok()) ++mine;
      }
      _exit(mine);
    }
    children.push_back(pid);
  }
  int admitted = 0;
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    admitted += WEXITSTATUS(status);
  }
  EXPECT_EQ(admitted, kLimit);
  TaskRecord task = Read(task_id);
  EXPECT_EQ(static_cast<int>(task.agents.size()), kLimit);
  ExpectCountsDerived(task);
}

// HERD_PORT is one active agent's at a time on the machine, whatever its
// task: the same candidates in two tasks give two ports; an ended agent's
// port is free again; a new turn of an ended agent whose port changed
// hands gets another.
TEST_P(RegistryConformanceTest, PortsAreOneActiveAgentsAcrossTasksAndFreedWhenItEnds) {
  const std::vector<int> candidates = {24001, 24002, 24003};
  auto admit = [&](const std::string& task_id, const std::string& agent_id) {
    AdmissionRequest request = Request(agent_id);
    request.port_candidates = candidates;
    Result<AgentRecord> admitted = registry_->Admit(task_id, request, 0);
    EXPECT_TRUE(admitted.ok()) << admitted.status().ToString();
    return admitted.ok() ? admitted->port : std::nullopt;
  };
  std::string first = CreateTask(), second = CreateTask();
  EXPECT_EQ(admit(first, "web-1"), 24001);
  EXPECT_EQ(admit(second, "web-2"), 24002);
  ASSERT_TRUE(registry_->RecordEnd(first, "web-1", Exited(0), std::nullopt, 0).ok());
  EXPECT_EQ(admit(second, "web-3"), 24001) << "an ended agent's port is free again";

  AgentMessage message;
  message.id = "msg-000000000002";
  message.text_file = "/tmp/message.txt";
  message.preview = "again";
  Result<MessageOutcome> sent = registry_->SendMessage(first, "web-1", message, 0, candidates);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  ASSERT_EQ(sent->delivery, MessageOutcome::Delivery::kNewTurn);
  EXPECT_EQ(sent->agent.port, 24003);
  EXPECT_EQ(Read(first).FindAgent("web-1")->port, 24003);

  // All three held: the next agent gets none rather than a shared one.
  EXPECT_EQ(admit(first, "web-4"), std::nullopt);
}

TEST_P(RegistryConformanceTest, ConcurrentAdmissionsInManyTasksFromProcessesNeverShareAPort) {
  constexpr int kProcesses = 6, kEach = 3;
  std::vector<int> candidates;
  for (int port = 25000; port < 25000 + kProcesses * kEach + 4; ++port) candidates.push_back(port);
  std::vector<std::string> tasks;
  for (int p = 0; p < kProcesses; ++p) tasks.push_back(CreateTask());
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::unique_ptr<Registry> connection = engine_->Open();
      int admitted = 0;
      for (int i = 0; i < kEach; ++i) {
        AdmissionRequest request = Request("web-" + std::to_string(p) + "-" + std::to_string(i));
        request.port_candidates = candidates;
        admitted += connection->Admit(tasks[p], request, 0).ok();
      }
      _exit(admitted);
    }
    children.push_back(pid);
  }
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), kEach);
  }
  std::set<int> ports;
  int agents = 0;
  for (const std::string& task_id : tasks) {
    for (const AgentRecord& agent : Read(task_id).agents) {
      ++agents;
      ASSERT_TRUE(agent.port) << agent.id << " got no port";
      EXPECT_TRUE(ports.insert(*agent.port).second) << agent.id << " shares port " << *agent.port;
    }
  }
  EXPECT_EQ(agents, kProcesses * kEach);
}

TEST_P(RegistryConformanceTest, MaxAgentsCountsEveryAgentEverStartedAndMaxDepthTheTree) {
  std::string task_id = CreateTask(/*max_agents=*/3, 20, /*max_depth=*/2);
  AgentRecord root = Admit(task_id, "root-1");
  AgentRecord child = Admit(task_id, "child-1", root.id);
  EXPECT_EQ(child.depth, 2);
  Result<AgentRecord> grandchild = registry_->Admit(task_id, Request("grand-1", child.id), 0);
  EXPECT_THAT(grandchild.status().message(), HasSubstr("max_depth"));
  ASSERT_TRUE(registry_->RecordEnd(task_id, "child-1", Exited(0), std::nullopt, 0).ok());
  Admit(task_id, "second-1");
  // Three started, whatever ended since: the lifetime limit holds.
  ASSERT_TRUE(registry_->RecordEnd(task_id, "second-1", Exited(0), std::nullopt, 0).ok());
  Result<AgentRecord> fourth = registry_->Admit(task_id, Request("fourth-1"), 0);
  EXPECT_TRUE(fourth.status().Is(Status::Code::kRefused));
  EXPECT_THAT(fourth.status().message(), HasSubstr("max_agents"));
}

TEST_P(RegistryConformanceTest, AParentMustExistAndBeActive) {
  std::string task_id = CreateTask();
  Result<AgentRecord> orphan = registry_->Admit(task_id, Request("child-1", "nobody-1"), 0);
  EXPECT_TRUE(orphan.status().Is(Status::Code::kRefused));
  Admit(task_id, "parent-1");
  ASSERT_TRUE(registry_->RecordEnd(task_id, "parent-1", Exited(0), std::nullopt, 0).ok());
  Result<AgentRecord> late = registry_->Admit(task_id, Request("child-2", "parent-1"), 0);
  EXPECT_THAT(late.status().message(), HasSubstr("already ended"));
}

TEST_P(RegistryConformanceTest, ARefusedOrFailedOperationChangesNothing) {
  std::string task_id = CreateTask(45, 1);
  Admit(task_id, "worker-1");
  uint64_t before = Sequence(task_id);
  EXPECT_FALSE(registry_->Admit(task_id, Request("worker-2"), 0).ok());
  EXPECT_FALSE(registry_->Admit(task_id, Request("worker-1"), 0).ok());
  EXPECT_FALSE(registry_->ReportProgress(task_id, "worker-1", "finished", "x", 5).ok());
  EXPECT_FALSE(registry_->ReportProgress(task_id, "worker-1", "working", "x", 101).ok());
  EXPECT_FALSE(registry_->ReportFinding(task_id, "worker-1", {"issue", "dire", "x", {}}).ok());
  LimitsChange zero;
  zero.max_agents = 0;
  EXPECT_FALSE(registry_->ChangeLimits(task_id, zero).ok());
  EXPECT_EQ(Sequence(task_id), before);
  EXPECT_EQ(Read(task_id).agents.size(), 1u);
}

TEST_P(RegistryConformanceTest, TerminalStatesStayTerminal) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  Result<TerminationOutcome> killed =
      registry_->Terminate(task_id, "worker-1", {"stopped by a test", std::nullopt, 5000});
  ASSERT_TRUE(killed.ok()) << killed.status().ToString();
  EXPECT_TRUE(killed->changed);
  EXPECT_EQ(killed->agent.status, "terminated");
  EXPECT_EQ(killed->agent.kill_grace_ms, 5000);
  // A late exit (code 0), a report, a second kill: the final status holds.
  ASSERT_TRUE(registry_->RecordEnd(task_id, "worker-1", Exited(0), std::nullopt, 0).ok());
  EXPECT_TRUE(registry_->ReportProgress(task_id, "worker-1", "working", "still here", 50)
                  .status()
                  .Is(Status::Code::kRefused));
  Result<TerminationOutcome> again =
      registry_->Terminate(task_id, "worker-1", {"again", std::nullopt, std::nullopt});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  AgentRecord agent = *Read(task_id).FindAgent("worker-1");
  EXPECT_EQ(agent.status, "terminated");
  EXPECT_EQ(agent.termination_reason, "stopped by a test");
  ASSERT_TRUE(agent.exit);
  EXPECT_EQ(agent.exit->exit_code, 0);
}

TEST_P(RegistryConformanceTest, OnlyANewTurnMakesAnEndedAgentActiveAndTheEndedTurnIsKept) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  ASSERT_TRUE(registry_->RecordEnd(task_id, "worker-1", Exited(4), std::nullopt, 0).ok());
  AgentMessage message;
  message.id = "msg-000000000001";
  message.text_file = "/tmp/message.txt";
  message.preview = "next";
  Result<MessageOutcome> sent = registry_->SendMessage(task_id, "worker-1", message, 0, {});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(sent->delivery, MessageOutcome::Delivery::kNewTurn);
  TaskRecord task = Read(task_id);
  const AgentRecord& agent = *task.FindAgent("worker-1");
  EXPECT_EQ(agent.status, "running");
  EXPECT_EQ(agent.turn, 2);
  ASSERT_EQ(agent.turns.size(), 1u);
  EXPECT_EQ(agent.turns[0].status, "error");
  EXPECT_EQ(agent.turns[0].exit->exit_code, 4);
  ExpectCountsDerived(task);

  // A turn that cannot start is undone: the ended turn is back, the message kept.
  ASSERT_TRUE(registry_->AbandonTurn(task_id, "worker-1", 2, "did not start: a test").ok());
  AgentRecord undone = *Read(task_id).FindAgent("worker-1");
  EXPECT_EQ(undone.status, "error");
  EXPECT_EQ(undone.turn, 1);
  ASSERT_EQ(undone.undelivered_messages.size(), 1u);
  EXPECT_EQ(undone.undelivered_messages[0].id, message.id);
}

TEST_P(RegistryConformanceTest, ConcurrentMessagesToARunningAgentAreAllQueuedOnceInSomeOrder) {
  constexpr int kSenders = 12;
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  std::vector<std::thread> threads;
  std::atomic<int> accepted{0};
  for (int i = 0; i < kSenders; ++i) {
    threads.emplace_back([&, i] {
      std::unique_ptr<Registry> connection = engine_->Open();
      AgentMessage message;
      message.id = "msg-" + std::to_string(i);
      message.text_file = "/tmp/" + message.id;
      if (connection->SendMessage(task_id, "worker-1", message, 0, {}).ok()) ++accepted;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(accepted.load(), kSenders);
  std::vector<std::string> queued;
  TaskRecord after = Read(task_id);
  for (const AgentMessage& message : after.FindAgent("worker-1")->message_queue) {
    queued.push_back(message.id);
  }
  std::sort(queued.begin(), queued.end());
  std::vector<std::string> expected;
  for (int i = 0; i < kSenders; ++i) expected.push_back("msg-" + std::to_string(i));
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(queued, expected) << "no message lost or queued twice";

  // The exit begins the next turn with the first of them, in the same transaction.
  Result<EndOutcome> ended = registry_->RecordEnd(task_id, "worker-1", Exited(0), std::nullopt, 0);
  ASSERT_TRUE(ended.ok());
  ASSERT_TRUE(ended->next_turn);
  EXPECT_EQ(ended->next_turn->number, 2);
  AgentRecord agent = *Read(task_id).FindAgent("worker-1");
  EXPECT_EQ(agent.status, "running");
  EXPECT_EQ(agent.message_queue.size(), static_cast<size_t>(kSenders - 1));
}

TEST_P(RegistryConformanceTest, AnExitEndsAnActiveAgentAsItsCodeSays) {
  std::string task_id = CreateTask();
  Admit(task_id, "good-1");
  Admit(task_id, "bad-1");
  ASSERT_TRUE(
      registry_
          ->RecordStart(task_id, "good-1", ProcessIdentity{4242, 99}, ProcessIdentity{4241, 98})
          .ok());
  ASSERT_TRUE(registry_->RecordEnd(task_id, "good-1", Exited(0), std::nullopt, 0).ok());
  ASSERT_TRUE(registry_->RecordEnd(task_id, "bad-1", Exited(3), std::nullopt, 0).ok());
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.FindAgent("good-1")->status, "completed");
  EXPECT_EQ(task.FindAgent("good-1")->progress, 100);
  EXPECT_EQ(task.FindAgent("good-1")->process, (ProcessIdentity{4242, 99}));
  EXPECT_EQ(task.FindAgent("bad-1")->status, "error");
  EXPECT_EQ(task.FindAgent("bad-1")->error, "exited with status 3");
  EXPECT_EQ(task.status, "COMPLETED");
  ExpectCountsDerived(task);
}

TEST_P(RegistryConformanceTest, AStopRecordedWithTheExitWinsOverTheExitCode) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  LimitHit hit;
  hit.limit = "agent_timeout_seconds";
  hit.limit_value = 10;
  hit.used = 10.2;
  Termination stop{"stopped by herd: ran 10.2 s", hit, 5000};
  ASSERT_TRUE(registry_->RecordEnd(task_id, "worker-1", Exited(0), stop, 0).ok());
  AgentRecord agent = *Read(task_id).FindAgent("worker-1");
  EXPECT_EQ(agent.status, "terminated");
  ASSERT_TRUE(agent.stopped_by_limit);
  EXPECT_EQ(agent.stopped_by_limit->limit, "agent_timeout_seconds");
}

TEST_P(RegistryConformanceTest, AKillBeforeTheStartIsSeenByTheStart) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  ASSERT_TRUE(registry_->Terminate(task_id, "worker-1", {"early", std::nullopt, 0}).ok());
  Result<AgentRecord> started =
      registry_->RecordStart(task_id, "worker-1", ProcessIdentity{100, 1}, ProcessIdentity{99, 1});
  ASSERT_TRUE(started.ok());
  EXPECT_TRUE(IsTerminalStatus(started->status));
}

TEST_P(RegistryConformanceTest, ConcurrentReportsLoseNothingAndJournalsKeepEveryLine) {
  constexpr int kAgents = 4, kReports = 25;
  std::string task_id = CreateTask();
  for (int a = 0; a < kAgents; ++a) Admit(task_id, "worker-" + std::to_string(a));
  uint64_t before = Sequence(task_id);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int a = 0; a < kAgents; ++a) {
    threads.emplace_back([&, a] {
      std::unique_ptr<Registry> connection = engine_->Open();
      std::string agent_id = "worker-" + std::to_string(a);
      for (int r = 1; r <= kReports; ++r) {
        bool finding = r % 5 == 0;
        Status status =
            finding
                ? connection->ReportFinding(task_id, agent_id, {"insight", "info", "f", {}})
                      .status()
                : connection
                      ->ReportProgress(task_id, agent_id, "working", "step " + std::to_string(r), r)
                      .status();
        if (!status.ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  // One commit per report: none lost, none doubled.
  EXPECT_EQ(Sequence(task_id), before + kAgents * kReports);
  TaskRecord task = Read(task_id);
  for (const AgentRecord& agent : task.agents) {
    EXPECT_EQ(agent.progress, kReports - 1) << agent.id;  // the last progress report
    EXPECT_EQ(agent.last_message, "step " + std::to_string(kReports - 1)) << agent.id;
  }
}

TEST_P(RegistryConformanceTest, TheSequenceNeverGoesBackwardsForAnyReader) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  std::atomic<bool> done{false};
  std::atomic<int> backwards{0}, reads{0};
  std::thread reader([&] {
    std::unique_ptr<Registry> connection = engine_->Open();
    uint64_t last = 0;
    while (!done) {
      Result<SharedTask> snapshot = connection->ReadTask(task_id);
      if (!snapshot.ok()) continue;
      if ((*snapshot)->sequence < last) ++backwards;
      last = (*snapshot)->sequence;
      ++reads;
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&] {
      std::unique_ptr<Registry> connection = engine_->Open();
      for (int i = 0; i < 30; ++i)
        connection->ReportProgress(task_id, "worker-1", "working", "x", i);
    });
  }
  for (std::thread& writer : writers) writer.join();
  done = true;
  reader.join();
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

TEST_P(RegistryConformanceTest, CountsAreAlwaysDerivedFromTheAgentList) {
  std::string task_id = CreateTask();
  ExpectCountsDerived(Read(task_id));
  Admit(task_id, "a-1");
  Admit(task_id, "b-1");
  Admit(task_id, "c-1");
  ExpectCountsDerived(Read(task_id));
  ASSERT_TRUE(registry_->ReportProgress(task_id, "a-1", "completed", "done", 100).ok());
  ASSERT_TRUE(registry_->Terminate(task_id, "b-1", {"stop", std::nullopt, 0}).ok());
  ExpectCountsDerived(Read(task_id));
  ASSERT_TRUE(registry_->Release(task_id, "c-1").ok());
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.total_spawned, 2);
  EXPECT_EQ(task.FindAgent("c-1"), nullptr);
  ExpectCountsDerived(task);
}

TEST_P(RegistryConformanceTest, AReleasedAdmissionFreesItsSlot) {
  std::string task_id = CreateTask(45, 1);
  Admit(task_id, "worker-1");
  ASSERT_TRUE(registry_->Release(task_id, "worker-1").ok());
  Admit(task_id, "worker-2");
  EXPECT_EQ(Read(task_id).hierarchy.at(kOrchestratorParent), std::vector<std::string>{"worker-2"});
}

TEST_P(RegistryConformanceTest, APassedBudgetStopsTheTaskUntilItIsRaised) {
  Budget budget;
  budget.max_tokens = 1000;
  std::string task_id = CreateTask(45, 20, 5, budget);
  Admit(task_id, "a-1");
  Admit(task_id, "b-1");
  Result<EndOutcome> usage =
      registry_->RecordUsage(task_id, "a-1", {{"input_tokens", 900}, {"output_tokens", 200}}, 2500);
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  EXPECT_EQ(usage->to_stop.size(), 2u);
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.active_count, 0);
  ASSERT_TRUE(task.budget_exceeded);
  EXPECT_EQ(task.budget_exceeded->limit, "max_tokens");
  EXPECT_EQ(task.FindAgent("b-1")->kill_grace_ms, 2500);
  Result<AgentRecord> refused = registry_->Admit(task_id, Request("c-1"), 0);
  EXPECT_THAT(refused.status().message(), HasSubstr("max_tokens budget"));
  LimitsChange raise;
  raise.budget.max_tokens = 5000;
  Result<TaskSnapshot> raised = registry_->ChangeLimits(task_id, raise);
  ASSERT_TRUE(raised.ok());
  EXPECT_FALSE(raised->task.budget_exceeded);
  Admit(task_id, "c-1");
}

TEST_P(RegistryConformanceTest, TheMachineWideCapIsCheckedInTheAdmission) {
  std::string first = CreateTask();
  std::string second = CreateTask();
  ASSERT_TRUE(registry_->Admit(first, Request("a-1"), 2).ok());
  ASSERT_TRUE(registry_->Admit(second, Request("b-1"), 2).ok());
  Result<AgentRecord> third = registry_->Admit(second, Request("c-1"), 2);
  EXPECT_TRUE(third.status().Is(Status::Code::kRefused));
  EXPECT_THAT(third.status().message(), HasSubstr("HERD_MAX_RUNNING_AGENTS"));
  // The refusal took the admission back: nothing of c-1 stays.
  EXPECT_EQ(Read(second).FindAgent("c-1"), nullptr);
  EXPECT_EQ(Read(second).total_spawned, 1);
}

TEST_P(RegistryConformanceTest, FindingsAreKeptFromEndedAgentsButProgressIsNot) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  ASSERT_TRUE(registry_->ReportProgress(task_id, "worker-1", "completed", "done", 100).ok());
  Result<ReportOutcome> finding =
      registry_->ReportFinding(task_id, "worker-1", {"insight", "high", "one more thing", {}});
  ASSERT_TRUE(finding.ok()) << finding.status().ToString();
  EXPECT_EQ(finding->line["message"], "one more thing");
  EXPECT_FALSE(registry_->ReportProgress(task_id, "worker-1", "working", "back", 10).ok());
}

TEST_P(RegistryConformanceTest, ALostAgentIsMarkedOnlyIfStillLostInTheTransaction) {
  std::string task_id = CreateTask();
  Admit(task_id, "lost-1");
  Admit(task_id, "fine-1");
  Result<Registry::LostOutcome> alive = registry_->MarkLost(
      task_id, "fine-1", [](const AgentRecord&) -> std::optional<std::string> { return {}; });
  ASSERT_TRUE(alive.ok());
  EXPECT_FALSE(alive->marked);
  EXPECT_FALSE(alive->left_alone.empty());
  Result<Registry::LostOutcome> lost =
      registry_->MarkLost(task_id, "lost-1", [](const AgentRecord& agent) {
        return std::optional<std::string>("no process for " + agent.id);
      });
  ASSERT_TRUE(lost.ok());
  ASSERT_TRUE(lost->marked);
  EXPECT_EQ(lost->marked->status, "error");
  EXPECT_EQ(lost->marked->error, kLostReason);
  EXPECT_EQ(Read(task_id).FindAgent("fine-1")->status, "running");
}

// --- Stopping a task -------------------------------------------------------

TEST_P(RegistryConformanceTest, StoppingATaskMarksEveryActiveAgentInOneTransaction) {
  std::string task_id = CreateTask();
  for (const char* agent : {"a-1", "b-1", "c-1", "d-1"}) Admit(task_id, agent);
  ASSERT_TRUE(
      registry_->RecordStart(task_id, "a-1", ProcessIdentity{4242, 7}, ProcessIdentity{4241, 6})
          .ok());
  ASSERT_TRUE(
      registry_->RecordStart(task_id, "b-1", ProcessIdentity{4343, 8}, ProcessIdentity{4342, 7})
          .ok());
  ASSERT_TRUE(registry_->RecordEnd(task_id, "b-1", Exited(0), std::nullopt, 0).ok());
  uint64_t before = Sequence(task_id);

  Result<StopOutcome> stopped = registry_->StopTask(task_id, "the plan changed", 2500);

  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_EQ(Sequence(task_id), before + 1) << "one transaction";
  EXPECT_FALSE(stopped->already_stopped);
  EXPECT_EQ(stopped->stop.reason, "the plan changed");
  EXPECT_FALSE(stopped->stop.at.empty());
  std::set<std::string> marked;
  for (const AgentRecord& agent : stopped->marked) marked.insert(agent.id);
  EXPECT_EQ(marked, (std::set<std::string>{"a-1", "c-1", "d-1"}));
  // The caller stops the marked processes by the identities returned.
  EXPECT_EQ(stopped->marked.front().process, (ProcessIdentity{4242, 7}));
  EXPECT_EQ(stopped->marked.front().supervisor, (ProcessIdentity{4241, 6}));
  TaskRecord task = Read(task_id);
  for (const char* id : {"a-1", "c-1", "d-1"}) {
    const AgentRecord& agent = *task.FindAgent(id);
    EXPECT_EQ(agent.status, "terminated") << id;
    EXPECT_EQ(agent.termination_reason, "the plan changed") << id;
    EXPECT_EQ(agent.kill_grace_ms, 2500) << id;
    EXPECT_TRUE(agent.terminated_at) << id;
  }
  EXPECT_EQ(task.FindAgent("b-1")->status, "completed");
  EXPECT_EQ(task.active_count, 0);
  ASSERT_TRUE(task.stopped);
  EXPECT_EQ(task.stopped->reason, "the plan changed");
  ExpectCountsDerived(task);
}

TEST_P(RegistryConformanceTest, AStoppedTaskRefusesEveryAdmissionQuotingTheReason) {
  std::string task_id = CreateTask();
  Admit(task_id, "parent-1");
  ASSERT_TRUE(registry_->StopTask(task_id, "budget review", 5000).ok());
  uint64_t before = Sequence(task_id);
  for (const AdmissionRequest& request : {Request("late-1"), Request("child-1", "parent-1")}) {
    Result<AgentRecord> refused = registry_->Admit(task_id, request, 0);
    EXPECT_TRUE(refused.status().Is(Status::Code::kRefused)) << refused.status().ToString();
    if (request.parent == kOrchestratorParent) {
      EXPECT_THAT(refused.status().message(), HasSubstr("budget review"));
      EXPECT_THAT(refused.status().message(), HasSubstr("create a new task"));
    }
  }
  EXPECT_EQ(Sequence(task_id), before);
  EXPECT_EQ(Read(task_id).agents.size(), 1u);
  // Raising the limits does not reopen it.
  LimitsChange more;
  more.max_concurrent = 50;
  ASSERT_TRUE(registry_->ChangeLimits(task_id, more).ok());
  EXPECT_THAT(registry_->Admit(task_id, Request("later-1"), 0).status().message(),
              HasSubstr("budget review"));
}

TEST_P(RegistryConformanceTest, ASecondStopMarksNothingKeepsTheFirstReasonAndSucceeds) {
  std::string task_id = CreateTask();
  Admit(task_id, "a-1");
  Result<StopOutcome> first = registry_->StopTask(task_id, "first", 5000);
  ASSERT_TRUE(first.ok());
  uint64_t before = Sequence(task_id);
  Result<StopOutcome> second = registry_->StopTask(task_id, "second", 100);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->already_stopped);
  EXPECT_TRUE(second->marked.empty());
  EXPECT_EQ(second->stop.reason, "first");
  EXPECT_EQ(second->stop.at, first->stop.at);
  EXPECT_EQ(Sequence(task_id), before) << "nothing to commit";
  AgentRecord agent = *Read(task_id).FindAgent("a-1");
  EXPECT_EQ(agent.termination_reason, "first");
  EXPECT_EQ(agent.kill_grace_ms, 5000);
}

TEST_P(RegistryConformanceTest, AStopLeavesEndedAgentsAsTheyAreButReturnsThoseStillExiting) {
  std::string task_id = CreateTask();
  Admit(task_id, "killed-1");
  Admit(task_id, "done-1");
  ASSERT_TRUE(registry_->Terminate(task_id, "killed-1", {"killed first", std::nullopt, 0}).ok());
  ASSERT_TRUE(registry_->ReportProgress(task_id, "done-1", "completed", "done", 100).ok());
  ASSERT_TRUE(registry_->RecordEnd(task_id, "done-1", Exited(0), std::nullopt, 0).ok());

  Result<StopOutcome> stopped = registry_->StopTask(task_id, "stop", 5000);

  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(stopped->marked.empty());
  // killed-1's exit is not recorded yet: its processes may still run.
  ASSERT_EQ(stopped->unfinished.size(), 1u);
  EXPECT_EQ(stopped->unfinished[0].id, "killed-1");
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.FindAgent("killed-1")->termination_reason, "killed first");
  EXPECT_EQ(task.FindAgent("done-1")->status, "completed");
  EXPECT_TRUE(task.stopped);
}

TEST_P(RegistryConformanceTest, AnAgentStartingDuringTheStopIsTerminatedWhenItsStartIsRecorded) {
  std::string task_id = CreateTask();
  Admit(task_id, "starting-1");
  Result<StopOutcome> stopped = registry_->StopTask(task_id, "stop while starting", 1500);
  ASSERT_TRUE(stopped.ok());
  ASSERT_EQ(stopped->marked.size(), 1u);
  EXPECT_FALSE(stopped->marked[0].process.recorded());
  Result<AgentRecord> started = registry_->RecordStart(
      task_id, "starting-1", ProcessIdentity{100, 1}, ProcessIdentity{99, 1});
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(started->status, "terminated");
  EXPECT_EQ(started->kill_grace_ms, 1500);
  // Its exit, with code 0, keeps the final status.
  ASSERT_TRUE(registry_->RecordEnd(task_id, "starting-1", Exited(0), std::nullopt, 0).ok());
  EXPECT_EQ(Read(task_id).FindAgent("starting-1")->status, "terminated");
}

TEST_P(RegistryConformanceTest, NoAdmissionRacingAStopOutlivesIt) {
  constexpr int kThreads = 6, kEach = 5;
  std::string task_id = CreateTask(kThreads * kEach, kThreads * kEach);
  std::atomic<int> admitted{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<Registry> connection = engine_->Open();
      for (int i = 0; i < kEach; ++i) {
        std::string id = "w" + std::to_string(t) + "-" + std::to_string(i);
        Result<AgentRecord> agent = connection->Admit(task_id, Request(id), 0);
        if (agent.ok()) {
          ++admitted;
        } else if (agent.status().message().find("was stopped") != std::string::npos) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  std::unique_ptr<Registry> stopper = engine_->Open();
  Result<StopOutcome> stopped = stopper->StopTask(task_id, "race", 5000);
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(admitted + refused, kThreads * kEach);
  TaskRecord task = Read(task_id);
  EXPECT_EQ(static_cast<int>(task.agents.size()), admitted.load());
  EXPECT_EQ(static_cast<int>(stopped->marked.size()), admitted.load());
  EXPECT_EQ(task.active_count, 0);
  ExpectCountsDerived(task);
}

TEST_P(RegistryConformanceTest, StoppingAnUnknownTaskIsNotFound) {
  std::string task_id = NewTaskId();
  engine_->PrepareTask(task_id);
  Result<StopOutcome> stopped = registry_->StopTask(task_id, "stop", 5000);
  EXPECT_TRUE(stopped.status().Is(Status::Code::kNotFound)) << stopped.status().ToString();
}

TEST_P(RegistryConformanceTest, ConcurrentAdmissionsReserveDistinctPortsReusedOnlyAfterAnEnd) {
  constexpr int kThreads = 8;
  std::string task_id = CreateTask();
  std::vector<int> candidates;
  for (int port = 20000; port < 20000 + kThreads; ++port) candidates.push_back(port);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      AdmissionRequest request = Request("worker-" + std::to_string(i));
      request.port_candidates = candidates;
      EXPECT_TRUE(engine_->Open()->Admit(task_id, request, 0).ok());
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<int> ports;
  for (const AgentRecord& agent : Read(task_id).agents) {
    ASSERT_TRUE(agent.port.has_value()) << agent.id;
    ports.insert(*agent.port);
  }
  EXPECT_EQ(ports.size(), static_cast<size_t>(kThreads));
  // Every candidate is held: the next agent gets none, until one ends.
  AdmissionRequest late = Request("worker-late");
  late.port_candidates = candidates;
  Result<AgentRecord> without = registry_->Admit(task_id, late, 0);
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->port.has_value());
  ASSERT_TRUE(registry_->RecordEnd(task_id, "worker-3", Exited(0), std::nullopt, 0).ok());
  late.agent_id = "worker-later";
  Result<AgentRecord> reused = registry_->Admit(task_id, late, 0);
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(reused->port, Read(task_id).FindAgent("worker-3")->port);
}

TEST_P(RegistryConformanceTest, AWorktreeRecordIsReplacedInOneTransaction) {
  std::string task_id = CreateTask();
  AdmissionRequest request = Request("worker-1");
  request.worktree = WorktreeRecord{.repository = "/p", .path = "/w", .branch = "herd/T/worker-1"};
  ASSERT_TRUE(registry_->Admit(task_id, request, 0).ok());
  EXPECT_EQ(Read(task_id).FindAgent("worker-1")->worktree->branch, "herd/T/worker-1");
  WorktreeRecord created = *request.worktree;
  created.base_sha = "abc";
  created.merge = MergeRecord{.commit = "def", .strategy = "squash", .into = "main"};
  ASSERT_TRUE(registry_->RecordWorktree(task_id, "worker-1", created).ok());
  TaskRecord task = Read(task_id);
  EXPECT_EQ(task.FindAgent("worker-1")->worktree->base_sha, "abc");
  EXPECT_EQ(task.FindAgent("worker-1")->worktree->merge->commit, "def");
  uint64_t sequence = Sequence(task_id);
  Status unknown = registry_->RecordWorktree(task_id, "nobody", created);
  EXPECT_TRUE(unknown.Is(Status::Code::kNotFound)) << unknown.ToString();
  EXPECT_EQ(Sequence(task_id), sequence);
}

// The surfaces read journals through the registry: the count of every
// committed line, and the newest ones, oldest first, as compact JSON.
TEST_P(RegistryConformanceTest, ReadJournalReturnsCommittedLinesNewestLast) {
  std::string task_id = CreateTask();
  Admit(task_id, "worker-1");
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        registry_
            ->ReportProgress(task_id, "worker-1", "working", "step " + std::to_string(i), i * 10)
            .ok());
  }
  ASSERT_TRUE(registry_->ReportFinding(task_id, "worker-1", {"issue", "low", "found it", {}}).ok());
  const AgentRecord agent = *Read(task_id).FindAgent("worker-1");

  Result<JournalSlice> progress = registry_->ReadJournal(task_id, agent, Journal::kProgress, 2);
  ASSERT_TRUE(progress.ok()) << progress.status().ToString();
  EXPECT_EQ(progress->total, 3u);
  ASSERT_EQ(progress->newest.size(), 2u);
  EXPECT_THAT(progress->newest[0], HasSubstr("step 2"));
  EXPECT_THAT(progress->newest[1], HasSubstr("step 3"));
  EXPECT_THAT(progress->newest[1], HasSubstr("\"timestamp\":\""));  // compact

  Result<JournalSlice> whole =
      registry_->ReadJournal(task_id, agent, Journal::kProgress, Registry::kWholeJournal);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->newest.size(), 3u);
  Result<JournalSlice> findings = registry_->ReadJournal(task_id, agent, Journal::kFindings, 0);
  ASSERT_TRUE(findings.ok());
  EXPECT_EQ(findings->total, 1u);
  EXPECT_TRUE(findings->newest.empty());

  Admit(task_id, "quiet-1");
  const AgentRecord quiet = *Read(task_id).FindAgent("quiet-1");
  Result<JournalSlice> none = registry_->ReadJournal(task_id, quiet, Journal::kProgress, 5);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->total, 0u);
}

TEST_P(RegistryConformanceTest, TaskIdsListsEveryTask) {
  std::string first = CreateTask();
  std::string second = CreateTask();
  Result<std::vector<std::string>> ids = registry_->TaskIds();
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_THAT(*ids, ::testing::UnorderedElementsAre(first, second));
}

// A commit from another process wakes a waiter that opened its watch
// before reading; with no commit the wait returns at its deadline, and a
// stop ends it at once.
TEST_P(RegistryConformanceTest, WatchCommitsWakesOnAnotherProcessesCommit) {
  std::string task_id = CreateTask();
  std::string other_task = CreateTask();
  Result<std::unique_ptr<CommitWatch>> watch = registry_->WatchCommits(task_id);
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  uint64_t before = Sequence(task_id);  // the catch-up read

  // Another task's commit does not count; nothing else happens: the deadline.
  ASSERT_TRUE(registry_->ChangeLimits(other_task, LimitsChange{.max_agents = 30}).ok());
  Result<Wake> quiet =
      (*watch)->WaitUntil(MonotonicClock::now() + std::chrono::milliseconds(200), nullptr);
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_EQ(*quiet, Wake::kDeadline);

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::unique_ptr<Registry> connection = engine_->Open();
    _exit(connection->ChangeLimits(task_id, LimitsChange{.max_agents = 40}).ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // Generous: the commit happened already, so this returns at once.
  Result<Wake> woken =
      (*watch)->WaitUntil(MonotonicClock::now() + std::chrono::seconds(60), nullptr);
  ASSERT_TRUE(woken.ok()) << woken.status().ToString();
  EXPECT_EQ(*woken, Wake::kChanged);
  EXPECT_GT(Sequence(task_id), before);

  Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
  ASSERT_TRUE(stop.ok());
  (*stop)->Stop();
  Result<Wake> stopped = (*watch)->WaitUntil(MonotonicClock::time_point::max(), stop->get());
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(*stopped, Wake::kStopped);
}

INSTANTIATE_TEST_SUITE_P(Engines, RegistryConformanceTest, ::testing::ValuesIn(kEngines),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace herd::registry
