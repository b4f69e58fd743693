// StopSignal: a one-way "stop now" flag that a blocked wait can poll(2) on.
//
// One thread (the MCP reader, on notifications/cancelled or at stdin EOF)
// calls Stop(); another, blocked in DirectoryWatch::WaitUntil, wakes at
// once because fd() becomes readable. Once stopped it stays stopped.
// Thread-safe; owns its eventfd and closes it on destruction, so it must
// outlive every wait given it (callers share it by std::shared_ptr).
#pragma once

#include <atomic>
#include <memory>

#include "util/status.h"

namespace herd {

class StopSignal {
 public:
  // IOError when no eventfd can be made (the process is out of descriptors).
  static Result<std::shared_ptr<StopSignal>> Create();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  // Idempotent; never blocks.
  void Stop();
  bool stopped() const { return stopped_.load(); }
  // Readable once Stop() was called (never read: it stays readable).
  int fd() const { return fd_; }

 private:
  explicit StopSignal(int fd) : fd_(fd) {}

  const int fd_;
  std::atomic<bool> stopped_{false};
};

}  // namespace herd
