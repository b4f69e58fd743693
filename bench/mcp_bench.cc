// herd-bench-mcp: how fast and small `herd serve` is, measured against the
// real binary over pipes.
//
//   start     spawn `herd serve` -> initialize response received (p50/max)
//   memory    VmRSS of the server right after initialize
//   status    tools/call get_real_task_status on a task with 200 agents and
//             10,000 progress lines (p50/p99) with every field of every agent
//             (response_format "full") and in the default format (agent
//             summaries at that size), and on a task with 200 running agents
//             (real `sleep` processes under their supervisors)
//   tail      tools/call get_agent_output tail=100 on a 1 GB log (p50/p99)
//   wait      tools/call wait_for_agents on 3 agents (sleep 0.2, 0.4, 0.6 s),
//             30 runs: from the last agent's exit to the reply's last byte
//             (p50/p99), the exit taken two ways: the exit its supervisor
//             recorded (ended_at), and the agent's own last act (it prints
//             the time, then exits)
//   calls     a 5-agent task (agents of 2, 4, 6, 8 and 10 s) followed by two
//             orchestrators at once, each through its own `herd serve`: one
//             calls wait_for_agents until it reports the condition met, the
//             other get_real_task_status every 5 s until no agent is active;
//             the calls each needed, and what polling would cost for the
//             measured run time T (ceil(T / 5 s) calls; waiting ceil(T / 50 s))
//
// --wait runs only the last two.
//
// A call's latency runs from writing the request to reading the reply's
// last byte; the benchmark's own parse of the reply is reported beside it.
//
// `--binary PATH` measures another herd build (a baseline) with the same
// data and the same client: run it once per build, one after the other.
//
// Targets (issue 4): start < 20 ms, < 15 MB resident, status p50 < 5 ms,
// 1 GB tail < 10 ms, exit to wait reply < 100 ms. The last two lines are
// machine-readable summaries.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/task_store.h"
#include "registry/workspace.h"
#include "util/clock.h"
#include "util/text_file.h"

extern char** environ;

namespace {

using herd::MonotonicClock;
using nlohmann::json;

// The herd binary measured: this build's unless --binary names another.
std::string herd_binary = HERD_BINARY;

struct ServerProcess {
  pid_t pid = -1;
  int to_server = -1;
  int from_server = -1;
  std::string buffered;

  void Start(const std::string& workspace) {
    int input[2], output[2];
    if (pipe2(input, O_CLOEXEC) != 0 || pipe2(output, O_CLOEXEC) != 0) std::exit(1);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, input[0], 0);
    posix_spawn_file_actions_adddup2(&actions, output[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    std::vector<std::string> args = {herd_binary, "serve", "--workspace", workspace};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid, herd_binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
      std::exit(1);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(input[0]);
    close(output[1]);
    to_server = input[1];
    from_server = output[0];
  }

  void Send(const json& message) {
    std::string line = message.dump() + "\n";
    if (write(to_server, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
      std::exit(1);
  }

  // Reads lines until the response with `id` (skipping notifications).
  // `received`, if given, is when that response's last byte arrived: the
  // latency a client sees, before it spends its own time parsing.
  json Receive(int id, MonotonicClock::time_point* received = nullptr) {
    for (;;) {
      size_t newline;
      while ((newline = buffered.find('\n')) == std::string::npos) {
        char chunk[1 << 16];
        ssize_t got = read(from_server, chunk, sizeof chunk);
        if (got <= 0) {
          std::fprintf(stderr, "server closed its output\n");
          std::exit(1);
        }
        buffered.append(chunk, static_cast<size_t>(got));
      }
      if (received != nullptr) *received = MonotonicClock::now();
      json message = json::parse(buffered.substr(0, newline));
      buffered.erase(0, newline + 1);
      if (message.value("id", -1) == id) return message;
    }
  }

  json Call(int id, const std::string& tool, const json& arguments,
            MonotonicClock::time_point* received = nullptr) {
    Send({{"jsonrpc", "2.0"},
          {"id", id},
          {"method", "tools/call"},
          {"params", {{"name", tool}, {"arguments", arguments}}}});
    return Receive(id, received);
  }

  void Stop() {
    close(to_server);
    close(from_server);
    waitpid(pid, nullptr, 0);
  }
};

json InitializeRequest() {
  return {{"jsonrpc", "2.0"},
          {"id", 0},
          {"method", "initialize"},
          {"params",
           {{"protocolVersion", "2025-11-25"},
            {"capabilities", json::object()},
            {"clientInfo", {{"name", "bench"}, {"version", "0"}}}}}};
}

long ResidentKilobytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

double Percentile(std::vector<double> values, double fraction) {
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// A task with `agents` finished agents and `lines` progress lines in all.
std::string BuildLargeTask(const herd::registry::Workspace& workspace, int agents, int lines) {
  herd::registry::RegistryStores stores;
  std::string task_id = "TASK-20260101-000000-bench000";
  if (!workspace.CreateTaskDirectories(task_id).ok()) std::exit(1);
  herd::registry::TaskSpec spec;
  spec.description = "benchmark task";
  spec.limits.max_agents = agents + 1;
  spec.limits.max_concurrent = agents + 1;
  herd::Status created = herd::registry::UpdateTaskRecord(
      stores.tasks, workspace.TaskRegistryPath(task_id),
      [&](herd::registry::TaskRecord& task) -> herd::Result<herd::store::Decision> {
        task = herd::registry::NewTask(task_id, spec, workspace.base());
        for (int i = 0; i < agents; ++i) {
          herd::registry::AdmissionRequest request;
          request.agent_id = "worker-000000-" + std::to_string(100000 + i);
          request.type = "worker";
          request.prompt = std::string(300, 'p');
          request.backend = "command";
          auto admitted = herd::registry::AdmitAgent(task, request);
          if (!admitted.ok()) return admitted.status();
          herd::registry::ExitRecord exit;
          exit.exit_code = 0;
          exit.ended_at = herd::NowIso8601();
          herd::registry::RecordExit(task, request.agent_id, exit);
        }
        return herd::store::Decision::kCommit;
      });
  if (!created.ok()) {
    std::fprintf(stderr, "%s\n", created.ToString().c_str());
    std::exit(1);
  }
  for (int i = 0; i < agents; ++i) {
    std::string agent_id = "worker-000000-" + std::to_string(100000 + i);
    std::string path = workspace.ProgressPath(task_id, agent_id);
    std::ofstream file(path);
    for (int line = 0; line < lines / agents; ++line) {
      file << json{{"timestamp", herd::NowIso8601()},
                   {"agent_id", agent_id},
                   {"status", "working"},
                   {"message", "step " + std::to_string(line) + " of the benchmark work"},
                   {"progress", line % 100}}
                  .dump()
           << "\n";
    }
  }
  return task_id;
}

// Appends an agent with a `bytes`-long stream log to the task.
std::string BuildHugeLog(const herd::registry::Workspace& workspace, const std::string& task_id,
                         long long bytes) {
  std::string agent_id = "worker-000000-100000";
  std::string path = workspace.StreamLogPath(task_id, agent_id);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  std::string block;
  for (int i = 0; block.size() < (1 << 20); ++i) {
    block += json{{"type", "assistant"}, {"n", i}, {"text", std::string(150, 'x')}}.dump() + "\n";
  }
  long long written = 0;
  while (written < bytes) {
    if (write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) std::exit(1);
    written += static_cast<long long>(block.size());
  }
  close(fd);
  return agent_id;
}

// Runs `herd ARGS` (workspace and state from the environment) and returns
// its stdout; exits the benchmark if herd fails.
std::string RunHerd(const std::vector<std::string>& args) {
  int output[2];
  if (pipe2(output, O_CLOEXEC) != 0) std::exit(1);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, output[1], 1);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<std::string> argv_strings = {herd_binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawn(&pid, herd_binary.c_str(), &actions, nullptr, argv.data(), environ) != 0) {
    std::exit(1);
  }
  posix_spawn_file_actions_destroy(&actions);
  close(output[1]);
  std::string text;
  char chunk[4096];
  for (ssize_t got; (got = read(output[0], chunk, sizeof chunk)) > 0;) {
    text.append(chunk, static_cast<size_t>(got));
  }
  close(output[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "herd %s failed: %s\n", args[0].c_str(), text.c_str());
    std::exit(1);
  }
  return text;
}

struct StatusFigures {
  std::vector<double> latency_ms;  // request sent -> last byte of the reply
  std::vector<double> parse_ms;    // the benchmark's own parse of the reply
  size_t reply_bytes = 0;
  json last;
};

// Calls get_real_task_status `calls` times on a fresh server, asking for
// the given response_format.
StatusFigures MeasureStatus(const std::string& workspace, const std::string& task_id, int calls,
                            const std::string& format) {
  ServerProcess server;
  server.Start(workspace);
  server.Send(InitializeRequest());
  server.Receive(0);
  StatusFigures figures;
  for (int i = 1; i <= calls; ++i) {
    auto start = MonotonicClock::now();
    MonotonicClock::time_point received;
    json response = server.Call(i, "get_real_task_status",
                                {{"task_id", task_id}, {"response_format", format}}, &received);
    figures.latency_ms.push_back(herd::MillisecondsBetween(start, received));
    figures.parse_ms.push_back(herd::MillisecondsSince(received));
    if (response["result"].value("isError", true)) {
      std::fprintf(stderr, "status failed: %s\n", response.dump().c_str());
      std::exit(1);
    }
    figures.reply_bytes = response.dump().size();
    figures.last = std::move(response["result"]["structuredContent"]);
  }
  server.Stop();
  return figures;
}

// A tool call's result, or the benchmark exits with the reply.
json Structured(const json& reply) {
  const json* result = reply.contains("result") ? &reply["result"] : nullptr;
  if (result == nullptr || !result->contains("structuredContent") ||
      result->value("isError", false)) {
    std::fprintf(stderr, "unexpected reply: %s\n", reply.dump().substr(0, 2000).c_str());
    std::exit(1);
  }
  return (*result)["structuredContent"];
}

// Deploys a command agent through `server`; returns its id.
std::string DeployCommand(ServerProcess& server, int id, const std::string& task_id,
                          const std::vector<std::string>& command) {
  json reply = server.Call(id, "deploy_headless_agent",
                           {{"task_id", task_id},
                            {"agent_type", "bench"},
                            {"prompt", "p"},
                            {"backend", "command"},
                            {"command", command}});
  if (reply["result"].value("isError", true)) {
    std::fprintf(stderr, "deploy failed: %s\n", reply.dump().c_str());
    std::exit(1);
  }
  return reply["result"]["structuredContent"]["agent_id"];
}

std::string NewTask(ServerProcess& server, int id, const std::string& description) {
  return Structured(server.Call(id, "create_real_task", {{"description", description}}))["task_id"];
}

struct WaitFigures {
  std::vector<double> from_recorded_exit_ms;  // ended_at -> reply
  std::vector<double> from_last_output_ms;    // the agent's printed time -> reply
};

// The agent's last stdout line: the time it printed just before exiting.
double PrintedTime(const herd::registry::Workspace& workspace, const std::string& task_id,
                   const std::string& agent_id) {
  std::ifstream log(workspace.StreamLogPath(task_id, agent_id));
  std::string line, last;
  while (std::getline(log, line)) {
    if (!line.empty()) last = line;
  }
  return std::strtod(last.c_str(), nullptr);
}

// `runs` waits for 3 agents each, on one server.
WaitFigures MeasureWait(const herd::registry::Workspace& workspace, int runs) {
  ServerProcess server;
  server.Start(workspace.base());
  server.Send(InitializeRequest());
  server.Receive(0);
  WaitFigures figures;
  int id = 1;
  for (int run = 0; run < runs; ++run) {
    std::string task_id = NewTask(server, id++, "wait benchmark");
    std::vector<std::string> agents;
    for (const char* seconds : {"0.2", "0.4", "0.6"}) {
      agents.push_back(DeployCommand(
          server, id++, task_id, {"sh", "-c", std::string("sleep ") + seconds + "; date +%s.%N"}));
    }
    MonotonicClock::time_point received;
    json reply = server.Call(id++, "wait_for_agents", {{"task_id", task_id}, {"agent_ids", agents}},
                             &received);
    double reply_wall = herd::NowUnixSeconds() - herd::MillisecondsSince(received) / 1000;
    json result = Structured(reply);
    if (!result.value("condition_met", false)) {
      std::fprintf(stderr, "wait failed: %s\n", reply.dump().c_str());
      std::exit(1);
    }
    double recorded = 0, printed = 0;
    for (const json& agent : result["agents"]) {
      recorded = std::max(recorded, herd::ParseIso8601(agent.value("ended_at", "")).value_or(0));
      printed = std::max(printed, PrintedTime(workspace, task_id, agent["agent_id"]));
    }
    figures.from_recorded_exit_ms.push_back((reply_wall - recorded) * 1000);
    figures.from_last_output_ms.push_back((reply_wall - printed) * 1000);
  }
  server.Stop();
  return figures;
}

struct CallCounts {
  int wait_calls = 0;
  int poll_calls = 0;
  double run_seconds = 0;  // first deploy -> last recorded exit
};

// One orchestrator waits, the other polls every 5 s, on the same 5 agents.
CallCounts CompareCalls(const herd::registry::Workspace& workspace) {
  ServerProcess waiter, poller;
  for (ServerProcess* server : {&waiter, &poller}) {
    server->Start(workspace.base());
    server->Send(InitializeRequest());
    server->Receive(0);
  }
  std::string task_id = NewTask(waiter, 1, "five agents, waited for and polled");
  double deployed_at = herd::NowUnixSeconds();
  for (int i = 0; i < 5; ++i) {
    DeployCommand(waiter, 2 + i, task_id, {"sleep", std::to_string(2 * (i + 1))});
  }
  CallCounts counts;
  std::thread polling([&] {
    for (int id = 100;; ++id) {
      auto asked = MonotonicClock::now();
      ++counts.poll_calls;
      json status = Structured(poller.Call(id, "get_real_task_status", {{"task_id", task_id}}));
      if (status["agents"].value("active", 1) == 0) return;
      // What an orchestrating model that polls does between calls.
      std::this_thread::sleep_until(asked + std::chrono::seconds(5));
    }
  });
  json result = json::object();
  for (int id = 10; !result.value("condition_met", false); ++id) {
    ++counts.wait_calls;
    result = Structured(waiter.Call(id, "wait_for_agents", {{"task_id", task_id}}));
  }
  polling.join();
  double last_exit = 0;
  for (const json& agent : result["agents"]) {
    last_exit = std::max(last_exit, herd::ParseIso8601(agent.value("ended_at", "")).value_or(0));
  }
  counts.run_seconds = last_exit - deployed_at;
  waiter.Stop();
  poller.Stop();
  return counts;
}

void PrintWaitFigures(const WaitFigures& wait, const CallCounts& calls) {
  double recorded_p50 = Percentile(wait.from_recorded_exit_ms, 0.5);
  double recorded_p99 = Percentile(wait.from_recorded_exit_ms, 0.99);
  double printed_p50 = Percentile(wait.from_last_output_ms, 0.5);
  double printed_p99 = Percentile(wait.from_last_output_ms, 0.99);
  std::printf("%-44s %8.2f ms %7s ms %8s\n", "last exit (recorded) -> wait reply, p50",
              recorded_p50, "100", recorded_p50 < 100 ? "PASS" : "FAIL");
  std::printf("%-44s %8.2f ms\n", "last exit (recorded) -> wait reply, p99", recorded_p99);
  std::printf("%-44s %8.2f ms\n", "agent's last act -> wait reply, p50", printed_p50);
  std::printf("%-44s %8.2f ms   (%zu runs)\n", "agent's last act -> wait reply, p99", printed_p99,
              wait.from_recorded_exit_ms.size());
  auto polls_for = [](double seconds) { return static_cast<int>(std::ceil(seconds / 5)); };
  std::printf("%-44s %8d      (polling every 5 s: %d; run time T = %.1f s)\n",
              "status calls for 5 agents with wait", calls.wait_calls, calls.poll_calls,
              calls.run_seconds);
  std::printf("%-44s %8s      (ceil(T/5 s): 10 min -> %d, 30 min -> %d; wait: ceil(T/50 s))\n",
              "  polling would need for longer tasks", "", polls_for(600), polls_for(1800));
  std::printf(
      "wait: exit_to_reply_p50_ms=%.2f exit_to_reply_p99_ms=%.2f last_act_to_reply_p50_ms=%.2f "
      "last_act_to_reply_p99_ms=%.2f wait_calls=%d poll_calls=%d run_seconds=%.1f\n",
      recorded_p50, recorded_p99, printed_p50, printed_p99, calls.wait_calls, calls.poll_calls,
      calls.run_seconds);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, keep = false, wait_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick")
      quick = true;
    else if (arg == "--keep")
      keep = true;  // leave the data for profiling
    else if (arg == "--binary" && i + 1 < argc)
      herd_binary = argv[++i];
    else if (arg == "--wait")
      wait_only = true;
    else {
      std::fprintf(stderr, "usage: herd-bench-mcp [--quick] [--keep] [--wait] [--binary HERD]\n");
      return 2;
    }
  }
  char directory_template[] = "/tmp/herd-bench-mcp.XXXXXX";
  std::string directory = mkdtemp(directory_template);
  setenv("XDG_STATE_HOME", (directory + "/state").c_str(), 1);
  herd::registry::Workspace workspace(directory + "/workspace");
  // Agents' supervisors find the workspace here.
  setenv("CLAUDE_ORCHESTRATOR_WORKSPACE", workspace.base().c_str(), 1);
  std::string cleanup = "rm -rf '" + directory + "'";

  std::printf("waiting for agents through wait_for_agents...\n");
  WaitFigures wait = MeasureWait(workspace, quick ? 5 : 30);
  std::printf("one orchestrator waits, one polls every 5 s, on a 5-agent task...\n");
  CallCounts calls = CompareCalls(workspace);
  if (wait_only) {
    PrintWaitFigures(wait, calls);
    if (!keep && std::system(cleanup.c_str()) != 0) std::fprintf(stderr, "could not clean up\n");
    return 0;
  }

  // Start-up and memory.
  std::vector<double> start_ms;
  long resident_kb = 0;
  for (int i = 0; i < (quick ? 5 : 30); ++i) {
    auto start = MonotonicClock::now();
    ServerProcess server;
    server.Start(workspace.base());
    server.Send(InitializeRequest());
    server.Receive(0);
    start_ms.push_back(herd::MillisecondsSince(start));
    resident_kb = std::max(resident_kb, ResidentKilobytes(server.pid));
    server.Stop();
  }

  // Status on a large task.
  std::printf("building a task with 200 agents and 10,000 progress lines...\n");
  std::string task_id = BuildLargeTask(workspace, 200, 10000);
  // "full": every field of every agent (316 KB), the reference's reply.
  StatusFigures ended = MeasureStatus(workspace.base(), task_id, quick ? 20 : 200, "full");
  // "auto", the default: summaries, since the full entries exceed 64 KB.
  StatusFigures summarised = MeasureStatus(workspace.base(), task_id, quick ? 20 : 200, "auto");

  // The same on a task whose 200 agents are running: every status checks
  // 400 processes (each agent and its supervisor) by pid + start time.
  std::printf("starting 200 agents (sleep) under their supervisors...\n");
  std::string live_task =
      json::parse(RunHerd({"task", "create", "running benchmark task", "--max-agents", "200",
                           "--max-concurrent", "200", "--json"}))["task_id"];
  std::vector<std::string> live_agents;
  for (int i = 0; i < 200; ++i) {
    json deployed = json::parse(RunHerd({"deploy", live_task, "--type", "sleeper", "--json",
                                         "--backend", "command", "--", "sleep", "3600"}));
    live_agents.push_back(deployed["agent_id"]);
  }
  StatusFigures running = MeasureStatus(workspace.base(), live_task, quick ? 20 : 200, "full");
  int alive = 0;
  for (const json& agent : running.last["agents"]["agents_list"]) {
    alive += agent.value("liveness", "") == "alive" ? 1 : 0;
  }
  std::printf("stopping them...\n");
  for (const std::string& agent : live_agents) {
    RunHerd({"kill", live_task, agent, "--grace", "2", "--json"});
  }
  if (alive != 200) {
    std::fprintf(stderr, "status saw %d of 200 agents alive\n", alive);
    return 1;
  }

  ServerProcess server;
  server.Start(workspace.base());
  server.Send(InitializeRequest());
  server.Receive(0);

  // Tail of a 1 GB log.
  long long log_bytes = quick ? (64LL << 20) : (1LL << 30);
  std::printf("writing a %lld MB agent log...\n", log_bytes >> 20);
  std::string agent_id = BuildHugeLog(workspace, task_id, log_bytes);
  std::vector<double> tail_ms;
  for (int i = 1000; i < 1000 + (quick ? 20 : 100); ++i) {
    auto start = MonotonicClock::now();
    MonotonicClock::time_point received;
    json response =
        server.Call(i, "get_agent_output",
                    {{"task_id", task_id}, {"agent_id", agent_id}, {"tail", 100}}, &received);
    tail_ms.push_back(herd::MillisecondsBetween(start, received));
    if (response["result"]["structuredContent"].value("lines", 0) != 100) {
      std::fprintf(stderr, "tail returned the wrong number of lines\n");
      return 1;
    }
  }
  server.Stop();
  if (keep) {
    std::printf("data kept in %s\n", directory.c_str());
  } else if (std::system(cleanup.c_str()) != 0) {
    std::fprintf(stderr, "could not remove %s\n", directory.c_str());
  }

  double start_p50 = Percentile(start_ms, 0.5);
  double status_p50 = Percentile(ended.latency_ms, 0.5);
  double status_p99 = Percentile(ended.latency_ms, 0.99);
  double running_p50 = Percentile(running.latency_ms, 0.5);
  double running_p99 = Percentile(running.latency_ms, 0.99);
  double tail_p50 = Percentile(tail_ms, 0.5), tail_p99 = Percentile(tail_ms, 0.99);
  auto verdict = [](bool pass) { return pass ? "PASS" : "FAIL"; };
  std::printf("\nherd measured: %s\n", herd_binary.c_str());
  std::printf("%-44s %10s %10s %8s\n", "measure", "value", "target", "");
  std::printf("%-44s %8.2f ms %7s ms %8s\n", "start to initialize response (p50)", start_p50, "20",
              verdict(start_p50 < 20));
  std::printf("%-44s %8.2f ms\n", "start to initialize response (max)", Percentile(start_ms, 1.0));
  std::printf("%-44s %8.1f MB %7s MB %8s\n", "resident memory after initialize",
              static_cast<double>(resident_kb) / 1024.0, "15", verdict(resident_kb < 15 * 1024));
  std::printf("%-44s %8.2f ms %7s ms %8s\n", "get_real_task_status p50 (200 agents, full)",
              status_p50, "5", verdict(status_p50 < 5));
  std::printf("%-44s %8.2f ms\n", "get_real_task_status p99", status_p99);
  std::printf("%-44s %8zu KB\n", "get_real_task_status reply size", ended.reply_bytes / 1024);
  std::printf("%-44s %8.2f ms   (the benchmark's own nlohmann parse; not in the latency)\n",
              "  client-side parse of that reply (p50)", Percentile(ended.parse_ms, 0.5));
  std::printf("%-44s %8.2f ms   (%zu KB, agents_list_format %s)\n",
              "get_real_task_status p50, default format", Percentile(summarised.latency_ms, 0.5),
              summarised.reply_bytes / 1024,
              summarised.last["agents"].value("agents_list_format", "?").c_str());
  std::printf("%-44s %8.2f ms %7s ms %8s\n", "get_real_task_status p50 (200 running)", running_p50,
              "5", verdict(running_p50 < 5));
  std::printf("%-44s %8.2f ms\n", "get_real_task_status p99 (200 running)", running_p99);
  std::printf("%-44s %8.2f ms %7s ms %8s\n",
              (std::string("get_agent_output tail=100 p50 (") + std::to_string(log_bytes >> 20) +
               " MB log)")
                  .c_str(),
              tail_p50, "10", verdict(tail_p50 < 10));
  std::printf("%-44s %8.2f ms\n", "get_agent_output tail=100 p99", tail_p99);
  PrintWaitFigures(wait, calls);
  std::printf(
      "mcp: start_p50_ms=%.2f rss_mb=%.1f status_p50_ms=%.2f status_p99_ms=%.2f "
      "running_status_p50_ms=%.2f running_status_p99_ms=%.2f "
      "tail_p50_ms=%.2f tail_p99_ms=%.2f log_mb=%lld\n",
      start_p50, static_cast<double>(resident_kb) / 1024.0, status_p50, status_p99, running_p50,
      running_p99, tail_p50, tail_p99, log_bytes >> 20);
  return 0;
}
