// Follow-up messages with real agents, real supervisors and the real herd
// binary (`herd send`): a message to an ended agent runs as its next turn
// with the message on stdin and HERD_TURN set; messages to a running agent
// wait and run in order after its turn; --interrupt stops the running turn
// and runs the message at once; a kill drops what waits, saying so; the
// notification hook sees each ended turn once. Nothing waits with a fixed
// sleep: supervisors are awaited through pidfds, files through inotify.
#include "agents/conversation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "registry/workspace.h"

namespace herd::test_util {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ConversationTest : public HerdTest {
 protected:
  // An agent that prints its turn and what it was told on stdin, then, in
  // its first turn, runs `first_turn_then` (a shell command).
  static std::vector<std::string> EchoAgent(const std::string& first_turn_then = "true") {
    return {"sh", "-c",
            "printf 'turn %s: %s\\n' \"$HERD_TURN\" \"$(cat)\"; "
            "if [ \"$HERD_TURN\" = 1 ]; then " +
                first_turn_then + "; fi"};
  }

  json Send(const std::string& task_id, const std::string& agent_id, const std::string& message,
            std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"send", task_id, agent_id, message};
    args.insert(args.end(), extra.begin(), extra.end());
    return HerdJson(args);
  }

  // Waits until the agent's entry has reached `turn` and that turn's
  // supervisor has exited; returns the entry.
  json WaitForTurnToEnd(const std::string& task_id, const std::string& agent_id, int turn) {
    EXPECT_TRUE(WaitForDirectoryChange(
        TaskDirectory(task_id),
        [&] {
          json agent = AgentEntry(task_id, agent_id);
          return agent.value("turn", 1) >= turn && agent.contains("ended_at");
        },
        DeadlineIn()))
        << AgentEntry(task_id, agent_id).dump(2);
    return WaitForAgentToEnd(task_id, agent_id);
  }

  std::vector<std::string> TurnLines(const std::string& task_id, const std::string& agent_id) {
    std::vector<std::string> turns;
    for (const std::string& line : ReadLines(LogPath(task_id, agent_id))) {
      if (line.rfind("turn ", 0) == 0) turns.push_back(line);
    }
    return turns;
  }
};

TEST_F(ConversationTest, AMessageToAnEndedAgentRunsAsItsNextTurn) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, EchoAgent("exit 3"), "worker", {"--prompt", "first"});
  json ended = WaitForAgentToEnd(task_id, agent_id);
  ASSERT_EQ(ended["status"], "error");

  json sent = Send(task_id, agent_id, "second");
  EXPECT_EQ(sent["delivery"], "new_turn");
  EXPECT_EQ(sent["turn"], 2);
  json agent = WaitForTurnToEnd(task_id, agent_id, 2);

  EXPECT_THAT(TurnLines(task_id, agent_id), ElementsAre("turn 1: first", "turn 2: second"));
  EXPECT_EQ(agent["status"], "completed");
  EXPECT_EQ(agent["turn"], 2);
  ASSERT_EQ(agent["turns"].size(), 1u);
  EXPECT_EQ(agent["turns"][0]["status"], "error") << "the first turn's end is kept";
  EXPECT_EQ(agent["turns"][0]["exit_code"], 3);
  EXPECT_EQ(agent["exit_code"], 0);
  EXPECT_EQ(agent["turn_message"]["preview"], "second");
  EXPECT_EQ(TaskRegistry(task_id)["active_count"], 0);
}

// An ended agent's HERD_PORT is free for others; if another running agent
// holds it when a follow-up arrives, the new turn runs with the port the
// registry gives it now (here none: the range has one port), never a held one.
TEST_F(ConversationTest, ANewTurnNeverRunsWithAPortAnotherRunningAgentHolds) {
  ScopedEnvironment environment;
  environment.Set("HERD_PORT_RANGE", "27811-27811");
  std::vector<std::string> agent = {
      "sh", "-c", "cat >/dev/null; echo \"turn $HERD_TURN port ${HERD_PORT:-none}\""};
  std::string task_id = CreateTask();
  std::string first = DeployAgent(task_id, agent);
  ASSERT_EQ(WaitForAgentToEnd(task_id, first).value("port", 0), 27811);
  std::string holder = DeployAgent(task_id, {"sleep", "300"});
  ASSERT_EQ(AgentEntry(task_id, holder).value("port", 0), 27811);

  EXPECT_EQ(Send(task_id, first, "again")["delivery"], "new_turn");
  json after = WaitForTurnToEnd(task_id, first, 2);

  EXPECT_THAT(TurnLines(task_id, first), ElementsAre("turn 1 port 27811", "turn 2 port none"));
  EXPECT_FALSE(after.contains("port")) << after.dump(2);
  HerdJson({"kill", task_id, holder, "--grace", "1"});
}

TEST_F(ConversationTest, MessagesToARunningAgentRunInOrderAfterItsTurnAndTheHookSeesEachTurn) {
  std::string events = Subdirectory("hook") + "/events.txt";
  std::string hook = "printf '%s %s\\n' \"$HERD_EVENT\" \"$HERD_TURN\" >> " + events;
  std::string task_id = CreateTask({"--notify-command", hook});
  std::string go = Subdirectory("go") + "/now";
  std::string agent_id =
      DeployAgent(task_id, EchoAgent("while [ ! -e " + go + " ]; do sleep 0.05; done"), "worker",
                  {"--prompt", "first"});

  json one = Send(task_id, agent_id, "second");
  json two = Send(task_id, agent_id, "third");
  EXPECT_EQ(one["delivery"], "queued");
  EXPECT_EQ(one["queue_position"], 1);
  EXPECT_EQ(two["queue_position"], 2);
  EXPECT_EQ(AgentEntry(task_id, agent_id)["message_queue"].size(), 2u);
  std::ofstream(go) << "go";

  json agent = WaitForTurnToEnd(task_id, agent_id, 3);
  EXPECT_THAT(TurnLines(task_id, agent_id),
              ElementsAre("turn 1: first", "turn 2: second", "turn 3: third"));
  EXPECT_EQ(agent["status"], "completed");
  EXPECT_EQ(agent["turns"].size(), 2u);
  EXPECT_FALSE(agent.contains("message_queue"));
  EXPECT_EQ(agent["supervisor_pid"], agent["turns"][0]["supervisor_pid"])
      << "queued turns run under the same supervisor";

  ASSERT_TRUE(WaitForDirectoryChange(
      ParentDirectory(events), [&] { return ReadLines(events).size() >= 3; }, DeadlineIn()));
  ASSERT_TRUE(WaitForExit(ProcessesWithEnvironment("HERD_TASK_ID=" + task_id)));
  EXPECT_THAT(ReadLines(events),
              ElementsAre("agent_turn_finished 1", "agent_turn_finished 2", "agent_completed 3"));
}

TEST_F(ConversationTest, AnInterruptStopsTheRunningTurnAndRunsTheMessageAtOnce) {
  std::string task_id = CreateTask();
  std::string agent_id =
      DeployAgent(task_id, EchoAgent("exec sleep 600"), "worker", {"--prompt", "first"});
  json first = AgentEntry(task_id, agent_id);

  json sent = Send(task_id, agent_id, "stop that, do this", {"--interrupt"});
  EXPECT_EQ(sent["delivery"], "queued");
  EXPECT_EQ(sent["interrupt_sent"], true);
  json agent = WaitForTurnToEnd(task_id, agent_id, 2);

  EXPECT_THAT(TurnLines(task_id, agent_id),
              ElementsAre("turn 1: first", "turn 2: stop that, do this"));
  EXPECT_EQ(agent["status"], "completed");
  json interrupted = agent["turns"][0];
  EXPECT_EQ(interrupted["status"], "terminated");
  EXPECT_THAT(interrupted.value("termination_reason", ""), HasSubstr("interrupted"));
  EXPECT_TRUE(WaitForExit(AgentProcessOf(first))) << "the first turn's process is gone";
}

TEST_F(ConversationTest, AKillDropsTheWaitingMessagesAndSaysSo) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, EchoAgent("exec sleep 600"));
  Send(task_id, agent_id, "later");
  ASSERT_EQ(Herd({"kill", task_id, agent_id, "--grace", "1"}).exit_code, 0);
  json agent = WaitForAgentToEnd(task_id, agent_id);

  EXPECT_EQ(agent["status"], "terminated");
  EXPECT_FALSE(agent.contains("turn")) << "no second turn ran";
  ASSERT_EQ(agent["undelivered_messages"].size(), 1u);
  EXPECT_EQ(agent["undelivered_messages"][0]["preview"], "later");
  EXPECT_THAT(agent["undelivered_messages"][0].value("undelivered_reason", ""),
              HasSubstr("Manual termination"));
}

TEST_F(ConversationTest, RefusalsSayWhatToDoAndLeaveNothing) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, EchoAgent());
  WaitForAgentToEnd(task_id, agent_id);
  ASSERT_EQ(Herd({"kill", task_id, "--all", "--reason", "done for today"}).exit_code, 0);

  CommandResult refused = Herd({"send", task_id, agent_id, "more"});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("done for today"));
  CommandResult unknown = Herd({"send", task_id, "nobody-000000-000000", "more"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_THAT(unknown.err, HasSubstr("herd status"));
  CommandResult empty = Herd({"send", task_id, agent_id, ""});
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_THAT(empty.err, HasSubstr("empty"));

  for (const std::string& name : registry::ListDirectory(TaskDirectory(task_id) + "/prompts")) {
    EXPECT_EQ(name.find("msg-"), std::string::npos) << "a refused message left " << name;
  }
  EXPECT_FALSE(AgentEntry(task_id, agent_id).contains("turn"));
}

}  // namespace
}  // namespace herd::test_util
