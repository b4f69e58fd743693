#include "agents/tmux_view.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cerrno>
#include <vector>

extern char** environ;

namespace herd::agents {

Result<std::string> OpenTmuxView(const std::string& herd_binary, const std::string& workspace_base,
                                 const std::string& task_id, const std::string& agent_id) {
  std::string session = "herd-" + agent_id;
  // Several arguments after the session options are run as an argv by
  // tmux (3.0 and later): no shell string is ever built.
  std::vector<std::string> args = {"tmux",  "new-session", "-d",          "-s",
                                   session, herd_binary,   "--workspace", workspace_base,
                                   "logs",  task_id,       agent_id,      "--follow"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (int fd : {0, 1, 2}) {
    posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, "tmux", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return Status::FromErrno(
        "cannot run tmux for the agent's view (install tmux, or deploy "
        "without --tmux)",
        spawned);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::IOError("tmux could not create session " + session +
                           " (is one with that name already running? `tmux kill-session -t " +
                           session + "` ends it)");
  }
  return session;
}

}  // namespace herd::agents
