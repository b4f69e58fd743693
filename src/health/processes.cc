#include "health/processes.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "registry/ids.h"
#include "registry/workspace.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using agents::ProcessIdentity;

constexpr auto kAfterSigkill = std::chrono::seconds(5);

// The whole of a small /proc file ("" if unreadable).
std::string ReadProcFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string contents;
  char buffer[4096];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got <= 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return contents;
}

std::vector<std::string> CommandLineOf(pid_t pid) {
  std::string raw = ReadProcFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> argv;
  size_t begin = 0;
  while (begin < raw.size()) {
    size_t end = raw.find('\0', begin);
    if (end == std::string::npos) end = raw.size();
    argv.emplace_back(raw, begin, end - begin);
    begin = end + 1;
  }
  return argv;
}

// The parent of `pid` (field 4 of /proc/<pid>/stat), or 0.
pid_t ParentOf(pid_t pid) {
  std::string stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat");
  size_t after_name = stat.rfind(')');
  if (after_name == std::string::npos || after_name + 4 >= stat.size()) return 0;
  // ") S 1234 ..." : state, then the parent pid.
  return static_cast<pid_t>(std::strtol(stat.c_str() + after_name + 4, nullptr, 10));
}

struct Tracked {
  ProcessIdentity identity;
  int pidfd;
};

// Opens pidfds for every live process among `roots` and their descendants
// not yet in `known`, adding them to it.
std::vector<Tracked> Collect(const std::vector<ProcessIdentity>& roots, std::set<int>* known) {
  std::vector<ProcessIdentity> candidates;
  for (const ProcessIdentity& root : roots) {
    if (!agents::IsAlive(root)) continue;
    candidates.push_back(root);
    for (const ProcessIdentity& child : agents::Descendants(root.pid)) candidates.push_back(child);
  }
  std::vector<Tracked> tracked;
  for (const ProcessIdentity& candidate : candidates) {
    if (candidate.pid == getpid() || !known->insert(candidate.pid).second) continue;
    int pidfd = agents::OpenPidfd(candidate);
    if (pidfd >= 0) tracked.push_back({candidate, pidfd});
  }
  return tracked;
}

}  // namespace

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

std::vector<SupervisorProcess> FindSupervisors() {
  std::vector<SupervisorProcess> found;
  std::map<pid_t, size_t> by_pid;
  std::vector<pid_t> parents;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid <= 1) continue;
    std::optional<SupervisorProcess> supervisor =
        ParseSupervisorCommandLine(CommandLineOf(static_cast<pid_t>(pid)));
    if (!supervisor) continue;
    supervisor->identity = agents::IdentityOf(static_cast<pid_t>(pid));
    // The command line was read before the identity: make sure it is still
    // the same live process.
    if (!agents::IsAlive(supervisor->identity)) continue;
    by_pid[static_cast<pid_t>(pid)] = found.size();
    parents.push_back(ParentOf(static_cast<pid_t>(pid)));
    found.push_back(std::move(*supervisor));
  }
  closedir(proc);
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

StopFigures StopProcessTrees(const std::vector<ProcessIdentity>& roots,
                             std::chrono::milliseconds grace) {
  StopFigures figures;
  std::set<int> known;
  std::vector<Tracked> tracked = Collect(roots, &known);
  std::vector<int> pidfds;
  for (const Tracked& process : tracked) {
    if (agents::SignalPidfd(process.pidfd, SIGTERM)) ++figures.signalled;
    pidfds.push_back(process.pidfd);
  }
  bool exited = agents::WaitForExit(pidfds, MonotonicClock::now() + grace);
  if (!exited) {
    for (int pidfd : pidfds) figures.sigkilled += agents::SignalPidfd(pidfd, SIGKILL) ? 1 : 0;
    // Anything started since the first pass (a subreaper adopts quickly).
    for (const Tracked& late : Collect(roots, &known)) {
      figures.sigkilled += agents::SignalPidfd(late.pidfd, SIGKILL) ? 1 : 0;
      pidfds.push_back(late.pidfd);
    }
    exited = agents::WaitForExit(pidfds, MonotonicClock::now() + kAfterSigkill);
  }
  figures.all_exited = exited;
  for (int pidfd : pidfds) ::close(pidfd);
  return figures;
}

}  // namespace herd::health
