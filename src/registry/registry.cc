#include "registry/registry.h"

#include "util/clock.h"

namespace herd::registry {

Result<EndOutcome> ApplyEnd(TaskRecord& task, const std::string& agent_id, const ExitRecord& exit,
                            const std::optional<Termination>& stop, int kill_grace_ms) {
  if (stop) {
    HERD_RETURN_IF_ERROR(MarkTerminated(task, agent_id, stop->reason, exit.ended_at, stop->limit,
                                        stop->interrupts_turn)
                             .status());
  }
  HERD_RETURN_IF_ERROR(RecordExit(task, agent_id, exit));
  std::string now = NowIso8601();
  EndOutcome outcome;
  outcome.to_stop = StopIfOverBudget(task, kill_grace_ms, now);
  outcome.next_turn = BeginQueuedTurn(task, agent_id, now);
  return outcome;
}

Result<TerminationOutcome> ApplyTermination(TaskRecord& task, const std::string& agent_id,
                                            const Termination& termination) {
  TerminationOutcome outcome;
  HERD_ASSIGN_OR_RETURN(outcome.changed, MarkTerminated(task, agent_id, termination.reason,
                                                        NowIso8601(), termination.limit));
  AgentRecord* entry = task.FindAgent(agent_id);
  if (outcome.changed && termination.kill_grace_ms) {
    entry->kill_grace_ms = *termination.kill_grace_ms;
  }
  outcome.agent = *entry;
  return outcome;
}

}  // namespace herd::registry
