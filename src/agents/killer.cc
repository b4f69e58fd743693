#include "agents/killer.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "agents/process.h"
#include "agents/supervisor.h"
#include "registry/global_index.h"
#include "registry/ids.h"
#include "registry/task_registry.h"
#include "util/clock.h"

namespace herd::agents {
namespace {

using nlohmann::json;

// How long to wait for the supervisor to record the exit after the agent died.
constexpr auto kSupervisorFinish = std::chrono::seconds(5);

// Every process of the agent that /proc shows now (possibly repeated).
std::vector<ProcessIdentity> AgentProcesses(const json& agent, const ProcessIdentity& leader,
                                            const ProcessIdentity& supervisor) {
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
    for (const ProcessIdentity& marked :
         ProcessesMarkedFor(agent.value("task_id", ""), agent.value("id", ""))) {
      processes.push_back(marked);
    }
  }
  return processes;
}

// The agent's entry as last committed, read without the lock, with task_id.
Result<json> LastCommittedEntry(const registry::RegistryStores& stores,
                                const registry::Workspace& workspace, const std::string& task_id,
                                const std::string& agent_id) {
  Result<store::Snapshot> snapshot = stores.tasks.Read(workspace.TaskRegistryPath(task_id));
  if (!snapshot.ok()) return snapshot.status();
  const json* entry = registry::FindAgent(snapshot->document, agent_id);
  if (entry == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " + task_id +
                            ": run `herd status " + task_id + "` to list its agents");
  }
  json agent = *entry;
  agent["task_id"] = task_id;
  return agent;
}

// What a person must know when the agent was stopped but its termination
// could not be recorded: the error, what the registry says now, who will
// record the end and what to do.
std::string UnrecordedKillWarning(const Status& error, const registry::Workspace& workspace,
                                  const json& agent, const json& cleanup) {
  std::string task_id = agent.value("task_id", "");
  std::string agent_id = agent.value("id", "");
  std::string text = "the registry could not be written (" + error.ToString() +
                     "), so the termination is not recorded: ";
  text += cleanup.value("all_exited", false)
              ? "the agent's processes were stopped, "
              : "the agent's processes were signalled but some had not exited, ";
  text += "but " + workspace.TaskRegistryPath(task_id) + " still lists " + agent_id + " as " +
          agent.value("status", "") + ". Free space on the disk (or fix what the error names). ";
  if (IsAlive(registry::RecordedSupervisor(agent))) {
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

void RequestStop(const std::vector<json>& agents) {
  for (const json& agent : agents) {
    ProcessIdentity supervisor = registry::RecordedSupervisor(agent);
    ProcessIdentity leader = registry::RecordedAgentProcess(agent);
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

json StopAgentProcesses(const json& agent, std::chrono::milliseconds grace, AwaitSupervisor await) {
  ProcessIdentity leader = registry::RecordedAgentProcess(agent);
  ProcessIdentity supervisor = registry::RecordedSupervisor(agent);
  auto start = MonotonicClock::now();
  // Counted before anything is signalled: the supervisor's forwarded
  // SIGTERM may end (and reap) a process before this one reaches it.
  std::set<int> found;
  for (const ProcessIdentity& process : AgentProcesses(agent, leader, supervisor)) {
    found.insert(process.pid);
  }
  // Tell the supervisor first: it enforces the same deadline even if this
  // process dies before it (an MCP client may close us at any moment).
  RequestStop({agent});
  StopFigures figures =
      StopProcesses([&] { return AgentProcesses(agent, leader, supervisor); }, grace);
  // Processes sent SIGTERM, by herd or, at herd's request, by the supervisor.
  int signalled = std::max(figures.signalled, static_cast<int>(found.size()));
  json cleanup = {{"signalled", signalled},
                  {"sigkilled", figures.sigkilled},
                  {"all_exited", figures.all_exited},
                  {"supervisor_finished", true},
                  {"log_file_kept",
                   agent.value("tracked_files", json::object()).value("log_file", json(nullptr))}};

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
  json agent;
  bool changed = false;
  Status marked = registry::UpdateTaskAndIndex(
      stores, workspace, task_id, [&](json& task) -> Result<store::Decision> {
        Result<bool> terminated = registry::MarkTerminated(task, agent_id, reason, NowIso8601());
        if (!terminated.ok()) return terminated.status();
        changed = *terminated;
        json* entry = registry::FindAgent(task, agent_id);
        if (changed) (*entry)["kill_grace_ms"] = grace.count();
        agent = *entry;
        agent["task_id"] = task_id;
        return changed ? store::Decision::kCommit : store::Decision::kNoChange;
      });
  // Not durable: committed and visible, so what the mutation saw holds.
  bool recorded = marked.ok() || marked.Is(Status::Code::kNotDurable);
  if (!recorded) {
    if (!store::IsUnwritable(marked)) return marked;
    // The kill happens all the same, from the last committed version.
    Result<json> last = LastCommittedEntry(stores, workspace, task_id, agent_id);
    if (!last.ok()) {
      return marked.WithContext("nothing was stopped: the last committed version of " +
                                workspace.TaskRegistryPath(task_id) + " cannot be read either (" +
                                last.status().message() + "), and the registry cannot be written");
    }
    agent = std::move(*last);
    changed = registry::IsActiveStatus(agent.value("status", ""));
    // Nothing needed writing for an agent that had already ended.
    recorded = !changed;
  }

  json result = {{"agent_id", agent_id},
                 {"task_id", task_id},
                 {"status", changed ? std::string("terminated") : agent.value("status", "")},
                 {"reason", reason},
                 {"registry_recorded", recorded}};
  if (!changed) {
    result["already_ended"] = true;
    result["reason"] = agent.value("termination_reason", agent.value("error", std::string()));
  }
  // Even an agent recorded as ended may have leftovers if its supervisor
  // was lost; stopping is idempotent. A supervisor that cannot write now
  // will not finish soon: no point waiting for it.
  result["cleanup"] =
      StopAgentProcesses(agent, grace, recorded ? AwaitSupervisor::kYes : AwaitSupervisor::kNo);
  if (!recorded) {
    result["warning"] = UnrecordedKillWarning(marked, workspace, agent, result["cleanup"]);
  } else if (changed && !marked.ok()) {
    result["warning"] =
        "the termination is recorded but may not survive a power loss: " + marked.message();
  }
  return result;
}

}  // namespace herd::agents
