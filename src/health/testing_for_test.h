// Helpers for the health layer's tests. Header-only; test code only.
//
// - TempDir and ScopedEnvironment: a private directory and environment per
//   test, both restored when the test ends.
// - Process identity (pid + start time) read independently of herd's code,
//   and waiting for exits through pidfds with deadlines, never fixed sleeps.
// - RunHerd and Child: the real herd binary (HERD_BINARY) or any program,
//   started and captured by the agents tests' CommandProcess.
// - DoctorTest: a fixture with its own workspace base and XDG_STATE_HOME
//   (so the known-workspaces list holds only this test's base), helpers to
//   create tasks and deploy `command` agents with the real binary, and a
//   TearDown that stops every herd supervisor of its base and what runs
//   below it.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
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
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "agents/testing_util_for_test.h"
#include "health/check_context.h"
#include "health/doctor.h"
#include "registry/json_rules_for_test.h"
#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "util/testing_for_test.h"

extern char** environ;

namespace herd::health::testing {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

using test_util::DeadlineIn;

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
    for (const std::string& part : skip)
      skipped = skipped || relative.find(part) != std::string::npos;
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

using testing_util::DescendantsOf;
using testing_util::Identity;
using testing_util::IdentityFromEntry;
using testing_util::IdentityOf;
using testing_util::IsRunning;

// `count` pids that no process has now (kill(2) says ESRCH), from the top
// of the usual pid range down: for files named after a writer that is gone.
inline std::vector<pid_t> UnusedPids(size_t count) {
  std::vector<pid_t> pids;
  for (pid_t pid = 4'000'000; pids.size() < count && pid > 1000; --pid) {
    if (::kill(pid, 0) != 0 && errno == ESRCH) pids.push_back(pid);
  }
  if (pids.size() < count) throw std::runtime_error("no unused pids found");
  return pids;
}
inline pid_t UnusedPid() {
  return UnusedPids(1)[0];
}
// Both wait up to a deadline through pidfds (default DeadlineIn()).
using test_util::KillAndWait;
using test_util::WaitForExit;

// Live `herd supervise` processes whose --workspace is `base`, by command line.
inline std::vector<Identity> SupervisorsOf(const std::string& base) {
  return testing_util::RunningProcessesWhere([&](pid_t pid) {
    std::vector<std::string> argv = testing_util::ProcFields(pid, "cmdline");
    if (argv.size() < 4 || argv[1] != "supervise") return false;
    for (size_t i = 2; i + 1 < argv.size(); ++i) {
      if (argv[i] == "--workspace" && argv[i + 1] == base) return true;
    }
    return false;
  });
}

// A child process the test started (found on PATH, e.g. `sleep`), killed
// and reaped when the test ends unless Reap() collected it first. Its
// stdout can be read (WaitForOutput) to wait for it to say it is ready.
class Child : public test_util::CommandProcess {
 public:
  explicit Child(const std::vector<std::string>& argv)
      : CommandProcess(argv.at(0), {argv.begin() + 1, argv.end()}), identity_(IdentityOf(pid())) {}

  const Identity& identity() const { return identity_; }
  // Waits for the exit (through its pidfd, with a deadline) and reaps it.
  void Reap() { Wait(); }

 private:
  Identity identity_;
};

// --- Running herd ---------------------------------------------------------------

using test_util::CommandResult;
using test_util::RunHerd;

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
  json Deploy(const std::string& task_id, const std::vector<std::string>& argv = {"sleep", "300"}) {
    std::vector<std::string> args = {"--workspace", base_, "--json",    "deploy",  task_id,
                                     "--type",      "x",   "--backend", "command", "--"};
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
    Status status =
        stores().tasks.Update(TaskPath(task_id), [&](json& task) -> Result<store::Decision> {
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
