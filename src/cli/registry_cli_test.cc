// The registry setting on the command line: HERD_REGISTRY / --registry
// select PostgreSQL, `herd registry migrate` creates its schema, every
// command a user had works on it, and the commands that still need the
// workspace's files (doctor) refuse by name instead of using them; the
// dashboard serves the PostgreSQL registry. A real server (the ctest
// fixture PgServer).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "agents/testing_util_for_test.h"
#include "registry/pg_testing_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

class RegistryCliTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
  }
  RunOptions WithRegistry(const std::string& setting) {
    RunOptions options;
    options.environment.push_back({"HERD_REGISTRY", setting});
    return options;
  }
  registry::pg_test::TestDatabase database_;
};

// The agent's entry in `herd status --json`'s reply.
json AgentInStatus(const json& status, const std::string& agent_id) {
  return AgentIn(json{{"agents", status["agents"]["agents_list"]}}, agent_id);
}

// Whether process `pid` exists and is not a zombie.
bool Running(int pid) {
  std::vector<std::string> stat = ReadLines("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return false;
  size_t paren = stat[0].rfind(')');
  return paren != std::string::npos && paren + 2 < stat[0].size() && stat[0][paren + 2] != 'Z';
}

TEST_F(RegistryCliTest, MigrateCreatesTheSchemaOnceAndSaysSo) {
  CommandResult first = Herd({"registry", "migrate"}, WithRegistry(database_.conninfo()));
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  EXPECT_THAT(first.out, HasSubstr("schema migrated from version 0 to 3"));
  CommandResult second =
      Herd({"registry", "migrate", "--json"}, WithRegistry(database_.conninfo()));
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  EXPECT_EQ(second.Json()["schema_version_before"], 3);
}

// What a user had, under PostgreSQL, through the real binary: tasks,
// deploys under local supervisors, status, wait, logs, kill (one and
// --all), a follow-up message, and reports through `herd serve`; no file
// of the JSON registry is written.
TEST_F(RegistryCliTest, EveryCommandWorksUnderPostgresAndNoRegistryFileIsWritten) {
  RunOptions pg = WithRegistry(database_.conninfo());
  auto herd_json = [&](std::vector<std::string> args) { return HerdJson(std::move(args), pg); };
  std::string task_id =
      herd_json({"task", "create", "a task in PostgreSQL"}).at("task_id").get<std::string>();

  auto deploy = [&](const std::string& script) {
    CommandResult result = Herd(CommandDeployArgs(task_id, "worker", {"sh", "-c", script}), pg);
    json output = result.Json();
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    return output.value("agent_id", "");
  };
  std::string quick = deploy("echo quick-output-line");
  std::string sleeper = deploy("exec sleep 300");
  std::string other = deploy("exec sleep 300");
  ASSERT_FALSE(quick.empty());
  ASSERT_FALSE(sleeper.empty());
  ASSERT_FALSE(other.empty());

  json status = herd_json({"status", task_id});
  EXPECT_EQ(status["agents"]["total_spawned"], 3);
  // (the follower below is the fourth)

  // wait returns when the named agent ends (woken by its exit's commit).
  CommandResult waited = Herd({"wait", task_id, quick, "--timeout", "120", "--json"}, pg);
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  EXPECT_EQ(waited.Json()["condition_met"], true);
  CommandResult logs = Herd({"logs", task_id, quick}, pg);
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_THAT(logs.out, HasSubstr("quick-output-line"));

  // logs --follow ends once the agent's end is recorded (no task file
  // changes under PostgreSQL: its log's close wakes it).
  // It runs on a little, so the follow usually starts first.
  std::string follower = deploy("echo followed-line; exec sleep 1");
  RunOptions follow = pg;
  follow.timeout = std::chrono::seconds(120);
  CommandResult followed = Herd({"logs", task_id, follower, "--follow"}, follow);
  EXPECT_EQ(followed.exit_code, 0) << followed.Describe();
  EXPECT_THAT(followed.out, HasSubstr("followed-line"));

  // The output is readable without the log file (another machine): the
  // registry's tail.
  ASSERT_TRUE(std::filesystem::remove(LogPath(task_id, quick)));
  CommandResult elsewhere = Herd({"logs", task_id, quick, "--json"}, pg);
  ASSERT_EQ(elsewhere.exit_code, 0) << elsewhere.Describe();
  EXPECT_EQ(elsewhere.Json()["source"], "registry_tail");
  EXPECT_THAT(elsewhere.Json()["output"].dump(), HasSubstr("quick-output-line"));

  // kill of a running agent leaves none of its processes.
  int sleeper_pid = AgentInStatus(status, sleeper).value("pid", 0);
  ASSERT_GT(sleeper_pid, 0);
  json killed = herd_json({"kill", task_id, sleeper});
  EXPECT_EQ(killed["status"], "terminated");
  EXPECT_FALSE(Running(sleeper_pid)) << "the killed agent's process is still there";

  // A follow-up to the ended command agent runs as its next turn.
  CommandResult sent = Herd({"send", task_id, quick, "say more", "--json"}, pg);
  ASSERT_EQ(sent.exit_code, 0) << sent.Describe();
  EXPECT_EQ(sent.Json()["delivery"], "new_turn");

  // Reports through `herd serve` (as an agent calls back), then status shows them.
  std::string requests = Subdirectory("mcp") + "/requests.jsonl";
  {
    std::ofstream out(requests);
    out << R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}})"
        << "\n"
        << R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
        << "\n"
        << json{{"jsonrpc", "2.0"},
                {"id", 2},
                {"method", "tools/call"},
                {"params",
                 {{"name", "update_agent_progress"},
                  {"arguments",
                   {{"task_id", task_id},
                    {"agent_id", other},
                    {"status", "working"},
                    {"message", "halfway there"},
                    {"progress", 50}}}}}}
               .dump()
        << "\n"
        << json{{"jsonrpc", "2.0"},
                {"id", 3},
                {"method", "tools/call"},
                {"params",
                 {{"name", "report_agent_finding"},
                  {"arguments",
                   {{"task_id", task_id},
                    {"agent_id", other},
                    {"finding_type", "issue"},
                    {"severity", "low"},
                    {"message", "a finding over MCP"}}}}}}
               .dump()
        << "\n";
  }
  CommandProcess serve("sh", {"-c", "exec \"$0\" serve < \"$1\"", HerdBinary(), requests}, pg);
  CommandResult served = serve.Wait();
  ASSERT_EQ(served.exit_code, 0) << served.Describe();
  EXPECT_THAT(served.out, HasSubstr("halfway there"));
  json after = herd_json({"status", task_id});
  EXPECT_EQ(after["enhanced_progress"]["total_progress_entries"], 1);
  EXPECT_EQ(after["enhanced_progress"]["total_findings"], 1);
  EXPECT_THAT(after["enhanced_progress"].dump(), HasSubstr("a finding over MCP"));
  EXPECT_EQ(AgentInStatus(after, other)["progress"], 50);
  json timeline = herd_json({"task", "list"});
  ASSERT_EQ(timeline["total"], 1);
  EXPECT_EQ(timeline["tasks"][0]["task_id"], task_id);

  // kill --all stops the rest; wait then has nothing left.
  json stopped = herd_json({"kill", task_id, "--all"});
  CommandResult all_ended = Herd({"wait", task_id, "--timeout", "120"}, pg);
  EXPECT_EQ(all_ended.exit_code, 0) << all_ended.Describe();
  json final_status = herd_json({"status", task_id});
  EXPECT_EQ(final_status["agents"]["active"], 0);
  for (const json& agent : final_status["agents"]["agents_list"]) {
    EXPECT_NE(agent["liveness"], "alive") << agent.dump();
  }

  // The agents' local files are in the workspace; the JSON registry's are not.
  EXPECT_TRUE(std::filesystem::exists(LogPath(task_id, sleeper)));
  EXPECT_FALSE(std::filesystem::exists(TaskRegistryPath(task_id)));
  EXPECT_FALSE(std::filesystem::exists(workspace() + "/registry/GLOBAL_REGISTRY.json"));
  EXPECT_FALSE(std::filesystem::exists(state() + "/herd/workspaces.json"));
}

TEST_F(RegistryCliTest, DoctorAndDashboardStillRefuseByNameUnderPostgres) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{{"doctor"}}) {
    CommandResult result = Herd(args, WithRegistry(database_.conninfo()));
    EXPECT_EQ(result.exit_code, 1) << result.Describe();
    EXPECT_THAT(result.err, HasSubstr("does not work with the PostgreSQL registry yet"));
  }
  // --registry works as the variable does.
  CommandResult flag = Herd({"doctor", "--registry", database_.conninfo()});
  EXPECT_EQ(flag.exit_code, 1) << flag.Describe();
  EXPECT_THAT(flag.err, HasSubstr("herd doctor"));
}

// The dashboard serves the PostgreSQL registry (its event stream:
// dashboard/dashboard_test.cc), and stops on SIGTERM.
TEST_F(RegistryCliTest, DashboardServesUnderPostgresAndStopsOnSigterm) {
  RunOptions pg = WithRegistry(database_.conninfo());
  pg.timeout = std::chrono::seconds(120);
  HerdProcess dashboard({"dashboard"}, pg);
  ASSERT_TRUE(dashboard.WaitForOutput("every task of the PostgreSQL registry"))
      << dashboard.Wait().Describe();
  ::kill(dashboard.pid(), SIGTERM);
  CommandResult served = dashboard.Wait();
  EXPECT_EQ(served.exit_code, 0) << served.Describe();
  EXPECT_THAT(served.out, HasSubstr("herd dashboard: http://127.0.0.1:"));
  EXPECT_THAT(served.out, HasSubstr("herd dashboard: stopped"));
  EXPECT_TRUE(TaskRegistriesUnder(root()).empty());
}

TEST_F(RegistryCliTest, ASettingThatIsNeitherIsAUsageError) {
  CommandResult result = Herd({"task", "list"}, WithRegistry("postgresq://typo/herd"));
  EXPECT_EQ(result.exit_code, 2) << result.Describe();
  EXPECT_THAT(result.err, HasSubstr("HERD_REGISTRY"));
}

}  // namespace
}  // namespace herd::test_util
