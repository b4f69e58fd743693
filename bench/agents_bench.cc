// herd-bench-agents: how fast herd starts, kills and records agents, measured
// end to end with the real herd binary (HERD_BINARY) and real processes.
//
//   (a) deploy: `herd deploy --backend command -- sleep 300`, N times. The
//       wall time of the command as a caller sees it (spawn to reaped), the
//       herd process's own lifetime (from its exec, when posix_spawn
//       returns, until it exits; herd never sleeps, so this is herd's time),
//       and its CPU time.
//   (b) kill: `herd kill --grace 5` of a cooperative agent (sleep dies on
//       SIGTERM), N times: wall time, and herd's own elapsed figure.
//   (c) exit recording: an agent writes `date +%s.%N` and exits; the delay
//       until the ended_at its supervisor records.
//
// Targets (issue 3): deploy < 50 ms of herd's own time, cooperative kill
// < 100 ms, exit recorded within 100 ms. Usage: herd-bench-agents [RUNS]
// (default 30). Prints a table and one machine-readable line.
//
//   (d) stopping a task (issue 13), with `herd-bench-agents --stop-task
//       [N...]` (default 100 400): N agents running `sleep 600`, deployed
//       four at a time, then one `herd kill TASK --all --grace 5`: its wall
//       time, herd's own elapsed figure, failures, agents left running, and
//       until every supervisor had recorded its exit (and how many of those
//       records met the lock timeout and retried).
//       Beside it the baseline: N concurrent single `herd kill`s of another
//       task's N agents (failed commands, agents left running). The lock
//       timeout is herd's default (HERD_LOCK_TIMEOUT_MS unset), as users run
//       it. Target: well under the 10 s lock timeout, no failure. Prints a
//       table and one machine-readable line.
#define HERD_TEST_UTIL_WITHOUT_GTEST
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "util/clock.h"

namespace herd::test_util {
namespace {

struct Series {
  std::string name;
  std::vector<double> values;
  std::string target;
};

double NowUnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "herd-bench-agents: %s\n", what.c_str());
  std::exit(1);
}

json RunJson(std::vector<std::string> args) {
  args.push_back("--json");
  CommandResult result = RunHerd(args);
  json output = result.Json();
  if (result.exit_code != 0 || output.is_discarded()) Fail(result.Describe());
  return output;
}

std::vector<std::string> DeployArgs(const std::string& task, const std::vector<std::string>& argv) {
  return CommandDeployArgs(task, "bench", argv);
}

void PrintTable(const std::vector<Series>& series) {
  std::printf("%-44s %5s %9s %9s %9s  %s\n", "measurement", "runs", "p50 ms", "p90 ms", "max ms",
              "target");
  for (const Series& s : series) {
    std::printf("%-44s %5zu %9.2f %9.2f %9.2f  %s\n", s.name.c_str(), s.values.size(),
                Percentile(s.values, 50), Percentile(s.values, 90), Percentile(s.values, 100),
                s.target.c_str());
  }
}

// A private workspace and state directory, herd's default limits and lock
// timeout; returns the workspace.
std::string PrepareEnvironment(const TempDir& root, ScopedEnvironment* environment) {
  std::string workspace = root.path() + "/workspace";
  environment->Set("CLAUDE_ORCHESTRATOR_WORKSPACE", workspace);
  environment->Set("XDG_STATE_HOME", root.Subdirectory("state"));
  for (const char* name :
       {"CLAUDE_ORCHESTRATOR_MAX_AGENTS", "CLAUDE_ORCHESTRATOR_MAX_CONCURRENT",
        "CLAUDE_ORCHESTRATOR_MAX_DEPTH", "HERD_MAX_RUNNING_AGENTS", "HERD_LOCK_TIMEOUT_MS"}) {
    environment->Unset(name);
  }
  return workspace;
}

int Main(int runs) {
  TempDir root("herd-bench-agents");
  ScopedEnvironment environment;
  std::string workspace = PrepareEnvironment(root, &environment);
  std::string count = std::to_string(runs + 1);
  std::string task = RunJson({"task", "create", "agents benchmark", "--max-concurrent", count,
                              "--max-agents", std::to_string(3 * runs + 3)})
                         .at("task_id");
  std::string registry_path = workspace + "/" + task + "/AGENT_REGISTRY.json";

  // (a) deploys of long sleepers (one warm-up first, not counted).
  Series deploy_wall{"deploy: `herd deploy` wall time", {}, ""};
  Series deploy_own{"deploy: herd process lifetime (herd's own)", {}, "< 50 ms"};
  Series deploy_cpu{"deploy: herd CPU time (user+sys)", {}, ""};
  std::vector<std::string> agents;
  for (int i = 0; i <= runs; ++i) {
    CommandResult result = RunHerd(DeployArgs(task, {"sleep", "300"}));
    if (result.exit_code != 0) Fail(result.Describe());
    agents.push_back(result.Json().at("agent_id"));
    if (i == 0) continue;
    deploy_wall.values.push_back(result.wall_ms);
    deploy_own.values.push_back(result.lifetime_ms);
    deploy_cpu.values.push_back(result.cpu_ms);
  }

  // (b) kills of cooperative agents.
  Series kill_wall{"kill: `herd kill` wall time (cooperative)", {}, "< 100 ms"};
  Series kill_inner{"kill: signal to all exited (herd's figure)", {}, ""};
  for (const std::string& agent : agents) {
    CommandResult result = RunHerd({"kill", task, agent, "--grace", "5", "--json"});
    json output = result.Json();
    if (result.exit_code != 0 || output.is_discarded()) Fail(result.Describe());
    if (agent == agents.front()) continue;  // the warm-up agent
    kill_wall.values.push_back(result.wall_ms);
    kill_inner.values.push_back(output["cleanup"].value("elapsed_ms", 0.0));
  }

  // (c) exit recording, with no other herd process running.
  Series exit_record{"exit: agent exit -> ended_at recorded", {}, "< 100 ms"};
  Series exit_visible{"exit: agent exit -> visible in the registry", {}, "< 100 ms"};
  std::string stamps = root.Subdirectory("stamps");
  for (int i = 0; i < runs; ++i) {
    std::string stamp = stamps + "/" + std::to_string(i);
    CommandResult result =
        RunHerd(DeployArgs(task, {"sh", "-c", "date +%s.%N > \"$0\"; exit 0", stamp}));
    if (result.exit_code != 0) Fail(result.Describe());
    std::string agent = result.Json().at("agent_id");
    // Woken by inotify when the registry is replaced; the moment it shows
    // the exit is when any reader could see it.
    json task_document = WaitForJson(registry_path, [&](const json& document) {
      return AgentIn(document, agent).value("status", "") == "completed";
    });
    double visible = NowUnixSeconds();
    json entry = AgentIn(task_document, agent);
    double ended = ParseIso8601(entry.value("ended_at", "")).value_or(-1);
    if (entry.value("status", "") != "completed" || ended < 0)
      Fail("not recorded: " + entry.dump());
    double exited = std::stod(ReadFile(stamp));
    exit_record.values.push_back((ended - exited) * 1000);
    exit_visible.values.push_back((visible - exited) * 1000);
    if (!WaitForExit(SupervisorOf(entry))) Fail("the supervisor of " + agent + " did not exit");
  }

  if (int left = KillAgentsUnder(root.path()); left > 0) {
    std::fprintf(stderr, "herd-bench-agents: %d process(es) were left running\n", left);
  }

  std::vector<Series> all = {deploy_wall, deploy_own,  deploy_cpu,  kill_wall,
                             kill_inner,  exit_record, exit_visible};
  PrintTable(all);
  std::printf(
      "agents: deploy_p50_ms=%.2f deploy_p90_ms=%.2f deploy_max_ms=%.2f deploy_own_p50_ms=%.2f "
      "deploy_own_p90_ms=%.2f kill_p50_ms=%.2f kill_p90_ms=%.2f kill_max_ms=%.2f "
      "exit_record_p50_ms=%.2f exit_record_p90_ms=%.2f exit_record_max_ms=%.2f "
      "exit_visible_p50_ms=%.2f exit_visible_p90_ms=%.2f runs=%d\n",
      Percentile(deploy_wall.values, 50), Percentile(deploy_wall.values, 90),
      Percentile(deploy_wall.values, 100), Percentile(deploy_own.values, 50),
      Percentile(deploy_own.values, 90), Percentile(kill_wall.values, 50),
      Percentile(kill_wall.values, 90), Percentile(kill_wall.values, 100),
      Percentile(exit_record.values, 50), Percentile(exit_record.values, 90),
      Percentile(exit_record.values, 100), Percentile(exit_visible.values, 50),
      Percentile(exit_visible.values, 90), runs);
  return 0;
}

// ---- (d) stopping a task ------------------------------------------------------

struct StopMeasurement {
  std::string how;
  int agents = 0;
  double wall_ms = 0;    // the command(s), spawn to reaped
  double herd_ms = -1;   // herd's own elapsed_ms (stop_task only)
  int failed = 0;        // failed commands, or agents the stop reported failed
  int left_running = 0;  // agent processes alive once the command(s) returned
  // stop_task only: until every supervisor had recorded its agent's exit
  // and exited, and how many of them met the lock timeout on the way
  // (they retry; the status was final already).
  double exits_recorded_ms = -1;
  int exit_lock_timeouts = -1;
};

// A task of `agents` agents running `sleep 600`; returns its id, and the
// agents' ids and processes.
std::string SleepingTask(int agents, std::vector<std::string>* ids,
                         std::vector<Identity>* processes, const std::string& workspace,
                         std::vector<Identity>* supervisors = nullptr) {
  std::string count = std::to_string(agents);
  std::string task = RunJson({"task", "create", "stop benchmark", "--max-concurrent", count,
                              "--max-agents", count})
                         .at("task_id");
  *ids = DeployCommandAgents(task, agents, {"sleep", "600"});
  json document = ReadJsonFile(workspace + "/" + task + "/AGENT_REGISTRY.json");
  for (const json& entry : document["agents"]) {
    processes->push_back(AgentProcessOf(entry));
    if (supervisors != nullptr) supervisors->push_back(SupervisorOf(entry));
  }
  return task;
}

int StillRunning(const std::vector<Identity>& processes) {
  return static_cast<int>(std::count_if(processes.begin(), processes.end(), IsRunning));
}

StopMeasurement MeasureStopTask(int agents, const std::string& workspace) {
  std::vector<std::string> ids;
  std::vector<Identity> processes, supervisors;
  std::string task = SleepingTask(agents, &ids, &processes, workspace, &supervisors);
  RunOptions patient;
  patient.timeout = std::chrono::minutes(10);
  auto start = Clock::now();
  CommandResult result = RunHerd({"kill", task, "--all", "--grace", "5", "--json"}, patient);
  json reply = result.Json();
  if (result.exit_code != 0 || reply.is_discarded()) Fail(result.Describe());
  StopMeasurement figures{"stop_task (`herd kill --all`)",
                          agents,
                          result.wall_ms,
                          reply.value("elapsed_ms", -1.0),
                          reply.value("failed", -1),
                          StillRunning(processes)};
  if (!WaitForExit(supervisors, DeadlineIn(std::chrono::minutes(10)))) {
    Fail("supervisors of " + task + " still run 10 minutes after the stop");
  }
  figures.exits_recorded_ms = MillisecondsBetween(start, Clock::now());
  figures.exit_lock_timeouts = 0;
  for (const std::string& id : ids) {
    std::string log = ReadFile(workspace + "/" + task + "/logs/" + id + "_supervisor.log");
    figures.exit_lock_timeouts +=
        log.find("could not record the agent's exit") != std::string::npos;
  }
  return figures;
}

StopMeasurement MeasureConcurrentKills(int agents, const std::string& workspace) {
  std::vector<std::string> ids;
  std::vector<Identity> processes;
  std::string task = SleepingTask(agents, &ids, &processes, workspace);
  RunOptions patient;
  patient.timeout = std::chrono::minutes(10);
  auto start = Clock::now();
  std::vector<std::unique_ptr<HerdProcess>> kills;
  for (const std::string& id : ids) {
    kills.push_back(std::make_unique<HerdProcess>(
        std::vector<std::string>{"kill", task, id, "--grace", "5", "--json"}, patient));
  }
  StopMeasurement figures{"concurrent single `herd kill`s", agents};
  for (std::unique_ptr<HerdProcess>& kill : kills) figures.failed += kill->Wait().exit_code != 0;
  figures.wall_ms = MillisecondsBetween(start, Clock::now());
  figures.left_running = StillRunning(processes);
  // What the kills left: stopped for the next measurement.
  RunHerd({"kill", task, "--all", "--grace", "1"}, patient);
  return figures;
}

int StopMain(const std::vector<int>& sizes) {
  TempDir root("herd-bench-stop");
  ScopedEnvironment environment;
  std::string workspace = PrepareEnvironment(root, &environment);
  std::vector<StopMeasurement> all;
  for (int agents : sizes) all.push_back(MeasureStopTask(agents, workspace));
  all.push_back(MeasureConcurrentKills(*std::max_element(sizes.begin(), sizes.end()), workspace));
  if (int left = KillAgentsUnder(root.path()); left > 0) {
    std::fprintf(stderr, "herd-bench-agents: %d process(es) were left running\n", left);
  }
  std::printf("%-32s %6s %9s %9s %6s %12s %14s %13s\n", "stopping a task", "agents", "wall ms",
              "herd ms", "failed", "left running", "exits rec. ms", "exit timeouts");
  std::string line = "stop:";
  for (const StopMeasurement& f : all) {
    std::printf("%-32s %6d %9.0f %9.0f %6d %12d %14.0f %13d\n", f.how.c_str(), f.agents, f.wall_ms,
                f.herd_ms, f.failed, f.left_running, f.exits_recorded_ms, f.exit_lock_timeouts);
    std::string key = (f.herd_ms >= 0 ? "stop_task_" : "single_kills_") + std::to_string(f.agents);
    char figures[200];
    std::snprintf(figures, sizeof figures, " %s_wall_ms=%.0f %s_failed=%d %s_left=%d", key.c_str(),
                  f.wall_ms, key.c_str(), f.failed, key.c_str(), f.left_running);
    line += figures;
  }
  std::printf("%s\n", line.c_str());
  return 0;
}

}  // namespace
}  // namespace herd::test_util

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--stop-task") {
    std::vector<int> sizes;
    for (int i = 2; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
    if (sizes.empty()) sizes = {100, 400};
    if (std::any_of(sizes.begin(), sizes.end(), [](int n) { return n < 1; })) {
      std::fprintf(stderr, "usage: herd-bench-agents --stop-task [AGENTS...]\n");
      return 2;
    }
    return herd::test_util::StopMain(sizes);
  }
  int runs = argc > 1 ? std::atoi(argv[1]) : 30;
  if (runs < 1) {
    std::fprintf(stderr, "usage: herd-bench-agents [RUNS] | --stop-task [AGENTS...]\n");
    return 2;
  }
  return herd::test_util::Main(runs);
}
