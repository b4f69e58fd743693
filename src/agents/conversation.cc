#include "agents/conversation.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

#include "agents/agent_worktree.h"
#include "agents/backend.h"
#include "agents/launcher.h"
#include "agents/process.h"
#include "registry/file_names.h"
#include "registry/global_index.h"
#include "registry/ids.h"
#include "registry/registries.h"
#include "registry/task_registry.h"
#include "store/file_system.h"
#include "util/clock.h"
#include "util/utf8.h"

namespace herd::agents {
namespace {

using registry::MessageOutcome;

// Refuses a message the agent could never run.
Status CheckResumable(const registry::AgentRecord& agent) {
  HERD_RETURN_IF_ERROR(CheckBackendCanResume(agent.backend));
  if (agent.backend == "claude" && agent.session_id.empty()) {
    return Status::Refused("agent " + agent.id +
                           " was deployed before herd fixed Claude session ids, so its "
                           "conversation cannot be resumed: deploy a new agent with the "
                           "follow-up in its prompt");
  }
  if (agent.backend == "codex" && agent.session_id.empty() && agent.exit) {
    return Status::Refused("agent " + agent.id +
                           " (codex) reported no session id (no thread.started event), so its "
                           "conversation cannot be resumed: deploy a new agent with the "
                           "follow-up in its prompt");
  }
  return Status::Ok();
}

}  // namespace

bool SignalTurnInterrupt(const registry::AgentRecord& agent, int turn) {
  int pidfd = OpenPidfd(agent.supervisor);
  if (pidfd < 0) return false;
  bool sent = SignalPidfdWithValue(pidfd, SIGUSR1, turn);
  close(pidfd);
  return sent;
}

nlohmann::json SentMessage::ToJson() const {
  nlohmann::json reply = {
      {"task_id", task_id},   {"agent_id", agent_id}, {"message_id", message_id},
      {"delivery", delivery}, {"turn", turn},         {"status", agent.status},
      {"note", note}};
  if (delivery == "queued") {
    reply["queue_position"] = queue_position;
    reply["interrupt_sent"] = interrupt_sent;
  }
  if (!warning.empty()) reply["warning"] = warning;
  return reply;
}

Result<SentMessage> SendMessage(const registry::RegistryStores& stores,
                                const registry::Workspace& workspace, const FollowUp& follow_up) {
  HERD_RETURN_IF_ERROR(registry::ValidateTaskId(follow_up.task_id));
  HERD_RETURN_IF_ERROR(registry::ValidateAgentId(follow_up.agent_id));
  if (follow_up.message.empty()) {
    return Status::InvalidArgument("the message is empty: say what the agent should do next");
  }
  if (follow_up.message.size() > kMaxFollowUpMessageBytes) {
    return Status::InvalidArgument(
        "the message is " + std::to_string(follow_up.message.size()) +
        " bytes, over the limit of " + std::to_string(kMaxFollowUpMessageBytes) +
        ": put the details in a file in the project and name it in the message");
  }
  std::unique_ptr<const registry::Registry> opened = registry::RegistryFor(stores, workspace);
  const registry::Registry& registry = *opened;
  HERD_ASSIGN_OR_RETURN(registry::SharedTask task, registry.ReadTask(follow_up.task_id));
  const registry::AgentRecord* agent = task->task.FindAgent(follow_up.agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + follow_up.agent_id + " is not part of task " +
                            follow_up.task_id + ": run `herd status " + follow_up.task_id +
                            "` to list its agents");
  }
  HERD_RETURN_IF_ERROR(CheckResumable(*agent));
  // An agent on another machine gets the text in the record; its node's
  // supervisor writes it to a file there, and its node starts a new turn.
  bool elsewhere = !RunsOnThisMachine(*agent);

  // The text first, outside any lock; the registry refers to it.
  registry::AgentMessage message;
  message.id = registry::NewMessageId();
  message.preview = Utf8Prefix(follow_up.message, registry::kMessagePreviewLength);
  message.sent_at = NowIso8601();
  message.interrupt = follow_up.interrupt;
  if (elsewhere) {
    message.text = follow_up.message;
  } else {
    message.text_file = workspace.MessagePath(follow_up.task_id, follow_up.agent_id, message.id);
    HERD_RETURN_IF_ERROR(store::ReplaceFileDurably(store::FileSystem::Default(), message.text_file,
                                                   follow_up.message));
  }
  // A new turn on another machine is started by its node: wait for it
  // from before the commit.
  std::unique_ptr<registry::CommitWatch> watch;
  if (elsewhere) {
    HERD_ASSIGN_OR_RETURN(watch, registry.WatchCommits(follow_up.task_id));
  }

  Result<std::vector<int>> ports = PortCandidates(follow_up.task_id);
  Result<MessageOutcome> accepted =
      ports.ok() ? registry.SendMessage(follow_up.task_id, follow_up.agent_id, message,
                                        registry::GlobalRunningCapFromEnvironment(), *ports)
                 : Result<MessageOutcome>(ports.status());
  if (!accepted.ok()) {
    if (!elsewhere) std::remove(message.text_file.c_str());  // nothing refers to it
    return accepted.status();
  }
  SentMessage sent;
  sent.task_id = follow_up.task_id;
  sent.agent_id = follow_up.agent_id;
  sent.message_id = message.id;
  sent.turn = accepted->turn;
  sent.agent = accepted->agent;
  sent.warning = accepted->warning;
  if (accepted->delivery == MessageOutcome::Delivery::kNewTurn) {
    sent.delivery = "new_turn";
    if (elsewhere) {
      HERD_ASSIGN_OR_RETURN(sent.agent, AwaitPlacedStart(registry, *watch, follow_up.task_id,
                                                         follow_up.agent_id, accepted->turn));
    } else {
      HERD_ASSIGN_OR_RETURN(sent.agent, StartFollowUpTurn(stores, workspace, follow_up.task_id,
                                                          follow_up.agent_id, accepted->turn));
    }
    sent.note = "turn " + std::to_string(sent.turn) +
                " started; wait for it with wait_for_agents (herd wait)";
    return sent;
  }
  sent.delivery = "queued";
  sent.queue_position = accepted->queue_position;
  if (accepted->interrupt_turn > 0 && elsewhere) {
    // Its node, woken by this commit, signals the turn's supervisor there.
    sent.note =
        "turn " + std::to_string(sent.turn) + " runs on node " + accepted->agent.node->name +
        ", which stops it now; this message runs next, as turn " + std::to_string(sent.turn + 1);
    return sent;
  }
  if (accepted->interrupt_turn > 0) {
    sent.interrupt_sent = SignalTurnInterrupt(accepted->agent, accepted->interrupt_turn);
  }
  if (sent.interrupt_sent) {
    sent.note = "turn " + std::to_string(sent.turn) +
                " is being stopped; this message runs next, as turn " +
                std::to_string(sent.turn + 1);
  } else {
    sent.note = "queued at position " + std::to_string(sent.queue_position) +
                "; it runs when turn " + std::to_string(sent.turn) + " ends" +
                (follow_up.interrupt ? " (the turn had not started or had ended, so nothing "
                                       "was interrupted)"
                                     : "");
  }
  return sent;
}

}  // namespace herd::agents
