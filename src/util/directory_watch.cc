#include "util/directory_watch.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>

namespace herd {
namespace {

uint32_t MaskFor(WatchFor what) {
  switch (what) {
    case WatchFor::kReplacedFiles: return IN_MOVED_TO | IN_CLOSE_WRITE;
    case WatchFor::kGrowingFiles: return IN_MODIFY | IN_CREATE;
  }
  return IN_MODIFY;
}

}  // namespace

Result<DirectoryWatch> DirectoryWatch::Open() {
  int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) {
    int error = errno;
    Status status = Status::FromErrno("cannot watch files for changes (inotify_init1)", error);
    if (error == EMFILE) {
      return status.WithContext(
          "out of inotify instances or descriptors: raise fs.inotify.max_user_instances or "
          "ulimit -n");
    }
    return status;
  }
  return DirectoryWatch(fd);
}

DirectoryWatch::~DirectoryWatch() {
  if (fd_ >= 0) ::close(fd_);
}

DirectoryWatch::DirectoryWatch(DirectoryWatch&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

DirectoryWatch& DirectoryWatch::operator=(DirectoryWatch&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

Status DirectoryWatch::Add(const std::string& directory, WatchFor what) {
  if (::inotify_add_watch(fd_, directory.c_str(), MaskFor(what) | IN_ONLYDIR | IN_MASK_ADD) >= 0) {
    return Status::Ok();
  }
  int error = errno;
  if (error == ENOENT || error == ENOTDIR) {
    return Status::NotFound("cannot watch " + directory + ": it is not a directory");
  }
  Status status = Status::FromErrno("cannot watch " + directory + " for changes", error);
  if (error == ENOSPC) {
    return status.WithContext("out of inotify watches: raise fs.inotify.max_user_watches");
  }
  return status;
}

void DirectoryWatch::Drain() {
  alignas(inotify_event) char events[8192];
  while (::read(fd_, events, sizeof events) > 0) {
  }
}

Result<Wake> DirectoryWatch::WaitUntil(MonotonicClock::time_point deadline,
                                       const StopSignal* stop) {
  for (;;) {
    if (stop != nullptr && stop->stopped()) return Wake::kStopped;
    pollfd waiting[2] = {{fd_, POLLIN, 0}, {stop != nullptr ? stop->fd() : -1, POLLIN, 0}};
    int ready = ::poll(waiting, 2, PollTimeout(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Status::FromErrno("cannot wait for file changes (poll)", errno);
    if (stop != nullptr && (waiting[1].revents != 0 || stop->stopped())) return Wake::kStopped;
    if (waiting[0].revents != 0) {
      Drain();
      return Wake::kChanged;
    }
    if (ready == 0 && MonotonicClock::now() >= deadline) return Wake::kDeadline;
  }
}

int PollTimeout(MonotonicClock::time_point deadline) {
  if (deadline == MonotonicClock::time_point::max()) return -1;
  auto left = deadline - MonotonicClock::now();
  if (left <= MonotonicClock::duration::zero()) return 0;
  auto milliseconds = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return milliseconds > INT_MAX ? INT_MAX : static_cast<int>(milliseconds);
}

}  // namespace herd
