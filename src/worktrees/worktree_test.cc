// Worktrees against real git repositories in temporary directories.
#include "worktrees/worktree.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "util/testing_for_test.h"
#include "worktrees/git.h"

namespace herd::worktrees {
namespace {

using testing_util::FileExists;
using testing_util::ReadFile;
using testing_util::TempDir;
using testing_util::WriteFile;

// Runs git in `directory` and returns its trimmed stdout; fails the test
// on a non-zero exit.
std::string G(const std::string& directory, const std::vector<std::string>& args) {
  Result<std::string> out = GitLine(directory, args);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : "";
}

class WorktreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = temp_.Subdirectory("project");
    root_ = temp_.Subdirectory("state/worktrees");
    G(repo_, {"init", "-q", "-b", "main"});
    G(repo_, {"config", "user.email", "person@example.com"});
    G(repo_, {"config", "user.name", "A Person"});
    WriteFile(repo_ + "/a.txt", "one\ntwo\nthree\n");
    WriteFile(repo_ + "/b.txt", "bee\n");
    Commit(repo_, "initial");
  }

  void Commit(const std::string& directory, const std::string& message) {
    G(directory, {"add", "-A"});
    G(directory, {"commit", "-q", "-m", message});
  }

  Created Make(const std::string& agent, CreateSpec spec = {}) {
    spec.directory = spec.directory.empty() ? repo_ : spec.directory;
    spec.root = root_;
    spec.task_id = "TASK-1";
    spec.agent_id = agent;
    Result<Created> created = CreateWorktree(spec);
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    return created.ok() ? *created : Created{};
  }

  TempDir temp_{"herd-worktree"};
  std::string repo_;
  std::string root_;
};

TEST_F(WorktreeTest, CreatesLockedWorktreeOnNewBranchFromBase) {
  Created created = Make("agent-1");
  const WorktreeInfo& info = created.info;
  EXPECT_EQ(info.repository, std::filesystem::canonical(repo_).string());
  EXPECT_EQ(info.branch, "herd/TASK-1/agent-1");
  EXPECT_EQ(info.base_ref, "main");
  EXPECT_EQ(info.base_sha, G(repo_, {"rev-parse", "main"}));
  EXPECT_TRUE(info.created_branch);
  EXPECT_EQ(info.path.rfind(root_ + "/project-", 0), 0u) << info.path;
  EXPECT_EQ(ReadFile(info.path + "/a.txt"), "one\ntwo\nthree\n");
  EXPECT_EQ(G(info.path, {"symbolic-ref", "--short", "HEAD"}), "herd/TASK-1/agent-1");
  std::string listed = G(repo_, {"worktree", "list", "--porcelain"});
  EXPECT_NE(listed.find("locked herd TASK-1/agent-1"), std::string::npos) << listed;
  // Locked: git's own prune keeps it even when its folder is gone.
  EXPECT_NE(G(repo_, {"worktree", "list"}).find(info.path), std::string::npos);
}

TEST_F(WorktreeTest, NotARepositoryIsAClearError) {
  CreateSpec spec;
  spec.directory = temp_.Subdirectory("plain");
  spec.root = root_;
  spec.task_id = "TASK-1";
  spec.agent_id = "agent-1";
  Result<Created> created = CreateWorktree(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(created.status().Is(Status::Code::kInvalidArgument));
  EXPECT_NE(created.status().message().find("not inside a git repository"), std::string::npos);
  EXPECT_NE(created.status().message().find("git init"), std::string::npos);
}

TEST_F(WorktreeTest, BadBaseAndBranchAreRefusedAndLeaveNothing) {
  CreateSpec spec{.directory = repo_,
                  .root = root_,
                  .task_id = "T",
                  .agent_id = "a",
                  .base_ref = "no-such-branch"};
  Result<Created> created = CreateWorktree(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find("no-such-branch"), std::string::npos);
  spec.base_ref = "";
  spec.branch = "bad..name";
  created = CreateWorktree(spec);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find("not a valid branch name"), std::string::npos);
  EXPECT_EQ(G(repo_, {"worktree", "list", "--porcelain"}).find("locked herd"), std::string::npos);
  EXPECT_EQ(G(repo_, {"branch", "--list", "herd/*"}), "");
}

TEST_F(WorktreeTest, CopiesGitignoredFilesListedInWorktreeInclude) {
  WriteFile(repo_ + "/.gitignore", ".env\nbuild/\nlocal.conf\n");
  WriteFile(repo_ + "/.worktreeinclude", ".env\nlocal.conf\n");
  Commit(repo_, "ignore rules");
  WriteFile(repo_ + "/.env", "SECRET=1\n");
  WriteFile(repo_ + "/local.conf", "conf\n");
  std::filesystem::create_directories(repo_ + "/build");
  WriteFile(repo_ + "/build/out.o", "binary\n");
  WriteFile(repo_ + "/untracked-not-ignored.txt", "x\n");
  Created created = Make("agent-1");
  EXPECT_EQ(ReadFile(created.info.path + "/.env"), "SECRET=1\n");
  EXPECT_EQ(ReadFile(created.info.path + "/local.conf"), "conf\n");
  EXPECT_FALSE(FileExists(created.info.path + "/build/out.o"));
  EXPECT_FALSE(FileExists(created.info.path + "/untracked-not-ignored.txt"));
  EXPECT_EQ(created.copied.size(), 2u);
}

TEST_F(WorktreeTest, CopyOptionCopiesNamedPathsAndRefusesEscapes) {
  std::filesystem::create_directories(repo_ + "/data/sub");
  WriteFile(repo_ + "/data/sub/f.bin", "data\n");
  CreateSpec spec;
  spec.copy_paths = {"data"};
  Created created = Make("agent-1", spec);
  EXPECT_EQ(ReadFile(created.info.path + "/data/sub/f.bin"), "data\n");

  CreateSpec escape{.directory = repo_,
                    .root = root_,
                    .task_id = "T",
                    .agent_id = "b",
                    .copy_paths = {"../outside"}};
  Result<Created> refused = CreateWorktree(escape);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("may not leave the repository"), std::string::npos);

  CreateSpec missing{
      .directory = repo_, .root = root_, .task_id = "T", .agent_id = "c", .copy_paths = {"nope"}};
  refused = CreateWorktree(missing);
  ASSERT_FALSE(refused.ok());
  // The failed creation took back its worktree and branch.
  EXPECT_EQ(G(repo_, {"branch", "--list", "herd/T/c"}), "");
  EXPECT_EQ(G(repo_, {"worktree", "list"}).find("/T/c"), std::string::npos);
}

TEST_F(WorktreeTest, SubmodulesAreInitialisedAndAFailureIsOnlyAWarning) {
  // A submodule whose URL leads nowhere: its commit is recorded as a gitlink.
  WriteFile(repo_ + "/.gitmodules",
            "[submodule \"lib\"]\n\tpath = lib\n\turl = " + temp_.path() + "/no-such-repo\n");
  G(repo_,
    {"update-index", "--add", "--cacheinfo", "160000," + G(repo_, {"rev-parse", "HEAD"}) + ",lib"});
  G(repo_, {"add", ".gitmodules"});  // not -A: that would drop the gitlink (no lib/ here)
  G(repo_, {"commit", "-q", "-m", "a submodule"});
  Created created = Make("agent-1");
  EXPECT_TRUE(FileExists(created.info.path + "/a.txt"));
  ASSERT_EQ(created.warnings.size(), 1u);
  EXPECT_NE(created.warnings[0].find("submodules not initialised"), std::string::npos);
}

TEST_F(WorktreeTest, ConcurrentCreatesInOneRepositoryAllSucceed) {
  constexpr int kAgents = 8;
  std::vector<std::thread> threads;
  std::vector<Status> results(kAgents);
  for (int i = 0; i < kAgents; ++i) {
    threads.emplace_back([&, i] {
      CreateSpec spec{.directory = repo_,
                      .root = root_,
                      .task_id = "TASK-1",
                      .agent_id = "agent-" + std::to_string(i)};
      Result<Created> created = CreateWorktree(spec);
      results[i] = created.status();
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int i = 0; i < kAgents; ++i) EXPECT_TRUE(results[i].ok()) << results[i].ToString();
  EXPECT_EQ(FindHerdWorktrees(root_).size(), static_cast<size_t>(kAgents));
}

TEST_F(WorktreeTest, DiffHasCommittedUncommittedAndUntrackedWithoutTouchingIndex) {
  Created created = Make("agent-1");
  const std::string& path = created.info.path;
  WriteFile(path + "/a.txt", "one\nTWO\nthree\n");
  Commit(path, "agent commit");
  WriteFile(path + "/b.txt", "bee changed\n");  // uncommitted
  WriteFile(path + "/c.txt", "new file\n");     // untracked
  std::string index = G(path, {"rev-parse", "--path-format=absolute", "--git-path", "index"});
  std::string index_before = ReadFile(index);

  Result<Diff> names = DiffAgainstBase(created.info, DiffFormat::kNameOnly, 1 << 20);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  EXPECT_EQ(names->text, "a.txt\nb.txt\nc.txt\n");
  Result<Diff> patch = DiffAgainstBase(created.info, DiffFormat::kPatch, 1 << 20);
  ASSERT_TRUE(patch.ok());
  EXPECT_NE(patch->text.find("+TWO"), std::string::npos);
  EXPECT_NE(patch->text.find("+new file"), std::string::npos);
  EXPECT_NE(patch->text.find("+bee changed"), std::string::npos);
  Result<Diff> stat = DiffAgainstBase(created.info, DiffFormat::kStat, 1 << 20);
  ASSERT_TRUE(stat.ok());
  EXPECT_NE(stat->text.find("3 files changed"), std::string::npos) << stat->text;
  Result<Diff> bounded = DiffAgainstBase(created.info, DiffFormat::kPatch, 40);
  ASSERT_TRUE(bounded.ok());
  EXPECT_TRUE(bounded->truncated);
  EXPECT_EQ(bounded->text.size(), 40u);

  EXPECT_EQ(ReadFile(index), index_before);
  EXPECT_EQ(G(path, {"status", "--porcelain"}), " M b.txt\n?? c.txt");
}

TEST_F(WorktreeTest, SummaryCountsFilesLinesCommitsAndDirt) {
  Created created = Make("agent-1");
  const std::string& path = created.info.path;
  Result<Summary> clean = Summarize(created.info);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->present);
  EXPECT_EQ(clean->files_changed, 0);
  EXPECT_FALSE(clean->dirty);
  WriteFile(path + "/a.txt", "one\nTWO\nthree\nfour\n");
  Commit(path, "c1");
  WriteFile(path + "/new.txt", "x\ny\n");
  Result<Summary> summary = Summarize(created.info);
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_EQ(summary->files_changed, 2);
  EXPECT_EQ(summary->lines_added, 4);
  EXPECT_EQ(summary->lines_removed, 1);
  EXPECT_EQ(summary->commits_ahead, 1);
  EXPECT_TRUE(summary->dirty);
  EXPECT_EQ(summary->uncommitted_files, std::vector<std::string>{"new.txt"});
}

TEST_F(WorktreeTest, SquashMergeMakesOneCommitAndUpdatesTheCheckout) {
  Created created = Make("agent-1");
  const std::string& path = created.info.path;
  WriteFile(path + "/a.txt", "one\nTWO\nthree\n");
  Commit(path, "c1");
  WriteFile(path + "/d.txt", "dee\n");
  Commit(path, "c2");
  std::string before = G(repo_, {"rev-parse", "main"});
  Result<MergeResult> merged = Merge(created.info, {.strategy = MergeStrategy::kSquash});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  ASSERT_TRUE(merged->merged);
  EXPECT_EQ(merged->into, "main");
  EXPECT_EQ(merged->commit, G(repo_, {"rev-parse", "main"}));
  EXPECT_EQ(G(repo_, {"rev-parse", "main^"}), before);
  EXPECT_EQ(G(repo_, {"rev-list", "--count", before + "..main"}), "1");
  EXPECT_EQ(merged->files, (std::vector<std::string>{"a.txt", "d.txt"}));
  EXPECT_EQ(ReadFile(repo_ + "/d.txt"), "dee\n");
  EXPECT_EQ(G(repo_, {"status", "--porcelain"}), "");
  // Squash-merged counts as merged: removal is safe and takes the branch.
  Result<LossReport> loss = WhatWouldBeLost(created.info);
  ASSERT_TRUE(loss.ok());
  EXPECT_TRUE(loss->nothing_lost()) << loss->Describe();
  Result<Removal> removed = RemoveWorktree(created.info, root_, RemoveMode::kSafe);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_TRUE(removed->worktree_removed);
  EXPECT_TRUE(removed->branch_deleted);
  EXPECT_FALSE(FileExists(path));
  EXPECT_EQ(G(repo_, {"branch", "--list", "herd/*"}), "");
}

TEST_F(WorktreeTest, RebaseMergeReplaysOntoAMovedTarget) {
  Created created = Make("agent-1");
  const std::string& path = created.info.path;
  WriteFile(path + "/d.txt", "dee\n");
  Commit(path, "agent c1");
  WriteFile(repo_ + "/e.txt", "main moved\n");
  Commit(repo_, "main c1");
  std::string main_before = G(repo_, {"rev-parse", "main"});
  Result<MergeResult> merged = Merge(created.info, {.strategy = MergeStrategy::kRebase});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  ASSERT_TRUE(merged->merged);
  EXPECT_EQ(G(repo_, {"rev-parse", "main^"}), main_before);
  EXPECT_EQ(G(repo_, {"log", "-1", "--format=%s", "main"}), "agent c1");
  EXPECT_EQ(G(repo_, {"rev-parse", "main"}), G(path, {"rev-parse", "HEAD"}));
  EXPECT_EQ(ReadFile(repo_ + "/d.txt"), "dee\n");
}

TEST_F(WorktreeTest, FfOnlyMergesWhenPossibleAndRefusesOtherwise) {
  Created first = Make("agent-1");
  WriteFile(first.info.path + "/d.txt", "dee\n");
  Commit(first.info.path, "agent c1");
  Created second = Make("agent-2");
  WriteFile(second.info.path + "/f.txt", "eff\n");
  Commit(second.info.path, "agent-2 c1");

  Result<MergeResult> merged = Merge(first.info, {.strategy = MergeStrategy::kFfOnly});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(G(repo_, {"rev-parse", "main"}), G(first.info.path, {"rev-parse", "HEAD"}));

  std::string main_now = G(repo_, {"rev-parse", "main"});
  Result<MergeResult> refused = Merge(second.info, {.strategy = MergeStrategy::kFfOnly});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a fast-forward"), std::string::npos);
  EXPECT_EQ(G(repo_, {"rev-parse", "main"}), main_now);
}

TEST_F(WorktreeTest, ConflictReportsFilesAndChangesNothing) {
  Created first = Make("agent-1");
  Created second = Make("agent-2");
  WriteFile(first.info.path + "/a.txt", "one\nFIRST\nthree\n");
  Commit(first.info.path, "first");
  WriteFile(second.info.path + "/a.txt", "one\nSECOND\nthree\n");
  WriteFile(second.info.path + "/z.txt", "zed\n");
  Commit(second.info.path, "second");
  ASSERT_TRUE(Merge(first.info, {}).ok());
  std::string main_head = G(repo_, {"rev-parse", "main"});
  std::string second_head = G(second.info.path, {"rev-parse", "HEAD"});
  for (MergeStrategy strategy :
       {MergeStrategy::kSquash, MergeStrategy::kRebase, MergeStrategy::kFfOnly}) {
    Result<MergeResult> merged = Merge(second.info, {.strategy = strategy});
    if (strategy == MergeStrategy::kFfOnly && !merged.ok()) continue;
    ASSERT_TRUE(merged.ok()) << merged.status().ToString();
    EXPECT_FALSE(merged->merged);
    EXPECT_EQ(merged->conflicts, std::vector<std::string>{"a.txt"});
  }
  EXPECT_EQ(G(repo_, {"rev-parse", "main"}), main_head);
  EXPECT_EQ(G(second.info.path, {"rev-parse", "HEAD"}), second_head);
  EXPECT_EQ(G(repo_, {"status", "--porcelain"}), "");
  EXPECT_EQ(G(second.info.path, {"status", "--porcelain"}), "");
  EXPECT_EQ(ReadFile(repo_ + "/a.txt"), "one\nFIRST\nthree\n");
  EXPECT_FALSE(FileExists(repo_ + "/z.txt"));
}

TEST_F(WorktreeTest, DirtyTargetCheckoutIsRefused) {
  Created created = Make("agent-1");
  WriteFile(created.info.path + "/d.txt", "dee\n");
  Commit(created.info.path, "agent");
  WriteFile(repo_ + "/b.txt", "person's edit\n");
  std::string head = G(repo_, {"rev-parse", "main"});
  Result<MergeResult> merged = Merge(created.info, {});
  ASSERT_FALSE(merged.ok());
  EXPECT_TRUE(merged.status().Is(Status::Code::kRefused));
  EXPECT_NE(merged.status().message().find("uncommitted changes"), std::string::npos);
  EXPECT_EQ(G(repo_, {"rev-parse", "main"}), head);
  EXPECT_EQ(ReadFile(repo_ + "/b.txt"), "person's edit\n");
}

TEST_F(WorktreeTest, PendingWorkIsRefusedUnlessCommitPendingIsAsked) {
  Created created = Make("agent-1");
  WriteFile(created.info.path + "/pending.txt", "work\n");
  Result<MergeResult> refused = Merge(created.info, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("pending.txt"), std::string::npos);
  EXPECT_NE(refused.status().message().find("--commit-pending"), std::string::npos);
  Result<MergeResult> merged = Merge(created.info, {.commit_pending = true});
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_TRUE(merged->merged);
  EXPECT_FALSE(merged->pending_commit.empty());
  EXPECT_EQ(G(created.info.path, {"rev-parse", "HEAD"}), merged->pending_commit);
  EXPECT_EQ(ReadFile(repo_ + "/pending.txt"), "work\n");
}

TEST_F(WorktreeTest, RemoveRefusesUnmergedCommitsAndUncommittedFilesUntilForced) {
  Created created = Make("agent-1");
  const std::string& path = created.info.path;
  WriteFile(path + "/d.txt", "dee\n");
  Commit(path, "precious commit");
  Result<Removal> refused = RemoveWorktree(created.info, root_, RemoveMode::kSafe);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("precious commit"), std::string::npos);
  EXPECT_NE(refused.status().message().find("--force"), std::string::npos);
  EXPECT_TRUE(FileExists(path + "/d.txt"));

  Created other = Make("agent-2");
  WriteFile(other.info.path + "/scratch.txt", "unsaved\n");
  refused = RemoveWorktree(other.info, root_, RemoveMode::kSafe);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("scratch.txt"), std::string::npos);
  EXPECT_TRUE(FileExists(other.info.path + "/scratch.txt"));

  Result<Removal> forced = RemoveWorktree(created.info, root_, RemoveMode::kForce);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(forced->loss.unmerged_commits.size(), 1u);
  EXPECT_FALSE(FileExists(path));
  EXPECT_EQ(G(repo_, {"branch", "--list", "herd/TASK-1/agent-1"}), "");
}

TEST_F(WorktreeTest, RemoveKeepsABranchHerdDidNotCreate) {
  G(repo_, {"branch", "persons-branch"});
  CreateSpec spec;
  spec.branch = "persons-branch";
  Created created = Make("agent-1", spec);
  EXPECT_FALSE(created.info.created_branch);
  WriteFile(created.info.path + "/d.txt", "dee\n");
  Commit(created.info.path, "on the person's branch");
  // The commits stay on the branch, so removing the worktree loses nothing.
  Result<Removal> removed = RemoveWorktree(created.info, root_, RemoveMode::kSafe);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_FALSE(removed->branch_deleted);
  EXPECT_EQ(G(repo_, {"log", "-1", "--format=%s", "persons-branch"}), "on the person's branch");
}

TEST_F(WorktreeTest, RemoveRefusesWhatHerdDidNotCreate) {
  std::string elsewhere = temp_.path() + "/persons-worktree";
  G(repo_, {"worktree", "add", "-q", "-b", "mine", elsewhere});
  WorktreeInfo info{.repository = repo_,
                    .path = elsewhere,
                    .branch = "mine",
                    .base_ref = "main",
                    .base_sha = G(repo_, {"rev-parse", "main"}),
                    .created_branch = true};
  Result<Removal> refused = RemoveWorktree(info, root_, RemoveMode::kForce);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not under herd's worktree root"), std::string::npos);
  EXPECT_TRUE(FileExists(elsewhere + "/a.txt"));
}

TEST_F(WorktreeTest, FindsHerdWorktreesAndThoseMissingFromDisk) {
  Created first = Make("agent-1");
  Created second = Make("agent-2");
  G(repo_, {"worktree", "add", "-q", "-b", "mine", temp_.path() + "/persons"});
  std::filesystem::remove_all(second.info.path);
  std::vector<FoundWorktree> found = FindHerdWorktrees(root_);
  ASSERT_EQ(found.size(), 2u);
  for (const FoundWorktree& worktree : found) {
    EXPECT_EQ(worktree.missing, worktree.path == second.info.path) << worktree.path;
  }
  // A missing one is removed from git's list (its branch has no work).
  Result<Removal> removed = RemoveWorktree(second.info, root_, RemoveMode::kSafe);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(FindHerdWorktrees(root_).size(), 1u);
}

}  // namespace
}  // namespace herd::worktrees
