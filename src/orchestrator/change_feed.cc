#include "orchestrator/change_feed.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>

#include "registry/pg_registry.h"
#include "registry/workspace.h"

namespace herd {
namespace {

// The directory holding `path`.
std::string Parent(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

bool IsDirectory(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

}  // namespace

// Waits on several waits at once: each blocks on a thread of its own and
// counts its wakes on an eventfd; WaitUntil polls that and the caller's stop.
class ChangeFeed::Relay {
 public:
  using Wait = std::function<Result<Wake>(const StopSignal* stop)>;

  static Result<std::unique_ptr<Relay>> Start(std::vector<Wait> waits) {
    HERD_ASSIGN_OR_RETURN(std::shared_ptr<StopSignal> closing, StopSignal::Create());
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return Status::FromErrno("cannot make an eventfd to wait for changes", errno);
    std::unique_ptr<Relay> relay(new Relay(fd, std::move(closing)));
    for (Wait& wait : waits) {
      try {
        relay->threads_.emplace_back(
            [raw = relay.get(), wait = std::move(wait)] { raw->Run(wait); });
      } catch (const std::system_error& error) {
        return Status::IOError(std::string("cannot start a thread to wait for changes: ") +
                               error.what());
      }
    }
    return relay;
  }

  ~Relay() {
    closing_->Stop();
    for (std::thread& thread : threads_) thread.join();
    ::close(changed_fd_);
  }

  Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop) {
    for (;;) {
      pollfd ready[2] = {{changed_fd_, POLLIN, 0}, {stop ? stop->fd() : -1, POLLIN, 0}};
      int polled = ::poll(ready, 2, PollTimeout(deadline));
      if (polled < 0 && errno == EINTR) continue;
      if (polled < 0) return Status::FromErrno("cannot wait for changes (poll)", errno);
      if (stop != nullptr && stop->stopped()) return Wake::kStopped;
      if (polled == 0) return Wake::kDeadline;
      uint64_t count = 0;
      // Resets the count: a burst of wakes is one change.
      if (::read(changed_fd_, &count, sizeof count) < 0 && errno != EAGAIN) {
        return Status::FromErrno("cannot wait for changes (eventfd)", errno);
      }
      std::lock_guard<std::mutex> guard(mutex_);
      if (!failure_.ok()) return failure_;
      return Wake::kChanged;
    }
  }

 private:
  Relay(int fd, std::shared_ptr<StopSignal> closing) : changed_fd_(fd), closing_(closing) {}

  void Run(const Wait& wait) {
    for (;;) {
      Result<Wake> woke = wait(closing_.get());
      if (woke.ok() && *woke == Wake::kStopped) return;
      if (!woke.ok()) {
        std::lock_guard<std::mutex> guard(mutex_);
        failure_ = woke.status();
      }
      uint64_t one = 1;
      if (::write(changed_fd_, &one, sizeof one) < 0) {
        spdlog::debug("cannot count a change: {}", std::strerror(errno));
      }
      if (!woke.ok()) return;
    }
  }

  const int changed_fd_;
  const std::shared_ptr<StopSignal> closing_;
  std::mutex mutex_;
  Status failure_;  // a wait's error, returned by the next WaitUntil
  std::vector<std::thread> threads_;
};

ChangeFeed::ChangeFeed(const Orchestrator& orchestrator, ChangeInterest interest)
    : orchestrator_(orchestrator),
      interest_(std::move(interest)),
      postgres_(registry::UsesPostgres(orchestrator.stores())) {}

ChangeFeed::~ChangeFeed() = default;

Result<std::unique_ptr<ChangeFeed>> ChangeFeed::Open(const Orchestrator& orchestrator,
                                                     ChangeInterest interest) {
  std::unique_ptr<ChangeFeed> feed(new ChangeFeed(orchestrator, std::move(interest)));
  if (!feed->postgres_) {
    HERD_ASSIGN_OR_RETURN(DirectoryWatch watch, DirectoryWatch::Open());
    feed->files_ = std::move(watch);
    HERD_RETURN_IF_ERROR(feed->WatchJsonDirectories());
    return feed;
  }
  const ChangeInterest& wanted = feed->interest_;
  if (!wanted.output_agent_id.empty()) {
    std::string commits_of =
        !wanted.every_task && wanted.task_ids.size() == 1 ? wanted.task_ids.front() : "";
    HERD_ASSIGN_OR_RETURN(feed->commits_,
                          orchestrator.stores().postgres->WatchCommitsAndOutput(
                              commits_of, wanted.output_task_id, wanted.output_agent_id));
  } else if (wanted.every_task || wanted.task_ids.size() > 1) {
    HERD_ASSIGN_OR_RETURN(feed->commits_, orchestrator.stores().postgres->WatchEveryCommit());
  } else if (wanted.task_ids.size() == 1) {
    Result<std::unique_ptr<registry::CommitWatch>> watch =
        orchestrator.WatchCommits(wanted.task_ids.front());
    if (!watch.status().Is(Status::Code::kNotFound)) {
      HERD_RETURN_IF_ERROR(watch.status());
      feed->commits_ = std::move(watch).value();
    }
  }
  HERD_RETURN_IF_ERROR(feed->WatchLogDirectory());
  return feed;
}

std::set<std::pair<std::string, WatchFor>> ChangeFeed::JsonDirectories() const {
  std::set<std::pair<std::string, WatchFor>> directories;
  if (interest_.every_task) {
    // Where new workspace bases, new tasks and every task's commits are recorded.
    directories.emplace(Parent(registry::KnownWorkspacesPath()), WatchFor::kReplacedFiles);
    for (const std::string& base :
         registry::KnownWorkspaces(orchestrator_.stores(), orchestrator_.workspace().base())) {
      registry::Workspace workspace(base);
      directories.emplace(Parent(workspace.GlobalRegistryPath()), WatchFor::kReplacedFiles);
      for (const std::string& id : workspace.TaskIds()) {
        directories.emplace(workspace.TaskDirectory(id), WatchFor::kReplacedFiles);
      }
    }
  }
  for (const std::string& task_id : interest_.task_ids) {
    Result<std::string> directory = orchestrator_.TaskDirectory(task_id);
    if (directory.ok()) directories.emplace(*directory, WatchFor::kReplacedFiles);
  }
  if (!interest_.log_directory.empty()) {
    directories.emplace(interest_.log_directory, WatchFor::kGrowingFiles);
  }
  return directories;
}

Status ChangeFeed::WatchJsonDirectories() {
  Status first_error;
  for (const auto& directory : JsonDirectories()) {
    if (watched_.count(directory) > 0) continue;
    Status added = files_->Add(directory.first, directory.second);
    if (added.ok()) {
      watched_.insert(directory);
    } else if (added.Is(Status::Code::kNotFound)) {
      // Not made yet (or its task deleted): tried again on Refresh.
      spdlog::debug("not watching {} yet: {}", directory.first, added.message());
    } else if (first_error.ok()) {
      first_error = added;
    }
  }
  return first_error;
}

Status ChangeFeed::WatchLogDirectory() {
  if (files_ || interest_.log_directory.empty() || !IsDirectory(interest_.log_directory)) {
    return Status::Ok();
  }
  HERD_ASSIGN_OR_RETURN(DirectoryWatch watch, DirectoryWatch::Open());
  Status added = watch.Add(interest_.log_directory, WatchFor::kGrowingFiles);
  if (added.Is(Status::Code::kNotFound)) return Status::Ok();
  HERD_RETURN_IF_ERROR(added);
  files_ = std::move(watch);
  if (!commits_) return Status::Ok();
  registry::CommitWatch* commits = commits_.get();
  DirectoryWatch* files = &*files_;
  Result<std::unique_ptr<Relay>> relay =
      Relay::Start({[commits](const StopSignal* stop) {
                      return commits->WaitUntil(MonotonicClock::time_point::max(), stop);
                    },
                    [files](const StopSignal* stop) {
                      return files->WaitUntil(MonotonicClock::time_point::max(), stop);
                    }});
  if (!relay.ok()) {
    files_.reset();  // the commits alone, until a Refresh manages both
    return relay.status();
  }
  relay_ = std::move(relay).value();
  return Status::Ok();
}

void ChangeFeed::Refresh() {
  Status refreshed = postgres_ ? WatchLogDirectory() : WatchJsonDirectories();
  if (!refreshed.ok()) spdlog::debug("not watching everything yet: {}", refreshed.message());
}

Result<Wake> ChangeFeed::WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop) {
  if (relay_) return relay_->WaitUntil(deadline, stop);
  if (commits_) return commits_->WaitUntil(deadline, stop);
  if (files_) return files_->WaitUntil(deadline, stop);
  // Nothing to watch (an unknown task): only the stop or the deadline ends the wait.
  pollfd ready{stop ? stop->fd() : -1, POLLIN, 0};
  for (;;) {
    int polled = ::poll(&ready, 1, PollTimeout(deadline));
    if (polled < 0 && errno == EINTR) continue;
    if (polled < 0) return Status::FromErrno("cannot wait for changes (poll)", errno);
    return polled == 0 ? Wake::kDeadline : Wake::kStopped;
  }
}

}  // namespace herd
