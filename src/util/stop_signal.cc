#include "util/stop_signal.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace herd {

Result<std::shared_ptr<StopSignal>> StopSignal::Create() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Status::FromErrno("cannot create an eventfd for cancelling a wait", errno);
  return std::shared_ptr<StopSignal>(new StopSignal(fd));
}

StopSignal::~StopSignal() {
  ::close(fd_);
}

void StopSignal::Stop() {
  if (stopped_.exchange(true)) return;
  uint64_t one = 1;
  // Non-blocking: the counter is far from overflowing after one write.
  ssize_t ignored = ::write(fd_, &one, sizeof one);
  (void)ignored;
}

}  // namespace herd
