// JsonRegistry: the Registry (registry/registry.h) of one JSON workspace
// base, as the reference orchestrator lays it out (registry/workspace.h).
//
// Each task operation is one store transaction on the task's
// AGENT_REGISTRY.json (registry/task_store.h) followed, when it committed,
// by an idempotent upsert into registry/GLOBAL_REGISTRY.json in a second
// transaction (registry/global_index.h): never two locks at once. Reports
// append their journal line under the task's lock. Cheap to construct and
// copy; thread-safe.
#pragma once

#include <string>

#include "registry/registry.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"

namespace herd::registry {

class JsonRegistry : public Registry {
 public:
  JsonRegistry(RegistryStores stores, Workspace workspace)
      : stores_(std::move(stores)), workspace_(std::move(workspace)) {}

  const Workspace& workspace() const { return workspace_; }

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
  Status RebuildIndex() const override;
  Result<JournalSlice> ReadJournal(const std::string& task_id, const AgentRecord& agent,
                                   Journal journal, size_t keep) const override;
  Result<std::vector<std::string>> TaskIds() const override;
  Result<std::unique_ptr<CommitWatch>> WatchCommits(const std::string& task_id) const override;
  Status AppendOutput(const std::string&, const std::string&, const std::string&) const override {
    return Status::Ok();  // the log file is the output
  }
  Result<std::string> ReadOutputTail(const std::string& task_id,
                                     const std::string& agent_id) const override {
    return Status::NotFound("the JSON workspace keeps no output of agent " + agent_id +
                            " but its log file, in " + workspace_.TaskDirectory(task_id) +
                            "/logs: read it on the machine that ran the agent");
  }

  // Doctor's repair of stored counts that differ from the agent list
  // (task_store.h RewriteDerivedCounts), then the index. The drift is a
  // property of the JSON files: readers derive the counts anyway.
  Result<std::optional<TaskSnapshot>> RepairCounts(const std::string& task_id) const;

 private:
  // A report's change to the task, returning its journal line.
  using ReportChange = std::function<Result<json>(TaskRecord& task)>;
  Result<ReportOutcome> CommitReport(const std::string& task_id, const std::string& agent_id,
                                     Journal journal, const ReportChange& apply) const;
  // One transaction that commits whenever `change` succeeds.
  Status Change(const std::string& task_id, const std::function<Status(TaskRecord&)>& change,
                TaskSnapshot* committed = nullptr) const;

  RegistryStores stores_;
  Workspace workspace_;
};

// JsonRegistry::RepairCounts of the task in `workspace`, for doctor.
Result<std::optional<TaskSnapshot>> RepairJsonCounts(const RegistryStores& stores,
                                                     const Workspace& workspace,
                                                     const std::string& task_id);

}  // namespace herd::registry
