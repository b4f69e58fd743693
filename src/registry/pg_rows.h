// The PostgreSQL engine's rows: how PgRegistry (registry/pg_registry.h)
// reads a task and its agents under the task's row lock and writes back
// only what changed, the cluster row every cluster-wide check locks first,
// and its connection pool. Internal to the engine (pg_registry.cc,
// pg_nodes.cc); every function runs inside the caller's transaction.
//
// Lock order, in every transaction that takes more than one: the cluster
// row, then node rows (by name), then task rows (by id).
#pragma once

#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pg/connection.h"
#include "registry/nodes.h"
#include "registry/pg_registry.h"
#include "registry/records.h"

namespace herd::registry {

// Idle connections, reused across operations and threads. A child forked
// with a pool never touches its parent's sessions: it opens its own, and
// leaves the inherited ones unclosed (closing would end the parent's).
class PgRegistry::Pool {
  using Connection = pg::Connection;

 public:
  explicit Pool(pg::ConnectOptions options) : options_(std::move(options)), owner_(getpid()) {}
  ~Pool() {
    if (getpid() != owner_) {
      for (auto& connection : idle_) connection.release();  // the parent's sessions
    }
  }

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> connection)
        : pool_(pool), connection_(std::move(connection)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (connection_) pool_->Give(std::move(connection_));
    }
    Connection& operator*() { return *connection_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
  };

  Result<Lease> Take() {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (getpid() == owner_ && !idle_.empty()) {
        std::unique_ptr<Connection> connection = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(connection));
      }
    }
    HERD_ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, Connection::Open(options_));
    return Lease(this, std::move(connection));
  }

  const pg::ConnectOptions& options() const { return options_; }

 private:
  static constexpr size_t kMaxIdle = 8;

  void Give(std::unique_ptr<Connection> connection) {
    std::lock_guard<std::mutex> guard(mutex_);
    if (getpid() != owner_) {
      connection.release();  // inherited across fork: never close it here
      return;
    }
    if (!connection->Broken() && idle_.size() < kMaxIdle) idle_.push_back(std::move(connection));
  }

  pg::ConnectOptions options_;
  pid_t owner_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

namespace pg_rows {

// "task T in the PostgreSQL registry", for messages.
std::string Source(const std::string& task_id);
Status TaskNotFound(const std::string& task_id);
// A stored JSONB document, parsed with herd's depth limit.
Result<json> ParseStored(const std::string& text, const std::string& what);

// A task as read under its row lock, with its agents' rows as stored (to
// write back only what changed).
struct LoadedTask {
  bool exists = false;
  uint64_t sequence = 0;
  TaskRecord task;
  std::map<std::string, std::pair<int, json>> stored_agents;  // id -> position, entry
};

// Locks the task's row (FOR UPDATE) and reads it with its agents.
Result<LoadedTask> LoadForUpdate(pg::Connection& c, const std::string& task_id);

// Writes the task's row (sequence + 1) and the agents' rows that changed,
// and notifies PgRegistry::kCommitChannel ("<task id> <sequence>") on
// commit; returns the new sequence.
Result<uint64_t> WriteTask(pg::Connection& c, const LoadedTask& loaded, const TaskRecord& task);

// Takes the cluster row: every check of a cluster-wide limit (the running
// cap, ports, node capacity) serialises here, before any other row is
// locked.
Status LockCluster(pg::Connection& c);

// The HERD_PORTs active agents on `node` ("": agents placed on no node,
// which run where they were deployed) hold, but `excluding_agent`'s of
// `excluding_task`.
Result<std::set<int>> PortsHeld(pg::Connection& c, const std::string& excluding_task,
                                const std::string& excluding_agent, const std::string& node);

// Refuses when `cap` (0 = none) active agents of every task, but this one,
// are running.
Status CheckClusterCap(pg::Connection& c, const std::string& task_id, const std::string& agent_id,
                       int cap);

// Every node the registry knows, by name, with its active agents counted
// and its lease measured against the server's clock now.
Result<std::vector<NodeView>> ReadNodes(pg::Connection& c);

// SQL rendering the timestamptz `column` as herd's timestamps are written
// (util/clock.h NowIso8601: UTC, milliseconds, "Z").
std::string IsoTimestampSql(const std::string& column);

// A task whose change a multi-task transaction (pg_nodes.cc) committed.
struct WrittenTask {
  TaskRecord task;
  uint64_t sequence = 0;
};

}  // namespace pg_rows
}  // namespace herd::registry
