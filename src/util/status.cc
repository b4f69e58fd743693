#include "util/status.h"

#include <cstring>

namespace herd {

Status Status::FromErrno(const std::string& what, int error_number) {
  Status status(Code::kIOError, what + ": " + std::strerror(error_number));
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
