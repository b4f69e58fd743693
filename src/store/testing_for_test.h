// Helpers shared by the store's tests. Header-only; test code only.
//
// - TempDir: a fresh directory under $TMPDIR (or /tmp) (util/testing_for_test.h), removed with
// everything in it.
// - Gate: a one-shot signal from a parent to the children it forks, so that
//   they start together without a fixed sleep.
// - ChildProcess: a forked child that runs a function and _exit()s, reports
//   to the parent through a pipe, and is killed and reaped by its destructor
//   so that a failed assertion leaves no process behind.
// - ReadBytes and DirectoryContents: files read without the store, to see
//   what any other tool would see and to prove that nothing changed.
//
// Everything is in herd::store::testing. Inside herd::store that name hides
// gtest's, so store tests spell gtest's namespace `::testing`.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include "util/testing_for_test.h"

namespace herd::store::testing {

// --- Process scaffolding -----------------------------------------------------

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir : public testing_util::TempDir {
 public:
  TempDir() : testing_util::TempDir("herd-store-test") {}
};

// A one-shot signal from a parent to the children it forks after creating
// the gate: children block in Wait() until the parent calls Open() (or
// dies). Each waiting child first closes its own copy of the write end, or
// it would keep the gate shut for everyone.
class Gate {
 public:
  Gate() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  }
  ~Gate() {
    CloseWriteEnd();
    ::close(fds_[0]);
  }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  void Open() { CloseWriteEnd(); }
  // Waits for Open() for at most `max_wait`; true if it came.
  bool WaitFor(std::chrono::milliseconds max_wait) {
    CloseWriteEnd();
    pollfd entry{fds_[0], POLLIN, 0};
    int ready;
    do {
      ready = ::poll(&entry, 1, static_cast<int>(max_wait.count()));
    } while (ready < 0 && errno == EINTR);
    return ready > 0;
  }
  void Wait() { WaitFor(std::chrono::milliseconds(-1)); }
  bool IsOpen() { return WaitFor(std::chrono::milliseconds(0)); }
  // For a child that execs: the read end, to make it the child's stdin.
  int read_end() const { return fds_[0]; }

 private:
  void CloseWriteEnd() {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }
  int fds_[2] = {-1, -1};
};

// A forked child that runs `body` and _exit()s, so no gtest or static
// destructor runs twice. Whatever the body returns reaches the parent
// through Finish(); a thrown exception makes the child exit with 1 and
// sends its message instead. Tell() sends a message at once ("held"), which
// the parent receives with Hear(). The destructor kills and reaps a child
// that is still running, so a failed assertion leaves no process behind.
class ChildProcess {
 public:
  struct Outcome {
    int exit_code = -1;  // -1 when killed by a signal
    int signal = 0;
    std::string output;
  };

  explicit ChildProcess(const std::function<std::string()>& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::fflush(nullptr);  // else buffered parent output is written twice
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::close(fds[0]);
      tell_fd_ = fds[1];
      int exit_code = 0;
      std::string output;
      try {
        output = body();
      } catch (const std::exception& error) {
        output = error.what();
        exit_code = 1;
      }
      Tell(output);
      ::_exit(exit_code);
    }
    ::close(fds[1]);
    output_fd_ = fds[0];
  }
  ~ChildProcess() {
    if (pid_ > 0) Kill();
    if (output_fd_ >= 0) ::close(output_fd_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // In the child: sends `message` to the parent now.
  static void Tell(std::string_view message) {
    while (!message.empty()) {
      ssize_t written = ::write(tell_fd_, message.data(), message.size());
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return;
      message.remove_prefix(static_cast<size_t>(written));
    }
  }

  // In the parent: blocks until the child has sent `size` bytes; returns
  // fewer if the child exited or exec'd first.
  std::string Hear(size_t size) {
    std::string heard;
    while (heard.size() < size) {
      char buffer[4096];
      ssize_t got = ::read(output_fd_, buffer, std::min(sizeof buffer, size - heard.size()));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      heard.append(buffer, static_cast<size_t>(got));
    }
    return heard;
  }

  // Collects the rest of the child's output and reaps it.
  Outcome Finish() {
    Outcome outcome;
    outcome.output = Hear(std::string::npos);
    Reap(&outcome);
    return outcome;
  }

  // SIGKILL, then reap.
  Outcome Kill() {
    Outcome outcome;
    ::kill(pid_, SIGKILL);
    Reap(&outcome);
    return outcome;
  }

 private:
  void Reap(Outcome* outcome) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFEXITED(status)) outcome->exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) outcome->signal = WTERMSIG(status);
  }

  // Set only in a forked child, before its body runs.
  inline static int tell_fd_ = -1;
  pid_t pid_ = -1;
  int output_fd_ = -1;
};

// --- Files -------------------------------------------------------------------

// The whole file, or "" if it cannot be read.
inline std::string ReadBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

// Every file in `directory`, name -> bytes: to prove that nothing changed.
// A lock file's bytes are left out: each lock hold rewrites its holder line.
inline std::map<std::string, std::string> DirectoryContents(const std::string& directory) {
  std::map<std::string, std::string> contents;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    std::string name = entry.path().filename().string();
    bool is_lock = name.size() > 5 && name.compare(name.size() - 5, 5, ".lock") == 0;
    contents[name] = is_lock ? "(lock file)" : ReadBytes(entry.path().string());
  }
  return contents;
}

}  // namespace herd::store::testing
