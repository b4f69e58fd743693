// FileLock: an exclusive, process- and thread-safe lock on a sidecar file.
//
// The lock is flock(LOCK_EX) on `X.lock`, a file that is created once and
// never renamed or deleted, so every process locks the same inode no matter
// how often `X` itself is replaced. The descriptor is O_CLOEXEC: a child
// spawned while the lock is held never inherits it, and O_NOFOLLOW: a lock
// file that is a symbolic link (shipped in a repository, say) is refused,
// never written through. It is created 0600. The kernel releases the
// lock when its holder dies, so there are no stale locks to break.
//
// Waiting has a deadline but never polls: Acquire blocks in flock() and a
// timer aimed at the calling thread (timer_create + SIGEV_THREAD_ID, handler
// without SA_RESTART) interrupts it at the deadline, re-firing every
// millisecond in case the first signal lands before flock() blocks. Only the
// waiting thread is interrupted, so this is safe in a threaded server.
//
// While held, the lock file records its holder ("pid=.. host=.. since=..")
// so a timeout can say who held the lock. A FileLock is movable, not
// copyable, and releases the lock when destroyed.
#pragma once

#include <chrono>
#include <string>

#include "util/status.h"

namespace herd::store {

class FileLock {
 public:
  // Takes the lock on `lock_path` (created if missing), waiting at most
  // `timeout`. On timeout returns Status::Timeout naming the path, the
  // recorded holder and how long it waited. `waited_ms`, when given,
  // receives the time spent waiting whether or not the lock was taken.
  static Result<FileLock> Acquire(const std::string& lock_path, std::chrono::milliseconds timeout,
                                  double* waited_ms = nullptr);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  // Releases the lock now; the destructor then does nothing.
  void Release();

  const std::string& path() const { return path_; }

  // The holder text recorded in `lock_path`, or "" if none.
  static std::string ReadHolder(const std::string& lock_path);

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_ = -1;
};

}  // namespace herd::store
