// Test-only helpers shared by the store, agents/registry/CLI and health
// tests. Header-only; never include it from production code.
//
// Contract:
// - TempDir: a fresh directory under $TMPDIR (or /tmp) named
//   `<prefix>-XXXXXX`, removed with everything in it on destruction.
// - ScopedEnvironment: sets/unsets variables, restores them on destruction.
// - FileExists / ReadFile / WriteFile: plain file access ("" if unreadable).
// - Process identity is (pid, start time = field 22 of /proc/<pid>/stat),
//   read independently of herd's own code so tests check herd rather than
//   agree with it. IsRunning is false for a zombie or a recycled pid.
// - ChildrenOf / DescendantsOf walk /proc/<pid>/task/*/children.
// - OpenPidfd / WaitForExit / KillAndWait wait through pidfds up to an
//   explicit deadline (no fixed sleeps); callers choose their own default.
// - ScopedTmpfs: a real, small filesystem that a test can fill up (ENOSPC
//   from the kernel, not from an injected fault).
// Everything is in herd::testing_util; the per-layer helper headers re-export
// it with using-declarations.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace herd::testing_util {

// Milliseconds from now until `deadline`, at least 0 (for poll()).
inline int RemainingMilliseconds(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<long long>(0, left.count()));
}

// --- Files and directories --------------------------------------------------

// A fresh directory, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "herd-test") {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp == '/' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // `path()/name` (not created).
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // `path()/name`, created as a directory.
  std::string Subdirectory(const std::string& name) const {
    std::string sub = path_ + "/" + name;
    std::filesystem::create_directories(sub);
    return sub;
  }

 private:
  std::string path_;
};

inline bool FileExists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

inline void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  if (!file) throw std::runtime_error("cannot write " + path);
}

// --- Environment --------------------------------------------------------------

// Sets and unsets variables; restores every one it touched on destruction.
class ScopedEnvironment {
 public:
  ScopedEnvironment() = default;
  ~ScopedEnvironment() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) {
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      } else {
        ::unsetenv(it->first.c_str());
      }
    }
  }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

  void Set(const std::string& name, const std::string& value) {
    Save(name);
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void Unset(const std::string& name) {
    Save(name);
    ::unsetenv(name.c_str());
  }

 private:
  void Save(const std::string& name) {
    const char* value = std::getenv(name.c_str());
    saved_.push_back({name, value ? std::optional<std::string>(value) : std::nullopt});
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// --- Processes ----------------------------------------------------------------

// A process is (pid, start time); the start time tells a recycled pid apart.
struct Identity {
  pid_t pid = 0;
  unsigned long long start_time = 0;
  bool operator<(const Identity& other) const {
    return std::tie(pid, start_time) < std::tie(other.pid, other.start_time);
  }
};

struct ProcessInfo {
  char state = 0;
  pid_t parent = 0;
  pid_t group = 0;
  pid_t session = 0;
  unsigned long long start_time = 0;  // field 22
};

inline std::optional<ProcessInfo> ReadProcessInfo(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t name_end = stat.rfind(')');
  if (pid <= 0 || name_end == std::string::npos) return std::nullopt;
  // Fields after the command name, starting with field 3 (state).
  std::istringstream fields(stat.substr(name_end + 2));
  std::vector<std::string> values;
  std::string value;
  while (fields >> value) values.push_back(value);
  if (values.size() < 20) return std::nullopt;
  ProcessInfo info;
  info.state = values[0][0];
  info.parent = std::stoi(values[1]);
  info.group = std::stoi(values[2]);
  info.session = std::stoi(values[3]);
  info.start_time = std::stoull(values[19]);
  return info;
}

inline Identity IdentityOf(pid_t pid) {
  std::optional<ProcessInfo> info = ReadProcessInfo(pid);
  return {pid, info ? info->start_time : 0};
}

// True while that very process exists and has not exited (a zombie has).
inline bool IsRunning(const Identity& identity) {
  std::optional<ProcessInfo> info = ReadProcessInfo(identity.pid);
  return info && info->start_time == identity.start_time && info->state != 'Z' &&
         info->state != 'X';
}

// The NUL-separated fields of /proc/<pid>/<file> (cmdline, environ); none
// if the process is gone or not readable.
inline std::vector<std::string> ProcFields(pid_t pid, const char* file) {
  std::vector<std::string> fields;
  std::istringstream raw(ReadFile("/proc/" + std::to_string(pid) + "/" + file));
  for (std::string field; std::getline(raw, field, '\0');) fields.push_back(field);
  return fields;
}

// Every running process but this one for which `matches(pid)` holds.
inline std::vector<Identity> RunningProcessesWhere(const std::function<bool(pid_t)>& matches) {
  std::vector<Identity> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || pid == ::getpid()) continue;
    Identity identity = IdentityOf(static_cast<pid_t>(pid));
    if (matches(identity.pid) && IsRunning(identity)) found.push_back(identity);
  }
  ::closedir(proc);
  return found;
}

// The identity recorded in a registry entry under `pid_key` / `start_key`.
inline Identity IdentityFromEntry(const nlohmann::json& entry, const char* pid_key,
                                  const char* start_key) {
  return {entry.value(pid_key, 0), entry.value(start_key, 0ULL)};
}

inline std::vector<pid_t> ChildrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* directory = ::opendir(tasks.c_str());
  if (directory == nullptr) return children;
  while (dirent* entry = ::readdir(directory)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream file(tasks + "/" + entry->d_name + "/children");
    pid_t child;
    while (file >> child) children.push_back(child);
  }
  ::closedir(directory);
  return children;
}

// Every running descendant of `pid`, however deep.
inline std::vector<Identity> DescendantsOf(pid_t pid) {
  std::vector<Identity> found;
  std::vector<pid_t> frontier{pid};
  std::set<pid_t> seen{pid};
  while (!frontier.empty()) {
    pid_t parent = frontier.back();
    frontier.pop_back();
    for (pid_t child : ChildrenOf(parent)) {
      if (!seen.insert(child).second) continue;
      Identity identity = IdentityOf(child);
      if (IsRunning(identity)) found.push_back(identity);
      frontier.push_back(child);
    }
  }
  return found;
}

// A pidfd for that very process, or -1 if it is gone.
inline int OpenPidfd(const Identity& identity) {
  if (identity.pid <= 0) return -1;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, identity.pid, 0));
  if (pidfd < 0) return -1;
  if (IdentityOf(identity.pid).start_time != identity.start_time) {
    ::close(pidfd);
    return -1;
  }
  return pidfd;
}

// Waits (pidfd + poll) until every process has exited; true if all did
// before the deadline. Processes already gone count as exited.
inline bool WaitForExit(const std::vector<Identity>& processes,
                        std::chrono::steady_clock::time_point deadline) {
  std::vector<pollfd> waiting;
  for (const Identity& process : processes) {
    int pidfd = OpenPidfd(process);
    if (pidfd >= 0) waiting.push_back({pidfd, POLLIN, 0});
  }
  bool all_exited = true;
  while (!waiting.empty()) {
    int ready = ::poll(waiting.data(), waiting.size(), RemainingMilliseconds(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      all_exited = false;
      break;
    }
    std::vector<pollfd> still;
    for (const pollfd& entry : waiting) {
      if (entry.revents == 0) {
        still.push_back({entry.fd, POLLIN, 0});
      } else {
        ::close(entry.fd);
      }
    }
    waiting.swap(still);
  }
  for (const pollfd& entry : waiting) ::close(entry.fd);
  return all_exited;
}

// SIGKILLs each process (through a pidfd, so a recycled pid is never hit)
// and waits for them. Returns how many were still running.
inline int KillAndWait(const std::vector<Identity>& processes,
                       std::chrono::steady_clock::time_point deadline) {
  int killed = 0;
  for (const Identity& process : processes) {
    int pidfd = OpenPidfd(process);
    if (pidfd < 0) continue;
    if (IsRunning(process)) ++killed;
    ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    ::close(pidfd);
  }
  WaitForExit(processes, deadline);
  return killed;
}

// --- A filesystem that fills up -------------------------------------------------

// A tmpfs of `bytes` mounted with mount(2) on `mount_point` (created if
// missing), unmounted on destruction. The unmount is lazy (MNT_DETACH): a
// process the test started may still hold a file open there.
//
// Mounting needs CAP_SYS_ADMIN. Without it the process moves into a user and
// mount namespace of its own (unshare(2)), where it may mount a tmpfs; that
// lasts for the rest of the process, which under ctest runs one test. When
// neither works, mounted() is false and error() says why: the test skips
// with it.
class ScopedTmpfs {
 public:
  ScopedTmpfs(const std::string& mount_point, size_t bytes) : path_(mount_point) {
    created_ = ::mkdir(path_.c_str(), 0755) == 0;
    std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
      return;
    }
    int mount_error = errno;
    std::string namespace_error = EnterOwnMountNamespace();
    if (namespace_error.empty() &&
        ::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
      return;
    }
    error_ = "cannot mount a tmpfs on " + path_ + " (" + std::strerror(mount_error) +
             "; run the tests as root) nor in a namespace of its own (" +
             (namespace_error.empty() ? std::string(std::strerror(errno)) : namespace_error) + ")";
  }
  ~ScopedTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    if (created_) ::rmdir(path_.c_str());
  }
  ScopedTmpfs(const ScopedTmpfs&) = delete;
  ScopedTmpfs& operator=(const ScopedTmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  // Writes `path()/name` until the kernel says ENOSPC; returns its path.
  // Removing that file frees the space again.
  std::string Fill(const std::string& name = "filler") const {
    std::string file = path_ + "/" + name;
    int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot create " + file + ": " + std::strerror(errno));
    std::string chunk(64 * 1024, 'x');
    size_t size = chunk.size();
    for (;;) {
      ssize_t written = ::write(fd, chunk.data(), size);
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && errno == ENOSPC) {
        if (size == 1) break;
        size = std::max<size_t>(1, size / 16);  // fill the last page too
        continue;
      }
      if (written < 0) {
        int saved = errno;
        ::close(fd);
        throw std::runtime_error("cannot fill " + file + ": " + std::strerror(saved));
      }
    }
    ::close(fd);
    return file;
  }

 private:
  // Becomes root of a new user namespace with a private mount namespace;
  // returns "" or what failed.
  static std::string EnterOwnMountNamespace() {
    uid_t uid = ::getuid();
    gid_t gid = ::getgid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
      return std::string("unshare: ") + std::strerror(errno);
    }
    auto write_file = [](const char* path, const std::string& text) {
      int fd = ::open(path, O_WRONLY | O_CLOEXEC);
      bool ok =
          fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
      if (fd >= 0) ::close(fd);
      return ok;
    };
    write_file("/proc/self/setgroups", "deny");
    if (!write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1") ||
        !write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1")) {
      return "cannot map the user into the new namespace";
    }
    // Mounts made here must not propagate anywhere.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      return std::string("cannot make the mounts private: ") + std::strerror(errno);
    }
    return "";
  }

  std::string path_;
  bool created_ = false;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace herd::testing_util
