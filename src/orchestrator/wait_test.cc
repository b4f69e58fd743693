// Orchestrator::WaitForAgents with real agents (`command` agents: tiny real
// processes under their supervisors): it returns once the agents have
// ended (all, or any), at its timeout with who is still active, or when
// stopped; its report carries each agent's status, exit, last message,
// findings and usage; progress is reported as agents end; unknown ids are
// errors. Nothing here sleeps: agents end on their own (`sleep 0.3`), by a
// kill, when the test writes to their FIFO, or never (`sleep 300`), and
// every wait that should not time out has a generous timeout.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "orchestrator/orchestrator.h"

namespace herd::test_util {
namespace {

constexpr double kGenerousSeconds = 60;

class WaitTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    orchestrator_ = std::make_unique<Orchestrator>(registry::Workspace(workspace()),
                                                   registry::RegistryStores());
    CreateTaskRequest request;
    request.description = "a task made by a wait test";
    Result<json> created = orchestrator_->CreateTask(request);
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    task_ = created->value("task_id", "");
  }

  const Orchestrator& orchestrator() const { return *orchestrator_; }

  std::string StartAgent(std::vector<std::string> argv) {
    agents::DeployRequest request;
    request.task_id = task_;
    request.agent_type = "worker";
    request.prompt = "run the command";
    request.backend = "command";
    request.command_argv = std::move(argv);
    Result<json> deployed = orchestrator().Deploy(request);
    if (!deployed.ok()) throw std::runtime_error(deployed.status().ToString());
    return deployed->value("agent_id", "");
  }

  WaitRequest Request(std::vector<std::string> agent_ids = {}, double timeout = kGenerousSeconds,
                      const std::string& mode = "all") const {
    WaitRequest request;
    request.task_id = task_;
    request.agent_ids = std::move(agent_ids);
    request.timeout_seconds = timeout;
    request.mode = mode;
    return request;
  }

  WaitReport Wait(const WaitRequest& request, const WaitHooks& hooks = {}) const {
    Result<WaitReport> report = orchestrator().WaitForAgents(request, hooks);
    if (!report.ok()) throw std::runtime_error(report.status().ToString());
    return std::move(report).value();
  }

  static const WaitedAgent& Find(const WaitReport& report, const std::string& agent_id) {
    for (const WaitedAgent& waited : report.agents) {
      if (waited.agent.id == agent_id) return waited;
    }
    throw std::runtime_error("the report does not list " + agent_id);
  }

  std::string task_;

 private:
  std::unique_ptr<Orchestrator> orchestrator_;
};

TEST_F(WaitTest, ReturnsOnceEveryNamedAgentHasEnded) {
  std::string quick = StartAgent({"sleep", "0.3"});
  std::string slower = StartAgent({"sh", "-c", "sleep 0.6; exit 3"});
  WaitReport report = Wait(Request({quick, slower}));
  EXPECT_EQ(report.outcome, WaitReport::Outcome::kConditionMet) << report.Summary();
  ASSERT_EQ(report.agents.size(), 2u);
  EXPECT_TRUE(report.StillActive().empty());
  EXPECT_EQ(Find(report, quick).agent.status, "completed");
  EXPECT_EQ(Find(report, quick).agent.exit->exit_code, 0);
  EXPECT_EQ(Find(report, slower).agent.status, "error");
  EXPECT_EQ(Find(report, slower).agent.exit->exit_code, 3);
  EXPECT_EQ(report.Summary(), "2 of 2 agents have ended (1 completed, 1 error)");
  json reply = report.ToJson();
  EXPECT_EQ(reply["condition_met"], true);
  EXPECT_EQ(reply["timed_out"], false);
  EXPECT_EQ(reply["agents"][0]["ended"], true);
  EXPECT_TRUE(reply["agents"][0]["usage"].contains("total_tokens")) << reply.dump();
}

TEST_F(WaitTest, TimesOutWithTheAgentsStillActive) {
  std::string sleeper = StartAgent({"sleep", "300"});
  std::string done = StartAgent({"true"});
  WaitForAgentToEnd(task_, done);
  WaitReport report = Wait(Request({sleeper, done}, 0.3));
  EXPECT_EQ(report.outcome, WaitReport::Outcome::kTimedOut);
  EXPECT_GE(report.waited_seconds, 0.3);
  EXPECT_EQ(report.StillActive(), std::vector<std::string>{sleeper});
  EXPECT_EQ(Find(report, sleeper).liveness, agents::Liveness::kAlive);
  EXPECT_NE(report.Summary().find("1 still active: " + sleeper), std::string::npos)
      << report.Summary();
  EXPECT_NE(report.Summary().find("Call wait_for_agents again"), std::string::npos);
  json reply = report.ToJson();
  EXPECT_EQ(reply["condition_met"], false);
  EXPECT_EQ(reply["timed_out"], true);
  EXPECT_EQ(reply["still_active"], json::array({sleeper}));
}

TEST_F(WaitTest, AnyReturnsWhenTheFirstEnds) {
  std::string sleeper = StartAgent({"sleep", "300"});
  std::string quick = StartAgent({"sleep", "0.3"});
  WaitReport report = Wait(Request({sleeper, quick}, kGenerousSeconds, "any"));
  EXPECT_EQ(report.outcome, WaitReport::Outcome::kConditionMet) << report.Summary();
  EXPECT_EQ(report.StillActive(), std::vector<std::string>{sleeper});
  EXPECT_TRUE(Find(report, quick).ended());
}

TEST_F(WaitTest, ReportsTheLastMessageFindingsAndEndOfAKilledAgent) {
  std::string agent = StartAgent({"sleep", "300"});
  ASSERT_TRUE(orchestrator().ReportProgress({task_, agent, "working", "half way there", 50}).ok());
  for (const char* message : {"first thing found", "second thing found"}) {
    ASSERT_TRUE(orchestrator().ReportFinding({task_, agent, "issue", "low", message, {}}).ok());
  }
  // The wait starts before the kill and is woken by it.
  std::thread killer([&] {
    Result<json> killed = orchestrator().Kill({task_, agent, "enough for the test"});
    EXPECT_TRUE(killed.ok()) << killed.status().ToString();
  });
  WaitReport report = Wait(Request({agent}));
  killer.join();
  ASSERT_EQ(report.outcome, WaitReport::Outcome::kConditionMet) << report.Summary();
  const WaitedAgent& waited = Find(report, agent);
  EXPECT_EQ(waited.agent.status, "terminated");
  EXPECT_EQ(waited.findings, 2u);
  json entry = waited.ToJson();
  EXPECT_EQ(entry["last_message"], "half way there");
  EXPECT_EQ(entry["reason"], "enough for the test");
  EXPECT_EQ(entry["findings"], 2);
}

TEST_F(WaitTest, WaitsForEveryActiveAgentReportsProgressAndStopsWhenAsked) {
  // `held` ends once something is written to its FIFO, which the test does
  // from inside the wait: the agent is certain to end during the wait.
  std::string fifo = root() + "/release";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string held = StartAgent({"sh", "-c", "read line < '" + fifo + "'"});
  std::string sleeper = StartAgent({"sleep", "300"});
  Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
  ASSERT_TRUE(stop.ok());
  std::vector<std::string> messages;
  WaitHooks hooks;
  hooks.progress_interval = std::chrono::milliseconds(20);
  hooks.stop = stop->get();
  hooks.progress = [&](const std::string& message) {
    messages.push_back(message);
    if (message.rfind("0 of 2 agents ended", 0) == 0) {
      // Until `held`'s shell has opened its end, this fails (ENXIO): the
      // next tick tries again.
      int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd >= 0) {
        EXPECT_EQ(::write(fd, "go\n", 3), 3);
        ::close(fd);
      }
    }
    // The caller gives up once it hears that one agent has ended.
    if (message.rfind("1 of 2 agents ended; waiting for 1", 0) == 0) (*stop)->Stop();
  };
  WaitReport report = Wait(Request(), hooks);  // unnamed: both active agents
  EXPECT_EQ(report.outcome, WaitReport::Outcome::kStopped) << report.Summary();
  ASSERT_GE(messages.size(), 2u);
  EXPECT_EQ(messages.front().rfind("0 of 2 agents ended", 0), 0u) << messages.front();
  EXPECT_EQ(messages.back().rfind("1 of 2 agents ended", 0), 0u) << messages.back();
  ASSERT_EQ(report.agents.size(), 2u);
  EXPECT_EQ(Find(report, held).agent.status, "completed");
  EXPECT_EQ(report.StillActive(), std::vector<std::string>{sleeper});
  EXPECT_EQ(report.ToJson()["stopped"], true);
}

TEST_F(WaitTest, NothingActiveHoldsAtOnce) {
  std::string done = StartAgent({"true"});
  WaitForAgentToEnd(task_, done);
  // Unnamed: agents that had ended before the wait are not waited for.
  WaitReport report = Wait(Request({}, kGenerousSeconds, "any"));
  EXPECT_EQ(report.outcome, WaitReport::Outcome::kConditionMet);
  EXPECT_TRUE(report.agents.empty());
  EXPECT_EQ(report.Summary(), "no agents to wait for: none of the task's agents is active");
  // Named: it is reported, already ended.
  report = Wait(Request({done}));
  EXPECT_EQ(report.outcome, WaitReport::Outcome::kConditionMet);
  ASSERT_EQ(report.agents.size(), 1u);
  EXPECT_EQ(report.agents[0].agent.status, "completed");
}

TEST_F(WaitTest, UnknownTaskOrAgentIsNotFound) {
  Result<WaitReport> report = orchestrator().WaitForAgents(Request({"nobody-000000-abcdef"}));
  ASSERT_FALSE(report.ok());
  EXPECT_TRUE(report.status().Is(Status::Code::kNotFound)) << report.status().ToString();
  EXPECT_NE(report.status().message().find("nobody-000000-abcdef"), std::string::npos);
  WaitRequest other = Request();
  other.task_id = "TASK-20260101-000000-00000000";
  report = orchestrator().WaitForAgents(other);
  ASSERT_FALSE(report.ok());
  EXPECT_TRUE(report.status().Is(Status::Code::kNotFound)) << report.status().ToString();
}

}  // namespace
}  // namespace herd::test_util
