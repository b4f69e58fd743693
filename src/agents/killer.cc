#include "agents/killer.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "agents/process.h"
#include "agents/supervisor.h"
#include "registry/ids.h"
#include "registry/json_registry.h"
#include "registry/task_registry.h"
#include "util/clock.h"

namespace herd::agents {
namespace {

using nlohmann::json;
using registry::AgentRecord;

// How long to wait for the supervisor to record the exit after the agent died.
constexpr auto kSupervisorFinish = std::chrono::seconds(5);

// Every process of the agent that /proc shows now (possibly repeated).
std::vector<ProcessIdentity> AgentProcesses(const std::string& task_id, const AgentRecord& agent) {
  const ProcessIdentity& leader = agent.process;
  const ProcessIdentity& supervisor = agent.supervisor;
  std::vector<ProcessIdentity> processes;
  bool leader_alive = IsAlive(leader);
  bool supervisor_alive = IsAlive(supervisor);
  if (leader_alive) processes.push_back(leader);
  // The group id is only trusted while the leader or its supervisor is
  // alive: then no other process can have been given that id.
  if (leader.pid > 1 && (leader_alive || supervisor_alive)) {
    for (const ProcessIdentity& member : ProcessGroupMembers(leader.pid)) {
      processes.push_back(member);
    }
  }
  if (leader_alive) {
    for (const ProcessIdentity& child : Descendants(leader.pid)) processes.push_back(child);
  }
  if (supervisor_alive) {
    for (const ProcessIdentity& child : Descendants(supervisor.pid)) processes.push_back(child);
  } else {
    // Without the subreaper, descendants that left the group were adopted
    // by init: find them by the mark herd put in their environment.
    for (const ProcessIdentity& marked : ProcessesMarkedFor(task_id, agent.id)) {
      processes.push_back(marked);
    }
  }
  return processes;
}

// The agent's entry as last committed, read without the lock.
Result<AgentRecord> LastCommittedEntry(const registry::RegistryStores& stores,
                                       const registry::Workspace& workspace,
                                       const std::string& task_id, const std::string& agent_id) {
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot,
                        registry::JsonRegistry(stores, workspace).ReadTask(task_id));
  const AgentRecord* entry = snapshot->task.FindAgent(agent_id);
  if (entry == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " + task_id +
                            ": run `herd status " + task_id + "` to list its agents");
  }
  return *entry;
}

// What a person must know when the agent was stopped but its termination
// could not be recorded: the error, what the registry says now, who will
// record the end and what to do.
std::string UnrecordedKillWarning(const Status& error, const registry::Workspace& workspace,
                                  const std::string& task_id, const AgentRecord& agent,
                                  const json& cleanup) {
  const std::string& agent_id = agent.id;
  std::string text = "the registry could not be written (" + error.ToString() +
                     "), so the termination is not recorded: ";
  text += cleanup.value("all_exited", false)
              ? "the agent's processes were stopped, "
              : "the agent's processes were signalled but some had not exited, ";
  text += "but " + workspace.TaskRegistryPath(task_id) + " still lists " + agent_id + " as " +
          agent.status + ". Free space on the disk (or fix what the error names). ";
  if (IsAlive(agent.supervisor)) {
    long long minutes =
        std::chrono::duration_cast<std::chrono::minutes>(kExitRecordPatience).count();
    text += "Its supervisor records the end as soon as it can write (it keeps trying for " +
            std::to_string(minutes) + " minutes); if `herd status " + task_id +
            "` still lists it as active after that, run `herd doctor --repair`.";
  } else {
    text +=
        "Its supervisor is gone, so nothing will record the end: run `herd doctor --repair` "
        "once the registry can be written.";
  }
  return text;
}

}  // namespace

void RequestStop(const std::vector<AgentRecord>& agents) {
  for (const AgentRecord& agent : agents) {
    const ProcessIdentity& supervisor = agent.supervisor;
    const ProcessIdentity& leader = agent.process;
    int pidfd = supervisor.pid == getpid() ? -1 : OpenPidfd(supervisor);
    if (supervisor.pid == getpid()) {
      raise(SIGTERM);  // our own agent: the handler forwards and arms the deadline
    } else if (pidfd >= 0) {
      // Marked, so the supervisor knows herd asked even if nothing could be recorded.
      if (!SignalPidfdWithValue(pidfd, SIGTERM, kStopRequestMark)) SignalPidfd(pidfd, SIGTERM);
    } else if ((pidfd = OpenPidfd(leader)) >= 0) {
      SignalPidfd(pidfd, SIGTERM);
      if (leader.pid > 1) kill(-leader.pid, SIGTERM);
    }
    if (pidfd >= 0) close(pidfd);
  }
}

json StopAgentProcesses(const std::string& task_id, const AgentRecord& agent,
                        std::chrono::milliseconds grace, AwaitSupervisor await) {
  const ProcessIdentity& supervisor = agent.supervisor;
  auto start = MonotonicClock::now();
  // Counted before anything is signalled: the supervisor's forwarded
  // SIGTERM may end (and reap) a process before this one reaches it.
  std::set<int> found;
  for (const ProcessIdentity& process : AgentProcesses(task_id, agent)) {
    found.insert(process.pid);
  }
  // Tell the supervisor first: it enforces the same deadline even if this
  // process dies before it (an MCP client may close us at any moment).
  RequestStop({agent});
  StopFigures figures = StopProcesses([&] { return AgentProcesses(task_id, agent); }, grace);
  // Processes sent SIGTERM, by herd or, at herd's request, by the supervisor.
  int signalled = std::max(figures.signalled, static_cast<int>(found.size()));
  json cleanup = {
      {"signalled", signalled},
      {"sigkilled", figures.sigkilled},
      {"all_exited", figures.all_exited},
      {"supervisor_finished", true},
      {"log_file_kept",
       agent.tracked_files.log_file.empty() ? json(nullptr) : json(agent.tracked_files.log_file)}};

  // The supervisor records the exit and reaps leftovers; wait for it so the
  // caller sees the final state.
  int supervisor_fd = supervisor.pid == getpid() ? -1 : OpenPidfd(supervisor);
  if (supervisor_fd >= 0) {
    cleanup["supervisor_finished"] =
        await == AwaitSupervisor::kYes &&
        WaitForExit({supervisor_fd}, MonotonicClock::now() + kSupervisorFinish);
    close(supervisor_fd);
  }
  cleanup["elapsed_ms"] = MillisecondsSince(start);
  return cleanup;
}

Result<json> KillAgent(const registry::RegistryStores& stores, const registry::Workspace& workspace,
                       const std::string& task_id, const std::string& agent_id,
                       const std::string& reason, std::chrono::milliseconds grace) {
  HERD_RETURN_IF_ERROR(registry::ValidateTaskId(task_id));
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(agent_id));
  registry::Termination termination;
  termination.reason = reason;
  termination.kill_grace_ms = static_cast<int>(grace.count());
  Result<registry::TerminationOutcome> outcome =
      registry::JsonRegistry(stores, workspace).Terminate(task_id, agent_id, termination);
  Status marked = outcome.ok() ? Status::Ok() : outcome.status();
  AgentRecord agent;
  bool changed = false;
  std::string not_durable;
  // Not durable: committed and visible, so what the transaction saw holds.
  bool recorded = outcome.ok();
  if (recorded) {
    agent = outcome->agent;
    changed = outcome->changed;
    not_durable = outcome->warning;
  } else {
    if (!store::IsUnwritable(marked)) return marked;
    // The kill happens all the same, from the last committed version.
    Result<AgentRecord> last = LastCommittedEntry(stores, workspace, task_id, agent_id);
    if (!last.ok()) {
      return marked.WithContext("nothing was stopped: the last committed version of " +
                                workspace.TaskRegistryPath(task_id) + " cannot be read either (" +
                                last.status().message() + "), and the registry cannot be written");
    }
    agent = std::move(*last);
    changed = registry::IsActiveStatus(agent.status);
    // Nothing needed writing for an agent that had already ended.
    recorded = !changed;
  }

  json result = {{"agent_id", agent_id},
                 {"task_id", task_id},
                 {"status", changed ? std::string("terminated") : agent.status},
                 {"reason", reason},
                 {"registry_recorded", recorded}};
  if (!changed) {
    result["already_ended"] = true;
    result["reason"] = agent.termination_reason.value_or(agent.error.value_or(""));
  }
  // Even an agent recorded as ended may have leftovers if its supervisor
  // was lost; stopping is idempotent. A supervisor that cannot write now
  // will not finish soon: no point waiting for it.
  result["cleanup"] = StopAgentProcesses(task_id, agent, grace,
                                         recorded ? AwaitSupervisor::kYes : AwaitSupervisor::kNo);
  if (!recorded) {
    result["warning"] = UnrecordedKillWarning(marked, workspace, task_id, agent, result["cleanup"]);
  } else if (changed && !not_durable.empty()) {
    result["warning"] =
        "the termination is recorded but may not survive a power loss: " + not_durable;
  }
  return result;
}

}  // namespace herd::agents
