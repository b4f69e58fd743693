#include "util/status.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace herd {

void AbortOnErrorAccess(const Status& status) {
  std::fprintf(stderr, "herd: bug: the value of a failed Result was read: %s\n",
               status.ToString().c_str());
  std::abort();
}

Status Status::FromErrno(const std::string& what, int error_number) {
  // herd opens its files with O_NOFOLLOW, so ELOOP means "a symbolic link
  // was in the way", which strerror words as a loop.
  std::string reason = error_number == ELOOP
                           ? "it is a symbolic link, and herd never follows symbolic links "
                             "inside its workspace (a repository can ship one to redirect "
                             "herd's writes): remove the link, or use another workspace"
                           : std::strerror(error_number);
  Status status(Code::kIOError, what + ": " + reason);
  status.error_number_ = error_number;
  return status;
}

std::string Status::ToString() const {
  const char* name = "OK";
  switch (code_) {
    case Code::kOk: return "OK";
    case Code::kNotFound: name = "not found"; break;
    case Code::kInvalidArgument: name = "invalid argument"; break;
    case Code::kRefused: name = "refused"; break;
    case Code::kTimeout: name = "timed out"; break;
    case Code::kCorruption: name = "corruption"; break;
    case Code::kIOError: name = "I/O error"; break;
    case Code::kNotDurable: name = "not durable"; break;
  }
  return std::string(name) + ": " + message_;
}

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  Status copy = *this;
  copy.message_ = context + ": " + message_;
  return copy;
}

}  // namespace herd
