#include "health/agent_checks.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "agents/killer.h"
#include "agents/liveness.h"
#include "agents/process.h"
#include "registry/global_index.h"
#include "registry/task_registry.h"
#include "util/clock.h"
#include "util/json_fields.h"

namespace herd::health {
namespace {

using agents::ProcessIdentity;
using nlohmann::json;

constexpr const char kLostReason[] = "process lost";

ProcessIdentity AgentProcess(const json& agent) {
  return registry::RecordedAgentProcess(agent);
}
ProcessIdentity SupervisorOf(const json& agent) {
  return registry::RecordedSupervisor(agent);
}

// When an ended entry ended, from the first timestamp it carries.
std::optional<double> EndedAt(const json& agent) {
  for (const char* key : {"ended_at", "terminated_at", "completed_at", "last_update"}) {
    if (std::optional<double> at = ParseIso8601(StringOr(agent, key))) return at;
  }
  return std::nullopt;
}

// The scanned supervisors of one agent that are still alive.
std::vector<ProcessIdentity> LiveSupervisorsOf(const std::vector<SupervisorProcess>& supervisors,
                                               const std::string& base, const std::string& task_id,
                                               const std::string& agent_id) {
  std::vector<ProcessIdentity> live;
  for (const SupervisorProcess& supervisor : supervisors) {
    if (supervisor.workspace_base == base && supervisor.task_id == task_id &&
        supervisor.agent_id == agent_id && agents::IsAlive(supervisor.identity)) {
      live.push_back(supervisor.identity);
    }
  }
  return live;
}

// Decides whether an active entry has lost its processes (see
// agents/liveness.h), after looking for a live supervisor by its command line
// too: one that has not recorded itself yet is still starting the agent.
// Evaluated once when checking and again inside the repair transaction.
// Returns kEnded, kStarting, kAlive or kExiting when there is nothing to report.
agents::Liveness ClassifyActive(const CheckContext& context, const json& agent,
                                const std::vector<SupervisorProcess>& supervisors,
                                const std::string& task_id, double now, std::string* detail) {
  std::string agent_id = StringOr(agent, "id");
  std::string status = StringOr(agent, "status");
  if (registry::IsActiveStatus(status) &&
      !LiveSupervisorsOf(supervisors, context.workspace.base(), task_id, agent_id).empty()) {
    return agents::Liveness::kAlive;
  }
  agents::Liveness liveness = agents::ClassifyLiveness(agent, now, context.starting_grace);
  ProcessIdentity process = AgentProcess(agent);
  ProcessIdentity supervisor = SupervisorOf(agent);
  switch (liveness) {
    case agents::Liveness::kStartLost: {
      std::string started_text = StringOr(agent, "started_at", StringOr(agent, "last_update"));
      double age = now - ParseIso8601(started_text).value_or(now);
      *detail = "entry is " + status + " in phase \"starting\" since " + started_text + " (" +
                std::to_string(static_cast<long long>(age)) +
                " s) and no supervisor runs for it: " +
                "its start was never recorded, so nothing will record its end";
      break;
    }
    case agents::Liveness::kLost:
      *detail = "entry is " + status + " but its agent process " + std::to_string(process.pid) +
                " and its supervisor " + std::to_string(supervisor.pid) +
                " are gone (pid + start time): nothing will record its end";
      break;
    case agents::Liveness::kUnsupervised:
      *detail = "the supervisor " + std::to_string(supervisor.pid) + " is gone but agent process " +
                std::to_string(process.pid) + " still runs: its exit will not be recorded";
      break;
    default: break;
  }
  return liveness;
}

// True for the kinds ClassifyActive reports.
bool NeedsFinding(agents::Liveness liveness) {
  return agents::IsLost(liveness) || liveness == agents::Liveness::kUnsupervised;
}

// Marks a lost agent "error" / "process lost" if, under the lock, it is
// still lost; then stops whatever is left of it.
RepairOutcome MarkLost(const CheckContext& context,
                       const std::vector<SupervisorProcess>& supervisors,
                       const std::string& task_id, const std::string& agent_id) {
  json entry;
  std::string resolved;
  // The index gets the committed version, with its sequence number.
  Status status = registry::UpdateTaskAndIndex(
      *context.stores, context.workspace, task_id, [&](json& task) -> Result<store::Decision> {
        json* agent = registry::FindAgent(task, agent_id);
        if (agent == nullptr) {
          resolved = "agent " + agent_id + " is no longer in the registry";
          return store::Decision::kNoChange;
        }
        std::string detail;
        agents::Liveness liveness =
            ClassifyActive(context, *agent, supervisors, task_id, NowUnixSeconds(), &detail);
        if (!agents::IsLost(liveness)) {
          resolved = "agent " + agent_id + " is " + StringOr(*agent, "status") +
                     " and no longer lost (recorded meanwhile)";
          return store::Decision::kNoChange;
        }
        std::string now = NowIso8601();
        (*agent)["status"] = "error";
        (*agent)["error"] = kLostReason;
        (*agent)["ended_at"] = now;
        (*agent)["last_update"] = now;
        (*agent)["phase"] = "lost";
        (*agent)["lost_detail"] = detail + " (found by herd doctor)";
        registry::RecomputeCounts(task);
        entry = *agent;
        return store::Decision::kCommit;
      });
  if (!status.ok()) return RepairOutcome::Failed(status);
  if (!resolved.empty()) return RepairOutcome::Unchanged(resolved);
  // Outside the lock: a lost agent may still have group members around.
  json cleanup = agents::StopAgentProcesses(entry, context.kill_grace);
  std::string action = "marked " + agent_id + " error \"" + kLostReason + "\"";
  int signalled = cleanup.value("signalled", 0);
  if (signalled > 0)
    action += " and stopped " + std::to_string(signalled) + " leftover process(es)";
  return RepairOutcome::Changed(action);
}

// Finds the orphan candidates: why a supervisor (or agent process) for
// `agent_id` of `task_id` should not be running, or "" if it should.
// `task` is the task document, or null if no registry (nor backup) exists.
std::string WhyOrphaned(const CheckContext& context, const json* task, const std::string& task_id,
                        const std::string& agent_id, double now) {
  if (task == nullptr) return "task " + task_id + " has no registry in this workspace";
  const json* agent = registry::FindAgent(*task, agent_id);
  if (agent == nullptr) return "task " + task_id + "'s registry does not list agent " + agent_id;
  std::string status = StringOr(*agent, "status");
  if (registry::IsActiveStatus(status)) return "";
  std::optional<double> ended = EndedAt(*agent);
  double grace = static_cast<double>(context.orphan_grace.count()) +
                 IntOr(*agent, "kill_grace_ms", 0) / 1000.0;
  if (ended && now - *ended < grace) return "";  // still on its way out
  std::string since = ended ? " since " + FormatIso8601(*ended) : "";
  return "agent " + agent_id + " is " + status + since;
}

// The registry document of a task, or null if it has none; an error if it
// exists but cannot be read (then nobody can tell what is orphaned).
Result<std::optional<json>> ReadTaskDocument(const CheckContext& context,
                                             const std::string& task_id) {
  Result<store::Snapshot> snapshot =
      context.stores->tasks.Read(context.workspace.TaskRegistryPath(task_id));
  if (snapshot.ok()) return std::optional<json>(std::move(snapshot->document));
  if (snapshot.status().Is(Status::Code::kNotFound)) return std::optional<json>();
  return snapshot.status();
}

// Stops an orphaned supervisor (or agent process) after checking again
// that its agent is still ended or unknown.
RepairOutcome StopOrphan(const CheckContext& context, const std::string& task_id,
                         const std::string& agent_id, const ProcessIdentity& root,
                         const std::string& what) {
  Result<std::optional<json>> task = ReadTaskDocument(context, task_id);
  if (!task.ok()) return RepairOutcome::Failed(task.status());
  const json* document = task->has_value() ? &**task : nullptr;
  if (WhyOrphaned(context, document, task_id, agent_id, NowUnixSeconds()).empty()) {
    return RepairOutcome::Unchanged("agent " + agent_id + " is listed as active again; left alone");
  }
  if (!agents::IsAlive(root)) return RepairOutcome::Unchanged(what + " has already exited");
  StopFigures figures = StopProcessTrees({root}, context.kill_grace);
  std::string action = "stopped " + what +
                       " and everything below it: " + std::to_string(figures.signalled) +
                       " process(es) sent SIGTERM";
  if (figures.sigkilled > 0) action += ", " + std::to_string(figures.sigkilled) + " needed SIGKILL";
  if (!figures.all_exited) {
    return RepairOutcome::Failed(Status::Timeout(
        action +
        ", but some did not exit: run `herd doctor --repair` again once they have, or "
        "see them with `ps -o pid,stat,cmd --ppid " +
        std::to_string(root.pid) + "`"));
  }
  return RepairOutcome{figures.signalled > 0, action, Status()};
}

Finding OrphanFinding(const CheckContext& context, const std::string& task_id,
                      const std::string& agent_id, const ProcessIdentity& root,
                      const std::string& what, const std::string& why) {
  Finding finding;
  finding.kind = FindingKind::kOrphan;
  finding.severity = Severity::kError;
  finding.task_id = task_id;
  finding.agent_id = agent_id;
  size_t below = agents::Descendants(root.pid).size();
  finding.detail = what + " still runs (with " + std::to_string(below) +
                   " process(es) below it) but no registry lists it as active: " + why;
  CheckContext captured = context;
  finding.fix = std::make_shared<Fix>(
      FindingKind::kOrphan, task_id + "/" + agent_id + " pid " + std::to_string(root.pid),
      "stop " + what + " and its descendants (SIGTERM, " +
          std::to_string(context.kill_grace.count()) + " ms grace, SIGKILL)",
      [captured, task_id, agent_id, root, what] {
        return StopOrphan(captured, task_id, agent_id, root, what);
      });
  return finding;
}

}  // namespace

std::vector<Finding> CheckAgents(const CheckContext& context,
                                 const std::vector<SupervisorProcess>& supervisors) {
  std::vector<Finding> findings;
  const std::string& base = context.workspace.base();
  // Documents read after the process scan (see the header).
  std::map<std::string, std::optional<json>> documents;
  std::set<std::string> unreadable;
  auto document_of = [&](const std::string& task_id) -> const json* {
    if (!documents.count(task_id) && !unreadable.count(task_id)) {
      Result<std::optional<json>> read = ReadTaskDocument(context, task_id);
      if (read.ok()) {
        documents[task_id] = std::move(*read);
      } else {
        unreadable.insert(task_id);  // reported by the file checks
      }
    }
    auto found = documents.find(task_id);
    return found == documents.end() || !found->second ? nullptr : &*found->second;
  };

  // Supervisors whose agent is not active.
  for (const SupervisorProcess& supervisor : supervisors) {
    if (supervisor.workspace_base != base) continue;
    if (!context.task_id.empty() && supervisor.task_id != context.task_id) continue;
    const json* task = document_of(supervisor.task_id);
    if (unreadable.count(supervisor.task_id)) continue;
    std::string why =
        WhyOrphaned(context, task, supervisor.task_id, supervisor.agent_id, context.now);
    if (why.empty()) continue;
    findings.push_back(OrphanFinding(context, supervisor.task_id, supervisor.agent_id,
                                     supervisor.identity,
                                     "supervisor " + std::to_string(supervisor.identity.pid), why));
  }

  for (const std::string& task_id : TaskIdsOf(context)) {
    const json* task = document_of(task_id);
    if (task == nullptr) continue;
    const json& agents = (*task)["agents"];
    for (const json& agent : agents) {
      std::string agent_id = StringOr(agent, "id");
      std::string status = StringOr(agent, "status");
      if (registry::IsTerminalStatus(status)) {
        // A recorded agent process that outlived its ended entry and has no
        // supervisor left (one with a supervisor was found above).
        ProcessIdentity process = AgentProcess(agent);
        if (process.pid <= 0 || !agents::IsAlive(process) ||
            !LiveSupervisorsOf(supervisors, base, task_id, agent_id).empty()) {
          continue;
        }
        ProcessIdentity supervisor = SupervisorOf(agent);
        if (supervisor.pid > 0 && agents::IsAlive(supervisor)) continue;
        std::string why = WhyOrphaned(context, task, task_id, agent_id, context.now);
        if (why.empty()) continue;
        findings.push_back(OrphanFinding(
            context, task_id, agent_id, process,
            "agent process " + std::to_string(process.pid) + " (its supervisor is gone)", why));
        continue;
      }
      std::string detail;
      agents::Liveness liveness =
          ClassifyActive(context, agent, supervisors, task_id, context.now, &detail);
      if (!NeedsFinding(liveness)) continue;
      Finding finding;
      finding.kind = FindingKind::kZombie;
      finding.task_id = task_id;
      finding.agent_id = agent_id;
      finding.detail = detail;
      if (liveness == agents::Liveness::kUnsupervised) {
        finding.severity = Severity::kWarning;
        finding.no_fix_reason = "the agent may still be doing useful work; `herd kill " + task_id +
                                " " + agent_id +
                                "` stops it, and once it exits a doctor repair "
                                "marks it \"" +
                                kLostReason + "\"";
      } else {
        finding.severity = Severity::kError;
        CheckContext captured = context;
        finding.fix = std::make_shared<Fix>(
            FindingKind::kZombie, task_id + "/" + agent_id,
            "mark " + agent_id + " status \"error\", error \"" + kLostReason +
                "\" (re-checked under the registry lock), then stop any leftover process",
            [captured, supervisors, task_id, agent_id] {
              return MarkLost(captured, supervisors, task_id, agent_id);
            });
      }
      findings.push_back(std::move(finding));
    }
  }
  return findings;
}

std::vector<Finding> CheckCounts(const CheckContext& context) {
  static const char* const kCountKeys[] = {"total_spawned", "active_count", "completed_count"};
  std::vector<Finding> findings;
  for (const std::string& task_id : TaskIdsOf(context)) {
    Result<store::Snapshot> snapshot =
        context.stores->tasks.Read(context.workspace.TaskRegistryPath(task_id));
    if (!snapshot.ok()) continue;  // the file checks report it
    const json& stored = snapshot->document;
    json derived = stored;
    registry::RecomputeCounts(derived);
    std::string differences;
    for (const char* key : kCountKeys) {
      json value = stored.value(key, json(nullptr));
      if (value != derived[key]) {
        differences += std::string(differences.empty() ? "" : ", ") + key + " is " + value.dump() +
                       " but the agent list gives " + derived[key].dump();
      }
    }
    if (differences.empty()) continue;
    Finding finding;
    finding.kind = FindingKind::kCountDrift;
    finding.severity = Severity::kError;
    finding.task_id = task_id;
    finding.path = context.workspace.TaskRegistryPath(task_id);
    finding.detail = "stored counts differ from the agent list: " + differences;
    CheckContext captured = context;
    finding.fix = std::make_shared<Fix>(
        FindingKind::kCountDrift, task_id,
        "recompute the counts from the agent list in one transaction", [captured, task_id] {
          json task_after;
          Status status = registry::UpdateTaskAndIndex(
              *captured.stores, captured.workspace, task_id,
              [&](json& task) -> Result<store::Decision> {
                json before = task;
                registry::RecomputeCounts(task);
                if (task == before) return store::Decision::kNoChange;
                return store::Decision::kCommit;
              },
              &task_after);
          if (!status.ok()) return RepairOutcome::Failed(status);
          if (task_after.is_null()) return RepairOutcome::Unchanged("counts are consistent again");
          return RepairOutcome::Changed("recomputed counts of " + task_id + ": total_spawned " +
                                        task_after["total_spawned"].dump() + ", active_count " +
                                        task_after["active_count"].dump() + ", completed_count " +
                                        task_after["completed_count"].dump());
        });
    findings.push_back(std::move(finding));
  }
  return findings;
}

}  // namespace herd::health
