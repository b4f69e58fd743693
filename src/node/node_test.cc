// herd node daemons against a real PostgreSQL server: two or three
// daemons on this machine stand in for machines. Each "machine" (a daemon,
// or a client running the CLI) has its own workspace and state directory;
// they share nothing but the database, which the tests check.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "registry/pg_testing_for_test.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;

// A lease short enough for the expiry tests, long enough that a loaded
// machine never misses one by being slow (renewals every 3.3 s; a node
// stops its agents after 6.7 s without one).
constexpr const char kLeaseSeconds[] = "10";

class NodeTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    if (!database_.available()) {
      GTEST_SKIP() << "no PostgreSQL server: run under ctest (the PgServer fixture)";
    }
    conninfo_ = database_.conninfo();
  }

  // The environment of machine `name`: its own workspace and state, the
  // shared registry.
  RunOptions Machine(const std::string& name) {
    std::string home = Subdirectory("machine-" + name);
    RunOptions options;
    options.environment = {{"HERD_REGISTRY", conninfo_},
                           {"CLAUDE_ORCHESTRATOR_WORKSPACE", home + "/workspace"},
                           {"XDG_STATE_HOME", home + "/state"}};
    options.timeout = std::chrono::seconds(240);
    return options;
  }
  std::string MachineRoot(const std::string& name) { return root() + "/machine-" + name; }

  // Starts `herd node run` as machine `name`, and waits until it is up.
  HerdProcess& StartNode(const std::string& name, int capacity,
                         std::vector<std::string> labels = {}) {
    std::vector<std::string> args = {"node",
                                     "run",
                                     "--name",
                                     name,
                                     "--capacity",
                                     std::to_string(capacity),
                                     "--lease-seconds",
                                     kLeaseSeconds};
    for (const std::string& label : labels) {
      args.push_back("--label");
      args.push_back(label);
    }
    RunOptions options = Machine(name);
    options.timeout = std::chrono::minutes(10);
    auto& node = nodes_[name];
    node.reset();  // an earlier daemon of the name is gone already
    node = std::make_unique<HerdProcess>(args, options);
    EXPECT_TRUE(node->WaitForOutput("node " + name + " up: incarnation"))
        << "node " << name << " did not come up";
    return *node;
  }

  json HerdOn(const std::string& machine, std::vector<std::string> args) {
    return HerdJson(std::move(args), Machine(machine));
  }

  // Deploys a command agent from machine `machine`; requires success.
  json DeployOn(const std::string& machine, const std::string& task_id,
                const std::vector<std::string>& argv, const std::vector<std::string>& extra = {}) {
    CommandResult result =
        Herd(CommandDeployArgs(task_id, "worker", argv, extra), Machine(machine));
    if (result.exit_code != 0) throw std::runtime_error("deploy failed: " + result.Describe());
    return result.Json();
  }

  json Status(const std::string& machine, const std::string& task_id) {
    return HerdOn(machine, {"status", task_id});
  }

  static json AgentOf(const json& status, const std::string& agent_id) {
    for (const json& agent : status["agents"]["agents_list"]) {
      if (agent.value("id", "") == agent_id) return agent;
    }
    return json();
  }

  static std::vector<Identity> ProcessesOf(const std::string& agent_id) {
    return ProcessesWithEnvironment("HERD_AGENT_ID=" + agent_id);
  }

  // Every file under `directory`, as paths relative to it.
  static std::vector<std::string> FilesUnder(const std::string& directory) {
    std::vector<std::string> files;
    if (!std::filesystem::exists(directory)) return files;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(directory)) {
      if (entry.is_regular_file()) files.push_back(entry.path().string());
    }
    return files;
  }

  registry::pg_test::TestDatabase database_;
  std::string conninfo_;
  std::map<std::string, std::unique_ptr<HerdProcess>> nodes_;
};

// 40 deploys at once from three machines, against two tasks of
// max_concurrent 10 and a cluster cap of 15, on nodes with room for 18:
// exactly 15 run, no task over 10, no node over its capacity; and every
// one is stopped by its node when the client stops the tasks.
TEST_F(NodeTest, ConcurrentDeploysFromManyMachinesAdmitExactlyTheLimits) {
  StartNode("n1", 6);
  StartNode("n2", 6);
  StartNode("n3", 6);
  std::vector<std::string> tasks;
  for (int t = 0; t < 2; ++t) {
    tasks.push_back(HerdOn("c1", {"task", "create", "limits " + std::to_string(t),
                                  "--max-concurrent", "10", "--max-agents", "40"})
                        .at("task_id")
                        .get<std::string>());
  }
  std::vector<std::unique_ptr<HerdProcess>> deploys;
  for (int i = 0; i < 40; ++i) {
    RunOptions options = Machine("c" + std::to_string(i % 3 + 1));
    options.environment.push_back({"HERD_MAX_RUNNING_AGENTS", "15"});
    deploys.push_back(std::make_unique<HerdProcess>(
        CommandDeployArgs(tasks[i % 2], "worker", {"sleep", "300"}), options));
  }
  int admitted = 0, refused = 0;
  std::vector<std::string> agent_ids;
  for (auto& deploy : deploys) {
    CommandResult result = deploy->Wait();
    if (result.exit_code == 0) {
      ++admitted;
      agent_ids.push_back(result.Json().value("agent_id", ""));
    } else {
      ++refused;
      EXPECT_EQ(result.exit_code, 1) << result.Describe();
      EXPECT_THAT(result.Json().value("error", ""),
                  ::testing::AnyOf(HasSubstr("max_concurrent"), HasSubstr("running")))
          << result.Describe();
    }
  }
  EXPECT_EQ(admitted, 15);
  EXPECT_EQ(refused, 25);

  int active = 0;
  for (const std::string& task_id : tasks) {
    json status = Status("c2", task_id);
    int task_active = status["agents"]["active"].get<int>();
    EXPECT_LE(task_active, 10);
    active += task_active;
  }
  EXPECT_EQ(active, 15);
  json nodes = HerdOn("c3", {"node", "list"});
  int running = 0;
  for (const json& node : nodes["nodes"]) {
    EXPECT_LE(node["running"].get<int>(), 6) << node.dump();
    running += node["running"].get<int>();
  }
  EXPECT_EQ(running, 15);
  for (const std::string& id : agent_ids) {
    EXPECT_FALSE(ProcessesOf(id).empty()) << id << " has no process";
  }

  // Each node stops its own agents when a client stops the tasks.
  for (const std::string& task_id : tasks) {
    json stopped = HerdOn("c1", {"kill", task_id, "--all"});
    EXPECT_EQ(stopped["failed"], 0) << stopped.dump();
  }
  for (const std::string& id : agent_ids) {
    EXPECT_TRUE(ProcessesOf(id).empty()) << id << " still runs after the stop";
  }
}

// A kill issued on one machine stops the agent on another: its node stops
// it and records the exit, and no process of it is left. The agent's files
// are on its node's machine only.
TEST_F(NodeTest, KillOnOneMachineStopsTheAgentOnAnother) {
  StartNode("a", 2);
  StartNode("b", 2, {"gpu"});
  std::string task_id =
      HerdOn("client", {"task", "create", "cross-node kill"}).at("task_id").get<std::string>();
  CommandResult deployed =
      Herd(CommandDeployArgs(task_id, "worker", {"sh", "-c", "echo placed-output; exec sleep 300"},
                             {"--node-label", "gpu"}),
           Machine("client"));
  ASSERT_EQ(deployed.exit_code, 0) << deployed.Describe();
  std::string agent_id = deployed.Json().value("agent_id", "");
  json agent = AgentOf(Status("a", task_id), agent_id);
  ASSERT_EQ(agent["node"]["name"], "b") << agent.dump();
  std::vector<Identity> processes = ProcessesOf(agent_id);
  ASSERT_FALSE(processes.empty());

  // Nothing of the agent is on the client's or node a's disk.
  for (const char* machine : {"client", "a"}) {
    for (const std::string& file : FilesUnder(MachineRoot(machine))) {
      EXPECT_THAT(file, ::testing::Not(HasSubstr(agent_id))) << "on machine " << machine;
    }
  }
  bool on_b = false;
  for (const std::string& file : FilesUnder(MachineRoot("b"))) {
    on_b = on_b || file.find(agent_id) != std::string::npos;
  }
  EXPECT_TRUE(on_b) << "node b keeps the agent's files";

  json killed = HerdOn("a", {"kill", task_id, agent_id});
  EXPECT_EQ(killed["status"], "terminated");
  EXPECT_EQ(killed["cleanup"]["node"], "b");
  EXPECT_EQ(killed["cleanup"]["stopped_by_node"], true) << killed.dump();
  EXPECT_TRUE(WaitForExit(processes)) << DescribeProcesses(processes);
  json after = AgentOf(Status("client", task_id), agent_id);
  EXPECT_EQ(after["status"], "terminated");
  EXPECT_EQ(after["phase"], "exited") << after.dump();

  // Its output is readable from the client, which has no log file of it.
  CommandResult logs = Herd({"logs", task_id, agent_id, "--json"}, Machine("client"));
  ASSERT_EQ(logs.exit_code, 0) << logs.Describe();
  EXPECT_THAT(logs.Json()["output"].dump(), HasSubstr("placed-output"));
}

// `herd logs --follow` on a machine without the agent's log follows the
// output its node keeps in the registry: what was printed before the
// follow began, then what the agent prints while it is followed, each once
// and in order, and it returns when the agent ends.
TEST_F(NodeTest, LogsFollowOnAnotherMachineReadsTheOutputAsItArrives) {
  StartNode("a", 2);
  std::string task_id =
      HerdOn("client", {"task", "create", "cross-node follow"}).at("task_id").get<std::string>();
  // The agent prints a line, then waits for the test to hand it the next.
  std::string fifo = root() + "/next-line";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  json deployed = DeployOn(
      "client", task_id,
      {"sh", "-c", "echo before-follow; read line < '" + fifo + "'; echo \"$line\"; echo last"});
  std::string agent_id = deployed.value("agent_id", "");

  RunOptions client = Machine("client");
  HerdProcess follow({"logs", task_id, agent_id, "--follow"}, client);
  ASSERT_TRUE(follow.WaitForOutput("before-follow")) << "the follow printed nothing";
  {
    std::ofstream next(fifo);  // opens once the agent reads
    next << "while-followed\n";
  }
  CommandResult followed = follow.Wait();
  ASSERT_EQ(followed.exit_code, 0) << followed.Describe();
  EXPECT_EQ(followed.out, "before-follow\nwhile-followed\nlast\n") << followed.Describe();
  EXPECT_EQ(AgentOf(Status("client", task_id), agent_id)["status"], "completed");
}

// A placed agent's worktree is made in its node's checkout (here the same
// path on the one disk, as a clone at the same path on each machine), and
// its children work there too, so they go to its node. Its work is
// reviewed and merged on that machine; from a machine that cannot see the
// node's disk (the node's directory hidden by a mount namespace) the merge
// is refused, saying where, and changes nothing.
TEST_F(NodeTest, APlacedAgentsWorktreeIsMadeOnItsNodeWithItsChildren) {
  StartNode("a", 2);
  StartNode("b", 2);
  std::string repo = Subdirectory("project");
  auto git = [&repo](std::vector<std::string> args) {
    args.insert(args.begin(), {"-C", repo});
    return CommandProcess("git", args).Wait();
  };
  ASSERT_EQ(git({"init", "-q", "-b", "main"}).exit_code, 0);
  ASSERT_EQ(git({"config", "user.email", "person@example.com"}).exit_code, 0);
  ASSERT_EQ(git({"config", "user.name", "A Person"}).exit_code, 0);
  WriteFile(repo + "/a.txt", "one\n");
  ASSERT_EQ(git({"add", "a.txt"}).exit_code, 0);
  ASSERT_EQ(git({"commit", "-qm", "initial"}).exit_code, 0);
  std::string task_id =
      HerdOn("client", {"task", "create", "worktrees on nodes", "--cwd", repo, "--worktree"})
          .at("task_id")
          .get<std::string>();

  // The parent commits its work, then waits (alive) for the test.
  std::string fifo = root() + "/parent-may-end";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  json parent = DeployOn("client", task_id,
                         {"sh", "-c",
                          "pwd > where.txt; echo two >> a.txt; git commit -qam 'parent work'; "
                          "read line < '" +
                              fifo + "'"},
                         {"--node", "a"});
  std::string parent_id = parent.value("agent_id", "");
  json entry = AgentOf(Status("client", task_id), parent_id);
  std::string path = entry["worktree"].value("path", "");
  EXPECT_EQ(path.rfind(MachineRoot("a") + "/", 0), 0u) << "not in node a's state: " << entry.dump();
  EXPECT_EQ(entry.value("cwd", ""), path);

  // Its child goes to node a (b is emptier), into the parent's worktree.
  json child =
      DeployOn("client", task_id, {"sh", "-c", "pwd > child-where.txt"}, {"--parent", parent_id});
  std::string child_id = child.value("agent_id", "");
  EXPECT_EQ(AgentOf(Status("client", task_id), child_id)["node"]["name"], "a");
  CommandResult elsewhere =
      Herd(CommandDeployArgs(task_id, "worker", {"true"}, {"--parent", parent_id, "--node", "b"}),
           Machine("client"));
  EXPECT_EQ(elsewhere.exit_code, 1) << elsewhere.Describe();
  EXPECT_THAT(elsewhere.Json().value("error", ""), HasSubstr("its children work there too"));
  {
    std::ofstream release(fifo);
    release << "done\n";
  }
  CommandResult waited = Herd({"wait", task_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  EXPECT_EQ(ReadFile(path + "/where.txt"), path + "\n");
  EXPECT_EQ(ReadFile(path + "/child-where.txt"), path + "\n");

  // From a machine without node a's disk: refused, nothing merged.
  HerdWithoutDirectory hidden(MachineRoot("a"), {"merge", task_id, parent_id, "--json"},
                              Machine("client"));
  CommandResult refused = hidden.Wait();
  ASSERT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_THAT(refused.Json().value("error", ""), HasSubstr("is on node a's machine"));
  EXPECT_EQ(git({"show", "main:a.txt"}).out, "one\n");

  // On node a's machine: its diff, and its merge into the checkout.
  CommandResult diff = Herd({"diff", task_id, parent_id}, Machine("a"));
  ASSERT_EQ(diff.exit_code, 0) << diff.Describe();
  EXPECT_THAT(diff.out, HasSubstr("+two"));
  json merged = HerdOn("a", {"merge", task_id, parent_id, "--commit-pending"});
  EXPECT_TRUE(merged.value("merged", false)) << merged.dump();
  EXPECT_EQ(git({"show", "main:a.txt"}).out, "one\ntwo\n");
}

// A node whose machine dies (its daemon and supervisors SIGKILLed) has its
// agents marked lost once its lease expires, by the node still up; when it
// comes back it is a new incarnation and does not start them again.
TEST_F(NodeTest, ADeadNodesAgentsAreLostAfterTheLeaseAndNeverResurrected) {
  StartNode("survivor", 2);
  HerdProcess& doomed = StartNode("doomed", 2);
  std::string task_id =
      HerdOn("client", {"task", "create", "node loss"}).at("task_id").get<std::string>();
  json deployed = DeployOn("client", task_id, {"sleep", "300"}, {"--node", "doomed"});
  std::string agent_id = deployed.value("agent_id", "");
  json agent = AgentOf(Status("client", task_id), agent_id);
  std::vector<Identity> processes = ProcessesOf(agent_id);
  ASSERT_FALSE(processes.empty());

  // The machine dies: the daemon and the agent's supervisor at once.
  ASSERT_EQ(kill(doomed.pid(), SIGKILL), 0);
  ASSERT_GT(agent.value("supervisor_pid", 0), 0) << agent.dump();
  kill(agent["supervisor_pid"].get<int>(), SIGKILL);
  EXPECT_TRUE(WaitForExit(processes)) << "the agent dies with its supervisor";

  // The survivor's renewals expire the lease and mark the agent lost.
  CommandResult waited =
      Herd({"wait", task_id, agent_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  json lost = AgentOf(Status("client", task_id), agent_id);
  EXPECT_EQ(lost["status"], "error") << lost.dump();
  EXPECT_THAT(lost.dump(), HasSubstr("node lost"));

  // Back again: a new incarnation, which runs new work but not the old.
  StartNode("doomed", 2);
  json fresh = DeployOn("client", task_id, {"sleep", "300"}, {"--node", "doomed"});
  json fresh_agent = AgentOf(Status("client", task_id), fresh.value("agent_id", ""));
  EXPECT_GT(fresh_agent["node"]["incarnation"].get<int>(), agent["node"]["incarnation"].get<int>());
  json still = AgentOf(Status("client", task_id), agent_id);
  EXPECT_EQ(still["status"], "error");
  EXPECT_EQ(still.value("pid", 0), agent.value("pid", 0)) << "never started again";
  EXPECT_TRUE(ProcessesOf(agent_id).empty());
}

// A daemon that dies while its machine lives stops its agents through
// their lifelines: nothing runs on unanswered for.
TEST_F(NodeTest, AKilledDaemonsAgentsStopWithIt) {
  HerdProcess& node = StartNode("solo", 2);
  std::string task_id =
      HerdOn("client", {"task", "create", "daemon death"}).at("task_id").get<std::string>();
  json deployed = DeployOn("client", task_id, {"sleep", "300"});
  std::string agent_id = deployed.value("agent_id", "");
  std::vector<Identity> processes = ProcessesOf(agent_id);
  ASSERT_FALSE(processes.empty());
  ASSERT_EQ(kill(node.pid(), SIGKILL), 0);
  EXPECT_TRUE(WaitForExit(processes)) << DescribeProcesses(processes);
  CommandResult waited =
      Herd({"wait", task_id, agent_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  json after = AgentOf(Status("client", task_id), agent_id);
  EXPECT_EQ(after["status"], "terminated") << after.dump();
  EXPECT_THAT(after.value("termination_reason", ""), HasSubstr("node's daemon"));
}

// An agent on a node reports through `herd serve` (PostgreSQL-backed, from
// its node's environment); the client machine reads the report.
TEST_F(NodeTest, APlacedAgentReportsThroughMcpFromItsNode) {
  StartNode("worker-node", 1);
  std::string task_id =
      HerdOn("client", {"task", "create", "mcp from a node"}).at("task_id").get<std::string>();
  std::string script =
      "printf '%s\\n' "
      "'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
      "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"sh\",\"version\":\"1\"}}}' "
      "'{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}' "
      "\"{\\\"jsonrpc\\\":\\\"2.0\\\",\\\"id\\\":2,\\\"method\\\":\\\"tools/"
      "call\\\",\\\"params\\\":"
      "{\\\"name\\\":\\\"update_agent_progress\\\",\\\"arguments\\\":{\\\"task_id\\\":\\\"$HERD_"
      "TASK_ID\\\","
      "\\\"agent_id\\\":\\\"$HERD_AGENT_ID\\\",\\\"status\\\":\\\"working\\\",\\\"message\\\":"
      "\\\"hello from the node\\\",\\\"progress\\\":42}}}\" | " +
      HerdBinary() + " serve > /dev/null";
  json deployed = DeployOn("client", task_id, {"sh", "-c", script});
  std::string agent_id = deployed.value("agent_id", "");
  // The agent ends once its `herd serve` has answered and seen EOF.
  CommandResult waited =
      Herd({"wait", task_id, agent_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  json agent = AgentOf(Status("client", task_id), agent_id);
  EXPECT_EQ(agent["node"]["name"], "worker-node") << agent.dump();
  EXPECT_THAT(agent.dump(), HasSubstr("hello from the node"));
  CommandResult progress = Herd({"status", task_id, "--json"}, Machine("client"));
  EXPECT_THAT(progress.out, HasSubstr("hello from the node"));
}

// A follow-up message sent from another machine reaches a placed agent:
// a new turn its node starts once the agent has ended, and, sent with
// interrupt, a stop of the running turn by its node, then the message.
TEST_F(NodeTest, FollowUpMessagesReachAPlacedAgentFromAnotherMachine) {
  StartNode("talker", 2);
  std::string task_id =
      HerdOn("client", {"task", "create", "conversation"}).at("task_id").get<std::string>();
  // Each turn echoes what it is given on stdin (the prompt, then the message).
  json quick = DeployOn("client", task_id, {"sh", "-c", "cat; echo; echo turn-ended"});
  std::string quick_id = quick.value("agent_id", "");
  CommandResult waited =
      Herd({"wait", task_id, quick_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  CommandResult sent =
      Herd({"send", task_id, quick_id, "second-turn-text", "--json"}, Machine("client"));
  ASSERT_EQ(sent.exit_code, 0) << sent.Describe();
  EXPECT_EQ(sent.Json()["delivery"], "new_turn");
  EXPECT_EQ(sent.Json()["turn"], 2);
  waited = Herd({"wait", task_id, quick_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  CommandResult logs = Herd({"logs", task_id, quick_id, "--json"}, Machine("client"));
  EXPECT_THAT(logs.Json()["output"].dump(), HasSubstr("second-turn-text")) << logs.Describe();

  // Interrupt: the node stops the running turn, and the message runs next.
  // Its first turn runs until stopped; the second echoes the message and ends.
  json sleeper = DeployOn(
      "client", task_id,
      {"sh", "-c",
       "in=$(cat); echo \"$in\"; case \"$in\" in *interrupting*) ;; *) exec sleep 300;; esac"});
  std::string sleeper_id = sleeper.value("agent_id", "");
  std::vector<Identity> first_turn = ProcessesOf(sleeper_id);
  ASSERT_FALSE(first_turn.empty());
  CommandResult interrupted =
      Herd({"send", task_id, sleeper_id, "interrupting-text", "--interrupt", "--json"},
           Machine("client"));
  ASSERT_EQ(interrupted.exit_code, 0) << interrupted.Describe();
  EXPECT_EQ(interrupted.Json()["delivery"], "queued");
  EXPECT_TRUE(WaitForExit(first_turn)) << "the node stops turn 1";
  // Turn 1's end begins turn 2 in the same commit: the wait ends with turn 2.
  waited = Herd({"wait", task_id, sleeper_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  json agent = AgentOf(Status("client", task_id), sleeper_id);
  EXPECT_EQ(agent.value("turn", 1), 2) << agent.dump();
  logs = Herd({"logs", task_id, sleeper_id, "--json"}, Machine("client"));
  EXPECT_THAT(logs.Json()["output"].dump(), HasSubstr("interrupting-text")) << logs.Describe();
}

// The database restarted mid-run (pg_ctl restart -m fast): the node keeps
// its lease and its agent, new deploys work again, and nothing is lost or
// applied twice.
TEST_F(NodeTest, ADatabaseRestartMidRunLosesNothing) {
  registry::pg_test::TestServer server;
  ASSERT_TRUE(server.started());
  registry::pg_test::TestDatabase own(server.host());
  conninfo_ = own.conninfo();
  StartNode("steady", 3);
  std::string task_id =
      HerdOn("client", {"task", "create", "restart"}).at("task_id").get<std::string>();
  json first = DeployOn("client", task_id, {"sleep", "300"});
  std::string first_id = first.value("agent_id", "");
  std::vector<Identity> processes = ProcessesOf(first_id);
  ASSERT_FALSE(processes.empty());

  ASSERT_EQ(server.Restart(), 0);

  // A deploy right after either works or fails saying why; then one works.
  CommandResult second =
      Herd(CommandDeployArgs(task_id, "worker", {"sleep", "300"}), Machine("client"));
  if (second.exit_code != 0) {
    EXPECT_FALSE(second.Json().value("error", "").empty()) << second.Describe();
    second = Herd(CommandDeployArgs(task_id, "worker", {"sleep", "300"}), Machine("client"));
  }
  ASSERT_EQ(second.exit_code, 0) << second.Describe();
  std::string second_id = second.Json().value("agent_id", "");

  json status = Status("client", task_id);
  EXPECT_EQ(status["agents"]["total_spawned"], 2) << status.dump();
  EXPECT_EQ(status["agents"]["active"], 2);
  EXPECT_EQ(AgentOf(status, first_id)["status"], "running") << "the lease held";
  EXPECT_FALSE(ProcessesOf(first_id).empty());
  json killed = HerdOn("client", {"kill", task_id, "--all"});
  EXPECT_EQ(killed["failed"], 0) << killed.dump();
  EXPECT_TRUE(ProcessesOf(first_id).empty());
  EXPECT_TRUE(ProcessesOf(second_id).empty());
}

// A node that cannot renew its lease (the database is gone) stops its own
// agents before the lease can expire; once the database is back it
// registers again, as a new incarnation, and takes new work, and the
// stopped agent is not started again.
TEST_F(NodeTest, ANodeThatCannotRenewStopsItsAgentsBeforeTheLeaseExpires) {
  registry::pg_test::TestServer server;
  ASSERT_TRUE(server.started());
  registry::pg_test::TestDatabase own(server.host());
  conninfo_ = own.conninfo();
  HerdProcess& node = StartNode("cut-off", 1);
  std::string task_id =
      HerdOn("client", {"task", "create", "cut off"}).at("task_id").get<std::string>();
  json deployed = DeployOn("client", task_id, {"sleep", "300"});
  std::string agent_id = deployed.value("agent_id", "");
  std::vector<Identity> processes = ProcessesOf(agent_id);
  ASSERT_FALSE(processes.empty());

  ASSERT_EQ(server.Stop(), 0);
  // The lease is 10 s from the last renewal; the node stops the agent by
  // 6.7 s after it (SelfStopMargin), and the grace is 2 s.
  EXPECT_TRUE(WaitForExit(processes)) << DescribeProcesses(processes);
  ASSERT_EQ(server.Start(), 0);
  EXPECT_TRUE(
      node.WaitForOutput("node cut-off up: incarnation 2", DeadlineIn(std::chrono::seconds(120))))
      << "after stopping its agents the node registers again, as a new incarnation";
  CommandResult waited =
      Herd({"wait", task_id, agent_id, "--timeout", "120", "--json"}, Machine("client"));
  ASSERT_EQ(waited.exit_code, 0) << waited.Describe();
  json agent = AgentOf(Status("client", task_id), agent_id);
  EXPECT_NE(agent["status"], "running") << agent.dump();
  EXPECT_TRUE(ProcessesOf(agent_id).empty()) << "never started again";
  // The new incarnation takes new work.
  json fresh = DeployOn("client", task_id, {"sleep", "300"});
  EXPECT_FALSE(ProcessesOf(fresh.value("agent_id", "")).empty());
  EXPECT_EQ(kill(node.pid(), 0), 0) << "the daemon kept running";
}

}  // namespace
}  // namespace herd::test_util
