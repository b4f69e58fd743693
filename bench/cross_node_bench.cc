// herd-bench-cross-node: what running agents on another node costs a
// deploy and a kill, beside the same operations on the deploying machine,
// in one run against one PostgreSQL server.
//
// Everything goes through the real herd binary, as a person's terminal
// would: `herd deploy` (a command agent, `sleep 600`) timed until it
// returns, which is when the agent's supervisor has recorded its start,
// and `herd kill` timed until it returns, which is when the agent's exit
// is recorded (for a placed agent: by its node, woken by the kill's
// commit). Two passes over M agents each, on fresh tasks:
//   same machine   no node registered: the deploying herd starts the
//                  supervisor itself, and the kill stops it itself;
//   other node     two `herd node run` daemons (each its own state
//                  directory and workspace, as two machines), the client a
//                  third; deploys ask for node-b (--node), kills come from
//                  the client.
// Checked, not assumed: every deploy succeeded and every placed agent is
// on node-b; after each kill no process carries the agent's id.
//
// Usage: herd-bench-cross-node [--agents M] [--postgres URL] (default 20;
// without --postgres a throwaway server is started with
// scripts/test-postgres.sh and stopped at the end). fsync stays on.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "throwaway_postgres.h"
#include "util/clock.h"
#include "util/random.h"

extern char** environ;

namespace herd {
namespace {

using nlohmann::json;

struct Options {
  int agents = 20;
  std::string postgres;
};

std::string g_scratch;

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "herd-bench-cross-node: %s\n", message.c_str());
  std::exit(1);
}

// One "machine": its own workspace and state directory, the shared registry.
std::vector<std::string> MachineEnvironment(const std::string& name, const std::string& registry) {
  std::string home = g_scratch + "/machine-" + name;
  std::vector<std::string> environment;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    std::string entry = *variable;
    for (const char* dropped : {"HERD_REGISTRY=", "CLAUDE_ORCHESTRATOR_WORKSPACE=",
                                "XDG_STATE_HOME=", "HERD_MAX_RUNNING_AGENTS="}) {
      if (entry.rfind(dropped, 0) == 0) entry.clear();
    }
    if (!entry.empty()) environment.push_back(entry);
  }
  environment.push_back("HERD_REGISTRY=" + registry);
  environment.push_back("CLAUDE_ORCHESTRATOR_WORKSPACE=" + home + "/workspace");
  environment.push_back("XDG_STATE_HOME=" + home + "/state");
  return environment;
}

struct Spawned {
  pid_t pid = -1;
  int out = -1;  // its stdout
};

Spawned Spawn(const std::vector<std::string>& args, std::vector<std::string> environment) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) Fail("cannot create a pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> argv_strings = {HERD_BINARY};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv, envp;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  for (std::string& variable : environment) envp.push_back(variable.data());
  envp.push_back(nullptr);
  Spawned spawned;
  int failed = posix_spawn(&spawned.pid, HERD_BINARY, &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (failed != 0) Fail(std::string("cannot start ") + HERD_BINARY);
  spawned.out = pipe_fds[0];
  return spawned;
}

// Reads `fd` until EOF (or, if `until` is given, until the text holds it).
std::string ReadOutput(int fd, const std::string& until = "") {
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    text.append(buffer, static_cast<size_t>(got));
    if (!until.empty() && text.find(until) != std::string::npos) break;
  }
  return text;
}

// Runs `herd args... --json` to its end; returns its JSON and its wall time.
json Herd(const std::vector<std::string>& args, const std::vector<std::string>& environment,
          double* wall_ms = nullptr) {
  std::vector<std::string> with_json = args;
  auto start = MonotonicClock::now();
  Spawned spawned = Spawn(with_json, environment);
  std::string out = ReadOutput(spawned.out);
  close(spawned.out);
  int status = 0;
  while (waitpid(spawned.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (wall_ms != nullptr) *wall_ms = MillisecondsSince(start);
  json reply = json::parse(out, nullptr, false);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || reply.is_discarded() ||
      !reply.value("success", false)) {
    std::string joined;
    for (const std::string& arg : args) joined += " " + arg;
    Fail("`herd" + joined + "` failed: " + out);
  }
  return reply;
}

// Whether any process carries HERD_AGENT_ID=`agent_id`.
bool AgentProcessesLeft(const std::string& agent_id) {
  std::string wanted = "HERD_AGENT_ID=" + agent_id;
  DIR* proc = opendir("/proc");
  bool found = false;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream environ_file(std::string("/proc/") + entry->d_name + "/environ");
    std::string variable;
    while (std::getline(environ_file, variable, '\0')) {
      if (variable == wanted) found = true;
    }
    std::ifstream stat_file(std::string("/proc/") + entry->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    size_t paren = stat.rfind(')');
    if (found && paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') {
      found = false;  // a zombie awaiting its reaper runs nothing
    }
    if (found) break;
  }
  closedir(proc);
  return found;
}

double Percentile(std::vector<double> values, double percent) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(percent / 100.0 * (values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

struct Pass {
  std::vector<double> deploy_ms;
  std::vector<double> kill_ms;
};

// Deploys `agents` agents from the client (on `node`, if given), then kills
// each from the client, timing both.
Pass RunPass(const std::string& registry, int agents, const std::string& node) {
  std::vector<std::string> client = MachineEnvironment("client", registry);
  std::string task_id = Herd({"task", "create", "cross-node bench", "--max-concurrent", "1000",
                              "--max-agents", "100000", "--json"},
                             client)
                            .at("task_id")
                            .get<std::string>();
  Pass pass;
  std::vector<std::string> ids;
  for (int i = 0; i < agents; ++i) {
    std::vector<std::string> args = {"deploy", task_id, "--type", "bench", "--json"};
    if (!node.empty()) args.insert(args.end(), {"--node", node});
    args.insert(args.end(), {"--backend", "command", "--", "sleep", "600"});
    double ms = 0;
    json deployed = Herd(args, client, &ms);
    pass.deploy_ms.push_back(ms);
    ids.push_back(deployed.at("agent_id").get<std::string>());
  }
  json status = Herd({"status", task_id, "--json"}, client);
  for (const json& agent : status["agents"]["agents_list"]) {
    std::string placed = agent.contains("node") ? agent["node"].value("name", "") : "";
    if (placed != node) Fail("agent " + agent.value("id", "") + " is on '" + placed + "'");
  }
  for (const std::string& id : ids) {
    double ms = 0;
    json killed = Herd({"kill", task_id, id, "--json"}, client, &ms);
    if (!node.empty() && !killed["cleanup"].value("stopped_by_node", false)) {
      Fail("node " + node + " did not confirm the kill of " + id + ": " + killed.dump());
    }
    if (AgentProcessesLeft(id)) Fail("agent " + id + " still has processes after its kill");
    pass.kill_ms.push_back(ms);
  }
  return pass;
}

void PrintRow(const char* operation, const char* where, const std::vector<double>& samples) {
  std::printf("%-18s %-13s %4zu %9.1f %9.1f %9.1f\n", operation, where, samples.size(),
              Percentile(samples, 50), Percentile(samples, 99),
              *std::max_element(samples.begin(), samples.end()));
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--agents" && std::atoi(value.c_str()) > 0) {
      options.agents = std::atoi(value.c_str());
      ++i;
    } else if (arg == "--postgres" && !value.empty()) {
      options.postgres = value;
      ++i;
    } else {
      Fail("usage: herd-bench-cross-node [--agents M] [--postgres URL]");
    }
  }
  char scratch[] = "/tmp/herd-bench-cross-node-XXXXXX";
  if (mkdtemp(scratch) == nullptr) Fail("cannot make a scratch directory");
  g_scratch = scratch;
  if (options.postgres.empty()) {
    options.postgres = bench::StartThrowawayPostgres();
    if (options.postgres.empty()) Fail("no PostgreSQL server");
  }

  // Same machine first: no node is registered yet.
  Pass local = RunPass(options.postgres, options.agents, "");

  std::vector<Spawned> nodes;
  for (const char* name : {"node-a", "node-b"}) {
    Spawned node = Spawn({"node", "run", "--name", name, "--capacity", "1000"},
                         MachineEnvironment(name, options.postgres));
    std::string up = ReadOutput(node.out, "up: incarnation");
    if (up.find("up: incarnation") == std::string::npos) Fail(std::string(name) + " did not start");
    nodes.push_back(node);
  }
  Pass placed = RunPass(options.postgres, options.agents, "node-b");
  for (const Spawned& node : nodes) {
    kill(node.pid, SIGTERM);
    ReadOutput(node.out);
    close(node.out);
    waitpid(node.pid, nullptr, 0);
  }

  std::printf("herd-bench-cross-node: %d agents per pass, the real herd binary, PostgreSQL at %s\n",
              options.agents, options.postgres.c_str());
  std::printf("%-18s %-13s %4s %9s %9s %9s\n", "operation", "where", "n", "p50 ms", "p99 ms",
              "max ms");
  PrintRow("deploy -> started", "same machine", local.deploy_ms);
  PrintRow("deploy -> started", "other node", placed.deploy_ms);
  PrintRow("kill -> confirmed", "same machine", local.kill_ms);
  PrintRow("kill -> confirmed", "other node", placed.kill_ms);
  std::string remove = "rm -rf " + g_scratch + "/machine-*";
  if (std::system(remove.c_str()) != 0) std::fprintf(stderr, "could not clean %s\n", scratch);
  return 0;
}

}  // namespace
}  // namespace herd

int main(int argc, char** argv) {
  return herd::Main(argc, argv);
}
