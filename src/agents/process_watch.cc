#include "agents/process_watch.h"

#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace herd::agents {

// Half the descriptor limit at most: the server needs the rest for files,
// pipes and the agents it starts.
size_t ProcessWatch::DefaultCapacity() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return ProcessWatch::kMaxWatched;
  }
  return std::min<size_t>(ProcessWatch::kMaxWatched, static_cast<size_t>(limit.rlim_cur / 2));
}

namespace {

// True once the process behind `pidfd` has exited.
bool HasExited(int pidfd) {
  pollfd entry{pidfd, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&entry, 1, 0);
  } while (ready < 0 && errno == EINTR);
  return ready > 0;
}

}  // namespace

ProcessWatch::ProcessWatch(size_t capacity) : capacity_(capacity) {}

ProcessWatch::~ProcessWatch() {
  for (const auto& [key, pidfd] : pidfds_) ::close(pidfd);
}

void ProcessWatch::CloseExitedLocked() {
  for (auto it = pidfds_.begin(); it != pidfds_.end();) {
    if (HasExited(it->second)) {
      ::close(it->second);
      it = pidfds_.erase(it);
    } else {
      ++it;
    }
  }
}

bool ProcessWatch::IsAlive(const ProcessIdentity& identity) {
  if (identity.pid <= 0) return false;
  Key key{identity.pid, identity.start_time};
  bool room = true;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    auto found = pidfds_.find(key);
    if (found != pidfds_.end()) {
      if (!HasExited(found->second)) return true;
      ::close(found->second);
      pidfds_.erase(found);
      return false;
    }
    // Processes of agents that ended are never asked about again: their
    // pidfds are closed here, when the room runs out.
    if (pidfds_.size() >= capacity_) CloseExitedLocked();
    room = pidfds_.size() < capacity_;
  }
  if (!room) return agents::IsAlive(identity);
  // New identity: open a pidfd, then verify it through /proc; if the check
  // passes, the pidfd refers to this very process.
  int pidfd = OpenPidfd(identity);
  if (pidfd < 0) {
    // Gone, or pidfds unavailable (an old kernel, a sandbox, no descriptors
    // left): /proc decides, and nothing is kept.
    return agents::IsAlive(identity);
  }
  if (!agents::IsAlive(identity) || HasExited(pidfd)) {  // a zombie, or gone since
    ::close(pidfd);
    return false;
  }
  std::lock_guard<std::mutex> guard(mutex_);
  auto [slot, inserted] = pidfds_.emplace(key, pidfd);
  if (!inserted || pidfds_.size() > capacity_) {
    if (inserted) pidfds_.erase(slot);
    ::close(pidfd);  // another thread watches it already, or no room
  }
  return true;
}

size_t ProcessWatch::watched() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return pidfds_.size();
}

}  // namespace herd::agents
