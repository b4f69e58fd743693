// Lifelines: the write ends of the lifeline pipes a node's daemon holds,
// one per supervisor it started (agents/supervisor.h: a supervisor stops
// its agent when its lifeline's write end closes), and the watchdog that
// closes them all when the node's lease may be gone.
//
// The watchdog is a thread of its own that waits for the deadline
// ExtendUntil last set (a condition variable's wait_until: it never wakes
// on a timer of its own), so a renewal blocked in the network cannot keep
// the agents running past the lease: past the deadline it closes every
// lifeline and stays stopped() until the next ExtendUntil, and Hold then
// closes what it is given at once.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "util/clock.h"

namespace herd::node {

class Lifelines {
 public:
  // `on_expiry` is called (from the watchdog's thread, once per expiry)
  // after it closed the lifelines.
  explicit Lifelines(std::function<void()> on_expiry);
  ~Lifelines();  // stops the watchdog and closes every lifeline
  Lifelines(const Lifelines&) = delete;
  Lifelines& operator=(const Lifelines&) = delete;

  // Holds `write_fd`, the lifeline of `key`'s supervisor for turn `turn`,
  // closing the one it held for `key` before; closes it at once instead if
  // the watchdog has stopped everything.
  void Hold(const std::string& key, int write_fd, int turn);
  // Whether `key`'s lifeline for turn `turn` is held.
  bool Holds(const std::string& key, int turn) const;
  // Closes the lifelines of every key not in `keep`; returns the keys closed.
  std::set<std::string> CloseAllBut(const std::set<std::string>& keep);
  void CloseAll();
  bool empty() const;

  // The lease is good until `deadline`: the watchdog closes everything then
  // unless extended again. Clears stopped().
  void ExtendUntil(MonotonicClock::time_point deadline);
  // Whether the watchdog closed everything since the last ExtendUntil.
  bool stopped() const;

 private:
  void Watch();
  void CloseAllLocked();

  std::function<void()> on_expiry_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  struct Held {
    int fd = -1;
    int turn = 1;
  };
  std::map<std::string, Held> held_;
  MonotonicClock::time_point deadline_ = MonotonicClock::time_point::max();
  bool stopped_ = false;
  bool ending_ = false;
  std::thread watchdog_;  // last: started once the rest is built
};

}  // namespace herd::node
