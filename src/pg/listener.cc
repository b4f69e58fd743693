#include "pg/listener.h"

#include <poll.h>

#include <cerrno>
#include <cstring>

namespace herd::pg {

Result<std::unique_ptr<Listener>> Listener::Open(const ConnectOptions& options,
                                                 std::vector<std::string> channels) {
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Connection::Open(options));
  std::unique_ptr<Listener> listener(
      new Listener(options, std::move(channels), std::move(connection)));
  HERD_RETURN_IF_ERROR(listener->Listen());
  return listener;
}

Status Listener::Listen() {
  // LISTEN takes no parameters; the channels are herd's own names.
  for (const std::string& channel : channels_) {
    HERD_RETURN_IF_ERROR(connection_->Exec("LISTEN " + channel).status());
  }
  return Status::Ok();
}

Result<Wake> Listener::WaitUntil(
    MonotonicClock::time_point deadline, const StopSignal* stop,
    const std::function<bool(const Connection::Notification&)>& wanted) {
  for (;;) {
    Result<std::vector<Connection::Notification>> notifications = connection_->TakeNotifications();
    if (!notifications.ok()) {
      // Reconnected, a notification may have been missed: read again.
      HERD_RETURN_IF_ERROR(connection_->Reset().WithContext("listening for registry commits"));
      HERD_RETURN_IF_ERROR(Listen());
      return Wake::kChanged;
    }
    // The connection is this listener's alone: it hears only its channels.
    for (const Connection::Notification& notification : *notifications) {
      if (wanted(notification)) return Wake::kChanged;
    }
    if (stop != nullptr && stop->stopped()) return Wake::kStopped;
    int timeout = PollTimeout(deadline);
    if (timeout == 0) return Wake::kDeadline;
    pollfd fds[2] = {{connection_->Socket(), POLLIN, 0}, {-1, POLLIN, 0}};
    if (stop != nullptr) fds[1].fd = stop->fd();
    int ready = ::poll(fds, stop != nullptr ? 2 : 1, timeout);
    if (ready < 0 && errno != EINTR) {
      return Status::IOError(std::string("poll on the PostgreSQL listener: ") +
                             std::strerror(errno));
    }
    if (stop != nullptr && (fds[1].revents & POLLIN) != 0) return Wake::kStopped;
    // Readable (or a hang-up): the next TakeNotifications reads it.
  }
}

}  // namespace herd::pg
