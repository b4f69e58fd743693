// The herd command line, driven as a person or a script would: the real
// binary (HERD_BINARY) in a subprocess. Exit codes (0 success, 1 refused or
// failed, 2 usage), --json output that parses and carries `success`,
// readable tables, progress and findings with their validation and
// journals, logs, read-only status, and tasks created for another project
// directory found from anywhere.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

class CliTest : public HerdTest {
 protected:
  // A task with one running agent (sleep 300).
  void StartAgent() {
    task_ = CreateTask();
    agent_ = DeployAgent(task_, {"sleep", "300"});
  }

  std::string ProgressPath() const {
    return TaskDirectory(task_) + "/progress/" + agent_ + "_progress.jsonl";
  }
  std::string FindingsPath() const {
    return TaskDirectory(task_) + "/findings/" + agent_ + "_findings.jsonl";
  }

  // Expects `herd ARGS` to exit with `code`.
  void ExpectExit(int code, const std::vector<std::string>& args) {
    CommandResult result = Herd(args);
    EXPECT_EQ(result.exit_code, code) << result.Describe();
  }

  // Every file under the workspace with its contents.
  std::map<std::string, std::string> WorkspaceFiles() const {
    std::map<std::string, std::string> files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(workspace())) {
      if (entry.is_regular_file()) files[entry.path().string()] = ReadFile(entry.path().string());
    }
    return files;
  }

  std::string task_;
  std::string agent_;
};

// --- Exit codes and --json ------------------------------------------------------------

TEST_F(CliTest, UnknownCommandOrOptionIsUsageError) {
  ExpectExit(2, {});
  ExpectExit(2, {"frobnicate"});
  ExpectExit(2, {"--bogus", "task", "list"});
  ExpectExit(2, {"task", "list", "--bogus"});
  ExpectExit(2, {"task"});
}

TEST_F(CliTest, MissingRequiredArgumentIsUsageError) {
  ExpectExit(2, {"task", "create"});
  ExpectExit(2, {"status"});
  ExpectExit(2, {"deploy", "TASK-20260101-000000-00000000"});
  ExpectExit(2, {"logs", "TASK-20260101-000000-00000000"});
  ExpectExit(2, {"kill", "TASK-20260101-000000-00000000"});
  ExpectExit(2, {"progress", "TASK-20260101-000000-00000000", "a-1", "--message", "m"});
  ExpectExit(
      2, {"finding", "TASK-20260101-000000-00000000", "a-1", "--type", "issue", "--message", "m"});
}

TEST_F(CliTest, InvalidOptionValueIsUsageError) {
  std::string task = CreateTask();
  ExpectExit(2, {"deploy", task, "--type", "t", "--prompt", "p", "--prompt-file", "/dev/null"});
  ExpectExit(2, {"deploy", task, "--type", "t", "--backend", "claude", "--", "true"});
  ExpectExit(2, {"task", "create", "desc", "--max-concurrent", "many"});
  ExpectExit(2, {"kill", task, "a-1", "--grace", "soon"});
  ExpectExit(2, {"task", "create", "desc", "--context", "[1,2]"});
  ExpectExit(2, {"task", "create", "desc", "--context", R"({"priority": "P0"})"});
}

TEST_F(CliTest, RefusedOrFailedRequestExitsOneAndSaysWhy) {
  CommandResult unknown = Herd({"status", "TASK-20260101-000000-00000000"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.Describe();
  EXPECT_THAT(unknown.err, HasSubstr("TASK-20260101-000000-00000000"));
  EXPECT_THAT(unknown.err, HasSubstr("herd task list"));
  ExpectExit(1, {"task", "create", "desc", "--priority", "P9"});
  ExpectExit(1, {"task", "create", "desc", "--max-concurrent", "0"});
  ExpectExit(1, {"task", "create", "desc", "--context", R"({"constraints": "one"})"});
  std::string task = CreateTask();
  // Values the request's parameters refuse: the checks and words MCP calls get.
  ExpectExit(1, {"deploy", task, "--type", "t", "--backend", "nope"});
  ExpectExit(1, {"kill", task, "a-1", "--grace", "-1"});
  // The same range as kill_real_agent's grace_seconds (agents/killer.h).
  ExpectExit(1, {"kill", task, "a-1", "--grace", "601"});
  ExpectExit(1, {"task", "create", "   "});
  ExpectExit(1, {"task", "create", "desc", "--cwd", root() + "/not-a-directory"});
  ExpectExit(1, {"kill", task, "ghost-000000-abcdef"});
}

TEST_F(CliTest, RefusedValueSaysWhatIsAllowed) {
  CommandResult priority = Herd({"task", "create", "desc", "--priority", "P9"});
  EXPECT_THAT(priority.err, HasSubstr("--priority must be one of P0, P1, P2, P3, P4, not \"P9\""));
  CommandResult grace = Herd({"kill", "TASK-20260101-000000-00000000", "a-1", "--grace", "601"});
  EXPECT_THAT(grace.err, HasSubstr("--grace must be a number in 0-600, not 601"));
  CommandResult limit = Herd({"task", "create", "desc", "--max-agents", "0", "--json"});
  EXPECT_EQ(limit.exit_code, 1) << limit.Describe();
  EXPECT_EQ(limit.Json().value("success", true), false) << limit.out;
  EXPECT_THAT(limit.Json().value("error", ""), HasSubstr("--max-agents"));
}

TEST_F(CliTest, SuccessExitsZero) {
  ExpectExit(0, {"--help"});
  ExpectExit(0, {"--version"});
  ExpectExit(0, {"task", "list"});
  ExpectExit(0, {"task", "create", "a description long enough"});
}

TEST_F(CliTest, DeployHelpSaysWhichBackendsAreProvenAndWhichIsExperimental) {
  CommandResult help = Herd({"deploy", "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.Describe();
  EXPECT_THAT(help.out, HasSubstr("cursor-agent is experimental"));
  EXPECT_THAT(help.out, HasSubstr("tested end to end with their real CLIs"));
}

TEST_F(CliTest, JsonOutputParsesAndCarriesSuccess) {
  CommandResult created = Herd({"task", "create", "json please", "--json"});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  json task = created.Json();
  ASSERT_FALSE(task.is_discarded()) << created.out;
  EXPECT_EQ(task["success"], true);
  EXPECT_EQ(task["status"], "INITIALIZED");
  EXPECT_TRUE(task["limits"].is_object());

  CommandResult failed = Herd({"status", "TASK-20260101-000000-00000000", "--json"});
  EXPECT_EQ(failed.exit_code, 1);
  json error = failed.Json();
  ASSERT_FALSE(error.is_discarded()) << failed.out;
  EXPECT_EQ(error["success"], false);
  EXPECT_THAT(error.value("error", ""), HasSubstr("TASK-20260101-000000-00000000"));

  // --json works before and after the subcommand.
  for (const auto& args : {std::vector<std::string>{"--json", "task", "list"},
                           std::vector<std::string>{"task", "list", "--json"}}) {
    CommandResult listed = Herd(args);
    json list = listed.Json();
    ASSERT_FALSE(list.is_discarded()) << listed.Describe();
    EXPECT_EQ(list["success"], true);
    ASSERT_EQ(list["tasks"].size(), 1u);
    EXPECT_EQ(list["tasks"][0]["task_id"], task["task_id"]);
  }
}

TEST_F(CliTest, StatusJsonHasTheReferenceKeys) {
  StartAgent();
  json status = Status(task_);
  for (const char* key : {"task_id", "description", "status", "workspace", "agents", "hierarchy",
                          "enhanced_progress", "spiral_status", "limits"}) {
    EXPECT_TRUE(status.contains(key)) << key;
  }
  for (const char* key : {"total_spawned", "active", "completed", "agents_list"}) {
    EXPECT_TRUE(status["agents"].contains(key)) << key;
  }
  for (const char* key : {"max_agents", "max_concurrent", "max_depth"}) {
    EXPECT_TRUE(status["limits"].contains(key)) << key;
  }
  EXPECT_EQ(status["agents"]["agents_list"][0]["id"], agent_);
}

// --- Tables ------------------------------------------------------------------------

TEST_F(CliTest, StatusPrintsAnAlignedAgentTable) {
  StartAgent();

  CommandResult status = Herd({"status", task_});

  ASSERT_EQ(status.exit_code, 0) << status.Describe();
  std::vector<std::string> lines;
  std::istringstream text(status.out);
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  auto header = std::find_if(lines.begin(), lines.end(),
                             [](const std::string& line) { return line.rfind("AGENT ", 0) == 0; });
  ASSERT_NE(header, lines.end()) << status.out;
  ASSERT_NE(header + 1, lines.end());
  const std::string& row = *(header + 1);
  EXPECT_EQ(row.rfind(agent_, 0), 0u) << row;
  // Each value starts under its column's title.
  EXPECT_EQ(row.find("running"), header->find("STATUS")) << *header << "\n" << row;
  EXPECT_EQ(row.find("alive"), header->find("LIVENESS")) << *header << "\n" << row;
  EXPECT_THAT(status.out, HasSubstr(task_));
  EXPECT_THAT(status.out, HasSubstr("1 active"));
}

TEST_F(CliTest, TaskListPrintsATableOfTasks) {
  std::string first = CreateTask({}, "the first task");
  std::string second = CreateTask({}, "the second task");

  CommandResult list = Herd({"task", "list"});

  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_EQ(list.out.rfind("TASK ", 0), 0u) << list.out;
  EXPECT_THAT(list.out, HasSubstr("DESCRIPTION"));
  EXPECT_THAT(list.out, HasSubstr(first));
  EXPECT_THAT(list.out, HasSubstr("the second task"));
}

// --- Progress and findings ------------------------------------------------------------

TEST_F(CliTest, ProgressWithUnknownStatusIsRefused) {
  StartAgent();
  CommandResult result =
      Herd({"progress", task_, agent_, "--status", "finished", "--message", "m"});
  EXPECT_EQ(result.exit_code, 1) << result.Describe();
  EXPECT_THAT(result.err, HasSubstr("finished"));
  EXPECT_FALSE(FileExists(ProgressPath()));
}

TEST_F(CliTest, ProgressOutsideZeroToHundredIsRefused) {
  StartAgent();
  for (const char* progress : {"101", "-1"}) {
    CommandResult result = Herd({"progress", task_, agent_, "--status", "working", "--message", "m",
                                 "--progress", progress});
    EXPECT_EQ(result.exit_code, 1) << result.Describe();
    EXPECT_THAT(result.err, HasSubstr("0-100"));
  }
  EXPECT_FALSE(FileExists(ProgressPath()));
}

TEST_F(CliTest, ReportAfterAFinalStatusIsRefused) {
  StartAgent();
  HerdJson({"progress", task_, agent_, "--status", "completed", "--message", "done", "--progress",
            "100"});

  CommandResult again =
      Herd({"progress", task_, agent_, "--status", "working", "--message", "more"});

  EXPECT_EQ(again.exit_code, 1) << again.Describe();
  EXPECT_THAT(again.err, HasSubstr("already ended"));
  json registry = TaskRegistry(task_);
  EXPECT_EQ(AgentIn(registry, agent_)["status"], "completed");
  EXPECT_EQ(registry["active_count"], 0);
  EXPECT_EQ(registry["completed_count"], 1);
  EXPECT_EQ(ReadLines(ProgressPath()).size(), 1u);
  // The process that reported itself done is still stopped by kill.
  Identity process = AgentProcessOf(AgentIn(registry, agent_));
  json killed = HerdJson({"kill", task_, agent_, "--grace", "5"});
  EXPECT_TRUE(killed.value("already_ended", false));
  EXPECT_FALSE(IsRunning(process));
}

TEST_F(CliTest, ProgressAndFindingForAnUnknownAgentAreRefused) {
  StartAgent();
  ExpectExit(1,
             {"progress", task_, "ghost-000000-abcdef", "--status", "working", "--message", "m"});
  ExpectExit(1, {"finding", task_, "ghost-000000-abcdef", "--type", "issue", "--severity", "low",
                 "--message", "m"});
}

TEST_F(CliTest, FindingWithUnknownSeverityOrBadDataIsRejected) {
  StartAgent();
  ExpectExit(1,
             {"finding", task_, agent_, "--type", "issue", "--severity", "dire", "--message", "m"});
  ExpectExit(2, {"finding", task_, agent_, "--type", "issue", "--severity", "low", "--message", "m",
                 "--data", "{not json"});
  ExpectExit(1, {"finding", task_, agent_, "--type", "issue", "--severity", "low", "--message", "m",
                 "--data", "[1]"});
  EXPECT_FALSE(FileExists(FindingsPath()));
}

TEST_F(CliTest, EveryProgressAndFindingCallAppendsOneJsonLine) {
  StartAgent();
  HerdJson({"progress", task_, agent_, "--status", "working", "--message", "step one", "--progress",
            "10"});
  HerdJson({"progress", task_, agent_, "--status", "blocked", "--message", "step two", "--progress",
            "20"});
  HerdJson({"finding", task_, agent_, "--type", "issue", "--severity", "high", "--message",
            "found one", "--data", "{\"file\":\"a.cc\",\"line\":3}"});

  std::vector<std::string> progress = ReadLines(ProgressPath());
  ASSERT_EQ(progress.size(), 2u);
  json second = json::parse(progress[1]);
  EXPECT_EQ(second["agent_id"], agent_);
  EXPECT_EQ(second["status"], "blocked");
  EXPECT_EQ(second["message"], "step two");
  EXPECT_EQ(second["progress"], 20);
  EXPECT_TRUE(second["timestamp"].is_string());
  std::vector<std::string> findings = ReadLines(FindingsPath());
  ASSERT_EQ(findings.size(), 1u);
  json finding = json::parse(findings[0]);
  EXPECT_EQ(finding["finding_type"], "issue");
  EXPECT_EQ(finding["severity"], "high");
  EXPECT_EQ(finding["message"], "found one");
  EXPECT_EQ(finding["data"], (json{{"file", "a.cc"}, {"line", 3}}));
  json entry = AgentIn(TaskRegistry(task_), agent_);
  EXPECT_EQ(entry["status"], "blocked");
  EXPECT_EQ(entry["progress"], 20);
}

TEST_F(CliTest, StatusJsonShowsProgressAndFindingsNewestFirst) {
  StartAgent();
  for (int step = 1; step <= 12; ++step) {
    HerdJson({"progress", task_, agent_, "--status", "working", "--message",
              "step " + std::to_string(step), "--progress", std::to_string(step)});
  }
  for (int finding = 1; finding <= 6; ++finding) {
    HerdJson({"finding", task_, agent_, "--type", "insight", "--severity", "info", "--message",
              "finding " + std::to_string(finding)});
  }

  json progress = Status(task_)["enhanced_progress"];

  EXPECT_EQ(progress["total_progress_entries"], 12);
  EXPECT_EQ(progress["total_findings"], 6);
  ASSERT_EQ(progress["recent_updates"].size(), 10u);
  EXPECT_EQ(progress["recent_updates"][0]["message"], "step 12");
  EXPECT_EQ(progress["recent_updates"][9]["message"], "step 3");
  ASSERT_EQ(progress["recent_findings"].size(), 5u);
  EXPECT_EQ(progress["recent_findings"][0]["message"], "finding 6");
}

TEST_F(CliTest, ProgressReplyCarriesCoordinationInfo) {
  StartAgent();
  std::string other = DeployAgent(task_, {"sleep", "300"}, "peer");
  HerdJson({"finding", task_, other, "--type", "issue", "--severity", "low", "--message", "peer"});

  json reply = HerdJson({"progress", task_, agent_, "--status", "working", "--message", "hi"});

  json coordination = reply["coordination_info"];
  ASSERT_EQ(coordination["agents"].size(), 1u) << reply.dump(2);
  EXPECT_EQ(coordination["agents"][0]["agent_id"], other);
  EXPECT_EQ(coordination["recent_findings"][0]["message"], "peer");
}

// --- Logs ----------------------------------------------------------------------------

TEST_F(CliTest, LogsTailPrintsTheLastLines) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"seq", "1", "50"});
  WaitForAgentToEnd(task, agent);

  CommandResult tail = Herd({"logs", task, agent, "--tail", "3"});

  EXPECT_EQ(tail.exit_code, 0) << tail.Describe();
  EXPECT_EQ(tail.out, "48\n49\n50\n");
}

TEST_F(CliTest, LogsFollowPrintsOutputUntilTheAgentEnds) {
  std::string task = CreateTask();
  std::string fifo = root() + "/go";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Opened read-write, the fifo never blocks the test; the agent prints,
  // waits for a line from the test, prints it and ends.
  int gate = ::open(fifo.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(gate, 0);
  std::string agent =
      DeployAgent(task, {"sh", "-c", "echo first; head -n 1 \"$0\"; echo last", fifo});
  HerdProcess follow({"logs", task, agent, "--follow"});
  ASSERT_TRUE(follow.WaitForOutput("first\n")) << "follow printed nothing";

  ASSERT_EQ(::write(gate, "middle\n", 7), 7);
  CommandResult result = follow.Wait();
  ::close(gate);

  EXPECT_EQ(result.exit_code, 0) << result.Describe();
  EXPECT_FALSE(result.timed_out) << "follow did not end with the agent";
  EXPECT_EQ(result.out, "first\nmiddle\nlast\n");
}

// --- Reads never write ----------------------------------------------------------------

TEST_F(CliTest, ReadingCommandsNeverWrite) {
  StartAgent();
  HerdJson({"progress", task_, agent_, "--status", "working", "--message", "m"});
  std::map<std::string, std::string> before = WorkspaceFiles();

  for (const auto& args : {std::vector<std::string>{"status", task_},
                           std::vector<std::string>{"status", task_, "--json"},
                           std::vector<std::string>{"task", "list"},
                           std::vector<std::string>{"logs", task_, agent_}}) {
    CommandResult result = Herd(args);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
  }

  EXPECT_EQ(WorkspaceFiles(), before);
}

// --- Tasks for other project directories -------------------------------------------------

TEST_F(CliTest, TaskCreatedForAProjectIsFoundFromAnotherDirectory) {
  std::string task = CreateTask({"--cwd", project()});
  std::string elsewhere = Subdirectory("elsewhere");
  std::string project_workspace = project() + "/.agent-workspace";

  RunOptions other_workspace;
  other_workspace.cwd = elsewhere;
  other_workspace.environment = {{"CLAUDE_ORCHESTRATOR_WORKSPACE", root() + "/other-workspace"}};
  RunOptions no_workspace;
  no_workspace.cwd = elsewhere;
  no_workspace.environment = {{"CLAUDE_ORCHESTRATOR_WORKSPACE", std::nullopt}};

  json via_other = Status(task, other_workspace);
  json via_flag = HerdJson({"status", task, "--workspace", root() + "/third"}, no_workspace);
  json via_default = Status(task, no_workspace);
  json listed = HerdJson({"task", "list"}, no_workspace);

  for (const json& status : {via_other, via_flag, via_default}) {
    EXPECT_EQ(status["workspace"], project_workspace + "/" + task);
    EXPECT_EQ(status["client_cwd"], project());
  }
  ASSERT_EQ(listed["tasks"].size(), 1u) << listed.dump(2);
  EXPECT_EQ(listed["tasks"][0]["task_id"], task);
  // And its agents work there, wherever they were deployed from.
  CommandResult deploy = Herd(DeployArgs(task, "worker", {"pwd", "-P"}), no_workspace);
  ASSERT_EQ(deploy.exit_code, 0) << deploy.Describe();
  std::string agent = deploy.Json().value("agent_id", "");
  std::string registry = project_workspace + "/" + task + "/AGENT_REGISTRY.json";
  ASSERT_TRUE(WaitForExit(SupervisorOf(AgentIn(ReadJsonFile(registry), agent))));
  EXPECT_EQ(ReadFile(deploy.Json().value("log_file", "")),
            std::filesystem::canonical(project()).string() + "\n");
}

TEST_F(CliTest, TaskForAProjectIsOnlyFoundThroughTheKnownWorkspaces) {
  std::string task = CreateTask({"--cwd", project()});
  RunOptions forgetful;
  forgetful.cwd = Subdirectory("elsewhere");
  forgetful.environment = {{"XDG_STATE_HOME", Subdirectory("empty-state")}};

  CommandResult status = Herd({"status", task}, forgetful);

  EXPECT_EQ(status.exit_code, 1) << status.Describe();
  EXPECT_TRUE(FileExists(state() + "/herd/workspaces.json"));
}

// --- herd wait -------------------------------------------------------------------------

TEST_F(CliTest, WaitExitsZeroOnceTheAgentsHaveEnded) {
  task_ = CreateTask();
  std::string quick = DeployAgent(task_, {"sleep", "0.3"});
  std::string failing = DeployAgent(task_, {"sh", "-c", "exit 5"});

  CommandResult waited = Herd({"wait", task_, quick, failing, "--json"});

  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  json reply = waited.Json();
  EXPECT_EQ(reply["success"], true);
  EXPECT_EQ(reply["condition_met"], true);
  EXPECT_EQ(reply["still_active"], json::array());
  ASSERT_EQ(reply["agents"].size(), 2u);
  for (const json& agent : reply["agents"]) {
    bool is_quick = agent["agent_id"] == quick;
    EXPECT_EQ(agent["status"], is_quick ? "completed" : "error") << agent.dump();
    EXPECT_EQ(agent["exit_code"], is_quick ? 0 : 5) << agent.dump();
  }
}

TEST_F(CliTest, WaitTimesOutWithExitFourNamingWhoIsStillActive) {
  StartAgent();  // sleep 300

  CommandResult waited = Herd({"wait", task_, "--timeout", "0.2"});

  EXPECT_EQ(waited.exit_code, 4) << waited.Describe();
  EXPECT_THAT(waited.out, HasSubstr("timed out after"));
  EXPECT_THAT(waited.out, HasSubstr("1 still active: " + agent_));
  EXPECT_THAT(waited.out, HasSubstr("AGENT"));  // the table
}

TEST_F(CliTest, WaitAnyReturnsWhenOneHasEnded) {
  StartAgent();  // sleep 300
  std::string quick = DeployAgent(task_, {"true"});

  CommandResult waited = Herd({"wait", task_, agent_, quick, "--any", "--json"});

  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  EXPECT_EQ(waited.Json()["mode"], "any");
  EXPECT_EQ(waited.Json()["still_active"], json::array({agent_}));
}

TEST_F(CliTest, WaitRefusesUnknownAgentsAndBothModes) {
  StartAgent();
  CommandResult unknown = Herd({"wait", task_, "nobody-000000-abcdef"});
  EXPECT_EQ(unknown.exit_code, 1) << unknown.Describe();
  EXPECT_THAT(unknown.err, HasSubstr("nobody-000000-abcdef is not part of task"));
  ExpectExit(2, {"wait", task_, "--any", "--all"});
  ExpectExit(1, {"wait", task_, "--timeout", "100000"});  // over the maximum, a day
}

}  // namespace
}  // namespace herd::test_util
