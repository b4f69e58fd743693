#include "agents/agent_worktree.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "agents/process.h"
#include "registry/workspace.h"
#include "worktrees/git.h"

namespace herd::agents {
namespace {

constexpr int kDefaultPortFirst = 20000;
constexpr int kDefaultPortLast = 29999;
constexpr int kPortCandidates = 8;
constexpr int kDefaultSetupTimeoutSeconds = 600;
constexpr size_t kSetupOutputShown = 2000;

bool Under(const std::string& path, const std::string& root) {
  return path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
         path[root.size()] == '/';
}

bool CanBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return free;
}

struct PortRange {
  int first = kDefaultPortFirst;
  int last = kDefaultPortLast;
};

Result<PortRange> PortRangeFromEnvironment() {
  const char* text = std::getenv("HERD_PORT_RANGE");
  if (text == nullptr || *text == '\0') return PortRange{};
  PortRange range;
  char dash = 0;
  std::istringstream in(text);
  if (!(in >> range.first >> dash >> range.last) || dash != '-' || !in.eof() ||
      range.first < 1024 || range.last > 65535 || range.first > range.last) {
    return Status::InvalidArgument(std::string("HERD_PORT_RANGE=") + text +
                                   " is not a port range: write FIRST-LAST with "
                                   "1024 <= FIRST <= LAST <= 65535, e.g. 20000-29999");
  }
  return range;
}

int SetupTimeoutSeconds() {
  const char* text = std::getenv("HERD_SETUP_TIMEOUT_SECONDS");
  int seconds = text != nullptr ? std::atoi(text) : 0;
  return seconds > 0 ? seconds : kDefaultSetupTimeoutSeconds;
}

// The end of what the setup command wrote to the log, from `offset`.
std::string OutputSince(const std::string& log_path, std::streamoff offset) {
  std::ifstream log(log_path, std::ios::binary);
  log.seekg(0, std::ios::end);
  std::streamoff end = log.tellg();
  std::streamoff start = std::max(offset, end - static_cast<std::streamoff>(kSetupOutputShown));
  log.seekg(start);
  std::ostringstream text;
  text << log.rdbuf();
  std::string shown = text.str();
  while (!shown.empty() && shown.back() == '\n') shown.pop_back();
  return shown;
}

// Runs the setup command in the worktree, its output appended to the log.
Status RunSetup(const std::string& command, const registry::WorktreeRecord& worktree,
                const std::string& log_path, const std::vector<std::string>& environment) {
  int log_fd = open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (log_fd < 0) return Status::FromErrno("cannot open the agent's log " + log_path, errno);
  struct stat before {};
  fstat(log_fd, &before);
  std::string banner = "herd: running setup in " + worktree.path + ": " + command + "\n";
  (void)!write(log_fd, banner.data(), banner.size());

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log_fd, STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawn_file_actions_addchdir_np(&actions, worktree.path.c_str());
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setpgroup(&attributes, 0);  // its own group, so a timeout stops all of it
  sigset_t defaults, none;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<std::string> args = {"/bin/sh", "-c", command};
  std::vector<std::string> env = MergedEnvironment(environment);
  std::vector<char*> argv = CStrings(args);
  std::vector<char*> envp = CStrings(env);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(log_fd);
  if (spawned != 0) return Status::FromErrno("cannot run the setup command", spawned);

  int seconds = SetupTimeoutSeconds();
  int pidfd = OpenPidfd(IdentityOf(pid));
  bool exited = pidfd < 0 || WaitForExit({pidfd}, std::chrono::steady_clock::now() +
                                                      std::chrono::seconds(seconds));
  if (pidfd >= 0) close(pidfd);
  if (!exited) kill(-pid, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (exited && WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) return Status::Ok();
  std::string how =
      !exited
          ? "did not finish within " + std::to_string(seconds) + " s (HERD_SETUP_TIMEOUT_SECONDS)"
      : WIFEXITED(wait_status) ? "exited with code " + std::to_string(WEXITSTATUS(wait_status))
                               : "was killed by signal " + std::to_string(WTERMSIG(wait_status));
  return Status::Refused("the setup command `" + command + "` " + how + "; its output:\n" +
                         OutputSince(log_path, static_cast<std::streamoff>(before.st_size)));
}

}  // namespace

std::string WorktreeRoot() {
  std::string known = registry::KnownWorkspacesPath();
  return known.substr(0, known.rfind('/')) + "/worktrees";
}

worktrees::WorktreeInfo ToWorktreeInfo(const registry::WorktreeRecord& record) {
  return {.repository = record.repository,
          .path = record.path,
          .branch = record.branch,
          .base_ref = record.base_ref,
          .base_sha = record.base_sha,
          .created_branch = record.created_branch};
}

Result<WorktreePlan> PlanAgentWorktree(const WorktreeRequest& request,
                                       const registry::TaskRecord& task, const std::string& parent,
                                       const std::string& task_cwd, const std::string& agent_id) {
  WorktreePlan plan;
  std::string root = WorktreeRoot();
  const registry::AgentRecord* parent_entry =
      parent == registry::kOrchestratorParent ? nullptr : task.FindAgent(parent);
  // A parent's directory, if it works in a herd worktree.
  std::string parent_worktree =
      parent_entry != nullptr && Under(parent_entry->cwd, root) ? parent_entry->cwd : "";
  bool own = request.own.value_or(parent_entry == nullptr && task.agent_worktrees);
  if (!own) {
    if (!request.base.empty() || !request.branch.empty() || !request.copy_paths.empty() ||
        !request.setup.empty()) {
      return Status::InvalidArgument(
          "base, branch, copy and setup are options of the agent's own worktree: add --worktree "
          "(worktree: true)");
    }
    plan.cwd = parent_worktree;
    return plan;
  }
  std::string directory = parent_worktree.empty() ? task_cwd : parent_worktree;
  worktrees::CreateSpec& spec = plan.spec;
  spec.directory = directory;
  spec.root = root;
  spec.task_id = task.task_id;
  spec.agent_id = agent_id;
  spec.base_ref = request.base;
  spec.branch = request.branch;
  spec.copy_paths = request.copy_paths;
  Result<std::string> top = worktrees::RepositoryTopLevel(directory);
  if (!top.ok()) {
    return Status::InvalidArgument(
        "the task's project directory " + top.status().message() +
        (task.client_cwd.empty() ? " (create the task with --cwd PROJECT to name it)" : ""));
  }
  HERD_ASSIGN_OR_RETURN(std::string path,
                        worktrees::PlannedPath(directory, root, task.task_id, agent_id));
  registry::WorktreeRecord record;
  record.repository = *top;
  record.path = path;
  record.branch = request.branch.empty() ? "herd/" + task.task_id + "/" + agent_id : request.branch;
  record.base_ref = request.base;
  plan.record = record;
  plan.cwd = path;
  plan.setup = request.setup;
  if (plan.setup.empty()) {
    Result<worktrees::GitOutput> configured =
        worktrees::RunGit(*top, {"config", "--get", "herd.setup"});
    if (configured.ok() && configured->exit_code == 0) {
      plan.setup = worktrees::SplitLines(configured->out).empty()
                       ? ""
                       : worktrees::SplitLines(configured->out)[0];
    }
  }
  return plan;
}

Result<PreparedWorktree> PrepareAgentWorktree(const WorktreePlan& plan, const std::string& log_path,
                                              std::optional<int> port) {
  HERD_ASSIGN_OR_RETURN(worktrees::Created created, worktrees::CreateWorktree(plan.spec));
  PreparedWorktree prepared;
  registry::WorktreeRecord& record = prepared.record;
  record = *plan.record;
  record.repository = created.info.repository;
  record.path = created.info.path;
  record.branch = created.info.branch;
  record.base_ref = created.info.base_ref;
  record.base_sha = created.info.base_sha;
  record.created_branch = created.info.created_branch;
  prepared.warnings = created.warnings;
  if (!plan.setup.empty()) {
    std::vector<std::string> environment = {"HERD_TASK_ID=" + plan.spec.task_id,
                                            "HERD_AGENT_ID=" + plan.spec.agent_id,
                                            "HERD_WORKTREE=" + record.path};
    if (port) environment.push_back("HERD_PORT=" + std::to_string(*port));
    Status setup = RunSetup(plan.setup, record, log_path, environment);
    if (!setup.ok()) {
      DiscardAgentWorktree(record);
      return setup.WithContext("the worktree's setup failed (the worktree was removed again)");
    }
  }
  return prepared;
}

void DiscardAgentWorktree(const registry::WorktreeRecord& record) {
  (void)worktrees::RemoveWorktree(ToWorktreeInfo(record), WorktreeRoot(),
                                  worktrees::RemoveMode::kForce);
}

Result<std::vector<int>> PortCandidates(const std::string& task_id) {
  HERD_ASSIGN_OR_RETURN(PortRange range, PortRangeFromEnvironment());
  int count = range.last - range.first + 1;
  uint32_t hash = 2166136261u;
  for (unsigned char c : task_id) hash = (hash ^ c) * 16777619u;
  std::vector<int> candidates;
  int start = static_cast<int>(hash % static_cast<uint32_t>(count));
  for (int i = 0; i < count && static_cast<int>(candidates.size()) < kPortCandidates * 4; ++i) {
    int port = range.first + (start + i) % count;
    if (CanBind(port)) candidates.push_back(port);
  }
  return candidates;
}

}  // namespace herd::agents
