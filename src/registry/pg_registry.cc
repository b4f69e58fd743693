#include "registry/pg_registry.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "pg/listener.h"
#include "registry/global_index.h"
#include "registry/pg_rows.h"
#include "registry/pg_schema.h"
#include "registry/transitions.h"
#include "util/clock.h"
#include "util/json_parse.h"
#include "util/random.h"

namespace herd::registry {

using pg::Connection;
using store::Decision;

using pg_rows::CheckClusterCap;
using pg_rows::LoadedTask;
using pg_rows::LoadForUpdate;
using pg_rows::LockCluster;
using pg_rows::ParseStored;
using pg_rows::PortsHeld;
using pg_rows::Source;
using pg_rows::TaskNotFound;
using pg_rows::WriteTask;

namespace {

// Whether the node a placed agent ran on can run its new turn: the same
// incarnation (its files and conversation are there), leased, with room.
// Refused if not; another error if the nodes cannot be read.
Status NodeTakesTurn(Connection& c, const AgentRecord& agent) {
  HERD_ASSIGN_OR_RETURN(std::vector<NodeView> nodes, pg_rows::ReadNodes(c));
  for (const NodeView& node : nodes) {
    if (node.spec.name != agent.node->name) continue;
    if (node.incarnation != agent.node->incarnation) {
      return Status::Refused("agent " + agent.id + " ran on node " + node.spec.name +
                             ", which has registered again since: its conversation cannot go on "
                             "there; deploy a new agent");
    }
    // Counted as committed: the agent itself is not active there yet.
    if (!node.leased()) {
      return Status::Refused("agent " + agent.id + "'s node " + node.spec.name + " is not up (" +
                             node.state + ", lease until " + node.lease_expires_at +
                             "): its next turn can run only under that node's daemon; deploy a new "
                             "agent");
    }
    if (node.running >= node.spec.capacity) {
      return Status::Refused("node " + node.spec.name + " has no room for agent " + agent.id +
                             "'s next turn (" + std::to_string(node.running) + " of " +
                             std::to_string(node.spec.capacity) +
                             " running): wait for an agent there to end, or raise its --capacity");
    }
    return Status::Ok();
  }
  return Status::Refused("agent " + agent.id + " ran on node " + agent.node->name +
                         ", which the registry no longer knows: deploy a new agent");
}

}  // namespace

Result<std::unique_ptr<PgRegistry>> PgRegistry::Open(const pg::ConnectOptions& options,
                                                     const std::string& workspace_base,
                                                     OnOpen on_open) {
  auto pool = std::make_shared<Pool>(options);
  {
    HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool->Take());
    HERD_ASSIGN_OR_RETURN(int stored, PgStoredSchemaVersion(*lease));
    if (stored > PgSchemaVersion() ||
        (stored < PgSchemaVersion() && on_open == OnOpen::kRequireCurrentSchema)) {
      return Status::Refused("the PostgreSQL registry at " + pg::RedactedSetting(options.conninfo) +
                             " has schema version " + std::to_string(stored) +
                             " and this herd knows version " + std::to_string(PgSchemaVersion()) +
                             (stored > PgSchemaVersion() ? ": upgrade herd on this machine"
                                                         : ": run `herd registry migrate`"));
    }
    if (stored < PgSchemaVersion()) HERD_RETURN_IF_ERROR(MigratePgSchema(*lease).status());
  }
  return std::unique_ptr<PgRegistry>(new PgRegistry(std::move(pool), options, workspace_base));
}

Status PgRegistry::Update(const std::string& task_id, const UpdateOptions& options,
                          const Mutation& mutation, TaskSnapshot* committed) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  TaskRecord written;
  uint64_t sequence = 0;
  bool wrote = false;
  std::vector<AgentTransition> transitions;
  Status status =
      pg::RunTransaction(*lease, options.idempotence, [&](Connection& c) -> Result<pg::Finish> {
        wrote = false;  // from an attempt that did not commit
        transitions.clear();
        if (options.cap_lock == CapLock::kCluster) HERD_RETURN_IF_ERROR(LockCluster(c));
        HERD_ASSIGN_OR_RETURN(LoadedTask loaded, LoadForUpdate(c, task_id));
        if (!loaded.exists && !options.create) return TaskNotFound(task_id);
        TaskRecord task = loaded.task;
        StatusesBefore before = StatusesOf(task);
        HERD_ASSIGN_OR_RETURN(Decision decision, mutation(task, c));
        if (decision == Decision::kNoChange) return pg::Finish::kRollback;
        RecomputeCounts(task);
        HERD_ASSIGN_OR_RETURN(sequence, WriteTask(c, loaded, task));
        if (options.after_write) HERD_RETURN_IF_ERROR(options.after_write(c));
        transitions = TransitionsBetween(before, task);
        written = std::move(task);
        wrote = true;
        return pg::Finish::kCommit;
      });
  if (!status.ok()) return status;
  if (wrote) {
    if (committed != nullptr) *committed = TaskSnapshot{std::move(written), sequence, false};
    ObserveTransitions(transitions);  // committed: tell of it
  }
  return Status::Ok();
}

Status PgRegistry::Change(const std::string& task_id,
                          const std::function<Status(TaskRecord&)>& change,
                          TaskSnapshot* committed) const {
  return Update(
      task_id, {},
      [&](TaskRecord& task, Connection&) -> Result<Decision> {
        HERD_RETURN_IF_ERROR(change(task));
        return Decision::kCommit;
      },
      committed);
}

Result<SharedTask> PgRegistry::ReadTask(const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  std::optional<pg::Rows> found;
  // One statement: one snapshot of the task and its agents.
  Status status = pg::RunTransaction(
      *lease, pg::Idempotence::kIdempotent, [&](Connection& c) -> Result<pg::Finish> {
        HERD_ASSIGN_OR_RETURN(
            pg::Rows rows,
            c.Exec("SELECT t.sequence, t.document::text, coalesce((SELECT json_agg(a.document "
                   "ORDER BY a.position) FROM herd_agents a WHERE a.task_id = t.task_id)::text, "
                   "'[]') FROM herd_tasks t WHERE t.task_id = $1",
                   {task_id}));
        found = std::move(rows);
        return pg::Finish::kRollback;
      });
  if (!status.ok()) return status;
  if (found->empty()) return TaskNotFound(task_id);
  HERD_ASSIGN_OR_RETURN(json document, ParseStored(found->Text(0, 1), Source(task_id)));
  HERD_ASSIGN_OR_RETURN(document["agents"], ParseStored(found->Text(0, 2), Source(task_id)));
  HERD_ASSIGN_OR_RETURN(TaskRecord task, DecodeTask(document, Source(task_id)));
  RecomputeCounts(task);
  return std::make_shared<const TaskSnapshot>(
      TaskSnapshot{std::move(task), static_cast<uint64_t>(found->Integer(0, 0)), false});
}

Result<TaskSnapshot> PgRegistry::CreateTask(const std::string& task_id,
                                            const TaskSpec& spec) const {
  TaskSnapshot created;
  UpdateOptions options;
  options.create = true;
  HERD_RETURN_IF_ERROR(Update(
      task_id, options,
      [&](TaskRecord& task, Connection&) -> Result<Decision> {
        if (!task.task_id.empty()) return Status::Refused("task id collision; retry");
        task = NewTask(task_id, spec, workspace_base_);
        return Decision::kCommit;
      },
      &created));
  return created;
}

Result<AgentRecord> PgRegistry::Admit(const std::string& task_id, const AdmissionRequest& request,
                                      int global_cap) const {
  // A retry of a commit in doubt must find this request's row again.
  std::string request_id = request.request_id.empty() ? RandomUuid() : request.request_id;
  AgentRecord admitted;
  UpdateOptions options;
  // The cap, the ports and the nodes' capacity are registry-wide: all
  // serialise on the cluster row.
  options.cap_lock = global_cap > 0 || !request.port_candidates.empty() || request.placement
                         ? CapLock::kCluster
                         : CapLock::kNone;
  options.idempotence = pg::Idempotence::kIdempotent;
  // The request id goes on the agent's row in the admission's transaction.
  options.after_write = [&](Connection& c) {
    return c
        .Exec("UPDATE herd_agents SET request_id = $3 WHERE task_id = $1 AND agent_id = $2",
              {task_id, request.agent_id, request_id})
        .status();
  };
  HERD_RETURN_IF_ERROR(
      Update(task_id, options, [&](TaskRecord& task, Connection& c) -> Result<Decision> {
        HERD_ASSIGN_OR_RETURN(
            pg::Rows earlier,
            c.Exec("SELECT task_id, agent_id FROM herd_agents WHERE request_id = $1",
                   {request_id}));
        if (!earlier.empty()) {
          const AgentRecord* agent = task.FindAgent(earlier.Text(0, 1));
          if (earlier.Text(0, 0) != task_id || agent == nullptr) {
            return Status::InvalidArgument("admission request " + request_id +
                                           " was already used for agent " + earlier.Text(0, 1) +
                                           " of task " + earlier.Text(0, 0));
          }
          admitted = *agent;  // applied by an earlier attempt: not again
          return Decision::kNoChange;
        }
        AdmissionRequest admission = request;
        std::optional<NodePlacement> node;
        if (request.placement) {
          HERD_ASSIGN_OR_RETURN(std::vector<NodeView> nodes, pg_rows::ReadNodes(c));
          HERD_ASSIGN_OR_RETURN(const NodeView* chosen, ChoosePlacement(nodes, *request.placement));
          node = NodePlacement{chosen->spec.name, chosen->incarnation};
        }
        if (!request.port_candidates.empty()) {
          HERD_ASSIGN_OR_RETURN(admission.ports_held,
                                PortsHeld(c, task_id, request.agent_id, node ? node->name : ""));
        }
        HERD_ASSIGN_OR_RETURN(admitted, AdmitAgent(task, admission));
        HERD_RETURN_IF_ERROR(CheckClusterCap(c, task_id, request.agent_id, global_cap));
        if (node) admitted.node = task.FindAgent(request.agent_id)->node = node;
        return Decision::kCommit;
      }));
  return admitted;
}

Status PgRegistry::Release(const std::string& task_id, const std::string& agent_id) const {
  return Change(task_id, [&](TaskRecord& task) {
    ReleaseAgent(task, agent_id);
    return Status::Ok();
  });
}

Result<AgentRecord> PgRegistry::RecordStart(const std::string& task_id, const std::string& agent_id,
                                            const ProcessIdentity& agent,
                                            const ProcessIdentity& supervisor) const {
  AgentRecord entry;
  HERD_RETURN_IF_ERROR(Change(task_id, [&](TaskRecord& task) {
    HERD_RETURN_IF_ERROR(registry::RecordStart(task, agent_id, agent, supervisor));
    entry = *task.FindAgent(agent_id);
    return Status::Ok();
  }));
  return entry;
}

Result<EndOutcome> PgRegistry::RecordEnd(const std::string& task_id, const std::string& agent_id,
                                         const ExitRecord& exit,
                                         const std::optional<Termination>& stop,
                                         int kill_grace_ms) const {
  EndOutcome outcome;
  HERD_RETURN_IF_ERROR(Change(task_id, [&](TaskRecord& task) {
    HERD_ASSIGN_OR_RETURN(outcome, ApplyEnd(task, agent_id, exit, stop, kill_grace_ms));
    return Status::Ok();
  }));
  return outcome;
}

Result<TerminationOutcome> PgRegistry::Terminate(const std::string& task_id,
                                                 const std::string& agent_id,
                                                 const Termination& termination) const {
  TerminationOutcome outcome;
  HERD_RETURN_IF_ERROR(Update(task_id, {}, [&](TaskRecord& task, Connection&) -> Result<Decision> {
    HERD_ASSIGN_OR_RETURN(outcome, ApplyTermination(task, agent_id, termination));
    return outcome.changed ? Decision::kCommit : Decision::kNoChange;
  }));
  return outcome;
}

Result<MessageOutcome> PgRegistry::SendMessage(const std::string& task_id,
                                               const std::string& agent_id,
                                               const AgentMessage& message, int global_cap,
                                               const std::vector<int>& port_candidates) const {
  MessageOutcome outcome;
  Status refusal;
  UpdateOptions options;
  // A new turn may reactivate the agent: the cap, its ports and its node's
  // capacity are checked under the cluster row.
  options.cap_lock = CapLock::kCluster;
  HERD_RETURN_IF_ERROR(
      Update(task_id, options, [&](TaskRecord& task, Connection& c) -> Result<Decision> {
        refusal = Status::Ok();
        std::string now = NowIso8601();
        const AgentRecord* agent = task.FindAgent(agent_id);
        std::string node = agent != nullptr && agent->node ? agent->node->name : "";
        std::set<int> ports_held;
        if (!port_candidates.empty()) {
          HERD_ASSIGN_OR_RETURN(ports_held, PortsHeld(c, task_id, agent_id, node));
        }
        HERD_ASSIGN_OR_RETURN(
            outcome, AcceptMessage(task, agent_id, message, now, port_candidates, ports_held));
        if (outcome.delivery == MessageOutcome::Delivery::kNewTurn) {
          refusal = CheckClusterCap(c, task_id, agent_id, global_cap);
          if (refusal.ok() && !node.empty()) {
            refusal = NodeTakesTurn(c, *task.FindAgent(agent_id));
          }
          if (!refusal.Is(Status::Code::kRefused)) HERD_RETURN_IF_ERROR(refusal);
          // Refused by the cap: the turn is undone in the same transaction,
          // the message kept as undelivered with the reason.
          if (!refusal.ok())
            registry::AbandonTurn(task, agent_id, outcome.turn, refusal.message(), now);
        }
        return Decision::kCommit;
      }));
  if (!refusal.ok()) return refusal;
  return outcome;
}

Status PgRegistry::AbandonTurn(const std::string& task_id, const std::string& agent_id, int turn,
                               const std::string& reason) const {
  return Change(task_id, [&](TaskRecord& task) {
    registry::AbandonTurn(task, agent_id, turn, reason, NowIso8601());
    return Status::Ok();
  });
}

Result<StopOutcome> PgRegistry::StopTask(const std::string& task_id, const std::string& reason,
                                         int kill_grace_ms) const {
  StopOutcome outcome;
  HERD_RETURN_IF_ERROR(Update(task_id, {}, [&](TaskRecord& task, Connection&) -> Result<Decision> {
    outcome = StopOutcome{};
    outcome.already_stopped = task.stopped.has_value();
    for (const AgentRecord& agent : task.agents) {
      if (!IsActiveStatus(agent.status) && !agent.exit && agent.phase != "lost") {
        outcome.unfinished.push_back(agent);
      }
    }
    outcome.marked = registry::StopTask(task, reason, kill_grace_ms, NowIso8601());
    outcome.stop = *task.stopped;
    bool changed = !outcome.already_stopped || !outcome.marked.empty();
    return changed ? Decision::kCommit : Decision::kNoChange;
  }));
  return outcome;
}

Result<EndOutcome> PgRegistry::RecordUsage(const std::string& task_id, const std::string& agent_id,
                                           const json& usage, int kill_grace_ms) const {
  EndOutcome outcome;
  HERD_RETURN_IF_ERROR(Change(task_id, [&](TaskRecord& task) {
    HERD_RETURN_IF_ERROR(registry::RecordUsage(task, agent_id, usage));
    outcome.to_stop = StopIfOverBudget(task, kill_grace_ms, NowIso8601());
    return Status::Ok();
  }));
  return outcome;
}

Result<ReportOutcome> PgRegistry::CommitReport(
    const std::string& task_id, const std::string& agent_id, Journal journal,
    const std::function<Result<json>(TaskRecord&)>& apply) const {
  ReportOutcome report;
  const char* journal_name = journal == Journal::kProgress ? "progress" : "findings";
  HERD_RETURN_IF_ERROR(Update(
      task_id, {},
      [&](TaskRecord& task, Connection& c) -> Result<Decision> {
        const AgentRecord* before = task.FindAgent(agent_id);
        std::string previous = before ? before->status : "";
        HERD_ASSIGN_OR_RETURN(json line, apply(task));
        // Numbered under the task's row lock: journal order is commit order.
        HERD_RETURN_IF_ERROR(
            c.Exec("INSERT INTO herd_journal (task_id, agent_id, journal, line_number, line) "
                   "SELECT $1, $2, $3, coalesce(max(line_number), 0) + 1, $4::jsonb "
                   "FROM herd_journal WHERE task_id = $1 AND agent_id = $2 AND journal = $3",
                   {task_id, agent_id, std::string(journal_name),
                    line.dump(-1, ' ', false, json::error_handler_t::replace)})
                .status());
        report.status_changed = previous != task.FindAgent(agent_id)->status;
        report.line = std::move(line);
        return Decision::kCommit;
      },
      &report.task_after));
  return report;
}

Result<ReportOutcome> PgRegistry::ReportProgress(const std::string& task_id,
                                                 const std::string& agent_id,
                                                 const std::string& status,
                                                 const std::string& message, int progress) const {
  std::string timestamp = NowIso8601();
  return CommitReport(task_id, agent_id, Journal::kProgress, [&](TaskRecord& task) -> Result<json> {
    HERD_ASSIGN_OR_RETURN(ProgressUpdate update,
                          ApplyProgress(task, agent_id, status, message, progress, timestamp));
    return EncodeProgressUpdate(update);
  });
}

Result<ReportOutcome> PgRegistry::ReportFinding(const std::string& task_id,
                                                const std::string& agent_id,
                                                const FindingReport& finding) const {
  std::string timestamp = NowIso8601();
  return CommitReport(task_id, agent_id, Journal::kFindings, [&](TaskRecord& task) -> Result<json> {
    HERD_ASSIGN_OR_RETURN(Finding line, ApplyFinding(task, agent_id, finding, timestamp));
    return EncodeFinding(line);
  });
}

Result<TaskSnapshot> PgRegistry::ChangeLimits(const std::string& task_id,
                                              const LimitsChange& change) const {
  TaskSnapshot after;
  HERD_RETURN_IF_ERROR(Change(
      task_id,
      [&](TaskRecord& task) {
        return UpdateLimits(task, change.max_agents, change.max_concurrent, change.max_depth,
                            change.budget);
      },
      &after));
  return after;
}

Status PgRegistry::RecordTmuxSession(const std::string& task_id, const std::string& agent_id,
                                     const std::string& session) const {
  return Update(task_id, {}, [&](TaskRecord& task, Connection&) -> Result<Decision> {
    AgentRecord* entry = task.FindAgent(agent_id);
    if (entry == nullptr) return Decision::kNoChange;
    entry->tmux_session = session;
    return Decision::kCommit;
  });
}

Status PgRegistry::RecordWorktree(const std::string& task_id, const std::string& agent_id,
                                  const WorktreeRecord& worktree) const {
  return Update(task_id, {}, [&](TaskRecord& task, Connection&) -> Result<Decision> {
    HERD_RETURN_IF_ERROR(registry::RecordWorktree(task, agent_id, worktree));
    return Decision::kCommit;
  });
}

Result<Registry::LostOutcome> PgRegistry::MarkLost(const std::string& task_id,
                                                   const std::string& agent_id,
                                                   const LostCheck& still_lost) const {
  LostOutcome outcome;
  HERD_RETURN_IF_ERROR(Update(task_id, {}, [&](TaskRecord& task, Connection&) -> Result<Decision> {
    outcome = LostOutcome{};
    AgentRecord* agent = task.FindAgent(agent_id);
    if (agent == nullptr) {
      outcome.left_alone = "agent " + agent_id + " is no longer in the registry";
      return Decision::kNoChange;
    }
    std::optional<std::string> detail = still_lost(*agent);
    if (!detail) {
      outcome.left_alone =
          "agent " + agent_id + " is " + agent->status + " and no longer lost (recorded meanwhile)";
      return Decision::kNoChange;
    }
    MarkAgentLost(*agent, *detail, NowIso8601());
    outcome.marked = *agent;
    return Decision::kCommit;
  }));
  return outcome;
}

Result<std::vector<json>> PgRegistry::ReadJournal(const std::string& task_id,
                                                  const std::string& agent_id,
                                                  Journal journal) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      (*lease).Exec("SELECT line::text FROM herd_journal WHERE task_id = $1 AND agent_id = $2 AND "
                    "journal = $3 ORDER BY line_number",
                    {task_id, agent_id,
                     std::string(journal == Journal::kProgress ? "progress" : "findings")}));
  std::vector<json> lines;
  for (int row = 0; row < rows.size(); ++row) {
    HERD_ASSIGN_OR_RETURN(json line, ParseStored(rows.Text(row, 0), Source(task_id)));
    lines.push_back(std::move(line));
  }
  return lines;
}

Result<JournalSlice> PgRegistry::ReadJournal(const std::string& task_id, const AgentRecord& agent,
                                             Journal journal, size_t keep) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  std::string name = journal == Journal::kProgress ? "progress" : "findings";
  std::string limit = keep == kWholeJournal ? "ALL" : std::to_string(keep);
  JournalSlice slice;
  // One statement: the count and the lines of one snapshot.
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      (*lease).Exec("WITH lines AS (SELECT line_number, line FROM herd_journal WHERE task_id = $1 "
                    "AND agent_id = $2 AND journal = $3) SELECT (SELECT count(*) FROM lines), "
                    "newest.line::text FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT line, "
                    "line_number FROM lines ORDER BY line_number DESC LIMIT " +
                        limit + ") newest ON true ORDER BY newest.line_number",
                    {task_id, agent.id, name}));
  for (int row = 0; row < rows.size(); ++row) {
    slice.total = static_cast<size_t>(rows.Integer(row, 0));
    if (rows.IsNull(row, 1)) continue;
    // Compact, as the JSON engine stores lines (jsonb's text has spaces).
    HERD_ASSIGN_OR_RETURN(json line, ParseStored(rows.Text(row, 1), Source(task_id)));
    slice.newest.push_back(line.dump());
  }
  return slice;
}

namespace {

// Woken by the notifications of one task's commits (of every task's, for
// an empty task id) and, if given, by those of one agent's output.
class NotifiedCommitWatch : public CommitWatch {
 public:
  NotifiedCommitWatch(std::unique_ptr<pg::Listener> listener, const std::string& task_id,
                      std::string output_payload = "")
      : listener_(std::move(listener)),
        commit_prefix_(task_id.empty() ? "" : task_id + " "),
        output_payload_(std::move(output_payload)) {}
  Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop) override {
    return listener_->WaitUntil(deadline, stop, [&](const pg::Connection::Notification& wake) {
      if (wake.channel == PgRegistry::kOutputChannel) return wake.payload == output_payload_;
      return wake.payload.compare(0, commit_prefix_.size(), commit_prefix_) == 0;
    });
  }

 private:
  std::unique_ptr<pg::Listener> listener_;
  std::string commit_prefix_;   // "<task id> "
  std::string output_payload_;  // "<task id> <agent id>"
};

}  // namespace

Result<std::unique_ptr<CommitWatch>> PgRegistry::WatchEveryCommit() const {
  return WatchCommits("");
}

Result<std::unique_ptr<CommitWatch>> PgRegistry::WatchCommits(const std::string& task_id) const {
  pg::ConnectOptions options = options_;
  options.application_name = "herd listener";
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<pg::Listener> listener,
                        pg::Listener::Open(options, {kCommitChannel}));
  return std::unique_ptr<CommitWatch>(new NotifiedCommitWatch(std::move(listener), task_id));
}

Result<std::unique_ptr<CommitWatch>> PgRegistry::WatchCommitsAndOutput(
    const std::string& task_id, const std::string& output_task_id,
    const std::string& output_agent_id) const {
  pg::ConnectOptions options = options_;
  options.application_name = "herd output listener";
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<pg::Listener> listener,
                        pg::Listener::Open(options, {kCommitChannel, kOutputChannel}));
  return std::unique_ptr<CommitWatch>(new NotifiedCommitWatch(
      std::move(listener), task_id, output_task_id + " " + output_agent_id));
}

namespace {

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

std::string Unhex(const std::string& hex) {
  auto value = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(value(hex[i]) << 4 | value(hex[i + 1])));
  }
  return bytes;
}

}  // namespace

Status PgRegistry::AppendOutput(const std::string& task_id, const std::string& agent_id,
                                const std::string& output) const {
  if (output.empty()) return Status::Ok();
  // The newest part only: an older part would be dropped at once.
  std::string kept =
      output.size() > kOutputTailBytes ? output.substr(output.size() - kOutputTailBytes) : output;
  long long lines = std::count(kept.begin(), kept.end(), '\n');
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  // Only its supervisor appends an agent's output: no two appends race.
  return pg::RunTransaction(
      *lease, pg::Idempotence::kNotIdempotent, [&](Connection& c) -> Result<pg::Finish> {
        HERD_RETURN_IF_ERROR(
            c.Exec("INSERT INTO herd_output (task_id, agent_id, chunk_number, bytes, line_count) "
                   "SELECT $1, $2, coalesce(max(chunk_number), 0) + 1, decode($3, 'hex'), $4 "
                   "FROM herd_output WHERE task_id = $1 AND agent_id = $2",
                   {task_id, agent_id, Hex(kept), std::to_string(lines)})
                .status());
        HERD_RETURN_IF_ERROR(
            c.Exec("DELETE FROM herd_output o USING (SELECT chunk_number, sum(length(bytes)) "
                   "OVER newest_first AS bytes_from, sum(line_count) OVER newest_first AS "
                   "lines_from FROM herd_output WHERE task_id = $1 AND agent_id = $2 WINDOW "
                   "newest_first AS (ORDER BY chunk_number DESC)) k WHERE o.task_id = $1 AND "
                   "o.agent_id = $2 AND o.chunk_number = k.chunk_number AND k.chunk_number < "
                   "(SELECT max(chunk_number) FROM herd_output WHERE task_id = $1 AND agent_id = "
                   "$2) AND (k.bytes_from > $3 OR k.lines_from > $4)",
                   {task_id, agent_id, std::to_string(kOutputTailBytes),
                    std::to_string(kOutputTailLines)})
                .status());
        HERD_RETURN_IF_ERROR(
            c.Exec(std::string("SELECT pg_notify('") + kOutputChannel + "', $1 || ' ' || $2)",
                   {task_id, agent_id})
                .status());
        return pg::Finish::kCommit;
      });
}

Result<std::string> PgRegistry::ReadOutputTail(const std::string& task_id,
                                               const std::string& agent_id) const {
  HERD_ASSIGN_OR_RETURN(OutputAfter kept, ReadOutputAfter(task_id, agent_id, 0));
  if (kept.last_chunk == 0) {
    return Status::NotFound("the registry holds no output of agent " + agent_id + " of task " +
                            task_id + " (it printed nothing yet)");
  }
  return std::move(kept.bytes);
}

Result<PgRegistry::OutputAfter> PgRegistry::ReadOutputAfter(const std::string& task_id,
                                                            const std::string& agent_id,
                                                            int64_t after) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  // One statement, so one snapshot: the chunks and the oldest kept agree.
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      (*lease).Exec("SELECT chunk_number, encode(bytes, 'hex'), (SELECT min(chunk_number) FROM "
                    "herd_output WHERE task_id = $1 AND agent_id = $2) FROM herd_output WHERE "
                    "task_id = $1 AND agent_id = $2 AND chunk_number > $3 ORDER BY chunk_number",
                    {task_id, agent_id, std::to_string(after)}));
  OutputAfter read;
  read.last_chunk = after;
  for (int row = 0; row < rows.size(); ++row) {
    if (row == 0) read.dropped = after > 0 && std::stoll(rows.Text(row, 2)) > after + 1;
    read.last_chunk = std::stoll(rows.Text(row, 0));
    read.bytes += Unhex(rows.Text(row, 1));
  }
  return read;
}

Result<std::vector<std::string>> PgRegistry::TaskIds() const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows, (*lease).Exec("SELECT task_id FROM herd_tasks ORDER BY created_at, task_id"));
  std::vector<std::string> ids;
  for (int row = 0; row < rows.size(); ++row) ids.push_back(rows.Text(row, 0));
  return ids;
}

}  // namespace herd::registry
