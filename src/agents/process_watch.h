// ProcessWatch: whether processes known by identity (pid + start time) are
// still alive, for a caller that asks about the same processes again and
// again: `herd serve` answering status polls for a task's running agents.
//
// The first question about an identity checks it through /proc, as
// agents::IsAlive does, and keeps a pidfd for it. Later questions cost one
// poll(2) on that pidfd with a zero timeout: a pidfd refers to exactly one
// process, so a recycled pid is never mistaken for it, and it polls readable
// once that process has exited (a zombie counts as exited, as in IsAlive).
// The pidfd of a process found exited is closed at once.
//
// At most kMaxWatched pidfds are held (fewer if RLIMIT_NOFILE is low); past
// that, answers come from /proc. Thread-safe; the lock is held only for
// map lookups and zero-timeout polls, never across a blocking call.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <utility>

#include "agents/process.h"

namespace herd::agents {

class ProcessWatch {
 public:
  static constexpr size_t kMaxWatched = 512;

  ProcessWatch();
  ~ProcessWatch();
  ProcessWatch(const ProcessWatch&) = delete;
  ProcessWatch& operator=(const ProcessWatch&) = delete;

  // True if the process described by `identity` still runs.
  bool IsAlive(const ProcessIdentity& identity);

  // How many processes are watched through pidfds now.
  size_t watched() const;

 private:
  using Key = std::pair<int, unsigned long long>;  // pid, start time

  mutable std::mutex mutex_;
  std::map<Key, int> pidfds_;
  size_t capacity_;
};

}  // namespace herd::agents
