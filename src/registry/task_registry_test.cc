// Tests for the task registry rules (pure functions on the document): the
// status state machine, counts derived from the agent list, admission
// (max_concurrent, max_agents, max_depth, the parent's existence and
// liveness), releasing a slot, kills and recorded exits.
#include "registry/task_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "registry/json_rules_for_test.h"

namespace herd::registry {
namespace {

using ::testing::HasSubstr;

constexpr char kNow[] = "2026-11-27T03:49:36.123456Z";

json NewTask(int max_agents = 45, int max_concurrent = 20, int max_depth = 5) {
  TaskSpec spec;
  spec.description = "a task for the rules";
  spec.limits = {max_agents, max_concurrent, max_depth};
  return NewTaskDocument("TASK-20261127-034936-0123abcd", spec, "/tmp/base");
}

// Admits `agent_id` under `parent`, requiring success.
json Admit(json& task, const std::string& agent_id,
           const std::string& parent = kOrchestratorParent) {
  AdmissionRequest request;
  request.agent_id = agent_id;
  request.type = "worker";
  request.parent = parent;
  request.prompt = "work";
  Result<json> admitted = AdmitAgent(task, request);
  EXPECT_TRUE(admitted.ok()) << admitted.status().ToString();
  return admitted.ok() ? *admitted : json();
}

Status TryAdmit(json& task, const std::string& agent_id,
                const std::string& parent = kOrchestratorParent) {
  AdmissionRequest request;
  request.agent_id = agent_id;
  request.type = "worker";
  request.parent = parent;
  Result<json> admitted = AdmitAgent(task, request);
  return admitted.ok() ? Status::Ok() : admitted.status();
}

std::string StatusOf(const json& task, const std::string& agent_id) {
  const json* agent = FindAgent(task, agent_id);
  return agent == nullptr ? "" : agent->value("status", "");
}

ExitRecord Exited(int code) {
  ExitRecord record;
  record.exit_code = code;
  record.ended_at = kNow;
  return record;
}

// --- Statuses ---------------------------------------------------------------------

TEST(TaskRegistryAgentStatusTest, SevenStatusesAreKnownAndSplitIntoActiveAndTerminal) {
  for (const char* status : {"running", "working", "blocked"}) {
    EXPECT_TRUE(IsActiveStatus(status)) << status;
    EXPECT_FALSE(IsTerminalStatus(status)) << status;
    EXPECT_TRUE(ValidateAgentStatus(status).ok()) << status;
  }
  for (const char* status : {"completed", "error", "terminated", "failed"}) {
    EXPECT_TRUE(IsTerminalStatus(status)) << status;
    EXPECT_FALSE(IsActiveStatus(status)) << status;
    EXPECT_TRUE(ValidateAgentStatus(status).ok()) << status;
  }
}

TEST(TaskRegistryAgentStatusTest, UnknownStatusIsRejectedWithTheValidOnes) {
  for (const char* status : {"", "done", "RUNNING", "complete", "killed"}) {
    Status validated = ValidateAgentStatus(status);
    EXPECT_TRUE(validated.Is(Status::Code::kInvalidArgument)) << status;
    EXPECT_THAT(validated.message(), HasSubstr("working"));
    EXPECT_THAT(validated.message(), HasSubstr("completed"));
  }
}

TEST(TaskRegistryProgressTest, ActiveAgentMovesBetweenActiveStatuses) {
  json task = NewTask();
  Admit(task, "a-1");
  for (const char* status : {"working", "blocked", "working", "running"}) {
    Result<json> update = ApplyProgress(task, "a-1", status, "step", 40, kNow);
    ASSERT_TRUE(update.ok()) << update.status().ToString();
    EXPECT_EQ(StatusOf(task, "a-1"), status);
  }
  EXPECT_EQ(task["active_count"], 1);
}

TEST(TaskRegistryProgressTest, StoredUpdateHasTheReferenceKeys) {
  json task = NewTask();
  Admit(task, "a-1");
  Result<json> update = ApplyProgress(task, "a-1", "working", "halfway", 50, kNow);
  ASSERT_TRUE(update.ok());
  EXPECT_EQ(*update, (json{{"agent_id", "a-1"},
                           {"status", "working"},
                           {"progress", 50},
                           {"message", "halfway"},
                           {"timestamp", kNow}}));
  EXPECT_EQ((*FindAgent(task, "a-1"))["progress"], 50);
  EXPECT_EQ((*FindAgent(task, "a-1"))["last_update"], kNow);
}

TEST(TaskRegistryProgressTest, ProgressOutsideZeroToHundredIsRejected) {
  json task = NewTask();
  Admit(task, "a-1");
  json before = task;
  for (int progress : {-1, 101, 1000}) {
    Result<json> update = ApplyProgress(task, "a-1", "working", "m", progress, kNow);
    EXPECT_TRUE(update.status().Is(Status::Code::kInvalidArgument)) << progress;
  }
  EXPECT_TRUE(ApplyProgress(task, "a-1", "working", "m", 0, kNow).ok());
  EXPECT_TRUE(ApplyProgress(task, "a-1", "working", "m", 100, kNow).ok());
  EXPECT_EQ(before["agents"].size(), task["agents"].size());
}

// A model may paste a whole file into a message: the registry keeps a
// preview, the journal the message; past the limit it is refused.
TEST(TaskRegistryProgressTest, LongMessagesArePreviewedAndOverlongOnesRefused) {
  json task = NewTask();
  Admit(task, "a-1");
  std::string long_message(5000, 'x');
  Result<json> update = ApplyProgress(task, "a-1", "working", long_message, 10, kNow);
  ASSERT_TRUE(update.ok());
  EXPECT_EQ((*update)["message"], long_message) << "the journal keeps it whole";
  EXPECT_EQ((*FindAgent(task, "a-1"))["last_message"],
            std::string(kMessagePreviewLength, 'x') + "...");

  json before = task;
  std::string overlong(kMaxReportMessageBytes + 1, 'y');
  Result<json> refused = ApplyProgress(task, "a-1", "failed", overlong, 10, kNow);
  ASSERT_TRUE(refused.status().Is(Status::Code::kInvalidArgument));
  EXPECT_NE(refused.status().message().find("short summary"), std::string::npos);
  EXPECT_EQ(task, before) << "a refused report changes nothing";
  EXPECT_TRUE(
      ApplyProgress(task, "a-1", "failed", std::string(kMaxReportMessageBytes, 'y'), 10, kNow)
          .ok());
  EXPECT_EQ((*FindAgent(task, "a-1"))["ended_reason"].get<std::string>().size(),
            kMessagePreviewLength + 3);
}

TEST(TaskRegistryProgressTest, UnknownStatusChangesNothing) {
  json task = NewTask();
  Admit(task, "a-1");
  json before = task;
  EXPECT_FALSE(ApplyProgress(task, "a-1", "finished", "m", 10, kNow).ok());
  EXPECT_EQ(task, before);
}

TEST(TaskRegistryProgressTest, UnknownAgentIsNotFound) {
  json task = NewTask();
  EXPECT_TRUE(
      ApplyProgress(task, "ghost", "working", "m", 10, kNow).status().Is(Status::Code::kNotFound));
}

TEST(TaskRegistryProgressTest, TerminalAgentStaysTerminal) {
  for (const char* final_status : {"completed", "error", "terminated", "failed"}) {
    json task = NewTask();
    Admit(task, "a-1");
    ASSERT_TRUE(ApplyProgress(task, "a-1", final_status, "end", 100, kNow).ok());
    json after_end = task;
    for (const char* next : {"working", "running", "completed", "error"}) {
      Result<json> update = ApplyProgress(task, "a-1", next, "again", 10, kNow);
      EXPECT_TRUE(update.status().Is(Status::Code::kRefused)) << final_status << " -> " << next;
    }
    EXPECT_EQ(task, after_end) << final_status;
  }
}

// --- Counts -------------------------------------------------------------------------

TEST(TaskRegistryCountsTest, CountsAreDerivedFromTheAgentList) {
  json task = NewTask();
  Admit(task, "a-1");
  Admit(task, "a-2");
  Admit(task, "a-3");
  Admit(task, "a-4");
  ASSERT_TRUE(ApplyProgress(task, "a-2", "completed", "done", 100, kNow).ok());
  ASSERT_TRUE(ApplyProgress(task, "a-3", "blocked", "waiting", 10, kNow).ok());
  ASSERT_TRUE(MarkTerminated(task, "a-4", "stop", kNow).ok());
  // Whatever the stored numbers say, they are recomputed.
  task["active_count"] = 99;
  task["completed_count"] = -4;
  task["total_spawned"] = 0;

  RecomputeCounts(task);

  EXPECT_EQ(task["total_spawned"], 4);
  EXPECT_EQ(task["active_count"], 2);
  EXPECT_EQ(task["completed_count"], 1);
  EXPECT_EQ(task["status"], "ACTIVE");
}

TEST(TaskRegistryCountsTest, TaskStatusFollowsItsAgents) {
  json task = NewTask();
  RecomputeCounts(task);
  EXPECT_EQ(task["status"], "INITIALIZED");
  Admit(task, "a-1");
  EXPECT_EQ(task["status"], "ACTIVE");
  ASSERT_TRUE(RecordExit(task, "a-1", Exited(0)).ok());
  EXPECT_EQ(task["status"], "COMPLETED");
}

TEST(TaskRegistryCountsTest, EveryMutationLeavesCountsConsistent) {
  json task = NewTask();
  auto expect_consistent = [&](const char* after) {
    json copy = task;
    RecomputeCounts(copy);
    EXPECT_EQ(copy, task) << "counts drifted after " << after;
  };
  Admit(task, "a-1");
  expect_consistent("AdmitAgent");
  Admit(task, "a-2");
  ASSERT_TRUE(ApplyProgress(task, "a-1", "completed", "done", 100, kNow).ok());
  expect_consistent("ApplyProgress");
  ASSERT_TRUE(MarkTerminated(task, "a-2", "stop", kNow).ok());
  expect_consistent("MarkTerminated");
  Admit(task, "a-3");
  ASSERT_TRUE(RecordExit(task, "a-3", Exited(1)).ok());
  expect_consistent("RecordExit");
  Admit(task, "a-4");
  ReleaseAgent(task, "a-4");
  expect_consistent("ReleaseAgent");
}

// --- Admission -------------------------------------------------------------------------

TEST(TaskRegistryAdmissionTest, AdmittedAgentIsRunningAtDepthOneUnderTheOrchestrator) {
  json task = NewTask();
  json agent = Admit(task, "a-1");
  EXPECT_EQ(agent["status"], "running");
  EXPECT_EQ(agent["depth"], 1);
  EXPECT_EQ(agent["parent"], "orchestrator");
  EXPECT_EQ(agent["progress"], 0);
  EXPECT_EQ(*FindAgent(task, "a-1"), agent);
  EXPECT_EQ(task["agent_hierarchy"]["orchestrator"], json::array({"a-1"}));
}

TEST(TaskRegistryAdmissionTest, PromptIsStoredAsItsFirst200Characters) {
  json task = NewTask();
  AdmissionRequest request;
  request.agent_id = "a-1";
  request.type = "worker";
  request.prompt = std::string(150, 'x') + std::string(100, 'y');
  ASSERT_TRUE(AdmitAgent(task, request).ok());
  EXPECT_EQ((*FindAgent(task, "a-1"))["prompt"], std::string(150, 'x') + std::string(50, 'y'));
}

TEST(TaskRegistryAdmissionTest, MaxConcurrentCountsOnlyActiveAgents) {
  json task = NewTask(45, 2);
  Admit(task, "a-1");
  Admit(task, "a-2");
  json before = task;

  Status refused = TryAdmit(task, "a-3");

  EXPECT_TRUE(refused.Is(Status::Code::kRefused));
  EXPECT_THAT(refused.message(), HasSubstr("max_concurrent"));
  EXPECT_EQ(task, before) << "a refusal changed the document";
  ASSERT_TRUE(RecordExit(task, "a-1", Exited(0)).ok());
  EXPECT_TRUE(TryAdmit(task, "a-3").ok()) << "an ended agent still held its slot";
}

TEST(TaskRegistryAdmissionTest, MaxAgentsCountsEveryAgentEverStarted) {
  json task = NewTask(2, 20);
  Admit(task, "a-1");
  Admit(task, "a-2");
  ASSERT_TRUE(RecordExit(task, "a-1", Exited(0)).ok());
  ASSERT_TRUE(MarkTerminated(task, "a-2", "stop", kNow).ok());

  Status refused = TryAdmit(task, "a-3");

  EXPECT_TRUE(refused.Is(Status::Code::kRefused));
  EXPECT_THAT(refused.message(), HasSubstr("max_agents"));
}

TEST(TaskRegistryAdmissionTest, ChildDepthIsParentDepthPlusOne) {
  json task = NewTask();
  Admit(task, "a-1");
  json child = Admit(task, "a-2", "a-1");
  json grandchild = Admit(task, "a-3", "a-2");
  EXPECT_EQ(child["depth"], 2);
  EXPECT_EQ(grandchild["depth"], 3);
  EXPECT_EQ(AgentDepth(task, "a-3"), 3);
  EXPECT_EQ(AgentDepth(task, "nobody"), 0);
  EXPECT_EQ(task["agent_hierarchy"],
            (json{{"orchestrator", {"a-1"}}, {"a-1", {"a-2"}}, {"a-2", {"a-3"}}}));
}

TEST(TaskRegistryAdmissionTest, MaxDepthIsEnforced) {
  json task = NewTask(45, 20, 2);
  Admit(task, "a-1");
  Admit(task, "a-2", "a-1");

  Status refused = TryAdmit(task, "a-3", "a-2");

  EXPECT_TRUE(refused.Is(Status::Code::kRefused));
  EXPECT_THAT(refused.message(), HasSubstr("max_depth"));
  EXPECT_EQ(task["total_spawned"], 2);
}

TEST(TaskRegistryAdmissionTest, ParentMustExist) {
  json task = NewTask();
  Status refused = TryAdmit(task, "a-1", "ghost-000000-abcdef");
  EXPECT_TRUE(refused.Is(Status::Code::kRefused));
  EXPECT_THAT(refused.message(), HasSubstr("ghost-000000-abcdef"));
  EXPECT_TRUE(task["agents"].empty());
}

TEST(TaskRegistryAdmissionTest, ParentMustStillBeActive) {
  for (const char* final_status : {"completed", "error", "terminated", "failed"}) {
    json task = NewTask();
    Admit(task, "a-1");
    ASSERT_TRUE(ApplyProgress(task, "a-1", final_status, "end", 100, kNow).ok());

    Status refused = TryAdmit(task, "a-2", "a-1");

    EXPECT_TRUE(refused.Is(Status::Code::kRefused)) << final_status;
    EXPECT_THAT(refused.message(), HasSubstr("already ended")) << final_status;
  }
}

TEST(TaskRegistryAdmissionTest, TakenAgentIdIsRefused) {
  json task = NewTask();
  Admit(task, "a-1");
  EXPECT_TRUE(TryAdmit(task, "a-1").Is(Status::Code::kRefused));
  EXPECT_EQ(task["agents"].size(), 1u);
}

TEST(TaskRegistryAdmissionTest, ReleasedAgentFreesItsSlotAndLeavesTheHierarchy) {
  json task = NewTask(1, 1);
  Admit(task, "a-1");
  ReleaseAgent(task, "a-1");
  EXPECT_TRUE(task["agents"].empty());
  EXPECT_TRUE(task["agent_hierarchy"]["orchestrator"].empty());
  EXPECT_EQ(task["total_spawned"], 0);
  EXPECT_TRUE(TryAdmit(task, "a-2").ok()) << "the released slot still counted";
}

TEST(TaskRegistryLimitsTest, DefaultsAreTheReferences) {
  Limits limits;
  EXPECT_EQ(limits.max_agents, 45);
  EXPECT_EQ(limits.max_concurrent, 20);
  EXPECT_EQ(limits.max_depth, 5);
}

TEST(TaskRegistryLimitsTest, EnvironmentOverridesDefaultsAndIgnoresNonsense) {
  ::setenv("CLAUDE_ORCHESTRATOR_MAX_AGENTS", "7", 1);
  ::setenv("CLAUDE_ORCHESTRATOR_MAX_CONCURRENT", "3", 1);
  ::setenv("CLAUDE_ORCHESTRATOR_MAX_DEPTH", "not-a-number", 1);
  Limits limits = Limits::FromEnvironment();
  ::unsetenv("CLAUDE_ORCHESTRATOR_MAX_AGENTS");
  ::unsetenv("CLAUDE_ORCHESTRATOR_MAX_CONCURRENT");
  ::unsetenv("CLAUDE_ORCHESTRATOR_MAX_DEPTH");
  EXPECT_EQ(limits.max_agents, 7);
  EXPECT_EQ(limits.max_concurrent, 3);
  EXPECT_EQ(limits.max_depth, 5);
}

// --- Kill and exit ------------------------------------------------------------------------

TEST(TaskRegistryTerminationTest, KillMarksAnActiveAgentOnce) {
  json task = NewTask();
  Admit(task, "a-1");

  Result<bool> first = MarkTerminated(task, "a-1", "Manual termination", kNow);
  json after_first = task;
  Result<bool> second = MarkTerminated(task, "a-1", "again", kNow);

  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(*first);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(*second);
  EXPECT_EQ(task, after_first);
  const json& agent = *FindAgent(task, "a-1");
  EXPECT_EQ(agent["status"], "terminated");
  EXPECT_EQ(agent["termination_reason"], "Manual termination");
  EXPECT_EQ(agent["terminated_at"], kNow);
  EXPECT_EQ(task["active_count"], 0);
}

TEST(TaskRegistryTerminationTest, KillOfUnknownAgentIsNotFound) {
  json task = NewTask();
  EXPECT_TRUE(MarkTerminated(task, "ghost", "r", kNow).status().Is(Status::Code::kNotFound));
}

TEST(TaskRegistryExitTest, ExitZeroIsCompleted) {
  json task = NewTask();
  Admit(task, "a-1");
  ASSERT_TRUE(RecordExit(task, "a-1", Exited(0)).ok());
  const json& agent = *FindAgent(task, "a-1");
  EXPECT_EQ(agent["status"], "completed");
  EXPECT_EQ(agent["exit_code"], 0);
  EXPECT_TRUE(agent["exit_signal"].is_null());
  EXPECT_EQ(agent["ended_at"], kNow);
  EXPECT_EQ(agent["progress"], 100);
  EXPECT_EQ(task["completed_count"], 1);
}

TEST(TaskRegistryExitTest, NonZeroExitIsErrorWithTheCode) {
  json task = NewTask();
  Admit(task, "a-1");
  ASSERT_TRUE(RecordExit(task, "a-1", Exited(3)).ok());
  const json& agent = *FindAgent(task, "a-1");
  EXPECT_EQ(agent["status"], "error");
  EXPECT_EQ(agent["exit_code"], 3);
  EXPECT_THAT(agent.value("error", ""), HasSubstr("3"));
}

TEST(TaskRegistryExitTest, DeathBySignalIsErrorWithTheSignal) {
  json task = NewTask();
  Admit(task, "a-1");
  ExitRecord record;
  record.exit_signal = 9;
  record.ended_at = kNow;
  ASSERT_TRUE(RecordExit(task, "a-1", record).ok());
  const json& agent = *FindAgent(task, "a-1");
  EXPECT_EQ(agent["status"], "error");
  EXPECT_EQ(agent["exit_signal"], 9);
  EXPECT_TRUE(agent["exit_code"].is_null());
  EXPECT_THAT(agent.value("error", ""), HasSubstr("signal 9"));
}

TEST(TaskRegistryExitTest, ExitZeroWithAnErrorResultIsError) {
  json task = NewTask();
  Admit(task, "a-1");
  ExitRecord record = Exited(0);
  record.error = "the agent CLI reported an error result";
  ASSERT_TRUE(RecordExit(task, "a-1", record).ok());
  EXPECT_EQ(StatusOf(task, "a-1"), "error");
}

TEST(TaskRegistryExitTest, AgentThatHadEndedKeepsItsStatusButGetsItsExit) {
  json task = NewTask();
  Admit(task, "killed");
  Admit(task, "reported");
  ASSERT_TRUE(MarkTerminated(task, "killed", "stop", kNow).ok());
  ASSERT_TRUE(ApplyProgress(task, "reported", "completed", "done", 100, kNow).ok());

  ExitRecord by_signal;
  by_signal.exit_signal = 15;
  by_signal.ended_at = kNow;
  ASSERT_TRUE(RecordExit(task, "killed", by_signal).ok());
  ASSERT_TRUE(RecordExit(task, "reported", Exited(1)).ok());

  EXPECT_EQ(StatusOf(task, "killed"), "terminated");
  EXPECT_EQ((*FindAgent(task, "killed"))["exit_signal"], 15);
  EXPECT_EQ(StatusOf(task, "reported"), "completed");
  EXPECT_EQ((*FindAgent(task, "reported"))["exit_code"], 1);
  EXPECT_EQ(task["completed_count"], 1);
}

TEST(TaskRegistryExitTest, ResultFiguresAreKept) {
  json task = NewTask();
  Admit(task, "a-1");
  ExitRecord record = Exited(0);
  record.result = {{"total_cost_usd", 0.25}, {"num_turns", 4}};
  ASSERT_TRUE(RecordExit(task, "a-1", record).ok());
  EXPECT_EQ((*FindAgent(task, "a-1"))["result"], record.result);
}

TEST(TaskRegistryStartTest, StartRecordsProcessAndSupervisorIdentity) {
  json task = NewTask();
  Admit(task, "a-1");
  ASSERT_TRUE(RecordStart(task, "a-1", {1234, 5678}, {1200, 5600}).ok());
  const json& agent = *FindAgent(task, "a-1");
  EXPECT_EQ(agent["pid"], 1234);
  EXPECT_EQ(agent["process_start_time"], 5678);
  EXPECT_EQ(agent["supervisor_pid"], 1200);
  EXPECT_EQ(agent["supervisor_start_time"], 5600);
  EXPECT_EQ(agent["status"], "running");
  EXPECT_TRUE(RecordStart(task, "ghost", {1, 1}, {1, 1}).Is(Status::Code::kNotFound));
}

// --- Document -----------------------------------------------------------------------------

TEST(TaskRegistryDocumentTest, NewTaskHasTheReferenceKeys) {
  TaskSpec spec;
  spec.description = "keys";
  spec.client_cwd = "/srv/project";
  json task =
      NewTaskDocument("TASK-20261127-034936-0123abcd", spec, "/srv/project/.agent-workspace");
  for (const char* key :
       {"task_id", "task_description", "created_at", "workspace", "workspace_base", "client_cwd",
        "status", "priority", "agents", "agent_hierarchy", "max_agents", "max_depth",
        "max_concurrent", "total_spawned", "active_count", "completed_count", "spiral_checks"}) {
    EXPECT_TRUE(task.contains(key)) << key;
  }
  EXPECT_EQ(task["status"], "INITIALIZED");
  EXPECT_EQ(task["workspace"], "/srv/project/.agent-workspace/TASK-20261127-034936-0123abcd");
  EXPECT_TRUE(ValidateTaskDocument(task).ok());
}

TEST(TaskRegistryDocumentTest, ValidatorRejectsDocumentsWithoutIdOrAgents) {
  EXPECT_FALSE(ValidateTaskDocument(json::array()).ok());
  EXPECT_FALSE(ValidateTaskDocument(json{{"agents", json::array()}}).ok());
  EXPECT_FALSE(ValidateTaskDocument(json{{"task_id", "T"}}).ok());
  EXPECT_FALSE(ValidateTaskDocument(json{{"task_id", "T"}, {"agents", {{{"type", "x"}}}}}).ok());
  EXPECT_TRUE(ValidateTaskDocument(json{{"task_id", "T"}, {"agents", json::array()}}).ok());
}

}  // namespace
}  // namespace herd::registry
