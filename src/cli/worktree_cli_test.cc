// herd deploy --worktree, diff, merge, status and worktree list/remove/prune
// end to end: the real herd binary, real command agents (sh running git),
// real git repositories in temporary directories. Nothing waits with a
// fixed sleep: agents are awaited through their supervisors' pidfds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <set>

#include "agents/testing_util_for_test.h"
#include "health/doctor.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "worktrees/git.h"

namespace herd::test_util {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string Git(const std::string& directory, const std::vector<std::string>& args) {
  Result<std::string> out = worktrees::GitLine(directory, args);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "";
}

// The project is the test's root directory, which holds the workspace
// (so agents run there) and herd's state (ignored by the repository).
class WorktreeCliTest : public HerdTest {
 protected:
  void SetUp() override {
    HerdTest::SetUp();
    repo_ = root();
    Git(repo_, {"init", "-q", "-b", "main"});
    Git(repo_, {"config", "user.email", "person@example.com"});
    Git(repo_, {"config", "user.name", "A Person"});
    WriteFile(repo_ + "/.gitignore", "/workspace/\n/state/\n/project/\n/*.pid\n/persons*/\n");
    WriteFile(repo_ + "/a.txt", "one\ntwo\nthree\n");
    Git(repo_, {"add", "-A"});
    Git(repo_, {"commit", "-q", "-m", "initial"});
  }

  const std::string& project() const { return repo_; }

  std::string WorktreeTask(std::vector<std::string> extra = {}) { return CreateTask(extra); }

  std::string repo_;

  // A command agent in its own worktree running `script` under sh.
  json DeployScript(const std::string& task_id, const std::string& script,
                    std::vector<std::string> extra = {}) {
    extra.insert(extra.begin(), "--worktree");
    return Deploy(task_id, {"sh", "-c", script}, "worker", extra);
  }

  std::string WorktreeRoot() const { return state() + "/herd/worktrees"; }

  // Every folder herd made for agents of `task_id`, on disk.
  std::vector<std::string> WorktreeFolders(const std::string& task_id) const {
    std::vector<std::string> folders;
    if (!fs::is_directory(WorktreeRoot())) return folders;
    for (const auto& repository : fs::directory_iterator(WorktreeRoot())) {
      fs::path task = repository.path() / task_id;
      if (!fs::is_directory(task)) continue;
      for (const auto& agent : fs::directory_iterator(task)) folders.push_back(agent.path());
    }
    return folders;
  }
};

TEST_F(WorktreeCliTest, AnAgentWorksInItsOwnWorktreeItsDiffIsReadAndItsWorkMergedBack) {
  std::string task_id = WorktreeTask();
  json deployed = DeployScript(task_id,
                               "pwd > where.txt; echo \"$HERD_PORT\" > port.txt; "
                               "echo four >> a.txt; git add a.txt; git commit -qm 'agent work'; "
                               "echo scratch > untracked.txt");
  std::string agent_id = deployed.at("agent_id");
  json entry = WaitForAgentToEnd(task_id, agent_id);
  ASSERT_EQ(entry.value("status", ""), "completed") << entry.dump(2);
  const json& worktree = entry.at("worktree");
  std::string path = worktree.at("path");
  EXPECT_EQ(worktree.value("branch", ""), "herd/" + task_id + "/" + agent_id);
  EXPECT_EQ(worktree.value("repository", ""), fs::canonical(project()).string());
  EXPECT_EQ(worktree.value("base_ref", ""), "main");
  EXPECT_EQ(worktree.value("base_sha", ""), Git(project(), {"rev-parse", "main"}));
  EXPECT_TRUE(worktree.value("created_branch", false));
  EXPECT_EQ(path.rfind(WorktreeRoot() + "/", 0), 0u) << path;
  EXPECT_EQ(entry.value("cwd", ""), path);
  EXPECT_EQ(ReadFile(path + "/where.txt"), path + "\n");
  ASSERT_TRUE(entry.contains("port"));
  EXPECT_EQ(ReadFile(path + "/port.txt"), std::to_string(entry.value("port", 0)) + "\n");
  // The project itself is untouched.
  EXPECT_FALSE(FileExists(project() + "/where.txt"));
  EXPECT_EQ(ReadFile(project() + "/a.txt"), "one\ntwo\nthree\n");

  json names = HerdJson({"diff", task_id, agent_id, "--name-only"});
  EXPECT_EQ(names.value("diff", ""), "a.txt\nport.txt\nuntracked.txt\nwhere.txt\n");
  json patch = HerdJson({"diff", task_id, agent_id});
  EXPECT_THAT(patch.value("diff", ""), HasSubstr("+four"));
  EXPECT_EQ(patch.at("summary").value("commits_ahead", 0), 1);
  EXPECT_TRUE(patch.at("summary").value("dirty", false));

  json status = Status(task_id);
  const json& listed = status.at("agents").at("agents_list").at(0).at("worktree_summary");
  EXPECT_EQ(listed.value("files_changed", 0), 4);
  EXPECT_EQ(listed.value("commits_ahead", 0), 1);
  EXPECT_TRUE(listed.value("dirty", false));
  CommandResult text = Herd({"status", task_id});
  EXPECT_THAT(text.out, HasSubstr("herd/" + task_id + "/" + agent_id));

  // Uncommitted files are refused unless asked for, then merged as the
  // agent's own commit.
  CommandResult refused = Herd({"merge", task_id, agent_id});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("untracked.txt"));
  json merged = HerdJson({"merge", task_id, agent_id, "--commit-pending"});
  EXPECT_TRUE(merged.value("merged", false));
  EXPECT_EQ(Git(project(), {"rev-parse", "main"}), merged.value("commit", ""));
  EXPECT_EQ(ReadFile(project() + "/a.txt"), "one\ntwo\nthree\nfour\n");
  EXPECT_EQ(AgentEntry(task_id, agent_id).at("worktree").at("merge").value("strategy", ""),
            "squash");

  // Squash-merged: nothing would be lost, so it may go, branch and all.
  json removed = HerdJson({"worktree", "remove", task_id, agent_id});
  EXPECT_TRUE(removed.value("branch_deleted", false));
  EXPECT_FALSE(FileExists(path));
  EXPECT_EQ(Git(project(), {"branch", "--list", "herd/*"}), "");
  EXPECT_TRUE(AgentEntry(task_id, agent_id).at("worktree").contains("removed_at"));
}

TEST_F(WorktreeCliTest, AProjectThatIsNotARepositoryIsAClearErrorAndUsesNoSlot) {
  TempDir outside("herd-plain");
  std::string plain = outside.path();
  std::string task_id = CreateTask({"--cwd", plain});
  CommandResult result = Herd(DeployArgs(task_id, "worker", {"true"}, {"--worktree"}));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("not inside a git repository"));
  EXPECT_THAT(result.err, HasSubstr("git init"));
  EXPECT_EQ(Status(task_id).at("agents").value("total_spawned", -1), 0);
  CommandResult create = Herd({"task", "create", "a task", "--cwd", plain, "--worktree"});
  EXPECT_NE(create.exit_code, 0);
  EXPECT_THAT(create.err, HasSubstr("not inside a git repository"));
}

TEST_F(WorktreeCliTest, AFailingSetupFailsTheDeployWithItsOutputAndLeavesNothing) {
  std::string task_id = WorktreeTask();
  CommandResult result = Herd(DeployArgs(
      task_id, "worker", {"true"}, {"--worktree", "--setup", "echo installing deps; exit 3"}));
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("installing deps"));
  EXPECT_THAT(result.err, HasSubstr("exited with code 3"));
  EXPECT_EQ(TaskRegistry(task_id).value("total_spawned", -1), 0);
  EXPECT_TRUE(WorktreeFolders(task_id).empty());
  EXPECT_EQ(Git(project(), {"branch", "--list", "herd/*"}), "");
  EXPECT_EQ(Git(project(), {"worktree", "list", "--porcelain"}).find("locked herd"),
            std::string::npos);

  // A setup that succeeds runs in the worktree before the agent.
  json deployed =
      DeployScript(task_id, "cat ready.txt > seen.txt", {"--setup", "echo set-up > ready.txt"});
  json entry = WaitForAgentToEnd(task_id, deployed.at("agent_id"));
  EXPECT_EQ(ReadFile(entry.at("worktree").value("path", "") + "/seen.txt"), "set-up\n");
}

TEST_F(WorktreeCliTest, IgnoredFilesListedInWorktreeIncludeAndCopyPathsAreCopiedIn) {
  WriteFile(project() + "/.gitignore", ".env\nlocal/\n");
  WriteFile(project() + "/.worktreeinclude", ".env\n");
  Git(project(), {"add", "-A"});
  Git(project(), {"commit", "-q", "-m", "ignores"});
  WriteFile(project() + "/.env", "TOKEN=1\n");
  fs::create_directories(project() + "/local");
  WriteFile(project() + "/local/settings", "s\n");
  std::string task_id = WorktreeTask();
  json deployed = DeployScript(task_id, "cat .env local/settings > seen.txt", {"--copy", "local"});
  json entry = WaitForAgentToEnd(task_id, deployed.at("agent_id"));
  EXPECT_EQ(ReadFile(entry.at("worktree").value("path", "") + "/seen.txt"), "TOKEN=1\ns\n");
}

TEST_F(WorktreeCliTest, ConcurrentDeploysIntoOneRepositoryAllGetWorktreesAndPorts) {
  std::string task_id = WorktreeTask({"--worktree"});  // the task's default
  constexpr int kAgents = 6;
  std::vector<std::unique_ptr<HerdProcess>> deploys;
  for (int i = 0; i < kAgents; ++i) {
    deploys.push_back(std::make_unique<HerdProcess>(
        CommandDeployArgs(task_id, "worker", {"sh", "-c", "echo $HERD_PORT > port.txt"})));
  }
  for (auto& deploy : deploys) {
    CommandResult result = deploy->Wait();
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
  }
  std::set<std::string> paths;
  std::set<int> ports;
  json registry = TaskRegistry(task_id);
  for (const json& agent : registry.at("agents")) {
    WaitForAgentToEnd(task_id, agent.at("id"));
    paths.insert(agent.at("worktree").value("path", ""));
    ports.insert(agent.value("port", 0));
  }
  EXPECT_EQ(paths.size(), static_cast<size_t>(kAgents));
  EXPECT_EQ(ports.size(), static_cast<size_t>(kAgents));
  EXPECT_EQ(WorktreeFolders(task_id).size(), static_cast<size_t>(kAgents));
}

// HERD_PORT is one running agent's on the machine, whatever its task: two
// tasks deploy at once into a range of 12 ports (so their candidates are
// the same), and every running agent holds its own port, in the registry
// and in its environment.
TEST_F(WorktreeCliTest, ConcurrentDeploysInTwoTasksNeverShareAPort) {
  ScopedEnvironment environment;
  environment.Set("HERD_PORT_RANGE", "27700-27711");
  std::vector<std::string> tasks = {WorktreeTask({"--worktree"}), WorktreeTask({"--worktree"})};
  constexpr int kAgentsEach = 4;
  std::vector<std::unique_ptr<HerdProcess>> deploys;
  for (int i = 0; i < kAgentsEach; ++i) {
    for (const std::string& task_id : tasks) {
      deploys.push_back(
          std::make_unique<HerdProcess>(CommandDeployArgs(task_id, "server", {"sleep", "300"})));
    }
  }
  for (auto& deploy : deploys) {
    CommandResult result = deploy->Wait();
    EXPECT_EQ(result.exit_code, 0) << result.Describe();
  }
  std::set<int> ports;
  int agents = 0;
  for (const std::string& task_id : tasks) {
    json registry = TaskRegistry(task_id);
    for (const json& agent : registry.at("agents")) {
      ++agents;
      ASSERT_TRUE(agent.contains("port")) << agent.dump(2);
      int port = agent.value("port", 0);
      EXPECT_TRUE(ports.insert(port).second) << agent.value("id", "") << " shares " << port;
      std::string environ = ReadFile("/proc/" + std::to_string(agent.value("pid", 0)) + "/environ");
      EXPECT_NE(environ.find(std::string("HERD_PORT=") + std::to_string(port) + '\0'),
                std::string::npos)
          << agent.value("id", "") << " runs without its HERD_PORT " << port;
    }
  }
  EXPECT_EQ(agents, 2 * kAgentsEach);
  for (const std::string& task_id : tasks) HerdJson({"kill", task_id, "--all", "--grace", "1"});
}

TEST_F(WorktreeCliTest, AMalformedPortRangeRefusesTheDeployAndSaysHowToWriteIt) {
  std::string task_id = WorktreeTask({"--worktree"});
  RunOptions options;
  options.environment = {{"HERD_PORT_RANGE", "29999-20000"}};
  CommandResult refused = Herd(CommandDeployArgs(task_id, "server", {"true"}), options);
  EXPECT_EQ(refused.exit_code, 1) << refused.Describe();
  EXPECT_THAT(refused.err, HasSubstr("HERD_PORT_RANGE=29999-20000"));
  EXPECT_THAT(refused.err, HasSubstr("FIRST-LAST"));
  EXPECT_TRUE(TaskRegistry(task_id).at("agents").empty());
  EXPECT_TRUE(WorktreeFolders(task_id).empty());
}

TEST_F(WorktreeCliTest, KillKeepsTheWorkAndRemovalNeedsForceToLoseIt) {
  std::string task_id = WorktreeTask();
  json deployed = DeployScript(task_id, "echo precious > work.txt; exec sleep 600");
  std::string agent_id = deployed.at("agent_id");
  std::string path = AgentEntry(task_id, agent_id).at("worktree").value("path", "");
  ASSERT_TRUE(WaitForFile(path + "/work.txt"));
  CommandResult active_merge = Herd({"merge", task_id, agent_id});
  EXPECT_NE(active_merge.exit_code, 0);
  EXPECT_THAT(active_merge.err, HasSubstr("still running"));
  CommandResult active_remove = Herd({"worktree", "remove", task_id, agent_id, "--force"});
  EXPECT_NE(active_remove.exit_code, 0);
  HerdJson({"kill", task_id, agent_id, "--grace", "1"});
  WaitForAgentToEnd(task_id, agent_id);
  EXPECT_EQ(ReadFile(path + "/work.txt"), "precious\n");

  CommandResult refused = Herd({"worktree", "remove", task_id, agent_id});
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.err, HasSubstr("work.txt"));
  EXPECT_THAT(refused.err, HasSubstr("--force"));
  json pruned = HerdJson({"worktree", "prune"});
  EXPECT_EQ(pruned.at("removed").size(), 0u);
  ASSERT_EQ(pruned.at("kept").size(), 1u);
  EXPECT_THAT(pruned.at("kept").at(0).value("reason", ""), HasSubstr("work.txt"));
  EXPECT_EQ(ReadFile(path + "/work.txt"), "precious\n");

  json forced = HerdJson({"worktree", "remove", task_id, agent_id, "--force"});
  EXPECT_THAT(forced.value("lost", ""), HasSubstr("work.txt"));
  EXPECT_FALSE(FileExists(path));
}

TEST_F(WorktreeCliTest, AConflictingMergeNamesTheFileAndChangesNothing) {
  std::string task_id = WorktreeTask();
  std::string first =
      DeployScript(task_id, "printf 'one\\nFIRST\\nthree\\n' > a.txt; git commit -qam first")
          .at("agent_id");
  std::string second =
      DeployScript(task_id, "printf 'one\\nSECOND\\nthree\\n' > a.txt; git commit -qam second")
          .at("agent_id");
  WaitForAgentToEnd(task_id, first);
  json entry = WaitForAgentToEnd(task_id, second);
  HerdJson({"merge", task_id, first, "--rebase"});
  std::string main_head = Git(project(), {"rev-parse", "main"});
  std::string second_path = entry.at("worktree").value("path", "");
  std::string second_head = Git(second_path, {"rev-parse", "HEAD"});
  CommandResult conflict = Herd({"merge", task_id, second});
  EXPECT_NE(conflict.exit_code, 0);
  EXPECT_THAT(conflict.err, HasSubstr("conflicts in a.txt"));
  EXPECT_THAT(conflict.err, HasSubstr("nothing was changed"));
  EXPECT_EQ(Git(project(), {"rev-parse", "main"}), main_head);
  EXPECT_EQ(Git(second_path, {"rev-parse", "HEAD"}), second_head);
  EXPECT_EQ(ReadFile(project() + "/a.txt"), "one\nFIRST\nthree\n");
  EXPECT_EQ(Git(project(), {"status", "--porcelain"}), "");
  // Unmerged work keeps the second worktree through a prune.
  json pruned = HerdJson({"worktree", "prune"});
  ASSERT_EQ(pruned.at("kept").size(), 1u);
  EXPECT_EQ(pruned.at("kept").at(0).value("agent_id", ""), second);
  ASSERT_EQ(pruned.at("removed").size(), 1u);
  EXPECT_EQ(pruned.at("removed").at(0).value("agent_id", ""), first);
}

TEST_F(WorktreeCliTest, AChildWorksInItsParentsWorktreeUnlessItAsksForItsOwn) {
  std::string task_id = WorktreeTask();
  std::string parent = DeployScript(task_id, "exec sleep 600").at("agent_id");
  json parent_entry = AgentEntry(task_id, parent);
  std::string parent_path = parent_entry.at("worktree").value("path", "");
  std::string shared =
      Deploy(task_id, {"sh", "-c", "pwd > child.txt"}, "child", {"--parent", parent})
          .at("agent_id");
  json shared_entry = WaitForAgentToEnd(task_id, shared);
  EXPECT_EQ(shared_entry.value("cwd", ""), parent_path);
  EXPECT_FALSE(shared_entry.contains("worktree"));
  EXPECT_EQ(ReadFile(parent_path + "/child.txt"), parent_path + "\n");

  std::string own =
      Deploy(task_id, {"true"}, "child", {"--parent", parent, "--worktree"}).at("agent_id");
  json own_entry = WaitForAgentToEnd(task_id, own);
  EXPECT_EQ(own_entry.at("worktree").value("base_ref", ""),
            parent_entry.at("worktree").value("branch", ""));
  EXPECT_NE(own_entry.value("cwd", ""), parent_path);
  HerdJson({"kill", task_id, parent, "--grace", "1"});
}

TEST_F(WorktreeCliTest, DoctorCleansWhatADeployKilledDuringWorktreeCreationLeft) {
  std::string task_id = WorktreeTask();
  std::string marker = root() + "/setup.pid";
  // The deploy is SIGKILLed while its setup runs: the worktree exists, the
  // agent's entry never recorded it as complete.
  HerdProcess deploy(
      DeployArgs(task_id, "worker", {"true"},
                 {"--worktree", "--setup", "echo $$ > " + marker + "; exec sleep 600"}));
  ASSERT_TRUE(WaitForFile(marker));
  ::kill(deploy.pid(), SIGKILL);
  deploy.Wait();
  pid_t setup = std::stoi(ReadFile(marker));
  ::kill(setup, SIGKILL);
  std::vector<std::string> folders = WorktreeFolders(task_id);
  ASSERT_EQ(folders.size(), 1u);
  // A person's own worktree and branch, which doctor must not touch.
  std::string persons = root() + "/persons-worktree";
  Git(project(), {"worktree", "add", "-q", "-b", "persons", persons});

  health::DoctorOptions options;
  options.starting_grace = std::chrono::seconds(0);
  registry::RegistryStores stores;
  registry::Workspace workspace(this->workspace());
  Result<json> diagnosed = health::Diagnose(stores, workspace, options);
  ASSERT_TRUE(diagnosed.ok()) << diagnosed.status().ToString();
  EXPECT_THAT(diagnosed->dump(), HasSubstr("orphan_worktree"));
  options.repair = true;
  Result<json> repaired = health::Diagnose(stores, workspace, options);
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  EXPECT_TRUE(WorktreeFolders(task_id).empty()) << repaired->dump(2);
  EXPECT_EQ(Git(project(), {"branch", "--list", "herd/*"}), "");
  EXPECT_TRUE(FileExists(persons + "/a.txt"));
  EXPECT_FALSE(Git(project(), {"rev-parse", "--verify", "refs/heads/persons"}).empty());
}

}  // namespace
}  // namespace herd::test_util
