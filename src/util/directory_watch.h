// DirectoryWatch: blocks until a file changes in one of a few directories,
// a deadline passes, or a StopSignal fires; never wakes on a timer of its
// own, so a waiter costs nothing while nothing happens.
//
// Built on inotify. herd's stores replace a document by renaming a new file
// over it (store/json_store.h), which the directory reports as IN_MOVED_TO;
// journals and logs grow in place (IN_MODIFY). Events that arrive between
// two waits are kept by the kernel, so a caller that adds its watches
// first, then reads the files, then waits, never misses a change: a change
// after the read makes the next WaitUntil return at once. A wake says only
// that something changed; the caller reads again to learn what.
//
// One instance per waiting thread (not thread-safe); it owns its inotify
// descriptor. Each instance uses one of the user's inotify instances
// (fs.inotify.max_user_instances, 128 by default): Open says so when they
// run out.
#pragma once

#include <string>

#include "util/clock.h"
#include "util/status.h"
#include "util/stop_signal.h"

namespace herd {

// What to be woken by in a directory.
enum class WatchFor {
  kReplacedFiles,  // a file renamed into it, or written and closed
  kGrowingFiles,   // a file created or appended to
};

// Why WaitUntil returned.
enum class Wake { kChanged, kDeadline, kStopped };

// poll()'s timeout for waiting until `deadline`: -1 for none
// (time_point::max()), 0 once it has passed, else the milliseconds left,
// rounded up (so a wait never returns before its deadline).
int PollTimeout(MonotonicClock::time_point deadline);

class DirectoryWatch {
 public:
  static Result<DirectoryWatch> Open();
  ~DirectoryWatch();
  DirectoryWatch(DirectoryWatch&& other) noexcept;
  DirectoryWatch& operator=(DirectoryWatch&& other) noexcept;
  DirectoryWatch(const DirectoryWatch&) = delete;
  DirectoryWatch& operator=(const DirectoryWatch&) = delete;

  // Starts watching `directory` (again: for `what` as well); NotFound if it
  // does not exist.
  Status Add(const std::string& directory, WatchFor what);

  // Returns kChanged once a watched directory reports a change (at once if
  // one did since the last call), kStopped once `stop` (if given) is
  // stopped, kDeadline at `deadline` (MonotonicClock::time_point::max():
  // none). Every queued event is consumed, so a burst wakes one call.
  Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop = nullptr);

 private:
  explicit DirectoryWatch(int fd) : fd_(fd) {}
  // Reads and drops every queued event.
  void Drain();

  int fd_ = -1;
};

}  // namespace herd
