// PgRegistry: the Registry (registry/registry.h) on a PostgreSQL server,
// shared by every machine that points herd at it (HERD_REGISTRY).
//
// Each operation is ONE PostgreSQL transaction (READ COMMITTED), with the
// same pure rules as the JSON engine (task_registry.h, turns.h): it locks
// the rows that stand for the limits it checks, always in this order,
// `SELECT ... FOR UPDATE`: the cluster row (herd_cluster, only when a
// running cap is checked), then the task's row. It then reads the task's
// agents, decodes the task (records.h, the one decoder), applies the rule,
// recomputes the derived counts and writes back only the rows that changed,
// with the task's sequence + 1. The cap counts the active agents of every
// task in the registry. Journals are rows of herd_journal, inserted in the
// report's transaction. Schema: registry/pg_schema.h.
//
// Retries: a serialization failure or deadlock, or a connection lost before
// COMMIT, runs the whole transaction again (pg/connection.h). A commit lost
// in flight is retried only for an admission, which records its client-made
// request id (AdmissionRequest::request_id) so a second attempt returns the
// agent the first one admitted; other operations then fail saying the
// outcome is unknown.
//
// Every commit also notifies channel herd_commits (kCommitChannel) in its
// own transaction, so the notification is delivered only once it committed,
// with the payload "<task id> <sequence>"; WatchCommits LISTENs on it
// (pg/listener.h).
//
// Thread-safe: operations take a connection from a small pool, shared with
// the views ForWorkspace makes. A forked child must open its own
// PgRegistry.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "registry/nodes.h"
#include "registry/registry.h"

namespace herd::registry {

class PgRegistry : public Registry {
 public:
  enum class OnOpen { kMigrate, kRequireCurrentSchema };

  // Connects (checking the server is reachable) and migrates the schema,
  // or with kRequireCurrentSchema refuses a schema that is not this
  // binary's. A schema newer than this binary's is always refused.
  // `workspace_base` is recorded in new tasks (where their local files go).
  static Result<std::unique_ptr<PgRegistry>> Open(const pg::ConnectOptions& options,
                                                  const std::string& workspace_base,
                                                  OnOpen on_open = OnOpen::kMigrate);

  static constexpr char kCommitChannel[] = "herd_commits";

  // The same registry (the same connections), recording `workspace_base`
  // in the tasks it creates.
  std::unique_ptr<PgRegistry> ForWorkspace(const std::string& workspace_base) const {
    return std::unique_ptr<PgRegistry>(new PgRegistry(pool_, options_, workspace_base));
  }

  Result<SharedTask> ReadTask(const std::string& task_id) const override;
  Result<TaskSnapshot> CreateTask(const std::string& task_id, const TaskSpec& spec) const override;
  Result<AgentRecord> Admit(const std::string& task_id, const AdmissionRequest& request,
                            int global_cap) const override;
  Status Release(const std::string& task_id, const std::string& agent_id) const override;
  Result<AgentRecord> RecordStart(const std::string& task_id, const std::string& agent_id,
                                  const ProcessIdentity& agent,
                                  const ProcessIdentity& supervisor) const override;
  Result<EndOutcome> RecordEnd(const std::string& task_id, const std::string& agent_id,
                               const ExitRecord& exit, const std::optional<Termination>& stop,
                               int kill_grace_ms) const override;
  Result<TerminationOutcome> Terminate(const std::string& task_id, const std::string& agent_id,
                                       const Termination& termination) const override;
  Result<MessageOutcome> SendMessage(const std::string& task_id, const std::string& agent_id,
                                     const AgentMessage& message, int global_cap,
                                     const std::vector<int>& port_candidates) const override;
  Status AbandonTurn(const std::string& task_id, const std::string& agent_id, int turn,
                     const std::string& reason) const override;
  Result<StopOutcome> StopTask(const std::string& task_id, const std::string& reason,
                               int kill_grace_ms) const override;
  Result<EndOutcome> RecordUsage(const std::string& task_id, const std::string& agent_id,
                                 const json& usage, int kill_grace_ms) const override;
  Result<ReportOutcome> ReportProgress(const std::string& task_id, const std::string& agent_id,
                                       const std::string& status, const std::string& message,
                                       int progress) const override;
  Result<ReportOutcome> ReportFinding(const std::string& task_id, const std::string& agent_id,
                                      const FindingReport& finding) const override;
  Result<TaskSnapshot> ChangeLimits(const std::string& task_id,
                                    const LimitsChange& change) const override;
  Status RecordTmuxSession(const std::string& task_id, const std::string& agent_id,
                           const std::string& session) const override;
  Status RecordWorktree(const std::string& task_id, const std::string& agent_id,
                        const WorktreeRecord& worktree) const override;
  Result<LostOutcome> MarkLost(const std::string& task_id, const std::string& agent_id,
                               const LostCheck& still_lost) const override;
  // Nothing to rebuild: counts are queried from the agents' rows.
  Status RebuildIndex() const override { return Status::Ok(); }

  // The lines of an agent's journal, in commit order.
  Result<std::vector<json>> ReadJournal(const std::string& task_id, const std::string& agent_id,
                                        Journal journal) const;
  Result<JournalSlice> ReadJournal(const std::string& task_id, const AgentRecord& agent,
                                   Journal journal, size_t keep) const override;

  // The ids of every task, oldest first.
  Result<std::vector<std::string>> TaskIds() const override;
  Result<std::unique_ptr<CommitWatch>> WatchCommits(const std::string& task_id) const override;
  // A wait for the commits of every task (a node's daemon).
  Result<std::unique_ptr<CommitWatch>> WatchEveryCommit() const;
  // herd_output: one row per appended chunk, numbered 1, 2, ... per agent;
  // each append then drops the oldest chunks past the bounds, and notifies
  // channel herd_output (kOutputChannel) with "<task id> <agent id>", in
  // the same transaction.
  Status AppendOutput(const std::string& task_id, const std::string& agent_id,
                      const std::string& output) const override;
  Result<std::string> ReadOutputTail(const std::string& task_id,
                                     const std::string& agent_id) const override;

  // Following an agent's output from another machine (herd logs --follow,
  // the dashboard): open WatchCommitsAndOutput, then ReadOutputAfter(0),
  // then after each wake ReadOutputAfter(the last chunk read); a chunk
  // appended after the watch opened wakes the next wait.
  static constexpr char kOutputChannel[] = "herd_output";
  struct OutputAfter {
    std::string bytes;       // the kept chunks numbered above `after`, oldest first
    int64_t last_chunk = 0;  // the newest chunk's number (`after` when none is newer)
    bool dropped = false;    // after > 0 and chunks above it were dropped (the tail is bounded)
  };
  Result<OutputAfter> ReadOutputAfter(const std::string& task_id, const std::string& agent_id,
                                      int64_t after) const;
  // A wait woken by the commits of `task_id` (of every task for ""; an
  // agent's end is one) and by output appended to agent `output_agent_id`
  // of task `output_task_id`.
  Result<std::unique_ptr<CommitWatch>> WatchCommitsAndOutput(
      const std::string& task_id, const std::string& output_task_id,
      const std::string& output_agent_id) const;

  // Nodes (registry/nodes.h; pg_nodes.cc). Lease times are the server's
  // clock. Registering, leaving and expiring lock the cluster row, then the
  // node's row, then the tasks of the agents they mark, by id: one
  // transaction each, serialised with every placement.

  // An agent of a task, as committed.
  struct TaskAgent {
    std::string task_id;
    AgentRecord agent;
  };
  // An active agent a node operation marked lost.
  using LostAgent = TaskAgent;
  struct NodeRegistration {
    NodeLease lease;
    // Active agents of the node's earlier incarnations, marked "node lost":
    // a new incarnation never runs them again.
    std::vector<LostAgent> lost;
  };
  // Registers the node, or registers it again as a new incarnation, with a
  // lease of `ttl`. Refused while another machine (another hostname) holds
  // the name under a lease that has not expired.
  Result<NodeRegistration> RegisterNode(const NodeSpec& spec, std::chrono::milliseconds ttl) const;
  // Extends the lease to now + `ttl`. Refused when the lease has expired
  // (its agents are being, or have been, marked lost) or a newer
  // incarnation holds the name: the daemon must stop its agents and
  // register again.
  Result<NodeLease> RenewNodeLease(const std::string& name, int64_t incarnation,
                                   std::chrono::milliseconds ttl) const;
  // A clean stop of the node's daemon: state "left", and any agent still
  // active on it marked lost. Refused for an incarnation that is not the
  // current one.
  Result<std::vector<LostAgent>> LeaveNode(const std::string& name, int64_t incarnation) const;
  // Every node whose lease has expired: its active agents marked "node
  // lost" and the node "expired", its incarnation bumped, in one
  // transaction. Any node may run it at any time; a second run marks
  // nothing.
  Result<std::vector<LostAgent>> ExpireNodeLeases() const;
  // Every node, by name.
  Result<std::vector<NodeView>> ListNodes() const;
  // What incarnation `incarnation` of node `name` has to act on (its
  // daemon's catch-up, node/node_daemon.h): every agent placed on it that
  // is active, or that has ended (a kill, a stop, a budget) while its
  // supervisor has not recorded its exit yet, by task and agent id. Never
  // an agent of another incarnation.
  Result<std::vector<TaskAgent>> NodeWork(const std::string& name, int64_t incarnation) const;

 private:
  class Pool;
  // A task's mutation inside the transaction; it may also write rows of
  // its own (a journal line) through the connection.
  using Mutation = std::function<Result<store::Decision>(TaskRecord& task, pg::Connection& c)>;
  enum class CapLock { kNone, kCluster };
  struct UpdateOptions {
    CapLock cap_lock = CapLock::kNone;
    pg::Idempotence idempotence = pg::Idempotence::kNotIdempotent;
    bool create = false;  // the task row may not exist yet (CreateTask)
    // Runs after the task's rows are written, in the same transaction.
    std::function<Status(pg::Connection& c)> after_write;
  };
  Status Update(const std::string& task_id, const UpdateOptions& options, const Mutation& mutation,
                TaskSnapshot* committed = nullptr) const;
  // A mutation that always commits when it succeeds.
  Status Change(const std::string& task_id, const std::function<Status(TaskRecord&)>& change,
                TaskSnapshot* committed = nullptr) const;
  Result<ReportOutcome> CommitReport(const std::string& task_id, const std::string& agent_id,
                                     Journal journal,
                                     const std::function<Result<json>(TaskRecord&)>& apply) const;

  PgRegistry(std::shared_ptr<Pool> pool, pg::ConnectOptions options, std::string workspace_base)
      : pool_(std::move(pool)),
        options_(std::move(options)),
        workspace_base_(std::move(workspace_base)) {}

  std::shared_ptr<Pool> pool_;
  pg::ConnectOptions options_;  // for listeners' own connections
  std::string workspace_base_;
};

}  // namespace herd::registry
