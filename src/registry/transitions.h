// Agent state transitions: what each committed task transaction changed.
//
// Every task transaction goes through UpdateTaskRecord (registry/task_store.h).
// When one commits, the agents whose status it changed from active to
// terminal (ended, failed, killed, stopped by a limit, lost), and those
// whose turn ended as a queued message began the next, are its
// transitions, and they are handed to the process's transition observer
// once, after the store's lock is released, by the process that committed
// them. A transition is committed by exactly one transaction, so each is
// observed exactly once however many processes end agents at the same
// time; a transaction that did not commit has none. (A process killed
// between its commit and the observer's return loses that delivery: the
// registry still holds the new status.)
//
// The observer is installed once at start-up (main.cc: the notification
// hook, agents/notify_hook.h); with none installed, transitions are
// dropped. The observer must not block for long: it runs in the thread
// that committed.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "registry/records.h"

namespace herd::registry {

struct AgentTransition {
  // agent_completed | agent_failed | agent_killed | agent_limit_hit |
  // agent_turn_finished (its turn ended and a queued message runs next)
  std::string event;
  std::string task_id;
  std::string task_directory;  // the task's workspace directory, as recorded
  std::string agent_id;
  int turn = 1;  // the turn that ended
  std::string old_status;
  std::string new_status;
  std::string reason;  // the error, termination reason or limit message, if any
  std::string limit;   // the limit that stopped it, for agent_limit_hit
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  std::string log_file;        // the agent's own output
  std::string notify_command;  // the task's hook command ("" = the environment's)
  std::string at;              // when it happened (the entry's last update)

  json ToJson() const;
};

// An agent's status and turn before a transaction.
struct AgentState {
  std::string id;
  std::string status;
  int turn = 1;
};
using StatusesBefore = std::vector<AgentState>;  // in agent order
StatusesBefore StatusesOf(const TaskRecord& task);

// The agents that went from active to terminal between `before` and `after`,
// and (agent_turn_finished) those whose turn ended while a queued message
// began their next turn in the same transaction.
std::vector<AgentTransition> TransitionsBetween(const StatusesBefore& before,
                                                const TaskRecord& after);

using TransitionObserver = std::function<void(const std::vector<AgentTransition>& transitions)>;

// Installs the process's observer (replacing any); an empty one removes it.
void SetTransitionObserver(TransitionObserver observer);
// Hands committed transitions to the observer, if one is installed.
void ObserveTransitions(const std::vector<AgentTransition>& transitions);

}  // namespace herd::registry
