// Tests for follow-up messages and turns (registry/turns.h): a message to
// an ended agent begins a new turn and archives the old one; a message to a
// running agent is queued and begins the next turn when the exit is
// recorded; stops drop the queue into undelivered_messages; an abandoned
// turn restores what was; usage adds up over turns; the notification
// transitions see each ended turn once.
#include "registry/turns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "registry/task_registry.h"
#include "registry/transitions.h"

namespace herd::registry {
namespace {

using ::testing::HasSubstr;

constexpr char kNow[] = "2026-12-01T10:00:00.000000Z";
constexpr char kLater[] = "2026-12-01T10:05:00.000000Z";

TaskRecord NewTaskWith(int max_concurrent = 20) {
  TaskSpec spec;
  spec.description = "a task for turns";
  spec.limits.max_concurrent = max_concurrent;
  return NewTask("TASK-20261201-100000-0123abcd", spec, "/tmp/base");
}

void Admit(TaskRecord& task, const std::string& agent_id) {
  AdmissionRequest request;
  request.agent_id = agent_id;
  request.type = "worker";
  request.prompt = "first";
  request.backend = "command";
  Result<AgentRecord> admitted = AdmitAgent(task, request);
  ASSERT_TRUE(admitted.ok()) << admitted.status().ToString();
  ASSERT_TRUE(RecordStart(task, agent_id, {100, 1000}, {99, 990}).ok());
}

void Exit(TaskRecord& task, const std::string& agent_id, int code, long long tokens) {
  ExitRecord exit;
  exit.exit_code = code;
  exit.ended_at = kNow;
  exit.usage = {{"input_tokens", tokens}, {"output_tokens", 0}};
  ASSERT_TRUE(RecordExit(task, agent_id, exit).ok());
}

AgentMessage Message(const std::string& id, bool interrupt = false) {
  AgentMessage message;
  message.id = id;
  message.text_file = "/tmp/base/task/prompts/" + id + ".txt";
  message.preview = "do " + id;
  message.sent_at = kNow;
  message.interrupt = interrupt;
  return message;
}

TEST(TurnsTest, ANewTurnKeepsItsPortUnlessAnotherActiveAgentTookIt) {
  TaskRecord kept = NewTaskWith();
  Admit(kept, "a");
  kept.FindAgent("a")->port = 24001;
  Exit(kept, "a", 0, 10);
  ASSERT_TRUE(AcceptMessage(kept, "a", Message("msg-1"), kLater, {24001, 24002}, {24002}).ok());
  EXPECT_EQ(kept.FindAgent("a")->port, 24001);

  TaskRecord taken = NewTaskWith();
  Admit(taken, "a");
  taken.FindAgent("a")->port = 24001;
  Exit(taken, "a", 0, 10);
  Result<MessageOutcome> moved =
      AcceptMessage(taken, "a", Message("msg-1"), kLater, {24001, 24002, 24003}, {24001, 24002});
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(taken.FindAgent("a")->port, 24003);
  EXPECT_EQ(moved->agent.port, 24003) << "the outcome carries the entry after";
}

TEST(TurnsTest, AMessageToAnEndedAgentBeginsTheNextTurnAndKeepsTheEndedOne) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Exit(task, "a", 3, 10);
  ASSERT_EQ(task.FindAgent("a")->status, "error");

  Result<MessageOutcome> outcome = AcceptMessage(task, "a", Message("msg-1"), kLater);
  ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
  EXPECT_EQ(outcome->delivery, MessageOutcome::Delivery::kNewTurn);
  EXPECT_EQ(outcome->turn, 2);
  const AgentRecord& agent = *task.FindAgent("a");
  EXPECT_EQ(agent.status, "running");
  EXPECT_EQ(agent.phase, "starting");
  EXPECT_FALSE(agent.exit);
  EXPECT_FALSE(agent.process.recorded());
  EXPECT_FALSE(agent.supervisor.recorded()) << "a new supervisor runs a turn begun by a message";
  ASSERT_EQ(agent.turns.size(), 1u);
  EXPECT_EQ(agent.turns[0].number, 1);
  EXPECT_EQ(agent.turns[0].status, "error");
  EXPECT_EQ(agent.turns[0].exit->exit_code, 3);
  EXPECT_EQ(agent.turns[0].process.pid, 100);
  ASSERT_TRUE(agent.turn_message);
  EXPECT_EQ(agent.turn_message->id, "msg-1");
  EXPECT_EQ(task.active_count, 1);
}

TEST(TurnsTest, AMessageToARunningAgentIsQueuedAndBeginsTheNextTurnAtItsExit) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Result<MessageOutcome> first = AcceptMessage(task, "a", Message("msg-1"), kNow);
  Result<MessageOutcome> second = AcceptMessage(task, "a", Message("msg-2"), kNow);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->delivery, MessageOutcome::Delivery::kQueued);
  EXPECT_EQ(first->queue_position, 1u);
  EXPECT_EQ(second->queue_position, 2u);
  EXPECT_EQ(first->interrupt_turn, 0);

  Exit(task, "a", 0, 10);
  std::optional<NextTurn> next = BeginQueuedTurn(task, "a", kLater);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->number, 2);
  EXPECT_EQ(next->message.id, "msg-1");
  const AgentRecord& agent = *task.FindAgent("a");
  EXPECT_EQ(agent.status, "running");
  EXPECT_TRUE(agent.supervisor.recorded()) << "the same supervisor runs a queued turn";
  ASSERT_EQ(agent.message_queue.size(), 1u);
  EXPECT_EQ(agent.message_queue[0].id, "msg-2");
  EXPECT_EQ(agent.turns[0].status, "completed");

  Exit(task, "a", 0, 5);
  next = BeginQueuedTurn(task, "a", kLater);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->number, 3);
  Exit(task, "a", 0, 1);
  EXPECT_FALSE(BeginQueuedTurn(task, "a", kLater)) << "nothing left to run";
  EXPECT_EQ(task.FindAgent("a")->status, "completed");
}

TEST(TurnsTest, AnInterruptGoesFirstAndNamesTheRunningTurn) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-1"), kNow).ok());
  Result<MessageOutcome> urgent = AcceptMessage(task, "a", Message("msg-2", true), kNow);
  ASSERT_TRUE(urgent.ok());
  EXPECT_EQ(urgent->queue_position, 1u);
  EXPECT_EQ(urgent->interrupt_turn, 1);
  EXPECT_EQ(task.FindAgent("a")->message_queue.front().id, "msg-2");
}

TEST(TurnsTest, AnInterruptOfATurnNotStartedYetSignalsNothing) {
  TaskRecord task = NewTaskWith();
  AdmissionRequest request;
  request.agent_id = "a";
  request.type = "worker";
  ASSERT_TRUE(AdmitAgent(task, request).ok());  // phase "starting", no supervisor yet
  Result<MessageOutcome> urgent = AcceptMessage(task, "a", Message("msg-1", true), kNow);
  ASSERT_TRUE(urgent.ok());
  EXPECT_EQ(urgent->delivery, MessageOutcome::Delivery::kQueued);
  EXPECT_EQ(urgent->interrupt_turn, 0);
}

TEST(TurnsTest, AnAgentThatReportedItsEndButHasNotExitedQueuesTheMessage) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  ASSERT_TRUE(ApplyProgress(task, "a", "completed", "done", 100, kNow).ok());
  Result<MessageOutcome> outcome = AcceptMessage(task, "a", Message("msg-1"), kNow);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->delivery, MessageOutcome::Delivery::kQueued)
      << "its supervisor records the exit and begins the turn";
  Exit(task, "a", 0, 1);
  EXPECT_TRUE(BeginQueuedTurn(task, "a", kLater));
}

TEST(TurnsTest, StoppedTasksAndPassedBudgetsRefuseNewTurns) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Exit(task, "a", 0, 10);
  TaskRecord stopped = task;
  StopTask(stopped, "the plan changed", 1000, kNow);
  Result<MessageOutcome> refused = AcceptMessage(stopped, "a", Message("msg-1"), kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().Is(Status::Code::kRefused));
  EXPECT_THAT(refused.status().message(), HasSubstr("the plan changed"));

  TaskRecord over = task;
  over.budget.max_tokens = 5;
  StopIfOverBudget(over, 1000, kNow);
  refused = AcceptMessage(over, "a", Message("msg-1"), kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("max_tokens"));
  EXPECT_EQ(over.FindAgent("a")->turn, 1) << "a refusal changes nothing";
}

TEST(TurnsTest, ANewTurnNeedsAFreeSlotUnderMaxConcurrent) {
  TaskRecord task = NewTaskWith(/*max_concurrent=*/1);
  Admit(task, "a");
  Exit(task, "a", 0, 1);
  Admit(task, "b");  // takes the only slot
  Result<MessageOutcome> refused = AcceptMessage(task, "a", Message("msg-1"), kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("max_concurrent 1"));
}

TEST(TurnsTest, AQueuedTurnThatCannotRunIsKeptAsUndeliveredWithTheReason) {
  TaskRecord task = NewTaskWith(/*max_concurrent=*/1);
  Admit(task, "a");
  ASSERT_TRUE(ApplyProgress(task, "a", "completed", "done", 100, kNow).ok());  // frees the slot
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-1"), kNow).ok());
  Admit(task, "b");
  Exit(task, "a", 0, 1);
  EXPECT_FALSE(BeginQueuedTurn(task, "a", kLater));
  const AgentRecord& agent = *task.FindAgent("a");
  EXPECT_TRUE(agent.message_queue.empty());
  ASSERT_EQ(agent.undelivered_messages.size(), 1u);
  EXPECT_EQ(agent.undelivered_messages[0].id, "msg-1");
  EXPECT_THAT(agent.undelivered_messages[0].undelivered_reason, HasSubstr("max_concurrent"));
}

TEST(TurnsTest, AKillDropsTheQueueButAnInterruptKeepsIt) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Admit(task, "b");
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-a"), kNow).ok());
  ASSERT_TRUE(AcceptMessage(task, "b", Message("msg-b", true), kNow).ok());
  ASSERT_TRUE(*MarkTerminated(task, "a", "Manual termination", kNow));
  ASSERT_TRUE(*MarkTerminated(task, "b", "interrupted", kNow, std::nullopt, /*keep_queue=*/true));

  const AgentRecord& a = *task.FindAgent("a");
  EXPECT_TRUE(a.message_queue.empty());
  ASSERT_EQ(a.undelivered_messages.size(), 1u);
  EXPECT_THAT(a.undelivered_messages[0].undelivered_reason, HasSubstr("Manual termination"));
  EXPECT_EQ(task.FindAgent("b")->message_queue.size(), 1u);
  Exit(task, "b", 143, 1);
  std::optional<NextTurn> next = BeginQueuedTurn(task, "b", kLater);
  ASSERT_TRUE(next);
  EXPECT_EQ(task.FindAgent("b")->turns[0].status, "terminated");
}

TEST(TurnsTest, AMessageSentAfterAKillStartsATurnOnceTheExitIsRecorded) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  ASSERT_TRUE(*MarkTerminated(task, "a", "Manual termination", kNow));
  Result<MessageOutcome> outcome = AcceptMessage(task, "a", Message("msg-1"), kNow);
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->delivery, MessageOutcome::Delivery::kQueued);
  Exit(task, "a", 143, 1);
  EXPECT_TRUE(BeginQueuedTurn(task, "a", kLater)) << "the message is never lost silently";
}

TEST(TurnsTest, AnAbandonedTurnRestoresTheEndedOneAndKeepsTheMessage) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Exit(task, "a", 0, 10);
  AgentRecord before = *task.FindAgent("a");
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-1"), kLater).ok());
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-2"), kLater).ok());  // queued behind it

  AbandonTurn(task, "a", 2, "did not start: no such program", kLater);
  const AgentRecord& after = *task.FindAgent("a");
  EXPECT_EQ(after.turn, 1);
  EXPECT_TRUE(after.turns.empty());
  EXPECT_EQ(after.status, before.status);
  EXPECT_EQ(after.exit->exit_code, before.exit->exit_code);
  EXPECT_EQ(after.process.pid, before.process.pid);
  EXPECT_EQ(EncodeAgent(after)["usage"], EncodeAgent(before)["usage"]);
  EXPECT_TRUE(after.message_queue.empty());
  ASSERT_EQ(after.undelivered_messages.size(), 2u);
  EXPECT_EQ(after.undelivered_messages[0].id, "msg-1");
  EXPECT_THAT(after.undelivered_messages[0].undelivered_reason, HasSubstr("no such program"));
  EXPECT_EQ(task.active_count, 0);
}

TEST(TurnsTest, TheAgentsUsageAndTheTasksTotalsAddUpItsTurns) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Exit(task, "a", 0, 10);
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-1"), kLater).ok());
  ASSERT_TRUE(RecordStart(task, "a", {101, 1001}, {98, 980}).ok());
  Exit(task, "a", 0, 32);
  EXPECT_EQ(AgentUsage(*task.FindAgent("a")).input_tokens, 42);
  EXPECT_EQ(task.usage_totals.input_tokens, 42);
}

TEST(TurnsTest, TheQueueIsBounded) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  for (size_t i = 0; i < kMaxQueuedMessages; ++i) {
    ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-" + std::to_string(i)), kNow).ok());
  }
  Result<MessageOutcome> refused = AcceptMessage(task, "a", Message("msg-more"), kNow);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("queued messages"));
}

TEST(TurnsTest, TurnsQueuesAndUndeliveredMessagesRoundTrip) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  Exit(task, "a", 0, 10);
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-1"), kLater).ok());
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-2"), kLater).ok());
  task.FindAgent("a")->undelivered_messages.push_back(Message("msg-0"));
  task.FindAgent("a")->undelivered_messages[0].undelivered_reason = "why";
  json encoded = EncodeTask(task);
  Result<TaskRecord> decoded = DecodeTask(encoded, "the test");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(EncodeTask(*decoded)["agents"], encoded["agents"]);
  const AgentRecord& agent = *decoded->FindAgent("a");
  EXPECT_EQ(agent.turn, 2);
  EXPECT_EQ(agent.turns.size(), 1u);
  EXPECT_EQ(agent.message_queue.size(), 1u);
  EXPECT_EQ(agent.undelivered_messages[0].undelivered_reason, "why");
}

TEST(TurnsTest, ADamagedTurnIsAnErrorNamingTheField) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  json encoded = EncodeTask(task);
  encoded["agents"][0]["turns"] = json::array({{{"number", "two"}}});
  Result<TaskRecord> decoded = DecodeTask(encoded, "AGENT_REGISTRY.json");
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.status().message(), HasSubstr("turns[0]"));
  EXPECT_THAT(decoded.status().message(), HasSubstr("number"));
  encoded["agents"][0]["turns"] = json::array();
  encoded["agents"][0]["message_queue"] = "later";
  decoded = DecodeTask(encoded, "AGENT_REGISTRY.json");
  ASSERT_FALSE(decoded.ok());
  EXPECT_THAT(decoded.status().message(), HasSubstr("message_queue"));
}

TEST(TurnsTest, EveryEndedTurnIsOneTransition) {
  TaskRecord task = NewTaskWith();
  Admit(task, "a");
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-1"), kNow).ok());

  // Turn 1 ends and the queued message begins turn 2 in one transaction.
  StatusesBefore before = StatusesOf(task);
  Exit(task, "a", 0, 1);
  ASSERT_TRUE(BeginQueuedTurn(task, "a", kLater));
  std::vector<AgentTransition> transitions = TransitionsBetween(before, task);
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].event, "agent_turn_finished");
  EXPECT_EQ(transitions[0].turn, 1);
  EXPECT_EQ(transitions[0].new_status, "completed");

  // Turn 2 ends with nothing queued: the agent's end.
  before = StatusesOf(task);
  Exit(task, "a", 2, 1);
  transitions = TransitionsBetween(before, task);
  ASSERT_EQ(transitions.size(), 1u);
  EXPECT_EQ(transitions[0].event, "agent_failed");
  EXPECT_EQ(transitions[0].turn, 2);

  // A message to the ended agent begins turn 3: no transition (nothing ended).
  before = StatusesOf(task);
  ASSERT_TRUE(AcceptMessage(task, "a", Message("msg-2"), kLater).ok());
  EXPECT_TRUE(TransitionsBetween(before, task).empty());
}

}  // namespace
}  // namespace herd::registry
