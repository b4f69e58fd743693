#include "agents/killer.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <set>
#include <system_error>
#include <thread>

#include "agents/launcher.h"
#include "agents/process.h"
#include "agents/supervisor.h"
#include "registry/ids.h"
#include "registry/registries.h"
#include "registry/task_registry.h"
#include "util/clock.h"

namespace herd::agents {
namespace {

using nlohmann::json;
using registry::AgentRecord;

// How long to wait for the supervisor to record the exit after the agent died.
constexpr auto kSupervisorFinish = std::chrono::seconds(5);

// Every process of the agent (possibly repeated): its group's members as
// `groups` lists them, the rest as /proc shows them now.
std::vector<ProcessIdentity> AgentProcesses(const std::string& task_id, const AgentRecord& agent,
                                            const ProcessTable& groups) {
  const ProcessIdentity& leader = agent.process;
  const ProcessIdentity& supervisor = agent.supervisor;
  std::vector<ProcessIdentity> processes;
  bool leader_alive = IsAlive(leader);
  bool supervisor_alive = IsAlive(supervisor);
  if (leader_alive) processes.push_back(leader);
  // The group id is only trusted while the leader or its supervisor is
  // alive: then no other process can have been given that id.
  if (leader.pid > 1 && (leader_alive || supervisor_alive)) {
    for (const ProcessIdentity& member : groups.GroupMembers(leader.pid)) {
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

// Every process of the agent that /proc shows now (possibly repeated).
std::vector<ProcessIdentity> AgentProcesses(const std::string& task_id, const AgentRecord& agent) {
  return AgentProcesses(task_id, agent, ProcessTable::Read());
}

// The agent's entry as last committed, read without the lock.
Result<AgentRecord> LastCommittedEntry(const registry::RegistryStores& stores,
                                       const registry::Workspace& workspace,
                                       const std::string& task_id, const std::string& agent_id) {
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot,
                        registry::RegistryFor(stores, workspace)->ReadTask(task_id));
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

// How many of the agent's processes run now. Counted before anything is
// signalled: the supervisor's forwarded SIGTERM may end (and reap) a
// process before StagedKill reaches it.
size_t ProcessesFound(const std::string& task_id, const AgentRecord& agent,
                      const ProcessTable& groups) {
  std::set<int> found;
  for (const ProcessIdentity& process : AgentProcesses(task_id, agent, groups)) {
    found.insert(process.pid);
  }
  return found.size();
}

// The staged kill of the agent's processes once its supervisor has been
// asked (RequestStop), as cleanup figures {signalled, sigkilled,
// all_exited, supervisor_finished, log_file_kept}; `found` is
// ProcessesFound from before the request, `groups` read after it.
json StagedKill(const std::string& task_id, const AgentRecord& agent,
                std::chrono::milliseconds grace, size_t found, const ProcessTable& groups) {
  bool first_pass = true;
  StopFigures figures = StopProcesses(
      [&] {
        // The pass after the grace reads /proc again: processes may have started since.
        std::vector<ProcessIdentity> processes =
            first_pass ? AgentProcesses(task_id, agent, groups) : AgentProcesses(task_id, agent);
        first_pass = false;
        return processes;
      },
      grace);
  // Processes sent SIGTERM, by herd or, at herd's request, by the supervisor.
  int signalled = std::max(figures.signalled, static_cast<int>(found));
  return {
      {"signalled", signalled},
      {"sigkilled", figures.sigkilled},
      {"all_exited", figures.all_exited},
      {"supervisor_finished", true},
      {"log_file_kept",
       agent.tracked_files.log_file.empty() ? json(nullptr) : json(agent.tracked_files.log_file)}};
}

// What a node's daemon gets after a kill's grace to stop its agent and
// have the exit recorded: one lease renewal's catch-up (a missed wake-up)
// and the supervisor's own recording.
constexpr auto kNodeStopPatience = std::chrono::seconds(30);

// Whether agent `agent`'s node has confirmed it is gone: its supervisor
// recorded the exit (it checks the agent by pid and start time), or the
// node's lease expired (a node stops its own agents before then).
bool NodeConfirmedStop(const AgentRecord& agent) {
  return agent.exit.has_value() || agent.phase == "exited" || agent.phase == "lost" ||
         (!agent.process.recorded() && !registry::IsActiveStatus(agent.status));
}

// Waits until the nodes of `agent_ids` (agents of task `task_id` on other
// machines, marked ended) confirm their stops, or until `deadline`.
// Returns the ids confirmed.
std::set<std::string> AwaitNodeStops(const registry::Registry& registry, const std::string& task_id,
                                     const std::vector<std::string>& agent_ids,
                                     MonotonicClock::time_point deadline) {
  std::set<std::string> confirmed;
  Result<std::unique_ptr<registry::CommitWatch>> watch = registry.WatchCommits(task_id);
  for (;;) {
    Result<registry::SharedTask> task = registry.ReadTask(task_id);
    if (task.ok()) {
      for (const std::string& id : agent_ids) {
        const AgentRecord* agent = (*task)->task.FindAgent(id);
        if (agent == nullptr || NodeConfirmedStop(*agent)) confirmed.insert(id);
      }
    }
    if (confirmed.size() == agent_ids.size() || !watch.ok()) return confirmed;
    Result<Wake> wake = (*watch)->WaitUntil(deadline, nullptr);
    if (!wake.ok() || *wake == Wake::kDeadline) return confirmed;
  }
}

// KillAgent's cleanup for an agent on another machine: its node stops it
// (woken by the termination's commit) and the exit record confirms it.
json AwaitNodeStop(const registry::Registry& registry, const std::string& task_id,
                   const AgentRecord& agent, std::chrono::milliseconds grace) {
  auto start = MonotonicClock::now();
  bool confirmed = !AwaitNodeStops(registry, task_id, {agent.id},
                                   MonotonicClock::now() + grace + kNodeStopPatience)
                        .empty();
  return json{{"node", agent.node->name},
              {"stopped_by_node", confirmed},
              {"all_exited", confirmed},
              {"elapsed_ms", MillisecondsSince(start)}};
}

}  // namespace

void RequestStop(const std::vector<AgentRecord>& agents) {
  for (const AgentRecord& agent : agents) {
    if (!RunsOnThisMachine(agent)) continue;  // its node stops it (the mark woke it)
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
  if (!RunsOnThisMachine(agent)) {  // its pids are another machine's
    return json{{"node", agent.node->name}, {"signalled", 0}, {"all_exited", false}};
  }
  size_t found = ProcessesFound(task_id, agent, ProcessTable::Read());
  // Tell the supervisor first: it enforces the same deadline even if this
  // process dies before it (an MCP client may close us at any moment).
  RequestStop({agent});
  json cleanup = StagedKill(task_id, agent, grace, found, ProcessTable::Read());

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
      registry::RegistryFor(stores, workspace)->Terminate(task_id, agent_id, termination);
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
  // will not finish soon: no point waiting for it. An agent on another
  // machine is stopped there, by its node.
  if (!RunsOnThisMachine(agent)) {
    result["cleanup"] =
        recorded ? AwaitNodeStop(*registry::RegistryFor(stores, workspace), task_id, agent, grace)
                 : json{{"node", agent.node->name}, {"stopped_by_node", false}};
    if (recorded && !result["cleanup"]["stopped_by_node"].get<bool>()) {
      result["warning"] = "node " + agent.node->name + " has not confirmed the stop within " +
                          std::to_string((grace + kNodeStopPatience).count() / 1000) +
                          " s: check that `herd node` runs there (`herd node list`); its agents "
                          "are stopped by the node itself, or marked lost when its lease expires";
    }
  } else {
    result["cleanup"] = StopAgentProcesses(task_id, agent, grace,
                                           recorded ? AwaitSupervisor::kYes : AwaitSupervisor::kNo);
  }
  if (!recorded) {
    result["warning"] = UnrecordedKillWarning(marked, workspace, task_id, agent, result["cleanup"]);
  } else if (changed && !not_durable.empty()) {
    result["warning"] =
        "the termination is recorded but may not survive a power loss: " + not_durable;
  }
  return result;
}

namespace {

// Runs work(0) ... work(count - 1) on up to kParallelStops threads, the
// caller's included, and returns once all are done.
void ForEachInParallel(size_t count, const std::function<void(size_t)>& work) {
  std::atomic<size_t> next{0};
  auto drain = [&] {
    for (size_t i = next++; i < count; i = next++) work(i);
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < std::min(count, kParallelStops); ++t) {
    try {
      threads.emplace_back(drain);
    } catch (const std::system_error& error) {
      // Fewer threads only make it slower: the ones running do it all.
      spdlog::warn("stopping with {} threads: {}", threads.size() + 1, error.what());
      break;
    }
  }
  drain();
  for (std::thread& thread : threads) thread.join();
}

// How many of the agents' supervisors still run (recording the end).
int SupervisorsRunning(const std::vector<AgentRecord>& agents) {
  return static_cast<int>(std::count_if(agents.begin(), agents.end(), [](const AgentRecord& agent) {
    return agent.supervisor.pid != getpid() && IsAlive(agent.supervisor);
  }));
}

// Stops the processes of `agents` (see the top of killer.h) and adds up
// what happened in `result`.
void StopAll(const registry::Registry* registry, const std::string& task_id,
             const std::vector<AgentRecord>& agents, std::chrono::milliseconds grace,
             TaskStopResult* result) {
  std::vector<AgentRecord> started;
  std::vector<std::string> elsewhere;  // stopped by their nodes
  for (const AgentRecord& agent : agents) {
    if (!RunsOnThisMachine(agent)) {
      if (agent.process.recorded())
        elsewhere.push_back(agent.id);
      else
        ++result->starting;  // its supervisor stops it when it records the start
    } else if (agent.process.recorded()) {
      started.push_back(agent);
    } else {
      ++result->starting;  // its supervisor stops it when it records the start
    }
  }
  // One pass over /proc for every agent's group, before and after the request.
  ProcessTable before = ProcessTable::Read();
  std::vector<size_t> found(started.size());
  ForEachInParallel(started.size(),
                    [&](size_t i) { found[i] = ProcessesFound(task_id, started[i], before); });
  // Every supervisor is asked before any grace starts: they all run at once.
  RequestStop(started);
  ProcessTable after = ProcessTable::Read();
  std::vector<json> cleanups(started.size());
  ForEachInParallel(started.size(), [&](size_t i) {
    cleanups[i] = StagedKill(task_id, started[i], grace, found[i], after);
  });
  for (size_t i = 0; i < started.size(); ++i) {
    if (!cleanups[i].value("all_exited", false)) {
      result->failures.push_back(
          {started[i].id, "processes still run after SIGKILL; run `herd kill " + task_id + " " +
                              started[i].id + "` again, or `herd doctor`"});
    } else if (cleanups[i].value("signalled", 0) == 0) {
      ++result->already_exited;
    } else {
      ++result->stopped;
    }
  }
  // Not waited for: each records its agent's exit in a transaction of its
  // own, in turn, and the status they record (terminated) is final already.
  result->supervisors_recording = SupervisorsRunning(started);
  if (elsewhere.empty() || registry == nullptr) return;
  std::set<std::string> confirmed = AwaitNodeStops(
      *registry, task_id, elsewhere, MonotonicClock::now() + grace + kNodeStopPatience);
  for (const std::string& id : elsewhere) {
    if (confirmed.count(id) != 0) {
      ++result->stopped;
    } else {
      result->failures.push_back(
          {id,
           "its node has not confirmed the stop: check that `herd node` runs there (`herd "
           "node list`); it is marked lost when the node's lease expires"});
    }
  }
}

// Records the stop (registry::Registry::StopTask) and returns the agents to
// stop. When the registry cannot be written, takes them from the last
// committed version instead and says so in `result`.
Result<std::vector<AgentRecord>> RecordStop(const registry::RegistryStores& stores,
                                            const registry::Workspace& workspace,
                                            const std::string& task_id, const std::string& reason,
                                            std::chrono::milliseconds grace, TaskStopResult* result,
                                            Status* unrecorded) {
  std::unique_ptr<const registry::Registry> opened = registry::RegistryFor(stores, workspace);
  const registry::Registry& registry = *opened;
  Result<registry::StopOutcome> outcome =
      registry.StopTask(task_id, reason, static_cast<int>(grace.count()));
  std::vector<AgentRecord> to_stop;
  if (outcome.ok()) {
    result->stop = outcome->stop;
    result->already_stopped = outcome->already_stopped;
    result->marked = static_cast<int>(outcome->marked.size());
    if (!outcome->warning.empty()) {
      result->warning =
          "the stop is recorded but may not survive a power loss: " + outcome->warning;
    }
    to_stop = std::move(outcome->marked);
    to_stop.insert(to_stop.end(), outcome->unfinished.begin(), outcome->unfinished.end());
    return to_stop;
  }
  if (!store::IsUnwritable(outcome.status())) return outcome.status();
  // The processes are stopped all the same, from the last committed version.
  Result<registry::SharedTask> last = registry.ReadTask(task_id);
  if (!last.ok()) {
    return outcome.status().WithContext("nothing was stopped: the last committed version of " +
                                        workspace.TaskRegistryPath(task_id) +
                                        " cannot be read either (" + last.status().message() +
                                        "), and the registry cannot be written");
  }
  *unrecorded = outcome.status();
  result->registry_recorded = false;
  const registry::TaskRecord& task = (*last)->task;
  result->stop = task.stopped.value_or(registry::TaskStop{reason, NowIso8601()});
  for (const AgentRecord& agent : task.agents) {
    bool active = registry::IsActiveStatus(agent.status);
    result->marked += active ? 1 : 0;
    if (active || (!agent.exit && agent.phase != "lost")) to_stop.push_back(agent);
  }
  return to_stop;
}

}  // namespace

json TaskStopResult::ToJson() const {
  json listed = json::array();
  for (size_t i = 0; i < failures.size() && i < kMaxListedStopFailures; ++i) {
    listed.push_back({{"agent_id", failures[i].agent_id}, {"error", failures[i].error}});
  }
  json reply = {{"task_id", task_id},
                {"status", "stopped"},
                {"reason", stop.reason},
                {"stopped_at", stop.at},
                {"already_stopped", already_stopped},
                {"registry_recorded", registry_recorded},
                {"marked", marked},
                {"stopped", stopped},
                {"already_exited", already_exited},
                {"starting", starting},
                {"supervisors_recording", supervisors_recording},
                {"failed", failures.size()},
                {"failures", std::move(listed)},
                {"elapsed_ms", elapsed_ms}};
  if (!warning.empty()) reply["warning"] = warning;
  return reply;
}

Result<TaskStopResult> StopTask(const registry::RegistryStores& stores,
                                const registry::Workspace& workspace, const std::string& task_id,
                                const std::string& reason, std::chrono::milliseconds grace) {
  HERD_RETURN_IF_ERROR(registry::ValidateTaskId(task_id));
  auto start = MonotonicClock::now();
  TaskStopResult result;
  result.task_id = task_id;
  Status unrecorded;
  HERD_ASSIGN_OR_RETURN(
      std::vector<AgentRecord> to_stop,
      RecordStop(stores, workspace, task_id, reason, grace, &result, &unrecorded));
  // Agents on other machines: only a recorded stop reaches their nodes.
  std::unique_ptr<const registry::Registry> registry = registry::RegistryFor(stores, workspace);
  StopAll(result.registry_recorded ? registry.get() : nullptr, task_id, to_stop, grace, &result);
  if (!result.registry_recorded) {
    result.warning = "the registry could not be written (" + unrecorded.ToString() +
                     "), so the stop is not recorded: the agents' processes were " +
                     (result.failures.empty() ? "stopped" : "signalled") + ", but " +
                     workspace.TaskRegistryPath(task_id) +
                     " may still list them as active and new deploys are not refused. Free "
                     "space on the disk (or fix what the error names), then run `herd kill " +
                     task_id + " --all` again to record the stop.";
  }
  result.elapsed_ms = static_cast<long long>(MillisecondsSince(start));
  return result;
}

}  // namespace herd::agents
