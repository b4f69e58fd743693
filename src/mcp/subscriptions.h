// ResourceSubscriptions: resources/subscribe and resources/unsubscribe for
// one MCP session.
//
// A client subscribes to task://{task_id}/status or
// task://{task_id}/progress-timeline. After each committed change to that
// task (a new sequence of its registry; for the timeline, a report that
// grew one of its agents' journals, which the same commit records) the
// session is told once, through `notify(uri)`, that the
// resource changed; the client reads it again to learn how.
//
// One watcher thread per session, started by the first subscription,
// serves every subscription: it blocks on one ChangeFeed
// (orchestrator/change_feed.h) of the subscribed tasks' commits (the JSON
// workspace: one inotify instance per session however many tasks;
// PostgreSQL: one listening connection, LISTEN/NOTIFY) and, on each wake, reads every subscribed
// task and notifies the uris whose fingerprint moved. A burst of commits drained by one wake gives
// one notification; a wake that committed nothing (a lock or temporary file closed) gives none; no
// timer ever runs.
//
// Subscribe builds the new watch itself, so every failure (a uri that is
// not subscribable, an unknown task, the limit of kMaxSubscriptions, no
// inotify instance or connection left) is its return value, then hands the
// feed to the
// thread, which reads every task again before it blocks: no commit between
// a subscription's first read and its feed goes unnoticed. Notifications
// are sent under the subscriptions' lock, so once Unsubscribe returns that
// uri is never notified again.
//
// Threads: Subscribe, Unsubscribe and Stop are called from one thread (the
// server's reader); `notify` runs on the watcher thread, must be safe there
// (the server's Send writes whole lines under its own lock) and must not
// call back into this object. Stop, or the destructor, ends every
// subscription and joins the watcher thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "mcp/tools.h"
#include "orchestrator/change_feed.h"
#include "orchestrator/orchestrator.h"
#include "util/status.h"
#include "util/stop_signal.h"

namespace herd::mcp {

class ResourceSubscriptions {
 public:
  // Per session; a client past it unsubscribes from one first.
  static constexpr size_t kMaxSubscriptions = 64;

  using Notify = std::function<void(const std::string& uri)>;

  // `orchestrator` must outlive this object.
  ResourceSubscriptions(const Orchestrator& orchestrator, Notify notify);
  ~ResourceSubscriptions();
  ResourceSubscriptions(const ResourceSubscriptions&) = delete;
  ResourceSubscriptions& operator=(const ResourceSubscriptions&) = delete;

  // Starts notifying changes of `uri`; Ok at once when it is subscribed
  // already. InvalidArgument for a uri that is not a task's status or
  // progress timeline (or a malformed task id), NotFound for an unknown
  // task, Refused past kMaxSubscriptions or once stopped, Corruption for a
  // damaged registry, IOError when no watch or thread can be made.
  Status Subscribe(const std::string& uri);

  // Stops notifying `uri`; nothing happens when it is not subscribed.
  void Unsubscribe(const std::string& uri);

  // Ends every subscription and joins the watcher thread; idempotent.
  void Stop();

 private:
  struct Subscription {
    TaskResourceUri resource;
    uint64_t fingerprint = 0;  // as last read: notified when it moves
  };

  // Why no subscription can be added now (stopped, failed, full), or Ok.
  Status CheckRoomLocked() const;
  // The subscribed tasks' commits.
  ChangeInterest InterestLocked() const;
  // Gives `watch` to the watcher thread, waking it (or starting it).
  Status HandOverLocked(std::unique_ptr<ChangeFeed> watch);
  // The watcher thread.
  void Run();
  // Notifies after every change until `wake` is stopped.
  Status NotifyUntilWoken(ChangeFeed& watch, const StopSignal& wake);
  // Reads every subscribed task and notifies the uris that changed.
  void NotifyChanges();

  const Orchestrator& orchestrator_;
  const Notify notify_;

  std::mutex mutex_;
  std::map<std::string, Subscription> subscriptions_;  // by uri
  std::unique_ptr<ChangeFeed> next_watch_;             // for the thread to take
  std::shared_ptr<StopSignal> wake_;  // stopped when next_watch_ is set, and by Stop
  Status failure_;                    // why the watcher thread gave up, if it did
  bool stopping_ = false;
  std::thread thread_;  // started by the first subscription
};

}  // namespace herd::mcp
