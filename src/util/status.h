// Status and Result<T>: errors as values across module boundaries.
//
// A Status is either ok or carries a code and a message written for the
// person who will read it: what failed, on which file or id, and what to do.
// Result<T> holds either a value or a non-ok Status. Neither throws; library
// exceptions are caught at the edge of the module that calls the library and
// turned into a Status with context.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace herd {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,         // a file, task or agent that does not exist
    kInvalidArgument,  // the caller's input is wrong; the message says how
    kRefused,          // a limit or state rule forbids the request
    kTimeout,          // a deadline passed (lock wait, kill grace, ...)
    kCorruption,       // stored data does not parse or fails its checks
    kIOError,          // the operating system reported a failure
    kNotDurable,       // the change is visible but may not survive a crash
  };

  Status() = default;

  static Status Ok() { return Status(); }
  static Status NotFound(std::string message) {
    return Status(Code::kNotFound, std::move(message));
  }
  static Status InvalidArgument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status Refused(std::string message) { return Status(Code::kRefused, std::move(message)); }
  static Status Timeout(std::string message) { return Status(Code::kTimeout, std::move(message)); }
  static Status Corruption(std::string message) {
    return Status(Code::kCorruption, std::move(message));
  }
  static Status IOError(std::string message) { return Status(Code::kIOError, std::move(message)); }
  // `what` failed with errno `error_number`; the message names both.
  static Status FromErrno(const std::string& what, int error_number);
  static Status NotDurable(std::string message) {
    return Status(Code::kNotDurable, std::move(message));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool Is(Code code) const { return code_ == code; }
  // The errno behind an I/O error, or 0.
  int error_number() const { return error_number_; }

  // "IO error: ..." style text for logs and people.
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: `.
  Status WithContext(const std::string& context) const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
  int error_number_ = 0;
};

// Prints `status` and aborts: a Result's value was read although it holds
// an error.
[[noreturn]] void AbortOnErrorAccess(const Status& status);

template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "a Result without a value needs an error");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Reading the value of an error is a bug in the caller, never a state to
  // run on: it aborts with the error's text instead of undefined behaviour.
  T& value() & { return Checked(); }
  const T& value() const& { return Checked(); }
  T&& value() && { return std::move(Checked()); }
  T* operator->() { return &Checked(); }
  const T* operator->() const { return &Checked(); }
  T& operator*() & { return Checked(); }
  const T& operator*() const& { return Checked(); }

 private:
  T& Checked() const {
    if (!value_.has_value()) AbortOnErrorAccess(status_);
    return const_cast<T&>(*value_);
  }

  std::optional<T> value_;
  Status status_;
};

}  // namespace herd

// Returns early from the enclosing function when `expr` yields a non-ok Status.
#define HERD_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::herd::Status herd_status_ = (expr);        \
    if (!herd_status_.ok()) return herd_status_; \
  } while (0)

// Declares `declaration` from a Result, or returns its error from the
// enclosing function: HERD_ASSIGN_OR_RETURN(TaskRecord task, Load(path));
#define HERD_ASSIGN_OR_RETURN(declaration, expression) \
  HERD_ASSIGN_OR_RETURN_IMPL(HERD_CONCAT(herd_result_, __LINE__), declaration, expression)
#define HERD_ASSIGN_OR_RETURN_IMPL(result, declaration, expression) \
  auto result = (expression);                                       \
  if (!result.ok()) return result.status();                         \
  declaration = std::move(result).value()
#define HERD_CONCAT(a, b) HERD_CONCAT_IMPL(a, b)
#define HERD_CONCAT_IMPL(a, b) a##b
