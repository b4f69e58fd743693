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
#define HERD_TEST_UTIL_WITHOUT_GTEST
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
  std::vector<std::string> args{"deploy", task,        "--type",  "bench",
                                "--json", "--backend", "command", "--"};
  args.insert(args.end(), argv.begin(), argv.end());
  return args;
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

int Main(int runs) {
  TempDir root("herd-bench-agents");
  ScopedEnvironment environment;
  std::string workspace = root.path() + "/workspace";
  environment.Set("CLAUDE_ORCHESTRATOR_WORKSPACE", workspace);
  environment.Set("XDG_STATE_HOME", root.Subdirectory("state"));
  for (const char* name : {"CLAUDE_ORCHESTRATOR_MAX_AGENTS", "CLAUDE_ORCHESTRATOR_MAX_CONCURRENT",
                           "CLAUDE_ORCHESTRATOR_MAX_DEPTH", "HERD_MAX_RUNNING_AGENTS"}) {
    environment.Unset(name);
  }
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

}  // namespace
}  // namespace herd::test_util

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 30;
  if (runs < 1) {
    std::fprintf(stderr, "usage: herd-bench-agents [RUNS]\n");
    return 2;
  }
  return herd::test_util::Main(runs);
}
