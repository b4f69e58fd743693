#include "store/file_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

#include "util/clock.h"

namespace herd::store {
namespace {

// The timer signal that interrupts a blocked flock(). Real-time signals are
// not used by anything else in herd.
int LockTimerSignal() {
  return SIGRTMIN + 3;
}

void IgnoreSignal(int) {}

void InstallTimerHandlerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = IgnoreSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: flock() must return EINTR
    sigaction(LockTimerSignal(), &action, nullptr);
  });
}

timespec ToTimespec(std::chrono::nanoseconds duration) {
  if (duration.count() <= 0) duration = std::chrono::nanoseconds(1);
  timespec spec{};
  spec.tv_sec = static_cast<time_t>(duration.count() / 1'000'000'000);
  spec.tv_nsec = static_cast<long>(duration.count() % 1'000'000'000);
  return spec;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

void RecordHolder(int fd) {
  std::string holder =
      "pid=" + std::to_string(getpid()) + " host=" + HostName() + " since=" + NowIso8601() + "\n";
  // Diagnostics only: a failure here must not fail the lock.
  if (pwrite(fd, holder.data(), holder.size(), 0) == static_cast<ssize_t>(holder.size())) {
    (void)ftruncate(fd, static_cast<off_t>(holder.size()));
  }
}

// Blocks in flock() until it succeeds or `deadline` passes.
Status WaitForLock(int fd, MonotonicClock::time_point deadline) {
  InstallTimerHandlerOnce();
  sigset_t timer_only;
  sigemptyset(&timer_only);
  sigaddset(&timer_only, LockTimerSignal());
  sigset_t previous_mask;
  pthread_sigmask(SIG_UNBLOCK, &timer_only, &previous_mask);

  sigevent event{};
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = LockTimerSignal();
  event._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  timer_t timer{};
  if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) {
    int saved_errno = errno;
    pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
    return Status::FromErrno("cannot create lock timer", saved_errno);
  }
  itimerspec when{};
  when.it_value = ToTimespec(deadline - MonotonicClock::now());
  when.it_interval = ToTimespec(std::chrono::milliseconds(1));
  timer_settime(timer, 0, &when, nullptr);

  Status status;
  for (;;) {
    if (flock(fd, LOCK_EX) == 0) break;
    if (errno != EINTR) {
      status = Status::FromErrno("cannot lock", errno);
      break;
    }
    if (MonotonicClock::now() >= deadline) {
      status = Status::Timeout("");
      break;
    }
  }
  // Deleting the timer before restoring the mask means any signal it already
  // raised is delivered (harmlessly) now, not to a later system call.
  timer_delete(timer);
  pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  return status;
}

}  // namespace

Result<FileLock> FileLock::Acquire(const std::string& lock_path, std::chrono::milliseconds timeout,
                                   double* waited_ms) {
  auto start = MonotonicClock::now();
  if (waited_ms) *waited_ms = 0;
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::FromErrno("cannot open lock file " + lock_path, errno);

  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      int saved_errno = errno;
      ::close(fd);
      return Status::FromErrno("cannot lock " + lock_path, saved_errno);
    }
    Status waited = WaitForLock(fd, start + timeout);
    if (waited_ms) *waited_ms = MillisecondsSince(start);
    if (!waited.ok()) {
      ::close(fd);
      if (!waited.Is(Status::Code::kTimeout)) return waited.WithContext(lock_path);
      std::string holder = ReadHolder(lock_path);
      char waited_text[32];
      std::snprintf(waited_text, sizeof waited_text, "%.1f", MillisecondsSince(start));
      return Status::Timeout(
          "could not lock " + lock_path + " within " + std::to_string(timeout.count()) +
          " ms (waited " + waited_text + " ms); held by " +
          (holder.empty() ? std::string("an unknown process") : holder) +
          ". If that process is stuck, stop it; otherwise retry or raise HERD_LOCK_TIMEOUT_MS");
    }
  } else if (waited_ms) {
    *waited_ms = MillisecondsSince(start);
  }
  RecordHolder(fd);
  return FileLock(lock_path, fd);
}

FileLock::FileLock(FileLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  Release();
}

void FileLock::Release() {
  if (fd_ >= 0) {
    // Closing the only descriptor of the open file description drops the flock.
    ::close(fd_);
    fd_ = -1;
  }
}

std::string FileLock::ReadHolder(const std::string& lock_path) {
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return "";
  char buffer[512];
  ssize_t got = pread(fd, buffer, sizeof buffer - 1, 0);
  ::close(fd);
  if (got <= 0) return "";
  std::string holder(buffer, static_cast<size_t>(got));
  while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
  return holder;
}

}  // namespace herd::store
