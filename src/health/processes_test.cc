// Recognising herd supervisors by command line, and the staged kill.
#include "health/processes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "health/testing_for_test.h"

namespace herd::health {
namespace {

using namespace herd::health::testing;

TEST(health_SupervisorCommandLine, RecognisesTheLaunchersArgvWhateverTheBinaryPath) {
  std::optional<SupervisorProcess> parsed = agents::ParseSupervisorCommandLine(
      {"/opt/other/herd", "supervise", "--workspace", "/tmp/w//", "--task",
       "TASK-20260101-000000-0000abcd", "--agent", "x-000000-abcdef"});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->workspace_base, "/tmp/w");
  EXPECT_EQ(parsed->task_id, "TASK-20260101-000000-0000abcd");
  EXPECT_EQ(parsed->agent_id, "x-000000-abcdef");
}

TEST(health_SupervisorCommandLine, RejectsEverythingElse) {
  const std::vector<std::vector<std::string>> others = {
      {"herd", "serve"},
      {"herd", "status", "--workspace", "/w", "--task", "T1", "--agent", "a"},
      {"sleep", "supervise", "--workspace", "/w", "--task", "T1"},
      {"herd", "supervise", "--workspace", "/w", "--task", "T1", "--agent", "a", "extra"},
      {"herd", "supervise", "--workspace", "/w", "--task", "T1", "--task", "T2"},
      {"herd", "supervise", "--workspace", "relative", "--task", "T1", "--agent", "a"},
      {"herd", "supervise", "--workspace", "/w", "--task", "../etc", "--agent", "a"},
      {"python3", "herd-supervise.py", "--workspace", "/w", "--task", "T1", "--agent", "a"},
  };
  for (const auto& argv : others) {
    EXPECT_FALSE(agents::ParseSupervisorCommandLine(argv)) << argv[0] << " " << argv[1];
  }
}

TEST(health_StopProcessTrees, StopsARootAndItsChildren) {
  // The sleeps are forked before the shell says "ready".
  Child shell({"sh", "-c", "sleep 300 & sleep 300 & echo ready; wait"});
  ASSERT_TRUE(shell.WaitForOutput("ready"));
  std::vector<Identity> children = DescendantsOf(shell.identity().pid);
  ASSERT_EQ(children.size(), 2u);
  StopFigures figures = StopProcessTrees({{shell.identity().pid, shell.identity().start_time}},
                                         std::chrono::seconds(10));
  EXPECT_EQ(figures.signalled, 3);
  EXPECT_EQ(figures.sigkilled, 0);
  EXPECT_TRUE(figures.all_exited);
  for (const Identity& child : children) EXPECT_FALSE(IsRunning(child));
}

TEST(health_StopProcessTrees, EscalatesToSigkillAfterTheGrace) {
  // SIG_IGN is inherited across exec: neither the shell nor sleep dies on SIGTERM.
  Child shell({"sh", "-c", "trap '' TERM; sleep 300 & echo ready; wait"});
  ASSERT_TRUE(shell.WaitForOutput("ready"));
  std::vector<Identity> children = DescendantsOf(shell.identity().pid);
  ASSERT_EQ(children.size(), 1u);
  auto start = Clock::now();
  StopFigures figures = StopProcessTrees({{shell.identity().pid, shell.identity().start_time}},
                                         std::chrono::milliseconds(200));
  // agents::WaitForExit truncates its poll timeout to whole milliseconds.
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(199));
  EXPECT_EQ(figures.sigkilled, 2);
  EXPECT_TRUE(figures.all_exited);
  EXPECT_FALSE(IsRunning(children[0]));
}

TEST(health_StopProcessTrees, LeavesGoneAndRecycledIdentitiesAlone) {
  Child sleeper({"sleep", "300"});
  Identity wrong = sleeper.identity();
  wrong.start_time += 1;  // same pid, another process
  StopFigures figures = StopProcessTrees({{wrong.pid, wrong.start_time}}, std::chrono::seconds(1));
  EXPECT_EQ(figures.signalled, 0);
  EXPECT_TRUE(IsRunning(sleeper.identity()));
}

}  // namespace
}  // namespace herd::health
