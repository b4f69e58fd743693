// Lifelines: the watchdog closes every lifeline at the lease's deadline,
// and a lifeline handed over after that is closed at once.

#include "node/lifelines.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

namespace herd::node {
namespace {

struct Pipe {
  Pipe() { EXPECT_EQ(pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() { close(fds[0]); }
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  int fds[2] = {-1, -1};
};

// Whether the pipe's write end is closed: blocks until EOF or `timeout`.
bool ClosedWithin(const Pipe& pipe, std::chrono::milliseconds timeout) {
  pollfd waiting{pipe.read_end(), POLLIN, 0};
  if (poll(&waiting, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char byte;
  return read(pipe.read_end(), &byte, 1) == 0;
}

TEST(LifelinesTest, TheWatchdogClosesEveryLifelineAtTheDeadline) {
  std::atomic<int> expiries{0};
  Lifelines lifelines([&] { ++expiries; });
  Pipe first, second;
  lifelines.Hold("task/a", first.write_end(), 1);
  lifelines.Hold("task/b", second.write_end(), 1);
  EXPECT_TRUE(lifelines.Holds("task/a", 1));
  EXPECT_FALSE(lifelines.Holds("task/a", 2));
  lifelines.ExtendUntil(MonotonicClock::now() + std::chrono::milliseconds(20));
  // Generous: the deadline is what closes them, the bound only ends a hang.
  EXPECT_TRUE(ClosedWithin(first, std::chrono::seconds(60)));
  EXPECT_TRUE(ClosedWithin(second, std::chrono::seconds(60)));
  EXPECT_TRUE(lifelines.stopped());
  EXPECT_TRUE(lifelines.empty());

  // While stopped, a lifeline handed over is closed at once.
  Pipe late;
  lifelines.Hold("task/c", late.write_end(), 1);
  EXPECT_TRUE(ClosedWithin(late, std::chrono::seconds(0)));
  // A renewal clears it.
  lifelines.ExtendUntil(MonotonicClock::now() + std::chrono::hours(1));
  EXPECT_FALSE(lifelines.stopped());
  Pipe kept;
  lifelines.Hold("task/d", kept.write_end(), 1);
  EXPECT_TRUE(lifelines.Holds("task/d", 1));
  EXPECT_FALSE(ClosedWithin(kept, std::chrono::milliseconds(0)));
  EXPECT_GE(expiries.load(), 1);
}

TEST(LifelinesTest, CloseAllButKeepsTheNamedOnesAndAnotherTurnReplacesTheFirst) {
  Lifelines lifelines(nullptr);
  Pipe a, b, a_again;
  lifelines.Hold("t/a", a.write_end(), 1);
  lifelines.Hold("t/b", b.write_end(), 1);
  std::set<std::string> closed = lifelines.CloseAllBut({"t/a"});
  EXPECT_EQ(closed, std::set<std::string>{"t/b"});
  EXPECT_TRUE(ClosedWithin(b, std::chrono::seconds(0)));
  EXPECT_FALSE(ClosedWithin(a, std::chrono::milliseconds(0)));
  lifelines.Hold("t/a", a_again.write_end(), 2);  // turn 2's supervisor
  EXPECT_TRUE(ClosedWithin(a, std::chrono::seconds(0)));
  EXPECT_TRUE(lifelines.Holds("t/a", 2));
}

}  // namespace
}  // namespace herd::node
