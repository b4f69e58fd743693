#include "node/node_daemon.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <list>
#include <map>
#include <set>

#include "agents/conversation.h"
#include "agents/killer.h"
#include "agents/launcher.h"
#include "agents/supervisor.h"
#include "node/lifelines.h"
#include "registry/pg_registry.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "store/file_lock.h"
#include "util/clock.h"

namespace herd::node {
namespace {

using registry::PgRegistry;
using Clock = MonotonicClock;

// How long a stopping daemon waits for its supervisors to record their
// agents' exits before it leaves.
constexpr auto kExitRecordWait = agents::kLifelineStopGrace + std::chrono::seconds(10);

// After a failed wait for commits (the server is down), the next try comes
// no sooner than this, so a daemon never spins.
constexpr auto kWatchRetry = std::chrono::seconds(1);

std::string KeyOf(const std::string& task_id, const std::string& agent_id) {
  return task_id + "/" + agent_id;
}

class NodeDaemon {
 public:
  NodeDaemon(const registry::RegistryStores& stores, const NodeOptions& options,
             const StopSignal& stop)
      : stores_(stores),
        options_(options),
        stop_(stop),
        registry_(*stores.postgres),
        workspace_(options.state_directory + "/workspace"),
        lifelines_([this] { OnLeaseDeadline(); }) {}

  Status Run() {
    HERD_RETURN_IF_ERROR(registry::MakeDirectories(options_.state_directory));
    Result<store::FileLock> lock = store::FileLock::Acquire(options_.state_directory + "/node.lock",
                                                            std::chrono::milliseconds(0));
    if (!lock.ok()) {
      return Status::Refused("another herd node runs on state directory " +
                             options_.state_directory + " (" + lock.status().message() +
                             "): give each node a directory of its own (--state-dir)");
    }
    HERD_RETURN_IF_ERROR(registry::MakeDirectories(workspace_.base()));
    HERD_RETURN_IF_ERROR(Register());
    while (!stop_.stopped()) {
      CatchUp();
      Wake wake = WaitForCommits(next_renewal_);
      if (wake == Wake::kStopped) break;
      if (Clock::now() >= next_renewal_) Renew();
    }
    return Leave();
  }

 private:
  // Registers a new incarnation and tells the processes it starts.
  Status Register() {
    Clock::time_point sent = Clock::now();
    HERD_ASSIGN_OR_RETURN(PgRegistry::NodeRegistration registration,
                          registry_.RegisterNode(options_.spec, options_.lease_ttl));
    incarnation_ = registration.lease.incarnation;
    Renewed(sent);
    setenv("HERD_NODE", options_.spec.name.c_str(), 1);
    setenv("HERD_NODE_INCARNATION", std::to_string(incarnation_).c_str(), 1);
    spdlog::info("node {} registered: incarnation {}, capacity {}, lease until {}",
                 options_.spec.name, incarnation_, options_.spec.capacity,
                 registration.lease.expires_at);
    if (!registration.lost.empty()) {
      spdlog::warn("node {}: {} agent(s) of its earlier incarnations marked lost",
                   options_.spec.name, registration.lost.size());
    }
    if (options_.on_registered) options_.on_registered(incarnation_);
    return Status::Ok();
  }

  std::chrono::milliseconds RenewalPeriod() const { return options_.lease_ttl / 3; }

  // A lease granted (or renewed) by a request sent at `sent`: it lasts
  // until `sent` + ttl by the server's clock at the earliest, so the
  // agents are stopped SelfStopMargin before that unless it is renewed.
  void Renewed(Clock::time_point sent) {
    next_renewal_ = sent + RenewalPeriod();
    lifelines_.ExtendUntil(sent + options_.lease_ttl - SelfStopMargin(options_.lease_ttl));
  }

  // The watchdog's thread, once it has closed every lifeline.
  void OnLeaseDeadline() {
    spdlog::error(
        "node {}: the lease could not be renewed in time; every agent is stopped before it can "
        "expire",
        options_.spec.name);
  }

  // Blocks until a commit, the deadline or the stop; a failed wait (the
  // server is unreachable) waits for the stop alone, briefly.
  Wake WaitForCommits(Clock::time_point deadline) {
    if (!watch_) {
      Result<std::unique_ptr<registry::CommitWatch>> opened = registry_.WatchEveryCommit();
      if (opened.ok()) {
        watch_ = std::move(*opened);
        return Wake::kChanged;  // opened now: catch up before waiting
      }
      spdlog::warn("node {}: cannot listen for commits: {}", options_.spec.name,
                   opened.status().ToString());
      return WaitForStop(std::min(deadline, Clock::now() + kWatchRetry));
    }
    Result<Wake> wake = watch_->WaitUntil(deadline, &stop_);
    if (wake.ok()) return *wake;
    spdlog::warn("node {}: waiting for commits failed: {}", options_.spec.name,
                 wake.status().ToString());
    watch_.reset();
    return WaitForStop(std::min(deadline, Clock::now() + kWatchRetry));
  }

  Wake WaitForStop(Clock::time_point deadline) {
    pollfd stop{stop_.fd(), POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    int ready = poll(&stop, 1, static_cast<int>(std::max<long long>(0, left.count())));
    return ready > 0 || stop_.stopped() ? Wake::kStopped : Wake::kDeadline;
  }

  void Renew() {
    Clock::time_point sent = Clock::now();
    next_renewal_ = sent + RenewalPeriod();
    if (lifelines_.stopped()) {
      // The agents of this incarnation were stopped without a lease to
      // answer for them: a new incarnation starts clean (RegisterNode marks
      // whatever of the old one is still active lost).
      ReapStarts(/*wait=*/true);
      CloseLifelines();
      Status registered = Register();
      if (!registered.ok()) {
        spdlog::warn("node {}: cannot register again yet: {}", options_.spec.name,
                     registered.ToString());
      }
      return;
    }
    Result<registry::NodeLease> renewed =
        registry_.RenewNodeLease(options_.spec.name, incarnation_, options_.lease_ttl);
    if (renewed.ok()) {
      Renewed(sent);
      Result<std::vector<PgRegistry::LostAgent>> expired = registry_.ExpireNodeLeases();
      if (!expired.ok()) {
        spdlog::warn("node {}: could not expire other nodes' leases: {}", options_.spec.name,
                     expired.status().ToString());
      } else if (!expired->empty()) {
        spdlog::warn("node {}: {} agent(s) of nodes whose lease expired marked lost",
                     options_.spec.name, expired->size());
      }
      return;
    }
    if (!renewed.status().Is(Status::Code::kRefused)) {
      spdlog::warn("node {}: cannot renew the lease: {}", options_.spec.name,
                   renewed.status().ToString());
      return;
    }
    // The lease is gone: this incarnation's agents are (being) marked lost.
    spdlog::error("node {}: {}; stopping its agents and registering again", options_.spec.name,
                  renewed.status().message());
    ReapStarts(/*wait=*/true);  // no start runs while the environment changes
    CloseLifelines();
    Status registered = Register();
    if (!registered.ok()) {
      spdlog::error("node {}: cannot register again: {}", options_.spec.name,
                    registered.ToString());
    }
  }

  // Starts what waits for this node and stops what was ended elsewhere.
  void CatchUp() {
    ReapStarts(/*wait=*/false);
    Result<std::vector<PgRegistry::TaskAgent>> work =
        registry_.NodeWork(options_.spec.name, incarnation_);
    if (!work.ok()) {
      spdlog::warn("node {}: cannot read its work: {}", options_.spec.name,
                   work.status().ToString());
      return;
    }
    std::set<std::string> current;
    for (const PgRegistry::TaskAgent& placed : *work) {
      const registry::AgentRecord& agent = placed.agent;
      std::string key = KeyOf(placed.task_id, agent.id);
      current.insert(key);
      bool active = registry::IsActiveStatus(agent.status);
      if (active && !agent.process.recorded() && agent.phase == "starting") {
        // A turn its running supervisor began (a queued message) is that
        // supervisor's to run.
        if (!lifelines_.stopped() && !lifelines_.Holds(key, agent.turn) &&
            !agent.supervisor.recorded()) {
          StartInBackground(placed.task_id, agent);
        }
      } else if (active && agent.process.recorded() && !agent.message_queue.empty() &&
                 agent.message_queue.front().interrupt) {
        // A message sent with interrupt from another machine.
        if (interrupted_.insert({key, agent.turn}).second) {
          spdlog::info("node {}: interrupting turn {} of {}", options_.spec.name, agent.turn,
                       agent.id);
          agents::SignalTurnInterrupt(agent, agent.turn);
        }
      } else if (!active && agent.supervisor.recorded() && !agent.exit) {
        if (stops_requested_.insert(key).second) {
          spdlog::info("node {}: stopping {} of task {} ({})", options_.spec.name, agent.id,
                       placed.task_id, agent.termination_reason.value_or(agent.status));
          agents::RequestStop({agent});
        }
      }
    }
    // Agents whose exits are recorded need their lifelines no more.
    for (const std::string& key : lifelines_.CloseAllBut(current)) stops_requested_.erase(key);
  }

  // Starts the agent's turn on a thread of its own (a start waits for the
  // supervisor's handshake), so the loop keeps renewing the lease; a turn
  // already being started is not started twice.
  void StartInBackground(const std::string& task_id, const registry::AgentRecord& agent) {
    std::pair<std::string, int> turn{KeyOf(task_id, agent.id), agent.turn};
    if (starting_.count(turn) != 0) return;
    starting_.insert(turn);
    starts_.push_back(Starting{
        turn, std::async(std::launch::async, [this, task_id, agent] { Start(task_id, agent); })});
  }

  // Forgets the starts that have finished (all of them, waiting, with `wait`).
  void ReapStarts(bool wait) {
    for (auto it = starts_.begin(); it != starts_.end();) {
      if (!wait && it->done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        ++it;
        continue;
      }
      it->done.wait();
      starting_.erase(it->turn);
      it = starts_.erase(it);
    }
  }

  void Start(const std::string& task_id, const registry::AgentRecord& agent) {
    int lifeline[2];
    if (pipe2(lifeline, O_CLOEXEC) != 0) {
      spdlog::error("node {}: cannot create a lifeline for {}: {}", options_.spec.name, agent.id,
                    std::strerror(errno));
      return;
    }
    agents::NodeContext node{options_.spec.name, incarnation_, lifeline[0]};
    Status started =
        agent.turn > 1
            ? agents::StartFollowUpTurn(stores_, workspace_, task_id, agent.id, agent.turn, &node)
                  .status()
            : agents::StartPlacedAgent(stores_, workspace_, task_id, agent, node);
    close(lifeline[0]);
    if (!started.ok()) {
      close(lifeline[1]);
      spdlog::error("node {}: turn {} of {} of task {}: {}", options_.spec.name, agent.turn,
                    agent.id, task_id, started.message());
      return;
    }
    // (replacing the lifeline of an earlier turn's supervisor, which ended)
    lifelines_.Hold(KeyOf(task_id, agent.id), lifeline[1], agent.turn);
    spdlog::info("node {}: started turn {} of {} of task {}", options_.spec.name, agent.turn,
                 agent.id, task_id);
  }

  // Every supervisor of this node sees its lifeline close and stops its
  // agent (supervisor.h).
  void CloseLifelines() {
    lifelines_.CloseAll();
    stops_requested_.clear();
    interrupted_.clear();
  }

  // Stops every agent, waits (bounded) for their exits to be recorded, and
  // leaves.
  Status Leave() {
    ReapStarts(/*wait=*/true);
    bool had_agents = !lifelines_.empty();
    CloseLifelines();
    Clock::time_point deadline = Clock::now() + kExitRecordWait;
    while (had_agents && Clock::now() < deadline) {
      Result<std::vector<PgRegistry::TaskAgent>> work =
          registry_.NodeWork(options_.spec.name, incarnation_);
      if (work.ok() && work->empty()) break;
      if (!watch_) {
        Result<std::unique_ptr<registry::CommitWatch>> opened = registry_.WatchEveryCommit();
        if (!opened.ok()) break;
        watch_ = std::move(*opened);
        continue;
      }
      Result<Wake> wake = watch_->WaitUntil(deadline, nullptr);
      if (!wake.ok()) break;
    }
    Result<std::vector<PgRegistry::LostAgent>> left =
        registry_.LeaveNode(options_.spec.name, incarnation_);
    if (!left.ok())
      return left.status().WithContext("node " + options_.spec.name + " did not leave");
    spdlog::info("node {} left{}", options_.spec.name,
                 left->empty() ? std::string()
                               : "; " + std::to_string(left->size()) + " agent(s) marked lost");
    return Status::Ok();
  }

  const registry::RegistryStores& stores_;
  const NodeOptions& options_;
  const StopSignal& stop_;
  const PgRegistry& registry_;
  registry::Workspace workspace_;
  std::unique_ptr<registry::CommitWatch> watch_;
  int64_t incarnation_ = 0;
  Clock::time_point next_renewal_;
  Lifelines lifelines_;  // by task/agent
  // Starts under way on their own threads, by task/agent and turn (only
  // the loop's thread touches these).
  struct Starting {
    std::pair<std::string, int> turn;
    std::future<void> done;
  };
  std::list<Starting> starts_;
  std::set<std::pair<std::string, int>> starting_;
  std::set<std::string> stops_requested_;              // task/agent
  std::set<std::pair<std::string, int>> interrupted_;  // task/agent, turn
};

}  // namespace

std::chrono::milliseconds SelfStopMargin(std::chrono::milliseconds ttl) {
  std::chrono::milliseconds floor = agents::kLifelineStopGrace + std::chrono::seconds(1);
  return std::max<std::chrono::milliseconds>(ttl / 3, floor);
}

Status ValidateNodeOptions(const NodeOptions& options) {
  HERD_RETURN_IF_ERROR(registry::ValidateNodeSpec(options.spec));
  if (options.lease_ttl < kShortestLeaseTtl) {
    return Status::InvalidArgument(
        "a node's lease must last at least " + std::to_string(kShortestLeaseTtl.count()) +
        " s, so that it can stop its agents before the lease expires: raise --lease-seconds");
  }
  if (options.state_directory.empty()) {
    return Status::InvalidArgument("the node needs a state directory: give --state-dir");
  }
  return Status::Ok();
}

Status RunNode(const registry::RegistryStores& stores, const NodeOptions& options,
               const StopSignal& stop) {
  HERD_RETURN_IF_ERROR(ValidateNodeOptions(options));
  if (stores.postgres == nullptr) {
    return Status::InvalidArgument(
        "herd node needs the shared PostgreSQL registry: set HERD_REGISTRY (or --registry) to "
        "its postgresql:// URL on every machine");
  }
  NodeDaemon daemon(stores, options, stop);
  return daemon.Run();
}

}  // namespace herd::node
