// ProcessWatch: whether processes known by identity (pid + start time) are
// still alive, for a caller that asks about the same processes again and
// again: `herd serve` answering status polls for a task's running agents.
//
// The first question about an identity checks it through /proc, as
// agents::IsAlive does, and keeps a pidfd for it. Later questions cost one
// poll(2) on that pidfd with a zero timeout: a pidfd refers to exactly one
// process, so a recycled pid is never mistaken for it, and it polls readable
// once that process has exited (a zombie counts as exited, as in IsAlive).
// A pidfd is closed when a question finds its process exited, or, for
// processes nobody asks about any more (their agents ended), when the watch
// is full and sweeps out every exited one.
//
// At most kMaxWatched pidfds are held (at most half of RLIMIT_NOFILE); past
// that, and wherever pidfds are unavailable (kernel before 5.3, a sandbox),
// answers come from /proc. Thread-safe; the lock is held only for map work
// and zero-timeout polls, never across a /proc read.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

#include "agents/process.h"

namespace herd::agents {

class ProcessWatch {
 public:
  static constexpr size_t kMaxWatched = 1024;

  // Holds at most `capacity` pidfds (default: kMaxWatched, or half of
  // RLIMIT_NOFILE if that is less).
  explicit ProcessWatch(size_t capacity = DefaultCapacity());
  ~ProcessWatch();
  ProcessWatch(const ProcessWatch&) = delete;
  ProcessWatch& operator=(const ProcessWatch&) = delete;

  // True if the process described by `identity` still runs.
  bool IsAlive(const ProcessIdentity& identity);

  // How many processes are watched through pidfds now.
  size_t watched() const;

  static size_t DefaultCapacity();

 private:
  using Key = std::pair<int, unsigned long long>;  // pid, start time

  void CloseExitedLocked();  // mutex_ held

  mutable std::mutex mutex_;
  std::map<Key, int> pidfds_;
  size_t capacity_;
};

}  // namespace herd::agents
