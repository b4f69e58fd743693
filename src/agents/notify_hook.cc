#include "agents/notify_hook.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "agents/process.h"

namespace herd::agents {

namespace {

std::string OptionalNumber(const std::optional<int>& value) {
  return value ? std::to_string(*value) : std::string();
}

// The command for `transition`: the task's, else the environment's.
std::string CommandFor(const registry::AgentTransition& transition) {
  if (!transition.notify_command.empty()) return transition.notify_command;
  const char* configured = std::getenv("HERD_NOTIFY_COMMAND");
  return configured != nullptr ? configured : "";
}

// Spawns `argv` with `environment`: stdin /dev/null, stdout and stderr on
// this process's stderr; in a new process group when `own_group`.
Result<pid_t> Spawn(std::vector<std::string> argv, std::vector<std::string> environment,
                    bool own_group) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, 2, 1);  // never the caller's stdout
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int signal_number : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGUSR1}) {
    sigaddset(&defaults, signal_number);
  }
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  if (own_group) {
    flags |= POSIX_SPAWN_SETPGROUP;
    posix_spawnattr_setpgroup(&attributes, 0);
  }
  posix_spawnattr_setflags(&attributes, flags);
  std::vector<char*> argv_pointers = CStrings(argv);
  std::vector<char*> environment_pointers = CStrings(environment);
  pid_t pid = -1;
  int error = posix_spawn(&pid, argv[0].c_str(), &actions, &attributes, argv_pointers.data(),
                          environment_pointers.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) return Status::IOError("cannot start " + argv[0] + ": " + std::strerror(error));
  return pid;
}

// Waits for the child `pid` to exit, for at most `timeout` (process.h
// WaitForExit on its pidfd); true if it did, and then it is reaped into
// `wait_status`. Without a pidfd it is reaped without a deadline.
bool ReapWithin(pid_t pid, std::chrono::milliseconds timeout, int* wait_status) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    bool exited = WaitForExit({pidfd}, std::chrono::steady_clock::now() + timeout);
    close(pidfd);
    if (!exited) return false;
  }
  while (waitpid(pid, wait_status, 0) < 0 && errno == EINTR) {
  }
  return true;
}

std::string Describe(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status))
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "ended";
}

}  // namespace

std::vector<std::string> NotifyEnvironment(const registry::AgentTransition& transition) {
  return {
      "HERD_EVENT=" + transition.event,
      "HERD_TASK_ID=" + transition.task_id,
      "HERD_AGENT_ID=" + transition.agent_id,
      "HERD_TURN=" + std::to_string(transition.turn),
      "HERD_TASK_DIR=" + transition.task_directory,
      "HERD_LOG_FILE=" + transition.log_file,
      "HERD_OLD_STATUS=" + transition.old_status,
      "HERD_NEW_STATUS=" + transition.new_status,
      "HERD_EXIT_CODE=" + OptionalNumber(transition.exit_code),
      "HERD_EXIT_SIGNAL=" + OptionalNumber(transition.exit_signal),
      "HERD_REASON=" + transition.reason,
      "HERD_LIMIT=" + transition.limit,
      "HERD_EVENT_AT=" + transition.at,
      "HERD_EVENT_JSON=" +
          transition.ToJson().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
  };
}

int NotifyTimeoutSecondsFromEnvironment() {
  const char* configured = std::getenv("HERD_NOTIFY_TIMEOUT_SECONDS");
  if (configured == nullptr || *configured == '\0') return kDefaultNotifyTimeoutSeconds;
  char* end = nullptr;
  long seconds = std::strtol(configured, &end, 10);
  if (*end != '\0' || seconds < 1 || seconds > 24 * 3600) {
    spdlog::warn(
        "HERD_NOTIFY_TIMEOUT_SECONDS={} is not a whole number of seconds from 1 to 86400; "
        "using {}",
        configured, kDefaultNotifyTimeoutSeconds);
    return kDefaultNotifyTimeoutSeconds;
  }
  return static_cast<int>(seconds);
}

int StartNotifyHooks(const std::vector<registry::AgentTransition>& transitions) {
  int started = 0;
  std::string timeout = std::to_string(NotifyTimeoutSecondsFromEnvironment());
  for (const registry::AgentTransition& transition : transitions) {
    std::string command = CommandFor(transition);
    if (command.empty()) continue;
    Result<pid_t> runner =
        Spawn({HerdBinaryPath(), "notify-hook", "--timeout", timeout, "--", command},
              MergedEnvironment(NotifyEnvironment(transition)), false);
    if (!runner.ok()) {
      spdlog::warn("notification hook for {} of {} not run: {}", transition.agent_id,
                   transition.task_id, runner.status().ToString());
      continue;
    }
    // The runner detaches at once: this only reaps a process that has exited.
    int ignored = 0;
    while (waitpid(*runner, &ignored, 0) < 0 && errno == EINTR) {
    }
    ++started;
  }
  return started;
}

void InstallNotifyHook() {
  registry::SetTransitionObserver([](const std::vector<registry::AgentTransition>& transitions) {
    StartNotifyHooks(transitions);
  });
}

namespace {
std::mutex queued_mutex;
std::vector<registry::AgentTransition> queued;
}  // namespace

void QueueNotifyHooks() {
  registry::SetTransitionObserver([](const std::vector<registry::AgentTransition>& transitions) {
    std::lock_guard<std::mutex> guard(queued_mutex);
    queued.insert(queued.end(), transitions.begin(), transitions.end());
  });
}

int StartQueuedNotifyHooks() {
  std::vector<registry::AgentTransition> taken;
  {
    std::lock_guard<std::mutex> guard(queued_mutex);
    taken.swap(queued);
  }
  return StartNotifyHooks(taken);
}

int RunNotifyHook(int timeout_seconds, const std::string& command) {
  pid_t detached = fork();  // this process is single-threaded: it has just been exec'd
  if (detached < 0) {
    spdlog::warn("notification hook not run: cannot fork: {}", std::strerror(errno));
    return 1;
  }
  if (detached > 0) return 0;
  setsid();
  std::string event = std::getenv("HERD_EVENT") ? std::getenv("HERD_EVENT") : "?";
  std::string agent = std::getenv("HERD_AGENT_ID") ? std::getenv("HERD_AGENT_ID") : "?";
  Result<pid_t> hook = Spawn({"/bin/sh", "-c", command}, MergedEnvironment({}), /*own_group=*/true);
  if (!hook.ok()) {
    spdlog::warn("notification hook for {} ({}) not run: {}", agent, event,
                 hook.status().ToString());
    _exit(1);
  }
  int wait_status = 0;
  if (!ReapWithin(*hook, std::chrono::seconds(timeout_seconds), &wait_status)) {
    kill(-*hook, SIGKILL);
    while (waitpid(*hook, &wait_status, 0) < 0 && errno == EINTR) {
    }
    spdlog::warn(
        "notification hook for {} ({}) still running after {} s: killed; make the command "
        "return sooner (run slow work in the background) or raise "
        "HERD_NOTIFY_TIMEOUT_SECONDS",
        agent, event, timeout_seconds);
    _exit(1);
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    spdlog::warn("notification hook for {} ({}) {}", agent, event, Describe(wait_status));
    _exit(1);
  }
  _exit(0);
}

}  // namespace herd::agents
