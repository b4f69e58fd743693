#include "agents/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "registry/ids.h"
#include "registry/workspace.h"
#include "util/clock.h"

extern char** environ;

namespace herd::agents {
namespace {

constexpr auto kAfterSigkill = std::chrono::seconds(5);

// The whole of a small /proc/<pid>/<name> file ("" if unreadable).
std::string ReadProcFile(pid_t pid, const std::string& name) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string contents;
  char buffer[4096];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return contents;
}

// The NUL-terminated strings of /proc/<pid>/cmdline or /proc/<pid>/environ.
std::vector<std::string> ReadProcStrings(pid_t pid, const char* name) {
  std::string raw = ReadProcFile(pid, name);
  std::vector<std::string> strings;
  size_t begin = 0;
  while (begin < raw.size()) {
    size_t end = raw.find('\0', begin);
    if (end == std::string::npos) end = raw.size();
    strings.emplace_back(raw, begin, end - begin);
    begin = end + 1;
  }
  return strings;
}

// Every pid in /proc, this process included.
std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return pids;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(proc);
  return pids;
}

struct StatFields {
  char state = 0;
  pid_t parent = 0;
  pid_t group = 0;
  unsigned long long start_time = 0;
};

bool ReadStat(pid_t pid, StatFields* fields) {
  std::string stat = ReadProcFile(pid, "stat");
  // The command name (field 2) may contain spaces and ')': parse after the last ')'.
  size_t after_name = stat.rfind(')');
  if (after_name == std::string::npos || after_name + 2 >= stat.size()) return false;
  // Fields from 3: state ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime stime cutime cstime priority nice num_threads
  // itrealvalue starttime
  unsigned long long values[20] = {};
  char state = 0;
  int parsed = std::sscanf(stat.c_str() + after_name + 2,
                           "%c %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
                           "%llu %llu %llu %llu %llu %llu",
                           &state, &values[0], &values[1], &values[2], &values[3], &values[4],
                           &values[5], &values[6], &values[7], &values[8], &values[9], &values[10],
                           &values[11], &values[12], &values[13], &values[14], &values[15],
                           &values[16], &values[17], &values[18]);
  if (parsed < 20) return false;
  fields->state = state;
  fields->parent = static_cast<pid_t>(values[0]);
  fields->group = static_cast<pid_t>(values[1]);
  fields->start_time = values[18];
  return true;
}

bool IsLiveState(char state) {
  return state != 'Z' && state != 'X' && state != 0;
}

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::string tasks_path = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(tasks_path.c_str());
  if (tasks == nullptr) return children;
  while (dirent* task = readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    std::string list = ReadProcFile(pid, std::string("task/") + task->d_name + "/children");
    std::istringstream pids(list);
    pid_t child;
    while (pids >> child) children.push_back(child);
  }
  closedir(tasks);
  return children;
}

// Pidfds for the processes among `candidates` that still exist as
// identified and whose pid is not in `known` (which then gets it): each pid
// once, never this process. The caller closes them.
std::vector<int> OpenNew(const std::vector<ProcessIdentity>& candidates, std::set<int>* known) {
  std::vector<int> pidfds;
  for (const ProcessIdentity& candidate : candidates) {
    if (candidate.pid == getpid() || known->count(candidate.pid)) continue;
    int pidfd = OpenPidfd(candidate);
    if (pidfd < 0) continue;
    known->insert(candidate.pid);
    pidfds.push_back(pidfd);
  }
  return pidfds;
}

}  // namespace

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

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

std::string HerdBinaryPath() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) return "herd";
  return std::string(path, static_cast<size_t>(length));
}

unsigned long long ProcessStartTime(pid_t pid) {
  StatFields fields;
  if (pid <= 0 || !ReadStat(pid, &fields)) return 0;
  return fields.start_time;
}

ProcessIdentity IdentityOf(pid_t pid) {
  ProcessIdentity identity;
  identity.pid = pid;
  identity.start_time = ProcessStartTime(pid);
  return identity;
}

bool IsAlive(const ProcessIdentity& identity) {
  StatFields fields;
  if (identity.pid <= 0 || !ReadStat(identity.pid, &fields)) return false;
  return fields.start_time == identity.start_time && IsLiveState(fields.state);
}

std::vector<ProcessIdentity> ProcessGroupMembers(pid_t pgid) {
  if (pgid <= 1) return {};
  return ProcessTable::Read().GroupMembers(pgid);
}

ProcessTable ProcessTable::Read() {
  ProcessTable table;
  for (pid_t pid : AllPids()) {
    StatFields fields;
    if (ReadStat(pid, &fields) && IsLiveState(fields.state)) {
      table.by_group_[fields.group].push_back({pid, fields.start_time});
    }
  }
  return table;
}

std::vector<ProcessIdentity> ProcessTable::GroupMembers(pid_t pgid) const {
  auto members = by_group_.find(pgid);
  if (pgid <= 1 || members == by_group_.end()) return {};
  return members->second;
}

std::vector<ProcessIdentity> ProcessesMarkedFor(const std::string& task_id,
                                                const std::string& agent_id) {
  std::vector<ProcessIdentity> marked;
  const std::string task_mark = "HERD_TASK_ID=" + task_id;
  const std::string agent_mark = "HERD_AGENT_ID=" + agent_id;
  for (pid_t pid : AllPids()) {
    if (pid == getpid()) continue;
    bool has_task = false, has_agent = false;
    for (const std::string& variable : ReadProcStrings(pid, "environ")) {
      has_task = has_task || variable == task_mark;
      has_agent = has_agent || variable == agent_mark;
    }
    if (!has_task || !has_agent || SupervisorOf(pid)) continue;
    StatFields fields;
    if (ReadStat(pid, &fields) && IsLiveState(fields.state)) {
      marked.push_back({pid, fields.start_time});
    }
  }
  return marked;
}

std::vector<ProcessIdentity> Descendants(pid_t pid) {
  std::vector<ProcessIdentity> found;
  std::set<pid_t> seen{pid};
  std::vector<pid_t> frontier{pid};
  while (!frontier.empty()) {
    pid_t parent = frontier.back();
    frontier.pop_back();
    for (pid_t child : ChildrenOf(parent)) {
      if (!seen.insert(child).second) continue;
      if (SupervisorOf(child)) continue;  // another agent's: not ours to touch
      StatFields fields;
      if (ReadStat(child, &fields) && IsLiveState(fields.state)) {
        found.push_back({child, fields.start_time});
      }
      frontier.push_back(child);
    }
  }
  return found;
}

std::optional<SupervisorProcess> ParseSupervisorCommandLine(const std::vector<std::string>& argv) {
  if (argv.size() != 8 || argv[1] != "supervise") return std::nullopt;
  std::map<std::string, std::string> options;
  for (size_t i = 2; i + 1 < argv.size(); i += 2) {
    const std::string& flag = argv[i];
    if (flag != "--workspace" && flag != "--task" && flag != "--agent") return std::nullopt;
    if (!options.emplace(flag, argv[i + 1]).second) return std::nullopt;
  }
  if (options.size() != 3) return std::nullopt;
  const std::string& base = options["--workspace"];
  if (base.empty() || base[0] != '/') return std::nullopt;
  // Ids come from another process's memory: validate before they reach a path.
  if (!registry::ValidateTaskId(options["--task"]).ok() ||
      !registry::ValidateAgentId(options["--agent"]).ok()) {
    return std::nullopt;
  }
  SupervisorProcess supervisor;
  supervisor.workspace_base = registry::Workspace(base).base();
  supervisor.task_id = options["--task"];
  supervisor.agent_id = options["--agent"];
  return supervisor;
}

std::optional<SupervisorProcess> SupervisorOf(pid_t pid) {
  std::optional<SupervisorProcess> supervisor =
      ParseSupervisorCommandLine(ReadProcStrings(pid, "cmdline"));
  if (!supervisor) return std::nullopt;
  supervisor->identity = IdentityOf(pid);
  // The command line was read before the identity: make sure it is still
  // the same live process.
  if (!IsAlive(supervisor->identity)) return std::nullopt;
  return supervisor;
}

std::vector<SupervisorProcess> FindSupervisors() {
  std::vector<SupervisorProcess> found;
  std::map<pid_t, size_t> by_pid;
  std::vector<pid_t> parents;
  for (pid_t pid : AllPids()) {
    std::optional<SupervisorProcess> supervisor = SupervisorOf(pid);
    StatFields fields;
    if (!supervisor || !ReadStat(pid, &fields)) continue;
    by_pid[pid] = found.size();
    parents.push_back(fields.parent);
    found.push_back(std::move(*supervisor));
  }
  auto same_agent = [](const SupervisorProcess& a, const SupervisorProcess& b) {
    return std::tie(a.workspace_base, a.task_id, a.agent_id) ==
           std::tie(b.workspace_base, b.task_id, b.agent_id);
  };
  std::vector<SupervisorProcess> supervisors;
  for (size_t i = 0; i < found.size(); ++i) {
    auto parent = by_pid.find(parents[i]);
    if (parent != by_pid.end() && same_agent(found[parent->second], found[i])) continue;
    supervisors.push_back(found[i]);
  }
  return supervisors;
}

int OpenPidfd(const ProcessIdentity& identity) {
  if (identity.pid <= 0) return -1;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, identity.pid, 0));
  if (pidfd < 0) return -1;
  // Checked after opening: if the identity matches now, the pidfd refers to
  // this very process even if the pid is recycled later.
  if (ProcessStartTime(identity.pid) != identity.start_time) {
    ::close(pidfd);
    return -1;
  }
  return pidfd;  // pidfd_open sets O_CLOEXEC
}

bool WaitForExit(const std::vector<int>& pidfds, std::chrono::steady_clock::time_point deadline) {
  std::vector<pollfd> waiting;
  for (int pidfd : pidfds) {
    if (pidfd >= 0) waiting.push_back({pidfd, POLLIN, 0});
  }
  while (!waiting.empty()) {
    // Round up: poll must not return before the deadline.
    auto remaining =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    int timeout_ms = static_cast<int>(std::max<long long>(0, remaining.count()));
    int ready = ::poll(waiting.data(), waiting.size(), timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    std::vector<pollfd> still;
    for (const pollfd& entry : waiting) {
      if (entry.revents == 0) still.push_back({entry.fd, POLLIN, 0});
    }
    waiting.swap(still);
  }
  return true;
}

bool SignalPidfd(int pidfd, int signal) {
  return pidfd >= 0 && syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0;
}

bool SignalPidfdWithValue(int pidfd, int signal, int value) {
  if (pidfd < 0) return false;
  siginfo_t info{};
  info.si_signo = signal;
  info.si_code = SI_QUEUE;  // the kernel accepts only negative codes from another process
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_int = value;
  return syscall(SYS_pidfd_send_signal, pidfd, signal, &info, 0) == 0;
}

StopFigures StopProcesses(const ProcessCollector& collect, std::chrono::milliseconds grace) {
  auto deadline = MonotonicClock::now() + grace;
  StopFigures figures;
  std::set<int> known;
  std::vector<int> pidfds = OpenNew(collect(), &known);
  for (int pidfd : pidfds) figures.signalled += SignalPidfd(pidfd, SIGTERM) ? 1 : 0;
  bool exited = WaitForExit(pidfds, deadline);
  if (!exited) {
    for (int pidfd : pidfds) figures.sigkilled += SignalPidfd(pidfd, SIGKILL) ? 1 : 0;
    // Anything started since the first pass (a subreaper adopts quickly).
    for (int pidfd : OpenNew(collect(), &known)) {
      figures.sigkilled += SignalPidfd(pidfd, SIGKILL) ? 1 : 0;
      pidfds.push_back(pidfd);
    }
    exited = WaitForExit(pidfds, MonotonicClock::now() + kAfterSigkill);
  }
  figures.all_exited = exited;
  for (int pidfd : pidfds) ::close(pidfd);
  return figures;
}

}  // namespace herd::agents
