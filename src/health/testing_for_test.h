// Helpers for the health layer's tests. Header-only; test code only.
//
// - TempDir and ScopedEnvironment: a private directory and environment per
//   test, both restored when the test ends.
// - Process identity (pid + start time) read independently of herd's code,
//   and waiting for exits through pidfds with deadlines, never fixed sleeps.
// - RunHerd: the real herd binary (HERD_BINARY) run to completion with
//   stdout and stderr captured.
// - DoctorTest: a fixture with its own workspace base and XDG_STATE_HOME
//   (so the known-workspaces list holds only this test's base), helpers to
//   create tasks and deploy `command` agents with the real binary, and a
//   TearDown that stops every herd supervisor of its base and what runs
//   below it.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "health/check_context.h"
#include "health/doctor.h"
#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "util/testing_for_test.h"

extern char** environ;

namespace herd::health::testing {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Long enough for a loaded 2-core machine; only reached when something is broken.
inline Clock::time_point Deadline(Clock::duration in = 60s) { return Clock::now() + in; }

inline int MillisecondsLeft(Clock::time_point deadline) {
  return testing_util::RemainingMilliseconds(deadline);
}

// --- Files ----------------------------------------------------------------------

// TempDir with this layer's directory prefix.
class TempDir : public testing_util::TempDir {
 public:
  TempDir() : testing_util::TempDir("herd-health") {}
};

using testing_util::FileExists;
using testing_util::ReadFile;
using testing_util::WriteFile;

// Sets a file's modification time `age` in the past.
inline void Backdate(const std::string& path, std::chrono::seconds age) {
  timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= age.count();
  times[1] = times[0];
  if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) throw std::runtime_error("utimensat");
}

// Every regular file under `root` (relative path -> contents), skipping
// paths that contain any of `skip`.
inline std::map<std::string, std::string> SnapshotTree(const std::string& root,
                                                       const std::vector<std::string>& skip) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file()) continue;
    std::string relative = entry.path().string().substr(root.size());
    bool skipped = false;
    for (const std::string& part : skip) skipped = skipped || relative.find(part) != std::string::npos;
    if (!skipped) files[relative] = ReadFile(entry.path().string());
  }
  return files;
}

inline std::vector<std::string> FilesContaining(const std::string& directory,
                                                const std::string& part) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    std::string name = entry.path().filename().string();
    if (name.find(part) != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

// --- Environment ----------------------------------------------------------------

using testing_util::ScopedEnvironment;

// --- Processes ------------------------------------------------------------------

using testing_util::ChildrenOf;
using testing_util::DescendantsOf;
using testing_util::Identity;
using testing_util::IdentityFromEntry;
using testing_util::IdentityOf;
using testing_util::IsRunning;
using testing_util::OpenPidfd;

// WaitForExit / KillAndWait with an explicit deadline come from
// testing_util; these default it to Deadline().
using testing_util::WaitForExit;
inline bool WaitForExit(const std::vector<Identity>& processes) {
  return testing_util::WaitForExit(processes, Deadline());
}

// SIGKILL through pidfds, then wait.
inline void KillAndWait(const std::vector<Identity>& processes) {
  testing_util::KillAndWait(processes, Deadline());
}

// Live `herd supervise` processes whose --workspace is `base`, by command line.
inline std::vector<Identity> SupervisorsOf(const std::string& base) {
  std::vector<Identity> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    std::string raw = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    std::vector<std::string> argv;
    std::istringstream parts(raw);
    std::string part;
    while (std::getline(parts, part, '\0')) argv.push_back(part);
    if (argv.size() < 4 || argv[1] != "supervise") continue;
    for (size_t i = 2; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--workspace" && argv[i + 1] == base) {
        Identity identity = IdentityOf(static_cast<pid_t>(pid));
        if (IsRunning(identity)) found.push_back(identity);
      }
    }
  }
  ::closedir(proc);
  return found;
}

// A child process the test started and reaps itself (e.g. `sleep`). Its
// stdout can be read through a pipe, to wait for it to say it is ready.
class Child {
 public:
  explicit Child(std::vector<std::string> argv) {
    int out_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    std::vector<char*> args;
    for (std::string& arg : argv) args.push_back(arg.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
    int spawned = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    out_fd_ = out_pipe[0];
    if (spawned != 0) throw std::runtime_error("cannot start " + argv[0]);
    identity_ = IdentityOf(pid_);
  }
  ~Child() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      Reap();
    }
    ::close(out_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  const Identity& identity() const { return identity_; }

  // Reads stdout until it contains `text` (true) or EOF / the deadline.
  bool WaitForOutput(const std::string& text, Clock::time_point deadline = Deadline()) {
    while (out_.find(text) == std::string::npos) {
      pollfd waiting{out_fd_, POLLIN, 0};
      int ready = ::poll(&waiting, 1, MillisecondsLeft(deadline));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      char buffer[4096];
      ssize_t got = ::read(out_fd_, buffer, sizeof buffer);
      if (got <= 0) return out_.find(text) != std::string::npos;
      out_.append(buffer, static_cast<size_t>(got));
    }
    return true;
  }

  // Waits for the exit (pidfd, deadline) and reaps; returns the wait status.
  int Reap(Clock::time_point deadline = Deadline()) {
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pidfd >= 0) {
      pollfd waiting{pidfd, POLLIN, 0};
      while (::poll(&waiting, 1, MillisecondsLeft(deadline)) < 0 && errno == EINTR) {
      }
      ::close(pidfd);
    }
    int status = -1;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = 0;
  int out_fd_ = -1;
  std::string out_;
  Identity identity_;
  bool reaped_ = false;
};

// --- Running herd ---------------------------------------------------------------

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  json Json() const { return json::parse(out, nullptr, false); }
  std::string Describe() const {
    return "exit " + std::to_string(exit_code) + "\nstdout: " + out + "\nstderr: " + err;
  }
};

// Runs the real herd binary with `args` to completion (or the deadline, then
// SIGKILL), in the test's environment.
inline CommandResult RunHerd(const std::vector<std::string>& args,
                             Clock::time_point deadline = Deadline()) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe2 failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::vector<std::string> argv_strings{HERD_BINARY};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int spawned = ::posix_spawn(&pid, HERD_BINARY, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawned != 0) throw std::runtime_error("cannot start " HERD_BINARY);
  CommandResult result;
  std::vector<pollfd> open = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  // The supervisor never inherits these pipes (herd closes every descriptor
  // but the handshake), so EOF on both means herd exited.
  while (!open.empty()) {
    int ready = ::poll(open.data(), open.size(), MillisecondsLeft(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      ::kill(pid, SIGKILL);
      break;
    }
    std::vector<pollfd> still;
    for (const pollfd& entry : open) {
      if (entry.revents == 0) {
        still.push_back({entry.fd, POLLIN, 0});
        continue;
      }
      char buffer[65536];
      ssize_t got = ::read(entry.fd, buffer, sizeof buffer);
      if (got > 0) {
        (entry.fd == out_pipe[0] ? result.out : result.err).append(buffer, got);
        still.push_back({entry.fd, POLLIN, 0});
      } else if (got < 0 && errno == EINTR) {
        still.push_back({entry.fd, POLLIN, 0});
      }
    }
    open.swap(still);
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// --- Reports --------------------------------------------------------------------

// Every finding in the report (all workspaces, tasks and workspace-wide),
// each with "task_id" added ("" for workspace findings).
inline std::vector<json> AllFindings(const json& report) {
  std::vector<json> findings;
  for (const json& workspace : report["workspaces"]) {
    for (const json& task : workspace["tasks"]) {
      for (json finding : task["findings"]) {
        finding["task_id"] = task["task_id"];
        findings.push_back(std::move(finding));
      }
    }
    for (json finding : workspace["workspace_findings"]) {
      finding["task_id"] = "";
      findings.push_back(std::move(finding));
    }
  }
  return findings;
}

inline std::vector<json> FindingsOfKind(const json& report, const std::string& kind) {
  std::vector<json> matching;
  for (const json& finding : AllFindings(report)) {
    if (finding["kind"] == kind) matching.push_back(finding);
  }
  return matching;
}

inline int ChangedRepairs(const json& report) {
  int changed = 0;
  for (const json& repair : report["repairs"]) changed += repair.value("changed", false) ? 1 : 0;
  return changed;
}

inline std::string Kinds(const json& report) {
  std::string kinds;
  for (const json& finding : AllFindings(report)) {
    kinds += finding["kind"].get<std::string>() + "(" + finding.value("detail", "") + ") ";
  }
  return kinds;
}

// --- Fixture --------------------------------------------------------------------

class DoctorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = temp_.path() + "/ws";
    environment_.Set("XDG_STATE_HOME", temp_.path() + "/state");
    environment_.Set("CLAUDE_ORCHESTRATOR_WORKSPACE", base_);
    environment_.Unset("HERD_MAX_RUNNING_AGENTS");
    environment_.Unset("HERD_LOCK_TIMEOUT_MS");
    stores_.emplace();
    workspace_.emplace(base_);
  }

  void TearDown() override {
    // Stop every agent this test started, however it was left.
    for (int round = 0; round < 3; ++round) {
      std::vector<Identity> processes;
      for (const Identity& supervisor : SupervisorsOf(base_)) {
        processes.push_back(supervisor);
        for (const Identity& child : DescendantsOf(supervisor.pid)) processes.push_back(child);
      }
      for (const Identity& agent : agents_) {
        if (IsRunning(agent)) processes.push_back(agent);
      }
      if (processes.empty()) break;
      KillAndWait(processes);
    }
  }

  // Points the helpers (CreateTask, Deploy, Task...) at another base.
  void UseBase(const std::string& base) {
    base_ = base;
    workspace_.emplace(base);
  }

  const registry::RegistryStores& stores() const { return *stores_; }
  const registry::Workspace& workspace() const { return *workspace_; }
  const std::string& base() const { return base_; }
  std::string TaskPath(const std::string& task_id) const {
    return workspace().TaskRegistryPath(task_id);
  }

  std::string CreateTask(const std::string& description = "doctor test") {
    CommandResult result = RunHerd({"--workspace", base_, "--json", "task", "create", description});
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    std::string task_id = result.Json().value("task_id", "");
    EXPECT_FALSE(task_id.empty()) << result.Describe();
    return task_id;
  }

  // Deploys `--backend command -- argv` with the real binary; returns the
  // agent's registry entry as recorded once it started.
  json Deploy(const std::string& task_id,
              const std::vector<std::string>& argv = {"sleep", "300"}) {
    std::vector<std::string> args = {"--workspace", base_,      "--json",    "deploy", task_id,
                                     "--type",      "x",        "--backend", "command", "--"};
    args.insert(args.end(), argv.begin(), argv.end());
    CommandResult result = RunHerd(args);
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
    std::string agent_id = result.Json().value("agent_id", "");
    json entry = Agent(task_id, agent_id);
    agents_.push_back(IdentityFromEntry(entry, "pid", "process_start_time"));
    agents_.push_back(IdentityFromEntry(entry, "supervisor_pid", "supervisor_start_time"));
    return entry;
  }

  json Task(const std::string& task_id) const {
    Result<store::Snapshot> snapshot = stores().tasks.Read(TaskPath(task_id));
    EXPECT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    return snapshot.ok() ? snapshot->document : json::object();
  }

  json Agent(const std::string& task_id, const std::string& agent_id) const {
    json task = Task(task_id);
    const json* agent = registry::FindAgent(task, agent_id);
    EXPECT_NE(agent, nullptr) << "no agent " << agent_id << " in " << task.dump(2);
    return agent ? *agent : json::object();
  }

  // Changes the task registry through the store, as another herd process would.
  void EditTask(const std::string& task_id, const std::function<void(json&)>& edit) const {
    Status status = stores().tasks.Update(TaskPath(task_id), [&](json& task) -> Result<store::Decision> {
      edit(task);
      return store::Decision::kCommit;
    });
    ASSERT_TRUE(status.ok()) << status.ToString();
  }

  // Adds an entry for `agent_id` whose start recorded `process` and
  // `supervisor` (real identities, alive or not), as a supervisor would.
  void AddStartedAgent(const std::string& task_id, const std::string& agent_id,
                       const Identity& process, const Identity& supervisor) const {
    EditTask(task_id, [&](json& task) {
      registry::AdmissionRequest request;
      request.agent_id = agent_id;
      request.type = "x";
      ASSERT_TRUE(registry::AdmitAgent(task, request).ok());
      ASSERT_TRUE(registry::RecordStart(task, agent_id, {process.pid, process.start_time},
                                        {supervisor.pid, supervisor.start_time})
                      .ok());
    });
  }

  // What the checks see of this test's base.
  CheckContext Context() const {
    CheckContext context;
    context.stores = &stores();
    context.workspace = workspace();
    return context;
  }

  json Doctor(DoctorOptions options) const {
    Result<json> report = Diagnose(stores(), workspace(), options);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : json::object();
  }
  json Check() const { return Doctor({}); }
  json Repair(DoctorOptions options = {}) const {
    options.repair = true;
    return Doctor(options);
  }

  // SIGKILLs an agent's supervisor and agent, as a crash would, and waits
  // until both are gone.
  void CrashAgent(const json& entry) const {
    Identity supervisor = IdentityFromEntry(entry, "supervisor_pid", "supervisor_start_time");
    Identity agent = IdentityFromEntry(entry, "pid", "process_start_time");
    ASSERT_TRUE(IsRunning(supervisor) && IsRunning(agent)) << entry.dump(2);
    KillAndWait({supervisor, agent});
    ASSERT_FALSE(IsRunning(supervisor));
    ASSERT_FALSE(IsRunning(agent));
  }

  // Asserts that a repair run changes nothing and leaves no unresolved finding.
  void ExpectSecondRepairChangesNothing(const DoctorOptions& options = {}) const {
    std::map<std::string, std::string> before = SnapshotTree(base_, {"/metrics/", ".lock"});
    json again = Repair(options);
    EXPECT_EQ(ChangedRepairs(again), 0) << again.dump(2);
    EXPECT_TRUE(again["repairs"].empty()) << again["repairs"].dump(2);
    EXPECT_TRUE(again["summary"]["healthy"].get<bool>()) << again.dump(2);
    for (const json& finding : AllFindings(again)) {
      EXPECT_EQ(finding["severity"], "warning") << finding.dump(2);
      EXPECT_FALSE(finding.contains("repair_result")) << finding.dump(2);
    }
    EXPECT_EQ(SnapshotTree(base_, {"/metrics/", ".lock"}), before);
  }

  TempDir temp_;
  ScopedEnvironment environment_;
  std::string base_;
  std::optional<registry::RegistryStores> stores_;
  std::optional<registry::Workspace> workspace_;
  std::vector<Identity> agents_;
};

}  // namespace herd::health::testing
