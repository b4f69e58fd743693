// A workspace as an attacker or a failing disk leaves it: symbolic links
// shipped inside `.agent-workspace/`, files made under a permissive umask,
// reports whose journal line cannot be written or whose writer is killed
// half-way. Everything runs the real herd binary on real files; the full
// disk is a real small tmpfs.
#include <fcntl.h>
#include <ftw.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "agents/testing_util_for_test.h"

namespace herd::test_util {
namespace {

// A person's file outside any workspace, that a link inside one points at.
constexpr char kPrecious[] = "a person's own file\n";

class WorkspaceSafetyTest : public HerdTest {
 protected:
  // The project's own workspace (tasks created with --cwd project).
  std::string ProjectWorkspace() const { return project() + "/.agent-workspace"; }

  std::string CreateProjectTask() {
    return CreateTask({"--cwd", project()}, "a task in the project");
  }
  std::string ProjectTaskDirectory(const std::string& task_id) const {
    return ProjectWorkspace() + "/" + task_id;
  }

  // Replaces the task's subdirectory `name` with a link to a fresh empty
  // directory outside the workspace, as a repository could ship it.
  // Returns the link's path; `outside` receives the target.
  std::string LinkSubdirectoryOutside(const std::string& task_id, const std::string& name,
                                      std::string* outside) {
    *outside = Subdirectory("outside");
    std::string link = ProjectTaskDirectory(task_id) + "/" + name;
    std::filesystem::remove_all(link);
    if (symlink(outside->c_str(), link.c_str()) != 0) throw std::runtime_error("symlink failed");
    return link;
  }
};

bool IsLink(const std::string& path) {
  struct stat info {};
  return lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode);
}

// --- Symbolic links --------------------------------------------------------

TEST_F(WorkspaceSafetyTest, TaskCreateNeverWritesThroughALinkedLockFile) {
  // A repository ships the index's lock file as a link to a person's file:
  // herd writes its holder line into every lock file it takes.
  std::string precious = root() + "/precious.txt";
  WriteFile(precious, kPrecious);
  std::filesystem::create_directories(ProjectWorkspace() + "/registry");
  ASSERT_EQ(symlink(precious.c_str(),
                    (ProjectWorkspace() + "/registry/GLOBAL_REGISTRY.json.lock").c_str()),
            0);

  CommandResult created = Herd({"task", "create", "x", "--cwd", project(), "--json"});

  EXPECT_EQ(ReadFile(precious), kPrecious) << created.Describe();
  EXPECT_NE(created.out + created.err, "");
  EXPECT_NE((created.out + created.err).find("symbolic link"), std::string::npos)
      << created.Describe();
}

TEST_F(WorkspaceSafetyTest, ALinkedWorkspaceDirectoryIsRefusedAndNothingIsWrittenThroughIt) {
  std::string outside = Subdirectory("outside");
  std::filesystem::create_directories(ProjectWorkspace());
  ASSERT_EQ(symlink(outside.c_str(), (ProjectWorkspace() + "/registry").c_str()), 0);

  CommandResult created = Herd({"task", "create", "x", "--cwd", project(), "--json"});

  EXPECT_EQ(created.exit_code, 1) << created.Describe();
  EXPECT_NE(created.out.find("is a symbolic link"), std::string::npos) << created.Describe();
  EXPECT_NE(created.out.find("rm " + ProjectWorkspace() + "/registry"), std::string::npos)
      << created.Describe();
  EXPECT_TRUE(std::filesystem::is_empty(outside)) << "herd wrote through the link";
}

TEST_F(WorkspaceSafetyTest, AProjectWorkspaceThatIsALinkIsRefused) {
  std::string outside = Subdirectory("outside");
  ASSERT_EQ(symlink(outside.c_str(), ProjectWorkspace().c_str()), 0);

  CommandResult created = Herd({"task", "create", "x", "--cwd", project(), "--json"});

  EXPECT_EQ(created.exit_code, 1) << created.Describe();
  EXPECT_NE(created.out.find("is a symbolic link"), std::string::npos) << created.Describe();
  EXPECT_TRUE(std::filesystem::is_empty(outside)) << "herd wrote through the link";
}

TEST_F(WorkspaceSafetyTest, ALinkedTaskSubdirectoryIsRefusedByEveryOperation) {
  std::string task_id = CreateProjectTask();
  std::string outside;
  std::string logs = LinkSubdirectoryOutside(task_id, "logs", &outside);

  CommandResult deployed = Herd(DeployArgs(task_id, "worker", {"echo", "hello"}));
  EXPECT_EQ(deployed.exit_code, 1) << deployed.Describe();
  EXPECT_NE(deployed.out.find(logs + " is a symbolic link"), std::string::npos)
      << deployed.Describe();
  CommandResult status = Herd({"status", task_id, "--json"});
  EXPECT_EQ(status.exit_code, 1) << status.Describe();
  EXPECT_TRUE(std::filesystem::is_empty(outside)) << "herd wrote through the link";
}

TEST_F(WorkspaceSafetyTest, ALinkedRegistryFileIsNeverReadOrReplaced) {
  std::string task_id = CreateProjectTask();
  std::string registry = ProjectTaskDirectory(task_id) + "/AGENT_REGISTRY.json";
  std::string elsewhere = root() + "/elsewhere.json";
  std::filesystem::rename(registry, elsewhere);
  std::string before = ReadFile(elsewhere);
  ASSERT_EQ(symlink(elsewhere.c_str(), registry.c_str()), 0);

  CommandResult deployed = Herd(DeployArgs(task_id, "worker", {"echo", "hello"}));

  EXPECT_EQ(deployed.exit_code, 1) << deployed.Describe();
  EXPECT_NE(deployed.out.find("symbolic link"), std::string::npos) << deployed.Describe();
  EXPECT_EQ(ReadFile(elsewhere), before);
  EXPECT_TRUE(IsLink(registry)) << "herd replaced a link it did not create";
}

TEST_F(WorkspaceSafetyTest, DoctorReportsLinksAndLeavesThemInPlace) {
  std::string task_id = CreateProjectTask();
  std::string outside;
  std::string findings = LinkSubdirectoryOutside(task_id, "findings", &outside);

  json report = Herd({"doctor", "--repair", "--json"}).Json();

  bool reported = false;
  for (const json& base : report["workspaces"]) {
    for (const json& task : base["tasks"]) {
      for (const json& finding : task["findings"]) {
        if (finding["kind"] == "workspace_link" && finding["path"] == findings) {
          reported = true;
          EXPECT_EQ(finding["severity"], "error");
          EXPECT_NE(finding["repair"].get<std::string>().find("rm " + findings), std::string::npos)
              << finding.dump();
        }
      }
    }
  }
  EXPECT_TRUE(reported) << report.dump(2);
  EXPECT_FALSE(report["summary"]["healthy"].get<bool>());
  EXPECT_TRUE(IsLink(findings)) << "doctor removed a link herd did not create";
}

// --- Permissions -------------------------------------------------------------

// Every path under `root` (links not followed) that the group or others may use.
std::vector<std::string> SharedPathsUnder(const std::string& root) {
  static thread_local std::vector<std::string>* found = nullptr;
  std::vector<std::string> paths;
  found = &paths;
  nftw(
      root.c_str(),
      [](const char* path, const struct stat* info, int type, struct FTW*) {
        if (type != FTW_SL && (info->st_mode & 077) != 0) {
          found->push_back(std::string(path) + " " + std::to_string(info->st_mode & 0777));
        }
        return 0;
      },
      16, FTW_PHYS);
  found = nullptr;
  return paths;
}

// Sets the process umask (inherited by herd) for the test's lifetime.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : previous_(umask(mask)) {}
  ~ScopedUmask() { umask(previous_); }

 private:
  mode_t previous_;
};

TEST_F(WorkspaceSafetyTest, EverythingHerdWritesIsPrivateUnderTheUsualUmask) {
  ScopedUmask usual(022);
  std::string task_id = CreateTask({"--isolate-config"});
  std::string agent_id =
      DeployAgent(task_id, {"sh", "-c",
                            "echo secret output; \"$HERD_BIN\" progress \"$HERD_TASK_ID\" "
                            "\"$HERD_AGENT_ID\" --status working --progress 50 --message m"});
  WaitForAgentToEnd(task_id, agent_id);
  HerdJson(
      {"finding", task_id, agent_id, "--type", "issue", "--severity", "low", "--message", "f"});
  HerdJson({"status", task_id});

  EXPECT_EQ(SharedPathsUnder(workspace()), std::vector<std::string>{});
  EXPECT_EQ(SharedPathsUnder(state() + "/herd"), std::vector<std::string>{});
}

TEST_F(WorkspaceSafetyTest, DoctorRepairMakesAWorkspaceMadeBeforePrivate) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, {"echo", "hello"});
  WaitForAgentToEnd(task_id, agent_id);
  // As an older herd left it under umask 022.
  std::filesystem::path base(workspace());
  std::filesystem::permissions(base, std::filesystem::perms(0755));
  for (const auto& entry : std::filesystem::recursive_directory_iterator(base)) {
    std::filesystem::permissions(entry.path(),
                                 std::filesystem::perms(entry.is_directory() ? 0755 : 0644));
  }
  ASSERT_FALSE(SharedPathsUnder(workspace()).empty());

  json diagnosis = HerdJson({"doctor"});
  std::string kinds = diagnosis.dump();
  EXPECT_NE(kinds.find("open_permissions"), std::string::npos) << diagnosis.dump(2);

  HerdJson({"doctor", "--repair"});
  EXPECT_EQ(SharedPathsUnder(workspace()), std::vector<std::string>{});
  json after = HerdJson({"doctor"});
  EXPECT_EQ(after.dump().find("open_permissions"), std::string::npos) << after.dump(2);
}

// --- Reports and their journals ----------------------------------------------

// Shortens the filler file of a full disk by `bytes`: about that much is free.
void FreeBytes(const std::string& filler, size_t bytes) {
  struct stat info {};
  ASSERT_EQ(stat(filler.c_str(), &info), 0);
  ASSERT_EQ(truncate(filler.c_str(), std::max<off_t>(0, info.st_size - static_cast<off_t>(bytes))),
            0);
}

// The journal's lines up to the length its agent's entry records.
std::vector<std::string> CommittedLines(const std::string& path, const json& agent,
                                        const char* length_key) {
  std::string contents = ReadFile(path);
  if (agent.contains(length_key)) contents.resize(agent[length_key].get<size_t>());
  std::vector<std::string> lines;
  std::istringstream in(contents);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST_F(WorkspaceSafetyTest, AReportWhoseJournalLineCannotBeWrittenIsNotRecorded) {
  std::string on_disk = root() + "/small";
  ScopedTmpfs disk(on_disk, 2 * 1024 * 1024);
  if (!disk.mounted()) GTEST_SKIP() << disk.error();
  std::string base = on_disk + "/workspace";
  RunOptions here;
  here.environment = {{"CLAUDE_ORCHESTRATOR_WORKSPACE", base}};
  std::string task_id =
      HerdJson({"task", "create", "on a small disk"}, here).at("task_id").get<std::string>();
  std::string agent_id = Herd({"deploy", task_id, "--type", "w", "--json", "--backend", "command",
                               "--", "sleep", "600"},
                              here)
                             .Json()
                             .at("agent_id")
                             .get<std::string>();
  std::string registry = base + "/" + task_id + "/AGENT_REGISTRY.json";
  std::string journal = base + "/" + task_id + "/progress/" + agent_id + "_progress.jsonl";
  HerdJson({"progress", task_id, agent_id, "--status", "working", "--progress", "10", "--message",
            "first"},
           here);

  // Room for a registry commit (a few KB) but not for a 60 KB journal line.
  std::string filler = disk.Fill();
  FreeBytes(filler, 32 * 1024);
  std::string long_message(60 * 1024, 'm');
  CommandResult refused = Herd({"progress", task_id, agent_id, "--status", "working", "--progress",
                                "20", "--message", long_message, "--json"},
                               here);

  EXPECT_EQ(refused.exit_code, 1) << refused.Describe().substr(0, 2000);
  json agent = AgentIn(ReadJsonFile(registry), agent_id);
  EXPECT_EQ(agent["progress"], 10) << "reported as failed, yet recorded";
  EXPECT_EQ(agent["last_message"], "first");
  std::string contents = ReadFile(journal);
  EXPECT_EQ(contents.back(), '\n') << "a partial line was left";
  EXPECT_EQ(CommittedLines(journal, agent, "progress_journal_bytes").size(), 1u);

  unlink(filler.c_str());
  HerdJson({"progress", task_id, agent_id, "--status", "working", "--progress", "20", "--message",
            long_message},
           here);
  agent = AgentIn(ReadJsonFile(registry), agent_id);
  std::vector<std::string> lines = CommittedLines(journal, agent, "progress_journal_bytes");
  ASSERT_EQ(lines.size(), 2u) << "the retry was recorded twice, or not at all";
  EXPECT_EQ(json::parse(lines[1])["progress"], 20);
  HerdJson({"kill", task_id, agent_id, "--grace", "0"}, here);
}

TEST_F(WorkspaceSafetyTest, JournalAndRegistryAgreeWhenReportersAreKilledMidway) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, {"sleep", "600"});
  std::string journal = TaskDirectory(task_id) + "/progress/" + agent_id + "_progress.jsonl";
  std::mt19937 random(12345);
  // Kill each reporter at a random moment of its run, which takes a few
  // milliseconds, so that some die between the registry commit and the
  // journal line.
  for (int round = 0; round < 120; ++round) {
    HerdProcess reporter({"progress", task_id, agent_id, "--status", "working", "--progress",
                          std::to_string(round % 100), "--message",
                          "round " + std::to_string(round)});
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 6000));
    kill(reporter.pid(), SIGKILL);
    reporter.Wait();
    // Whatever the moment: the registry's last report is the journal's last
    // committed line, and no line is torn.
    json agent = AgentEntry(task_id, agent_id);
    std::vector<std::string> lines = CommittedLines(journal, agent, "progress_journal_bytes");
    if (lines.empty()) {
      EXPECT_FALSE(agent.contains("last_message")) << "round " << round;
      continue;
    }
    json last = json::parse(lines.back(), nullptr, false);
    ASSERT_FALSE(last.is_discarded()) << "round " << round << ": torn line " << lines.back();
    ASSERT_EQ(last["message"], agent.value("last_message", "")) << "round " << round;
  }
  HerdJson({"kill", task_id, agent_id, "--grace", "0"});
}

TEST_F(WorkspaceSafetyTest, JournalOrderIsCommitOrderUnderContention) {
  std::string task_id = CreateTask();
  std::string agent_id = DeployAgent(task_id, {"sleep", "600"});
  std::string journal = TaskDirectory(task_id) + "/progress/" + agent_id + "_progress.jsonl";
  // Each reporter process reports its own numbered messages; all at once.
  constexpr int kReporters = 6, kReports = 15;
  std::vector<std::thread> threads;
  for (int reporter = 0; reporter < kReporters; ++reporter) {
    threads.emplace_back([&, reporter] {
      for (int report = 0; report < kReports; ++report) {
        RunHerd({"progress", task_id, agent_id, "--status", "working", "--progress",
                 std::to_string(report), "--message",
                 std::to_string(reporter) + "/" + std::to_string(report)});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  json agent = AgentEntry(task_id, agent_id);
  std::vector<std::string> lines = CommittedLines(journal, agent, "progress_journal_bytes");
  ASSERT_EQ(lines.size(), static_cast<size_t>(kReporters * kReports));
  EXPECT_EQ(json::parse(lines.back())["message"], agent["last_message"])
      << "the last line journaled is not the last report committed";
  // Each reporter's own reports appear in the order it made them.
  std::vector<int> next(kReporters, 0);
  for (const std::string& line : lines) {
    std::string message = json::parse(line)["message"];
    int reporter = std::stoi(message.substr(0, message.find('/')));
    int report = std::stoi(message.substr(message.find('/') + 1));
    EXPECT_EQ(report, next[reporter]++) << line;
  }
  HerdJson({"kill", task_id, agent_id, "--grace", "0"});
}

}  // namespace
}  // namespace herd::test_util
