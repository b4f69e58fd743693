#include "agents/launcher.h"

#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agents/backend.h"
#include "agents/process.h"
#include "registry/global_index.h"
#include "registry/ids.h"
#include "registry/pg_registry.h"
#include "registry/registries.h"
#include "registry/task_registry.h"
#include "store/file_system.h"
#include "util/random.h"

extern char** environ;

namespace herd::agents {
namespace {

using nlohmann::json;
using registry::RegistryStores;
using registry::Workspace;

constexpr int kHandshakeFd = 3;

// Reads the supervisor's one handshake line (until EOF).
std::string ReadHandshake(int fd) {
  std::string line;
  char buffer[512];
  for (;;) {
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    line.append(buffer, static_cast<size_t>(got));
  }
  while (!line.empty() && line.back() == '\n') line.pop_back();
  return line;
}

constexpr int kLifelineFd = 4;

// Starts `herd supervise` for turn `turn` and returns its handshake line.
// A node's supervisor also holds the node's lifeline (`node`).
Result<std::string> StartSupervisor(const Workspace& workspace, const std::string& task_id,
                                    const std::string& agent_id, int turn,
                                    const NodeContext* node = nullptr) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::FromErrno("cannot create a pipe", errno);
  // Keep the write end above the handshake number so dup2 onto it is a real
  // dup that clears close-on-exec.
  int write_end = fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, 10);
  close(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end, kHandshakeFd);
  // Above the lifeline's number too, for the same reason.
  int lifeline_end = node != nullptr && node->lifeline_read_fd >= 0
                         ? fcntl(node->lifeline_read_fd, F_DUPFD_CLOEXEC, 10)
                         : -1;
  bool lifeline = lifeline_end >= 0;
  if (lifeline) posix_spawn_file_actions_adddup2(&actions, lifeline_end, kLifelineFd);
  posix_spawn_file_actions_addclosefrom_np(&actions, (lifeline ? kLifelineFd : kHandshakeFd) + 1);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  std::string binary = HerdBinaryPath();
  std::vector<std::string> args = {binary,   "supervise", "--workspace", workspace.base(),
                                   "--task", task_id,     "--agent",     agent_id};
  if (turn > 1) {
    args.push_back("--turn");
    args.push_back(std::to_string(turn));
  }
  if (lifeline) {
    args.push_back("--lifeline-fd");
    args.push_back(std::to_string(kLifelineFd));
  }
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t intermediate = 0;
  int spawned =
      posix_spawn(&intermediate, binary.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  close(write_end);
  if (lifeline) close(lifeline_end);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return Status::FromErrno("cannot start the supervisor " + binary, spawned);
  }
  // The intermediate process forks the detached supervisor and exits at once.
  while (waitpid(intermediate, nullptr, 0) < 0 && errno == EINTR) {
  }
  std::string line = ReadHandshake(pipe_fds[0]);
  close(pipe_fds[0]);
  return line;
}

Status ValidateDeployRequest(const DeployRequest& request) {
  HERD_RETURN_IF_ERROR(registry::ValidateTaskId(request.task_id));
  HERD_RETURN_IF_ERROR(registry::ValidateAgentType(request.agent_type));
  if (request.parent != registry::kOrchestratorParent) {
    HERD_RETURN_IF_ERROR(registry::ValidateAgentId(request.parent));
  }
  return Status::Ok();
}

// The task's client directory, or else the directory holding the workspace.
std::string AgentWorkingDirectory(const registry::TaskRecord& task, const Workspace& workspace) {
  std::string cwd = !task.client_cwd.empty()
                        ? task.client_cwd
                        : workspace.base().substr(0, workspace.base().rfind('/'));
  if (cwd.empty()) cwd = "/";
  return cwd;
}

LaunchRequest LaunchRequestFor(const DeployRequest& request, const Workspace& workspace,
                               const std::string& agent_id) {
  LaunchRequest launch;
  launch.backend = request.backend;
  launch.model = request.model;
  launch.command_argv = request.command_argv;
  launch.task_id = request.task_id;
  launch.agent_id = agent_id;
  launch.workspace_base = workspace.base();
  launch.prompt_path = workspace.PromptPath(request.task_id, agent_id);
  launch.mcp_config_path = workspace.McpConfigPath(request.task_id, agent_id);
  launch.herd_binary = HerdBinaryPath();
  if (BackendTakesSessionId(request.backend)) launch.session_id = RandomUuid();
  return launch;
}

// The Gemini CLI home herd prepares for a gemini agent (PrepareGeminiHome).
std::string GeminiHomeOf(const Workspace& workspace, const std::string& task_id,
                         const std::string& agent_id) {
  return workspace.AgentConfigDirectory(task_id, agent_id) + "/gemini-home";
}

// The backend's plan, completed with what the task decides: directory,
// log, timeouts and, when asked for, a config directory of the agent's own.
Result<LaunchPlan> PlanAgentLaunch(const LaunchRequest& launch, const DeployRequest& request,
                                   const registry::TaskRecord& task, const Workspace& workspace,
                                   const std::string& cwd) {
  HERD_ASSIGN_OR_RETURN(LaunchPlan plan, PlanLaunch(launch));
  plan.cwd = cwd;
  plan.log_path = workspace.StreamLogPath(request.task_id, launch.agent_id);
  plan.timeout_seconds = task.timeouts.wall_clock_seconds;
  plan.idle_timeout_seconds = task.timeouts.idle_seconds;
  if (request.backend == "gemini") {
    plan.environment.push_back("GEMINI_CLI_HOME=" +
                               GeminiHomeOf(workspace, request.task_id, launch.agent_id));
  }
  bool isolate = request.isolate_config || task.isolate_agent_config;
  if (isolate && request.backend == "claude") {
    // Each agent gets its own ~/.claude.json and sessions, so concurrent
    // agents cannot corrupt a shared one; credentials still arrive through
    // the environment.
    std::string config_directory =
        workspace.AgentConfigDirectory(request.task_id, launch.agent_id) + "/claude-config";
    HERD_RETURN_IF_ERROR(registry::MakeDirectories(config_directory));
    plan.environment.push_back("CLAUDE_CONFIG_DIR=" + config_directory);
  }
  return plan;
}

// Writes the prompt, the MCP config (if the backend speaks MCP) and the
// launch plan the supervisor reads.
Status WriteAgentFiles(const DeployRequest& request, const Workspace& workspace,
                       const LaunchRequest& launch, const LaunchPlan& plan) {
  HERD_RETURN_IF_ERROR(workspace.CreateTaskDirectories(request.task_id));
  std::string prompt = plan.supports_mcp ? ComposeAgentPrompt(request.task_id, launch.agent_id,
                                                              request.parent, request.prompt)
                                         : request.prompt;
  store::FileSystem* fs = store::FileSystem::Default();
  HERD_RETURN_IF_ERROR(store::ReplaceFileDurably(fs, launch.prompt_path, prompt));
  if (plan.supports_mcp) {
    HERD_RETURN_IF_ERROR(store::ReplaceFileDurably(
        fs, launch.mcp_config_path,
        McpConfigFor(launch.herd_binary, workspace.base()).dump(2) + "\n"));
  }
  if (plan.backend == "gemini") {
    HERD_RETURN_IF_ERROR(
        PrepareGeminiHome(GeminiHomeOf(workspace, request.task_id, launch.agent_id),
                          UserGeminiDirectory(), launch.herd_binary, workspace.base()));
  }
  return store::ReplaceFileDurably(fs, workspace.LaunchPlanPath(request.task_id, launch.agent_id),
                                   LaunchPlanToJson(plan).dump(2) + "\n");
}

// Who the deploy admits: the fields every admission of it records.
registry::AdmissionRequest AdmissionOf(const DeployRequest& request, const std::string& agent_id) {
  registry::AdmissionRequest admission;
  admission.agent_id = agent_id;
  admission.type = request.agent_type;
  admission.parent = request.parent;
  admission.prompt = request.prompt;
  admission.backend = request.backend;
  admission.model = request.model;
  return admission;
}

// What the task registry checks and records when it admits the agent.
registry::AdmissionRequest AdmissionFor(const DeployRequest& request, const Workspace& workspace,
                                        const LaunchRequest& launch, const LaunchPlan& plan) {
  const std::string& agent_id = launch.agent_id;
  registry::AdmissionRequest admission = AdmissionOf(request, agent_id);
  admission.session_id = launch.session_id;
  admission.cwd = plan.cwd;
  admission.tracked_files.prompt_file = launch.prompt_path;
  admission.tracked_files.log_file = plan.log_path;
  admission.tracked_files.progress_file = workspace.ProgressPath(request.task_id, agent_id);
  admission.tracked_files.findings_file = workspace.FindingsPath(request.task_id, agent_id);
  return admission;
}

// Why the supervisor did not start the agent, from its handshake; "" if
// it did.
std::string StartFailure(const Result<std::string>& handshake, const Workspace& workspace,
                         const std::string& task_id, const std::string& agent_id) {
  if (!handshake.ok()) return handshake.status().message();
  if (handshake->rfind("started ", 0) == 0) return "";
  if (handshake->rfind("failed ", 0) == 0) return handshake->substr(7);
  return "the supervisor exited before starting the agent (see " +
         workspace.SupervisorLogPath(task_id, agent_id) + ")";
}

// After admission: creates the agent's own worktree (recording what was
// made) and gives the agent its HERD_PORT, rewriting its launch plan.
Status PrepareWorktreeAndPort(const registry::Registry& registry, const Workspace& workspace,
                              const std::string& task_id, const WorktreePlan& worktree,
                              registry::AgentRecord& entry, LaunchPlan* plan) {
  if (worktree.record) {
    HERD_ASSIGN_OR_RETURN(PreparedWorktree prepared,
                          PrepareAgentWorktree(worktree, plan->log_path, entry.port));
    for (const std::string& warning : prepared.warnings) spdlog::warn("{}: {}", entry.id, warning);
    Status recorded = registry.RecordWorktree(task_id, entry.id, prepared.record);
    if (!recorded.ok()) {
      DiscardAgentWorktree(prepared.record);
      return recorded.WithContext("the worktree was not recorded (and was removed again)");
    }
    entry.worktree = prepared.record;
  }
  if (!entry.port) return Status::Ok();
  SetHerdPort(plan, entry.port);
  return store::ReplaceFileDurably(store::FileSystem::Default(),
                                   workspace.LaunchPlanPath(task_id, entry.id),
                                   LaunchPlanToJson(*plan).dump(2) + "\n");
}

// ---- placed agents ------------------------------------------------------------------

// The launch inputs a placed agent's node needs (AgentRecord::launch): the
// node plans the agent's worktree itself, in its own checkout.
json PlacedLaunchInputs(const DeployRequest& request) {
  json launch = {{"prompt", request.prompt}};
  if (!request.command_argv.empty()) launch["command"] = request.command_argv;
  if (request.isolate_config) launch["isolate_config"] = true;
  const WorktreeRequest& worktree = request.worktree;
  json options = json::object();
  if (worktree.own) options["own"] = *worktree.own;
  if (!worktree.base.empty()) options["base"] = worktree.base;
  if (!worktree.branch.empty()) options["branch"] = worktree.branch;
  if (!worktree.copy_paths.empty()) options["copy"] = worktree.copy_paths;
  if (!worktree.setup.empty()) options["setup"] = worktree.setup;
  if (!options.empty()) launch["worktree"] = std::move(options);
  return launch;
}

// A child of a placed agent that works in a herd worktree works there too,
// or bases its own worktree on the parent's branch: both are on the
// parent's node, so the child goes there, into the parent's directory.
Status PlaceBesideParentsWorktree(const registry::TaskRecord& task, const std::string& parent,
                                  registry::AdmissionRequest* admission) {
  const registry::AgentRecord* entry =
      parent == registry::kOrchestratorParent ? nullptr : task.FindAgent(parent);
  // A placed agent's directory is its task's unless it works in a worktree.
  if (entry == nullptr || !entry->node || entry->cwd == task.client_cwd) return Status::Ok();
  const std::string& node = entry->node->name;
  registry::PlacementRequest& placement =
      admission->placement.emplace(admission->placement.value_or(registry::PlacementRequest{}));
  if (!placement.node.empty() && placement.node != node) {
    return Status::InvalidArgument("agent " + parent + " works in the worktree " + entry->cwd +
                                   " on node " + node +
                                   ", and its children work there too: deploy it without --node "
                                   "(or with --node " +
                                   node + ")");
  }
  placement.node = node;
  admission->cwd = entry->cwd;
  return Status::Ok();
}

// Whether deploys under `stores` are placed on nodes: a shared registry
// with a node that has not left (an expired lease still counts: its
// refusal says so), or a deploy that asks for a node.
Result<bool> DeployIsPlaced(const RegistryStores& stores, const DeployRequest& request) {
  if (!registry::UsesPostgres(stores)) {
    if (!request.placement) return false;
    return Status::InvalidArgument(
        "nodes (--node, --node-label) need the shared PostgreSQL registry: set HERD_REGISTRY "
        "(or --registry) to it, and start `herd node` on each machine");
  }
  if (request.placement) return true;
  HERD_ASSIGN_OR_RETURN(std::vector<registry::NodeView> nodes, stores.postgres->ListNodes());
  return std::any_of(nodes.begin(), nodes.end(),
                     [](const registry::NodeView& node) { return node.state != "left"; });
}

// The node's reason for not starting `agent_id`, from its output tail.
std::string NodeStartFailure(const registry::Registry& registry, const std::string& task_id,
                             const std::string& agent_id) {
  Result<std::string> tail = registry.ReadOutputTail(task_id, agent_id);
  if (!tail.ok() || tail->empty()) return "its node released it without saying why";
  std::string reason = *tail;
  while (!reason.empty() && reason.back() == '\n') reason.pop_back();
  return reason;
}

// DeployAgent for a placed agent: admission with placement and launch
// inputs, then the wait for its node.
Result<registry::AgentRecord> DeployPlaced(const registry::Registry& registry,
                                           const registry::TaskRecord& task,
                                           const DeployRequest& request) {
  if (request.tmux) {
    return Status::InvalidArgument(
        "--tmux opens a view on this machine, and this agent runs on a node: follow it with "
        "`herd logs --follow` instead");
  }
  std::string agent_id = registry::NewAgentId(request.agent_type);
  registry::AdmissionRequest admission = AdmissionOf(request, agent_id);
  if (BackendTakesSessionId(request.backend)) admission.session_id = RandomUuid();
  admission.cwd = task.client_cwd;
  admission.placement = request.placement.value_or(registry::PlacementRequest{});
  HERD_RETURN_IF_ERROR(PlaceBesideParentsWorktree(task, request.parent, &admission));
  admission.launch = PlacedLaunchInputs(request);
  HERD_ASSIGN_OR_RETURN(admission.port_candidates, PortCandidates(request.task_id));
  // Open the wait before the admission, so the node's start is never missed.
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<registry::CommitWatch> watch,
                        registry.WatchCommits(request.task_id));
  HERD_ASSIGN_OR_RETURN(
      registry::AgentRecord entry,
      registry.Admit(request.task_id, admission, registry::GlobalRunningCapFromEnvironment()));
  return AwaitPlacedStart(registry, *watch, request.task_id, entry.id, 1);
}

// The deploy a placed agent's record stands for, on its node.
Result<DeployRequest> PlacedDeployRequest(const std::string& task_id,
                                          const registry::AgentRecord& agent) {
  const json& launch = agent.launch;
  if (!launch.is_object() || !launch.contains("prompt") || !launch["prompt"].is_string()) {
    return Status::Corruption("agent " + agent.id + " of task " + task_id +
                              " has no launch inputs (deployed by an older herd?): kill it "
                              "and deploy it again with this herd");
  }
  DeployRequest request;
  request.task_id = task_id;
  request.agent_type = agent.type;
  request.parent = agent.parent;
  request.backend = agent.backend;
  request.model = agent.model;
  request.prompt = launch["prompt"].get<std::string>();
  if (launch.contains("command") && launch["command"].is_array()) {
    for (const json& arg : launch["command"]) {
      if (arg.is_string()) request.command_argv.push_back(arg.get<std::string>());
    }
  }
  request.isolate_config = launch.value("isolate_config", false);
  const json worktree = launch.value("worktree", json::object());
  if (worktree.is_object()) {
    if (worktree.contains("own") && worktree["own"].is_boolean()) {
      request.worktree.own = worktree["own"].get<bool>();
    }
    request.worktree.base = worktree.value("base", "");
    request.worktree.branch = worktree.value("branch", "");
    request.worktree.setup = worktree.value("setup", "");
    for (const json& path : worktree.value("copy", json::array())) {
      if (path.is_string()) request.worktree.copy_paths.push_back(path.get<std::string>());
    }
  }
  return request;
}

// The directory a placed agent works in before its own worktree, if any:
// the one its admission recorded (its task's, or its parent's worktree),
// when that directory exists on this machine, else the node's workspace
// base.
std::string PlacedWorkingDirectory(const registry::AgentRecord& agent, const Workspace& workspace) {
  struct stat info {};
  if (!agent.cwd.empty() && stat(agent.cwd.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
    return agent.cwd;
  }
  return workspace.base();
}

// StartPlacedAgent's work; the caller undoes the admission on failure.
Status StartPlaced(const registry::Registry& registry, const Workspace& workspace,
                   const std::string& task_id, const registry::AgentRecord& agent,
                   const NodeContext& node) {
  HERD_ASSIGN_OR_RETURN(DeployRequest request, PlacedDeployRequest(task_id, agent));
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry.ReadTask(task_id));
  const registry::TaskRecord& task = snapshot->task;
  std::string cwd = PlacedWorkingDirectory(agent, workspace);
  // The worktree, planned and made in this machine's checkout.
  HERD_ASSIGN_OR_RETURN(WorktreePlan worktree,
                        PlanAgentWorktree(request.worktree, task, request.parent, cwd, agent.id));
  if (!worktree.cwd.empty()) cwd = worktree.cwd;
  LaunchRequest launch = LaunchRequestFor(request, workspace, agent.id);
  launch.session_id = agent.session_id;
  HERD_ASSIGN_OR_RETURN(LaunchPlan plan, PlanAgentLaunch(launch, request, task, workspace, cwd));
  if (!worktree.cwd.empty()) plan.environment.push_back("HERD_WORKTREE=" + worktree.cwd);
  HERD_RETURN_IF_ERROR(WriteAgentFiles(request, workspace, launch, plan));
  registry::AgentRecord entry = agent;
  Status prepared = PrepareWorktreeAndPort(registry, workspace, task_id, worktree, entry, &plan);
  std::string failure = prepared.ok()
                            ? StartFailure(StartSupervisor(workspace, task_id, agent.id, 1, &node),
                                           workspace, task_id, agent.id)
                            : prepared.message();
  if (failure.empty()) return Status::Ok();
  // A worktree made for it goes again (its content is only what herd put there).
  if (entry.worktree && !entry.worktree->base_sha.empty()) DiscardAgentWorktree(*entry.worktree);
  return Status::IOError(failure);
}

}  // namespace

std::string ComposeAgentPrompt(const std::string& task_id, const std::string& agent_id,
                               const std::string& parent, const std::string& prompt) {
  return "You are one agent in a herd of coding agents coordinated by herd.\n"
         "Task ID: " +
         task_id +
         "\n"
         "Agent ID: " +
         agent_id +
         "\n"
         "Parent: " +
         parent +
         "\n"
         "\n"
         "Report through the herd MCP server's tools, always passing the Task ID and Agent ID "
         "above:\n"
         "- update_agent_progress(task_id, agent_id, status, message, progress): status is "
         "working, blocked, completed or error; progress 0-100. Its reply lists the other "
         "agents' status, recent progress and findings.\n"
         "- report_agent_finding(task_id, agent_id, finding_type, severity, message, data): "
         "severity is one of " +
         registry::FindingSeveritiesText() +
         ".\n"
         "- spawn_child_agent(task_id, parent_agent_id, child_agent_type, child_prompt): give "
         "your Agent ID as parent_agent_id.\n"
         "When you are done, call update_agent_progress with status \"completed\" and progress "
         "100.\n"
         "\n"
         "Your assignment:\n" +
         prompt + "\n";
}

Result<registry::AgentRecord> DeployAgent(const RegistryStores& stores, const Workspace& workspace,
                                          const DeployRequest& request) {
  HERD_RETURN_IF_ERROR(ValidateDeployRequest(request));
  std::unique_ptr<const registry::Registry> opened = registry::RegistryFor(stores, workspace);
  const registry::Registry& registry = *opened;
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry.ReadTask(request.task_id));
  const registry::TaskRecord& task = snapshot->task;
  HERD_ASSIGN_OR_RETURN(bool placed, DeployIsPlaced(stores, request));
  if (placed) return DeployPlaced(registry, task, request);
  std::string cwd = AgentWorkingDirectory(task, workspace);

  std::string agent_id = registry::NewAgentId(request.agent_type);
  HERD_ASSIGN_OR_RETURN(WorktreePlan worktree,
                        PlanAgentWorktree(request.worktree, task, request.parent, cwd, agent_id));
  if (!worktree.cwd.empty()) cwd = worktree.cwd;
  LaunchRequest launch = LaunchRequestFor(request, workspace, agent_id);
  HERD_ASSIGN_OR_RETURN(LaunchPlan plan, PlanAgentLaunch(launch, request, task, workspace, cwd));
  if (!worktree.cwd.empty()) plan.environment.push_back("HERD_WORKTREE=" + worktree.cwd);

  // Files first, outside any lock.
  HERD_RETURN_IF_ERROR(WriteAgentFiles(request, workspace, launch, plan));

  // Check and reserve in one transaction (with the worktree as planned and
  // a HERD_PORT).
  registry::AdmissionRequest admission = AdmissionFor(request, workspace, launch, plan);
  admission.worktree = worktree.record;
  HERD_ASSIGN_OR_RETURN(admission.port_candidates, PortCandidates(request.task_id));
  HERD_ASSIGN_OR_RETURN(
      registry::AgentRecord entry,
      registry.Admit(request.task_id, admission, registry::GlobalRunningCapFromEnvironment()));

  // Act outside the lock.
  Status prepared =
      PrepareWorktreeAndPort(registry, workspace, request.task_id, worktree, entry, &plan);
  if (!prepared.ok()) {
    // A worktree made before the failure goes again (a failed creation
    // took back its own).
    if (entry.worktree && !entry.worktree->base_sha.empty()) DiscardAgentWorktree(*entry.worktree);
    Status released = registry.Release(request.task_id, agent_id);
    if (!released.ok()) spdlog::error("could not release {}: {}", agent_id, released.ToString());
    return prepared.WithContext("agent " + agent_id + " was not started");
  }
  std::string failure = StartFailure(StartSupervisor(workspace, request.task_id, agent_id, 1),
                                     workspace, request.task_id, agent_id);
  if (!failure.empty()) {
    Status released = registry.Release(request.task_id, agent_id);
    if (!released.ok()) spdlog::error("could not release {}: {}", agent_id, released.ToString());
    if (entry.worktree) DiscardAgentWorktree(*entry.worktree);
    return Status::IOError("agent " + agent_id + " did not start: " + failure);
  }

  Result<registry::SharedTask> after = registry.ReadTask(request.task_id);
  if (after.ok()) {
    if (const registry::AgentRecord* recorded = (*after)->task.FindAgent(agent_id))
      return *recorded;
  }
  return entry;
}

Result<registry::AgentRecord> StartFollowUpTurn(const RegistryStores& stores,
                                                const Workspace& workspace,
                                                const std::string& task_id,
                                                const std::string& agent_id, int turn,
                                                const NodeContext* node) {
  std::unique_ptr<const registry::Registry> opened = registry::RegistryFor(stores, workspace);
  const registry::Registry& registry = *opened;
  std::string failure = StartFailure(StartSupervisor(workspace, task_id, agent_id, turn, node),
                                     workspace, task_id, agent_id);
  if (!failure.empty()) {
    Status undone = registry.AbandonTurn(task_id, agent_id, turn, "did not start: " + failure);
    if (!undone.ok()) {
      spdlog::error("could not undo turn {} of {}: {}", turn, agent_id, undone.ToString());
    }
    return Status::IOError("turn " + std::to_string(turn) + " of agent " + agent_id +
                           " did not start: " + failure);
  }
  HERD_ASSIGN_OR_RETURN(registry::SharedTask after, registry.ReadTask(task_id));
  const registry::AgentRecord* recorded = after->task.FindAgent(agent_id);
  if (recorded == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  return *recorded;
}

Status StartPlacedAgent(const RegistryStores& stores, const Workspace& workspace,
                        const std::string& task_id, const registry::AgentRecord& agent,
                        const NodeContext& node) {
  std::unique_ptr<const registry::Registry> opened = registry::RegistryFor(stores, workspace);
  const registry::Registry& registry = *opened;
  Status started = StartPlaced(registry, workspace, task_id, agent, node);
  if (started.ok()) return started;
  // The deploy waiting for it quotes this (AwaitPlacedStart).
  std::string reason = "node " + node.name + " could not start it: " + started.message();
  Status told = registry.AppendOutput(task_id, agent.id, reason + "\n");
  if (!told.ok()) spdlog::warn("{}: the reason was not recorded: {}", agent.id, told.ToString());
  Status released = registry.Release(task_id, agent.id);
  if (!released.ok()) spdlog::error("could not release {}: {}", agent.id, released.ToString());
  return Status::IOError(reason);
}

Result<registry::AgentRecord> AwaitPlacedStart(const registry::Registry& registry,
                                               registry::CommitWatch& watch,
                                               const std::string& task_id,
                                               const std::string& agent_id, int turn) {
  std::string what =
      turn > 1 ? "turn " + std::to_string(turn) + " of agent " + agent_id : "agent " + agent_id;
  std::string node = "?";
  auto deadline = MonotonicClock::now() + kPlacedStartPatience;
  for (;;) {
    HERD_ASSIGN_OR_RETURN(registry::SharedTask task, registry.ReadTask(task_id));
    const registry::AgentRecord* agent = task->task.FindAgent(agent_id);
    if (agent != nullptr && agent->node) node = agent->node->name;
    if (agent == nullptr) {  // released by its node
      return Status::IOError(what + " was placed on node " + node + " but did not start: " +
                             NodeStartFailure(registry, task_id, agent_id));
    }
    if (agent->turn < turn) {  // the node abandoned the turn (turns.h AbandonTurn)
      std::string reason = agent->undelivered_messages.empty()
                               ? "its node gave no reason"
                               : agent->undelivered_messages.back().undelivered_reason;
      return Status::IOError(what + " did not start on node " + node + ": " + reason);
    }
    if (agent->turn > turn || agent->process.recorded()) return *agent;
    if (!registry::IsActiveStatus(agent->status)) {  // a kill, a stop, its node lost
      return Status::IOError(
          what + " ended before node " + node + " started it: " + agent->status + ", " +
          agent->termination_reason.value_or(agent->error.value_or("no reason recorded")));
    }
    HERD_ASSIGN_OR_RETURN(Wake wake, watch.WaitUntil(deadline, nullptr));
    if (wake != Wake::kDeadline) continue;
    registry::Termination termination;
    termination.reason = "node " + node + " did not start it within " +
                         std::to_string(kPlacedStartPatience.count()) + " s";
    Result<registry::TerminationOutcome> ended = registry.Terminate(task_id, agent_id, termination);
    if (ended.ok() && !ended->changed) return ended->agent;  // it started or ended just now
    return Status::Timeout(what + " was placed on node " + node +
                           ", which did not start it within " +
                           std::to_string(kPlacedStartPatience.count()) +
                           " s; it is marked terminated, so it will not start late. Check that "
                           "`herd node` runs on that machine (`herd node list`), then try again");
  }
}

}  // namespace herd::agents
