// Tests for FileLock: exclusion between processes, threads and descriptors,
// a deadline that lands within milliseconds without polling, a timer that
// interrupts only the waiting thread, a kernel that frees the lock of a
// killed holder, and a descriptor that no exec'd child inherits.
//
// Holders are real child processes (fork) that report "held" through a
// pipe; nothing waits for an event with a fixed sleep.
#include "store/file_lock.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/testing_for_test.h"
#include "util/clock.h"

namespace herd::store {
namespace {

using namespace std::chrono_literals;

using namespace ::herd::store::testing;

// Forks a child that takes `lock_path`, tells "H", and keeps the lock until
// `release` opens or `max_hold` passes. Its output is the steady-clock time
// (in ns) at which it let go.
std::unique_ptr<ChildProcess> StartHolder(const std::string& lock_path, Gate& release,
                                          std::chrono::milliseconds max_hold) {
  return std::make_unique<ChildProcess>([&lock_path, &release, max_hold] {
    Result<FileLock> lock = FileLock::Acquire(lock_path, 10s);
    if (!lock.ok()) throw std::runtime_error(lock.status().ToString());
    ChildProcess::Tell("H");
    release.WaitFor(max_hold);
    auto released_at = MonotonicClock::now().time_since_epoch();
    lock->Release();
    return std::to_string(std::chrono::nanoseconds(released_at).count());
  });
}

// One Acquire, timed from outside as well as by Acquire itself.
struct Attempt {
  Result<FileLock> lock;
  double waited_ms;   // what Acquire reported
  double elapsed_ms;  // what the caller saw
};

Attempt TimedAcquire(const std::string& lock_path, std::chrono::milliseconds timeout) {
  auto start = MonotonicClock::now();
  double waited_ms = -1;
  Result<FileLock> lock = FileLock::Acquire(lock_path, timeout, &waited_ms);
  return Attempt{std::move(lock), waited_ms, MillisecondsSince(start)};
}

// Try-lock: a zero timeout fails at once if anyone holds the lock.
bool IsFree(const std::string& lock_path) {
  return FileLock::Acquire(lock_path, 0ms).ok();
}

// The descriptors of process `pid` whose target is `path`.
std::vector<int> DescriptorsOpenOn(pid_t pid, const std::string& path) {
  std::vector<int> found;
  std::error_code error;
  std::string directory = "/proc/" + std::to_string(pid) + "/fd";
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    std::error_code ignored;
    if (std::filesystem::read_symlink(entry.path(), ignored) == path) {
      found.push_back(std::stoi(entry.path().filename().string()));
    }
  }
  return found;
}

class FileLockTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string lock_path_ = dir_.File("registry.json.lock");
};

TEST_F(FileLockTest, AcquireCreatesTheLockFileAndRecordsItsHolder) {
  Result<FileLock> lock = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_EQ(lock->path(), lock_path_);
  EXPECT_TRUE(std::filesystem::exists(lock_path_));
  std::string holder = FileLock::ReadHolder(lock_path_);
  EXPECT_NE(holder.find("pid=" + std::to_string(getpid()) + " "), std::string::npos) << holder;
  EXPECT_NE(holder.find("host="), std::string::npos) << holder;
  EXPECT_NE(holder.find("since="), std::string::npos) << holder;
}

TEST_F(FileLockTest, AnotherDescriptorInTheSameProcessIsExcludedUntilRelease) {
  Result<FileLock> first = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<FileLock> second = FileLock::Acquire(lock_path_, 20ms);
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(second.status().Is(Status::Code::kTimeout)) << second.status().ToString();
  first->Release();
  EXPECT_TRUE(IsFree(lock_path_));
}

TEST_F(FileLockTest, MovedLockStaysHeldUntilItsNewOwnerReleasesIt) {
  Result<FileLock> acquired = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(acquired.ok()) << acquired.status().ToString();
  {
    FileLock owner = std::move(*acquired);
    acquired->Release();  // the moved-from lock owns nothing
    EXPECT_FALSE(IsFree(lock_path_));
    FileLock second_owner(std::move(owner));
    EXPECT_FALSE(IsFree(lock_path_));
  }
  EXPECT_TRUE(IsFree(lock_path_));
}

TEST_F(FileLockTest, TimeoutNamesThePathAndTheHolderPid) {
  Gate release;
  auto holder = StartHolder(lock_path_, release, 10s);
  ASSERT_EQ(holder->Hear(1), "H");

  Attempt attempt = TimedAcquire(lock_path_, 100ms);
  ASSERT_FALSE(attempt.lock.ok());
  const Status& status = attempt.lock.status();
  EXPECT_TRUE(status.Is(Status::Code::kTimeout)) << status.ToString();
  EXPECT_NE(status.message().find(lock_path_), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("pid=" + std::to_string(holder->pid()) + " "), std::string::npos)
      << status.message();

  release.Open();
  EXPECT_EQ(holder->Finish().exit_code, 0);
  EXPECT_TRUE(IsFree(lock_path_));
}

TEST_F(FileLockTest, TimeoutLandsWithinMillisecondsOfTheDeadline) {
  Gate release;
  auto holder = StartHolder(lock_path_, release, 10s);
  ASSERT_EQ(holder->Hear(1), "H");

  for (auto timeout : {20ms, 250ms, 1000ms}) {
    Attempt attempt = TimedAcquire(lock_path_, timeout);
    double deadline_ms = static_cast<double>(timeout.count());
    std::printf(
        "timeout %4lld ms: Acquire reported %.2f ms waited, caller saw %.2f ms "
        "(overshoot %.2f ms)\n",
        static_cast<long long>(timeout.count()), attempt.waited_ms, attempt.elapsed_ms,
        attempt.elapsed_ms - deadline_ms);
    ASSERT_FALSE(attempt.lock.ok());
    EXPECT_TRUE(attempt.lock.status().Is(Status::Code::kTimeout));
    EXPECT_GE(attempt.waited_ms, deadline_ms);
    EXPECT_GE(attempt.elapsed_ms, deadline_ms);
    // The overshoot is a figure, printed above; the behaviour is that the
    // wait ends at its deadline, long before the holder's 10 s.
    EXPECT_LT(attempt.elapsed_ms, deadline_ms + 5000);
  }
  release.Open();
  EXPECT_EQ(holder->Finish().exit_code, 0);
}

// Milliseconds from a holder's release to a blocked waiter holding the lock.
double MeasureHandoff(const std::string& lock_path, std::chrono::milliseconds hold) {
  Gate never_opened;
  auto holder = StartHolder(lock_path, never_opened, hold);
  if (holder->Hear(1) != "H") throw std::runtime_error("the holder did not take the lock");
  Attempt attempt = TimedAcquire(lock_path, 5s);
  auto acquired_at = MonotonicClock::now().time_since_epoch();
  if (!attempt.lock.ok()) throw std::runtime_error(attempt.lock.status().ToString());
  ChildProcess::Outcome outcome = holder->Finish();
  if (outcome.exit_code != 0) throw std::runtime_error("holder: " + outcome.output);
  if (attempt.waited_ms <= 0) throw std::runtime_error("the waiter did not wait");
  return static_cast<double>(std::chrono::nanoseconds(acquired_at).count() -
                             std::stoll(outcome.output)) /
         1e6;
}

TEST_F(FileLockTest, BlockedWaiterGetsTheLockAsSoonAsTheHolderReleases) {
  // Each holder keeps the lock 50 ms on its own while the waiter blocks. A
  // blocked waiter is woken by the release itself (about 1 ms here); the
  // seed's 50 ms polling would make the median handoff about 25 ms.
  std::vector<double> handoffs;
  for (int i = 0; i < 7; ++i) handoffs.push_back(MeasureHandoff(lock_path_, 50ms));
  std::sort(handoffs.begin(), handoffs.end());
  std::printf("handoff after release: median %.3f ms, max %.3f ms\n", handoffs[3], handoffs[6]);
  // The figure is printed; the test only asks that every waiter got the
  // lock after the release and within seconds, so a slow machine passes.
  EXPECT_GE(handoffs[0], 0);
  EXPECT_LT(handoffs[3], 2000);
}

TEST_F(FileLockTest, KernelReleasesTheLockWhenTheHolderIsKilled) {
  Gate never_opened;
  auto holder = StartHolder(lock_path_, never_opened, 10s);
  ASSERT_EQ(holder->Hear(1), "H");
  ASSERT_FALSE(IsFree(lock_path_));

  EXPECT_EQ(holder->Kill().signal, SIGKILL);
  // Free at once: a try without waiting gets it.
  Attempt attempt = TimedAcquire(lock_path_, 0ms);
  ASSERT_TRUE(attempt.lock.ok()) << attempt.lock.status().ToString();
}

TEST_F(FileLockTest, LockDescriptorIsCloseOnExec) {
  Result<FileLock> lock = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  std::vector<int> descriptors = DescriptorsOpenOn(getpid(), lock_path_);
  ASSERT_EQ(descriptors.size(), 1u);
  int flags = ::fcntl(descriptors[0], F_GETFD);
  ASSERT_GE(flags, 0);
  EXPECT_TRUE(flags & FD_CLOEXEC);
}

TEST_F(FileLockTest, ExecedChildDoesNotKeepTheLock) {
  Result<FileLock> lock = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();

  // `cat` reads the gate until the test opens it, so it outlives our release.
  Gate stop_cat;
  ChildProcess cat([&stop_cat]() -> std::string {
    ::dup2(stop_cat.read_end(), STDIN_FILENO);
    ::execl("/bin/cat", "cat", static_cast<char*>(nullptr));
    throw std::runtime_error("cannot exec /bin/cat");
  });
  // The child's end of its output pipe is close-on-exec: EOF means exec'd.
  ASSERT_EQ(cat.Hear(1), "");

  EXPECT_TRUE(DescriptorsOpenOn(cat.pid(), lock_path_).empty());
  lock->Release();
  EXPECT_TRUE(IsFree(lock_path_)) << "an exec'd child still holds the lock";
  stop_cat.Open();
  EXPECT_EQ(cat.Finish().exit_code, 0);
}

TEST_F(FileLockTest, TimerInterruptsOnlyTheWaitingThread) {
  // This (main) thread holds the lock and sits in read(), which the timer
  // signal would break with EINTR (its handler has no SA_RESTART) if the
  // signal were aimed at the process rather than at the waiting thread.
  Result<FileLock> lock = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  int wake_holder[2];
  ASSERT_EQ(::pipe2(wake_holder, O_CLOEXEC), 0);

  int timeouts = 0;
  std::thread waiter([&] {
    for (int i = 0; i < 3; ++i) {
      if (FileLock::Acquire(lock_path_, 50ms).status().Is(Status::Code::kTimeout)) timeouts++;
    }
    (void)::write(wake_holder[1], "w", 1);
  });
  char byte = 0;
  ssize_t got = ::read(wake_holder[0], &byte, 1);
  int read_errno = errno;
  lock->Release();  // before joining, so a waiter the timer missed is not stuck
  waiter.join();
  ::close(wake_holder[0]);
  ::close(wake_holder[1]);

  EXPECT_EQ(got, 1) << "the holder's read() was interrupted: " << std::strerror(read_errno);
  EXPECT_EQ(timeouts, 3);
  EXPECT_TRUE(IsFree(lock_path_));
}

TEST_F(FileLockTest, WaitingRestoresTheCallersSignalMask) {
  Result<FileLock> held = FileLock::Acquire(lock_path_, 1s);
  ASSERT_TRUE(held.ok()) << held.status().ToString();

  for (bool block_realtime_signals : {false, true}) {
    sigset_t wanted;
    sigemptyset(&wanted);
    if (block_realtime_signals) {
      for (int signal = SIGRTMIN; signal <= SIGRTMAX; ++signal) sigaddset(&wanted, signal);
    }
    sigset_t original, before, after;
    pthread_sigmask(SIG_SETMASK, &wanted, &original);
    pthread_sigmask(SIG_SETMASK, nullptr, &before);
    EXPECT_FALSE(FileLock::Acquire(lock_path_, 20ms).ok());
    pthread_sigmask(SIG_SETMASK, nullptr, &after);
    pthread_sigmask(SIG_SETMASK, &original, nullptr);
    for (int signal = 1; signal <= SIGRTMAX; ++signal) {
      EXPECT_EQ(sigismember(&before, signal), sigismember(&after, signal)) << "signal " << signal;
    }
  }
}

}  // namespace
}  // namespace herd::store
