#include "worktrees/git.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace herd::worktrees {
namespace {

// This process's environment without GIT_* and LC_ALL, plus what git needs.
std::vector<std::string> GitEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (text.rfind("GIT_", 0) == 0 || text.rfind("LC_ALL=", 0) == 0) continue;
    environment.emplace_back(text);
  }
  environment.push_back("LC_ALL=C");
  environment.push_back("GIT_TERMINAL_PROMPT=0");
  environment.push_back("GIT_OPTIONAL_LOCKS=0");
  environment.insert(environment.end(), extra.begin(), extra.end());
  return environment;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& text : strings) pointers.push_back(text.data());
  pointers.push_back(nullptr);
  return pointers;
}

std::string Describe(const std::string& directory, const std::vector<std::string>& args) {
  std::string text = "git";
  for (const std::string& arg : args) text += " " + arg;
  return text + " (in " + directory + ")";
}

}  // namespace

Result<GitOutput> RunGit(const std::string& directory, const std::vector<std::string>& args,
                         const GitOptions& options) {
  if (access(directory.c_str(), X_OK) != 0) {
    return Status::FromErrno("cannot run git in " + directory, errno);
  }
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return Status::FromErrno("cannot create a pipe", errno);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    int saved = errno;
    close(out_pipe[0]);
    close(out_pipe[1]);
    return Status::FromErrno("cannot create a pipe", saved);
  }
  if (pipe2(in_pipe, O_CLOEXEC) != 0) {
    int saved = errno;
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) close(fd);
    return Status::FromErrno("cannot create a pipe", saved);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawn_file_actions_addchdir_np(&actions, directory.c_str());
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::vector<std::string> argv_strings = {"git"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<std::string> environment = GitEnvironment(options.environment);
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<char*> envp = Pointers(environment);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, "git", &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawned != 0) {
    close(in_pipe[1]);
    close(out_pipe[0]);
    close(err_pipe[0]);
    return Status::FromErrno("cannot run git (is it installed and on PATH?)", spawned);
  }

  GitOutput output;
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (options.input.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  char buffer[65536];
  while (out_fd >= 0 || err_fd >= 0 || in_fd >= 0) {
    pollfd fds[3];
    int count = 0;
    if (out_fd >= 0) fds[count++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[count++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[count++] = {in_fd, POLLOUT, 0};
    if (poll(fds, count, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      int fd = fds[i].fd;
      if (fd == in_fd) {
        ssize_t put = write(fd, options.input.data() + written, options.input.size() - written);
        if (put > 0) written += static_cast<size_t>(put);
        if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == options.input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      ssize_t got = read(fd, buffer, sizeof buffer);
      if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (got <= 0) {
        close(fd);
        (fd == out_fd ? out_fd : err_fd) = -1;
        continue;
      }
      if (fd == out_fd) {
        size_t room =
            options.max_output > output.out.size() ? options.max_output - output.out.size() : 0;
        size_t keep = std::min(room, static_cast<size_t>(got));
        output.out.append(buffer, keep);
        if (keep < static_cast<size_t>(got)) output.truncated = true;
      } else if (output.err.size() < 1024 * 1024) {
        output.err.append(buffer, static_cast<size_t>(got));
      }
    }
  }
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  output.exit_code =
      WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  return output;
}

Result<std::string> Git(const std::string& directory, const std::vector<std::string>& args,
                        const GitOptions& options) {
  HERD_ASSIGN_OR_RETURN(GitOutput output, RunGit(directory, args, options));
  if (output.exit_code != 0) {
    std::string err = output.err;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (err.size() > 2000) err = err.substr(0, 2000) + "...";
    return Status::IOError(Describe(directory, args) + " failed (exit " +
                           std::to_string(output.exit_code) + ")" +
                           (err.empty() ? "" : ": " + err));
  }
  return std::move(output.out);
}

Result<std::string> GitLine(const std::string& directory, const std::vector<std::string>& args,
                            const GitOptions& options) {
  HERD_ASSIGN_OR_RETURN(std::string out, Git(directory, args, options));
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::vector<std::string> SplitNul(const std::string& text) {
  std::vector<std::string> fields;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) fields.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return fields;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace herd::worktrees
