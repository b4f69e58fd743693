// Listener: one dedicated PostgreSQL connection that LISTENs on channels
// and blocks until a notification on one of them arrives, a deadline passes or a
// StopSignal fires; it never wakes on a timer of its own.
//
// NOTIFY is delivered only after the notifying transaction commits, and
// never replayed: a caller opens the Listener first (LISTEN is in effect
// when Open returns), then reads what it waits for (the catch-up), then
// waits; a notification after the read wakes the next wait at once. A lost
// connection is reconnected and LISTENs again, and the wait then returns
// as if notified (kChanged), since a notification may have been missed:
// the caller reads again.
//
// One instance per waiting thread (not thread-safe); it owns its
// connection, which is used for nothing else. Not for use in a forked child.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "util/clock.h"
#include "util/directory_watch.h"
#include "util/status.h"
#include "util/stop_signal.h"

namespace herd::pg {

class Listener {
 public:
  // Connects and LISTENs on each of `channels` (SQL identifiers: lower-case
  // letters, digits and underscores, never quoted).
  static Result<std::unique_ptr<Listener>> Open(const ConnectOptions& options,
                                                std::vector<std::string> channels);

  // Returns kChanged once a notification on one of its channels that
  // `wanted` accepts has arrived (at once if one did since the last call),
  // kStopped once `stop` (if given) is stopped, kDeadline at `deadline`
  // (MonotonicClock::time_point::max(): none). Every notification received
  // is consumed.
  Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop,
                         const std::function<bool(const Connection::Notification&)>& wanted);

 private:
  Listener(ConnectOptions options, std::vector<std::string> channels,
           std::unique_ptr<Connection> connection)
      : options_(std::move(options)),
        channels_(std::move(channels)),
        connection_(std::move(connection)) {}
  Status Listen();

  ConnectOptions options_;
  std::vector<std::string> channels_;
  std::unique_ptr<Connection> connection_;
};

}  // namespace herd::pg
