#include "agents/supervisor.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>

#include "agents/backend.h"
#include "agents/killer.h"
#include "agents/notify_hook.h"
#include "agents/process.h"
#include "agents/stream_events.h"
#include "registry/registries.h"
#include "registry/registry_stores.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "store/file_system.h"
#include "util/clock.h"

extern char** environ;

namespace herd::agents {
namespace {

using nlohmann::json;
using registry::RegistryStores;
using registry::Workspace;

constexpr auto kLeftoverGrace = std::chrono::seconds(1);

volatile sig_atomic_t agent_group_for_signals = 0;
int wake_pipe_read = -1;
int wake_pipe_write = -1;
// What stop requests arrived: herd's (marked with kStopRequestMark), and
// the last other signal and its sender.
volatile sig_atomic_t stop_requested_by_herd = 0;
volatile sig_atomic_t stop_signal = 0;
volatile sig_atomic_t stop_signal_sender = 0;
// Stop signals received so far (herd's, others, our own raise()).
volatile sig_atomic_t stop_signals_received = 0;
// The turn an interrupt (SIGUSR1 with the turn's number) asked to stop.
volatile sig_atomic_t interrupt_turn_requested = 0;
// The node's lifeline (supervisor.h), -1 once broken (or without one), and
// whether it broke.
int lifeline_fd = -1;
bool lifeline_broken = false;

// SIGTERM/SIGINT/SIGHUP to the supervisor are passed on to the agent's
// group at once, and wake the supervisor's loop, which then arms the
// SIGKILL deadline.
void ForwardSignal(int signal, siginfo_t* info, void*) {
  int saved_errno = errno;
  if (agent_group_for_signals > 0) kill(-agent_group_for_signals, signal);
  if (info != nullptr && info->si_code == SI_QUEUE &&
      info->si_value.sival_int == kStopRequestMark) {
    stop_requested_by_herd = 1;
  } else if (info == nullptr || info->si_pid != getpid()) {  // not our own raise()
    stop_signal = signal;
    stop_signal_sender = info != nullptr ? info->si_pid : 0;
  }
  stop_signals_received = stop_signals_received + 1;
  char byte = 1;
  ssize_t ignored = write(wake_pipe_write, &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

// SIGUSR1 with a turn number attached (a follow-up message sent with
// interrupt): stop that turn, then run the queued message. Only herd's
// queued signal counts; the loop checks the number against its turn.
void InterruptTurn(int, siginfo_t* info, void*) {
  int saved_errno = errno;
  if (info != nullptr && info->si_code == SI_QUEUE && info->si_value.sival_int > 0) {
    interrupt_turn_requested = info->si_value.sival_int;
    char byte = 1;
    ssize_t ignored = write(wake_pipe_write, &byte, 1);
    (void)ignored;
  }
  errno = saved_errno;
}

// A new turn starts with no stop asked for; a stop that lands between
// turns is still seen: its record makes RecordStart report the entry
// terminated (ConfirmTurnStart).
void ForgetStopRequests() {
  stop_requested_by_herd = 0;
  stop_signal = 0;
  stop_signal_sender = 0;
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
  int log_fd = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log_fd < 0) log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  dup2(log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  close(log_fd);
}

struct StartedAgent {
  pid_t pid = -1;
  int output_fd = -1;  // read end of the agent's stdout+stderr pipe
};

// Starts the agent; returns its pid and output pipe, or an error naming
// what failed. Uses fork+exec (the supervisor is single-threaded) so the
// child can set its process group and parent-death signal before exec.
Result<StartedAgent> StartAgent(const LaunchPlan& plan) {
  int stdin_fd = open(plan.stdin_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (stdin_fd < 0)
    return Status::FromErrno("cannot open the prompt file " + plan.stdin_path, errno);
  int output[2];
  int exec_error[2];
  if (pipe2(output, O_CLOEXEC) != 0 || pipe2(exec_error, O_CLOEXEC) != 0) {
    close(stdin_fd);
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
    for (int fd : {stdin_fd, output[0], output[1], exec_error[0], exec_error[1]}) close(fd);
    return Status::FromErrno("cannot fork", saved_errno);
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    setpgid(0, 0);  // own group, so a kill reaches the agent and its children
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != supervisor) _exit(127);
    int step = 0;
    if (dup2(stdin_fd, STDIN_FILENO) < 0) step = 1;
    if (step == 0 && dup2(output[1], STDOUT_FILENO) < 0) step = 2;
    if (step == 0 && dup2(output[1], STDERR_FILENO) < 0) step = 3;
    if (step == 0 && !plan.cwd.empty() && chdir(plan.cwd.c_str()) != 0) step = 4;
    if (step == 0) {
      // Nothing but 0-2 survives exec; the error pipe stays open until exec.
      syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
      for (int signal_number : {SIGPIPE, SIGTERM, SIGINT, SIGHUP}) signal(signal_number, SIG_DFL);
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
  close(output[1]);
  close(exec_error[1]);
  int report[2] = {0, 0};
  ssize_t got;
  do {
    got = read(exec_error[0], report, sizeof report);
  } while (got < 0 && errno == EINTR);
  close(exec_error[0]);
  if (got == static_cast<ssize_t>(sizeof report)) {
    waitpid(pid, nullptr, 0);
    close(output[0]);
    static const char* kSteps[] = {"",
                                   "redirect stdin",
                                   "redirect stdout",
                                   "redirect stderr",
                                   "enter the working directory",
                                   "execute"};
    std::string what = std::string("cannot ") + kSteps[report[0]];
    if (report[0] == 4) what += " " + plan.cwd;
    if (report[0] == 5) what += " " + plan.argv[0];
    return Status::FromErrno(what, report[1]);
  }
  fcntl(output[0], F_SETFL, O_NONBLOCK);
  return StartedAgent{pid, output[0]};  // EOF: exec succeeded and closed the pipe
}

// Stops whatever the agent left behind: every descendant of this
// supervisor (a subreaper, so orphans are ours) and the agent's group.
void StopLeftovers(pid_t agent_group) {
  const pid_t self = getpid();
  StopFigures figures = StopProcesses(
      [&] {
        std::vector<ProcessIdentity> leftovers = Descendants(self);
        if (agent_group <= 0) return leftovers;  // no agent started
        for (const ProcessIdentity& member : ProcessGroupMembers(agent_group)) {
          leftovers.push_back(member);
        }
        return leftovers;
      },
      kLeftoverGrace);
  if (figures.signalled == 0) return;  // the common case: the agent left nothing behind
  spdlog::info("stopped {} leftover process(es) of the agent, {} with SIGKILL", figures.signalled,
               figures.sigkilled);
  // Whatever a leftover started before it exited would keep the reaping
  // below waiting forever.
  for (const ProcessIdentity& process : Descendants(self)) kill(process.pid, SIGKILL);
  while (waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
  }
}

// A stop that happened, to record as the agent's termination if its entry
// is still active when the exit is recorded.
using StopReason = registry::Termination;

std::string SignalName(int signal_number) {
  switch (signal_number) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
  }
  return "signal " + std::to_string(signal_number);
}

// Runs `record` (one registry transaction) until it succeeds or fails for
// another reason than an unwritable registry. On the first such failure it
// runs `before_waiting`, then retries with exponential backoff for at most
// kExitRecordPatience (supervisor.h). Returns the last status.
Status RecordPatiently(const std::function<Status()>& record,
                       const std::function<void()>& before_waiting) {
  Status status = record();
  if (status.ok() || !store::IsUnwritable(status)) return status;
  spdlog::error("could not record the agent's exit: {}; retrying for up to {} minutes",
                status.ToString(), kExitRecordPatience.count());
  before_waiting();
  auto give_up_at = MonotonicClock::now() + kExitRecordPatience;
  std::chrono::milliseconds delay = kFirstExitRecordRetry;
  int attempts = 1;
  while (!status.ok() && store::IsUnwritable(status)) {
    auto now = MonotonicClock::now();
    if (now >= give_up_at) {
      spdlog::error(
          "gave up recording the agent's exit after {} attempts over {} minutes: {}. Its entry "
          "still reads active; once the registry can be written, `herd doctor --repair` marks it "
          "error \"process lost\"",
          attempts, kExitRecordPatience.count(), status.ToString());
      return status;
    }
    // Nothing announces free space: wait for the backoff, or for another
    // stop request (the wake pipe), which retries at once.
    auto wait = std::min<MonotonicClock::duration>(delay, give_up_at - now);
    pollfd wake{wake_pipe_read, POLLIN, 0};
    int timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    if (poll(&wake, wake_pipe_read >= 0 ? 1 : 0, timeout_ms) > 0) {
      char drained[64];
      while (read(wake_pipe_read, drained, sizeof drained) > 0) {
      }
    }
    delay = std::min<std::chrono::milliseconds>(delay * 2, kLongestExitRecordRetry);
    status = record();
    ++attempts;
  }
  if (status.ok()) spdlog::info("recorded the agent's exit at attempt {}", attempts);
  return status;
}

// Everything the supervisor watches while its agent runs.
class AgentWatch {
 public:
  AgentWatch(const SupervisorArgs& args, const registry::Registry& registry, const LaunchPlan& plan,
             const StartedAgent& agent, int turn, sig_atomic_t stop_signals_before_turn,
             const json& thread_usage_before)
      : args_(args),
        registry_(registry),
        plan_(plan),
        agent_(agent),
        turn_(turn),
        tracker_(plan.backend, thread_usage_before),
        handled_stop_signals_(stop_signals_before_turn) {
    log_fd_ =
        open(plan.log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    agent_pidfd_ = OpenPidfd(IdentityOf(agent.pid));
    started_ = MonotonicClock::now();
    last_output_ = started_;
  }

  ~AgentWatch() {
    for (int fd : {log_fd_, agent_pidfd_, agent_.output_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  // Runs until the agent exits; returns its wait status (-1 if lost).
  int Run() {
    for (;;) {
      ReapChildren();
      if (exited_) break;
      std::vector<pollfd> waiting = {{wake_pipe_read, POLLIN, 0},
                                     {agent_pidfd_, POLLIN, 0},
                                     {agent_.output_fd, POLLIN, 0},
                                     {lifeline_fd, POLLIN, 0}};
      int ready = poll(waiting.data(), waiting.size(), MillisecondsToNextDeadline());
      if (ready < 0 && errno != EINTR) {
        spdlog::error("poll failed: {}", std::strerror(errno));
        return -1;
      }
      if (waiting[0].revents) OnWake();
      if (waiting[2].revents) PumpOutput();
      if (waiting[3].revents) OnLifelineBroken();
      CheckDeadlines();
      if (agent_pidfd_ < 0 || waiting[1].revents) ReapChildren();
      if (exited_) break;
    }
    PumpOutput();  // whatever the agent wrote last; never wait for EOF
    CommitOutput();
    return wait_status_;
  }

  const UsageTracker& tracker() const { return tracker_; }

  // Why the agent was asked to stop, if it was: recorded as its termination
  // when its entry is still active at exit, because the stop's own record
  // failed (a full disk) or nobody recorded one (a signal from outside herd).
  std::optional<StopReason> StopToRecord() const {
    if (timeout_stop_) return timeout_stop_;
    if (lifeline_broken) {
      return StopReason{"stopped: its node's daemon (herd node) ended or lost its lease",
                        std::nullopt, std::nullopt};
    }
    if (stop_requested_by_herd) {
      return StopReason{
          "stopped by herd kill; the reason could not be recorded (the registry "
          "could not be written when the kill was asked for)",
          std::nullopt, std::nullopt};
    }
    if (stop_signal != 0) {
      std::string sender = stop_signal_sender > 0
                               ? " by process " + std::to_string(stop_signal_sender)
                               : std::string();
      return StopReason{
          "stopped on request: " + SignalName(stop_signal) + " sent to its supervisor" + sender,
          std::nullopt, std::nullopt};
    }
    if (interrupted_) {
      StopReason interrupt{"interrupted by a follow-up message (sent with interrupt)", std::nullopt,
                           std::nullopt};
      interrupt.interrupts_turn = true;
      return interrupt;
    }
    return std::nullopt;
  }

  // Commits the running usage; stops every active agent of the task if a
  // budget is now passed.
  void CommitUsage() {
    last_usage_commit_ = MonotonicClock::now();
    usage_dirty_ = false;
    Result<registry::EndOutcome> saved =
        registry_.RecordUsage(args_.task_id, args_.agent_id, tracker_.Usage(), KillGraceMs());
    if (!saved.ok()) {
      // A budget stop is asked for only once its reason is recorded: the
      // next interval tries again.
      spdlog::warn("usage not recorded, retrying: {}", saved.status().ToString());
      usage_dirty_ = true;
      return;
    }
    if (!saved->to_stop.empty()) {
      spdlog::warn("budget passed: stopping {} agent(s)", saved->to_stop.size());
      RequestStop(saved->to_stop);
    }
  }

 private:
  static int KillGraceMs() { return static_cast<int>(kDefaultKillGrace.count()); }

  int MillisecondsToNextDeadline() const {
    auto now = MonotonicClock::now();
    std::optional<MonotonicClock::time_point> next;
    auto consider = [&](MonotonicClock::time_point when) {
      if (!next || when < *next) next = when;
    };
    if (kill_deadline_) consider(*kill_deadline_);
    if (!stopping_ && plan_.timeout_seconds > 0) {
      consider(started_ + std::chrono::seconds(plan_.timeout_seconds));
    }
    if (!stopping_ && plan_.idle_timeout_seconds > 0) {
      consider(last_output_ + std::chrono::seconds(plan_.idle_timeout_seconds));
    }
    if (usage_dirty_) consider(last_usage_commit_ + kUsageCommitInterval);
    if (!output_pending_.empty()) consider(last_output_commit_ + kOutputCommitInterval);
    if (!next) return -1;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next - now).count() + 1;
    return static_cast<int>(std::max<long long>(0, wait));
  }

  // Copies new output to the log and feeds complete lines to the tracker.
  void PumpOutput() {
    if (agent_.output_fd < 0) return;
    char buffer[65536];
    for (;;) {
      ssize_t got = read(agent_.output_fd, buffer, sizeof buffer);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return;  // EAGAIN: nothing more for now
      if (got == 0) {       // every writer closed its end
        close(agent_.output_fd);
        agent_.output_fd = -1;
        FeedLine(partial_line_);
        partial_line_.clear();
        return;
      }
      last_output_ = MonotonicClock::now();
      WriteToLog(buffer, static_cast<size_t>(got));
      KeepForRegistry(buffer, static_cast<size_t>(got));
      if (plan_.stream_json) SplitLines(std::string_view(buffer, static_cast<size_t>(got)));
    }
  }

  void WriteToLog(const char* data, size_t size) {
    while (size > 0 && log_fd_ >= 0) {
      ssize_t written = write(log_fd_, data, size);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) {
        spdlog::error("cannot write the agent log: {}", std::strerror(errno));
        return;
      }
      data += written;
      size -= static_cast<size_t>(written);
    }
  }

  // The registry keeps the output's tail (Registry::AppendOutput) for
  // readers elsewhere: appended in batches, never per read.
  void KeepForRegistry(const char* data, size_t size) {
    output_pending_.append(data, size);
    if (output_pending_.size() > registry::Registry::kOutputTailBytes) {
      output_pending_.erase(0, output_pending_.size() - registry::Registry::kOutputTailBytes);
    }
    if (output_pending_.size() >= kOutputBatchBytes) CommitOutput();
  }

  void CommitOutput() {
    last_output_commit_ = MonotonicClock::now();
    if (output_pending_.empty()) return;
    Status kept = registry_.AppendOutput(args_.task_id, args_.agent_id, output_pending_);
    // The log file has it all; the registry's tail is for other machines.
    if (!kept.ok()) spdlog::warn("output tail not kept in the registry: {}", kept.ToString());
    output_pending_.clear();
  }

  void SplitLines(std::string_view data) {
    size_t start = 0;
    for (size_t newline; (newline = data.find('\n', start)) != std::string_view::npos;
         start = newline + 1) {
      if (partial_line_.empty()) {
        FeedLine(data.substr(start, newline - start));
      } else {
        partial_line_.append(data.substr(start, newline - start));
        FeedLine(partial_line_);
        partial_line_.clear();
      }
    }
    // Keep an unfinished line, but never let one grow without bound.
    if (partial_line_.size() + (data.size() - start) <= kMaxTrackedLine) {
      partial_line_.append(data.substr(start));
    } else {
      partial_line_.clear();
    }
  }

  void FeedLine(std::string_view line) {
    if (!line.empty() && tracker_.Feed(line)) usage_dirty_ = true;
  }

  void CheckDeadlines() {
    auto now = MonotonicClock::now();
    if (kill_deadline_ && now >= *kill_deadline_) {
      spdlog::warn("agent still running after the grace period: SIGKILL");
      KillEverything(SIGKILL);
      kill_deadline_.reset();
    }
    if (!stopping_ && plan_.timeout_seconds > 0 &&
        now >= started_ + std::chrono::seconds(plan_.timeout_seconds)) {
      StopForTimeout("agent_timeout_seconds", plan_.timeout_seconds,
                     std::chrono::duration<double>(now - started_).count(), "ran for");
    }
    if (!stopping_ && plan_.idle_timeout_seconds > 0 &&
        now >= last_output_ + std::chrono::seconds(plan_.idle_timeout_seconds)) {
      StopForTimeout("agent_idle_timeout_seconds", plan_.idle_timeout_seconds,
                     std::chrono::duration<double>(now - last_output_).count(),
                     "printed nothing for");
    }
    if (usage_dirty_ && now >= last_usage_commit_ + kUsageCommitInterval) CommitUsage();
    if (!output_pending_.empty() && now >= last_output_commit_ + kOutputCommitInterval) {
      CommitOutput();
    }
  }

  void StopForTimeout(const char* limit, int limit_seconds, double used_seconds, const char* what) {
    char used[32];
    std::snprintf(used, sizeof used, "%.1f", used_seconds);
    std::string reason = std::string("stopped by herd: ") + what + " " + used + " s (" + limit +
                         " is " + std::to_string(limit_seconds) + ")";
    spdlog::warn("{}", reason);
    registry::LimitHit figures;
    figures.limit = limit;
    figures.limit_value = limit_seconds;
    figures.used = used_seconds;
    timeout_stop_ = StopReason{reason, figures, KillGraceMs()};
    Result<registry::TerminationOutcome> marked =
        registry_.Terminate(args_.task_id, args_.agent_id, *timeout_stop_);
    if (!marked.ok()) {
      spdlog::error("could not record the timeout: {}", marked.status().ToString());
    }
    BeginStop(std::chrono::milliseconds(KillGraceMs()));
  }

  // A stop signal (SIGTERM, forwarded by the signal handler) starts a
  // stop: the agent gets the entry's grace period, then SIGKILL. An
  // interrupt of this turn stops it with the default grace.
  void OnWake() {
    char drained[64];
    while (read(wake_pipe_read, drained, sizeof drained) > 0) {
    }
    if (interrupt_turn_requested == turn_ && !interrupted_ && !stopping_) {
      spdlog::info("turn {} interrupted by a follow-up message", turn_);
      interrupted_ = true;
      BeginStop(std::chrono::milliseconds(KillGraceMs()));
    }
    if (stop_signals_received == handled_stop_signals_) return;
    handled_stop_signals_ = stop_signals_received;
    int grace_ms = KillGraceMs();
    Result<registry::SharedTask> task = registry_.ReadTask(args_.task_id);
    if (task.ok()) {
      if (const registry::AgentRecord* entry = (*task)->task.FindAgent(args_.agent_id)) {
        grace_ms = entry->kill_grace_ms.value_or(grace_ms);
      }
    }
    spdlog::info("stop requested: SIGTERM sent, SIGKILL in {} ms", grace_ms);
    BeginStop(std::chrono::milliseconds(grace_ms));
  }

  // The node's daemon is gone (the pipe's only writer closed it): stop.
  void OnLifelineBroken() {
    close(lifeline_fd);
    lifeline_fd = -1;
    lifeline_broken = true;
    spdlog::warn("the node's daemon is gone: stopping the agent, SIGKILL in {} ms",
                 std::chrono::milliseconds(kLifelineStopGrace).count());
    if (stopping_ && kill_deadline_) {
      kill_deadline_ = std::min(*kill_deadline_, MonotonicClock::now() + kLifelineStopGrace);
    } else {
      BeginStop(kLifelineStopGrace);
    }
  }

  void BeginStop(std::chrono::milliseconds grace) {
    if (stopping_) return;
    stopping_ = true;
    KillEverything(SIGTERM);
    kill_deadline_ = MonotonicClock::now() + grace;
  }

  // The agent's group and every descendant of this supervisor.
  void KillEverything(int signal_number) {
    kill(-agent_.pid, signal_number);
    for (const ProcessIdentity& process : Descendants(getpid())) {
      int pidfd = OpenPidfd(process);
      SignalPidfd(pidfd, signal_number);
      if (pidfd >= 0) close(pidfd);
    }
  }

  // Reaps every exited child; notes the agent's own exit.
  void ReapChildren() {
    for (;;) {
      int status = 0;
      pid_t reaped = waitpid(-1, &status, WNOHANG);
      if (reaped < 0 && errno == EINTR) continue;
      if (reaped <= 0) {
        if (reaped < 0 && errno == ECHILD && !exited_) {
          spdlog::error("lost track of the agent process");
          exited_ = true;
          wait_status_ = -1;
        }
        return;
      }
      if (reaped == agent_.pid) {
        exited_ = true;
        wait_status_ = status;
      }
    }
  }

  static constexpr auto kUsageCommitInterval = std::chrono::seconds(1);
  static constexpr auto kOutputCommitInterval = std::chrono::seconds(1);
  static constexpr size_t kOutputBatchBytes = 64 * 1024;
  static constexpr size_t kMaxTrackedLine = 4 * 1024 * 1024;

  const SupervisorArgs& args_;
  const registry::Registry& registry_;
  const LaunchPlan& plan_;
  StartedAgent agent_;
  const int turn_;
  UsageTracker tracker_;
  // Stop signals already acted on; those from before the turn began were
  // the previous turn's.
  sig_atomic_t handled_stop_signals_;
  bool interrupted_ = false;
  int log_fd_ = -1;
  std::string output_pending_;  // not yet appended to the registry's tail
  MonotonicClock::time_point last_output_commit_ = MonotonicClock::now();
  int agent_pidfd_ = -1;
  MonotonicClock::time_point started_;
  MonotonicClock::time_point last_output_;
  MonotonicClock::time_point last_usage_commit_{};
  bool usage_dirty_ = false;
  bool stopping_ = false;
  std::optional<MonotonicClock::time_point> kill_deadline_;
  std::optional<StopReason> timeout_stop_;
  std::string partial_line_;
  bool exited_ = false;
  int wait_status_ = 0;
};

// Tells the deployer on the handshake pipe why the start failed, and exits.
[[noreturn]] void FailStart(int handshake_fd, const Status& status) {
  spdlog::error("{}", status.ToString());
  WriteLine(handshake_fd, "failed " + status.message());
  _exit(1);
}

// The launch plan the deployer wrote; exits through FailStart without one.
LaunchPlan ReadLaunchPlanOrFail(const SupervisorArgs& args, const Workspace& workspace) {
  store::FileSystem* fs = store::FileSystem::Default();
  Result<std::string> plan_text =
      fs->ReadFile(workspace.LaunchPlanPath(args.task_id, args.agent_id));
  if (!plan_text.ok()) FailStart(args.handshake_fd, plan_text.status());
  Result<LaunchPlan> plan = LaunchPlanFromJson(json::parse(*plan_text, nullptr, false));
  if (!plan.ok()) FailStart(args.handshake_fd, plan.status());
  return std::move(plan).value();
}

// Records the started agent's pid. A first turn then answers the
// deployer's handshake (`handshake_fd`) and closes it; an agent that cannot
// be recorded is stopped at once (and the start fails). A later turn
// (handshake_fd -1) whose start cannot be recorded is stopped, and its end
// is recorded as usual. One killed while it was starting is asked to stop.
void ConfirmStart(const SupervisorArgs& args, const registry::Registry& registry,
                  const StartedAgent& started, int handshake_fd) {
  ProcessIdentity agent = IdentityOf(started.pid);
  ProcessIdentity supervisor = IdentityOf(getpid());
  Result<registry::AgentRecord> recorded =
      registry.RecordStart(args.task_id, args.agent_id, agent, supervisor);
  if (!recorded.ok() && handshake_fd < 0) {
    spdlog::error("the turn started but could not be recorded, so it was stopped: {}",
                  recorded.status().ToString());
    kill(-started.pid, SIGKILL);
    return;
  }
  if (!recorded.ok()) {
    kill(-started.pid, SIGKILL);
    waitpid(started.pid, nullptr, 0);
    FailStart(handshake_fd, recorded.status().WithContext(
                                "the agent started but could not be recorded, so it was stopped"));
  }
  bool killed_while_starting = registry::IsTerminalStatus(recorded->status);
  if (handshake_fd >= 0) {
    WriteLine(handshake_fd,
              "started " + std::to_string(agent.pid) + " " + std::to_string(agent.start_time));
    close(handshake_fd);
  }
  if (killed_while_starting) {
    spdlog::info("agent was terminated while starting; stopping it");
    raise(SIGTERM);
  }
}

// How the agent ended, from its wait status (-1: lost) and, for a
// stream-json backend, what its output reported.
registry::ExitRecord ExitRecordOf(int wait_status, const LaunchPlan& plan,
                                  const UsageTracker& tracker) {
  registry::ExitRecord exit_record;
  exit_record.ended_at = NowIso8601();
  if (wait_status != -1 && WIFEXITED(wait_status)) exit_record.exit_code = WEXITSTATUS(wait_status);
  if (wait_status != -1 && WIFSIGNALED(wait_status))
    exit_record.exit_signal = WTERMSIG(wait_status);
  if (wait_status == -1) exit_record.error = "the supervisor lost track of the agent process";
  if (plan.stream_json) {
    exit_record.result = tracker.Result();
    exit_record.usage = tracker.Usage();
    exit_record.session_id = tracker.SessionId();
    std::optional<std::string> failure = tracker.ReportedFailure();
    if (failure && exit_record.error.empty()) {
      exit_record.error =
          "the agent CLI reported an error" + (failure->empty() ? std::string() : ": " + *failure);
    }
  }
  return exit_record;
}

// Records the stop that nobody recorded (if the entry is still active),
// the exit, and asks to stop the agents whose budget the exit's figures
// passed; stops the agent's leftovers (agent_group > 0: its group too),
// before waiting for the registry if it cannot be written. Returns whether
// the exit was recorded; `next_turn` is the turn a queued message began.
bool RecordExitAndStopLeftovers(const SupervisorArgs& args, const registry::Registry& registry,
                                const registry::ExitRecord& exit_record,
                                const std::optional<StopReason>& stop, pid_t agent_group,
                                std::optional<registry::NextTurn>* next_turn) {
  std::vector<registry::AgentRecord> to_stop;
  auto record = [&]() -> Status {
    Result<registry::EndOutcome> ended =
        registry.RecordEnd(args.task_id, args.agent_id, exit_record, stop,
                           static_cast<int>(kDefaultKillGrace.count()));
    if (!ended.ok()) return ended.status();
    to_stop = ended->to_stop;
    *next_turn = ended->next_turn;
    return Status::Ok();
  };
  bool leftovers_stopped = false;
  auto stop_leftovers = [&] {
    agent_group_for_signals = 0;
    StopLeftovers(agent_group);
    leftovers_stopped = true;
  };
  // While the exit cannot be recorded nothing of the agent may run on.
  Status saved = RecordPatiently(record, stop_leftovers);
  bool exit_recorded = saved.ok();
  if (!saved.ok()) spdlog::error("could not record the agent's exit: {}", saved.ToString());
  if (exit_recorded && !to_stop.empty()) RequestStop(to_stop);

  if (!leftovers_stopped) stop_leftovers();
  return exit_recorded;
}

// A turn to run: its number and plan (or why it has none).
struct TurnToRun {
  int number = 1;
  Result<LaunchPlan> plan = Status::Ok();
};

// The turn this supervisor was started for: the first (the deploy), or a
// later one a follow-up message began (--turn), which must be waiting to
// start. Fails the start (FailStart) otherwise.
// The file holding a follow-up message's text on this machine: its own
// text_file, or, for a message to an agent on another machine than its
// sender's (the text is in the record), a file of this workspace, written
// now.
Result<std::string> MessageTextFileHere(const Workspace& workspace, const std::string& task_id,
                                        const std::string& agent_id,
                                        const registry::AgentMessage& message) {
  if (message.text.empty()) return message.text_file;
  std::string path = workspace.MessagePath(task_id, agent_id, message.id);
  HERD_RETURN_IF_ERROR(registry::MakeDirectories(path.substr(0, path.rfind('/'))));
  HERD_RETURN_IF_ERROR(store::ReplaceFileDurably(store::FileSystem::Default(), path, message.text));
  return path;
}

// PlanFollowUpTurn for the message of turn `turn`.
Result<LaunchPlan> PlanMessageTurn(const Workspace& workspace, const SupervisorArgs& args,
                                   const LaunchPlan& first_plan, const std::string& session_id,
                                   int turn, const registry::AgentMessage& message) {
  HERD_ASSIGN_OR_RETURN(std::string text_file,
                        MessageTextFileHere(workspace, args.task_id, args.agent_id, message));
  return PlanFollowUpTurn(first_plan, session_id, turn, text_file);
}

TurnToRun FirstTurnOrFail(const SupervisorArgs& args, const registry::Registry& registry,
                          const LaunchPlan& first_plan) {
  if (args.turn <= 1) return TurnToRun{1, first_plan};
  Result<registry::SharedTask> task = registry.ReadTask(args.task_id);
  if (!task.ok()) FailStart(args.handshake_fd, task.status());
  const registry::AgentRecord* agent = (*task)->task.FindAgent(args.agent_id);
  if (agent == nullptr || agent->turn != args.turn || agent->phase != "starting" ||
      !agent->turn_message) {
    FailStart(args.handshake_fd, Status::Refused("turn " + std::to_string(args.turn) + " of " +
                                                 args.agent_id + " is not waiting to start"));
  }
  Result<LaunchPlan> plan = PlanMessageTurn(Workspace(args.workspace_base), args, first_plan,
                                            agent->session_id, args.turn, *agent->turn_message);
  if (!plan.ok()) FailStart(args.handshake_fd, plan.status());
  // The agent had ended: its port may have changed hands meanwhile
  // (Registry::SendMessage), so the record says which it holds now.
  SetHerdPort(&*plan, agent->port);
  return TurnToRun{args.turn, std::move(plan)};
}

// What a resumed codex thread's running usage already counts when turn
// `turn` begins: the usage recorded for the agent's earlier turns (each
// turn's result's figures where it has them, else its running usage). Null
// for a first turn or another backend, or if the registry cannot be read
// (the turn is then charged the thread's whole usage, logged).
json ThreadUsageBefore(const registry::Registry& registry, const SupervisorArgs& args,
                       const LaunchPlan& plan, int turn) {
  if (plan.backend != "codex" || turn <= 1) return nullptr;
  Result<registry::SharedTask> task = registry.ReadTask(args.task_id);
  const registry::AgentRecord* agent = task.ok() ? (*task)->task.FindAgent(args.agent_id) : nullptr;
  if (agent == nullptr) {
    spdlog::warn(
        "turn {}: the earlier turns' usage is unknown ({}), so this turn is charged the "
        "thread's whole usage",
        turn, task.ok() ? "the agent is not in the registry" : task.status().ToString());
    return nullptr;
  }
  json before = {{"input_tokens", 0}, {"cache_read_input_tokens", 0}, {"output_tokens", 0}};
  for (const registry::TurnRecord& earlier : agent->turns) {
    if (earlier.number >= turn) continue;
    const json& usage = earlier.result.is_object() && earlier.result.contains("usage")
                            ? earlier.result["usage"]
                            : earlier.usage;
    if (!usage.is_object()) continue;
    for (auto& [key, total] : before.items()) {
      auto figure = usage.find(key);
      if (figure != usage.end() && figure->is_number_integer()) {
        total = total.get<long long>() + figure->get<long long>();
      }
    }
  }
  return before;
}

// Runs one turn: starts its process, confirms the start (answering the
// handshake when `handshake_fd` is open, then closing it), watches it and
// records its end. Returns the turn a queued message began, if any.
std::optional<registry::NextTurn> RunTurn(const SupervisorArgs& args, const Workspace& workspace,
                                          const RegistryStores& stores,
                                          const registry::Registry& registry, const TurnToRun& turn,
                                          int* handshake_fd, bool* exit_recorded) {
  std::optional<registry::NextTurn> next;
  // A stop from here on is this turn's: one during the start (ConfirmStart
  // raises SIGTERM for an agent killed while starting) too.
  sig_atomic_t stop_signals_before_turn = stop_signals_received;
  Result<StartedAgent> started =
      turn.plan.ok() ? StartAgent(*turn.plan) : Result<StartedAgent>(turn.plan.status());
  if (!started.ok()) {
    if (*handshake_fd >= 0) FailStart(*handshake_fd, started.status());
    // A queued turn that cannot start ends at once, saying why.
    spdlog::error("turn {} did not start: {}", turn.number, started.status().ToString());
    registry::ExitRecord not_started;
    not_started.ended_at = NowIso8601();
    not_started.error =
        "turn " + std::to_string(turn.number) + " did not start: " + started.status().message();
    *exit_recorded =
        RecordExitAndStopLeftovers(args, registry, not_started, std::nullopt, 0, &next);
    return next;
  }
  agent_group_for_signals = started->pid;
  ConfirmStart(args, registry, *started, *handshake_fd);
  *handshake_fd = -1;

  AgentWatch watch(args, registry, *turn.plan, *started, turn.number, stop_signals_before_turn,
                   ThreadUsageBefore(registry, args, *turn.plan, turn.number));
  int wait_status = watch.Run();
  registry::ExitRecord exit_record = ExitRecordOf(wait_status, *turn.plan, watch.tracker());
  spdlog::info("turn {} exited: code {} signal {}", turn.number, exit_record.exit_code.value_or(-1),
               exit_record.exit_signal.value_or(0));
  *exit_recorded = RecordExitAndStopLeftovers(args, registry, exit_record, watch.StopToRecord(),
                                              started->pid, &next);
  return next;
}

[[noreturn]] void Supervise(const SupervisorArgs& args) {
  Workspace workspace(args.workspace_base);
  RegistryStores stores;
  // The registry the deploying herd used: HERD_REGISTRY, inherited.
  if (Status selected = registry::SelectRegistryFromEnvironment(workspace.base(), &stores);
      !selected.ok()) {
    WriteLine(args.handshake_fd, "failed " + selected.message());
    _exit(1);
  }
  // The deploy checked the layout; a link that appeared since is refused
  // before anything is written through it.
  if (Status layout = workspace.CheckLayout(args.task_id); !layout.ok()) {
    WriteLine(args.handshake_fd, "failed " + layout.message());
    _exit(1);
  }
  RedirectStandardStreams(workspace.SupervisorLogPath(args.task_id, args.agent_id));
  spdlog::info("supervisor {} for agent {} of task {} (turn {})", getpid(), args.agent_id,
               args.task_id, std::max(args.turn, 1));
  // Hooks run after the leftovers are stopped, or they would be stopped too.
  QueueNotifyHooks();

  LaunchPlan first_plan = ReadLaunchPlanOrFail(args, workspace);
  std::unique_ptr<const registry::Registry> opened = registry::RegistryFor(stores, workspace);
  const registry::Registry& registry = *opened;
  TurnToRun turn = FirstTurnOrFail(args, registry, first_plan);
  int handshake_fd = args.handshake_fd;
  bool exit_recorded = false;
  for (;;) {
    std::optional<registry::NextTurn> next =
        RunTurn(args, workspace, stores, registry, turn, &handshake_fd, &exit_recorded);
    prctl(PR_SET_CHILD_SUBREAPER, 0);  // the hooks' runners are not the agent's leftovers
    StartQueuedNotifyHooks();
    if (!next) break;
    // The follow-up runs under this supervisor, as the turns before it.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    ForgetStopRequests();
    spdlog::info("turn {}: follow-up message {}", next->number, next->message.id);
    turn = TurnToRun{next->number, PlanMessageTurn(workspace, args, first_plan, next->session_id,
                                                   next->number, next->message)};
  }
  spdlog::info("supervisor done");
  _exit(exit_recorded ? 0 : 1);
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
  if (args.lifeline_fd >= 0 && fcntl(args.lifeline_fd, F_SETFD, FD_CLOEXEC) == 0) {
    lifeline_fd = args.lifeline_fd;
  }
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) == 0) {
    wake_pipe_read = wake[0];
    wake_pipe_write = wake[1];
  }
  struct sigaction forward {};
  forward.sa_sigaction = ForwardSignal;
  sigemptyset(&forward.sa_mask);
  forward.sa_flags = SA_RESTART | SA_SIGINFO;
  sigaction(SIGTERM, &forward, nullptr);
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGHUP, &forward, nullptr);
  struct sigaction interrupt {};
  interrupt.sa_sigaction = InterruptTurn;
  sigemptyset(&interrupt.sa_mask);
  interrupt.sa_flags = SA_RESTART | SA_SIGINFO;
  sigaction(SIGUSR1, &interrupt, nullptr);
  Supervise(args);
}

}  // namespace herd::agents
