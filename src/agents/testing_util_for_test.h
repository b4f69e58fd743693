// Helpers shared by herd's registry, agents and CLI tests and the agents
// benchmark. Header-only; test code only.
//
// - TempDir and ScopedEnvironment: a private directory and environment per
//   test, both restored when the test ends.
// - Process identity by pid + start time (field 22 of /proc/<pid>/stat),
//   read independently of herd's own code so the tests check herd rather
//   than agree with it.
// - Waiting without fixed sleeps: for a process through a pidfd, for a file
//   or a JSON document through inotify, always with a deadline.
// - HerdProcess / RunHerd: the real herd binary (HERD_BINARY) started with
//   posix_spawn, stdout and stderr captured through close-on-exec pipes, so
//   a descendant that kept either pipe open shows up as a missing EOF;
//   DeployCommandAgents deploys many `command` agents through it.
// - HerdTest: a gtest fixture giving each test a temporary workspace and
//   XDG_STATE_HOME, and killing every process it started in TearDown.
//   Define HERD_TEST_UTIL_WITHOUT_GTEST before including to leave it out
//   (the benchmark does).
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#ifndef HERD_TEST_UTIL_WITHOUT_GTEST
#include <gtest/gtest.h>
#endif

#include "util/testing_for_test.h"

extern char** environ;

namespace herd::test_util {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Long enough for a loaded 2-core machine running tests in parallel; a
// wait only takes this long when something is broken.
inline constexpr std::chrono::seconds kGenerousDeadline{30};

inline Clock::time_point DeadlineIn(Clock::duration duration = kGenerousDeadline) {
  return Clock::now() + duration;
}

inline double MillisecondsBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

using testing_util::RemainingMilliseconds;

#ifdef HERD_BINARY
// The herd binary built with the tests; $HERD_TEST_BINARY runs the same
// tests against another build (to see a test fail on the code before a fix).
inline std::string HerdBinary() {
  const char* other = std::getenv("HERD_TEST_BINARY");
  return other != nullptr && *other == '/' ? other : HERD_BINARY;
}
#endif

// --- Files and directories --------------------------------------------------

using testing_util::FileExists;
using testing_util::ReadFile;
using testing_util::ScopedTmpfs;
using testing_util::TempDir;
using testing_util::WriteFile;

// The file's lines without their '\n'.
inline std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) lines.push_back(line);
  return lines;
}

// The parsed document, or a discarded value if it is missing or not JSON.
inline json ReadJsonFile(const std::string& path) {
  return json::parse(ReadFile(path), nullptr, false);
}

// Blocks (inotify on the parent directory) until `ready()` is true or the
// deadline passes; returns the last value of `ready()`. The watch is set up
// before the first check, so no change between check and wait is missed.
inline bool WaitForDirectoryChange(const std::string& directory, const std::function<bool()>& ready,
                                   Clock::time_point deadline) {
  int inotify = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify < 0) throw std::runtime_error("inotify_init1 failed");
  ::inotify_add_watch(inotify, directory.c_str(),
                      IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_DELETE);
  bool done = ready();
  while (!done && Clock::now() < deadline) {
    pollfd waiting{inotify, POLLIN, 0};
    // The cap only bounds how late a missed watch (directory created after
    // the call) is noticed; events normally wake the loop at once.
    int ready_count = ::poll(&waiting, 1, std::min(RemainingMilliseconds(deadline), 1000));
    if (ready_count > 0) {
      char events[4096];
      while (::read(inotify, events, sizeof events) > 0) {
      }
    }
    done = ready();
  }
  ::close(inotify);
  return done;
}

inline std::string ParentDirectory(const std::string& path) {
  return path.substr(0, path.rfind('/'));
}

// Waits until `path` exists.
inline bool WaitForFile(const std::string& path, Clock::time_point deadline = DeadlineIn()) {
  return WaitForDirectoryChange(
      ParentDirectory(path), [&] { return FileExists(path); }, deadline);
}

// Waits until the JSON document at `path` satisfies `accept`; returns the
// last document read (discarded if none could be read).
inline json WaitForJson(const std::string& path, const std::function<bool(const json&)>& accept,
                        Clock::time_point deadline = DeadlineIn()) {
  json document;
  WaitForDirectoryChange(
      ParentDirectory(path),
      [&] {
        document = ReadJsonFile(path);
        return !document.is_discarded() && accept(document);
      },
      deadline);
  return document;
}

// Waits until the file at `path` contains `text` (an agent's log, say).
inline bool WaitForFileContaining(const std::string& path, const std::string& text,
                                  Clock::time_point deadline = DeadlineIn()) {
  return WaitForDirectoryChange(
      ParentDirectory(path), [&] { return ReadFile(path).find(text) != std::string::npos; },
      deadline);
}

// --- Environment --------------------------------------------------------------

using testing_util::ScopedEnvironment;

// --- Processes ----------------------------------------------------------------

using testing_util::ChildrenOf;
using testing_util::DescendantsOf;
using testing_util::Identity;
using testing_util::IdentityFromEntry;
using testing_util::IdentityOf;
using testing_util::IsRunning;
using testing_util::OpenPidfd;
using testing_util::ProcessInfo;
using testing_util::ReadProcessInfo;

// Every running process whose environment has a variable starting with
// `entry_prefix` (e.g. "HERD_TASK_ID=TASK-..."): what an agent and anything
// it started carry, whatever session or group they moved to.
inline std::vector<Identity> ProcessesWithEnvironment(const std::string& entry_prefix) {
  return testing_util::RunningProcessesWhere([&](pid_t pid) {
    for (const std::string& variable : testing_util::ProcFields(pid, "environ")) {
      if (variable.rfind(entry_prefix, 0) == 0) return true;
    }
    return false;
  });
}

// WaitForExit / KillAndWait with an explicit deadline come from
// testing_util; these default it to DeadlineIn().
using testing_util::WaitForExit;
inline bool WaitForExit(const std::vector<Identity>& processes) {
  return testing_util::WaitForExit(processes, DeadlineIn());
}

inline bool WaitForExit(const Identity& process, Clock::time_point deadline = DeadlineIn()) {
  return WaitForExit(std::vector<Identity>{process}, deadline);
}

using testing_util::KillAndWait;
inline int KillAndWait(const std::vector<Identity>& processes) {
  return testing_util::KillAndWait(processes, DeadlineIn());
}

inline std::string Join(const std::vector<std::string>& words, const std::string& separator = " ") {
  std::string joined;
  for (const std::string& word : words) joined += (joined.empty() ? "" : separator) + word;
  return joined;
}

inline std::string DescribeProcesses(const std::vector<Identity>& processes) {
  std::string text;
  for (const Identity& process : processes) {
    std::string command = ReadFile("/proc/" + std::to_string(process.pid) + "/cmdline");
    std::replace(command.begin(), command.end(), '\0', ' ');
    text += "\n  pid " + std::to_string(process.pid) + ": " + command;
  }
  return text;
}

// --- Running commands ---------------------------------------------------------

struct RunOptions {
  std::string cwd;  // "" = the caller's
  // Variables to set (value) or remove (nullopt) for this command only.
  std::vector<std::pair<std::string, std::optional<std::string>>> environment;
  Clock::duration timeout = std::chrono::seconds(60);
};

struct CommandResult {
  std::vector<std::string> args;
  int exit_code = -1;  // -1 when a signal ended it or it timed out
  int term_signal = 0;
  bool timed_out = false;  // killed at the deadline, or its pipes never closed
  std::string out;
  std::string err;
  double wall_ms = 0;      // from before the spawn until it was reaped
  double lifetime_ms = 0;  // from exec (posix_spawn returned) until it exited
  double cpu_ms = 0;       // user + system time, its waited-for children included

  // stdout as JSON (discarded if it is not exactly one JSON value).
  json Json() const { return json::parse(out, nullptr, false); }
  // For failure messages.
  std::string Describe() const {
    return "`herd " + Join(args) + "` exited " + std::to_string(exit_code) +
           (term_signal ? " (signal " + std::to_string(term_signal) + ")" : "") +
           (timed_out ? " (timed out)" : "") + "\nstdout: " + out + "\nstderr: " + err;
  }
};

// A running command (`program` found on PATH unless it is a path) with its
// stdout and stderr captured. Started in the constructor; Wait() collects it. Concurrent instances
// are independent: every pipe is close-on-exec, so no command inherits another's.
class CommandProcess {
 public:
  CommandProcess(const std::string& program, std::vector<std::string> args,
                 const RunOptions& options = {})
      : deadline_(Clock::now() + options.timeout) {
    result_.args = args;
    int out_pipe[2], err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
    if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());

    std::vector<std::string> environment = MergedEnvironment(options.environment);
    std::vector<char*> envp;
    for (std::string& variable : environment) envp.push_back(variable.data());
    envp.push_back(nullptr);
    std::vector<std::string> argv_strings{program};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : argv_strings) argv.push_back(arg.data());
    argv.push_back(nullptr);

    start_ = Clock::now();
    int spawned =
        ::posix_spawnp(&pid_, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    // glibc's posix_spawn returns once the child has exec'd (CLONE_VFORK).
    execed_ = Clock::now();
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_fd_ = out_pipe[0];
    err_fd_ = err_pipe[0];
    if (spawned != 0) {
      ::close(out_fd_);
      ::close(err_fd_);
      throw std::runtime_error("cannot start " + program + ": " + std::strerror(spawned));
    }
    pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  }
  ~CommandProcess() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    for (int fd : {out_fd_, err_fd_, pidfd_}) {
      if (fd >= 0) ::close(fd);
    }
  }
  CommandProcess(const CommandProcess&) = delete;
  CommandProcess& operator=(const CommandProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Reads output until stdout contains `text` (true) or the command ended
  // or the deadline passed (false). The output read so far stays captured.
  bool WaitForOutput(const std::string& text, Clock::time_point deadline = DeadlineIn()) {
    while (result_.out.find(text) == std::string::npos) {
      if (!Pump(std::min(deadline, deadline_))) return result_.out.find(text) != std::string::npos;
    }
    return true;
  }

  // Waits until the command has exited and both pipes reached EOF, or the
  // deadline passed (then it is killed and timed_out is set).
  CommandResult Wait() {
    while (Pump(deadline_)) {
    }
    if (!exited_) {
      result_.timed_out = true;
      ::kill(pid_, SIGKILL);
    }
    if (out_fd_ >= 0 || err_fd_ >= 0) result_.timed_out = true;  // a descendant holds a pipe
    int status = 0;
    rusage usage{};
    while (::wait4(pid_, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    if (!exited_) exited_at_ = Clock::now();
    result_.wall_ms = MillisecondsBetween(start_, Clock::now());
    result_.lifetime_ms = MillisecondsBetween(execed_, exited_at_);
    result_.cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
                     (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
    if (WIFEXITED(status) && !result_.timed_out) result_.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result_.term_signal = WTERMSIG(status);
    return result_;
  }

 private:
  static std::vector<std::string> MergedEnvironment(
      const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) {
    std::vector<std::string> merged;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      std::string variable = *entry;
      std::string name = variable.substr(0, variable.find('='));
      bool changed = std::any_of(changes.begin(), changes.end(),
                                 [&](const auto& change) { return change.first == name; });
      if (!changed) merged.push_back(variable);
    }
    for (const auto& [name, value] : changes) {
      if (value) merged.push_back(name + "=" + *value);
    }
    return merged;
  }

  // One round of waiting for output or exit. False when there is nothing
  // more to wait for (exited and both pipes closed) or the deadline passed.
  bool Pump(Clock::time_point deadline) {
    if (exited_ && out_fd_ < 0 && err_fd_ < 0) return false;
    std::vector<pollfd> waiting;
    if (out_fd_ >= 0) waiting.push_back({out_fd_, POLLIN, 0});
    if (err_fd_ >= 0) waiting.push_back({err_fd_, POLLIN, 0});
    if (!exited_ && pidfd_ >= 0) waiting.push_back({pidfd_, POLLIN, 0});
    int ready = ::poll(waiting.data(), waiting.size(), RemainingMilliseconds(deadline));
    if (ready < 0 && errno == EINTR) return true;
    if (ready <= 0) return false;
    for (const pollfd& entry : waiting) {
      if (entry.revents == 0) continue;
      if (entry.fd == pidfd_) {
        exited_ = true;
        exited_at_ = Clock::now();
        continue;
      }
      char buffer[65536];
      ssize_t got = ::read(entry.fd, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      bool is_out = entry.fd == out_fd_;
      if (got > 0) {
        (is_out ? result_.out : result_.err).append(buffer, static_cast<size_t>(got));
      } else {
        ::close(entry.fd);
        (is_out ? out_fd_ : err_fd_) = -1;
      }
    }
    return true;
  }

  Clock::time_point deadline_;
  Clock::time_point start_, execed_, exited_at_;
  pid_t pid_ = 0;
  int out_fd_ = -1, err_fd_ = -1, pidfd_ = -1;
  bool exited_ = false;
  bool reaped_ = false;
  CommandResult result_;
};

#ifdef HERD_BINARY
// `herd ARGS...` started now; collect it with Wait().
class HerdProcess : public CommandProcess {
 public:
  explicit HerdProcess(std::vector<std::string> args, const RunOptions& options = {})
      : CommandProcess(HerdBinary(), std::move(args), options) {}
};

// Runs `herd ARGS...` as a machine that cannot see `hidden` (another
// machine's directory): in a mount namespace of its own where `hidden` is
// an empty tmpfs (unshare(1); needs root, as CI runs). The rest of the disk
// and the processes stay shared.
class HerdWithoutDirectory : public CommandProcess {
 public:
  HerdWithoutDirectory(const std::string& hidden, std::vector<std::string> args,
                       const RunOptions& options = {})
      : CommandProcess("unshare", UnshareArgs(hidden, std::move(args)), options) {}

 private:
  static std::vector<std::string> UnshareArgs(const std::string& hidden,
                                              std::vector<std::string> args) {
    std::vector<std::string> wrapped = {
        "--mount",   "--propagation",
        "private",   "sh",
        "-c",        "mount -t tmpfs none \"$1\" && shift && exec \"$@\"",
        "sh",        hidden,
        HerdBinary()};
    wrapped.insert(wrapped.end(), args.begin(), args.end());
    return wrapped;
  }
};

// Runs `herd ARGS...` to completion.
inline CommandResult RunHerd(std::vector<std::string> args, const RunOptions& options = {}) {
  return HerdProcess(std::move(args), options).Wait();
}

// The argv of `herd deploy TASK --type TYPE --json [extra] --backend command -- ARGV`.
inline std::vector<std::string> CommandDeployArgs(const std::string& task_id,
                                                  const std::string& type,
                                                  const std::vector<std::string>& agent_argv,
                                                  const std::vector<std::string>& extra_args = {}) {
  std::vector<std::string> args{"deploy", task_id, "--type", type, "--json"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  args.insert(args.end(), {"--backend", "command", "--"});
  args.insert(args.end(), agent_argv.begin(), agent_argv.end());
  return args;
}

// Deploys `count` command agents running `agent_argv`, `parallel` `herd
// deploy`s at a time; returns their ids. Throws if a deploy fails.
inline std::vector<std::string> DeployCommandAgents(const std::string& task_id, int count,
                                                    const std::vector<std::string>& agent_argv,
                                                    int parallel = 4) {
  std::vector<std::string> ids;
  while (static_cast<int>(ids.size()) < count) {
    std::vector<std::unique_ptr<HerdProcess>> batch;
    int remaining = count - static_cast<int>(ids.size());
    for (int i = 0; i < std::min(parallel, remaining); ++i) {
      batch.push_back(
          std::make_unique<HerdProcess>(CommandDeployArgs(task_id, "sleeper", agent_argv)));
    }
    for (std::unique_ptr<HerdProcess>& deploy : batch) {
      CommandResult result = deploy->Wait();
      json output = result.Json();
      if (result.exit_code != 0 || output.is_discarded() || !output.contains("agent_id")) {
        throw std::runtime_error("deploy failed: " + result.Describe());
      }
      ids.push_back(output["agent_id"].get<std::string>());
    }
  }
  return ids;
}
#endif

// Percentile (0-100) of `values` by nearest rank; 0 if empty.
inline double Percentile(std::vector<double> values, double percent) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank =
      static_cast<size_t>(percent / 100.0 * static_cast<double>(values.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

// --- Registry documents -------------------------------------------------------

// The agent entry with `agent_id` in a task registry, or null.
inline json AgentIn(const json& task, const std::string& agent_id) {
  if (!task.is_object() || !task.contains("agents")) return nullptr;
  for (const json& agent : task["agents"]) {
    if (agent.value("id", "") == agent_id) return agent;
  }
  return nullptr;
}

inline Identity AgentProcessOf(const json& agent) {
  return IdentityFromEntry(agent, "pid", "process_start_time");
}

inline Identity SupervisorOf(const json& agent) {
  return IdentityFromEntry(agent, "supervisor_pid", "supervisor_start_time");
}

// Every AGENT_REGISTRY.json below `root`.
inline std::vector<std::string> TaskRegistriesUnder(const std::string& root) {
  std::vector<std::string> found;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(
           root, std::filesystem::directory_options::skip_permission_denied, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->path().filename() == "AGENT_REGISTRY.json") found.push_back(it->path().string());
  }
  return found;
}

// Kills every process that belongs to agents recorded under `root`: their
// supervisors, the agents, their descendants, and any process whose
// HERD_WORKSPACE lies under `root` (a grandchild that changed session).
// Returns how many were still running.
inline int KillAgentsUnder(const std::string& root, std::vector<Identity> also = {}) {
  std::vector<Identity> targets = std::move(also);
  for (const std::string& path : TaskRegistriesUnder(root)) {
    json task = ReadJsonFile(path);
    if (task.is_discarded() || !task.contains("agents")) continue;
    for (const json& agent : task["agents"]) {
      for (const Identity& process : {SupervisorOf(agent), AgentProcessOf(agent)}) {
        if (!IsRunning(process)) continue;
        targets.push_back(process);
        for (const Identity& descendant : DescendantsOf(process.pid)) targets.push_back(descendant);
      }
    }
  }
  for (const Identity& tagged : ProcessesWithEnvironment("HERD_WORKSPACE=" + root + "/")) {
    targets.push_back(tagged);
  }
  return KillAndWait(targets);
}

#ifndef HERD_TEST_UTIL_WITHOUT_GTEST
#ifdef HERD_BINARY

// A test with its own workspace ($CLAUDE_ORCHESTRATOR_WORKSPACE), state
// directory ($XDG_STATE_HOME, where herd records known workspaces) and
// project directory, all under one temporary root. Every herd command it
// runs inherits them. TearDown kills whatever the test's agents left.
class HerdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    workspace_ = root_.path() + "/workspace";
    state_ = root_.Subdirectory("state");
    project_ = root_.Subdirectory("project");
    environment_.Set("CLAUDE_ORCHESTRATOR_WORKSPACE", workspace_);
    environment_.Set("XDG_STATE_HOME", state_);
    // Lock waits are bounded by the machine's load, not by herd: be generous.
    environment_.Set("HERD_LOCK_TIMEOUT_MS", "60000");
    for (const char* name : {"CLAUDE_ORCHESTRATOR_MAX_AGENTS", "CLAUDE_ORCHESTRATOR_MAX_CONCURRENT",
                             "CLAUDE_ORCHESTRATOR_MAX_DEPTH", "HERD_MAX_RUNNING_AGENTS",
                             "CLAUDE_EXECUTABLE", "CLAUDE_FLAGS", "HERD_REGISTRY"}) {
      environment_.Unset(name);
    }
  }

  void TearDown() override { KillAgentsUnder(root_.path(), tracked_); }

  const std::string& root() const { return root_.path(); }
  const std::string& workspace() const { return workspace_; }
  const std::string& state() const { return state_; }
  const std::string& project() const { return project_; }
  std::string Subdirectory(const std::string& name) const { return root_.Subdirectory(name); }

  // Makes TearDown kill `process` if it is still running.
  void Track(const Identity& process) { tracked_.push_back(process); }

  // Runs herd; the result says how it went.
  CommandResult Herd(std::vector<std::string> args, const RunOptions& options = {}) {
    return RunHerd(std::move(args), options);
  }

  // Runs `herd ... --json`, requires exit 0 and JSON with success true.
  json HerdJson(std::vector<std::string> args, const RunOptions& options = {}) {
    args.push_back("--json");
    CommandResult result = RunHerd(args, options);
    json output = result.Json();
    if (result.exit_code != 0 || output.is_discarded() || !output.value("success", false)) {
      throw std::runtime_error("expected success from " + result.Describe());
    }
    return output;
  }

  // Creates a task in the test's workspace; returns its id.
  std::string CreateTask(std::vector<std::string> extra_args = {},
                         const std::string& description = "a task made by a test") {
    std::vector<std::string> args{"task", "create", description};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return HerdJson(args).at("task_id").get<std::string>();
  }

  static std::vector<std::string> DeployArgs(const std::string& task_id, const std::string& type,
                                             const std::vector<std::string>& agent_argv,
                                             const std::vector<std::string>& extra_args = {}) {
    return CommandDeployArgs(task_id, type, agent_argv, extra_args);
  }

  // Deploys a command agent, requires success, returns herd's JSON result.
  json Deploy(const std::string& task_id, const std::vector<std::string>& agent_argv,
              const std::string& type = "worker", const std::vector<std::string>& extra_args = {}) {
    CommandResult result = RunHerd(DeployArgs(task_id, type, agent_argv, extra_args));
    json output = result.Json();
    if (result.exit_code != 0 || output.is_discarded() || !output.value("success", false)) {
      throw std::runtime_error("deploy failed: " + result.Describe());
    }
    return output;
  }

  // Deploys a command agent and returns its id.
  std::string DeployAgent(const std::string& task_id, const std::vector<std::string>& agent_argv,
                          const std::string& type = "worker",
                          const std::vector<std::string>& extra_args = {}) {
    return Deploy(task_id, agent_argv, type, extra_args).at("agent_id").get<std::string>();
  }

  std::string TaskDirectory(const std::string& task_id) const { return workspace_ + "/" + task_id; }
  std::string TaskRegistryPath(const std::string& task_id) const {
    return TaskDirectory(task_id) + "/AGENT_REGISTRY.json";
  }
  std::string LogPath(const std::string& task_id, const std::string& agent_id) const {
    return TaskDirectory(task_id) + "/logs/" + agent_id + "_stream.jsonl";
  }
  // The task registry as stored (read directly from the file).
  json TaskRegistry(const std::string& task_id) const {
    return ReadJsonFile(TaskRegistryPath(task_id));
  }
  json GlobalRegistry() const {
    return ReadJsonFile(workspace_ + "/registry/GLOBAL_REGISTRY.json");
  }
  json AgentEntry(const std::string& task_id, const std::string& agent_id) const {
    return AgentIn(TaskRegistry(task_id), agent_id);
  }

  // Waits until the agent's supervisor has exited (it records the exit
  // first), then returns the agent's entry.
  json WaitForAgentToEnd(const std::string& task_id, const std::string& agent_id) {
    json agent = AgentEntry(task_id, agent_id);
    if (!WaitForExit(SupervisorOf(agent))) {
      throw std::runtime_error("the supervisor of " + agent_id + " did not exit within " +
                               std::to_string(kGenerousDeadline.count()) + " s");
    }
    return AgentEntry(task_id, agent_id);
  }

  // `herd status TASK --json`, required to succeed.
  json Status(const std::string& task_id, const RunOptions& options = {}) {
    return HerdJson({"status", task_id}, options);
  }

 private:
  TempDir root_;
  ScopedEnvironment environment_;
  std::string workspace_, state_, project_;
  std::vector<Identity> tracked_;
};

#endif  // HERD_BINARY
#endif  // HERD_TEST_UTIL_WITHOUT_GTEST

}  // namespace herd::test_util
