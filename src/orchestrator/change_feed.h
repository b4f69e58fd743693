// ChangeFeed: one waiting thread's wait for what a live surface shows to
// change (the dashboard's event stream, MCP resource subscriptions),
// whichever registry engine holds the tasks.
//
// What it is woken by (ChangeInterest): every task's commits and every new
// task (a task list), some tasks' commits, and the growth of a directory of
// agent logs when that directory is on this machine. Behind it:
// - the JSON workspace: one inotify watch (util/directory_watch.h) of the
//   known-workspaces directory, each base's index directory, the task
//   directories and the log directory;
// - PostgreSQL: one LISTEN (registry.h WatchCommits for one task,
//   PgRegistry::WatchEveryCommit otherwise, WatchCommitsAndOutput when an
//   agent's output is followed: its node appends it from any machine) and,
//   when the log directory is on this machine, an inotify watch of it:
//   output appends are not commits. With both, each blocks on a thread of
//   its own that counts its wakes on an eventfd, which WaitUntil polls with
//   the caller's stop.
//
// As with every watch here: open it (then Refresh before each later read),
// read, then WaitUntil; a change after the read makes the next WaitUntil
// return at once. A wake says only that something may have changed; the
// caller reads again. Never wakes on a timer.
//
// One instance per waiting thread (not thread-safe). It holds one inotify
// instance and, under PostgreSQL, one connection of its own.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "orchestrator/orchestrator.h"
#include "registry/registry.h"
#include "util/clock.h"
#include "util/directory_watch.h"
#include "util/status.h"
#include "util/stop_signal.h"

namespace herd {

struct ChangeInterest {
  // Any task's commit and any new task.
  bool every_task = false;
  // These tasks' commits (an unknown task is left out: it has nothing to change).
  std::vector<std::string> task_ids;
  // A directory of agent logs whose files grow ("": none); watched once it
  // exists on this machine.
  std::string log_directory;
  // An agent whose output the registry keeps (PostgreSQL; "": none): each
  // chunk appended, from any machine, wakes the feed.
  std::string output_task_id;
  std::string output_agent_id;
};

class ChangeFeed {
 public:
  // IOError when no watch can be made (out of inotify instances, the
  // PostgreSQL server unreachable). `orchestrator` must outlive the feed.
  static Result<std::unique_ptr<ChangeFeed>> Open(const Orchestrator& orchestrator,
                                                  ChangeInterest interest);
  ~ChangeFeed();
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Watches what appeared since Open (the JSON workspace: new tasks and
  // workspace bases; either engine: the log directory, once made). Call it
  // before each read; what cannot be watched now is tried again next time.
  void Refresh();

  // kChanged once something of interest may have changed (at once if it
  // did since the last call), kStopped once `stop` (if given) is stopped,
  // kDeadline at `deadline` (MonotonicClock::time_point::max(): none).
  Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop);

 private:
  class Relay;

  ChangeFeed(const Orchestrator& orchestrator, ChangeInterest interest);
  // The directories the JSON workspace's files of interest are in.
  std::set<std::pair<std::string, WatchFor>> JsonDirectories() const;
  // Adds what is not watched yet; the first error other than NotFound.
  Status WatchJsonDirectories();
  // PostgreSQL: watches the log directory if it exists now.
  Status WatchLogDirectory();

  const Orchestrator& orchestrator_;
  const ChangeInterest interest_;
  const bool postgres_;
  // The JSON workspace: every directory; PostgreSQL: the log directory.
  std::optional<DirectoryWatch> files_;
  std::set<std::pair<std::string, WatchFor>> watched_;
  std::unique_ptr<registry::CommitWatch> commits_;  // PostgreSQL
  // Both commits_ and files_ waiting at once (declared last: its threads
  // are joined before what they wait on goes).
  std::unique_ptr<Relay> relay_;
};

}  // namespace herd
