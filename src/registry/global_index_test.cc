// Tests for the global index (registry/GLOBAL_REGISTRY.json) and the
// known-workspaces record: upserts are idempotent (an unchanged task writes
// nothing), totals are derived, the index is rebuilt from the task
// registries, the running-agents cap is enforced, and a task created for
// another project directory is found from anywhere.
#include "registry/global_index.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "agents/testing_util_for_test.h"
#include "registry/ids.h"
#include "registry/json_rules_for_test.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"

namespace herd::registry {
namespace {

using test_util::ScopedEnvironment;
using test_util::TempDir;
using ::testing::HasSubstr;

constexpr char kNow[] = "2026-11-27T03:49:36.123456Z";

class RegistryGlobalIndexTest : public ::testing::Test {
 protected:
  RegistryGlobalIndexTest() : workspace_(root_.path() + "/workspace") {
    environment_.Set("XDG_STATE_HOME", root_.Subdirectory("state"));
  }

  // Creates a task in `workspace` with `agents` admitted; returns its document.
  json CreateTask(const Workspace& workspace, const std::vector<std::string>& agents = {}) {
    std::string task_id = NewTaskId();
    EXPECT_TRUE(workspace.CreateTaskDirectories(task_id).ok());
    TaskSpec spec;
    spec.description = "indexed task";
    json task = NewTaskDocument(task_id, spec, workspace.base());
    for (const std::string& agent : agents) {
      AdmissionRequest request;
      request.agent_id = agent;
      request.type = "worker";
      EXPECT_TRUE(AdmitAgent(task, request).ok());
    }
    Commit(workspace, task);
    return task;
  }

  // Stores `task` as its registry's new version; `task` then carries the
  // committed sequence number, as callers of UpsertTask pass it.
  void Commit(const Workspace& workspace, json& task) {
    store::TransactionStats stats;
    Status stored = stores_.tasks.Update(
        workspace.TaskRegistryPath(task["task_id"]),
        [&](json& document) -> Result<store::Decision> {
          document = task;
          return store::Decision::kCommit;
        },
        &stats);
    ASSERT_TRUE(stored.ok()) << stored.ToString();
    task[store::kSequenceKey] = stats.sequence;
  }

  store::Snapshot Index() const {
    Result<store::Snapshot> snapshot = stores_.global.Read(workspace_.GlobalRegistryPath());
    EXPECT_TRUE(snapshot.ok()) << snapshot.status().ToString();
    return snapshot.ok() ? *snapshot : store::Snapshot{};
  }

  TempDir root_;
  ScopedEnvironment environment_;
  Workspace workspace_;
  RegistryStores stores_;
};

TEST_F(RegistryGlobalIndexTest, UpsertIndexesTheTaskAndItsAgents) {
  json task = CreateTask(workspace_, {"a-1", "a-2"});

  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());

  json index = Index().document;
  std::string task_id = task["task_id"];
  EXPECT_EQ(index["tasks"][task_id]["description"], "indexed task");
  EXPECT_EQ(index["tasks"][task_id]["active_count"], 2);
  EXPECT_EQ(index["agents"]["a-1"]["task_id"], task_id);
  EXPECT_EQ(index["agents"]["a-2"]["status"], "running");
  EXPECT_EQ(index["total_tasks"], 1);
  EXPECT_EQ(index["total_agents_spawned"], 2);
  EXPECT_EQ(index["active_agents"], 2);
}

TEST_F(RegistryGlobalIndexTest, RepeatedUpsertOfAnUnchangedTaskWritesNothing) {
  json task = CreateTask(workspace_, {"a-1"});
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  store::Snapshot first = Index();

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());

  store::Snapshot later = Index();
  EXPECT_EQ(later.sequence, first.sequence);
  EXPECT_EQ(later.document, first.document);
}

TEST_F(RegistryGlobalIndexTest, UpsertReplacesAChangedAgentAndRecountsTotals) {
  json task = CreateTask(workspace_, {"a-1", "a-2"});
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  ASSERT_TRUE(MarkTerminated(task, "a-1", "stop", kNow).ok());

  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());

  json index = Index().document;
  EXPECT_EQ(index["agents"]["a-1"]["status"], "terminated");
  EXPECT_EQ(index["active_agents"], 1);
  EXPECT_EQ(index["total_agents_spawned"], 2) << "a repeated upsert counted an agent twice";
  EXPECT_EQ(index["tasks"][task["task_id"].get<std::string>()]["active_count"], 1);
}

// Callers upsert the task as they committed it, after releasing its lock,
// so two processes' upserts can arrive in either order (a kill and the
// supervisor recording the exit, two concurrent kills). The index must not
// go back to the older picture.
TEST_F(RegistryGlobalIndexTest, UpsertOfAnOlderSnapshotDoesNotUndoANewerOne) {
  json created = CreateTask(workspace_, {"a-1", "a-2"});
  std::string path = workspace_.TaskRegistryPath(created["task_id"]);
  json older = stores_.tasks.Read(path)->document;
  json changed = older;
  ASSERT_TRUE(MarkTerminated(changed, "a-1", "stop", kNow).ok());
  Commit(workspace_, changed);
  json newer = stores_.tasks.Read(path)->document;
  ASSERT_GT(newer.value("herd_sequence", 0), older.value("herd_sequence", 0));

  ASSERT_TRUE(UpsertTask(stores_, workspace_, newer).ok());
  ASSERT_TRUE(UpsertTask(stores_, workspace_, older).ok());

  json index = Index().document;
  EXPECT_EQ(index["agents"]["a-1"]["status"], "terminated");
  EXPECT_EQ(index["active_agents"], 1);
  EXPECT_EQ(index["tasks"][created["task_id"].get<std::string>()]["active_count"], 1);
}

TEST_F(RegistryGlobalIndexTest, RebuildRecreatesTheIndexFromTaskRegistries) {
  json first = CreateTask(workspace_, {"a-1", "a-2"});
  json second = CreateTask(workspace_, {"b-1"});
  ASSERT_TRUE(MarkTerminated(second, "b-1", "stop", kNow).ok());
  Commit(workspace_, second);
  ASSERT_TRUE(UpsertTask(stores_, workspace_, first).ok());
  ASSERT_TRUE(UpsertTask(stores_, workspace_, second).ok());
  json upserted = Index().document;
  std::filesystem::remove(workspace_.GlobalRegistryPath());
  std::filesystem::remove(workspace_.GlobalRegistryPath() + ".bak");

  ASSERT_TRUE(RebuildGlobalIndex(stores_, workspace_).ok());

  json rebuilt = Index().document;
  EXPECT_EQ(rebuilt["tasks"], upserted["tasks"]);
  EXPECT_EQ(rebuilt["agents"], upserted["agents"]);
  EXPECT_EQ(rebuilt["active_agents"], 2);
  EXPECT_EQ(rebuilt["total_tasks"], 2);
}

TEST_F(RegistryGlobalIndexTest, RebuildDropsEntriesNoTaskRegistryHolds) {
  json task = CreateTask(workspace_, {"a-1"});
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  json stray = {{"id", "stray-000000-abcdef"}, {"status", "running"}};
  json gone = {{"task_id", "TASK-gone"}, {"agents", json::array({stray})}};
  ASSERT_TRUE(ReserveGlobalSlot(stores_, workspace_, gone, "stray-000000-abcdef", 0).ok());
  ASSERT_TRUE(Index().document["agents"].contains("stray-000000-abcdef"));

  ASSERT_TRUE(RebuildGlobalIndex(stores_, workspace_).ok());
  json once = Index().document;
  ASSERT_TRUE(RebuildGlobalIndex(stores_, workspace_).ok());
  json twice = Index().document;

  EXPECT_FALSE(once["agents"].contains("stray-000000-abcdef"));
  EXPECT_EQ(once["active_agents"], 1);
  EXPECT_EQ(twice["tasks"], once["tasks"]);
  EXPECT_EQ(twice["agents"], once["agents"]);
}

TEST_F(RegistryGlobalIndexTest, RunningCapRefusesOnceReached) {
  json task = CreateTask(workspace_, {"a-1"});
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  // The task as admission leaves it: holding the agent that asks for a slot.
  json with_next = task;
  with_next["agents"].push_back({{"id", "a-2"}, {"status", "running"}});

  Status refused = ReserveGlobalSlot(stores_, workspace_, with_next, "a-2", 1);

  EXPECT_TRUE(refused.Is(Status::Code::kRefused)) << refused.ToString();
  EXPECT_THAT(refused.message(), HasSubstr("HERD_MAX_RUNNING_AGENTS"));
  EXPECT_FALSE(Index().document["agents"].contains("a-2"));
  EXPECT_TRUE(ReserveGlobalSlot(stores_, workspace_, with_next, "a-2", 2).ok());
  EXPECT_TRUE(Index().document["agents"].contains("a-2"));
  json with_third = with_next;
  with_third["agents"].push_back({{"id", "a-3"}, {"status", "running"}});
  EXPECT_TRUE(ReserveGlobalSlot(stores_, workspace_, with_third, "a-3", 0).ok())
      << "a cap of 0 means no cap";
  EXPECT_EQ(Index().document["active_agents"], 3);
}

// The index follows whole tasks: another change to the task (an earlier
// agent's start) may index the admitted agent before its own reservation.
// It is not counted against itself, or the cap would admit one fewer.
TEST_F(RegistryGlobalIndexTest, RunningCapDoesNotCountTheAgentAskingForTheSlot) {
  json task = CreateTask(workspace_, {"a-1"});
  json with_next = task;
  with_next["agents"].push_back({{"id", "a-2"}, {"status", "running"}});
  ASSERT_TRUE(UpsertTask(stores_, workspace_, with_next).ok());  // indexed early
  ASSERT_EQ(Index().document["active_agents"], 2);

  EXPECT_TRUE(ReserveGlobalSlot(stores_, workspace_, with_next, "a-2", 2).ok());
  Status refused = ReserveGlobalSlot(stores_, workspace_, with_next, "a-2", 1);
  EXPECT_TRUE(refused.Is(Status::Code::kRefused)) << refused.ToString();
}

// A released admission (a failed start, a refusal by the running cap)
// leaves the index with the task's next version; a deploy still holding an
// older version of the task (admitted before the release, reserving after
// it) must not bring it back as running, or the cap refuses deploys for an
// agent that does not exist.
TEST_F(RegistryGlobalIndexTest, AReleasedAgentLeavesTheIndexAndAnOlderVersionCannotBringItBack) {
  json task = CreateTask(workspace_, {"a-1", "a-2", "a-3"});
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  json older = task;  // what the deploy of a-3 committed and still holds

  ReleaseAgent(task, "a-2");
  Commit(workspace_, task);
  ASSERT_TRUE(UpsertTask(stores_, workspace_, task).ok());
  EXPECT_FALSE(Index().document["agents"].contains("a-2"));
  EXPECT_EQ(Index().document["active_agents"], 2);
  uint64_t sequence = Index().sequence;

  ASSERT_TRUE(UpsertTask(stores_, workspace_, older).ok());
  ASSERT_TRUE(ReserveGlobalSlot(stores_, workspace_, older, "a-3", 5).ok());
  EXPECT_FALSE(Index().document["agents"].contains("a-2"));
  EXPECT_EQ(Index().document["active_agents"], 2);
  EXPECT_EQ(Index().document["agents"].size(), 2u);
  EXPECT_GE(Index().sequence, sequence);
}

TEST_F(RegistryGlobalIndexTest, CapFromEnvironmentDefaultsToNone) {
  ScopedEnvironment environment;
  environment.Unset("HERD_MAX_RUNNING_AGENTS");
  EXPECT_EQ(GlobalRunningCapFromEnvironment(), 0);
  environment.Set("HERD_MAX_RUNNING_AGENTS", "3");
  EXPECT_EQ(GlobalRunningCapFromEnvironment(), 3);
  environment.Set("HERD_MAX_RUNNING_AGENTS", "many");
  EXPECT_EQ(GlobalRunningCapFromEnvironment(), 0);
}

TEST(RegistryGlobalDocumentTest, ValidatorRequiresTaskAndAgentMaps) {
  EXPECT_TRUE(ValidateGlobalDocument({{"tasks", json::object()}, {"agents", json::object()}}).ok());
  EXPECT_FALSE(ValidateGlobalDocument({{"tasks", json::object()}}).ok());
  EXPECT_FALSE(ValidateGlobalDocument({{"tasks", json::array()}, {"agents", json::object()}}).ok());
  EXPECT_FALSE(ValidateGlobalDocument(json::array()).ok());
}

// --- Known workspaces -----------------------------------------------------------------

TEST_F(RegistryGlobalIndexTest, KnownWorkspacesLiveUnderXdgStateHome) {
  EXPECT_EQ(KnownWorkspacesPath(), root_.path() + "/state/herd/workspaces.json");
}

TEST_F(RegistryGlobalIndexTest, RememberingAWorkspaceTwiceWritesItOnce) {
  std::string base = root_.Subdirectory("some-base");
  ASSERT_TRUE(RememberWorkspace(stores_, base).ok());
  uint64_t sequence = stores_.workspaces.Read(KnownWorkspacesPath())->sequence;

  ASSERT_TRUE(RememberWorkspace(stores_, base).ok());

  Result<store::Snapshot> known = stores_.workspaces.Read(KnownWorkspacesPath());
  ASSERT_TRUE(known.ok());
  EXPECT_EQ(known->sequence, sequence);
  EXPECT_EQ(known->document["workspaces"].size(), 1u);
}

TEST_F(RegistryGlobalIndexTest, KnownWorkspacesListThePreferredFirstAndSkipVanishedOnes) {
  std::string first = root_.Subdirectory("first");
  std::string second = root_.Subdirectory("second");
  std::string vanished = root_.Subdirectory("vanished");
  for (const std::string& base : {first, second, vanished}) {
    ASSERT_TRUE(RememberWorkspace(stores_, base).ok());
  }
  std::filesystem::remove(vanished);

  std::vector<std::string> bases = KnownWorkspaces(stores_, second);

  EXPECT_EQ(bases, (std::vector<std::string>{second, first}));
}

TEST_F(RegistryGlobalIndexTest, TaskForAProjectIsFoundFromAnotherWorkspaceAndDirectory) {
  std::string project = root_.Subdirectory("project");
  Workspace project_workspace = Workspace::ForProject(project);
  json task = CreateTask(project_workspace);
  ASSERT_TRUE(RememberWorkspace(stores_, project_workspace.base()).ok());
  std::string elsewhere = root_.Subdirectory("elsewhere");
  std::string previous_directory = std::filesystem::current_path();
  ASSERT_EQ(::chdir(elsewhere.c_str()), 0);
  ScopedEnvironment environment;
  environment.Unset("CLAUDE_ORCHESTRATOR_WORKSPACE");

  Result<Workspace> from_default = LocateTask(stores_, Workspace::Resolve(""), task["task_id"]);
  Result<Workspace> from_other =
      LocateTask(stores_, Workspace(root_.path() + "/other"), task["task_id"]);
  ASSERT_EQ(::chdir(previous_directory.c_str()), 0);

  ASSERT_TRUE(from_default.ok()) << from_default.status().ToString();
  EXPECT_EQ(from_default->base(), project + "/.agent-workspace");
  ASSERT_TRUE(from_other.ok()) << from_other.status().ToString();
  EXPECT_EQ(from_other->base(), project + "/.agent-workspace");
}

TEST_F(RegistryGlobalIndexTest, TaskOfAnUnrecordedWorkspaceIsNotFound) {
  Workspace unrecorded = Workspace::ForProject(root_.Subdirectory("project"));
  json task = CreateTask(unrecorded);

  Result<Workspace> located = LocateTask(stores_, workspace_, task["task_id"]);

  EXPECT_TRUE(located.status().Is(Status::Code::kNotFound)) << located.status().ToString();
  EXPECT_THAT(located.status().message(), HasSubstr("herd task list"));
}

TEST_F(RegistryGlobalIndexTest, LocatingAnIdThatCouldEscapeIsRefused) {
  for (const char* id : {"../x", "a.b:c", "..", "a/b"}) {
    EXPECT_TRUE(LocateTask(stores_, workspace_, id).status().Is(Status::Code::kInvalidArgument))
        << id;
  }
}

}  // namespace
}  // namespace herd::registry
