// Orchestrator: every operation herd offers, in one place, for every surface.
//
// The CLI (cli/) and the MCP server (mcp/) are thin layers over this class:
// each operation validates its input, does its work through the registry
// and agents layers, and returns the reference orchestrator's result keys
// as JSON (without "success": surfaces add it), or a Status whose message
// says what to do. Every registry change is a store transaction; reads
// (TaskStatus, ListTasks, AgentOutput, ProgressTimeline) never write.
//
// Requests and their parameters are in orchestrator/requests.h; the
// overloads taking a request struct are what the surfaces call.
//
// Thread-safe: its only state is caches (the stores' parsed documents, the
// journal reader's tails, the process watch's pidfds), each thread-safe and
// shared by copies, so one instance may serve concurrent MCP calls.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/killer.h"
#include "agents/launcher.h"
#include "agents/process_watch.h"
#include "orchestrator/requests.h"
#include "registry/json_registry.h"
#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "util/journal_reader.h"
#include "util/status.h"

namespace herd {

using nlohmann::json;

class Orchestrator {
 public:
  // `workspace` is where new tasks go (unless they name a client_cwd) and
  // the first place tasks are looked up.
  Orchestrator(registry::Workspace workspace, registry::RegistryStores stores);

  const registry::Workspace& workspace() const { return workspace_; }
  const registry::RegistryStores& stores() const { return stores_; }

  Result<json> CreateTask(const CreateTaskRequest& request) const;
  // Every task in every known workspace base, newest first.
  Result<json> ListTasks() const;
  Result<json> Deploy(const agents::DeployRequest& request) const;
  Result<json> TaskStatus(const std::string& task_id) const;
  Result<json> AgentOutput(const OutputRequest& request) const;
  Result<json> Kill(const std::string& task_id, const std::string& agent_id,
                    const std::string& reason,
                    std::chrono::milliseconds grace = agents::kDefaultKillGrace) const;
  Result<json> Kill(const KillRequest& request) const {
    return Kill(request.task_id, request.agent_id, request.reason, request.grace);
  }
  Result<json> ReportProgress(const std::string& task_id, const std::string& agent_id,
                              const std::string& status, const std::string& message,
                              int progress) const;
  Result<json> ReportProgress(const ProgressReport& report) const {
    return ReportProgress(report.task_id, report.agent_id, report.status, report.message,
                          report.progress);
  }
  Result<json> ReportFinding(const std::string& task_id, const std::string& agent_id,
                             const std::string& finding_type, const std::string& severity,
                             const std::string& message, const json& data) const;
  Result<json> ReportFinding(const FindingReport& report) const {
    return ReportFinding(report.task_id, report.agent_id, report.finding_type, report.severity,
                         report.message, report.data);
  }
  // Raises (or lowers) a task's limits and budgets in one transaction.
  Result<json> UpdateLimits(const std::string& task_id, const LimitsUpdate& update) const;
  Result<json> UpdateLimits(const LimitsUpdate& update) const {
    return UpdateLimits(update.task_id, update);
  }
  // Progress and findings merged, oldest first, each tagged entry_type.
  Result<json> ProgressTimeline(const std::string& task_id) const;

 private:
  Result<registry::Workspace> Locate(const std::string& task_id) const;
  // The registry of the tasks in `workspace`.
  registry::JsonRegistry RegistryOf(const registry::Workspace& workspace) const;
  // Other agents' status, recent progress and findings, for agents' reports.
  json CoordinationInfo(const registry::Workspace& workspace, const registry::TaskRecord& task,
                        const std::string& for_agent) const;

  registry::Workspace workspace_;
  registry::RegistryStores stores_;
  JournalReader journals_;                           // progress and findings, read incrementally
  std::shared_ptr<agents::ProcessWatch> processes_;  // liveness of running agents
};

}  // namespace herd
