#include "registry/json_registry.h"

#include <spdlog/spdlog.h>

#include "registry/global_index.h"
#include "util/clock.h"
#include "util/text_file.h"

namespace herd::registry {

using store::Decision;

Result<SharedTask> JsonRegistry::ReadTask(const std::string& task_id) const {
  return ReadTaskRecord(stores_.tasks, workspace_.TaskRegistryPath(task_id));
}

Status JsonRegistry::Change(const std::string& task_id,
                            const std::function<Status(TaskRecord&)>& change,
                            TaskSnapshot* committed) const {
  return UpdateTaskAndIndex(
      stores_, workspace_, task_id,
      [&](TaskRecord& task) -> Result<Decision> {
        HERD_RETURN_IF_ERROR(change(task));
        return Decision::kCommit;
      },
      committed);
}

Result<TaskSnapshot> JsonRegistry::CreateTask(const std::string& task_id,
                                              const TaskSpec& spec) const {
  TaskSnapshot created;
  Status status = UpdateTaskAndIndex(
      stores_, workspace_, task_id,
      [&](TaskRecord& task) -> Result<Decision> {
        if (!task.task_id.empty()) return Status::Refused("task id collision; retry");
        task = NewTask(task_id, spec, workspace_.base());
        return Decision::kCommit;
      },
      &created);
  // Not durable: committed, the task exists.
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  return created;
}

Result<AgentRecord> JsonRegistry::Admit(const std::string& task_id, const AdmissionRequest& request,
                                        int global_cap) const {
  if (request.placement) {
    return Status::InvalidArgument(
        "placing an agent on a node needs a registry the nodes share: set HERD_REGISTRY to a "
        "PostgreSQL server (see the README's scale-out section), or leave the node out");
  }
  // The cap and the ports are machine-wide: the reservation's lock is held
  // from before the task's transaction until the index holds the agent.
  HERD_ASSIGN_OR_RETURN(MachineReservation machine, MachineReservation::Begin(stores_, workspace_));
  AdmissionRequest admission = request;
  admission.ports_held = machine.PortsHeld(request.agent_id);
  AgentRecord admitted;
  TaskSnapshot after;
  HERD_RETURN_IF_ERROR(UpdateTaskRecord(
      stores_.tasks, workspace_.TaskRegistryPath(task_id),
      [&](TaskRecord& task) -> Result<Decision> {
        HERD_ASSIGN_OR_RETURN(admitted, AdmitAgent(task, admission));
        return Decision::kCommit;
      },
      &after));
  Status slot = machine.Commit(after, request.agent_id, global_cap);
  if (!slot.ok()) {
    Status released = Release(task_id, request.agent_id);
    if (!released.ok()) {
      spdlog::error("could not release {}: {}", request.agent_id, released.ToString());
    }
    return slot;
  }
  return admitted;
}

Status JsonRegistry::Release(const std::string& task_id, const std::string& agent_id) const {
  // The index follows the committed version (UpdateTaskAndIndex): the agent
  // leaves it, and an older version of the task cannot bring it back.
  return UpdateTaskAndIndex(stores_, workspace_, task_id,
                            [&](TaskRecord& task) -> Result<Decision> {
                              ReleaseAgent(task, agent_id);
                              return Decision::kCommit;
                            });
}

Result<AgentRecord> JsonRegistry::RecordStart(const std::string& task_id,
                                              const std::string& agent_id,
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

Result<EndOutcome> JsonRegistry::RecordEnd(const std::string& task_id, const std::string& agent_id,
                                           const ExitRecord& exit,
                                           const std::optional<Termination>& stop,
                                           int kill_grace_ms) const {
  EndOutcome outcome;
  Status status = Change(task_id, [&](TaskRecord& task) {
    HERD_ASSIGN_OR_RETURN(outcome, ApplyEnd(task, agent_id, exit, stop, kill_grace_ms));
    return Status::Ok();
  });
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  return outcome;
}

Result<TerminationOutcome> JsonRegistry::Terminate(const std::string& task_id,
                                                   const std::string& agent_id,
                                                   const Termination& termination) const {
  TerminationOutcome outcome;
  Status status =
      UpdateTaskAndIndex(stores_, workspace_, task_id, [&](TaskRecord& task) -> Result<Decision> {
        HERD_ASSIGN_OR_RETURN(outcome, ApplyTermination(task, agent_id, termination));
        return outcome.changed ? Decision::kCommit : Decision::kNoChange;
      });
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  if (!status.ok()) outcome.warning = status.message();
  return outcome;
}

Result<MessageOutcome> JsonRegistry::SendMessage(const std::string& task_id,
                                                 const std::string& agent_id,
                                                 const AgentMessage& message, int global_cap,
                                                 const std::vector<int>& port_candidates) const {
  // A new turn makes the agent active again: its slot and its port are
  // reserved as at admission, under the machine's reservation lock.
  HERD_ASSIGN_OR_RETURN(MachineReservation machine, MachineReservation::Begin(stores_, workspace_));
  std::set<int> ports_held = machine.PortsHeld(agent_id);
  MessageOutcome outcome;
  TaskSnapshot after;
  Status status = UpdateTaskRecord(
      stores_.tasks, workspace_.TaskRegistryPath(task_id),
      [&](TaskRecord& task) -> Result<Decision> {
        if (task.task_id.empty()) {
          return Status::NotFound("task " + task_id +
                                  " does not exist: run `herd task list` to see the tasks");
        }
        HERD_ASSIGN_OR_RETURN(outcome, AcceptMessage(task, agent_id, message, NowIso8601(),
                                                     port_candidates, ports_held));
        return Decision::kCommit;
      },
      &after);
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  if (!status.ok()) outcome.warning = status.message();
  if (outcome.delivery != MessageOutcome::Delivery::kNewTurn) {
    Status indexed = UpsertTask(stores_, workspace_, after);
    if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  } else {
    Status slot = machine.Commit(after, agent_id, global_cap);
    if (!slot.ok()) {
      Status undone = AbandonTurn(task_id, agent_id, outcome.turn, slot.message());
      if (!undone.ok())
        spdlog::error("could not undo turn {}: {}", outcome.turn, undone.ToString());
      return slot;
    }
  }
  return outcome;
}

Status JsonRegistry::AbandonTurn(const std::string& task_id, const std::string& agent_id, int turn,
                                 const std::string& reason) const {
  return Change(task_id, [&](TaskRecord& task) {
    registry::AbandonTurn(task, agent_id, turn, reason, NowIso8601());
    return Status::Ok();
  });
}

Result<StopOutcome> JsonRegistry::StopTask(const std::string& task_id, const std::string& reason,
                                           int kill_grace_ms) const {
  StopOutcome outcome;
  // The index follows: it holds the agents' statuses.
  Status status =
      UpdateTaskAndIndex(stores_, workspace_, task_id, [&](TaskRecord& task) -> Result<Decision> {
        if (task.task_id.empty()) {
          return Status::NotFound("task " + task_id +
                                  " does not exist: run `herd task list` to see the tasks");
        }
        outcome = StopOutcome{};
        outcome.already_stopped = task.stopped.has_value();
        // Ended before, exit not recorded yet: their processes may still run.
        for (const AgentRecord& agent : task.agents) {
          if (!IsActiveStatus(agent.status) && !agent.exit && agent.phase != "lost") {
            outcome.unfinished.push_back(agent);
          }
        }
        outcome.marked = registry::StopTask(task, reason, kill_grace_ms, NowIso8601());
        outcome.stop = *task.stopped;
        bool changed = !outcome.already_stopped || !outcome.marked.empty();
        return changed ? Decision::kCommit : Decision::kNoChange;
      });
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  if (!status.ok()) outcome.warning = status.message();
  return outcome;
}

Result<EndOutcome> JsonRegistry::RecordUsage(const std::string& task_id,
                                             const std::string& agent_id, const json& usage,
                                             int kill_grace_ms) const {
  EndOutcome outcome;
  Status status = Change(task_id, [&](TaskRecord& task) {
    HERD_RETURN_IF_ERROR(registry::RecordUsage(task, agent_id, usage));
    outcome.to_stop = StopIfOverBudget(task, kill_grace_ms, NowIso8601());
    return Status::Ok();
  });
  if (!status.ok() && !status.Is(Status::Code::kNotDurable)) return status;
  return outcome;
}

// One transaction for a report and its journal line: `apply` changes the
// task (or refuses) and returns the line; the line is appended to the
// agent's journal under the task's lock and the journal's new length is
// recorded with the change (task_registry.h, Journal). So journal order is
// commit order, a report killed half-way leaves nothing that counts, and a
// caller told of an error has nothing recorded: it may retry without the
// report being applied twice. A commit that failed after the append has the
// line cut off again, under the lock, at once (a reader never counts it:
// it stops at the recorded length).
Result<ReportOutcome> JsonRegistry::CommitReport(const std::string& task_id,
                                                 const std::string& agent_id, Journal journal,
                                                 const ReportChange& apply) const {
  std::string registry_path = workspace_.TaskRegistryPath(task_id);
  std::string journal_path = journal == Journal::kProgress
                                 ? workspace_.ProgressPath(task_id, agent_id)
                                 : workspace_.FindingsPath(task_id, agent_id);
  ReportOutcome report;
  bool appended = false;
  store::TransactionStats stats;
  Status status = UpdateTaskRecord(
      stores_.tasks, registry_path,
      [&](TaskRecord& task) -> Result<Decision> {
        const AgentRecord* before = task.FindAgent(agent_id);
        std::string previous = before ? before->status : "";
        HERD_ASSIGN_OR_RETURN(json line, apply(task));
        AgentRecord* entry = task.FindAgent(agent_id);
        Result<uint64_t> length =
            AppendJournalLine(journal_path, CommittedJournalBytes(*entry, journal),
                              line.dump(-1, ' ', false, json::error_handler_t::replace));
        if (!length.ok()) {
          return length.status().WithContext("the report was not recorded; nothing changed");
        }
        appended = true;
        RecordJournalBytes(*entry, journal, *length);
        report.line = std::move(line);
        report.status_changed = previous != entry->status;
        return Decision::kCommit;
      },
      &report.task_after, &stats);
  if (status.Is(Status::Code::kNotDurable)) {
    // Renamed into place: recorded, and readers see it. Saying "failed"
    // would invite a retry that records it twice.
    report.warning = status.message();
    spdlog::warn("{}", status.message());
  } else if (!status.ok()) {
    if (appended && !stats.committed) {
      Status cut =
          UpdateTaskRecord(stores_.tasks, registry_path, [&](TaskRecord& task) -> Result<Decision> {
            const AgentRecord* entry = task.FindAgent(agent_id);
            if (entry == nullptr) return Decision::kNoChange;
            std::optional<uint64_t> committed = CommittedJournalBytes(*entry, journal);
            if (committed) HERD_RETURN_IF_ERROR(CutJournal(journal_path, *committed));
            return Decision::kNoChange;
          });
      if (!cut.ok()) {
        spdlog::warn("an uncommitted line stays in {} until the agent's next report: {}",
                     journal_path, cut.ToString());
      }
    }
    return status;
  }
  // The index holds statuses, not progress: only a status change touches it.
  if (report.status_changed) {
    Status indexed = UpsertTask(stores_, workspace_, report.task_after);
    if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  }
  return report;
}

Result<ReportOutcome> JsonRegistry::ReportProgress(const std::string& task_id,
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

Result<ReportOutcome> JsonRegistry::ReportFinding(const std::string& task_id,
                                                  const std::string& agent_id,
                                                  const FindingReport& finding) const {
  std::string timestamp = NowIso8601();
  return CommitReport(task_id, agent_id, Journal::kFindings, [&](TaskRecord& task) -> Result<json> {
    HERD_ASSIGN_OR_RETURN(Finding line, ApplyFinding(task, agent_id, finding, timestamp));
    return EncodeFinding(line);
  });
}

Result<TaskSnapshot> JsonRegistry::ChangeLimits(const std::string& task_id,
                                                const LimitsChange& change) const {
  TaskSnapshot after;
  HERD_RETURN_IF_ERROR(UpdateTaskRecord(
      stores_.tasks, workspace_.TaskRegistryPath(task_id),
      [&](TaskRecord& task) -> Result<Decision> {
        HERD_RETURN_IF_ERROR(UpdateLimits(task, change.max_agents, change.max_concurrent,
                                          change.max_depth, change.budget));
        return Decision::kCommit;
      },
      &after));
  return after;
}

Status JsonRegistry::RecordTmuxSession(const std::string& task_id, const std::string& agent_id,
                                       const std::string& session) const {
  return UpdateTaskRecord(stores_.tasks, workspace_.TaskRegistryPath(task_id),
                          [&](TaskRecord& task) -> Result<Decision> {
                            AgentRecord* entry = task.FindAgent(agent_id);
                            if (entry == nullptr) return Decision::kNoChange;
                            entry->tmux_session = session;
                            return Decision::kCommit;
                          });
}

Status JsonRegistry::RecordWorktree(const std::string& task_id, const std::string& agent_id,
                                    const WorktreeRecord& worktree) const {
  return UpdateTaskRecord(
      stores_.tasks, workspace_.TaskRegistryPath(task_id),
      [&](TaskRecord& task) -> Result<Decision> {
        HERD_RETURN_IF_ERROR(registry::RecordWorktree(task, agent_id, worktree));
        return Decision::kCommit;
      });
}

Result<Registry::LostOutcome> JsonRegistry::MarkLost(const std::string& task_id,
                                                     const std::string& agent_id,
                                                     const LostCheck& still_lost) const {
  LostOutcome outcome;
  // The index gets the committed version, with its sequence number.
  Status status =
      UpdateTaskAndIndex(stores_, workspace_, task_id, [&](TaskRecord& task) -> Result<Decision> {
        AgentRecord* agent = task.FindAgent(agent_id);
        if (agent == nullptr) {
          outcome.left_alone = "agent " + agent_id + " is no longer in the registry";
          return Decision::kNoChange;
        }
        std::optional<std::string> detail = still_lost(*agent);
        if (!detail) {
          outcome.left_alone = "agent " + agent_id + " is " + agent->status +
                               " and no longer lost (recorded meanwhile)";
          return Decision::kNoChange;
        }
        MarkAgentLost(*agent, *detail, NowIso8601());
        outcome.marked = *agent;
        return Decision::kCommit;
      });
  if (!status.ok()) return status;
  return outcome;
}

Result<std::optional<TaskSnapshot>> JsonRegistry::RepairCounts(const std::string& task_id) const {
  TaskSnapshot committed;
  HERD_ASSIGN_OR_RETURN(
      bool rewritten,
      RewriteDerivedCounts(stores_.tasks, workspace_.TaskRegistryPath(task_id), &committed));
  if (!rewritten) return std::optional<TaskSnapshot>();
  Status indexed = UpsertTask(stores_, workspace_, committed);
  if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  return std::optional<TaskSnapshot>(std::move(committed));
}

Status JsonRegistry::RebuildIndex() const {
  return RebuildGlobalIndex(stores_, workspace_);
}

Result<JournalSlice> JsonRegistry::ReadJournal(const std::string& task_id, const AgentRecord& agent,
                                               Journal journal, size_t keep) const {
  std::string path = journal == Journal::kProgress ? workspace_.ProgressPath(task_id, agent.id)
                                                   : workspace_.FindingsPath(task_id, agent.id);
  std::optional<uint64_t> committed = CommittedJournalBytes(agent, journal);
  if (keep <= JournalReader::kMaxKeep) return stores_.journals.Read(path, keep, committed);
  JournalSlice slice;
  Result<std::vector<std::string>> lines = ReadAllLines(path);
  if (!lines.ok()) return slice;  // none yet: an agent that never reported
  uint64_t offset = 0;
  for (std::string& line : *lines) {
    offset += line.size() + 1;
    // Past the recorded length: a transaction that never committed.
    if (committed && offset > *committed) break;
    ++slice.total;
    if (!line.empty()) slice.newest.push_back(std::move(line));
  }
  if (slice.newest.size() > keep) {
    slice.newest.erase(slice.newest.begin(), slice.newest.end() - static_cast<long>(keep));
  }
  return slice;
}

Result<std::vector<std::string>> JsonRegistry::TaskIds() const {
  return workspace_.TaskIds();
}

namespace {

// The JSON engine's commits rename a new AGENT_REGISTRY.json into the task
// directory (store/json_store.h): its inotify watch sees each.
class DirectoryCommitWatch : public CommitWatch {
 public:
  explicit DirectoryCommitWatch(DirectoryWatch watch) : watch_(std::move(watch)) {}
  Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop) override {
    return watch_.WaitUntil(deadline, stop);
  }

 private:
  DirectoryWatch watch_;
};

}  // namespace

Result<std::unique_ptr<CommitWatch>> JsonRegistry::WatchCommits(const std::string& task_id) const {
  HERD_ASSIGN_OR_RETURN(DirectoryWatch watch, DirectoryWatch::Open());
  HERD_RETURN_IF_ERROR(watch.Add(workspace_.TaskDirectory(task_id), WatchFor::kReplacedFiles));
  return std::unique_ptr<CommitWatch>(new DirectoryCommitWatch(std::move(watch)));
}

Result<std::optional<TaskSnapshot>> RepairJsonCounts(const RegistryStores& stores,
                                                     const Workspace& workspace,
                                                     const std::string& task_id) {
  return JsonRegistry(stores, workspace).RepairCounts(task_id);
}

}  // namespace herd::registry
