// The MCP tools table against the request tables: every tool's inputSchema
// is its request's, and an MCP call and the CLI refuse the same arguments
// with the same words (only the argument's spelling differs), because both
// go through the request's FromArguments.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "agents/testing_util_for_test.h"
#include "mcp/tools.h"
#include "orchestrator/requests.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

class ToolSchemaTest : public HerdTest {
 protected:
  ToolSchemaTest()
      : orchestrator_(registry::Workspace(workspace_base()), registry::RegistryStores()),
        tools_(orchestrator_) {}

  // The workspace HerdTest's environment names (set in SetUp, after this).
  std::string workspace_base() const { return root() + "/workspace"; }

  mcp::ToolOutcome Call(const std::string& name, const json& arguments) {
    return tools_.Call(name, arguments, mcp::CallContext());
  }

  Orchestrator orchestrator_;
  mcp::ToolSet tools_;
};

TEST_F(ToolSchemaTest, EveryToolsInputSchemaIsItsRequests) {
  const std::map<std::string, const ParameterList*> requests = {
      {"create_real_task", &CreateTaskRequest::Parameters()},
      {"deploy_headless_agent", &DeployAgentRequest::Parameters()},
      {"get_real_task_status", &StatusRequest::Parameters()},
      {"get_agent_output", &OutputRequest::Parameters()},
      {"kill_real_agent", &KillRequest::Parameters()},
      {"stop_task", &StopTaskRequest::Parameters()},
      {"update_agent_progress", &ProgressReport::Parameters()},
      {"report_agent_finding", &FindingReport::Parameters()},
      {"spawn_child_agent", &SpawnRequest::Parameters()},
      {"get_health_status", &HealthRequest::Parameters()},
      {"wait_for_agents", &WaitRequest::Parameters()},
      {"send_agent_message", &SendMessageRequest::Parameters()},
      {"get_agent_diff", &DiffRequest::Parameters()},
      {"merge_agent_work", &MergeRequest::Parameters()},
  };
  ASSERT_EQ(tools_.Definitions().size(), requests.size());
  for (const json& tool : tools_.Definitions()) {
    std::string name = tool["name"];
    ASSERT_EQ(requests.count(name), 1u) << name;
    EXPECT_TRUE(tools_.Has(name));
    EXPECT_EQ(tool["inputSchema"], InputSchema(*requests.at(name))) << name;
    EXPECT_EQ(tool["annotations"]["title"], tool["title"]) << name;
  }
  EXPECT_FALSE(tools_.Has("no_such_tool"));
}

TEST_F(ToolSchemaTest, ToolRefusesWhatItsRequestRefuses) {
  const json arguments = {{"task_id", "TASK-20260101-000000-00000000"},
                          {"agent_id", "a-1"},
                          {"grace_seconds", agents::kMaxKillGraceSeconds + 1}};
  mcp::ToolOutcome outcome = Call("kill_real_agent", arguments);
  EXPECT_TRUE(outcome.is_error);
  EXPECT_EQ(outcome.structured["success"], false);
  EXPECT_EQ(outcome.structured["error"], KillRequest::FromArguments(arguments).status().message());
  EXPECT_THAT(outcome.structured.value("error", ""), HasSubstr("grace_seconds"));
}

// One invalid value of each kind, through both surfaces.
TEST_F(ToolSchemaTest, CliAndMcpRefuseTheSameArgumentsTheSameWay) {
  struct Case {
    const char* tool;
    json arguments;
    std::vector<std::string> command_line;
    std::string allowed;  // the words both errors share
  };
  const std::string task = "TASK-20260101-000000-00000000";
  const std::vector<Case> cases = {
      {"kill_real_agent",
       {{"task_id", task}, {"agent_id", "a-1"}, {"grace_seconds", 601}},
       {"kill", task, "a-1", "--grace", "601"},
       "must be a number in 0-600, not 601"},
      {"create_real_task",
       {{"description", "d"}, {"max_agents", 0}},
       {"task", "create", "d", "--max-agents", "0"},
       "must be an integer in 1-100000, not 0"},
      {"update_agent_progress",
       {{"task_id", task}, {"agent_id", "a-1"}, {"status", "dancing"}, {"message", "m"}},
       {"progress", task, "a-1", "--status", "dancing", "--message", "m"},
       "must be one of running, working, blocked, completed, error, terminated, failed, not "
       "\"dancing\""},
      {"report_agent_finding",
       {{"task_id", task},
        {"agent_id", "a-1"},
        {"finding_type", "issue"},
        {"severity", "low"},
        {"message", "m"},
        {"data", json::array()}},
       {"finding", task, "a-1", "--type", "issue", "--severity", "low", "--message", "m", "--data",
        "[]"},
       "must be an object, not []"},
  };
  for (const Case& c : cases) {
    mcp::ToolOutcome outcome = Call(c.tool, c.arguments);
    EXPECT_TRUE(outcome.is_error) << c.tool;
    EXPECT_THAT(outcome.structured.value("error", ""), HasSubstr(c.allowed)) << c.tool;
    CommandResult result = Herd(c.command_line);
    EXPECT_EQ(result.exit_code, 1) << result.Describe();
    EXPECT_THAT(result.err, HasSubstr(c.allowed)) << result.Describe();
  }
}

}  // namespace
}  // namespace herd::test_util
