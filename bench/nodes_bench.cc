// herd-bench-nodes: what placing agents on nodes costs an admission in the
// PostgreSQL registry, beside the admissions it builds on, in one run.
//
// N writer processes (each its own PgRegistry, as N machines would have)
// admit M agents each into one task, three ways, each on a fresh task:
//   task row   Admit with no cluster-wide limit: the task's row lock only;
//   + cap      Admit under HERD_MAX_RUNNING_AGENTS: the cluster row first,
//              then the task's row (the baseline placement builds on);
//   placed     Admit placed on the least loaded of 3 registered nodes:
//              the cluster row, the nodes read, the choice, the task's row.
// Each admission's latency is measured around the Admit call (commit
// included), and the run's admissions per second over its wall time.
// Checked, not assumed: every admission committed exactly once (N*M agents
// in the task, none refused), and the placed agents are spread over the
// nodes evenly (at most one apart).
//
// Usage: herd-bench-nodes [--procs LIST] [--admissions M] [--postgres URL]
// (default 1,4,16 and 50; without --postgres a throwaway server is started
// with scripts/test-postgres.sh and stopped at the end). fsync stays on.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "registry/ids.h"
#include "registry/pg_registry.h"
#include "throwaway_postgres.h"
#include "util/clock.h"
#include "util/random.h"

namespace herd {
namespace {

using registry::AdmissionRequest;
using registry::PgRegistry;

struct Options {
  std::vector<int> procs = {1, 4, 16};
  int admissions = 50;
  std::string postgres;
};

enum class Mode { kTaskRow, kClusterCap, kPlaced };
const char* NameOf(Mode mode) {
  return mode == Mode::kTaskRow ? "task row" : mode == Mode::kClusterCap ? "+ cap" : "placed";
}

struct Run {
  std::vector<double> latencies_ms;
  double seconds = 0;
  int failed = 0;     // processes that reported an error
  int committed = 0;  // agents in the task afterwards
  int spread = 0;     // most minus fewest agents on a node (placed only)
  double per_second() const { return seconds > 0 ? latencies_ms.size() / seconds : 0; }
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "herd-bench-nodes: %s\n", what.c_str());
  std::exit(1);
}

double Percentile(std::vector<double> values, double percent) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(percent / 100.0 * values.size() + 0.999999);
  return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
}

std::unique_ptr<PgRegistry> OpenOrFail(const Options& options) {
  pg::ConnectOptions connect;
  connect.conninfo = options.postgres;
  Result<std::unique_ptr<PgRegistry>> opened = PgRegistry::Open(connect, "/tmp/herd-bench-nodes");
  if (!opened.ok()) Fail("cannot open the registry: " + opened.status().ToString());
  return std::move(opened).value();
}

// One writer process: M admissions, each latency written to `out` as a
// double; exits 0, or 1 after the first error.
[[noreturn]] void Writer(const Options& options, Mode mode, const std::string& task_id, int index,
                         int out) {
  std::unique_ptr<PgRegistry> registry = OpenOrFail(options);
  for (int i = 0; i < options.admissions; ++i) {
    AdmissionRequest request;
    request.agent_id = "w" + std::to_string(index) + "-" + std::to_string(i);
    request.type = "worker";
    request.backend = "command";
    if (mode == Mode::kPlaced) request.placement = registry::PlacementRequest{};
    int cap = mode == Mode::kClusterCap ? 1000000 : 0;
    auto start = MonotonicClock::now();
    Result<registry::AgentRecord> admitted = registry->Admit(task_id, request, cap);
    double ms = std::chrono::duration<double, std::milli>(MonotonicClock::now() - start).count();
    if (!admitted.ok()) {
      std::fprintf(stderr, "herd-bench-nodes: %s\n", admitted.status().ToString().c_str());
      _exit(1);
    }
    if (write(out, &ms, sizeof ms) != sizeof ms) _exit(1);
  }
  _exit(0);
}

Run RunOnce(const Options& options, const PgRegistry& registry, Mode mode, int processes) {
  std::string task_id = registry::NewTaskId();
  registry::TaskSpec spec;
  spec.description = "herd-bench-nodes";
  spec.limits = {1000000, 1000000, 5};
  if (!registry.CreateTask(task_id, spec).ok()) Fail("cannot create a task");
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) Fail("pipe");
  std::vector<pid_t> children;
  auto start = MonotonicClock::now();
  for (int p = 0; p < processes; ++p) {
    pid_t pid = fork();
    if (pid < 0) Fail("fork");
    if (pid == 0) {
      close(pipe_fds[0]);
      Writer(options, mode, task_id, p, pipe_fds[1]);
    }
    children.push_back(pid);
  }
  close(pipe_fds[1]);
  Run run;
  double ms = 0;
  while (read(pipe_fds[0], &ms, sizeof ms) == sizeof ms) run.latencies_ms.push_back(ms);
  close(pipe_fds[0]);
  for (pid_t child : children) {
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++run.failed;
    }
  }
  run.seconds = std::chrono::duration<double>(MonotonicClock::now() - start).count();
  Result<registry::SharedTask> task = registry.ReadTask(task_id);
  if (!task.ok()) Fail("cannot read the task back: " + task.status().ToString());
  run.committed = static_cast<int>((*task)->task.agents.size());
  if (mode == Mode::kPlaced) {
    std::map<std::string, int> per_node;
    for (const registry::AgentRecord& agent : (*task)->task.agents) {
      if (agent.node) ++per_node[agent.node->name];
    }
    int most = 0, fewest = 1 << 30;
    for (const auto& [name, count] : per_node) {
      most = std::max(most, count);
      fewest = std::min(fewest, count);
    }
    run.spread = per_node.size() == 3 ? most - fewest : 1 << 30;
  }
  // The agents end, so the next run's nodes start empty.
  if (!registry.StopTask(task_id, "benchmark run done", 1000).ok()) Fail("cannot stop the task");
  return run;
}

bool ParseList(const std::string& text, std::vector<int>* values) {
  values->clear();
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    int value = std::atoi(item.c_str());
    if (value < 1) return false;
    values->push_back(value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return !values->empty();
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value = i + 1 < argc ? argv[i + 1] : "";
    if (arg == "--procs" && ParseList(value, &options.procs)) {
      ++i;
    } else if (arg == "--admissions" && std::atoi(value.c_str()) > 0) {
      options.admissions = std::atoi(value.c_str());
      ++i;
    } else if (arg == "--postgres" && !value.empty()) {
      options.postgres = value;
      ++i;
    } else {
      std::fprintf(stderr,
                   "usage: herd-bench-nodes [--procs 1,4,16] [--admissions 50] "
                   "[--postgres URL]\n");
      return arg == "--help" ? 0 : 2;
    }
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  bool throwaway = options.postgres.empty();
  if (throwaway) {
    options.postgres = bench::StartThrowawayPostgres();
    if (options.postgres.empty()) return 1;
  }
  std::unique_ptr<PgRegistry> registry = OpenOrFail(options);
  for (const char* name : {"node-a", "node-b", "node-c"}) {
    Result<PgRegistry::NodeRegistration> registered =
        registry->RegisterNode({name, "bench-host", 1000000, {}}, std::chrono::hours(1));
    if (!registered.ok()) Fail("cannot register a node: " + registered.status().ToString());
  }
  std::printf("herd-bench-nodes: %d admissions per process, PostgreSQL at %s%s\n",
              options.admissions, pg::RedactedSetting(options.postgres).c_str(),
              throwaway ? " (a throwaway server for this run)" : "");
  std::printf("latency per admission in ms (p50 / p99), admissions/s over the run\n");
  std::printf("%-4s | %-24s | %-24s | %-24s\n", "N", "task row", "+ cap (cluster row)",
              "placed on 3 nodes");
  bool all_right = true;
  for (int processes : options.procs) {
    std::printf("%-4d", processes);
    for (Mode mode : {Mode::kTaskRow, Mode::kClusterCap, Mode::kPlaced}) {
      Run run = RunOnce(options, *registry, mode, processes);
      int expected = processes * options.admissions;
      bool right = run.failed == 0 && run.committed == expected &&
                   static_cast<int>(run.latencies_ms.size()) == expected &&
                   (mode != Mode::kPlaced || run.spread <= 1);
      all_right = all_right && right;
      std::printf(" | %6.2f / %6.2f %7.0f/s%s", Percentile(run.latencies_ms, 50),
                  Percentile(run.latencies_ms, 99), run.per_second(), right ? "" : " FAIL");
      if (!right) {
        std::fprintf(stderr, "  %s N=%d: %d failed processes, %d of %d committed, spread %d\n",
                     NameOf(mode), processes, run.failed, run.committed, expected, run.spread);
      }
    }
    std::printf("\n");
  }
  std::printf("every admission committed once, placed agents spread evenly: %s\n",
              all_right ? "PASS" : "FAIL");
  return all_right ? 0 : 1;
}

}  // namespace
}  // namespace herd

int main(int argc, char** argv) {
  return herd::Main(argc, argv);
}
