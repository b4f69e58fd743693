#include "mcp/subscriptions.h"

#include <spdlog/spdlog.h>

#include <set>
#include <system_error>
#include <utility>

#include "registry/registries.h"
#include "registry/task_registry.h"
#include "util/clock.h"

namespace herd::mcp {
namespace {

constexpr const char kSubscribable[] =
    "herd's subscribable resources are task://{task_id}/status and "
    "task://{task_id}/progress-timeline";

// How long an agent's journal is as committed: the length its entry
// records (the JSON workspace), or its count of lines (the PostgreSQL
// registry keeps journals as rows, and its entries record no length).
uint64_t JournalLength(const Orchestrator& orchestrator, const std::string& task_id,
                       const registry::AgentRecord& agent, registry::Journal journal) {
  if (!registry::UsesPostgres(orchestrator.stores())) {
    return registry::CommittedJournalBytes(agent, journal).value_or(0);
  }
  Result<JournalSlice> slice =
      registry::RegistryFor(orchestrator.stores(), orchestrator.workspace())
          ->ReadJournal(task_id, agent, journal, 0);
  return slice.ok() ? slice->total : 0;
}

// What a subscription compares between reads: the commit sequence for the
// status (every commit moves it), the committed length of every journal
// for the timeline (only reports move it).
uint64_t Fingerprint(const Orchestrator& orchestrator, const TaskResourceUri& resource,
                     const registry::TaskSnapshot& snapshot) {
  if (resource.view == TaskResourceUri::View::kStatus) return snapshot.sequence;
  uint64_t length = 0;
  for (const registry::AgentRecord& agent : snapshot.task.agents) {
    length += JournalLength(orchestrator, resource.task_id, agent, registry::Journal::kProgress);
    length += JournalLength(orchestrator, resource.task_id, agent, registry::Journal::kFindings);
  }
  return length;
}

}  // namespace

ResourceSubscriptions::ResourceSubscriptions(const Orchestrator& orchestrator, Notify notify)
    : orchestrator_(orchestrator), notify_(std::move(notify)) {}

ResourceSubscriptions::~ResourceSubscriptions() {
  Stop();
}

Status ResourceSubscriptions::Subscribe(const std::string& uri) {
  std::optional<TaskResourceUri> resource = ParseTaskResourceUri(uri);
  if (!resource)
    return Status::InvalidArgument("cannot subscribe to " + uri + ": " + kSubscribable);
  std::lock_guard<std::mutex> guard(mutex_);
  if (subscriptions_.count(uri) > 0) return Status::Ok();
  HERD_RETURN_IF_ERROR(CheckRoomLocked());
  Subscription subscription;
  subscription.resource = *resource;
  Result<registry::SharedTask> task = orchestrator_.ReadTask(resource->task_id);
  if (task.status().Is(Status::Code::kNotFound)) {
    return Status::NotFound("cannot subscribe to " + uri + ": there is no task " +
                            resource->task_id +
                            "; read tasks://list for the tasks herd knows, or create one with "
                            "create_real_task");
  }
  // Read before the feed exists; the thread reads again once it does.
  if (!task.ok()) return task.status().WithContext("cannot subscribe to " + uri);
  subscription.fingerprint = Fingerprint(orchestrator_, *resource, **task);

  ChangeInterest interest = InterestLocked();
  interest.task_ids.push_back(resource->task_id);
  Result<std::unique_ptr<ChangeFeed>> watch = ChangeFeed::Open(orchestrator_, interest);
  if (!watch.ok()) return watch.status().WithContext("cannot subscribe to " + uri);
  auto inserted = subscriptions_.emplace(uri, std::move(subscription)).first;
  Status handed = HandOverLocked(std::move(watch).value());
  if (!handed.ok()) {
    subscriptions_.erase(inserted);
    return handed.WithContext("cannot subscribe to " + uri);
  }
  return Status::Ok();
}

void ResourceSubscriptions::Unsubscribe(const std::string& uri) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (subscriptions_.erase(uri) == 0 || stopping_) return;
  // Drop the task from the feed when that can be done now; if not, the old
  // feed only wakes the thread for nothing.
  Result<std::unique_ptr<ChangeFeed>> watch = ChangeFeed::Open(orchestrator_, InterestLocked());
  Status handed = watch.ok() ? HandOverLocked(std::move(watch).value()) : watch.status();
  if (!handed.ok()) spdlog::debug("still watching for {}: {}", uri, handed.message());
}

void ResourceSubscriptions::Stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
    subscriptions_.clear();
    if (wake_) wake_->Stop();
  }
  if (thread_.joinable()) thread_.join();
}

Status ResourceSubscriptions::CheckRoomLocked() const {
  if (stopping_) return Status::Refused("the session is ending: no new subscriptions");
  if (!failure_.ok()) {
    return failure_.WithContext(
        "watching subscribed resources failed earlier in this session; reconnect to subscribe "
        "again");
  }
  if (subscriptions_.size() >= kMaxSubscriptions) {
    return Status::Refused("this session has " + std::to_string(kMaxSubscriptions) +
                           " subscriptions already, the most it may have: resources/unsubscribe "
                           "from one before subscribing to another");
  }
  return Status::Ok();
}

ChangeInterest ResourceSubscriptions::InterestLocked() const {
  std::set<std::string> task_ids;
  for (const auto& [uri, subscription] : subscriptions_) {
    task_ids.insert(subscription.resource.task_id);
  }
  ChangeInterest interest;
  interest.task_ids.assign(task_ids.begin(), task_ids.end());
  return interest;
}

Status ResourceSubscriptions::HandOverLocked(std::unique_ptr<ChangeFeed> watch) {
  HERD_ASSIGN_OR_RETURN(std::shared_ptr<StopSignal> wake, StopSignal::Create());
  next_watch_ = std::move(watch);
  std::shared_ptr<StopSignal> previous = std::exchange(wake_, std::move(wake));
  if (previous) previous->Stop();
  if (thread_.joinable()) return Status::Ok();
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& error) {
    next_watch_.reset();
    return Status::IOError(std::string("cannot start a thread to watch the tasks: ") +
                           error.what());
  }
  return Status::Ok();
}

void ResourceSubscriptions::Run() {
  // Always set before the wake below is stopped: the thread starts with
  // one, and each later wake hands over another (or ends the thread).
  std::unique_ptr<ChangeFeed> watch;
  for (;;) {
    std::shared_ptr<StopSignal> wake;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (stopping_) return;
      if (next_watch_) watch = std::move(next_watch_);
      wake = wake_;
    }
    // A commit after a subscription's first read but before this watch
    // existed is seen here.
    NotifyChanges();
    Status waited = NotifyUntilWoken(*watch, *wake);
    if (!waited.ok()) {
      spdlog::error("resource subscriptions end: {}", waited.ToString());
      std::lock_guard<std::mutex> guard(mutex_);
      failure_ = waited;
      return;
    }
  }
}

Status ResourceSubscriptions::NotifyUntilWoken(ChangeFeed& watch, const StopSignal& wake) {
  for (;;) {
    HERD_ASSIGN_OR_RETURN(Wake woke, watch.WaitUntil(MonotonicClock::time_point::max(), &wake));
    if (woke == Wake::kStopped) return Status::Ok();
    NotifyChanges();
  }
}

void ResourceSubscriptions::NotifyChanges() {
  std::map<std::string, Subscription> current;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    current = subscriptions_;
  }
  // Read without the lock (a large registry takes a while); each task once.
  std::map<std::string, Result<registry::SharedTask>> tasks;
  std::map<std::string, uint64_t> moved;
  for (const auto& [uri, subscription] : current) {
    const std::string& task_id = subscription.resource.task_id;
    auto read = tasks.find(task_id);
    if (read == tasks.end()) read = tasks.emplace(task_id, orchestrator_.ReadTask(task_id)).first;
    if (!read->second.ok()) {
      spdlog::debug("cannot read {} for its subscribers: {}", uri, read->second.status().message());
      continue;
    }
    uint64_t fingerprint = Fingerprint(orchestrator_, subscription.resource, **read->second);
    if (fingerprint != subscription.fingerprint) moved.emplace(uri, fingerprint);
  }
  std::lock_guard<std::mutex> guard(mutex_);
  for (const auto& [uri, fingerprint] : moved) {
    auto found = subscriptions_.find(uri);
    // Unsubscribed meanwhile, or subscribed again after this change.
    if (found == subscriptions_.end() || found->second.fingerprint == fingerprint) continue;
    found->second.fingerprint = fingerprint;
    notify_(uri);
  }
}

}  // namespace herd::mcp
