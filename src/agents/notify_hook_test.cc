// The notification hook with real agents, real supervisors and the real
// herd binary: every end runs the person's command exactly once, with the
// event in its environment, also when many agents end at once; a hook
// that hangs is killed at its timeout; a failing hook is logged and
// changes nothing; a hook's output never reaches a command's stdout.
// Nothing waits with a fixed sleep: files are awaited through inotify and
// processes through pidfds, with generous deadlines.
#include "agents/notify_hook.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class NotifyHookTest : public HerdTest {
 protected:
  // A hook that appends "<agent> <event> <old> <new> <exit code> <task>" to
  // `events_` (one short write: lines never interleave).
  std::string RecordingHook() const {
    return "printf '%s %s %s %s %s %s\\n' \"$HERD_AGENT_ID\" \"$HERD_EVENT\" \"$HERD_OLD_STATUS\" "
           "\"$HERD_NEW_STATUS\" \"${HERD_EXIT_CODE:--}\" \"$HERD_TASK_ID\" >> " +
           events_;
  }

  // Waits until `count` hook lines have arrived and every hook runner of
  // the task is gone, so no late line can still come; returns the lines.
  std::vector<std::string> EventsOnceSettled(const std::string& task_id, size_t count) {
    EXPECT_TRUE(WaitForDirectoryChange(
        ParentDirectory(events_), [&] { return ReadLines(events_).size() >= count; }, DeadlineIn()))
        << "hook lines so far:\n"
        << ReadFile(events_);
    EXPECT_TRUE(WaitForExit(ProcessesWithEnvironment("HERD_TASK_ID=" + task_id)))
        << "hooks or agents of the task still running";
    return ReadLines(events_);
  }

  // Agent id -> its hook lines.
  static std::map<std::string, std::vector<std::string>> ByAgent(
      const std::vector<std::string>& lines) {
    std::map<std::string, std::vector<std::string>> by_agent;
    for (const std::string& line : lines) by_agent[line.substr(0, line.find(' '))].push_back(line);
    return by_agent;
  }

  std::string events_ = Subdirectory("hook") + "/events.txt";
};

TEST_F(NotifyHookTest, EveryEndRunsTheHookOnceWithItsEventEvenWhenManyEndAtOnce) {
  std::string task_id = CreateTask({"--notify-command", RecordingHook(), "--max-concurrent", "20"});
  // Twelve agents that end together (each waits for the same file), two
  // that fail, two that are killed.
  std::string go = Subdirectory("go") + "/now";
  std::string wait_then = "while [ ! -e " + go + " ]; do sleep 0.05; done; exit ";
  std::vector<std::string> completing, failing, killed;
  for (int i = 0; i < 12; ++i)
    completing.push_back(DeployAgent(task_id, {"sh", "-c", wait_then + "0"}));
  for (int i = 0; i < 2; ++i) failing.push_back(DeployAgent(task_id, {"sh", "-c", "exit 3"}));
  for (int i = 0; i < 2; ++i) killed.push_back(DeployAgent(task_id, {"sleep", "600"}));
  for (const std::string& agent : killed) {
    ASSERT_EQ(Herd({"kill", task_id, agent, "--grace", "1"}).exit_code, 0);
  }
  std::ofstream(go) << "go";

  std::vector<std::string> lines = EventsOnceSettled(task_id, 16);
  auto by_agent = ByAgent(lines);
  ASSERT_EQ(lines.size(), 16u) << ReadFile(events_);
  ASSERT_EQ(by_agent.size(), 16u) << "an agent's end ran the hook twice:\n" << ReadFile(events_);
  for (const std::string& agent : completing) {
    ASSERT_EQ(by_agent[agent].size(), 1u) << agent;
    EXPECT_EQ(by_agent[agent][0], agent + " agent_completed running completed 0 " + task_id);
  }
  for (const std::string& agent : failing) {
    ASSERT_EQ(by_agent[agent].size(), 1u) << agent;
    EXPECT_EQ(by_agent[agent][0], agent + " agent_failed running error 3 " + task_id);
  }
  for (const std::string& agent : killed) {
    ASSERT_EQ(by_agent[agent].size(), 1u) << agent;
    // Run by `herd kill`, which commits the termination before the exit.
    EXPECT_EQ(by_agent[agent][0], agent + " agent_killed running terminated - " + task_id);
  }
}

TEST_F(NotifyHookTest, TheEnvironmentsCommandIsUsedWhenTheTaskHasNone) {
  RunOptions options;
  options.environment = {{"HERD_NOTIFY_COMMAND", RecordingHook()}};
  std::string task_id = CreateTask();
  CommandResult deployed = Herd(DeployArgs(task_id, "worker", {"true"}), options);
  ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();
  std::vector<std::string> lines = EventsOnceSettled(task_id, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr(" agent_completed running completed 0 "));
}

TEST_F(NotifyHookTest, AHookThatHangsIsKilledAtItsTimeoutAndTheEndIsRecorded) {
  std::string pid_file = Subdirectory("hang") + "/pid";
  RunOptions options;
  options.environment = {{"HERD_NOTIFY_TIMEOUT_SECONDS", "1"}};
  std::string task_id =
      CreateTask({"--notify-command", "echo $$ > " + pid_file + ".tmp && mv " + pid_file + ".tmp " +
                                          pid_file + " && exec sleep 600"});
  CommandResult deployed = Herd(DeployArgs(task_id, "worker", {"true"}), options);
  ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();
  std::string agent_id = deployed.Json().at("agent_id");
  ASSERT_TRUE(WaitForFile(pid_file));
  Identity hook = IdentityOf(std::stoi(ReadFile(pid_file)));
  EXPECT_TRUE(WaitForExit(hook)) << "the hook outlived its timeout";
  EXPECT_EQ(WaitForAgentToEnd(task_id, agent_id).value("status", ""), "completed");
  std::string supervisor_log = TaskDirectory(task_id) + "/logs/" + agent_id + "_supervisor.log";
  EXPECT_TRUE(WaitForFileContaining(supervisor_log, "still running after 1 s: killed"))
      << ReadFile(supervisor_log);
}

TEST_F(NotifyHookTest, AFailingHookIsLoggedAndChangesNothing) {
  std::string task_id = CreateTask({"--notify-command", "exit 7"});
  std::string agent_id = DeployAgent(task_id, {"true"});
  EXPECT_EQ(WaitForAgentToEnd(task_id, agent_id).value("status", ""), "completed");
  std::string supervisor_log = TaskDirectory(task_id) + "/logs/" + agent_id + "_supervisor.log";
  EXPECT_TRUE(WaitForFileContaining(supervisor_log, "exited with 7")) << ReadFile(supervisor_log);
  EXPECT_EQ(Status(task_id)["agents"]["agents_list"][0].value("status", ""), "completed");
}

TEST_F(NotifyHookTest, AHooksOutputNeverReachesTheCommandsStdout) {
  std::string marker = Subdirectory("marker") + "/ran";
  std::string task_id =
      CreateTask({"--notify-command", "echo HOOK-STDOUT; echo HOOK-STDERR >&2; touch " + marker});
  std::string agent_id = DeployAgent(task_id, {"sleep", "600"});
  CommandResult killed = Herd({"kill", task_id, agent_id, "--grace", "1", "--json"});
  ASSERT_EQ(killed.exit_code, 0) << killed.Describe();
  EXPECT_FALSE(killed.Json().is_discarded()) << killed.out;
  ASSERT_TRUE(WaitForFile(marker)) << "the hook did not run";
  EXPECT_THAT(killed.out, Not(HasSubstr("HOOK-")));
}

TEST(NotifyEnvironmentTest, CarriesEveryFieldOfTheTransition) {
  registry::AgentTransition transition;
  transition.event = "agent_limit_hit";
  transition.task_id = "TASK-1";
  transition.agent_id = "worker-1";
  transition.old_status = "working";
  transition.new_status = "terminated";
  transition.reason = "max_cost_usd passed";
  transition.limit = "max_cost_usd";
  transition.exit_signal = 15;
  std::vector<std::string> environment = agents::NotifyEnvironment(transition);
  EXPECT_THAT(environment,
              ::testing::IsSupersetOf({"HERD_EVENT=agent_limit_hit", "HERD_TASK_ID=TASK-1",
                                       "HERD_AGENT_ID=worker-1", "HERD_OLD_STATUS=working",
                                       "HERD_NEW_STATUS=terminated",
                                       "HERD_REASON=max_cost_usd passed", "HERD_LIMIT=max_cost_usd",
                                       "HERD_EXIT_CODE=", "HERD_EXIT_SIGNAL=15"}));
  auto json_entry = std::find_if(environment.begin(), environment.end(), [](const std::string& e) {
    return e.rfind("HERD_EVENT_JSON=", 0) == 0;
  });
  ASSERT_NE(json_entry, environment.end());
  json event = json::parse(json_entry->substr(std::string("HERD_EVENT_JSON=").size()));
  EXPECT_EQ(event["event"], "agent_limit_hit");
  EXPECT_EQ(event["exit_signal"], 15);
  EXPECT_TRUE(event["exit_code"].is_null());
}

}  // namespace
}  // namespace herd::test_util
