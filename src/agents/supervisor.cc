#include "agents/supervisor.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <spdlog/spdlog.h>

#include "agents/backend.h"
#include "agents/process.h"
#include "agents/stream_events.h"
#include "registry/global_index.h"
#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "util/clock.h"

extern char** environ;

namespace herd::agents {
namespace {

using nlohmann::json;
using registry::RegistryStores;
using registry::Workspace;

constexpr auto kLeftoverGrace = std::chrono::seconds(1);

volatile sig_atomic_t agent_group_for_signals = 0;

// SIGTERM/SIGINT/SIGHUP to the supervisor are passed on to the agent's group.
void ForwardSignal(int signal) {
  if (agent_group_for_signals > 0) kill(-agent_group_for_signals, signal);
}

void WriteLine(int fd, const std::string& line) {
  std::string data = line + "\n";
  ssize_t ignored = write(fd, data.data(), data.size());
  (void)ignored;
}

void RedirectStandardStreams(const std::string& log_path) {
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) {
    dup2(null_fd, STDIN_FILENO);
    close(null_fd);
  }
  int log_fd = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  dup2(log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  close(log_fd);
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

// The inherited environment with `extra` ("KEY=value") added or replaced.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> merged;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string variable = *entry;
    std::string key = variable.substr(0, variable.find('='));
    bool replaced = false;
    for (const std::string& added : extra) {
      if (added.compare(0, key.size() + 1, key + "=") == 0) replaced = true;
    }
    if (!replaced) merged.push_back(variable);
  }
  merged.insert(merged.end(), extra.begin(), extra.end());
  return merged;
}

// Starts the agent; returns its pid or an error naming what failed. Uses
// fork+exec (the supervisor is single-threaded) so the child can set its
// process group and parent-death signal before exec.
Result<pid_t> StartAgent(const LaunchPlan& plan) {
  int stdin_fd = open(plan.stdin_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (stdin_fd < 0) return Status::FromErrno("cannot open the prompt file " + plan.stdin_path, errno);
  int log_fd = open(plan.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    close(stdin_fd);
    return Status::FromErrno("cannot open the agent log " + plan.log_path, errno);
  }
  int exec_error[2];
  if (pipe2(exec_error, O_CLOEXEC) != 0) {
    close(stdin_fd);
    close(log_fd);
    return Status::FromErrno("cannot create a pipe", errno);
  }
  std::vector<std::string> argv_strings = plan.argv;
  std::vector<std::string> env_strings = MergedEnvironment(plan.environment);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);
  pid_t supervisor = getpid();

  pid_t pid = fork();
  if (pid < 0) {
    int saved_errno = errno;
    close(stdin_fd);
    close(log_fd);
    close(exec_error[0]);
    close(exec_error[1]);
    return Status::FromErrno("cannot fork", saved_errno);
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    setpgid(0, 0);  // own group, so a kill reaches the agent and its children
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor) _exit(127);
    int step = 0;
    if (dup2(stdin_fd, STDIN_FILENO) < 0) step = 1;
    if (step == 0 && dup2(log_fd, STDOUT_FILENO) < 0) step = 2;
    if (step == 0 && dup2(log_fd, STDERR_FILENO) < 0) step = 3;
    if (step == 0 && !plan.cwd.empty() && chdir(plan.cwd.c_str()) != 0) step = 4;
    if (step == 0) {
      // Nothing but 0-2 survives exec; the error pipe stays open until exec.
      syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
      signal(SIGPIPE, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      execvpe(argv[0], argv.data(), envp.data());
      step = 5;
    }
    int report[2] = {step, errno};
    ssize_t ignored = write(exec_error[1], report, sizeof report);
    (void)ignored;
    _exit(127);
  }
  close(stdin_fd);
  close(log_fd);
  close(exec_error[1]);
  int report[2] = {0, 0};
  ssize_t got;
  do {
    got = read(exec_error[0], report, sizeof report);
  } while (got < 0 && errno == EINTR);
  close(exec_error[0]);
  if (got == static_cast<ssize_t>(sizeof report)) {
    waitpid(pid, nullptr, 0);
    static const char* kSteps[] = {"", "redirect stdin", "redirect stdout", "redirect stderr",
                                   "enter the working directory", "execute"};
    std::string what = std::string("cannot ") + kSteps[report[0]];
    if (report[0] == 4) what += " " + plan.cwd;
    if (report[0] == 5) what += " " + plan.argv[0];
    return Status::FromErrno(what, report[1]);
  }
  return pid;  // EOF: exec succeeded and closed the pipe
}

// Stops whatever the agent left behind: every descendant of this
// supervisor (a subreaper, so orphans are ours) and the agent's group.
void StopLeftovers(pid_t agent_group) {
  std::vector<ProcessIdentity> leftovers = Descendants(getpid());
  for (const ProcessIdentity& member : ProcessGroupMembers(agent_group)) leftovers.push_back(member);
  if (leftovers.empty()) return;
  std::vector<int> pidfds;
  for (const ProcessIdentity& process : leftovers) {
    int pidfd = OpenPidfd(process);
    if (pidfd >= 0) {
      SignalPidfd(pidfd, SIGTERM);
      pidfds.push_back(pidfd);
    }
  }
  spdlog::info("stopping {} leftover process(es) of the agent", pidfds.size());
  if (!WaitForExit(pidfds, MonotonicClock::now() + kLeftoverGrace)) {
    for (int pidfd : pidfds) SignalPidfd(pidfd, SIGKILL);
  }
  for (int pidfd : pidfds) close(pidfd);
  for (const ProcessIdentity& process : Descendants(getpid())) kill(process.pid, SIGKILL);
  while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
}

Status UpdateTask(const RegistryStores& stores, const Workspace& workspace,
                  const std::string& task_id,
                  const std::function<Status(json& task)>& change, json* after = nullptr) {
  Status status = stores.tasks.Update(
      workspace.TaskRegistryPath(task_id), [&](json& task) -> Result<store::Decision> {
        HERD_RETURN_IF_ERROR(change(task));
        if (after) *after = task;
        return store::Decision::kCommit;
      });
  if (status.ok() && after) {
    Status indexed = registry::UpsertTask(stores, workspace, *after);
    if (!indexed.ok()) spdlog::warn("global index not updated: {}", indexed.ToString());
  }
  return status;
}

[[noreturn]] void Supervise(const SupervisorArgs& args) {
  Workspace workspace(args.workspace_base);
  RegistryStores stores;
  RedirectStandardStreams(workspace.SupervisorLogPath(args.task_id, args.agent_id));
  spdlog::info("supervisor {} for agent {} of task {}", getpid(), args.agent_id, args.task_id);

  auto fail = [&](const Status& status) {
    spdlog::error("{}", status.ToString());
    WriteLine(args.handshake_fd, "failed " + status.message());
    _exit(1);
  };

  store::FileSystem* fs = store::FileSystem::Default();
  Result<std::string> plan_text = fs->ReadFile(workspace.LaunchPlanPath(args.task_id, args.agent_id));
  if (!plan_text.ok()) fail(plan_text.status());
  Result<LaunchPlan> plan = LaunchPlanFromJson(json::parse(*plan_text, nullptr, false));
  if (!plan.ok()) fail(plan.status());

  Result<pid_t> agent_pid = StartAgent(*plan);
  if (!agent_pid.ok()) fail(agent_pid.status());
  agent_group_for_signals = *agent_pid;

  ProcessIdentity agent = IdentityOf(*agent_pid);
  ProcessIdentity supervisor = IdentityOf(getpid());
  bool killed_while_starting = false;
  Status recorded = UpdateTask(stores, workspace, args.task_id, [&](json& task) {
    HERD_RETURN_IF_ERROR(registry::RecordStart(task, args.agent_id, agent, supervisor));
    const json* entry = registry::FindAgent(task, args.agent_id);
    killed_while_starting = registry::IsTerminalStatus(entry->value("status", ""));
    return Status::Ok();
  });
  if (!recorded.ok()) {
    kill(-*agent_pid, SIGKILL);
    waitpid(*agent_pid, nullptr, 0);
    fail(recorded.WithContext("the agent started but could not be recorded, so it was stopped"));
  }
  WriteLine(args.handshake_fd,
            "started " + std::to_string(agent.pid) + " " + std::to_string(agent.start_time));
  close(args.handshake_fd);
  if (killed_while_starting) {
    spdlog::info("agent was terminated while starting; stopping it");
    kill(-*agent_pid, SIGTERM);
  }

  // Reap everything until the agent itself exits; orphans of the agent are
  // reparented here (subreaper) and reaped along the way.
  int wait_status = 0;
  for (;;) {
    pid_t reaped = waitpid(-1, &wait_status, 0);
    if (reaped == *agent_pid) break;
    if (reaped < 0 && errno != EINTR) {
      spdlog::error("lost track of the agent: {}", std::strerror(errno));
      wait_status = -1;
      break;
    }
  }

  registry::ExitRecord exit_record;
  exit_record.ended_at = NowIso8601();
  if (wait_status != -1 && WIFEXITED(wait_status)) exit_record.exit_code = WEXITSTATUS(wait_status);
  if (wait_status != -1 && WIFSIGNALED(wait_status)) exit_record.exit_signal = WTERMSIG(wait_status);
  if (wait_status == -1) exit_record.error = "the supervisor lost track of the agent process";
  if (plan->stream_json) {
    exit_record.result = ReadResultEvent(plan->log_path);
    if (exit_record.result.is_object() && exit_record.result.value("is_error", false) &&
        exit_record.error.empty()) {
      exit_record.error = "the agent CLI reported an error result (" +
                          exit_record.result.value("subtype", std::string("error")) + ")";
    }
  }
  spdlog::info("agent exited: code {} signal {}", exit_record.exit_code.value_or(-1),
               exit_record.exit_signal.value_or(0));
  Status saved = UpdateTask(stores, workspace, args.task_id, [&](json& task) {
    return registry::RecordExit(task, args.agent_id, exit_record);
  });
  if (!saved.ok()) spdlog::error("could not record the agent's exit: {}", saved.ToString());

  agent_group_for_signals = 0;
  StopLeftovers(*agent_pid);
  spdlog::info("supervisor done");
  _exit(saved.ok() ? 0 : 1);
}

}  // namespace

int RunSupervisor(const SupervisorArgs& args) {
  // Detach: the launcher reaps this intermediate process at once, and the
  // supervisor below is adopted by init (or the nearest subreaper).
  pid_t child = fork();
  if (child < 0) {
    WriteLine(args.handshake_fd, std::string("failed cannot fork: ") + std::strerror(errno));
    return 1;
  }
  if (child > 0) return 0;
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  struct sigaction forward {};
  forward.sa_handler = ForwardSignal;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &forward, nullptr);
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGHUP, &forward, nullptr);
  Supervise(args);
}

}  // namespace herd::agents
