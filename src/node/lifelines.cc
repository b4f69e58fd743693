#include "node/lifelines.h"

#include <unistd.h>

namespace herd::node {

Lifelines::Lifelines(std::function<void()> on_expiry)
    : on_expiry_(std::move(on_expiry)), watchdog_([this] { Watch(); }) {}

Lifelines::~Lifelines() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    ending_ = true;
    CloseAllLocked();
  }
  changed_.notify_all();
  watchdog_.join();
}

void Lifelines::Hold(const std::string& key, int write_fd, int turn) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (stopped_ || ending_) {
    close(write_fd);
    return;
  }
  auto earlier = held_.find(key);
  if (earlier != held_.end()) close(earlier->second.fd);
  held_[key] = Held{write_fd, turn};
}

bool Lifelines::Holds(const std::string& key, int turn) const {
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = held_.find(key);
  return found != held_.end() && found->second.turn == turn;
}

std::set<std::string> Lifelines::CloseAllBut(const std::set<std::string>& keep) {
  std::lock_guard<std::mutex> guard(mutex_);
  std::set<std::string> closed;
  for (auto it = held_.begin(); it != held_.end();) {
    if (keep.count(it->first) != 0) {
      ++it;
      continue;
    }
    close(it->second.fd);
    closed.insert(it->first);
    it = held_.erase(it);
  }
  return closed;
}

void Lifelines::CloseAll() {
  std::lock_guard<std::mutex> guard(mutex_);
  CloseAllLocked();
}

bool Lifelines::empty() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return held_.empty();
}

void Lifelines::ExtendUntil(MonotonicClock::time_point deadline) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    deadline_ = deadline;
    stopped_ = false;
  }
  changed_.notify_all();
}

bool Lifelines::stopped() const {
  std::lock_guard<std::mutex> guard(mutex_);
  return stopped_;
}

void Lifelines::Watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!ending_) {
    if (stopped_ || deadline_ == MonotonicClock::time_point::max()) {
      changed_.wait(lock);
      continue;
    }
    MonotonicClock::time_point deadline = deadline_;
    if (changed_.wait_until(lock, deadline) == std::cv_status::no_timeout) continue;
    if (ending_ || deadline_ != deadline || MonotonicClock::now() < deadline_) continue;
    CloseAllLocked();
    stopped_ = true;
    lock.unlock();
    if (on_expiry_) on_expiry_();
    lock.lock();
  }
}

void Lifelines::CloseAllLocked() {
  for (const auto& [key, held] : held_) close(held.fd);
  held_.clear();
}

}  // namespace herd::node
