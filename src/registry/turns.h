// Conversations: follow-up messages and the turns they begin.
//
// An agent's first turn is its deploy. A follow-up message (herd send,
// send_agent_message) either begins a new turn of the same agent at once or
// waits in the agent's queue, durable in its registry entry:
//
// - To an agent whose last turn has ended and whose exit is recorded, it
//   begins the next turn now: the ended turn's fields are archived in
//   `turns`, the entry becomes active again ("running", phase "starting")
//   with the same id, files and session, and the caller starts a process
//   for it. This is the one way an ended agent becomes active again, and it
//   passes the same admission rules as a deploy: a stopped task, a passed
//   budget or a full max_concurrent refuse it.
// - To an agent that is running (or has ended but whose process has not
//   exited yet), it is queued. When the supervisor records the turn's exit,
//   the same transaction begins the next turn with the first queued message
//   (BeginQueuedTurn), and the supervisor runs it. An interrupting message
//   goes to the front of the queue and the caller asks the supervisor to
//   stop the current turn (its number is in the signal, so a later turn is
//   never stopped by mistake).
// - A stop that is not an interrupt (herd kill, stop_task, a timeout, a
//   budget, doctor's "process lost") drops the queue: each dropped message
//   is kept in `undelivered_messages` with the reason.
//
// The agent's usage (task_registry.h AgentUsage) is the sum of its turns.
// Pure functions on the typed task, applied inside one store transaction.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "registry/records.h"
#include "util/status.h"

namespace herd::registry {

// More queued messages than this are refused: an agent's entry is rewritten
// by every transaction of its task.
inline constexpr size_t kMaxQueuedMessages = 20;
// Undelivered messages kept per agent (the oldest go first).
inline constexpr size_t kMaxUndeliveredMessages = 20;

// What accepting a message did.
struct MessageOutcome {
  enum class Delivery { kQueued, kNewTurn };
  Delivery delivery = Delivery::kQueued;
  int turn = 1;               // kNewTurn: the turn it began; kQueued: the running turn
  size_t queue_position = 0;  // kQueued: 1 = next
  // kQueued with interrupt: the turn to stop, when its supervisor is known
  // and the turn has started; 0 = nothing to signal.
  int interrupt_turn = 0;
  AgentRecord agent;    // the entry after
  std::string warning;  // set when the commit is visible but not durable
};

// Accepts `message` for agent `agent_id` of `task` (see the top of this
// file). NotFound for an unknown agent; Refused (saying what to do) for a
// stopped task, a passed budget, a full queue or, for a new turn, a full
// max_concurrent. A new turn keeps the agent's HERD_PORT unless `ports_held`
// (ports active agents elsewhere on the machine hold) has it; then it gets
// the first free of `port_candidates`, or none.
Result<MessageOutcome> AcceptMessage(TaskRecord& task, const std::string& agent_id,
                                     const AgentMessage& message, const std::string& timestamp,
                                     const std::vector<int>& port_candidates = {},
                                     const std::set<int>& ports_held = {});

// A turn that BeginQueuedTurn began.
struct NextTurn {
  int number = 0;
  AgentMessage message;
  std::string session_id;  // the agent's, to resume
};

// After the exit of agent `agent_id`'s current turn is recorded (in the same
// transaction): begins its next turn with the first queued message, keeping
// its supervisor, if it has one and the task allows it; messages that cannot
// run are moved to undelivered_messages with the reason.
std::optional<NextTurn> BeginQueuedTurn(TaskRecord& task, const std::string& agent_id,
                                        const std::string& timestamp);

// Moves every queued message of `agent` to its undelivered_messages.
void DropQueuedMessages(AgentRecord& agent, const std::string& reason,
                        const std::string& timestamp);

// Undoes AcceptMessage's new turn `turn` when its process could not be
// started: the ended turn is restored as it was, and the message is kept in
// undelivered_messages with `reason`. Does nothing if the agent is no
// longer at that turn or the turn has started.
void AbandonTurn(TaskRecord& task, const std::string& agent_id, int turn, const std::string& reason,
                 const std::string& timestamp);

}  // namespace herd::registry
