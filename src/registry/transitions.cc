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

// For an agent's entry or one of its ended turns (the same fields).
template <typename EntryOrTurn>
std::string EventOf(const EntryOrTurn& agent) {
  if (agent.status == "completed") return "agent_completed";
  if (agent.status == "terminated") {
    return agent.stopped_by_limit ? "agent_limit_hit" : "agent_killed";
  }
  return "agent_failed";  // error, failed (and doctor's "process lost")
}

template <typename EntryOrTurn>
std::string ReasonOf(const EntryOrTurn& agent) {
  if (agent.stopped_by_limit && !agent.stopped_by_limit->message.empty()) {
    return agent.stopped_by_limit->message;
  }
  for (const std::optional<std::string>* reason :
       {&agent.termination_reason, &agent.error, &agent.ended_reason}) {
    if (*reason && !(*reason)->empty()) return **reason;
  }
  return "";
}

// `ended` is the agent's entry, or the turn of it that ended when a queued
// message began the next one in the same transaction.
template <typename EntryOrTurn>
AgentTransition TransitionOf(const TaskRecord& task, const AgentRecord& agent,
                             const EntryOrTurn& ended, int turn, const std::string& old_status) {
  AgentTransition transition;
  transition.event = EventOf(ended);
  transition.task_id = task.task_id;
  transition.task_directory = task.workspace;
  transition.agent_id = agent.id;
  transition.turn = turn;
  transition.old_status = old_status;
  transition.new_status = ended.status;
  transition.reason = ReasonOf(ended);
  if (ended.stopped_by_limit) transition.limit = ended.stopped_by_limit->limit;
  if (ended.exit) {
    transition.exit_code = ended.exit->exit_code;
    transition.exit_signal = ended.exit->exit_signal;
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
  object["turn"] = turn;
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
  before.reserve(task.agents.size());
  for (const AgentRecord& agent : task.agents) {
    before.push_back(AgentState{agent.id, agent.status, agent.turn});
  }
  return before;
}

std::vector<AgentTransition> TransitionsBetween(const StatusesBefore& before,
                                                const TaskRecord& after) {
  std::unordered_map<std::string_view, const AgentState*> state_of;
  state_of.reserve(before.size());
  for (const AgentState& state : before) state_of.emplace(state.id, &state);
  std::vector<AgentTransition> transitions;
  for (const AgentRecord& agent : after.agents) {
    auto found = state_of.find(agent.id);
    if (found == state_of.end()) continue;  // admitted by this transaction
    const AgentState& old = *found->second;
    if (agent.turn > old.turn && agent.turns.size() >= static_cast<size_t>(old.turn)) {
      // The turn ended and a queued message began the next: the ended
      // turn's transition, once.
      const TurnRecord& ended = agent.turns[static_cast<size_t>(old.turn) - 1];
      if (IsActiveStatus(old.status)) {
        AgentTransition transition = TransitionOf(after, agent, ended, old.turn, old.status);
        transition.event = "agent_turn_finished";
        transitions.push_back(std::move(transition));
      }
    } else if (agent.turn == old.turn && IsActiveStatus(old.status) &&
               IsTerminalStatus(agent.status)) {
      transitions.push_back(TransitionOf(after, agent, agent, agent.turn, old.status));
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
