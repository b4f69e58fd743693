#include "registry/transitions.h"

#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>

#include "registry/task_registry.h"

namespace herd::registry {

namespace {

std::mutex observer_mutex;
// Shared so a delivery in progress keeps the observer it started with.
std::shared_ptr<const TransitionObserver> installed_observer;

std::string EventOf(const AgentRecord& agent) {
  if (agent.status == "completed") return "agent_completed";
  if (agent.status == "terminated") {
    return agent.stopped_by_limit ? "agent_limit_hit" : "agent_killed";
  }
  return "agent_failed";  // error, failed (and doctor's "process lost")
}

std::string ReasonOf(const AgentRecord& agent) {
  if (agent.stopped_by_limit && !agent.stopped_by_limit->message.empty()) {
    return agent.stopped_by_limit->message;
  }
  for (const std::optional<std::string>* reason :
       {&agent.termination_reason, &agent.error, &agent.ended_reason}) {
    if (*reason && !(*reason)->empty()) return **reason;
  }
  return "";
}

AgentTransition TransitionOf(const TaskRecord& task, const AgentRecord& agent,
                             const std::string& old_status) {
  AgentTransition transition;
  transition.event = EventOf(agent);
  transition.task_id = task.task_id;
  transition.task_directory = task.workspace;
  transition.agent_id = agent.id;
  transition.old_status = old_status;
  transition.new_status = agent.status;
  transition.reason = ReasonOf(agent);
  if (agent.stopped_by_limit) transition.limit = agent.stopped_by_limit->limit;
  if (agent.exit) {
    transition.exit_code = agent.exit->exit_code;
    transition.exit_signal = agent.exit->exit_signal;
  }
  transition.log_file = agent.tracked_files.log_file;
  transition.notify_command = task.notify_command;
  transition.at = agent.last_update;
  return transition;
}

}  // namespace

json AgentTransition::ToJson() const {
  json object = json::object();
  object["event"] = event;
  object["task_id"] = task_id;
  object["task_directory"] = task_directory;
  object["agent_id"] = agent_id;
  object["old_status"] = old_status;
  object["new_status"] = new_status;
  object["reason"] = reason;
  object["limit"] = limit.empty() ? json(nullptr) : json(limit);
  object["exit_code"] = exit_code ? json(*exit_code) : json(nullptr);
  object["exit_signal"] = exit_signal ? json(*exit_signal) : json(nullptr);
  object["log_file"] = log_file;
  object["at"] = at;
  return object;
}

StatusesBefore StatusesOf(const TaskRecord& task) {
  StatusesBefore before;
  before.id_and_status.reserve(task.agents.size());
  for (const AgentRecord& agent : task.agents) {
    before.id_and_status.emplace_back(agent.id, agent.status);
  }
  return before;
}

std::vector<AgentTransition> TransitionsBetween(const StatusesBefore& before,
                                                const TaskRecord& after) {
  std::unordered_map<std::string_view, std::string_view> old_status_of;
  old_status_of.reserve(before.id_and_status.size());
  for (const auto& [id, status] : before.id_and_status) old_status_of.emplace(id, status);
  std::vector<AgentTransition> transitions;
  for (const AgentRecord& agent : after.agents) {
    auto found = old_status_of.find(agent.id);
    if (found == old_status_of.end()) continue;  // admitted by this transaction
    std::string old_status(found->second);
    if (IsActiveStatus(old_status) && IsTerminalStatus(agent.status)) {
      transitions.push_back(TransitionOf(after, agent, old_status));
    }
  }
  return transitions;
}

void SetTransitionObserver(TransitionObserver observer) {
  std::lock_guard<std::mutex> guard(observer_mutex);
  installed_observer =
      observer ? std::make_shared<const TransitionObserver>(std::move(observer)) : nullptr;
}

void ObserveTransitions(const std::vector<AgentTransition>& transitions) {
  if (transitions.empty()) return;
  std::shared_ptr<const TransitionObserver> observer;
  {
    std::lock_guard<std::mutex> guard(observer_mutex);
    observer = installed_observer;
  }
  if (observer) (*observer)(transitions);
}

}  // namespace herd::registry
