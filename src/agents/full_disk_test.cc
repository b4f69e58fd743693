// herd on a full disk. The workspace lives on a real tmpfs of a few MiB
// (ScopedTmpfs), filled with one file until the kernel answers ENOSPC, so
// every registry write fails as it would on a real full disk; removing the
// file frees the space. Agents are real processes started by the real herd
// binary. Nothing waits with a fixed sleep: processes through pidfds, always
// with generous deadlines.
//
// Mounting needs root (or a user namespace); without either the tests skip
// and say why.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr size_t kDiskBytes = 8 * 1024 * 1024;

// Named agents_* so `ctest -R agents_` selects it (ctest sees only Suite.Test).
class agents_FullDisk : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    disk_.emplace(workspace(), kDiskBytes);
    if (!disk_->mounted()) GTEST_SKIP() << disk_->error();
  }

  // The names in the workspace that look like task directories.
  std::vector<std::string> TaskDirectories() const {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(workspace())) {
      std::string name = entry.path().filename().string();
      if (name.rfind("TASK-", 0) == 0) found.push_back(name);
    }
    return found;
  }

  // Destroyed after TearDown, which reads the registries on it to stop
  // whatever a failed test left running.
  std::optional<ScopedTmpfs> disk_;
};

TEST_F(agents_FullDisk, KillStopsTheAgentWhenTheRegistryCannotBeWritten) {
  std::string task = CreateTask();
  std::string marks = Subdirectory("marks");  // on the real disk, not the tmpfs
  std::string agent = DeployAgent(
      task, {"sh", "-c",
             "sleep 300 & echo ready > \"$0/agent.tmp\" && mv \"$0/agent.tmp\" \"$0/agent\"; wait",
             marks});
  ASSERT_TRUE(WaitForFile(marks + "/agent"));
  json entry = AgentEntry(task, agent);
  Identity supervisor = SupervisorOf(entry);
  Track(supervisor);
  // The agent and its child: everything below the supervisor.
  std::vector<Identity> agent_processes = DescendantsOf(supervisor.pid);
  for (const Identity& process : agent_processes) Track(process);
  ASSERT_GE(agent_processes.size(), 2u) << DescribeProcesses(agent_processes);

  std::string filler = disk_->Fill();
  CommandResult killed =
      Herd({"kill", task, agent, "--grace", "5", "--reason", "runaway", "--json"});

  // Stopped, by pid + start time, although nothing could be recorded.
  ASSERT_TRUE(WaitForExit(agent_processes))
      << "still running:" << DescribeProcesses(agent_processes) << "\n"
      << killed.Describe();
  EXPECT_EQ(killed.exit_code, 3) << killed.Describe();
  json output = killed.Json();
  EXPECT_TRUE(output.value("success", false)) << killed.Describe();
  EXPECT_FALSE(output.value("registry_recorded", true)) << killed.Describe();
  EXPECT_TRUE(output["cleanup"].value("all_exited", false)) << killed.Describe();
  EXPECT_THAT(output.value("warning", ""), HasSubstr("No space left on device"));
  EXPECT_THAT(killed.err, HasSubstr("the registry could not be written"));
  EXPECT_THAT(killed.err, HasSubstr("herd doctor --repair"));
  // The registry still holds the last version written: the supervisor
  // records the end once there is space.
  EXPECT_EQ(AgentEntry(task, agent).value("status", ""), "running");
  EXPECT_TRUE(IsRunning(supervisor)) << "the supervisor gave up at once";
  // Doctor leaves the entry to the supervisor that is still trying to record it.
  CommandResult doctor = Herd({"doctor", "--json"});
  // Json() returns a temporary: hold it, or the loop walks freed memory.
  json report = doctor.Json();
  ASSERT_TRUE(report.is_object()) << doctor.Describe();
  for (const json& base : report["workspaces"]) {
    for (const json& listed : base["tasks"]) {
      for (const json& finding : listed["findings"]) {
        EXPECT_NE(finding.value("agent_id", ""), agent) << finding.dump(2);
      }
    }
  }

  ASSERT_EQ(::unlink(filler.c_str()), 0);
  // Its retries back off to a few seconds; a minute means it stopped trying.
  ASSERT_TRUE(WaitForExit(supervisor, DeadlineIn(std::chrono::seconds(90))))
      << "the supervisor never recorded the exit";
  json ended = AgentEntry(task, agent);
  EXPECT_EQ(ended.value("status", ""), "terminated") << ended.dump(2);
  EXPECT_THAT(ended.value("termination_reason", ""), HasSubstr("stopped by herd kill"));
  EXPECT_THAT(ended.value("termination_reason", ""), HasSubstr("could not be recorded"));
  EXPECT_FALSE(ended.value("ended_at", json(nullptr)).is_null()) << ended.dump(2);

  json status = Status(task);
  json listed;
  for (const json& candidate : status["agents"]["agents_list"]) {
    if (candidate.value("id", "") == agent) listed = candidate;
  }
  EXPECT_EQ(listed.value("status", ""), "terminated") << status.dump(2);
  EXPECT_EQ(listed.value("liveness", ""), "ended") << status.dump(2);
  EXPECT_EQ(status["agents"].value("active", -1), 0) << status.dump(2);
}

TEST_F(agents_FullDisk, TaskCreateOnAFullDiskFailsAndLeavesNoTaskDirectory) {
  std::string filler = disk_->Fill();

  CommandResult created = Herd({"task", "create", "a task on a full disk", "--json"});

  EXPECT_EQ(created.exit_code, 1) << created.Describe();
  EXPECT_FALSE(created.Json().value("success", true)) << created.Describe();
  EXPECT_THAT(created.err, HasSubstr("No space left on device"));
  EXPECT_THAT(TaskDirectories(), IsEmpty());

  // Once there is space again, creating works.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  std::string task = CreateTask();
  EXPECT_EQ(TaskDirectories(), std::vector<std::string>{task});
}

}  // namespace
}  // namespace herd::test_util
