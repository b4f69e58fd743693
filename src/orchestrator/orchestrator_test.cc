// The Orchestrator's operations, called in-process on a real workspace with
// real agents: task creation and its checks, listing, deploys of `command`
// agents (tiny real processes), status with derived counts and usage, an
// agent's output (tail, filter, formats, byte limits), exact kills, progress
// and finding reports with their journals, limit updates and the timeline.
//
// Deploy starts `herd supervise` from /proc/self/exe: this binary plays that
// part (agents/supervisor_main_for_test.h). Nothing waits with a fixed
// sleep: processes are awaited through pidfds and files through inotify
// (agents/testing_util_for_test.h), always with generous deadlines.
#include "orchestrator/orchestrator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agents/supervisor_main_for_test.h"
#include "agents/testing_util_for_test.h"
#include "registry/task_registry.h"
#include "util/text_file.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

class OrchestratorTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    // After the fixture's environment is in place: the stores read the lock
    // timeout from it.
    orchestrator_ = std::make_unique<Orchestrator>(registry::Workspace(workspace()),
                                                   registry::RegistryStores());
  }

  const Orchestrator& orchestrator() const { return *orchestrator_; }

  // The value of a call that must succeed (a failure is reported, and an
  // empty object returned so the test's other checks fail readably).
  static json Value(const Result<json>& result) {
    if (!result.ok()) {
      ADD_FAILURE() << "expected success, got " << result.status().ToString();
      return json::object();
    }
    return *result;
  }

  static CreateTaskRequest TaskRequest() {
    CreateTaskRequest request;
    request.description = "a task made by an orchestrator test";
    request.context = {{"success_criteria", json::array({"the test passes"})},
                       {"expected_deliverables", json::array({"nothing"})}};
    return request;
  }

  std::string NewTask(CreateTaskRequest request = TaskRequest()) {
    return Value(orchestrator().CreateTask(request)).value("task_id", "");
  }

  static agents::DeployRequest CommandAgent(const std::string& task_id,
                                            std::vector<std::string> argv,
                                            const std::string& type = "worker") {
    agents::DeployRequest request;
    request.task_id = task_id;
    request.agent_type = type;
    request.prompt = "run the command";
    request.backend = "command";
    request.command_argv = std::move(argv);
    return request;
  }

  // Deploys a command agent, requires success, returns its id.
  std::string StartAgent(const std::string& task_id, std::vector<std::string> argv,
                         const std::string& type = "worker") {
    return Value(orchestrator().Deploy(CommandAgent(task_id, std::move(argv), type)))
        .value("agent_id", "");
  }

  // An agent that prints `lines` and exits 0, once its exit is recorded.
  std::string FinishedAgent(const std::string& task_id, const std::string& lines) {
    std::string agent = StartAgent(task_id, {"printf", "%s", lines});
    WaitForAgentToEnd(task_id, agent);
    return agent;
  }

  OutputRequest Output(const std::string& task_id, const std::string& agent_id) {
    OutputRequest request;
    request.task_id = task_id;
    request.agent_id = agent_id;
    return request;
  }

  std::vector<std::string> TaskDirectories() const {
    std::vector<std::string> tasks;
    if (!std::filesystem::is_directory(workspace())) return tasks;
    for (const auto& entry : std::filesystem::directory_iterator(workspace())) {
      if (entry.path().filename().string().rfind("TASK-", 0) == 0) {
        tasks.push_back(entry.path().string());
      }
    }
    return tasks;
  }

  std::string ProgressJournal(const std::string& task_id, const std::string& agent_id) const {
    return TaskDirectory(task_id) + "/progress/" + agent_id + "_progress.jsonl";
  }
  std::string FindingsJournal(const std::string& task_id, const std::string& agent_id) const {
    return TaskDirectory(task_id) + "/findings/" + agent_id + "_findings.jsonl";
  }

 private:
  std::unique_ptr<Orchestrator> orchestrator_;
};

void ExpectInvalid(const Result<json>& result, const std::string& mentions) {
  ASSERT_FALSE(result.ok()) << "accepted: " << result->dump();
  EXPECT_TRUE(result.status().Is(herd::Status::Code::kInvalidArgument))
      << result.status().ToString();
  EXPECT_THAT(result.status().message(), HasSubstr(mentions));
}

// --- CreateTask ------------------------------------------------------------------

TEST_F(OrchestratorTest, CreateTaskRecordsLimitsBudgetsAndTimeoutsFromTheRequest) {
  CreateTaskRequest request = TaskRequest();
  request.priority = "P1";
  request.max_agents = 3;
  request.max_concurrent = 2;
  request.max_depth = 1;
  request.budget.max_cost_usd = 1.5;
  request.budget.max_tokens = 1000;
  request.timeouts.wall_clock_seconds = 120;
  request.timeouts.idle_seconds = 30;
  request.isolate_agent_config = true;

  json created = Value(orchestrator().CreateTask(request));

  std::string task = created.value("task_id", "");
  EXPECT_EQ(created.value("status", ""), "INITIALIZED");
  EXPECT_EQ(created.value("priority", ""), "P1");
  EXPECT_EQ(created.value("workspace", ""), TaskDirectory(task));
  EXPECT_EQ(created["limits"], json({{"max_agents", 3}, {"max_concurrent", 2}, {"max_depth", 1}}));
  EXPECT_EQ(created["budget"], json({{"max_cost_usd", 1.5}, {"max_tokens", 1000}}));
  EXPECT_EQ(created.value("agent_timeout_seconds", 0), 120);
  EXPECT_EQ(created.value("agent_idle_timeout_seconds", 0), 30);
  EXPECT_TRUE(created.value("isolate_agent_config", false));
  EXPECT_EQ(created["success_criteria"], json::array({"the test passes"}));
  EXPECT_FALSE(created.contains("validation_warnings")) << created.dump(2);

  json stored = TaskRegistry(task);
  EXPECT_EQ(stored.value("max_agents", 0), 3);
  EXPECT_EQ(stored.value("max_concurrent", 0), 2);
  EXPECT_EQ(stored.value("max_depth", 0), 1);
  EXPECT_EQ(stored.value("agent_timeout_seconds", 0), 120);
  EXPECT_EQ(stored.value("agent_idle_timeout_seconds", 0), 30);
  json status = Value(orchestrator().TaskStatus(task));
  EXPECT_EQ(status["limits"], created["limits"]);
  EXPECT_EQ(status["budget"], created["budget"]);
  EXPECT_EQ(status.value("agent_timeout_seconds", 0), 120);
}

TEST_F(OrchestratorTest, CreateTaskWarnsWhenTheContextCannotTellAgentsTheyAreDone) {
  CreateTaskRequest request;
  request.description = "short";

  json created = Value(orchestrator().CreateTask(request));

  EXPECT_THAT(created["validation_warnings"].dump(), HasSubstr("success_criteria"));
  EXPECT_THAT(created["validation_warnings"].dump(), HasSubstr("very short"));
  EXPECT_FALSE(created.value("has_enhanced_context", true));
}

TEST_F(OrchestratorTest, CreateTaskRefusesBadRequestsAndLeavesNothingBehind) {
  struct Case {
    std::function<void(CreateTaskRequest&)> change;
    std::string mentions;
  };
  std::vector<Case> cases = {
      {[](CreateTaskRequest& r) { r.description = " \n\t"; }, "description"},
      {[](CreateTaskRequest& r) { r.priority = "P5"; }, "P0-P4"},
      {[](CreateTaskRequest& r) { r.priority = "high"; }, "P0-P4"},
      {[](CreateTaskRequest& r) { r.max_agents = 0; }, "max_agents"},
      {[](CreateTaskRequest& r) { r.max_concurrent = -1; }, "max_concurrent"},
      {[](CreateTaskRequest& r) { r.max_depth = 0; }, "max_depth"},
      {[](CreateTaskRequest& r) { r.budget.max_cost_usd = 0; }, "max_cost_usd"},
      {[](CreateTaskRequest& r) { r.budget.max_tokens = 0; }, "max_tokens"},
      {[](CreateTaskRequest& r) { r.timeouts.idle_seconds = -5; }, "timeouts"},
      {[](CreateTaskRequest& r) { r.context = json::array(); }, "context"},
      {[](CreateTaskRequest& r) {
         r.context = {{"success_criteria", "one string"}};
       },
       "success_criteria"},
      {[](CreateTaskRequest& r) {
         r.context = {{"constraints", {1, 2}}};
       },
       "constraints"},
      {[](CreateTaskRequest& r) {
         r.context = {{"background_context", 7}};
       },
       "background_context"},
      {[](CreateTaskRequest& r) {
         r.context = {{"conversation_history", json::array({json{{"role", "user"}}})}};
       },
       "conversation_history"},
      {[this](CreateTaskRequest& r) { r.client_cwd = root() + "/no-such-project"; }, "client_cwd"},
  };
  for (const Case& test_case : cases) {
    CreateTaskRequest request = TaskRequest();
    test_case.change(request);
    SCOPED_TRACE(test_case.mentions);
    ExpectInvalid(orchestrator().CreateTask(request), test_case.mentions);
  }
  EXPECT_THAT(TaskDirectories(), ::testing::IsEmpty());
}

TEST_F(OrchestratorTest, CreateTaskWithClientCwdPutsTheTaskInTheProjectsWorkspace) {
  CreateTaskRequest request = TaskRequest();
  request.client_cwd = project();

  json created = Value(orchestrator().CreateTask(request));

  std::string task = created.value("task_id", "");
  std::string base = registry::ResolvedPath(project()) + "/.agent-workspace";
  EXPECT_EQ(created.value("workspace_base", ""), base);
  EXPECT_EQ(created.value("client_cwd", ""), registry::AbsolutePath(project()));
  EXPECT_TRUE(FileExists(base + "/" + task + "/AGENT_REGISTRY.json"));
  EXPECT_THAT(TaskDirectories(), ::testing::IsEmpty()) << "the task went to the default workspace";
  // Found from the default workspace through the known-workspaces registry.
  json status = Value(orchestrator().TaskStatus(task));
  EXPECT_EQ(status.value("workspace", ""), base + "/" + task);
}

// --- ListTasks -----------------------------------------------------------------

TEST_F(OrchestratorTest, ListTasksListsEveryKnownWorkspaceNewestFirst) {
  std::string first = NewTask();
  CreateTaskRequest elsewhere = TaskRequest();
  elsewhere.client_cwd = project();
  std::string second = NewTask(elsewhere);

  json listed = Value(orchestrator().ListTasks());

  ASSERT_EQ(listed.value("total", 0), 2) << listed.dump(2);
  std::vector<std::string> ids;
  for (const json& task : listed["tasks"]) ids.push_back(task.value("task_id", ""));
  EXPECT_EQ(ids, (std::vector<std::string>{second, first}));
  EXPECT_GE(listed["tasks"][0].value("created_at", ""), listed["tasks"][1].value("created_at", ""));
  EXPECT_EQ(listed["tasks"][1].value("workspace_base", ""), workspace());
  EXPECT_EQ(listed["tasks"][1].value("status", ""), "INITIALIZED");
}

// --- Deploy --------------------------------------------------------------------

TEST_F(OrchestratorTest, DeployStartsARealCommandAgent) {
  std::string task = NewTask();

  json deployed = Value(orchestrator().Deploy(CommandAgent(task, {"sleep", "60"}, "sleeper")));

  std::string agent = deployed.value("agent_id", "");
  EXPECT_THAT(agent, ::testing::StartsWith("sleeper-"));
  EXPECT_EQ(deployed.value("status", ""), "deployed");
  EXPECT_EQ(deployed.value("backend", ""), "command");
  EXPECT_EQ(deployed.value("depth", 0), 1);
  EXPECT_EQ(deployed.value("log_file", ""), LogPath(task, agent));
  json entry = AgentEntry(task, agent);
  EXPECT_EQ(deployed.value("pid", 0), entry.value("pid", -1));
  EXPECT_TRUE(IsRunning(AgentProcessOf(entry))) << entry.dump(2);
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(entry.value("pid", 0)) + "/comm"), "sleep\n");
}

TEST_F(OrchestratorTest, DeployRefusesAgentsBeyondMaxAgents) {
  CreateTaskRequest request = TaskRequest();
  request.max_agents = 1;
  std::string task = NewTask(request);
  StartAgent(task, {"sleep", "60"});

  Result<json> refused = orchestrator().Deploy(CommandAgent(task, {"sleep", "60"}));

  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().Is(herd::Status::Code::kRefused)) << refused.status().ToString();
  EXPECT_THAT(refused.status().message(), HasSubstr("max_agents"));
  EXPECT_EQ(TaskRegistry(task)["agents"].size(), 1u);
}

TEST_F(OrchestratorTest, DeployOfACommandWithoutArgvReservesNothing) {
  std::string task = NewTask();

  ExpectInvalid(orchestrator().Deploy(CommandAgent(task, {})), "argv");

  EXPECT_EQ(TaskRegistry(task)["agents"].size(), 0u);
  EXPECT_EQ(TaskRegistry(task).value("total_spawned", -1), 0);
}

TEST_F(OrchestratorTest, DeployNamesTheTaskItCannotFind) {
  Result<json> missing =
      orchestrator().Deploy(CommandAgent("TASK-20260101-000000-00000000", {"true"}));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().Is(herd::Status::Code::kNotFound)) << missing.status().ToString();
  EXPECT_THAT(missing.status().message(), HasSubstr("TASK-20260101-000000-00000000"));

  ExpectInvalid(orchestrator().Deploy(CommandAgent("../escape", {"true"})), "task id");
}

// --- TaskStatus ----------------------------------------------------------------

TEST_F(OrchestratorTest, TaskStatusDerivesCountsFromTheAgents) {
  std::string task = NewTask();
  std::string finished = FinishedAgent(task, "done\n");
  std::string running = StartAgent(task, {"sleep", "60"});

  json status = Value(orchestrator().TaskStatus(task));

  const json& agents = status["agents"];
  EXPECT_EQ(agents.value("total_spawned", 0), 2) << agents.dump(2);
  EXPECT_EQ(agents.value("active", 0), 1);
  EXPECT_EQ(agents.value("completed", 0), 1);
  EXPECT_EQ(agents.value("lost", -1), 0);
  ASSERT_EQ(agents["agents_list"].size(), 2u);
  for (const json& agent : agents["agents_list"]) {
    std::string id = agent.value("id", "");
    EXPECT_EQ(agent.value("status", ""), id == finished ? "completed" : "running") << id;
    EXPECT_TRUE(agent.contains("liveness")) << agent.dump(2);
    EXPECT_TRUE(agent.contains("subtree_usage")) << agent.dump(2);
  }
  EXPECT_EQ(status.value("workspace", ""), TaskDirectory(task));
  EXPECT_EQ(status.value("registry_sequence", 0ULL),
            TaskRegistry(task).value("herd_sequence", 1ULL));
  (void)running;
}

TEST_F(OrchestratorTest, TaskStatusSumsTheUsageOfResultEvents) {
  // A stand-in for the claude CLI that prints a stream-json result event.
  std::string fake_claude = root() + "/fake-claude";
  WriteFile(fake_claude,
            "#!/bin/sh\n"
            "cat > /dev/null\n"
            "echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
            "\"total_cost_usd\":0.25,\"num_turns\":2,\"duration_ms\":10,"
            "\"usage\":{\"input_tokens\":10,\"output_tokens\":20}}'\n");
  std::filesystem::permissions(fake_claude, std::filesystem::perms::owner_all);
  ScopedEnvironment environment;
  environment.Set("CLAUDE_EXECUTABLE", fake_claude);
  environment.Set("CLAUDE_FLAGS", "--print");
  std::string task = NewTask();
  std::vector<std::string> agents;
  for (int i = 0; i < 2; ++i) {
    agents::DeployRequest request;
    request.task_id = task;
    request.agent_type = "coder";
    request.prompt = "do it";
    request.backend = "claude";
    agents.push_back(Value(orchestrator().Deploy(request)).value("agent_id", ""));
  }
  for (const std::string& agent : agents) WaitForAgentToEnd(task, agent);

  json status = Value(orchestrator().TaskStatus(task));

  EXPECT_DOUBLE_EQ(status["usage"].value("total_cost_usd", 0.0), 0.5) << status["usage"].dump();
  EXPECT_EQ(status["usage"].value("total_tokens", 0), 60) << status["usage"].dump();
  for (const json& agent : status["agents"]["agents_list"]) {
    EXPECT_DOUBLE_EQ(agent["subtree_usage"].value("total_cost_usd", 0.0), 0.25);
  }
  EXPECT_EQ(status["agents"].value("completed", 0), 2);
}

TEST_F(OrchestratorTest, TaskStatusOfAnUnknownTaskIsNotFound) {
  Result<json> status = orchestrator().TaskStatus("TASK-20260101-000000-00000000");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.status().Is(herd::Status::Code::kNotFound)) << status.status().ToString();
  ExpectInvalid(orchestrator().TaskStatus("a/b"), "task id");
}

// --- AgentOutput ---------------------------------------------------------------

TEST_F(OrchestratorTest, AgentOutputTailsTheLog) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(task, "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
  OutputRequest request = Output(task, agent);

  json all = Value(orchestrator().AgentOutput(request));
  request.tail = 3;
  json tail = Value(orchestrator().AgentOutput(request));

  EXPECT_EQ(all.value("output", ""), "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
  EXPECT_EQ(all.value("lines", 0), 10);
  EXPECT_FALSE(all.value("truncated", true));
  EXPECT_EQ(all.value("source", ""), "stream_log");
  EXPECT_EQ(all.value("session_status", ""), "completed");
  EXPECT_EQ(tail.value("output", ""), "8\n9\n10\n");
  EXPECT_EQ(tail.value("lines", 0), 3);
  EXPECT_TRUE(tail.value("truncated", false));
  EXPECT_FALSE(tail.contains("metadata"));
}

TEST_F(OrchestratorTest, AgentOutputFiltersLinesWithRe2) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(task, "1\n2\n10\n11\n20\n");
  OutputRequest request = Output(task, agent);

  request.filter = "^1";
  EXPECT_EQ(Value(orchestrator().AgentOutput(request)).value("output", ""), "1\n10\n11\n");
  request.tail = 1;
  EXPECT_EQ(Value(orchestrator().AgentOutput(request)).value("output", ""), "11\n");
  request.tail.reset();

  // A pattern of exactly the limit is taken; one byte more is refused.
  request.filter = std::string(OutputRequest::kMaxFilterBytes, 'x');
  EXPECT_EQ(Value(orchestrator().AgentOutput(request)).value("lines", -1), 0);
  request.filter += "x";
  ExpectInvalid(orchestrator().AgentOutput(request),
                std::to_string(OutputRequest::kMaxFilterBytes));

  request.filter = "(";
  ExpectInvalid(orchestrator().AgentOutput(request), "not a valid RE2");
  // Backreferences and lookaround are not RE2.
  request.filter = "(1)\\1";
  ExpectInvalid(orchestrator().AgentOutput(request), "backreferences");
  request.filter = "1(?=0)";
  ExpectInvalid(orchestrator().AgentOutput(request), "not a valid RE2");
}

// Lines printed by Gemini CLI 0.61.0 (`--output-format stream-json`)
// against tests/interop/gemini_model_server.mjs.
TEST_F(OrchestratorTest, AgentOutputParsesGeminiStreamJson) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(
      task,
      R"({"type":"init","timestamp":"2026-12-01T20:02:55.680Z","session_id":"0f8fad5b-d9cb-469f-a165-70867728950e","model":"gemini-2.5-pro"})"
      "\n"
      R"({"type":"message","timestamp":"2026-12-01T20:02:55.683Z","role":"user","content":"Task ID: TASK-1"})"
      "\n"
      R"({"type":"tool_use","timestamp":"2026-12-01T20:02:56.127Z","tool_name":"mcp_herd_update_agent_progress","tool_id":"mcp_herd_update_agent_progress__call_1972fb1bb8_0_0_0","parameters":{"progress":10}})"
      "\n"
      R"({"type":"tool_result","timestamp":"2026-12-01T20:02:56.468Z","tool_id":"mcp_herd_update_agent_progress__call_1972fb1bb8_0_0_0","status":"success","output":"{}"})"
      "\n"
      R"({"type":"message","timestamp":"2026-12-01T20:02:56.657Z","role":"assistant","content":"Task complete.","delta":true})"
      "\n"
      R"({"type":"result","timestamp":"2026-12-01T20:02:56.676Z","status":"success","stats":{"total_tokens":18782,"input_tokens":18672,"output_tokens":104,"cached":2333,"input":16339,"duration_ms":996,"tool_calls":2}})"
      "\n");
  OutputRequest request = Output(task, agent);
  request.format = "parsed";
  json parsed = Value(orchestrator().AgentOutput(request));
  EXPECT_EQ(parsed.value("output", ""),
            "system: init\nuser: Task ID: TASK-1\n"
            "assistant: [tool mcp_herd_update_agent_progress]\nuser: [tool result success]\n"
            "assistant: Task complete.\nresult: success tokens=18782 tool_calls=2\n");
}

TEST_F(OrchestratorTest, AgentOutputFormatsTextJsonlAndParsed) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(
      task,
      "{\"type\":\"system\",\"subtype\":\"init\"}\n"
      "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"hello\"},"
      "{\"type\":\"tool_use\",\"name\":\"Bash\"}]}}\n"
      "plain text\n");
  OutputRequest request = Output(task, agent);

  json text = Value(orchestrator().AgentOutput(request));
  request.format = "jsonl";
  json jsonl = Value(orchestrator().AgentOutput(request));
  request.format = "parsed";
  json parsed = Value(orchestrator().AgentOutput(request));

  EXPECT_THAT(text.value("output", ""), HasSubstr("{\"type\":\"system\",\"subtype\":\"init\"}\n"));
  ASSERT_TRUE(jsonl["output"].is_array()) << jsonl.dump(2);
  ASSERT_EQ(jsonl["output"].size(), 3u);
  EXPECT_EQ(jsonl["output"][0], json({{"type", "system"}, {"subtype", "init"}}));
  EXPECT_EQ(jsonl["output"][2], "plain text");
  EXPECT_EQ(parsed.value("output", ""), "system: init\nassistant: hello[tool Bash]\nplain text\n");

  request.format = "xml";
  ExpectInvalid(orchestrator().AgentOutput(request), "format");
  request.format = "text";
  request.response_format = "verbose";
  ExpectInvalid(orchestrator().AgentOutput(request), "response_format");
}

TEST_F(OrchestratorTest, AgentOutputKeepsTheNewestLinesThatFitMaxBytes) {
  std::string lines;
  for (int i = 1; i <= 100; ++i) lines += std::to_string(i) + "\n";
  std::string task = NewTask();
  std::string agent = FinishedAgent(task, lines);
  OutputRequest request = Output(task, agent);
  request.include_metadata = true;

  request.max_bytes = 10;
  json small = Value(orchestrator().AgentOutput(request));
  EXPECT_EQ(small.value("output", ""), "98\n99\n100\n");
  EXPECT_TRUE(small.value("truncated", false));
  EXPECT_EQ(small["metadata"].value("max_bytes", 0), 10);

  // compact caps the bytes at 8 KiB, summary the lines at 20.
  request.max_bytes = 1 << 20;
  request.response_format = "compact";
  EXPECT_EQ(Value(orchestrator().AgentOutput(request))["metadata"].value("max_bytes", 0), 8192);
  request.response_format = "summary";
  json summary = Value(orchestrator().AgentOutput(request));
  EXPECT_EQ(summary.value("lines", 0), 20);
  EXPECT_THAT(summary.value("output", ""), ::testing::StartsWith("81\n"));
}

TEST_F(OrchestratorTest, AgentOutputMetadataDescribesTheEndedAgent) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(task, "x\n");
  OutputRequest request = Output(task, agent);
  request.include_metadata = true;

  json output = Value(orchestrator().AgentOutput(request));

  const json& metadata = output["metadata"];
  EXPECT_EQ(metadata.value("log_file", ""), LogPath(task, agent));
  EXPECT_EQ(metadata.value("file_size", 0), 2);
  EXPECT_EQ(metadata.value("status", ""), "completed");
  EXPECT_EQ(metadata.value("exit_code", -1), 0) << metadata.dump(2);
  EXPECT_TRUE(metadata["ended_at"].is_string()) << metadata.dump(2);
}

TEST_F(OrchestratorTest, AgentOutputRefusesUnknownAgents) {
  std::string task = NewTask();
  Result<json> missing = orchestrator().AgentOutput(Output(task, "nobody-000000-abcdef"));
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.status().Is(herd::Status::Code::kNotFound)) << missing.status().ToString();
  ExpectInvalid(orchestrator().AgentOutput(Output(task, "../x")), "agent id");
}

// --- Kill ----------------------------------------------------------------------

TEST_F(OrchestratorTest, KillStopsTheAgentAndItsChildren) {
  std::string task = NewTask();
  std::string marks = Subdirectory("marks");
  std::string agent =
      StartAgent(task, {"sh", "-c", "sleep 60 & echo $! > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"; wait",
                        marks + "/child"});
  ASSERT_TRUE(WaitForFile(marks + "/child"));
  Identity child = IdentityOf(std::stoi(ReadFile(marks + "/child")));
  Track(child);
  json entry = AgentEntry(task, agent);
  ASSERT_TRUE(IsRunning(AgentProcessOf(entry)));

  json killed =
      Value(orchestrator().Kill({task, agent, "the test is over", std::chrono::seconds(5)}));

  EXPECT_EQ(killed.value("status", ""), "terminated") << killed.dump(2);
  EXPECT_EQ(killed.value("reason", ""), "the test is over");
  EXPECT_TRUE(killed.value("registry_recorded", false));
  EXPECT_TRUE(killed["cleanup"].value("all_exited", false)) << killed.dump(2);
  EXPECT_FALSE(IsRunning(AgentProcessOf(entry)));
  EXPECT_FALSE(IsRunning(child)) << DescribeProcesses({child});
  EXPECT_TRUE(WaitForExit(SupervisorOf(entry)));
  json after = AgentEntry(task, agent);
  EXPECT_EQ(after.value("status", ""), "terminated") << after.dump(2);
  EXPECT_EQ(Value(orchestrator().TaskStatus(task))["agents"].value("active", -1), 0);
}

TEST_F(OrchestratorTest, KillOfAnEndedAgentChangesNothing) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(task, "");
  json before = TaskRegistry(task);

  json killed = Value(orchestrator().Kill({task, agent, "too late"}));

  EXPECT_TRUE(killed.value("already_ended", false)) << killed.dump(2);
  EXPECT_EQ(killed.value("status", ""), "completed");
  EXPECT_EQ(TaskRegistry(task), before);
}

TEST_F(OrchestratorTest, KillOfAnUnknownAgentIsNotFound) {
  std::string task = NewTask();
  Result<json> killed = orchestrator().Kill({task, "nobody-000000-abcdef", "why not"});
  ASSERT_FALSE(killed.ok());
  EXPECT_TRUE(killed.status().Is(herd::Status::Code::kNotFound)) << killed.status().ToString();
}

// --- StopTask --------------------------------------------------------------------

TEST_F(OrchestratorTest, StopTaskStopsEveryAgentAndRefusesNewDeploys) {
  std::string task = NewTask();
  std::string marks = Subdirectory("marks");
  std::vector<std::string> agents = {
      StartAgent(task, {"sleep", "60"}),
      StartAgent(task, {"sh", "-c", "sleep 60 & echo $! > \"$0.tmp\" && mv \"$0.tmp\" \"$0\"; wait",
                        marks + "/child"}),
      // Ignores SIGTERM (sleep inherits it): only the SIGKILL after the grace ends it.
      StartAgent(task, {"sh", "-c", "trap '' TERM; sleep 60"}),
  };
  std::string finished = FinishedAgent(task, "");
  ASSERT_TRUE(WaitForFile(marks + "/child"));
  Identity child = IdentityOf(std::stoi(ReadFile(marks + "/child")));
  Track(child);
  std::vector<Identity> processes = {child};
  for (const std::string& agent : agents) {
    json entry = AgentEntry(task, agent);
    processes.push_back(AgentProcessOf(entry));
    processes.push_back(SupervisorOf(entry));
  }

  Result<agents::TaskStopResult> stopped =
      orchestrator().StopTask({task, "the plan changed", std::chrono::seconds(1)});

  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  json reply = stopped->ToJson();
  EXPECT_EQ(stopped->marked, 3) << reply.dump(2);
  EXPECT_EQ(stopped->stopped, 3) << reply.dump(2);
  EXPECT_TRUE(stopped->failures.empty()) << reply.dump(2);
  EXPECT_TRUE(stopped->registry_recorded);
  EXPECT_EQ(reply.value("reason", ""), "the plan changed");
  EXPECT_TRUE(WaitForExit(processes)) << DescribeProcesses(processes);
  for (const std::string& agent : agents) {
    json entry = AgentEntry(task, agent);
    EXPECT_EQ(entry.value("status", ""), "terminated") << entry.dump(2);
    EXPECT_EQ(entry.value("termination_reason", ""), "the plan changed");
  }
  EXPECT_EQ(AgentEntry(task, finished).value("status", ""), "completed");

  Result<json> refused = orchestrator().Deploy(CommandAgent(task, {"true"}));
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().Is(herd::Status::Code::kRefused)) << refused.status().ToString();
  EXPECT_THAT(refused.status().message(), HasSubstr("the plan changed"));

  Result<agents::TaskStopResult> again = orchestrator().StopTask({task, "again"});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->already_stopped);
  EXPECT_EQ(again->marked, 0);
  EXPECT_EQ(again->stop.reason, "the plan changed");
  EXPECT_TRUE(again->failures.empty());
}

TEST_F(OrchestratorTest, StopTaskOfAnUnknownTaskIsNotFound) {
  Result<agents::TaskStopResult> stopped =
      orchestrator().StopTask({"TASK-20260101-000000-00000000", "why not"});
  ASSERT_FALSE(stopped.ok());
  EXPECT_TRUE(stopped.status().Is(herd::Status::Code::kNotFound)) << stopped.status().ToString();
}

// --- ReportProgress and ReportFinding ------------------------------------------

TEST_F(OrchestratorTest, ReportProgressRefusesBadReportsAndRecordsNothing) {
  std::string task = NewTask();
  std::string agent = StartAgent(task, {"sleep", "60"});
  json before = TaskRegistry(task);

  ExpectInvalid(orchestrator().ReportProgress({task, agent, "done", "finished", 100}), "done");
  ExpectInvalid(orchestrator().ReportProgress({task, agent, "working", "too far", 101}), "0-100");
  ExpectInvalid(orchestrator().ReportProgress({task, agent, "working", "backwards", -1}), "0-100");
  ExpectInvalid(
      orchestrator().ReportProgress(
          {task, agent, "working", std::string(registry::kMaxReportMessageBytes + 1, 'm'), 50}),
      "message");
  ExpectInvalid(orchestrator().ReportProgress({task, "../x", "working", "hi", 1}), "agent id");
  Result<json> stranger =
      orchestrator().ReportProgress({task, "nobody-000000-abcdef", "working", "hi", 1});
  ASSERT_FALSE(stranger.ok());
  EXPECT_TRUE(stranger.status().Is(herd::Status::Code::kNotFound)) << stranger.status().ToString();

  EXPECT_EQ(TaskRegistry(task), before);
  EXPECT_THAT(ReadLines(ProgressJournal(task, agent)), ::testing::IsEmpty());
}

TEST_F(OrchestratorTest, ReportProgressAppendsTheJournalAndTellsOfTheOtherAgents) {
  std::string task = NewTask();
  std::string first = StartAgent(task, {"sleep", "60"}, "first");
  std::string second = StartAgent(task, {"sleep", "60"}, "second");

  json reported = Value(orchestrator().ReportProgress({task, first, "working", "halfway", 50}));
  json answered = Value(orchestrator().ReportProgress({task, second, "blocked", "waiting", 10}));

  const json& own = reported["own_update"];
  EXPECT_EQ(own.value("agent_id", ""), first);
  EXPECT_EQ(own.value("status", ""), "working");
  EXPECT_EQ(own.value("progress", 0), 50);
  EXPECT_EQ(own.value("message", ""), "halfway");
  std::vector<std::string> journal = ReadLines(ProgressJournal(task, first));
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(json::parse(journal[0]), own);
  json entry = AgentEntry(task, first);
  EXPECT_EQ(entry.value("status", ""), "working");
  EXPECT_EQ(entry.value("progress", 0), 50);
  EXPECT_EQ(entry.value("last_message", ""), "halfway");

  const json& coordination = answered["coordination_info"];
  ASSERT_EQ(coordination["agents"].size(), 1u) << coordination.dump(2);
  EXPECT_EQ(coordination["agents"][0].value("agent_id", ""), first);
  EXPECT_EQ(coordination["agents"][0].value("status", ""), "working");
  EXPECT_EQ(coordination["agents"][0].value("progress", 0), 50);
  ASSERT_EQ(coordination["recent_progress"].size(), 1u) << coordination.dump(2);
  EXPECT_EQ(coordination["recent_progress"][0], own);
  EXPECT_EQ(coordination.value("active_count", 0), 2);
}

TEST_F(OrchestratorTest, AnEndedAgentRefusesProgressButStillTakesFindings) {
  std::string task = NewTask();
  std::string agent = FinishedAgent(task, "");

  Result<json> progress = orchestrator().ReportProgress({task, agent, "working", "again", 10});

  ASSERT_FALSE(progress.ok());
  EXPECT_TRUE(progress.status().Is(herd::Status::Code::kRefused)) << progress.status().ToString();
  EXPECT_THAT(progress.status().message(), HasSubstr("already ended"));
  EXPECT_EQ(AgentEntry(task, agent).value("status", ""), "completed");
  EXPECT_THAT(ReadLines(ProgressJournal(task, agent)), ::testing::IsEmpty());
  // An agent that reported "completed" may still be finishing: its last
  // findings are kept.
  Value(orchestrator().ReportFinding({task, agent, "insight", "info", "a last word", nullptr}));
  EXPECT_EQ(ReadLines(FindingsJournal(task, agent)).size(), 1u);
}

TEST_F(OrchestratorTest, ReportFindingRefusesBadFindingsAndRecordsNothing) {
  std::string task = NewTask();
  std::string agent = StartAgent(task, {"sleep", "60"});
  json before = TaskRegistry(task);

  ExpectInvalid(orchestrator().ReportFinding({task, agent, "issue", "urgent", "m", nullptr}),
                "severity");
  ExpectInvalid(orchestrator().ReportFinding({task, agent, "", "low", "m", nullptr}),
                "finding_type");
  ExpectInvalid(orchestrator().ReportFinding(
                    {task, agent, "issue", "low",
                     std::string(registry::kMaxReportMessageBytes + 1, 'm'), nullptr}),
                "message");
  ExpectInvalid(
      orchestrator().ReportFinding({task,
                                    agent,
                                    "issue",
                                    "low",
                                    "m",
                                    {{"blob", std::string(registry::kMaxFindingDataBytes, 'd')}}}),
      "data");
  Result<json> stranger =
      orchestrator().ReportFinding({task, "nobody-000000-abcdef", "issue", "low", "m", nullptr});
  ASSERT_FALSE(stranger.ok());
  EXPECT_TRUE(stranger.status().Is(herd::Status::Code::kNotFound)) << stranger.status().ToString();

  EXPECT_EQ(TaskRegistry(task), before);
  EXPECT_THAT(ReadLines(FindingsJournal(task, agent)), ::testing::IsEmpty());
}

TEST_F(OrchestratorTest, ReportFindingAppendsTheJournalWithItsData) {
  std::string task = NewTask();
  std::string agent = StartAgent(task, {"sleep", "60"});

  json reported = Value(orchestrator().ReportFinding(
      {task, agent, "issue", "high", "a bug", {{"file", "src/x.cc"}, {"line", 7}}}));

  const json& own = reported["own_finding"];
  EXPECT_EQ(own.value("agent_id", ""), agent);
  EXPECT_EQ(own.value("finding_type", ""), "issue");
  EXPECT_EQ(own.value("severity", ""), "high");
  EXPECT_EQ(own["data"], json({{"file", "src/x.cc"}, {"line", 7}}));
  std::vector<std::string> journal = ReadLines(FindingsJournal(task, agent));
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(json::parse(journal[0]), own);
  json status = Value(orchestrator().TaskStatus(task));
  EXPECT_EQ(status["enhanced_progress"].value("total_findings", 0), 1);
  EXPECT_EQ(status["enhanced_progress"]["recent_findings"][0], own);
}

// --- UpdateLimits --------------------------------------------------------------

TEST_F(OrchestratorTest, UpdateLimitsAdmitsAgentsThatWereRefused) {
  CreateTaskRequest request = TaskRequest();
  request.max_agents = 1;
  std::string task = NewTask(request);
  StartAgent(task, {"sleep", "60"});
  ASSERT_FALSE(orchestrator().Deploy(CommandAgent(task, {"sleep", "60"})).ok());

  LimitsUpdate update;
  update.task_id = task;
  update.max_agents = 2;
  update.budget.max_cost_usd = 5;
  json updated = Value(orchestrator().UpdateLimits(update));

  EXPECT_EQ(updated["limits"].value("max_agents", 0), 2) << updated.dump(2);
  EXPECT_EQ(updated["limits"].value("max_depth", 0), TaskRegistry(task).value("max_depth", -1));
  EXPECT_DOUBLE_EQ(updated["budget"].value("max_cost_usd", 0.0), 5.0);
  EXPECT_EQ(TaskRegistry(task).value("max_agents", 0), 2);
  StartAgent(task, {"sleep", "60"});
  EXPECT_EQ(TaskRegistry(task)["agents"].size(), 2u);
}

TEST_F(OrchestratorTest, UpdateLimitsRefusesLimitsBelowOne) {
  std::string task = NewTask();
  json before = TaskRegistry(task);
  LimitsUpdate update;
  update.task_id = task;
  update.max_concurrent = 0;

  Result<json> refused = orchestrator().UpdateLimits(update);

  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("max_concurrent"));
  EXPECT_EQ(TaskRegistry(task), before);
}

// --- ProgressTimeline ----------------------------------------------------------

TEST_F(OrchestratorTest, ProgressTimelineMergesReportsOldestFirst) {
  std::string task = NewTask();
  std::string first = StartAgent(task, {"sleep", "60"}, "first");
  std::string second = StartAgent(task, {"sleep", "60"}, "second");
  Value(orchestrator().ReportProgress({task, first, "working", "one", 10}));
  Value(orchestrator().ReportFinding({task, second, "insight", "low", "two", nullptr}));
  Value(orchestrator().ReportProgress({task, second, "working", "three", 20}));
  Value(orchestrator().ReportProgress({task, first, "working", "four", 30}));
  // A line past the journal's committed length belongs to no transaction.
  ASSERT_TRUE(AppendLine(ProgressJournal(task, first),
                         R"({"timestamp":"2999-01-01T00:00:00Z","message":"never committed"})")
                  .ok());

  json timeline = Value(orchestrator().ProgressTimeline(task));

  std::vector<std::string> messages, types;
  for (const json& entry : timeline["timeline"]) {
    messages.push_back(entry.value("message", ""));
    types.push_back(entry.value("entry_type", ""));
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"one", "two", "three", "four"}));
  EXPECT_EQ(types, (std::vector<std::string>{"progress", "finding", "progress", "progress"}));
  EXPECT_EQ(timeline.value("total_entries", 0), 4);
}

}  // namespace
}  // namespace herd::test_util

int main(int argc, char** argv) {
  return herd::test_util::TestMainOrSupervisor(argc, argv);
}
