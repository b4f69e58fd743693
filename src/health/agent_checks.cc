#include "health/agent_checks.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <map>
#include <set>

#include "agents/killer.h"
#include "agents/launcher.h"
#include "agents/liveness.h"
#include "agents/process.h"
#include "registry/json_registry.h"
#include "registry/registries.h"
#include "registry/task_registry.h"
#include "util/clock.h"
#include "util/json_fields.h"

namespace herd::health {
namespace {

using nlohmann::json;
using registry::AgentRecord;
using registry::kLostReason;
using registry::TaskRecord;

// When an ended entry ended, from the first timestamp it carries.
std::optional<double> EndedAt(const AgentRecord& agent) {
  for (const std::string* text :
       {agent.exit ? &agent.exit->ended_at : nullptr,
        agent.terminated_at ? &*agent.terminated_at : nullptr,
        agent.completed_at ? &*agent.completed_at : nullptr, &agent.last_update}) {
    if (text == nullptr) continue;
    if (std::optional<double> at = ParseIso8601(*text)) return at;
  }
  return std::nullopt;
}

// The base whose supervisors run the task's agents on this machine: the
// diagnosed base for the JSON workspace; under PostgreSQL the base the
// task's row names (one registry's tasks may live in several bases).
std::string SupervisorBase(const CheckContext& context, const TaskRecord& task) {
  if (!registry::UsesPostgres(*context.stores) || task.workspace_base.empty()) {
    return context.workspace.base();
  }
  return registry::Workspace(task.workspace_base).base();
}

// Whether the agent's processes are this machine's to look for in /proc
// and to signal. An agent placed on a node is its node's
// (agents::RunsOnThisMachine). Under PostgreSQL an agent that was not
// placed ran where it was deployed, which may be another machine sharing
// the registry: it counts as this machine's only when its local files (its
// launch plan, supervisor log or prompt) are in its task's base here.
bool ProcessesAreHere(const CheckContext& context, const std::string& task_id,
                      const TaskRecord& task, const AgentRecord& agent) {
  if (!agents::RunsOnThisMachine(agent)) return false;
  if (!registry::UsesPostgres(*context.stores)) return true;
  registry::Workspace base(SupervisorBase(context, task));
  for (const std::string& path :
       {base.LaunchPlanPath(task_id, agent.id), base.SupervisorLogPath(task_id, agent.id),
        base.PromptPath(task_id, agent.id)}) {
    if (access(path.c_str(), F_OK) == 0) return true;
  }
  return false;
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
agents::Liveness ClassifyActive(const CheckContext& context, const std::string& base,
                                const AgentRecord& agent,
                                const std::vector<SupervisorProcess>& supervisors,
                                const std::string& task_id, double now, std::string* detail) {
  const std::string& agent_id = agent.id;
  const std::string& status = agent.status;
  if (registry::IsActiveStatus(status) &&
      !LiveSupervisorsOf(supervisors, base, task_id, agent_id).empty()) {
    return agents::Liveness::kAlive;
  }
  agents::Liveness liveness = agents::ClassifyLiveness(agent, now, context.starting_grace);
  const ProcessIdentity& process = agent.process;
  const ProcessIdentity& supervisor = agent.supervisor;
  switch (liveness) {
    case agents::Liveness::kStartLost: {
      const std::string& started_text =
          agent.started_at.empty() ? agent.last_update : agent.started_at;
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
RepairOutcome MarkLost(const CheckContext& context, const std::string& base,
                       const std::vector<SupervisorProcess>& supervisors,
                       const std::string& task_id, const std::string& agent_id) {
  Result<registry::Registry::LostOutcome> outcome =
      registry::RegistryFor(*context.stores, context.workspace)
          ->MarkLost(task_id, agent_id,
                     [&](const AgentRecord& agent) -> std::optional<std::string> {
                       // Its placement never changes; checked again all the same,
                       // since another machine's pids mean nothing here.
                       if (!agents::RunsOnThisMachine(agent)) return std::nullopt;
                       std::string detail;
                       agents::Liveness liveness = ClassifyActive(
                           context, base, agent, supervisors, task_id, NowUnixSeconds(), &detail);
                       if (!agents::IsLost(liveness)) return std::nullopt;
                       return detail;
                     });
  if (!outcome.ok()) return RepairOutcome::Failed(outcome.status());
  if (!outcome->marked) return RepairOutcome::Unchanged(outcome->left_alone);
  // Outside the lock: a lost agent may still have group members around.
  json cleanup = agents::StopAgentProcesses(task_id, *outcome->marked, context.kill_grace);
  std::string action = "marked " + agent_id + " error \"" + kLostReason + "\"";
  int signalled = cleanup.value("signalled", 0);
  if (signalled > 0)
    action += " and stopped " + std::to_string(signalled) + " leftover process(es)";
  return RepairOutcome::Changed(action);
}

// Finds the orphan candidates: why a supervisor (or agent process) for
// `agent_id` of `task_id` should not be running, or "" if it should.
// `task` is the task document, or null if no registry (nor backup) exists.
std::string WhyOrphaned(const CheckContext& context, const TaskRecord* task,
                        const std::string& task_id, const std::string& agent_id, double now) {
  if (task == nullptr) return "task " + task_id + " has no registry in this workspace";
  const AgentRecord* agent = task->FindAgent(agent_id);
  if (agent == nullptr) return "task " + task_id + "'s registry does not list agent " + agent_id;
  const std::string& status = agent->status;
  if (registry::IsActiveStatus(status)) return "";
  std::optional<double> ended = EndedAt(*agent);
  double grace =
      static_cast<double>(context.orphan_grace.count()) + agent->kill_grace_ms.value_or(0) / 1000.0;
  if (ended && now - *ended < grace) return "";  // still on its way out
  std::string since = ended ? " since " + FormatIso8601(*ended) : "";
  return "agent " + agent_id + " is " + status + since;
}

// The registry of a task, or none if it has none; an error if it exists
// but cannot be read (then nobody can tell what is orphaned).
Result<std::optional<TaskRecord>> ReadTaskDocument(const CheckContext& context,
                                                   const std::string& task_id) {
  Result<registry::SharedTask> snapshot =
      registry::RegistryFor(*context.stores, context.workspace)->ReadTask(task_id);
  if (snapshot.ok()) return std::optional<TaskRecord>((*snapshot)->task);
  if (snapshot.status().Is(Status::Code::kNotFound)) return std::optional<TaskRecord>();
  return snapshot.status();
}

// Stops an orphaned supervisor (or agent process) after checking again
// that its agent is still ended or unknown.
RepairOutcome StopOrphan(const CheckContext& context, const std::string& task_id,
                         const std::string& agent_id, const ProcessIdentity& root,
                         const std::string& what) {
  Result<std::optional<TaskRecord>> task = ReadTaskDocument(context, task_id);
  if (!task.ok()) return RepairOutcome::Failed(task.status());
  const TaskRecord* document = task->has_value() ? &**task : nullptr;
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

// The task registries read so far, each read once, after the process scan
// (see the header). A registry that cannot be read is left to the file
// checks, which report it.
class TaskDocuments {
 public:
  explicit TaskDocuments(const CheckContext& context) : context_(context) {}

  // The task's document, or null if it has none or cannot be read.
  const TaskRecord* Find(const std::string& task_id) {
    if (!documents_.count(task_id) && !unreadable_.count(task_id)) {
      Result<std::optional<TaskRecord>> read = ReadTaskDocument(context_, task_id);
      if (read.ok()) {
        documents_[task_id] = std::move(*read);
      } else {
        unreadable_.insert(task_id);
      }
    }
    auto found = documents_.find(task_id);
    return found == documents_.end() || !found->second ? nullptr : &*found->second;
  }

  bool Unreadable(const std::string& task_id) const { return unreadable_.count(task_id) > 0; }

 private:
  const CheckContext& context_;
  std::map<std::string, std::optional<TaskRecord>> documents_;
  std::set<std::string> unreadable_;
};

// Under PostgreSQL, whether a supervisor seen here belongs to the registry
// and to this machine: its task is a row of the registry whose base is the
// supervisor's, and its agent (if the task lists it) was not placed on a
// node. A supervisor of a task the registry does not have may belong to a
// JSON workspace or another registry: never reported from here.
bool SupervisesHere(const CheckContext& context, const TaskRecord* task,
                    const SupervisorProcess& supervisor) {
  if (task == nullptr || SupervisorBase(context, *task) != supervisor.workspace_base) return false;
  const AgentRecord* agent = task->FindAgent(supervisor.agent_id);
  return agent == nullptr || agents::RunsOnThisMachine(*agent);
}

// Supervisors whose agent is not active.
void FindOrphanedSupervisors(const CheckContext& context,
                             const std::vector<SupervisorProcess>& supervisors,
                             TaskDocuments& documents, std::vector<Finding>* findings) {
  bool postgres = registry::UsesPostgres(*context.stores);
  for (const SupervisorProcess& supervisor : supervisors) {
    if (!postgres && supervisor.workspace_base != context.workspace.base()) continue;
    if (!context.task_id.empty() && supervisor.task_id != context.task_id) continue;
    const TaskRecord* task = documents.Find(supervisor.task_id);
    if (documents.Unreadable(supervisor.task_id)) continue;
    if (postgres && !SupervisesHere(context, task, supervisor)) continue;
    std::string why =
        WhyOrphaned(context, task, supervisor.task_id, supervisor.agent_id, context.now);
    if (why.empty()) continue;
    findings->push_back(
        OrphanFinding(context, supervisor.task_id, supervisor.agent_id, supervisor.identity,
                      "supervisor " + std::to_string(supervisor.identity.pid), why));
  }
}

// A recorded agent process that outlived its ended entry and has no
// supervisor left (FindOrphanedSupervisors reports one whose supervisor
// lives).
std::optional<Finding> OrphanedAgentProcess(const CheckContext& context, const std::string& base,
                                            const std::vector<SupervisorProcess>& supervisors,
                                            const std::string& task_id, const TaskRecord& task,
                                            const AgentRecord& agent) {
  const ProcessIdentity& process = agent.process;
  if (process.pid <= 0 || !agents::IsAlive(process) ||
      !LiveSupervisorsOf(supervisors, base, task_id, agent.id).empty()) {
    return std::nullopt;
  }
  const ProcessIdentity& supervisor = agent.supervisor;
  if (supervisor.pid > 0 && agents::IsAlive(supervisor)) return std::nullopt;
  std::string why = WhyOrphaned(context, &task, task_id, agent.id, context.now);
  if (why.empty()) return std::nullopt;
  return OrphanFinding(context, task_id, agent.id, process,
                       "agent process " + std::to_string(process.pid) + " (its supervisor is gone)",
                       why);
}

// The finding for an active entry ClassifyActive found lost or
// unsupervised: a lost one is marked by the fix, an unsupervised one is
// left alone.
Finding ZombieFinding(const CheckContext& context, const std::string& base,
                      const std::vector<SupervisorProcess>& supervisors, const std::string& task_id,
                      const std::string& agent_id, agents::Liveness liveness,
                      const std::string& detail) {
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
    return finding;
  }
  finding.severity = Severity::kError;
  CheckContext captured = context;
  finding.fix = std::make_shared<Fix>(
      FindingKind::kZombie, task_id + "/" + agent_id,
      "mark " + agent_id + " status \"error\", error \"" + kLostReason +
          "\" (re-checked under the registry lock), then stop any leftover process",
      [captured, base, supervisors, task_id, agent_id] {
        return MarkLost(captured, base, supervisors, task_id, agent_id);
      });
  return finding;
}

// Ended entries whose agent process runs on, and active entries whose
// processes are gone, of one task; only agents whose processes are this
// machine's (ProcessesAreHere).
void FindTaskProblems(const CheckContext& context,
                      const std::vector<SupervisorProcess>& supervisors, const std::string& task_id,
                      const TaskRecord& task, std::vector<Finding>* findings) {
  std::string base = SupervisorBase(context, task);
  for (const AgentRecord& agent : task.agents) {
    if (!ProcessesAreHere(context, task_id, task, agent)) continue;
    if (registry::IsTerminalStatus(agent.status)) {
      std::optional<Finding> orphan =
          OrphanedAgentProcess(context, base, supervisors, task_id, task, agent);
      if (orphan) findings->push_back(std::move(*orphan));
      continue;
    }
    std::string detail;
    agents::Liveness liveness =
        ClassifyActive(context, base, agent, supervisors, task_id, context.now, &detail);
    if (!NeedsFinding(liveness)) continue;
    findings->push_back(
        ZombieFinding(context, base, supervisors, task_id, agent.id, liveness, detail));
  }
}

}  // namespace

std::vector<Finding> CheckAgents(const CheckContext& context,
                                 const std::vector<SupervisorProcess>& supervisors) {
  std::vector<Finding> findings;
  TaskDocuments documents(context);
  FindOrphanedSupervisors(context, supervisors, documents, &findings);
  for (const std::string& task_id : TaskIdsOf(context)) {
    const TaskRecord* task = documents.Find(task_id);
    if (task == nullptr) continue;
    FindTaskProblems(context, supervisors, task_id, *task, &findings);
  }
  return findings;
}

std::vector<Finding> CheckCounts(const CheckContext& context) {
  std::vector<Finding> findings;
  for (const std::string& task_id : TaskIdsOf(context)) {
    std::string path = context.workspace.TaskRegistryPath(task_id);
    Result<std::string> drift = registry::StoredCountDrift(context.stores->tasks, path);
    if (!drift.ok() || drift->empty()) continue;  // the file checks report a damaged file
    Finding finding;
    finding.kind = FindingKind::kCountDrift;
    finding.severity = Severity::kError;
    finding.task_id = task_id;
    finding.path = path;
    finding.detail = "stored counts differ from the agent list: " + *drift;
    CheckContext captured = context;
    finding.fix = std::make_shared<Fix>(
        FindingKind::kCountDrift, task_id,
        "recompute the counts from the agent list in one transaction", [captured, task_id] {
          Result<std::optional<registry::TaskSnapshot>> repaired =
              registry::RepairJsonCounts(*captured.stores, captured.workspace, task_id);
          if (!repaired.ok()) return RepairOutcome::Failed(repaired.status());
          if (!*repaired) return RepairOutcome::Unchanged("counts are consistent again");
          const TaskRecord& task = (*repaired)->task;
          return RepairOutcome::Changed("recomputed counts of " + task_id + ": total_spawned " +
                                        std::to_string(task.total_spawned) + ", active_count " +
                                        std::to_string(task.active_count) + ", completed_count " +
                                        std::to_string(task.completed_count));
        });
    findings.push_back(std::move(finding));
  }
  return findings;
}

}  // namespace herd::health
