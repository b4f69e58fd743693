// Supervised agents with real processes: admission under concurrency, kills
// that leave nothing behind, exits recorded as they happen, a supervisor
// that dies, large prompts, unsafe agent types, child agents, the agent's
// environment and descriptors.
//
// Every agent is started through the real herd binary (`herd deploy`):
// deploy starts `herd supervise` from /proc/self/exe, which inside this test
// binary would be the test itself. Agents are `command` agents (sleep, sh).
// Nothing waits for an event with a fixed sleep: processes are awaited
// through pidfds, files through inotify, always with generous deadlines.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "util/clock.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class AgentsTest : public HerdTest {
 protected:
  // `sh -c SCRIPT ARG0`: the script sees ARG0 as "$0" (a path, usually).
  static std::vector<std::string> Shell(const std::string& script, const std::string& arg0 = "sh") {
    return {"sh", "-c", script, arg0};
  }

  // Starts every command at once, then waits for all of them.
  static std::vector<CommandResult> RunConcurrently(
      const std::vector<std::vector<std::string>>& commands) {
    std::vector<std::unique_ptr<HerdProcess>> running;
    for (const auto& args : commands) running.push_back(std::make_unique<HerdProcess>(args));
    std::vector<CommandResult> results;
    for (auto& process : running) results.push_back(process->Wait());
    return results;
  }

  static std::set<std::string> AgentIds(const json& task) {
    std::set<std::string> ids;
    for (const json& agent : task["agents"]) ids.insert(agent.value("id", ""));
    return ids;
  }

  // Checks the task's stored counts against its agent list.
  static void ExpectCountsMatchAgentList(const json& task) {
    int active = 0, completed = 0;
    for (const json& agent : task["agents"]) {
      std::string status = agent.value("status", "");
      if (status == "running" || status == "working" || status == "blocked") ++active;
      if (status == "completed") ++completed;
    }
    EXPECT_EQ(task.value("active_count", -1), active);
    EXPECT_EQ(task.value("completed_count", -1), completed);
    EXPECT_EQ(task.value("total_spawned", -1), static_cast<int>(task["agents"].size()));
  }

  // Once every writer has finished, the global index agrees with the task
  // registry: the task's counts and each agent's status.
  void ExpectGlobalIndexMatches(const json& task) {
    json global = GlobalRegistry();
    std::string task_id = task.value("task_id", "");
    EXPECT_EQ(global["tasks"][task_id].value("active_count", -1), task.value("active_count", -2))
        << global["tasks"][task_id].dump();
    EXPECT_EQ(global["tasks"][task_id].value("status", ""), task.value("status", ""));
    for (const json& agent : task["agents"]) {
      std::string id = agent.value("id", "");
      EXPECT_EQ(global["agents"][id].value("status", ""), agent.value("status", "")) << id;
    }
  }

  // Writes `text` to "$0/NAME" atomically from a shell script.
  static std::string ShellMark(const std::string& name, const std::string& text = "ready") {
    return "echo " + text + " > \"$0/" + name + ".tmp\" && mv \"$0/" + name + ".tmp\" \"$0/" +
           name + "\"";
  }

  std::vector<std::string> RunningAmong(const std::vector<Identity>& processes) {
    std::vector<std::string> running;
    for (const Identity& process : processes) {
      if (IsRunning(process)) running.push_back(DescribeProcesses({process}));
    }
    return running;
  }
};

// --- Admission under concurrency -------------------------------------------------

TEST_F(AgentsTest, ConcurrentDeploysRespectMaxConcurrent) {
  std::string task = CreateTask({"--max-concurrent", "5"});
  std::vector<std::vector<std::string>> deploys(20, DeployArgs(task, "sleeper", {"sleep", "60"}));

  std::vector<CommandResult> results = RunConcurrently(deploys);

  std::set<std::string> admitted;
  int refused = 0;
  for (const CommandResult& result : results) {
    if (result.exit_code == 0) {
      admitted.insert(result.Json().value("agent_id", ""));
    } else if (result.exit_code == 1) {
      ++refused;
      EXPECT_THAT(result.err, HasSubstr("max_concurrent")) << result.Describe();
      EXPECT_EQ(result.Json().value("success", true), false) << result.Describe();
    } else {
      ADD_FAILURE() << "neither admitted nor refused: " << result.Describe();
    }
  }
  EXPECT_EQ(admitted.size(), 5u);
  EXPECT_EQ(refused, 15);

  json registry = TaskRegistry(task);
  EXPECT_EQ(registry.value("active_count", -1), 5);
  EXPECT_EQ(registry.value("total_spawned", -1), 5);
  ExpectCountsMatchAgentList(registry);
  EXPECT_EQ(AgentIds(registry), admitted);
  std::set<std::string> children;
  for (const json& id : registry["agent_hierarchy"]["orchestrator"])
    children.insert(id.get<std::string>());
  EXPECT_EQ(children, admitted);
  for (const json& agent : registry["agents"]) {
    EXPECT_TRUE(IsRunning(AgentProcessOf(agent))) << agent.dump();
  }
  // The global index holds exactly the admitted agents: refusals were never indexed.
  json global = GlobalRegistry();
  std::set<std::string> indexed;
  for (const auto& [id, agent] : global["agents"].items()) {
    if (agent.value("task_id", "") == task) indexed.insert(id);
  }
  EXPECT_EQ(indexed, admitted);
  EXPECT_EQ(global.value("active_agents", -1), 5);

  std::vector<std::vector<std::string>> kills;
  for (const std::string& agent : admitted) kills.push_back({"kill", task, agent, "--grace", "5"});
  for (const CommandResult& result : RunConcurrently(kills)) {
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
  }
  registry = TaskRegistry(task);
  EXPECT_EQ(registry.value("active_count", -1), 0);
  ExpectCountsMatchAgentList(registry);
}

TEST_F(AgentsTest, FailedStartReleasesItsSlot) {
  std::string task = CreateTask({"--max-agents", "1"});

  CommandResult failed = Herd(DeployArgs(task, "broken", {"/nonexistent/agent-program"}));

  EXPECT_EQ(failed.exit_code, 1) << failed.Describe();
  EXPECT_THAT(failed.err, HasSubstr("/nonexistent/agent-program"));
  json registry = TaskRegistry(task);
  EXPECT_TRUE(registry["agents"].empty()) << registry.dump(2);
  EXPECT_EQ(registry.value("total_spawned", -1), 0);
  EXPECT_TRUE(registry["agent_hierarchy"]["orchestrator"].empty());
  EXPECT_TRUE(GlobalRegistry()["agents"].empty());
  // The only slot of the task's lifetime is still free.
  EXPECT_NO_THROW(DeployAgent(task, {"sleep", "300"}));
}

TEST_F(AgentsTest, MaxAgentsCountsAgentsThatHaveEnded) {
  std::string task = CreateTask({"--max-agents", "2"});
  for (int i = 0; i < 2; ++i) WaitForAgentToEnd(task, DeployAgent(task, {"true"}));

  CommandResult third = Herd(DeployArgs(task, "worker", {"true"}));

  EXPECT_EQ(third.exit_code, 1) << third.Describe();
  EXPECT_THAT(third.err, HasSubstr("max_agents"));
  EXPECT_EQ(TaskRegistry(task).value("total_spawned", -1), 2);
}

// HERD_MAX_RUNNING_AGENTS caps running agents across every workspace of
// the machine: here the default one and a project's (`--cwd`).
TEST_F(AgentsTest, RunningCapCountsAgentsInEveryWorkspace) {
  RunOptions capped;
  capped.environment = {{"HERD_MAX_RUNNING_AGENTS", "1"}};
  std::string first_task = CreateTask();
  std::string second_task = CreateTask({"--cwd", project()});
  ASSERT_TRUE(FileExists(project() + "/.agent-workspace/" + second_task + "/AGENT_REGISTRY.json"))
      << "the second task should live in the project's workspace";
  CommandResult admitted = Herd(DeployArgs(first_task, "worker", {"sleep", "300"}), capped);
  ASSERT_EQ(admitted.exit_code, 0) << admitted.Describe();

  CommandResult refused = Herd(DeployArgs(second_task, "worker", {"sleep", "300"}), capped);

  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_THAT(refused.err, HasSubstr("HERD_MAX_RUNNING_AGENTS"));
  EXPECT_THAT(refused.err, HasSubstr("1 in other workspaces"));
  json second = HerdJson({"status", second_task});
  EXPECT_TRUE(second["agents"]["agents_list"].empty()) << "the refused reservation was kept";

  // Once the first one ends, the slot is free again.
  HerdJson({"kill", first_task, admitted.Json().value("agent_id", ""), "--grace", "1"});
  CommandResult later = Herd(DeployArgs(second_task, "worker", {"true"}), capped);
  EXPECT_EQ(later.exit_code, 0) << later.Describe();
}

// A workspace known under two spellings (a symlink) is counted once.
TEST_F(AgentsTest, RunningCapCountsAWorkspaceReachedThroughASymlinkOnce) {
  std::string task = CreateTask();
  std::string link = root() + "/workspace-link";
  ASSERT_EQ(::symlink(workspace().c_str(), link.c_str()), 0);
  CommandResult through_link = Herd({"--workspace", link, "--json", "task", "create", "via link"});
  ASSERT_EQ(through_link.exit_code, 0) << through_link.Describe();
  RunOptions capped;
  capped.environment = {{"HERD_MAX_RUNNING_AGENTS", "2"}};
  for (int i = 0; i < 2; ++i) {
    CommandResult deployed = Herd(DeployArgs(task, "worker", {"sleep", "300"}), capped);
    EXPECT_EQ(deployed.exit_code, 0) << "deploy " << i << ": " << deployed.Describe();
  }
  CommandResult third = Herd(DeployArgs(task, "worker", {"sleep", "300"}), capped);
  EXPECT_EQ(third.exit_code, 1) << third.Describe();
  EXPECT_THAT(third.err, HasSubstr("2 in this workspace, 0 in other workspaces"));
}

// The cap cannot be raced: 12 deploys at once into two workspaces with a
// cap of 3 admit exactly 3.
TEST_F(AgentsTest, ConcurrentDeploysAcrossWorkspacesRespectTheRunningCap) {
  std::string here = CreateTask();
  std::string there = CreateTask({"--cwd", project()});
  ScopedEnvironment environment;
  environment.Set("HERD_MAX_RUNNING_AGENTS", "3");
  std::vector<std::vector<std::string>> deploys;
  for (int i = 0; i < 6; ++i) {
    deploys.push_back(DeployArgs(here, "sleeper", {"sleep", "60"}));
    deploys.push_back(DeployArgs(there, "sleeper", {"sleep", "60"}));
  }

  std::vector<CommandResult> results = RunConcurrently(deploys);

  int admitted = 0;
  for (const CommandResult& result : results) {
    if (result.exit_code == 0) {
      ++admitted;
    } else {
      EXPECT_EQ(result.exit_code, 1) << result.Describe();
      EXPECT_THAT(result.err, HasSubstr("HERD_MAX_RUNNING_AGENTS")) << result.Describe();
    }
  }
  EXPECT_EQ(admitted, 3);
  int running = HerdJson({"status", here})["agents"].value("active", -1) +
                HerdJson({"status", there})["agents"].value("active", -1);
  EXPECT_EQ(running, 3);
}

// The global index is updated by every change to a task: deploys, exits
// and kills alike.
TEST_F(AgentsTest, GlobalIndexFollowsDeploysExitsAndKills) {
  std::string task = CreateTask();
  std::string sleeper = DeployAgent(task, {"sleep", "300"});
  std::string quitter = DeployAgent(task, {"sh", "-c", "exit 3"});
  WaitForAgentToEnd(task, quitter);
  ExpectGlobalIndexMatches(TaskRegistry(task));
  EXPECT_EQ(GlobalRegistry().value("active_agents", -1), 1);

  HerdJson({"kill", task, sleeper});

  ExpectGlobalIndexMatches(TaskRegistry(task));
  EXPECT_EQ(GlobalRegistry().value("active_agents", -1), 0);
}

// HERD_MAX_RUNNING_AGENTS counts running agents: one that has exited by
// itself no longer holds a slot.
TEST_F(AgentsTest, WorkspaceWideCapFreesTheSlotOfAnAgentThatExited) {
  RunOptions capped;
  capped.environment = {{"HERD_MAX_RUNNING_AGENTS", "1"}};
  std::string task = CreateTask();
  CommandResult first = Herd(DeployArgs(task, "worker", {"true"}), capped);
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  json ended = WaitForAgentToEnd(task, first.Json().value("agent_id", ""));
  ASSERT_EQ(ended.value("status", ""), "completed");

  CommandResult second = Herd(DeployArgs(task, "worker", {"true"}), capped);

  EXPECT_EQ(second.exit_code, 0) << second.Describe();
}

// --- Kill ------------------------------------------------------------------------

TEST_F(AgentsTest, ConcurrentKillsLeaveNothing) {
  std::string task = CreateTask();
  std::string marks = Subdirectory("marks");
  std::vector<std::string> agents;
  for (int i = 0; i < 8; ++i) agents.push_back(DeployAgent(task, {"sleep", "300"}, "sleeper"));
  // A grandchild that moves to a session (and group) of its own, writing
  // its pid once it has; the agent marks itself ready once both its
  // children exist.
  agents.push_back(DeployAgent(
      task,
      Shell("setsid sh -c 'echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec sleep 300' "
            "\"$0/grandchild\" & sleep 300 & " +
                ShellMark("session-agent") + "; wait",
            marks),
      "session-leaver"));
  // An agent (and its child) that ignore SIGTERM: only SIGKILL stops them.
  agents.push_back(DeployAgent(
      task, Shell("trap '' TERM; sleep 300 & " + ShellMark("stubborn-agent") + "; wait", marks),
      "stubborn"));
  for (const char* mark : {"grandchild", "session-agent", "stubborn-agent"}) {
    ASSERT_TRUE(WaitForFile(marks + "/" + mark)) << mark;
  }
  Identity grandchild = IdentityOf(std::stoi(ReadFile(marks + "/grandchild")));
  ASSERT_TRUE(IsRunning(grandchild));
  ASSERT_NE(ReadProcessInfo(grandchild.pid)->session,
            ReadProcessInfo(AgentProcessOf(AgentEntry(task, agents[8])).pid)->session)
      << "the grandchild did not leave the agent's session";

  std::vector<Identity> agent_processes{grandchild};
  std::vector<Identity> supervisors;
  json registry = TaskRegistry(task);
  for (const std::string& agent : agents) {
    json entry = AgentIn(registry, agent);
    Identity process = AgentProcessOf(entry);
    ASSERT_TRUE(IsRunning(process)) << entry.dump();
    agent_processes.push_back(process);
    for (const Identity& descendant : DescendantsOf(process.pid)) {
      agent_processes.push_back(descendant);
    }
    supervisors.push_back(SupervisorOf(entry));
  }
  for (const Identity& process : agent_processes) Track(process);
  ASSERT_GE(agent_processes.size(), 13u) << "10 agents, 2 sleep children and the grandchild";

  std::vector<std::vector<std::string>> kills;
  for (const std::string& agent : agents) {
    kills.push_back({"kill", task, agent, "--grace", "1", "--reason", "test", "--json"});
  }
  for (const CommandResult& result : RunConcurrently(kills)) {
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    json output = result.Json();
    EXPECT_EQ(output.value("status", ""), "terminated") << result.Describe();
    EXPECT_TRUE(output["cleanup"].value("all_exited", false)) << result.Describe();
  }

  // Gone by the time the kills returned, identified by pid + start time.
  EXPECT_THAT(RunningAmong(agent_processes), ::testing::IsEmpty());
  EXPECT_TRUE(WaitForExit(supervisors)) << "a supervisor is still running";
  std::vector<Identity> tagged = ProcessesWithEnvironment("HERD_TASK_ID=" + task);
  EXPECT_TRUE(tagged.empty()) << "still running with the task's environment:"
                              << DescribeProcesses(tagged);
  registry = TaskRegistry(task);
  EXPECT_EQ(registry.value("active_count", -1), 0);
  ExpectCountsMatchAgentList(registry);
  for (const json& agent : registry["agents"]) {
    EXPECT_EQ(agent.value("status", ""), "terminated") << agent.dump();
    EXPECT_EQ(agent.value("termination_reason", ""), "test") << agent.dump();
  }
}

// Each kill indexes the task as it left it; concurrent kills must not let
// an older picture of the task overwrite a newer one in the global index.
TEST_F(AgentsTest, ConcurrentKillsKeepTheGlobalIndexConsistent) {
  std::string task = CreateTask();
  std::vector<std::vector<std::string>> kills;
  for (int i = 0; i < 16; ++i) {
    kills.push_back({"kill", task, DeployAgent(task, {"sleep", "300"}), "--grace", "5"});
  }

  for (const CommandResult& result : RunConcurrently(kills)) {
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
  }

  json registry = TaskRegistry(task);
  EXPECT_EQ(registry.value("active_count", -1), 0);
  ExpectGlobalIndexMatches(registry);
  EXPECT_EQ(GlobalRegistry().value("active_agents", -1), 0);
}

TEST_F(AgentsTest, KillOfAnEndedAgentChangesNothing) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"true"});
  WaitForAgentToEnd(task, agent);
  json before = TaskRegistry(task);

  json killed = HerdJson({"kill", task, agent});

  EXPECT_TRUE(killed.value("already_ended", false)) << killed.dump(2);
  EXPECT_EQ(killed.value("status", ""), "completed");
  EXPECT_EQ(TaskRegistry(task), before);
}

// A SIGTERM that herd did not send (a person, a shutdown) stops the agent on
// request too: its entry reads terminated and names the sender, not error.
TEST_F(AgentsTest, SigtermToTheSupervisorReadsAsAStopOnRequest) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"sleep", "300"});
  int pidfd = OpenPidfd(SupervisorOf(AgentEntry(task, agent)));
  ASSERT_GE(pidfd, 0);
  ASSERT_EQ(::syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0), 0);
  ::close(pidfd);

  json ended = WaitForAgentToEnd(task, agent);

  EXPECT_EQ(ended.value("status", ""), "terminated") << ended.dump(2);
  EXPECT_THAT(ended.value("termination_reason", ""),
              HasSubstr("SIGTERM sent to its supervisor by process " + std::to_string(::getpid())));
  EXPECT_EQ(ended.value("exit_signal", 0), SIGTERM) << ended.dump(2);
}

TEST_F(AgentsTest, LogsStayReadableAfterKill) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, Shell("echo visible-after-kill; exec sleep 300"));
  std::string log = LogPath(task, agent);
  ASSERT_TRUE(WaitForFileContaining(log, "visible-after-kill"));

  HerdJson({"kill", task, agent, "--grace", "5"});

  EXPECT_THAT(ReadFile(log), HasSubstr("visible-after-kill"));
  json output = HerdJson({"logs", task, agent});
  EXPECT_THAT(output.value("output", ""), HasSubstr("visible-after-kill"));
  EXPECT_EQ(output.value("session_status", ""), "terminated");
}

// --- Exits ------------------------------------------------------------------------

class AgentsExitRecordingTest : public AgentsTest {
 protected:
  // Deploys `sh -c 'date +%s.%N > STAMP; ENDING'`, waits for its supervisor
  // to exit, and returns the agent's entry. `delay_ms` is the time from
  // the agent's own timestamp to the ended_at the registry records.
  json RunUntilExit(const std::string& task, const std::string& ending, double* delay_ms) {
    std::string stamp = Subdirectory("stamps") + "/" + std::to_string(++runs_);
    std::string agent = DeployAgent(task, Shell("date +%s.%N > \"$0\"; " + ending, stamp));
    json entry = WaitForAgentToEnd(task, agent);
    double exited = std::stod(ReadFile(stamp));
    *delay_ms = (ParseIso8601(entry.value("ended_at", "")).value_or(-1) - exited) * 1000;
    std::printf("exit recorded %.2f ms after the agent's last timestamp (%s)\n", *delay_ms,
                ending.c_str());
    RecordProperty("exit_record_ms_" + std::to_string(runs_), std::to_string(*delay_ms));
    return entry;
  }

 private:
  int runs_ = 0;
};

TEST_F(AgentsExitRecordingTest, ExitRecordedPromptly) {
  std::string task = CreateTask();
  double delays[3];

  json completed = RunUntilExit(task, "exit 0", &delays[0]);
  json failed = RunUntilExit(task, "exit 3", &delays[1]);
  json signalled = RunUntilExit(task, "kill -KILL $$", &delays[2]);

  EXPECT_EQ(completed.value("status", ""), "completed") << completed.dump(2);
  EXPECT_EQ(completed["exit_code"], 0);
  EXPECT_TRUE(completed["exit_signal"].is_null());
  EXPECT_EQ(completed.value("progress", -1), 100);

  EXPECT_EQ(failed.value("status", ""), "error") << failed.dump(2);
  EXPECT_EQ(failed["exit_code"], 3);
  EXPECT_THAT(failed.value("error", ""), HasSubstr("3"));

  EXPECT_EQ(signalled.value("status", ""), "error") << signalled.dump(2);
  EXPECT_EQ(signalled["exit_signal"], SIGKILL);
  EXPECT_TRUE(signalled["exit_code"].is_null());

  json registry = TaskRegistry(task);
  EXPECT_EQ(registry.value("active_count", -1), 0);
  EXPECT_EQ(registry.value("completed_count", -1), 1);
  ExpectCountsMatchAgentList(registry);
  for (double delay : delays) {
    EXPECT_GE(delay, 0) << "ended_at precedes the agent's own last timestamp";
    // A sanity bound only (the benchmark measures the 100 ms target): a
    // recorder that polls, or waits for the next herd command, fails it.
    EXPECT_LT(delay, 2000);
  }
}

// An entry whose deployer died before the supervisor recorded the start
// stays in phase "starting"; after the starting grace (60 s) status reports
// it lost, as doctor does, instead of "starting" forever.
TEST_F(AgentsTest, StatusReportsAStartThatNeverHappenedAsLost) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"true"});
  WaitForAgentToEnd(task, agent);
  // Rewind the entry to a start admitted two minutes ago and never recorded.
  json registry = TaskRegistry(task);
  for (json& entry : registry["agents"]) {
    if (entry.value("id", "") != agent) continue;
    entry["status"] = "running";
    entry["phase"] = "starting";
    entry["started_at"] = FormatIso8601(NowUnixSeconds() - 120);
    for (const char* key : {"pid", "process_start_time", "supervisor_pid", "supervisor_start_time",
                            "ended_at", "exit_code"}) {
      entry.erase(key);
    }
  }
  registry["active_count"] = 1;
  WriteFile(TaskRegistryPath(task), registry.dump());

  json status = Status(task);
  json listed;
  for (const json& candidate : status["agents"]["agents_list"]) {
    if (candidate.value("id", "") == agent) listed = candidate;
  }
  EXPECT_EQ(listed.value("liveness", ""), "lost") << status.dump(2);
  EXPECT_EQ(status["agents"].value("lost", -1), 1);
}

// --- A supervisor that dies -------------------------------------------------------

// Documented behaviour: the agent has PR_SET_PDEATHSIG=SIGKILL, so it dies
// with its supervisor; its entry stays active (nobody is left to record the
// exit) and `herd status` reports it as "lost" until `herd kill` (or doctor)
// reconciles it.
TEST_F(AgentsTest, SupervisorKilledDoesNotLeaveAgentRunningUnrecorded) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"sleep", "300"});
  json entry = AgentEntry(task, agent);
  Identity supervisor = SupervisorOf(entry);
  Identity process = AgentProcessOf(entry);
  ASSERT_TRUE(IsRunning(supervisor));
  ASSERT_TRUE(IsRunning(process));

  ASSERT_EQ(KillAndWait({supervisor}), 1);

  EXPECT_TRUE(WaitForExit(process)) << "the agent outlived its supervisor";
  uint64_t sequence = TaskRegistry(task).value("herd_sequence", 0ULL);
  json status = Status(task);
  json listed;
  for (const json& candidate : status["agents"]["agents_list"]) {
    if (candidate.value("id", "") == agent) listed = candidate;
  }
  EXPECT_EQ(listed.value("liveness", ""), "lost") << status.dump(2);
  EXPECT_EQ(listed.value("status", ""), "running");
  EXPECT_EQ(status["agents"].value("lost", -1), 1);
  EXPECT_EQ(TaskRegistry(task).value("herd_sequence", 0ULL), sequence) << "status wrote";

  json killed = HerdJson({"kill", task, agent, "--grace", "1"});

  EXPECT_EQ(killed.value("status", ""), "terminated");
  json registry = TaskRegistry(task);
  EXPECT_EQ(AgentIn(registry, agent).value("status", ""), "terminated");
  EXPECT_EQ(registry.value("active_count", -1), 0);
}

// The same loss with a grandchild that left the agent's session: it has no
// parent-death signal and is in no group herd knows, yet it is the agent's.
TEST_F(AgentsTest, KillAfterSupervisorLossStopsGrandchildInItsOwnSession) {
  std::string task = CreateTask();
  std::string marks = Subdirectory("marks");
  std::string agent = DeployAgent(
      task, Shell("setsid sh -c 'echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec sleep 300' "
                  "\"$0/grandchild\" & wait",
                  marks));
  ASSERT_TRUE(WaitForFile(marks + "/grandchild"));
  Identity grandchild = IdentityOf(std::stoi(ReadFile(marks + "/grandchild")));
  Track(grandchild);
  json entry = AgentEntry(task, agent);
  ASSERT_EQ(KillAndWait({SupervisorOf(entry)}), 1);
  ASSERT_TRUE(WaitForExit(AgentProcessOf(entry)));

  CommandResult killed = Herd({"kill", task, agent, "--grace", "1", "--json"});

  EXPECT_EQ(killed.exit_code, 0) << killed.Describe();
  EXPECT_FALSE(IsRunning(grandchild))
      << "the agent's grandchild is still running, and no herd command can find it:"
      << DescribeProcesses({grandchild});
}

// --- Prompts and agent types --------------------------------------------------------

TEST_F(AgentsTest, LargePromptWorks) {
  // 200 KB of text that a shell would mangle if it ever went through one.
  std::string prompt;
  for (int line = 0; prompt.size() < 204800; ++line) {
    prompt +=
        "line " + std::to_string(line) + ": $HOME `id` $(id) 'single' \"double\" \\ ; | & *\n";
  }
  prompt.resize(204800);
  std::string prompt_file = root() + "/prompt.txt";
  WriteFile(prompt_file, prompt);
  std::string task = CreateTask();

  std::string agent = DeployAgent(task, Shell("wc -c; echo \"prompt-file=$HERD_PROMPT_FILE\""),
                                  "reader", {"--prompt-file", prompt_file});
  json entry = WaitForAgentToEnd(task, agent);

  EXPECT_EQ(entry.value("status", ""), "completed") << entry.dump(2);
  std::vector<std::string> log = ReadLines(LogPath(task, agent));
  ASSERT_EQ(log.size(), 2u) << ReadFile(LogPath(task, agent));
  EXPECT_EQ(std::stoul(log[0]), 204800u);
  ASSERT_EQ(log[1].rfind("prompt-file=", 0), 0u);
  std::string given = log[1].substr(std::string("prompt-file=").size());
  EXPECT_TRUE(ReadFile(given) == prompt) << "HERD_PROMPT_FILE " << given << " differs";
  std::string preview = entry.value("prompt", "");
  EXPECT_LE(preview.size(), 200u);
  EXPECT_EQ(prompt.rfind(preview, 0), 0u) << "the stored preview is not the prompt's start";
}

TEST_F(AgentsTest, UnsafeAgentTypesAreMadeSafe) {
  std::string task = CreateTask();
  const std::vector<std::pair<std::string, std::string>> types = {
      {"../../x", "^x-[0-9]{6}-[0-9a-f]{6}$"}, {"a.b:c", "^a-b-c-[0-9]{6}-[0-9a-f]{6}$"}};
  std::string task_directory = std::filesystem::canonical(TaskDirectory(task)).string() + "/";
  std::vector<std::string> agents;
  for (const auto& [type, pattern] : types) {
    std::string agent = DeployAgent(task, Shell("echo hello"), type);
    agents.push_back(agent);
    json entry = WaitForAgentToEnd(task, agent);

    EXPECT_TRUE(std::regex_match(agent, std::regex(pattern))) << agent;
    EXPECT_EQ(agent.find_first_of(".:/"), std::string::npos) << agent;
    EXPECT_EQ(entry.value("type", ""), type);
    EXPECT_EQ(entry.value("status", ""), "completed") << entry.dump(2);
    for (const auto& [name, path] : entry["tracked_files"].items()) {
      std::string resolved = std::filesystem::weakly_canonical(path.get<std::string>()).string();
      EXPECT_EQ(resolved.rfind(task_directory, 0), 0u) << name << " = " << resolved;
    }
    EXPECT_EQ(ReadFile(LogPath(task, agent)), "hello\n");
  }
  // Every file named after an agent is inside the task's directory, no name
  // carries the raw type, and nothing landed beside the test's directories.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root())) {
    std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(':'), std::string::npos) << entry.path();
    EXPECT_EQ(name.find("a.b"), std::string::npos) << entry.path();
    for (const std::string& agent : agents) {
      if (name.find(agent) == std::string::npos) continue;
      std::string resolved = std::filesystem::canonical(entry.path()).string();
      EXPECT_EQ(resolved.rfind(task_directory, 0), 0u) << resolved;
    }
  }
  std::set<std::string> in_root;
  for (const auto& entry : std::filesystem::directory_iterator(root())) {
    in_root.insert(entry.path().filename().string());
  }
  EXPECT_EQ(in_root, (std::set<std::string>{"workspace", "state", "project"}));
  // Ids, unlike types, are never rewritten: one that could escape is refused.
  CommandResult status = Herd({"status", "../x"});
  EXPECT_EQ(status.exit_code, 1) << status.Describe();
}

TEST_F(AgentsTest, IdsThatCouldEscapeTheWorkspaceAreRefused) {
  std::string task = CreateTask();
  std::string agent = DeployAgent(task, {"sleep", "300"});
  const std::vector<std::vector<std::string>> refused = {
      {"status", "../x"},
      {"status", "a.b:c"},
      {"deploy", "../../x", "--type", "t", "--backend", "command", "--", "true"},
      {"deploy", task, "--type", "t", "--parent", "../x", "--backend", "command", "--", "true"},
      {"kill", task, "../../" + agent},
      {"logs", task, "../" + agent},
      {"progress", task, "a.b:c", "--status", "working", "--message", "m"},
      {"finding", task, "../x", "--type", "issue", "--severity", "low", "--message", "m"},
  };
  for (const auto& args : refused) {
    CommandResult result = Herd(args);
    EXPECT_EQ(result.exit_code, 1) << result.Describe();
    // "task id \"../x\" must start with ...", "agent id \"a.b:c\" may contain only ..."
    EXPECT_THAT(result.err, HasSubstr("id \"")) << result.Describe();
  }
  EXPECT_EQ(AgentEntry(task, agent).value("status", ""), "running");
}

// --- Child agents --------------------------------------------------------------------

TEST_F(AgentsTest, ChildAgentsRecordDepthAndHierarchy) {
  std::string task = CreateTask();
  std::string parent = DeployAgent(task, {"sleep", "300"}, "lead");

  json child = Deploy(task, {"sleep", "300"}, "helper", {"--parent", parent});
  std::string child_id = child.value("agent_id", "");
  json grandchild = Deploy(task, {"sleep", "300"}, "helper", {"--parent", child_id});

  EXPECT_EQ(child.value("depth", -1), 2);
  EXPECT_EQ(child.value("parent", ""), parent);
  EXPECT_EQ(grandchild.value("depth", -1), 3);
  json registry = TaskRegistry(task);
  EXPECT_EQ(AgentIn(registry, parent).value("depth", -1), 1);
  EXPECT_EQ(AgentIn(registry, child_id).value("depth", -1), 2);
  EXPECT_EQ(AgentIn(registry, child_id).value("parent", ""), parent);
  json expected_hierarchy = {{"orchestrator", {parent}},
                             {parent, {child_id}},
                             {child_id, {grandchild.value("agent_id", "")}}};
  EXPECT_EQ(registry["agent_hierarchy"], expected_hierarchy);
  EXPECT_EQ(Status(task)["hierarchy"], expected_hierarchy);
}

TEST_F(AgentsTest, ChildOfAnEndedParentIsRefused) {
  std::string task = CreateTask();
  std::string parent = DeployAgent(task, {"true"}, "lead");
  WaitForAgentToEnd(task, parent);

  CommandResult refused = Herd(DeployArgs(task, "helper", {"sleep", "300"}, {"--parent", parent}));

  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_THAT(refused.err, HasSubstr("already ended"));
  EXPECT_EQ(TaskRegistry(task).value("total_spawned", -1), 1);
}

TEST_F(AgentsTest, ChildOfAnUnknownParentIsRefused) {
  std::string task = CreateTask();

  CommandResult refused =
      Herd(DeployArgs(task, "helper", {"sleep", "300"}, {"--parent", "lead-000000-abcdef"}));

  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_THAT(refused.err, HasSubstr("lead-000000-abcdef"));
  EXPECT_TRUE(TaskRegistry(task)["agents"].empty());
}

TEST_F(AgentsTest, MaxDepthIsEnforced) {
  std::string task = CreateTask({"--max-depth", "2"});
  std::string first = DeployAgent(task, {"sleep", "300"}, "lead");
  std::string second = DeployAgent(task, {"sleep", "300"}, "helper", {"--parent", first});

  CommandResult refused = Herd(DeployArgs(task, "helper", {"sleep", "300"}, {"--parent", second}));

  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_THAT(refused.err, HasSubstr("max_depth"));
  EXPECT_EQ(TaskRegistry(task).value("total_spawned", -1), 2);
}

// --- The agent's environment ------------------------------------------------------------

TEST_F(AgentsTest, AgentGetsItsIdsWorkspaceAndTheTaskDirectory) {
  std::string task = CreateTask({"--cwd", project()});
  json deployed = Deploy(task, Shell("echo \"task=$HERD_TASK_ID\"; echo \"agent=$HERD_AGENT_ID\"; "
                                     "echo \"workspace=$HERD_WORKSPACE\"; echo \"cwd=$(pwd -P)\""));
  std::string agent = deployed.value("agent_id", "");
  std::string log = deployed.value("log_file", "");
  std::string project_workspace = project() + "/.agent-workspace";
  std::string entry_file = project_workspace + "/" + task + "/AGENT_REGISTRY.json";
  json entry = AgentIn(ReadJsonFile(entry_file), agent);
  ASSERT_TRUE(WaitForExit(SupervisorOf(entry)));

  std::vector<std::string> expected = {"task=" + task, "agent=" + agent,
                                       "workspace=" + project_workspace,
                                       "cwd=" + std::filesystem::canonical(project()).string()};
  EXPECT_EQ(ReadLines(log), expected);
  EXPECT_EQ(AgentIn(ReadJsonFile(entry_file), agent).value("status", ""), "completed");
}

TEST_F(AgentsTest, AgentInheritsNoDescriptorBeyondTheStandardThree) {
  // A descriptor this test leaks on purpose into `herd deploy`.
  int leaked = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC
  ASSERT_GE(leaked, 3);
  std::string task = CreateTask();
  std::string agent;
  EXPECT_NO_THROW(agent = DeployAgent(task, Shell("ls /proc/$$/fd")));
  ::close(leaked);
  WaitForAgentToEnd(task, agent);

  EXPECT_EQ(ReadLines(LogPath(task, agent)), (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(AgentsTest, AgentOutputNeverReachesTheCallersStdout) {
  std::string task = CreateTask();
  RunOptions options;
  options.timeout = std::chrono::seconds(30);

  // EOF on herd's pipes while the agent keeps running shows it holds neither.
  CommandResult deploy =
      Herd(DeployArgs(task, "talker",
                      Shell("echo agent-stdout-marker; echo agent-stderr-marker >&2; "
                            "exec sleep 300")),
           options);

  ASSERT_EQ(deploy.exit_code, 0) << deploy.Describe();
  EXPECT_FALSE(deploy.timed_out) << "the agent kept herd's stdout or stderr open";
  EXPECT_FALSE(deploy.Json().is_discarded()) << "stdout is not only herd's JSON: " << deploy.out;
  std::string agent = deploy.Json().value("agent_id", "");
  std::string log = LogPath(task, agent);
  ASSERT_TRUE(WaitForFileContaining(log, "agent-stderr-marker"));
  EXPECT_THAT(deploy.out, Not(HasSubstr("marker")));
  EXPECT_THAT(deploy.err, Not(HasSubstr("marker")));
  EXPECT_THAT(ReadFile(log), HasSubstr("agent-stdout-marker"));
  EXPECT_TRUE(IsRunning(AgentProcessOf(AgentEntry(task, agent))));
}

// --- Backends ----------------------------------------------------------------------------

TEST_F(AgentsTest, ClaudeBackendRecordsTheResultEvent) {
  // A stand-in for the claude CLI (CLAUDE_EXECUTABLE): reads its prompt and
  // prints a stream-json result line.
  std::string fake_claude = root() + "/fake-claude";
  WriteFile(fake_claude,
            "#!/bin/sh\n"
            "echo \"args: $*\"\n"
            "grep '^Agent ID: ' | head -n 1\n"
            "echo '{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,"
            "\"total_cost_usd\":0.0123,\"num_turns\":3,\"duration_ms\":456,"
            "\"usage\":{\"input_tokens\":10,\"output_tokens\":20}}'\n");
  std::filesystem::permissions(fake_claude, std::filesystem::perms::owner_all);
  std::string task = CreateTask();
  RunOptions options;
  options.environment = {{"CLAUDE_EXECUTABLE", fake_claude}, {"CLAUDE_FLAGS", "--print --verbose"}};

  CommandResult deploy =
      Herd({"deploy", task, "--type", "coder", "--prompt", "do it", "--json"}, options);
  ASSERT_EQ(deploy.exit_code, 0) << deploy.Describe();
  std::string agent = deploy.Json().value("agent_id", "");
  json entry = WaitForAgentToEnd(task, agent);

  EXPECT_EQ(entry.value("status", ""), "completed") << entry.dump(2);
  EXPECT_DOUBLE_EQ(entry["result"].value("total_cost_usd", 0.0), 0.0123);
  EXPECT_EQ(entry["result"].value("num_turns", 0), 3);
  std::vector<std::string> log = ReadLines(LogPath(task, agent));
  ASSERT_GE(log.size(), 2u);
  // CLAUDE_FLAGS, then the per-agent MCP config that starts `herd serve`.
  EXPECT_THAT(log[0], HasSubstr("--print --verbose --mcp-config"));
  std::string mcp_config = TaskDirectory(task) + "/prompts/" + agent + "_mcp.json";
  EXPECT_THAT(log[0], HasSubstr(mcp_config));
  EXPECT_THAT(ReadFile(mcp_config), HasSubstr("\"serve\""));
  EXPECT_EQ(log[1], "Agent ID: " + agent);
  json status = Status(task);
  EXPECT_DOUBLE_EQ(status["usage"].value("total_cost_usd", 0.0), 0.0123);
}

}  // namespace
}  // namespace herd::test_util
