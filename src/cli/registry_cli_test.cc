// The registry setting on the command line: HERD_REGISTRY / --registry
// select PostgreSQL, `herd registry migrate` creates its schema, every
// command a user had works on it (`herd doctor` with its nodes, their
// leases and the agents of dead nodes; the dashboard). A real server (the
// ctest fixture PgServer); `herd node run` daemons stand in for machines,
// as in src/node/node_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "agents/testing_util_for_test.h"
#include "registry/pg_testing_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

// The agent's entry in `herd status --json`'s reply.
json AgentInStatus(const json& status, const std::string& agent_id) {
  return AgentIn(json{{"agents", status["agents"]["agents_list"]}}, agent_id);
}

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
  // The environment of machine `name` (a node's): its own workspace and
  // state directory, the shared registry.
  RunOptions Machine(const std::string& name) {
    std::string home = Subdirectory("machine-" + name);
    RunOptions options = WithRegistry(database_.conninfo());
    options.environment.push_back({"CLAUDE_ORCHESTRATOR_WORKSPACE", home + "/workspace"});
    options.environment.push_back({"XDG_STATE_HOME", home + "/state"});
    return options;
  }
  // Starts `herd node run` as machine `name` (a lease of 10 s: a loaded
  // machine never misses a renewal) and waits until it is up.
  std::unique_ptr<HerdProcess> StartNode(const std::string& name, int capacity) {
    RunOptions options = Machine(name);
    options.timeout = std::chrono::minutes(10);
    auto node = std::make_unique<HerdProcess>(
        std::vector<std::string>{"node", "run", "--name", name, "--capacity",
                                 std::to_string(capacity), "--lease-seconds", "10"},
        options);
    EXPECT_TRUE(node->WaitForOutput("node " + name + " up: incarnation"))
        << "node " << name << " did not come up";
    return node;
  }
  // `herd doctor ARGS --json` from this (client) machine.
  CommandResult Doctor(std::vector<std::string> args = {}) {
    args.insert(args.begin(), "doctor");
    args.push_back("--json");
    return Herd(std::move(args), WithRegistry(database_.conninfo()));
  }
  // Blocks until node `name`'s lease has expired by the server's clock:
  // the server sleeps out the lease, the one clock leases are kept on.
  void WaitForLeaseExpiry(const std::string& name) {
    Result<std::unique_ptr<pg::Connection>> connection = pg::Connection::Open(database_.options());
    ASSERT_TRUE(connection.ok()) << connection.status().ToString();
    Result<pg::Rows> slept = (*connection)
                                 ->Exec(
                                     "SELECT pg_sleep(greatest(0, extract(epoch FROM "
                                     "lease_expires_at - clock_timestamp()))) FROM herd_nodes "
                                     "WHERE node_id = $1",
                                     {name});
    ASSERT_TRUE(slept.ok()) << slept.status().ToString();
    ASSERT_EQ(slept->size(), 1) << "no node " << name;
  }
  // A machine dies with an agent on it: node `name` starts, a `sleep` agent
  // is deployed on it from this machine, then the daemon and the agent's
  // supervisor are SIGKILLed and the agent's processes are gone.
  void KillAMachineWithAnAgent(const std::string& name, std::string* task_id,
                               std::string* agent_id) {
    std::unique_ptr<HerdProcess> node = StartNode(name, 2);
    RunOptions pg = WithRegistry(database_.conninfo());
    *task_id = HerdJson({"task", "create", "on node " + name}, pg).at("task_id").get<std::string>();
    CommandResult deployed =
        Herd(CommandDeployArgs(*task_id, "worker", {"sleep", "300"}, {"--node", name}), pg);
    ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();
    *agent_id = deployed.Json().value("agent_id", "");
    json agent = AgentInStatus(HerdJson({"status", *task_id}, pg), *agent_id);
    std::vector<Identity> processes = ProcessesWithEnvironment("HERD_AGENT_ID=" + *agent_id);
    ASSERT_FALSE(processes.empty());

    ASSERT_EQ(kill(node->pid(), SIGKILL), 0);
    ASSERT_GT(agent.value("supervisor_pid", 0), 0) << agent.dump();
    kill(agent["supervisor_pid"].get<int>(), SIGKILL);
    EXPECT_TRUE(WaitForExit(processes)) << "the agent dies with its supervisor";
    node->Wait();
  }
  registry::pg_test::TestDatabase database_;
};

// The findings of kind `kind` in a doctor report, task and workspace ones.
std::vector<json> FindingsOf(const json& report, const std::string& kind) {
  std::vector<json> found;
  for (const json& workspace : report.value("workspaces", json::array())) {
    std::vector<json> all;
    for (const json& finding : workspace.value("workspace_findings", json::array())) {
      all.push_back(finding);
    }
    for (const json& task : workspace.value("tasks", json::array())) {
      for (const json& finding : task["findings"]) all.push_back(finding);
    }
    for (const json& finding : all) {
      if (finding.value("kind", "") == kind) found.push_back(finding);
    }
  }
  return found;
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

// A healthy registry with one node up and an agent on it: the doctor lists
// the node (its lease by the server's clock, its load), leaves the placed
// agent to its node, skips the JSON workspace's file checks, and is healthy.
TEST_F(RegistryCliTest, DoctorUnderPostgresReportsTheNodesOfAHealthyRegistry) {
  std::unique_ptr<HerdProcess> node = StartNode("n1", 2);
  RunOptions pg = WithRegistry(database_.conninfo());
  std::string task_id =
      HerdJson({"task", "create", "doctor of nodes"}, pg).at("task_id").get<std::string>();
  CommandResult deployed = Herd(CommandDeployArgs(task_id, "worker", {"sleep", "300"}), pg);
  ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();

  CommandResult doctor = Doctor();
  ASSERT_EQ(doctor.exit_code, 0) << doctor.Describe();
  json report = doctor.Json();
  EXPECT_EQ(report["engine"], "postgresql");
  EXPECT_EQ(report["summary"]["healthy"], true) << report.dump(2);
  EXPECT_EQ(report["summary"]["findings"], 0) << report.dump(2);
  ASSERT_EQ(report["workspaces"].size(), 1u);
  const json& registry = report["workspaces"][0];
  EXPECT_EQ(registry["tasks_checked"], 1);
  EXPECT_TRUE(registry["skipped_checks"].contains("registry_files")) << registry.dump(2);
  EXPECT_FALSE(registry.contains("lock_metrics"));
  ASSERT_EQ(registry["nodes"].size(), 1u) << registry.dump(2);
  const json& listed = registry["nodes"][0];
  EXPECT_EQ(listed["name"], "n1");
  EXPECT_EQ(listed["state"], "up");
  EXPECT_GT(listed["lease_remaining_ms"].get<long long>(), 0);
  EXPECT_LE(listed["lease_remaining_ms"].get<long long>(), 10000);
  EXPECT_EQ(listed["running"], 1);
  EXPECT_EQ(listed["capacity"], 2);

  CommandResult text = Herd({"doctor"}, pg);
  EXPECT_EQ(text.exit_code, 0) << text.Describe();
  EXPECT_THAT(text.out, HasSubstr("PostgreSQL registry"));
  EXPECT_THAT(text.out, HasSubstr("n1"));
  EXPECT_THAT(text.out, HasSubstr("running 1/2"));

  json stopped = HerdJson({"kill", task_id, "--all"}, pg);
  EXPECT_EQ(stopped["failed"], 0) << stopped.dump();
}

// A machine dies (its node daemon and its agent's supervisor SIGKILLed) and
// no other node renews to expire its lease: the doctor reports the expired
// lease and the active agent of the dead node, --repair marks the agent
// error "node lost" in one transaction, and a second --repair changes
// nothing. The agent's processes are never looked for here.
TEST_F(RegistryCliTest, DoctorUnderPostgresRepairsTheAgentsOfANodeWhoseLeaseExpired) {
  RunOptions pg = WithRegistry(database_.conninfo());
  std::string task_id, agent_id;
  ASSERT_NO_FATAL_FAILURE(KillAMachineWithAnAgent("doomed", &task_id, &agent_id));
  WaitForLeaseExpiry("doomed");

  CommandResult diagnosed = Doctor();
  EXPECT_EQ(diagnosed.exit_code, 1) << diagnosed.Describe();
  json report = diagnosed.Json();
  EXPECT_EQ(report["summary"]["healthy"], false) << report.dump(2);
  std::vector<json> leases = FindingsOf(report, "expired_node_lease");
  ASSERT_EQ(leases.size(), 1u) << report.dump(2);
  EXPECT_EQ(leases[0]["severity"], "error");
  EXPECT_THAT(leases[0].value("detail", ""), HasSubstr("doomed"));
  std::vector<json> agents = FindingsOf(report, "dead_node_agent");
  ASSERT_EQ(agents.size(), 1u) << report.dump(2);
  EXPECT_EQ(agents[0]["agent_id"], agent_id);
  EXPECT_TRUE(FindingsOf(report, "zombie").empty()) << "a placed agent is its node's";
  const json& node = report["workspaces"][0]["nodes"][0];
  EXPECT_EQ(node["state"], "up");
  EXPECT_LE(node["lease_remaining_ms"].get<long long>(), 0);
  EXPECT_EQ(AgentInStatus(HerdJson({"status", task_id}, pg), agent_id)["status"], "running")
      << "a diagnosis changes nothing";

  CommandResult repaired = Doctor({"--repair"});
  EXPECT_EQ(repaired.exit_code, 0) << repaired.Describe();
  json repair = repaired.Json();
  EXPECT_EQ(repair["summary"]["healthy"], true) << repair.dump(2);
  ASSERT_EQ(repair["repairs"].size(), 1u) << "one repair for the node and its agent";
  EXPECT_EQ(repair["repairs"][0]["kind"], "expired_node_lease");
  EXPECT_EQ(repair["repairs"][0]["changed"], true) << repair.dump(2);
  json lost = AgentInStatus(HerdJson({"status", task_id}, pg), agent_id);
  EXPECT_EQ(lost["status"], "error") << lost.dump();
  EXPECT_THAT(lost.dump(), HasSubstr("node lost"));

  CommandResult again = Doctor({"--repair"});
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  json second = again.Json();
  EXPECT_EQ(second["summary"]["findings"], 0) << second.dump(2);
  EXPECT_EQ(second["summary"]["repaired"], 0);
  EXPECT_TRUE(second["repairs"].empty()) << second.dump(2);
  EXPECT_EQ(second["workspaces"][0]["nodes"][0]["state"], "expired");
  json after = AgentInStatus(HerdJson({"status", task_id}, pg), agent_id);
  EXPECT_EQ(after["status"], "error");
  EXPECT_EQ(after.value("ended_at", after.value("last_update", "")),
            lost.value("ended_at", lost.value("last_update", "")))
      << "not marked again";
}

// An active agent whose node row says "left" (which herd's own node
// operations never leave behind: here an edit by hand) is a dead_node_agent;
// the repair marks it lost in one task transaction that re-checks it, and
// nothing of this machine's is looked for or signalled for it.
TEST_F(RegistryCliTest, DoctorUnderPostgresRepairsAnAgentLeftBehindByANodeThatLeft) {
  RunOptions pg = WithRegistry(database_.conninfo());
  std::string task_id, agent_id;
  ASSERT_NO_FATAL_FAILURE(KillAMachineWithAnAgent("gone", &task_id, &agent_id));
  // Its row is then edited to "left" without its agents.
  Result<std::unique_ptr<pg::Connection>> connection = pg::Connection::Open(database_.options());
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  Result<pg::Rows> edited =
      (*connection)->Exec("UPDATE herd_nodes SET state = 'left' WHERE node_id = 'gone'");
  ASSERT_TRUE(edited.ok()) << edited.status().ToString();

  CommandResult diagnosed = Doctor();
  EXPECT_EQ(diagnosed.exit_code, 1) << diagnosed.Describe();
  json report = diagnosed.Json();
  std::vector<json> agents = FindingsOf(report, "dead_node_agent");
  ASSERT_EQ(agents.size(), 1u) << report.dump(2);
  EXPECT_EQ(agents[0]["agent_id"], agent_id);
  EXPECT_THAT(agents[0].value("detail", ""), HasSubstr("is left"));
  EXPECT_TRUE(FindingsOf(report, "expired_node_lease").empty()) << report.dump(2);
  EXPECT_TRUE(FindingsOf(report, "zombie").empty()) << "a placed agent is its node's";

  CommandResult repaired = Doctor({"--repair"});
  EXPECT_EQ(repaired.exit_code, 0) << repaired.Describe();
  json repair = repaired.Json();
  ASSERT_EQ(repair["repairs"].size(), 1u) << repair.dump(2);
  EXPECT_EQ(repair["repairs"][0]["kind"], "dead_node_agent");
  EXPECT_EQ(repair["repairs"][0]["changed"], true) << repair.dump(2);
  json lost = AgentInStatus(HerdJson({"status", task_id}, pg), agent_id);
  EXPECT_EQ(lost["status"], "error") << lost.dump();
  EXPECT_EQ(lost.value("error", ""), registry::kLostReason) << lost.dump();

  CommandResult again = Doctor({"--repair"});
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_EQ(again.Json()["summary"]["findings"], 0) << again.out;
}

// An agent deployed on this machine (no node) whose supervisor and agent
// were SIGKILLed: the doctor finds the zombie and repairs it as with the
// JSON workspace (error "process lost"); a second repair changes nothing.
TEST_F(RegistryCliTest, DoctorUnderPostgresRepairsALostLocalAgent) {
  RunOptions pg = WithRegistry(database_.conninfo());
  std::string task_id =
      HerdJson({"task", "create", "lost locally"}, pg).at("task_id").get<std::string>();
  CommandResult deployed = Herd(CommandDeployArgs(task_id, "worker", {"sleep", "300"}), pg);
  ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();
  std::string agent_id = deployed.Json().value("agent_id", "");
  json agent = AgentInStatus(HerdJson({"status", task_id}, pg), agent_id);
  Identity supervisor = SupervisorOf(agent);
  Identity process = AgentProcessOf(agent);
  ASSERT_GT(supervisor.pid, 0) << agent.dump();
  ASSERT_GT(process.pid, 0) << agent.dump();
  // The supervisor first, so nothing records the agent's end.
  KillAndWait(std::vector<Identity>{supervisor});
  KillAndWait(std::vector<Identity>{process});

  CommandResult diagnosed = Doctor();
  EXPECT_EQ(diagnosed.exit_code, 1) << diagnosed.Describe();
  json report = diagnosed.Json();
  std::vector<json> zombies = FindingsOf(report, "zombie");
  ASSERT_EQ(zombies.size(), 1u) << report.dump(2);
  EXPECT_EQ(zombies[0]["agent_id"], agent_id);
  EXPECT_EQ(zombies[0]["severity"], "error");
  EXPECT_THAT(zombies[0].value("detail", ""), HasSubstr("are gone"));

  CommandResult repaired = Doctor({"--repair"});
  EXPECT_EQ(repaired.exit_code, 0) << repaired.Describe();
  json repair = repaired.Json();
  ASSERT_EQ(repair["repairs"].size(), 1u) << repair.dump(2);
  EXPECT_EQ(repair["repairs"][0]["kind"], "zombie");
  EXPECT_EQ(repair["repairs"][0]["changed"], true) << repair.dump(2);
  json lost = AgentInStatus(HerdJson({"status", task_id}, pg), agent_id);
  EXPECT_EQ(lost["status"], "error") << lost.dump();
  EXPECT_EQ(lost.value("error", ""), "process lost") << lost.dump();

  CommandResult again = Doctor({"--repair"});
  EXPECT_EQ(again.exit_code, 0) << again.Describe();
  EXPECT_EQ(again.Json()["summary"]["findings"], 0) << again.out;
  EXPECT_TRUE(again.Json()["repairs"].empty()) << again.out;
}

// An agent deployed (no node) on machine x and lost there is x's to
// diagnose: the doctor of machine y, which cannot see x's disk (x's
// directory hidden by a mount namespace), finds nothing to repair and
// changes nothing; x's own doctor finds the zombie.
TEST_F(RegistryCliTest, DoctorUnderPostgresLeavesAnotherMachinesAgentsAlone) {
  std::string task_id =
      HerdJson({"task", "create", "lost on x"}, Machine("x")).at("task_id").get<std::string>();
  CommandResult deployed =
      Herd(CommandDeployArgs(task_id, "worker", {"sleep", "300"}), Machine("x"));
  ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();
  std::string agent_id = deployed.Json().value("agent_id", "");
  json agent = AgentInStatus(HerdJson({"status", task_id}, Machine("x")), agent_id);
  KillAndWait(std::vector<Identity>{SupervisorOf(agent)});
  KillAndWait(std::vector<Identity>{AgentProcessOf(agent)});

  HerdWithoutDirectory on_y(root() + "/machine-x", {"doctor", "--repair", "--json"}, Machine("y"));
  CommandResult elsewhere = on_y.Wait();
  EXPECT_EQ(elsewhere.exit_code, 0) << elsewhere.Describe();
  EXPECT_TRUE(FindingsOf(elsewhere.Json(), "zombie").empty()) << elsewhere.out;
  EXPECT_TRUE(elsewhere.Json()["repairs"].empty()) << elsewhere.out;
  EXPECT_EQ(AgentInStatus(HerdJson({"status", task_id}, Machine("x")), agent_id)["status"],
            "running")
      << "machine y changed nothing";

  CommandResult here = Herd({"doctor", "--json"}, Machine("x"));
  EXPECT_EQ(here.exit_code, 1) << here.Describe();
  std::vector<json> zombies = FindingsOf(here.Json(), "zombie");
  ASSERT_EQ(zombies.size(), 1u) << here.out;
  EXPECT_EQ(zombies[0]["agent_id"], agent_id);
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
