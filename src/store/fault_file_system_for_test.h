// FaultFileSystem: a FileSystem that fails or slows one chosen step, for tests.
//
// A real disk does not produce ENOSPC or EIO on demand, so tests make the
// store's file layer do it instead (LevelDB's fault-injection Env plays the
// same role). Every step that is not told to fail runs the real system call,
// so the files a test inspects afterwards are real files.
//
// - FailStep(step, errno) makes every later call of `step` fail with that
//   errno (after `successful_calls` calls have gone through, when given).
//   A failing WriteAll first writes half of the data, as a disk that fills up
//   mid-write would; a failing Close still closes the descriptor (Linux
//   releases it even when close reports an error).
// - SlowDownWrites(delay) makes each WriteAll sleep first: the injected
//   "slow write" that widens race windows in concurrency tests.
// - calls(step) counts the calls of each step, failed or not, so a test can
//   prove that a failed flush was never retried.
//
// Not thread-safe; each forked process works on its own copy.
#pragma once

#include <unistd.h>

#include <array>
#include <chrono>
#include <string>
#include <string_view>
#include <thread>

#include "store/file_system.h"

namespace herd::store {

class FaultFileSystem : public FileSystem {
 public:
  enum class Step {
    kCreateExclusive,
    kWriteAll,
    kSyncData,
    kClose,
    kLink,
    kRename,
    kSyncDirectory
  };
  static constexpr int kStepCount = 7;

  static const char* StepName(Step step) {
    switch (step) {
      case Step::kCreateExclusive: return "CreateExclusive";
      case Step::kWriteAll: return "WriteAll";
      case Step::kSyncData: return "SyncData";
      case Step::kClose: return "Close";
      case Step::kLink: return "Link";
      case Step::kRename: return "Rename";
      case Step::kSyncDirectory: return "SyncDirectory";
    }
    return "?";
  }

  void FailStep(Step step, int error_number, int successful_calls = 0) {
    failing_step_ = step;
    error_number_ = error_number;
    calls_before_failure_ = successful_calls;
  }
  void StopFailing() { error_number_ = 0; }
  void SlowDownWrites(std::chrono::milliseconds delay) { write_delay_ = delay; }
  int calls(Step step) const { return calls_[Index(step)]; }

  Result<int> CreateExclusive(const std::string& path) override {
    if (ShouldFail(Step::kCreateExclusive)) return Injected("cannot create " + path);
    return FileSystem::CreateExclusive(path);
  }

  Status WriteAll(int fd, std::string_view data, const std::string& path) override {
    if (write_delay_.count() > 0) std::this_thread::sleep_for(write_delay_);
    if (ShouldFail(Step::kWriteAll)) {
      (void)FileSystem::WriteAll(fd, data.substr(0, data.size() / 2), path);
      return Injected("cannot write " + path);
    }
    return FileSystem::WriteAll(fd, data, path);
  }

  Status SyncData(int fd, const std::string& path) override {
    if (ShouldFail(Step::kSyncData)) return Injected("cannot flush " + path + " to disk");
    return FileSystem::SyncData(fd, path);
  }

  Status Close(int fd, const std::string& path) override {
    if (ShouldFail(Step::kClose)) {
      ::close(fd);
      return Injected("cannot close " + path);
    }
    return FileSystem::Close(fd, path);
  }

  Status Link(const std::string& from, const std::string& to) override {
    if (ShouldFail(Step::kLink)) return Injected("cannot link " + from + " to " + to);
    return FileSystem::Link(from, to);
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (ShouldFail(Step::kRename)) return Injected("cannot rename " + from + " to " + to);
    return FileSystem::Rename(from, to);
  }

  Status SyncDirectory(const std::string& directory) override {
    if (ShouldFail(Step::kSyncDirectory)) return Injected("cannot flush directory " + directory);
    return FileSystem::SyncDirectory(directory);
  }

 private:
  static int Index(Step step) { return static_cast<int>(step); }

  // Counts the call and says whether this one must fail.
  bool ShouldFail(Step step) {
    int call = calls_[Index(step)]++;
    return error_number_ != 0 && step == failing_step_ && call >= calls_before_failure_;
  }

  Status Injected(const std::string& what) const {
    return Status::FromErrno("(injected) " + what, error_number_);
  }

  Step failing_step_ = Step::kWriteAll;
  int error_number_ = 0;  // 0: nothing fails
  int calls_before_failure_ = 0;
  std::chrono::milliseconds write_delay_{0};
  std::array<int, kStepCount> calls_{};
};

}  // namespace herd::store
