#include "registry/turns.h"

#include "registry/task_registry.h"

namespace herd::registry {
namespace {

TurnRecord ArchiveTurn(const AgentRecord& agent) {
  TurnRecord turn;
  turn.number = agent.turn;
  turn.message = agent.turn_message;
  turn.started_at = agent.turn_started_at.empty() ? agent.started_at : agent.turn_started_at;
  turn.status = agent.status;
  turn.progress = agent.progress;
  turn.completed_at = agent.completed_at;
  turn.ended_reason = agent.ended_reason;
  turn.error = agent.error;
  turn.terminated_at = agent.terminated_at;
  turn.termination_reason = agent.termination_reason;
  turn.stopped_by_limit = agent.stopped_by_limit;
  turn.process = agent.process;
  turn.supervisor = agent.supervisor;
  turn.exit = agent.exit;
  turn.result = agent.result;
  turn.usage = agent.usage;
  return turn;
}

void RestoreTurn(AgentRecord& agent, const TurnRecord& turn) {
  agent.turn = turn.number;
  agent.turn_message = turn.message;
  agent.turn_started_at = turn.number > 1 ? turn.started_at : "";
  agent.status = turn.status;
  agent.phase = "exited";
  agent.progress = turn.progress;
  agent.completed_at = turn.completed_at;
  agent.ended_reason = turn.ended_reason;
  agent.error = turn.error;
  agent.terminated_at = turn.terminated_at;
  agent.termination_reason = turn.termination_reason;
  agent.stopped_by_limit = turn.stopped_by_limit;
  agent.process = turn.process;
  agent.supervisor = turn.supervisor;
  agent.exit = turn.exit;
  agent.result = turn.result;
  agent.usage = turn.usage;
}

// Archives the ended turn and makes `message` the agent's current one.
// `keep_supervisor`: the supervisor that ran the ended turn runs this one.
void BeginTurn(AgentRecord& agent, const AgentMessage& message, bool keep_supervisor,
               const std::string& timestamp) {
  agent.turns.push_back(ArchiveTurn(agent));
  agent.turn += 1;
  agent.turn_message = message;
  agent.turn_message->interrupt = false;
  agent.turn_started_at = timestamp;
  agent.status = "running";
  agent.phase = "starting";
  agent.progress = 0;
  agent.last_update = timestamp;
  agent.completed_at.reset();
  agent.ended_reason.reset();
  agent.error.reset();
  agent.terminated_at.reset();
  agent.termination_reason.reset();
  agent.lost_detail.reset();
  agent.stopped_by_limit.reset();
  agent.kill_grace_ms.reset();
  agent.process = ProcessIdentity{};
  if (!keep_supervisor) agent.supervisor = ProcessIdentity{};
  agent.exit.reset();
  agent.result = nullptr;
  agent.usage = nullptr;
}

void KeepUndelivered(AgentRecord& agent, AgentMessage message, const std::string& reason,
                     const std::string& timestamp) {
  message.undelivered_reason = reason;
  message.undelivered_at = timestamp;
  agent.undelivered_messages.push_back(std::move(message));
  while (agent.undelivered_messages.size() > kMaxUndeliveredMessages) {
    agent.undelivered_messages.erase(agent.undelivered_messages.begin());
  }
}

// Why the task takes no new turn now, or "".
std::string TaskRefusesTurns(const TaskRecord& task) {
  if (task.stopped) {
    return "task " + task.task_id + " was stopped (" + task.stopped->reason +
           "); it takes no new turns: create a new task";
  }
  if (task.budget_exceeded) {
    return task.budget_exceeded->message.empty()
               ? "task " + task.task_id + " has used up its budget (" +
                     task.budget_exceeded->limit + "); raise it with `herd task limits`"
               : task.budget_exceeded->message;
  }
  return "";
}

// Why max_concurrent leaves no room for `agent` to run again, or "".
std::string NoRoomFor(const TaskRecord& task, const AgentRecord& agent) {
  int others = 0;
  for (const AgentRecord& other : task.agents) {
    if (&other != &agent && IsActiveStatus(other.status)) ++others;
  }
  if (others < task.limits.max_concurrent) return "";
  return "task " + task.task_id + " already runs " + std::to_string(others) +
         " agents (max_concurrent " + std::to_string(task.limits.max_concurrent) +
         "); a new turn needs a free slot: wait for an agent to end (`herd wait`) or raise "
         "it with `herd task limits " +
         task.task_id + " --max-concurrent N`";
}

}  // namespace

Result<MessageOutcome> AcceptMessage(TaskRecord& task, const std::string& agent_id,
                                     const AgentMessage& message, const std::string& timestamp,
                                     const std::vector<int>& port_candidates,
                                     const std::set<int>& ports_held) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " + task.task_id +
                            ": run `herd status " + task.task_id + "` to list its agents");
  }
  if (std::string refusal = TaskRefusesTurns(task); !refusal.empty()) {
    return Status::Refused(refusal);
  }
  MessageOutcome outcome;
  // Still running, or ended but not exited: its supervisor will record the
  // exit, and that transaction begins the next turn.
  bool exit_pending = !agent->exit && agent->phase != "lost";
  if (IsActiveStatus(agent->status) || exit_pending) {
    if (agent->message_queue.size() >= kMaxQueuedMessages) {
      return Status::Refused("agent " + agent_id + " already has " +
                             std::to_string(agent->message_queue.size()) +
                             " queued messages: wait for its turns to run (`herd wait`)");
    }
    if (message.interrupt) {
      agent->message_queue.insert(agent->message_queue.begin(), message);
      outcome.queue_position = 1;
      bool started = agent->phase == "running" && agent->supervisor.recorded();
      if (IsActiveStatus(agent->status) && started) outcome.interrupt_turn = agent->turn;
    } else {
      agent->message_queue.push_back(message);
      outcome.queue_position = agent->message_queue.size();
    }
    outcome.delivery = MessageOutcome::Delivery::kQueued;
    outcome.turn = agent->turn;
    agent->last_update = timestamp;
    outcome.agent = *agent;
    return outcome;
  }
  if (std::string full = NoRoomFor(task, *agent); !full.empty()) return Status::Refused(full);
  BeginTurn(*agent, message, /*keep_supervisor=*/false, timestamp);
  // Ended, its port was free for others: keep it only if no one took it.
  if (agent->port && ports_held.count(*agent->port)) {
    agent->port = FreePort(task, agent_id, port_candidates, ports_held);
  }
  RecomputeCounts(task);
  outcome.delivery = MessageOutcome::Delivery::kNewTurn;
  outcome.turn = agent->turn;
  outcome.agent = *agent;
  return outcome;
}

std::optional<NextTurn> BeginQueuedTurn(TaskRecord& task, const std::string& agent_id,
                                        const std::string& timestamp) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr || agent->message_queue.empty() || !agent->exit) return std::nullopt;
  std::string refusal = TaskRefusesTurns(task);
  if (refusal.empty()) refusal = NoRoomFor(task, *agent);
  if (!refusal.empty()) {
    DropQueuedMessages(*agent, refusal, timestamp);
    return std::nullopt;
  }
  AgentMessage message = agent->message_queue.front();
  agent->message_queue.erase(agent->message_queue.begin());
  BeginTurn(*agent, message, /*keep_supervisor=*/true, timestamp);
  RecomputeCounts(task);
  return NextTurn{agent->turn, *agent->turn_message, agent->session_id};
}

void DropQueuedMessages(AgentRecord& agent, const std::string& reason,
                        const std::string& timestamp) {
  for (AgentMessage& message : agent.message_queue) {
    KeepUndelivered(agent, std::move(message), reason, timestamp);
  }
  agent.message_queue.clear();
}

void AbandonTurn(TaskRecord& task, const std::string& agent_id, int turn, const std::string& reason,
                 const std::string& timestamp) {
  AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr || agent->turn != turn || agent->turns.empty()) return;
  if (agent->process.recorded()) return;  // it started after all
  std::optional<AgentMessage> message = agent->turn_message;
  // What happened meanwhile (a kill while it was starting) is lost with the
  // turn that never ran; the ended turn is as it was.
  RestoreTurn(*agent, agent->turns.back());
  agent->turns.pop_back();
  agent->last_update = timestamp;
  if (message) KeepUndelivered(*agent, *message, reason, timestamp);
  DropQueuedMessages(*agent, "the turn it waited for did not start: " + reason, timestamp);
  RecomputeCounts(task);
}

}  // namespace herd::registry
