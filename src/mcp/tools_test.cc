// The MCP tools through ToolSet::Call, by tool name and argument JSON only
// (so the tests hold whatever the handlers look like inside): every
// required argument missing, every argument of the wrong type, out of its
// range or outside its enum, each a handled failure ({"success": false,
// "error"} with is_error, never an exception); and a call of every tool that
// succeeds, on a real workspace with real `command` agents.
//
// The argument cases are generated from each tool's own inputSchema, so a
// schema that promises a check the handler does not make fails here.
//
// This file holds herd_mcp_tests' main(): deploys start `herd supervise` from
// /proc/self/exe, and the binary plays that part
// (agents/supervisor_main_for_test.h).
#include "mcp/tools.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "agents/supervisor_main_for_test.h"
#include "agents/testing_util_for_test.h"
#include "worktrees/git.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class ToolsTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    orchestrator_ = std::make_unique<Orchestrator>(registry::Workspace(workspace()),
                                                   registry::RegistryStores());
    tools_ = std::make_unique<mcp::ToolSet>(*orchestrator_);
  }

  mcp::ToolOutcome CallTool(const std::string& name, const json& arguments) {
    progress_.clear();
    mcp::CallContext context;
    context.progress = [this](const std::string& message) { progress_.push_back(message); };
    return tools_->Call(name, arguments, context);
  }

  // The result of a call that must succeed.
  json Succeeds(const std::string& name, const json& arguments) {
    mcp::ToolOutcome outcome = CallTool(name, arguments);
    EXPECT_FALSE(outcome.is_error)
        << name << " " << arguments.dump() << ": " << outcome.structured.dump();
    EXPECT_EQ(outcome.structured.value("success", false), true) << outcome.structured.dump();
    return outcome.structured;
  }

  // The error of a call that must fail as a handled failure.
  std::string Fails(const std::string& name, const json& arguments) {
    mcp::ToolOutcome outcome = CallTool(name, arguments);
    EXPECT_TRUE(outcome.is_error) << name << " " << arguments.dump()
                                  << " was accepted: " << outcome.structured.dump().substr(0, 2000);
    EXPECT_EQ(outcome.structured.value("success", true), false) << outcome.structured.dump();
    EXPECT_EQ(outcome.structured.size(), 2u) << outcome.structured.dump();
    std::string error = outcome.structured.value("error", "");
    EXPECT_FALSE(error.empty()) << outcome.structured.dump();
    return error;
  }

  const json& Definitions() const { return tools_->Definitions(); }

  std::vector<std::string> ToolNames() const {
    std::vector<std::string> names;
    for (const json& tool : Definitions()) names.push_back(tool.value("name", ""));
    return names;
  }

  const json& InputSchema(const std::string& name) const {
    for (const json& tool : Definitions()) {
      if (tool.value("name", "") == name) return tool["inputSchema"];
    }
    throw std::runtime_error("no tool " + name);
  }

  // A task with an agent that has ended (its output is "one\ntwo\n") and one
  // that runs, made through the tools themselves.
  void MakeTask() {
    task_ = Succeeds("create_real_task", {{"description", "a task made by a tools test"}})
                .value("task_id", "");
    spare_task_ = Succeeds("create_real_task", {{"description", "a task for stop_task"}})
                      .value("task_id", "");
    ended_ = Succeeds("deploy_headless_agent", {{"task_id", task_},
                                                {"agent_type", "ended"},
                                                {"prompt", "p"},
                                                {"backend", "command"},
                                                {"command", {"printf", "one\\ntwo\\n"}}})
                 .value("agent_id", "");
    WaitForAgentToEnd(task_, ended_);
    running_ = Succeeds("deploy_headless_agent", {{"task_id", task_},
                                                  {"agent_type", "running"},
                                                  {"prompt", "p"},
                                                  {"backend", "command"},
                                                  {"command", {"sleep", "60"}}})
                   .value("agent_id", "");
    // An ended agent with a commit in its own worktree: the agents' directory
    // (the root, holding the workspace and herd's state) is a repository.
    WriteFile(root() + "/.gitignore", "/workspace/\n/state/\n/project/\n");
    for (std::vector<std::string> args : {std::vector<std::string>{"init", "-q", "-b", "main"},
                                          {"config", "user.email", "t@example.com"},
                                          {"config", "user.name", "T"},
                                          {"add", ".gitignore"},
                                          {"commit", "-q", "-m", "initial"}}) {
      ASSERT_TRUE(worktrees::Git(root(), args).ok());
    }
    worktree_task_ = Succeeds("create_real_task", {{"description", "a task with worktrees"}})
                         .value("task_id", "");
    worktree_agent_ =
        Succeeds("deploy_headless_agent",
                 {{"task_id", worktree_task_},
                  {"agent_type", "coder"},
                  {"prompt", "p"},
                  {"backend", "command"},
                  {"worktree", true},
                  {"command", {"sh", "-c", "echo x > x.txt; git add x.txt; git commit -qm x"}}})
            .value("agent_id", "");
    WaitForAgentToEnd(worktree_task_, worktree_agent_);
  }

  // Arguments with which each tool succeeds (after MakeTask).
  json ValidArguments(const std::string& name) const {
    if (name == "create_real_task") return {{"description", "another task of a tools test"}};
    if (name == "deploy_headless_agent") {
      return {{"task_id", task_},
              {"agent_type", "worker"},
              {"prompt", "p"},
              {"backend", "command"},
              {"command", {"true"}}};
    }
    if (name == "get_real_task_status") return {{"task_id", task_}};
    if (name == "get_agent_output") return {{"task_id", task_}, {"agent_id", ended_}};
    if (name == "kill_real_agent") return {{"task_id", task_}, {"agent_id", ended_}};
    // Its own task: a stopped task_ would refuse the spawn below.
    if (name == "stop_task") return {{"task_id", spare_task_}, {"reason", "enough"}};
    if (name == "update_agent_progress") {
      return {{"task_id", task_},
              {"agent_id", running_},
              {"status", "working"},
              {"message", "m"},
              {"progress", 5}};
    }
    if (name == "report_agent_finding") {
      return {{"task_id", task_},
              {"agent_id", running_},
              {"finding_type", "issue"},
              {"severity", "low"},
              {"message", "m"}};
    }
    if (name == "spawn_child_agent") {
      return {{"task_id", task_},    {"parent_agent_id", running_}, {"child_agent_type", "child"},
              {"child_prompt", "p"}, {"backend", "command"},        {"command", {"true"}}};
    }
    if (name == "get_health_status") return json::object();
    if (name == "get_agent_diff" || name == "merge_agent_work") {
      return {{"task_id", worktree_task_}, {"agent_id", worktree_agent_}};
    }
    // Ended already: returns at once.
    if (name == "wait_for_agents") return {{"task_id", task_}, {"agent_ids", {ended_}}};
    // Queued behind the running agent's turn.
    if (name == "send_agent_message") {
      return {{"task_id", task_}, {"agent_id", running_}, {"message", "once more"}};
    }
    ADD_FAILURE() << "no valid arguments known for tool " << name << ": add them here";
    return json::object();
  }

  std::string task_, spare_task_, ended_, running_;
  std::string worktree_task_, worktree_agent_;
  std::vector<std::string> progress_;

 private:
  std::unique_ptr<Orchestrator> orchestrator_;
  std::unique_ptr<mcp::ToolSet> tools_;
};

// A value of the wrong JSON type for a property of `type`.
json WrongTypeFor(const std::string& type) {
  if (type == "string") return 42;
  if (type == "boolean") return "yes";
  if (type == "array") return "a, b";
  if (type == "object") return "key=value";
  return "7";  // integer, number
}

TEST_F(ToolsTest, EveryToolIsListedWithAnObjectSchema) {
  std::vector<std::string> names = ToolNames();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{"create_real_task", "deploy_headless_agent",
                                   "get_real_task_status", "get_agent_output", "kill_real_agent",
                                   "stop_task", "update_agent_progress", "report_agent_finding",
                                   "spawn_child_agent", "get_health_status", "wait_for_agents",
                                   "get_agent_diff", "merge_agent_work", "send_agent_message"}));
  for (const json& tool : Definitions()) {
    EXPECT_EQ(tool["inputSchema"].value("type", ""), "object") << tool.dump();
    EXPECT_EQ(tool["outputSchema"].value("type", ""), "object") << tool.dump();
    EXPECT_TRUE(tool.contains("annotations")) << tool.dump();
    // Claude Code 2.1 saves a result over 50,000 characters to a file
    // unless the tool declares a larger one.
    EXPECT_EQ(tool["_meta"]["anthropic/maxResultSizeChars"], 100000) << tool.dump();
  }
}

TEST_F(ToolsTest, EveryToolSucceedsWithValidArguments) {
  MakeTask();
  for (const std::string& name : ToolNames()) {
    SCOPED_TRACE(name);
    Succeeds(name, ValidArguments(name));
  }
}

TEST_F(ToolsTest, EveryMissingRequiredArgumentIsNamed) {
  MakeTask();
  for (const std::string& name : ToolNames()) {
    for (const json& required : InputSchema(name).value("required", json::array())) {
      std::string key = required.get<std::string>();
      SCOPED_TRACE(name + " without " + key);
      json arguments = ValidArguments(name);
      arguments.erase(key);
      EXPECT_THAT(Fails(name, arguments), HasSubstr("\"" + key + "\""));
      arguments[key] = nullptr;
      EXPECT_THAT(Fails(name, arguments), HasSubstr("\"" + key + "\""));
    }
  }
}

TEST_F(ToolsTest, EveryArgumentOfTheWrongTypeIsNamed) {
  MakeTask();
  for (const std::string& name : ToolNames()) {
    for (const auto& [key, property] : InputSchema(name)["properties"].items()) {
      SCOPED_TRACE(name + "." + key);
      json arguments = ValidArguments(name);
      arguments[key] = WrongTypeFor(property.value("type", ""));
      EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
      if (property.value("type", "") == "array") {
        arguments[key] = {"a", 1};  // an element of the wrong type
        EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
      }
    }
  }
}

TEST_F(ToolsTest, EveryNumberOutsideItsRangeIsNamed) {
  MakeTask();
  int checked = 0;
  for (const std::string& name : ToolNames()) {
    for (const auto& [key, property] : InputSchema(name)["properties"].items()) {
      std::string type = property.value("type", "");
      if (type != "integer" && type != "number") continue;
      SCOPED_TRACE(name + "." + key);
      json arguments = ValidArguments(name);
      if (property.contains("minimum")) {
        arguments[key] = property["minimum"].get<double>() - 1;
        if (type == "integer") arguments[key] = property["minimum"].get<long long>() - 1;
        EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
        ++checked;
      }
      if (property.contains("exclusiveMinimum")) {
        arguments[key] = property["exclusiveMinimum"];
        EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
        ++checked;
      }
      if (property.contains("maximum")) {
        arguments[key] = property["maximum"].get<double>() + 1;
        if (type == "integer") arguments[key] = property["maximum"].get<long long>() + 1;
        EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
        ++checked;
      }
      if (type == "integer") {
        arguments[key] = 1.5;
        EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
        arguments[key] = 1e300;
        EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
      }
    }
  }
  EXPECT_GE(checked, 15);  // the schemas do state ranges
}

TEST_F(ToolsTest, EveryValueOutsideItsEnumIsRefused) {
  MakeTask();
  int checked = 0;
  for (const std::string& name : ToolNames()) {
    for (const auto& [key, property] : InputSchema(name)["properties"].items()) {
      if (!property.contains("enum")) continue;
      SCOPED_TRACE(name + "." + key);
      json arguments = ValidArguments(name);
      arguments[key] = "no-such-value";
      EXPECT_THAT(Fails(name, arguments), HasSubstr(key));
      ++checked;
    }
  }
  EXPECT_GE(checked, 8);
}

TEST_F(ToolsTest, EveryTextOverItsMaxLengthIsRefused) {
  MakeTask();
  int checked = 0;
  for (const std::string& name : ToolNames()) {
    for (const auto& [key, property] : InputSchema(name)["properties"].items()) {
      if (!property.contains("maxLength")) continue;
      SCOPED_TRACE(name + "." + key);
      json arguments = ValidArguments(name);
      size_t limit = property["maxLength"].get<size_t>();
      arguments[key] = std::string(limit + 1, 'x');
      EXPECT_THAT(Fails(name, arguments), HasSubstr(std::to_string(limit)));
      ++checked;
    }
  }
  EXPECT_GE(checked, 3);  // filter and both report messages
}

TEST_F(ToolsTest, ArgumentsThatAreNotAnObjectAreRefused) {
  for (const json& arguments : {json::array(), json("task"), json(7)}) {
    EXPECT_THAT(Fails("get_real_task_status", arguments), HasSubstr("must be a JSON object"));
  }
  // No arguments at all is an empty object.
  EXPECT_THAT(Fails("get_real_task_status", nullptr), HasSubstr("\"task_id\""));
  Succeeds("get_health_status", nullptr);
}

TEST_F(ToolsTest, ErrorsOfTheOrchestratorAreHandledFailures) {
  MakeTask();
  EXPECT_THAT(Fails("get_real_task_status", {{"task_id", "TASK-20260101-000000-00000000"}}),
              HasSubstr("was not found"));
  EXPECT_THAT(Fails("get_real_task_status", {{"task_id", "../../etc"}}), HasSubstr("task id"));
  EXPECT_THAT(Fails("get_agent_output", {{"task_id", task_}, {"agent_id", "nobody-1-abc"}}),
              HasSubstr("not part of task"));
  EXPECT_THAT(
      Fails("get_agent_output", {{"task_id", task_}, {"agent_id", ended_}, {"filter", "("}}),
      HasSubstr("RE2"));
  EXPECT_THAT(Fails("create_real_task", {{"description", "x"}, {"client_cwd", root() + "/none"}}),
              HasSubstr("client_cwd"));
  json over = ValidArguments("deploy_headless_agent");
  over["command"] = json::array();
  EXPECT_THAT(Fails("deploy_headless_agent", over), HasSubstr("argv"));
  EXPECT_THAT(
      Fails("update_agent_progress",
            {{"task_id", task_}, {"agent_id", ended_}, {"status", "working"}, {"message", "m"}}),
      HasSubstr("already ended"));
}

TEST_F(ToolsTest, CreateRealTaskPassesLimitsBudgetsAndContext) {
  json created = Succeeds("create_real_task", {{"description", "a task with every option"},
                                               {"priority", "P0"},
                                               {"client_cwd", project()},
                                               {"success_criteria", {"it works"}},
                                               {"max_agents", 4},
                                               {"max_concurrent", 2},
                                               {"max_depth", 3},
                                               {"max_cost_usd", 2.5},
                                               {"max_tokens", 5000},
                                               {"agent_timeout_seconds", 60},
                                               {"agent_idle_timeout_seconds", 0},
                                               {"isolate_agent_config", true}});

  EXPECT_THAT(created.value("task_id", ""), StartsWith("TASK-"));
  EXPECT_EQ(created.value("priority", ""), "P0");
  EXPECT_EQ(created["limits"], json({{"max_agents", 4}, {"max_concurrent", 2}, {"max_depth", 3}}));
  EXPECT_EQ(created["budget"], json({{"max_cost_usd", 2.5}, {"max_tokens", 5000}}));
  EXPECT_EQ(created.value("agent_timeout_seconds", 0), 60);
  EXPECT_TRUE(created.value("isolate_agent_config", false));
  EXPECT_EQ(created["success_criteria"], json::array({"it works"}));
  EXPECT_EQ(created.value("workspace_base", ""),
            registry::ResolvedPath(project()) + "/.agent-workspace");
}

TEST_F(ToolsTest, DeployReportsProgressAndKillStopsTheAgent) {
  MakeTask();
  json deployed = Succeeds("deploy_headless_agent", ValidArguments("deploy_headless_agent"));
  EXPECT_THAT(progress_, ::testing::Contains(HasSubstr("command agent")));
  EXPECT_EQ(deployed.value("status", ""), "deployed");

  json killed = Succeeds(
      "kill_real_agent",
      {{"task_id", task_}, {"agent_id", running_}, {"reason", "enough"}, {"grace_seconds", 1}});

  EXPECT_EQ(killed.value("status", ""), "terminated") << killed.dump(2);
  EXPECT_EQ(killed.value("reason", ""), "enough");
  EXPECT_THAT(progress_, ::testing::Contains(HasSubstr(running_)));
  EXPECT_FALSE(IsRunning(AgentProcessOf(AgentEntry(task_, running_))));
}

TEST_F(ToolsTest, SpawnChildAgentRecordsItsParentAndDepth) {
  MakeTask();
  json child = Succeeds("spawn_child_agent", ValidArguments("spawn_child_agent"));
  EXPECT_EQ(child.value("parent", ""), running_);
  EXPECT_EQ(child.value("depth", 0), 2);

  // A command parent's argv is not inherited: the child must name its backend.
  json inherit = ValidArguments("spawn_child_agent");
  inherit.erase("backend");
  EXPECT_THAT(Fails("spawn_child_agent", inherit), HasSubstr("command agent"));
}

TEST_F(ToolsTest, ReportsReturnTheirLineAndTheOtherAgents) {
  MakeTask();
  json progress = Succeeds("update_agent_progress", ValidArguments("update_agent_progress"));
  EXPECT_EQ(progress["own_update"].value("progress", 0), 5);
  EXPECT_EQ(progress["coordination_info"]["agents"].size(), 1u) << progress.dump(2);

  json arguments = ValidArguments("report_agent_finding");
  arguments["data"] = {{"file", "a.cc"}};
  json finding = Succeeds("report_agent_finding", arguments);
  EXPECT_EQ(finding["own_finding"]["data"], json({{"file", "a.cc"}}));
  EXPECT_EQ(finding["coordination_info"]["agents"][0].value("agent_id", ""), ended_);
}

TEST_F(ToolsTest, OutputAndStatusTakeTheirFormats) {
  MakeTask();
  json output = Succeeds("get_agent_output", {{"task_id", task_},
                                              {"agent_id", ended_},
                                              {"tail", 1},
                                              {"include_metadata", true},
                                              {"aggressive_truncate", true}});
  EXPECT_EQ(output.value("output", ""), "two\n");
  EXPECT_EQ(output["metadata"].value("max_bytes", 0), 8192);  // compact
  json lines =
      Succeeds("get_agent_output", {{"task_id", task_}, {"agent_id", ended_}, {"format", "jsonl"}});
  EXPECT_EQ(lines["output"], json::array({"one", "two"}));

  json summary =
      Succeeds("get_real_task_status", {{"task_id", task_}, {"response_format", "summary"}});
  EXPECT_EQ(summary["agents"].value("agents_list_format", ""), "summary") << summary.dump(2);
  json full = Succeeds("get_real_task_status", {{"task_id", task_}, {"response_format", "full"}});
  EXPECT_EQ(full["agents"].value("agents_list_format", ""), "full");
  EXPECT_EQ(full["agents"].value("total_spawned", 0), 2);
}

TEST_F(ToolsTest, HealthStatusDiagnosesWithoutRepairing) {
  MakeTask();
  json health = Succeeds("get_health_status", {{"task_id", task_}});
  EXPECT_TRUE(health.contains("summary")) << health.dump(2);
  EXPECT_TRUE(health["workspaces"].is_array()) << health.dump(2);
  EXPECT_THAT(progress_, ::testing::Not(::testing::IsEmpty()));
}

}  // namespace
}  // namespace herd::test_util

int main(int argc, char** argv) {
  return herd::test_util::TestMainOrSupervisor(argc, argv);
}
