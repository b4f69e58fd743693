// ProcessWatch against real processes: children started here, checked
// alive, then ended (exited and reaped, or left as zombies).
#include "agents/process_watch.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace herd::agents {
namespace {

// A child that blocks until killed.
pid_t StartBlockedChild() {
  pid_t pid = fork();
  if (pid == 0) {
    pause();
    _exit(0);
  }
  return pid;
}

TEST(ProcessWatchTest, LiveProcessIsWatchedUntilItExits) {
  ProcessWatch watch;
  pid_t child = StartBlockedChild();
  ASSERT_GT(child, 0);
  ProcessIdentity identity = IdentityOf(child);
  ASSERT_NE(identity.start_time, 0u);
  EXPECT_TRUE(watch.IsAlive(identity));
  EXPECT_EQ(watch.watched(), 1u);
  EXPECT_TRUE(watch.IsAlive(identity));  // answered through the pidfd
  EXPECT_EQ(watch.watched(), 1u);

  ASSERT_EQ(kill(child, SIGKILL), 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(watch.IsAlive(identity));
  EXPECT_EQ(watch.watched(), 0u) << "the pidfd of an exited process is closed";
  EXPECT_FALSE(watch.IsAlive(identity));
}

TEST(ProcessWatchTest, ZombieCountsAsExited) {
  ProcessWatch watch;
  pid_t child = StartBlockedChild();
  ProcessIdentity identity = IdentityOf(child);
  EXPECT_TRUE(watch.IsAlive(identity));
  ASSERT_EQ(kill(child, SIGKILL), 0);
  siginfo_t info{};
  // Wait for the exit but leave the child unreaped: a zombie.
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  EXPECT_FALSE(watch.IsAlive(identity));
  EXPECT_FALSE(IsAlive(identity));  // the same answer as /proc gives
  // A fresh watch asked about the zombie first does not keep a pidfd.
  ProcessWatch fresh;
  EXPECT_FALSE(fresh.IsAlive(identity));
  EXPECT_EQ(fresh.watched(), 0u);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
}

TEST(ProcessWatchTest, RecycledPidIsNotMistakenForTheProcess) {
  ProcessWatch watch;
  ProcessIdentity me = IdentityOf(getpid());
  ProcessIdentity other_process_same_pid{me.pid, me.start_time + 1};
  EXPECT_FALSE(watch.IsAlive(other_process_same_pid));
  EXPECT_TRUE(watch.IsAlive(me));
  EXPECT_FALSE(watch.IsAlive(other_process_same_pid)) << "a watched pid with another start time";
  EXPECT_FALSE(watch.IsAlive({0, 0}));
  EXPECT_FALSE(watch.IsAlive({-1, 0}));
}

// Processes nobody asks about again (their agents ended) leave the watch
// when it is full, so it keeps serving new ones through pidfds.
TEST(ProcessWatchTest, AFullWatchSweepsOutExitedProcesses) {
  ProcessWatch watch(2);
  std::vector<pid_t> ended = {StartBlockedChild(), StartBlockedChild()};
  for (pid_t pid : ended) EXPECT_TRUE(watch.IsAlive(IdentityOf(pid)));
  EXPECT_EQ(watch.watched(), 2u);
  for (pid_t pid : ended) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  pid_t next = StartBlockedChild();
  EXPECT_TRUE(watch.IsAlive(IdentityOf(next)));
  EXPECT_EQ(watch.watched(), 1u) << "the two exited ones were closed, the new one is watched";
  // Full of live processes: answers still come, from /proc.
  pid_t other = StartBlockedChild();
  pid_t third = StartBlockedChild();
  ProcessIdentity third_identity = IdentityOf(third);
  EXPECT_TRUE(watch.IsAlive(IdentityOf(other)));
  EXPECT_TRUE(watch.IsAlive(third_identity));
  EXPECT_EQ(watch.watched(), 2u);
  for (pid_t pid : {next, other, third}) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  EXPECT_FALSE(watch.IsAlive(third_identity));
}

TEST(ProcessWatchTest, ConcurrentQuestionsShareOnePidfd) {
  ProcessWatch watch;
  pid_t child = StartBlockedChild();
  ProcessIdentity identity = IdentityOf(child);
  std::vector<std::thread> askers;
  std::atomic<int> alive{0};
  for (int t = 0; t < 4; ++t) {
    askers.emplace_back([&] {
      for (int i = 0; i < 200; ++i) alive += watch.IsAlive(identity) ? 1 : 0;
    });
  }
  for (auto& thread : askers) thread.join();
  EXPECT_EQ(alive.load(), 800);
  EXPECT_EQ(watch.watched(), 1u);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(watch.IsAlive(identity));
}

}  // namespace
}  // namespace herd::agents
