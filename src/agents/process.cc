#include "agents/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace herd::agents {
namespace {

struct StatFields {
  char state = 0;
  pid_t parent = 0;
  pid_t group = 0;
  unsigned long long start_time = 0;
};

bool ReadStat(pid_t pid, StatFields* fields) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[1024];
  ssize_t got = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (got <= 0) return false;
  buffer[got] = '\0';
  // The command name (field 2) may contain spaces and ')': parse after the last ')'.
  char* after_name = std::strrchr(buffer, ')');
  if (after_name == nullptr) return false;
  // Fields from 3: state ppid pgrp session tty_nr tpgid flags minflt cminflt
  // majflt cmajflt utime stime cutime cstime priority nice num_threads
  // itrealvalue starttime
  unsigned long long values[20] = {};
  char state = 0;
  int parsed = std::sscanf(after_name + 2,
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

bool IsLiveState(char state) { return state != 'Z' && state != 'X' && state != 0; }

std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR* tasks = opendir(path);
  if (tasks == nullptr) return children;
  while (dirent* task = readdir(tasks)) {
    if (task->d_name[0] == '.') continue;
    std::string children_path = std::string(path) + "/" + task->d_name + "/children";
    std::ifstream file(children_path);
    pid_t child;
    while (file >> child) children.push_back(child);
  }
  closedir(tasks);
  return children;
}

}  // namespace

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

pid_t ProcessGroupOf(pid_t pid) {
  StatFields fields;
  if (!ReadStat(pid, &fields)) return -1;
  return fields.group;
}

std::vector<ProcessIdentity> ProcessGroupMembers(pid_t pgid) {
  std::vector<ProcessIdentity> members;
  if (pgid <= 1) return members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    StatFields fields;
    if (ReadStat(static_cast<pid_t>(pid), &fields) && fields.group == pgid &&
        IsLiveState(fields.state)) {
      members.push_back({static_cast<int>(pid), fields.start_time});
    }
  }
  closedir(proc);
  return members;
}

std::vector<ProcessIdentity> ProcessesMarkedFor(const std::string& task_id,
                                                const std::string& agent_id) {
  std::vector<ProcessIdentity> marked;
  const std::string task_mark = "HERD_TASK_ID=" + task_id;
  const std::string agent_mark = "HERD_AGENT_ID=" + agent_id;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return marked;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid == getpid()) continue;
    std::ifstream environ_file("/proc/" + std::string(entry->d_name) + "/environ",
                               std::ios::binary);
    if (!environ_file) continue;
    bool has_task = false, has_agent = false;
    std::string variable;
    while (std::getline(environ_file, variable, '\0')) {
      has_task = has_task || variable == task_mark;
      has_agent = has_agent || variable == agent_mark;
    }
    if (!has_task || !has_agent || IsHerdSupervisor(static_cast<pid_t>(pid))) continue;
    StatFields fields;
    if (ReadStat(static_cast<pid_t>(pid), &fields) && IsLiveState(fields.state)) {
      marked.push_back({static_cast<int>(pid), fields.start_time});
    }
  }
  closedir(proc);
  return marked;
}

bool IsHerdSupervisor(pid_t pid) {
  static const std::string self = [] {
    char path[4096];
    ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
    return length > 0 ? std::string(path, static_cast<size_t>(length)) : std::string();
  }();
  char link[64];
  std::snprintf(link, sizeof link, "/proc/%d/exe", pid);
  char target[4096];
  ssize_t length = readlink(link, target, sizeof target - 1);
  if (length <= 0 || std::string(target, static_cast<size_t>(length)) != self) return false;
  std::snprintf(link, sizeof link, "/proc/%d/cmdline", pid);
  std::ifstream cmdline(link, std::ios::binary);
  std::string program, subcommand;
  std::getline(cmdline, program, '\0');
  std::getline(cmdline, subcommand, '\0');
  return subcommand == "supervise";
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
      if (IsHerdSupervisor(child)) continue;  // another agent's: not ours to touch
      StatFields fields;
      if (ReadStat(child, &fields) && IsLiveState(fields.state)) {
        found.push_back({child, fields.start_time});
      }
      frontier.push_back(child);
    }
  }
  return found;
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
    auto remaining = std::chrono::ceil<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
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

}  // namespace herd::agents
