// Stopping a whole task through the real binary: `herd kill TASK --all` on
// hundreds of real sleeping agents started with `herd deploy`. Every agent
// ends terminated, no process of any of them is left (checked by pid +
// start time through /proc, and by the HERD_TASK_ID mark in the
// environment), nothing fails, and the task refuses later deploys with the
// reason. Waits use pidfds, never fixed sleeps; deadlines are generous.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

class KillAllTest : public HerdTest {
 protected:
  // Every agent's and every supervisor's process, as the registry records
  // them; each must be running now.
  void RunningProcesses(const std::string& task_id, std::vector<Identity>* agents,
                        std::vector<Identity>* supervisors) {
    json registry = TaskRegistry(task_id);
    for (const json& entry : registry["agents"]) {
      agents->push_back(AgentProcessOf(entry));
      supervisors->push_back(SupervisorOf(entry));
      EXPECT_TRUE(IsRunning(agents->back())) << entry.dump();
      EXPECT_TRUE(IsRunning(supervisors->back())) << entry.dump();
    }
  }
};

TEST_F(KillAllTest, StopsFourHundredSleepingAgentsWithNoneLeftAndNoError) {
  constexpr int kAgents = 400;
  std::string count = std::to_string(kAgents);
  std::string task = CreateTask({"--max-concurrent", count, "--max-agents", count});
  auto deploy_start = Clock::now();
  std::vector<std::string> agents = DeployCommandAgents(task, kAgents, {"sleep", "600"});
  std::printf("deployed %d agents in %.1f s\n", kAgents,
              MillisecondsBetween(deploy_start, Clock::now()) / 1000);
  std::vector<Identity> agent_processes, supervisors;
  RunningProcesses(task, &agent_processes, &supervisors);
  ASSERT_EQ(agent_processes.size(), static_cast<size_t>(kAgents));

  RunOptions patient;
  patient.timeout = std::chrono::minutes(5);
  CommandResult result =
      Herd({"kill", task, "--all", "--reason", "the plan changed", "--json"}, patient);

  json reply = result.Json();
  ASSERT_EQ(result.exit_code, 0) << result.Describe();
  std::printf("herd kill --all of %d agents: %.0f ms\n", kAgents, result.wall_ms);
  EXPECT_EQ(reply.value("marked", -1), kAgents) << reply.dump(2);
  EXPECT_EQ(reply.value("stopped", -1), kAgents) << reply.dump(2);
  EXPECT_EQ(reply.value("failed", -1), 0) << reply.dump(2);
  EXPECT_EQ(reply.value("already_exited", -1), 0) << reply.dump(2);
  EXPECT_EQ(reply.value("starting", -1), 0) << reply.dump(2);
  EXPECT_TRUE(reply.value("registry_recorded", false)) << reply.dump(2);
  EXPECT_FALSE(reply.contains("warning")) << reply.dump(2);
  EXPECT_EQ(result.err, "") << "no error or warning";

  // Every agent is terminated, as one transaction left it.
  json registry = TaskRegistry(task);
  for (const json& entry : registry["agents"]) {
    EXPECT_EQ(entry.value("status", ""), "terminated") << entry.dump();
    EXPECT_EQ(entry.value("termination_reason", ""), "the plan changed") << entry.dump();
  }
  EXPECT_EQ(registry.value("active_count", -1), 0);
  EXPECT_EQ(registry.value("stopped_reason", ""), "the plan changed");

  // No agent process is left when the command returns; the supervisors
  // exit once each has recorded its agent's end.
  std::vector<Identity> left;
  for (const Identity& process : agent_processes) {
    if (IsRunning(process)) left.push_back(process);
  }
  EXPECT_TRUE(left.empty()) << left.size() << " agents still run:" << DescribeProcesses(left);
  EXPECT_TRUE(WaitForExit(supervisors, DeadlineIn(std::chrono::minutes(2))));
  std::vector<Identity> marked = ProcessesWithEnvironment("HERD_TASK_ID=" + task);
  EXPECT_TRUE(marked.empty()) << DescribeProcesses(marked);
  json recorded = TaskRegistry(task);
  for (const json& entry : recorded["agents"]) {
    EXPECT_EQ(entry.value("status", ""), "terminated") << "a late exit record keeps it";
    EXPECT_EQ(entry.value("phase", ""), "exited") << entry.dump();
  }

  CommandResult late = Herd(DeployArgs(task, "late", {"true"}));
  EXPECT_EQ(late.exit_code, 1) << late.Describe();
  EXPECT_THAT(late.err, HasSubstr("the plan changed"));
}

TEST_F(KillAllTest, ASecondKillAllStopsNothingAndSucceeds) {
  std::string task = CreateTask();
  std::vector<std::string> agents = DeployCommandAgents(task, 3, {"sleep", "600"});
  json first = HerdJson({"kill", task, "--all", "--grace", "5"});
  EXPECT_EQ(first.value("stopped", -1), 3) << first.dump(2);
  EXPECT_EQ(first.value("reason", ""), "Manual termination");
  for (const std::string& agent : agents) WaitForAgentToEnd(task, agent);

  json again = HerdJson({"kill", task, "--all", "--reason", "again"});

  EXPECT_TRUE(again.value("already_stopped", false)) << again.dump(2);
  EXPECT_EQ(again.value("marked", -1), 0);
  EXPECT_EQ(again.value("stopped", -1), 0);
  EXPECT_EQ(again.value("reason", ""), "Manual termination") << "the first stop's";
  CommandResult text = Herd({"kill", task, "--all"});
  EXPECT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_THAT(text.out, HasSubstr("already stopped"));
}

TEST_F(KillAllTest, AllWithAnAgentOrNeitherIsAUsageError) {
  std::string task = CreateTask();
  CommandResult both = Herd({"kill", task, "worker-000000-abcdef", "--all"});
  EXPECT_EQ(both.exit_code, 2) << both.Describe();
  EXPECT_THAT(both.err, HasSubstr("not both"));
  CommandResult neither = Herd({"kill", task});
  EXPECT_EQ(neither.exit_code, 2) << neither.Describe();
  EXPECT_THAT(neither.err, HasSubstr("--all"));
  // The stop takes the kill's checks: the same grace range.
  CommandResult grace = Herd({"kill", task, "--all", "--grace", "601"});
  EXPECT_EQ(grace.exit_code, 1) << grace.Describe();
  EXPECT_THAT(grace.err, HasSubstr("--grace must be a number in 0-600, not 601"));
  CommandResult unknown = Herd({"kill", "TASK-20260101-000000-00000000", "--all"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.Describe();
}

}  // namespace
}  // namespace herd::test_util
