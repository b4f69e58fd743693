#include "agents/killer.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "agents/process.h"
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

}  // namespace

void RequestStop(const std::vector<json>& agents) {
  for (const json& agent : agents) {
    ProcessIdentity supervisor = registry::RecordedSupervisor(agent);
    ProcessIdentity leader = registry::RecordedAgentProcess(agent);
    int pidfd = supervisor.pid == getpid() ? -1 : OpenPidfd(supervisor);
    if (supervisor.pid == getpid()) {
      raise(SIGTERM);  // our own agent: the handler forwards and arms the deadline
    } else if (pidfd >= 0) {
      SignalPidfd(pidfd, SIGTERM);
    } else if ((pidfd = OpenPidfd(leader)) >= 0) {
      SignalPidfd(pidfd, SIGTERM);
      if (leader.pid > 1) kill(-leader.pid, SIGTERM);
    }
    if (pidfd >= 0) close(pidfd);
  }
}

json StopAgentProcesses(const json& agent, std::chrono::milliseconds grace) {
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
                  {"log_file_kept", agent.value("tracked_files", json::object())
                                        .value("log_file", json(nullptr))}};

  // The supervisor records the exit and reaps leftovers; wait for it so the
  // caller sees the final state.
  int supervisor_fd = supervisor.pid == getpid() ? -1 : OpenPidfd(supervisor);
  if (supervisor_fd >= 0) {
    cleanup["supervisor_finished"] =
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
  if (!marked.ok()) return marked;

  json result = {{"agent_id", agent_id},
                 {"task_id", task_id},
                 {"status", agent.value("status", "")},
                 {"reason", reason}};
  if (!changed) {
    result["already_ended"] = true;
    result["reason"] = agent.value("termination_reason", agent.value("error", std::string()));
  }
  // Even an agent recorded as ended may have leftovers if its supervisor
  // was lost; stopping is idempotent.
  result["cleanup"] = StopAgentProcesses(agent, grace);
  return result;
}

}  // namespace herd::agents
