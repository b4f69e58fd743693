// `herd deploy --tmux`: a person can attach to a tmux session that follows
// the agent's output; the session is a view only and closes with the agent.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "agents/testing_util_for_test.h"

namespace herd::test_util {
namespace {

// Runs a tmux command on the test's private server; returns its exit code
// and first line of output.
std::pair<int, std::string> Tmux(const std::string& arguments) {
  FILE* pipe = popen(("tmux " + arguments + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  char line[512] = {};
  std::string first = fgets(line, sizeof line, pipe) != nullptr ? line : "";
  while (!first.empty() && first.back() == '\n') first.pop_back();
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, first};
}

class TmuxViewTest : public HerdTest {
 protected:
  static std::vector<std::string> Shell(const std::string& script, const std::string& arg0) {
    return {"sh", "-c", script, arg0};
  }
};

TEST_F(TmuxViewTest, SessionFollowsTheAgentAndClosesWhenItEnds) {
  if (Tmux("-V").first != 0) GTEST_SKIP() << "tmux is not installed";
  // A private tmux server for this test only.
  ScopedEnvironment environment;
  environment.Set("TMUX_TMPDIR", Subdirectory("tmux"));
  std::string task = CreateTask();
  std::string marks = Subdirectory("marks");
  json deployed = Deploy(task,
                         Shell("echo hello from the agent; "
                               "while [ ! -f \"$0/go\" ]; do sleep 0.05; done; echo bye",
                               marks),
                         "watched", {"--tmux"});
  std::string agent = deployed.at("agent_id");
  std::string session = deployed.value("tmux_session", "");
  ASSERT_EQ(session, "herd-" + agent);
  EXPECT_EQ(AgentEntry(task, agent).value("tmux_session", ""), session);

  // The session is there to attach to, and its pane runs `herd logs --follow`.
  EXPECT_EQ(Tmux("has-session -t " + session).first, 0);
  auto [listed, pane_pid] = Tmux("list-panes -t " + session + " -F '#{pane_pid}'");
  ASSERT_EQ(listed, 0);
  Identity viewer = IdentityOf(std::stoi(pane_pid));
  EXPECT_NE(ReadFile("/proc/" + pane_pid + "/cmdline").find("logs"), std::string::npos);

  WriteFile(marks + "/go", "");
  json ended = WaitForAgentToEnd(task, agent);
  EXPECT_EQ(ended.value("status", ""), "completed");
  // The view ends by itself once the agent has ended.
  ASSERT_TRUE(WaitForExit(viewer)) << "the tmux view outlived its agent";
  EXPECT_NE(Tmux("has-session -t " + session).first, 0);
}

}  // namespace
}  // namespace herd::test_util
