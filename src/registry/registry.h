// Registry: every transaction herd performs on its registry, by name.
//
// This is the one interface through which the layers above change the
// registry. Each operation is one transaction of the storage engine (for
// the JSON workspace, one store transaction on the task's
// AGENT_REGISTRY.json, followed by its own upsert into the global index:
// registry/json_registry.h). The guarantees every engine gives, stated and
// checked by the conformance suite (registry/registry_conformance_test.cc):
//
// - No lost update: concurrent operations from any number of threads and
//   processes are serialised per task; every committed change is visible to
//   every later read.
// - Admission cannot be raced: Admit checks max_concurrent, max_agents,
//   max_depth, the parent's existence and liveness, the budgets and the
//   machine-wide running cap and reserves the slot in the same transaction;
//   N concurrent admissions against a limit of K admit exactly K.
// - A stopped task stays stopped: StopTask marks every active agent in one
//   transaction and every later admission is refused.
// - Terminal states stay terminal: an agent that is completed, error,
//   terminated or failed never becomes active again, and its final status is
//   kept by every later operation (a late exit record keeps "terminated"),
//   except by a new turn (SendMessage, or RecordEnd running a queued
//   message), which keeps the ended turn's final status in `turns`.
// - A follow-up message is never lost silently: it begins a turn, waits in
//   the queue, or is kept in undelivered_messages with the reason.
// - Counts are derived: total_spawned, active_count, completed_count, the
//   usage totals and the task status always equal what the agent list says.
// - The sequence never goes backwards: every commit's sequence is greater
//   than every earlier one's for that task.
// - A refused or failed operation changes nothing. Errors are Status values:
//   NotFound (no such task or agent), Refused (a limit or rule, saying which
//   and what to do), InvalidArgument, Corruption (a damaged registry, naming
//   the file, entry and field), IOError/Timeout (cannot write now:
//   store::IsUnwritable), NotDurable (committed and visible, but may not
//   survive a power loss: the operation's result is still filled in).
//
// Besides the transactions, the reads the surfaces need instead of files:
// an agent's journals (ReadJournal), every task's id (TaskIds), a wait
// for a task's next commit (WatchCommits: the JSON engine's inotify watch
// on the task directory, PostgreSQL's LISTEN/NOTIFY), and the tail of an
// agent's output, readable from any machine (AppendOutput/ReadOutputTail).
//
// Thread-safe: one instance may be used from many threads at once (a
// CommitWatch is one waiting thread's).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "registry/records.h"
#include "registry/task_registry.h"
#include "registry/task_store.h"
#include "registry/turns.h"
#include "util/clock.h"
#include "util/directory_watch.h"
#include "util/journal_reader.h"
#include "util/status.h"
#include "util/stop_signal.h"

namespace herd::registry {

// What a report (progress or finding) committed.
struct ReportOutcome {
  json line;                // the journal line, as appended
  TaskSnapshot task_after;  // the task as committed
  bool status_changed = false;
  std::string warning;  // set when the commit is visible but not durable
};

// A termination to record: why, and which limit if one stopped the agent.
struct Termination {
  std::string reason;
  std::optional<LimitHit> limit;
  std::optional<int> kill_grace_ms;  // the grace its supervisor is to apply
  // An interrupt for a follow-up message: the agent's queue is kept, and
  // its first message begins the next turn (registry/turns.h).
  bool interrupts_turn = false;
};

struct TerminationOutcome {
  bool changed = false;  // false: the agent had already ended
  AgentRecord agent;     // the entry after the operation
  std::string warning;   // set when the commit is visible but not durable
};

// What recording an agent's end committed.
struct EndOutcome {
  // Agents an exceeded budget now stops (marked terminated): the caller asks
  // their supervisors to stop them, outside the transaction.
  std::vector<AgentRecord> to_stop;
  // The turn a queued message began in the same transaction: the caller
  // (the agent's supervisor) runs it.
  std::optional<NextTurn> next_turn;
};

// What stopping a task committed. The caller stops the processes of
// `marked` and `unfinished`, outside the transaction.
struct StopOutcome {
  TaskStop stop;                    // as recorded: a second stop keeps the first's
  bool already_stopped = false;     // the task had been stopped before
  std::vector<AgentRecord> marked;  // the agents this stop marked terminated
  // Agents that had ended before (a kill, an earlier stop, their own
  // report) but whose exit is not recorded yet: they may still run.
  std::vector<AgentRecord> unfinished;
  std::string warning;  // set when the commit is visible but not durable
};

// New values for a task's limits; unset ones stay as they are.
struct LimitsChange {
  std::optional<int> max_agents;
  std::optional<int> max_concurrent;
  std::optional<int> max_depth;
  Budget budget;  // only what is given
};

// The bodies of RecordEnd and Terminate, which every engine runs inside its
// own transaction: one set of rules, whatever the storage.
//   ApplyEnd: `stop`, if given and the agent is still active, as its
//   termination; then its exit; then any budget its figures passed (the
//   agents that stops get `kill_grace_ms`); then its next turn if a message
//   is queued.
Result<EndOutcome> ApplyEnd(TaskRecord& task, const std::string& agent_id, const ExitRecord& exit,
                            const std::optional<Termination>& stop, int kill_grace_ms);
//   ApplyTermination: marks the agent terminated if it is still active
//   (`changed`), with the grace its supervisor is to apply.
Result<TerminationOutcome> ApplyTermination(TaskRecord& task, const std::string& agent_id,
                                            const Termination& termination);

// A wait for a task's commits, for one thread. The caller opens it, then
// reads the task (the catch-up), then blocks in WaitUntil: a commit after
// the watch opened wakes the next WaitUntil at once, so none is missed. A
// wake says only that the task may have changed; the caller reads again.
class CommitWatch {
 public:
  virtual ~CommitWatch() = default;
  // kChanged once the task committed (or may have), kStopped once `stop`
  // (if given) is stopped, kDeadline at `deadline`
  // (MonotonicClock::time_point::max(): none). Never wakes on a timer.
  virtual Result<Wake> WaitUntil(MonotonicClock::time_point deadline, const StopSignal* stop) = 0;
};

class Registry {
 public:
  virtual ~Registry() = default;

  // ReadJournal's `keep` for every line.
  static constexpr size_t kWholeJournal = SIZE_MAX;

  // The latest committed version of the task, shared with every reader
  // of that version; never writes.
  virtual Result<SharedTask> ReadTask(const std::string& task_id) const = 0;

  // Creates task `task_id` (Refused if the id exists) and indexes it.
  virtual Result<TaskSnapshot> CreateTask(const std::string& task_id,
                                          const TaskSpec& spec) const = 0;

  // Admits an agent (task_registry.h AdmitAgent) and reserves its slot under
  // the machine-wide running cap (`global_cap`, 0 = none) and its HERD_PORT
  // (the first of `request.port_candidates` no active agent on the machine
  // holds); a refusal by the cap releases the admission again. Returns the
  // entry as admitted.
  virtual Result<AgentRecord> Admit(const std::string& task_id, const AdmissionRequest& request,
                                    int global_cap) const = 0;

  // Removes an agent that was admitted but never started.
  virtual Status Release(const std::string& task_id, const std::string& agent_id) const = 0;

  // Records the started agent process and its supervisor; returns the
  // entry after (its status says whether it was killed while starting).
  virtual Result<AgentRecord> RecordStart(const std::string& task_id, const std::string& agent_id,
                                          const ProcessIdentity& agent,
                                          const ProcessIdentity& supervisor) const = 0;

  // Records the agent's end: `stop`, if given and the agent is still
  // active, as its termination; then its exit (task_registry.h RecordExit);
  // then any budget its figures passed (the agents that stops get
  // `kill_grace_ms`); then begins its next turn if a message is queued
  // (turns.h BeginQueuedTurn).
  virtual Result<EndOutcome> RecordEnd(const std::string& task_id, const std::string& agent_id,
                                       const ExitRecord& exit,
                                       const std::optional<Termination>& stop,
                                       int kill_grace_ms) const = 0;

  // Accepts a follow-up message for the agent (registry/turns.h
  // AcceptMessage). A new turn also reserves its slot under the
  // machine-wide running cap (`global_cap`, 0 = none), and keeps the agent's
  // HERD_PORT unless another active agent on the machine took it since
  // (then it gets the first free of `port_candidates`, or none); a refusal
  // by the cap abandons the turn again. The caller then starts the new
  // turn's process, or, for a queued interrupt, signals the supervisor.
  virtual Result<MessageOutcome> SendMessage(const std::string& task_id,
                                             const std::string& agent_id,
                                             const AgentMessage& message, int global_cap,
                                             const std::vector<int>& port_candidates) const = 0;

  // Undoes a new turn whose process could not start (turns.h AbandonTurn).
  virtual Status AbandonTurn(const std::string& task_id, const std::string& agent_id, int turn,
                             const std::string& reason) const = 0;

  // Marks an active agent terminated (a kill, a timeout).
  virtual Result<TerminationOutcome> Terminate(const std::string& task_id,
                                               const std::string& agent_id,
                                               const Termination& termination) const = 0;

  // Stops the task as a whole, in one transaction (task_registry.h
  // StopTask): every active agent is marked terminated with `reason` and
  // `kill_grace_ms`, and from then on Admit refuses, quoting the reason. An
  // agent admitted but not started yet is marked too: its RecordStart then
  // says it is terminated. A second stop marks nothing and succeeds.
  virtual Result<StopOutcome> StopTask(const std::string& task_id, const std::string& reason,
                                       int kill_grace_ms) const = 0;

  // Records an agent's running usage; if a budget is now passed, marks the
  // task and every active agent (returned) terminated, with `kill_grace_ms`.
  virtual Result<EndOutcome> RecordUsage(const std::string& task_id, const std::string& agent_id,
                                         const json& usage, int kill_grace_ms) const = 0;

  // Applies a progress report (task_registry.h ApplyProgress) and appends
  // its journal line, in one transaction.
  virtual Result<ReportOutcome> ReportProgress(const std::string& task_id,
                                               const std::string& agent_id,
                                               const std::string& status,
                                               const std::string& message, int progress) const = 0;

  // Records a finding of an agent of the task and appends its journal line,
  // in one transaction.
  virtual Result<ReportOutcome> ReportFinding(const std::string& task_id,
                                              const std::string& agent_id,
                                              const FindingReport& finding) const = 0;

  // Changes the task's limits and budgets (task_registry.h UpdateLimits).
  virtual Result<TaskSnapshot> ChangeLimits(const std::string& task_id,
                                            const LimitsChange& change) const = 0;

  // Records the tmux session that shows an agent's output.
  virtual Status RecordTmuxSession(const std::string& task_id, const std::string& agent_id,
                                   const std::string& session) const = 0;

  // Replaces the record of an agent's git worktree (created, merged,
  // removed); NotFound for an unknown agent.
  virtual Status RecordWorktree(const std::string& task_id, const std::string& agent_id,
                                const WorktreeRecord& worktree) const = 0;

  // Doctor's repair of an agent whose processes are gone: if `still_lost`
  // (evaluated under the transaction, on the current entry) returns a
  // detail, marks the agent error "process lost" and returns the entry
  // after; otherwise returns why it was left alone (as Unchanged text in
  // `left_alone`) and no entry.
  struct LostOutcome {
    std::optional<AgentRecord> marked;
    std::string left_alone;
  };
  using LostCheck = std::function<std::optional<std::string>(const AgentRecord& agent)>;
  virtual Result<LostOutcome> MarkLost(const std::string& task_id, const std::string& agent_id,
                                       const LostCheck& still_lost) const = 0;

  // Doctor's repair of the index: recreates it from the task registries.
  virtual Status RebuildIndex() const = 0;

  // An agent's journal as committed: how many lines it has and its newest
  // `keep` lines (kWholeJournal: all), oldest first, each as compact JSON
  // text. `agent` is the entry as last read (the JSON engine reads no
  // further than the length it records). An agent that never reported has
  // an empty journal.
  virtual Result<JournalSlice> ReadJournal(const std::string& task_id, const AgentRecord& agent,
                                           Journal journal, size_t keep) const = 0;

  // The ids of every task of this registry (the JSON engine: of its
  // workspace base), in no particular order.
  virtual Result<std::vector<std::string>> TaskIds() const = 0;

  // Opens a wait for the commits of task `task_id` (CommitWatch above).
  virtual Result<std::unique_ptr<CommitWatch>> WatchCommits(const std::string& task_id) const = 0;

  // The tail of an agent's output the registry keeps, for readers on
  // machines without its log file. The PostgreSQL engine keeps the newest
  // chunks (as its supervisor appended them, in batches) within
  // kOutputTailBytes and kOutputTailLines; the JSON engine keeps none (the
  // log file is the output): its AppendOutput does nothing and its
  // ReadOutputTail is NotFound. Not a commit of the task (no sequence, no
  // wake of WatchCommits).
  static constexpr size_t kOutputTailBytes = 1024 * 1024;
  static constexpr size_t kOutputTailLines = 2000;
  virtual Status AppendOutput(const std::string& task_id, const std::string& agent_id,
                              const std::string& output) const = 0;
  // The kept tail, oldest byte first; NotFound when none is kept.
  virtual Result<std::string> ReadOutputTail(const std::string& task_id,
                                             const std::string& agent_id) const = 0;
};

}  // namespace herd::registry
