// Follow-up messages: the processes behind registry/turns.h.
//
// SendMessage writes the message's text to its own file in the task
// (durably, before anything refers to it), then accepts it in one registry
// transaction (Registry::SendMessage) and acts on the outcome outside the
// lock:
//   - a new turn of an agent that had ended: starts its supervisor for that
//     turn and waits on the handshake as a deploy does (StartFollowUpTurn);
//     if it does not start, the turn is undone and the error says why;
//   - a queued message with interrupt: SIGUSR1 to the agent's supervisor
//     through a pidfd of its recorded identity, with the running turn's
//     number attached, so only that turn is stopped (agents/supervisor.h);
//   - a queued message: nothing; the supervisor runs it when the turn ends.
// A refused message leaves nothing behind: its file is removed again.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "registry/records.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::agents {

// A message larger than this is refused: it is a prompt, not a file.
inline constexpr size_t kMaxFollowUpMessageBytes = 1024 * 1024;

struct FollowUp {
  std::string task_id;
  std::string agent_id;
  std::string message;
  bool interrupt = false;  // stop the running turn first
};

// What happened to a message (send_agent_message's reply).
struct SentMessage {
  std::string task_id;
  std::string agent_id;
  std::string message_id;
  std::string delivery;  // "new_turn" | "queued"
  int turn = 1;          // new_turn: the turn it began; queued: the turn running
  size_t queue_position = 0;
  bool interrupt_sent = false;  // SIGUSR1 reached the supervisor
  std::string note;             // for people and models: what happens next
  registry::AgentRecord agent;  // the entry after
  std::string warning;          // committed but maybe not durable

  nlohmann::json ToJson() const;
};

Result<SentMessage> SendMessage(const registry::RegistryStores& stores,
                                const registry::Workspace& workspace, const FollowUp& follow_up);

// Asks the supervisor of `agent` (on this machine) to stop turn `turn`:
// SIGUSR1 with the number, through a pidfd of its recorded identity.
// Whether the signal was sent. (A node's daemon does this for messages
// sent from other machines.)
bool SignalTurnInterrupt(const registry::AgentRecord& agent, int turn);

}  // namespace herd::agents
