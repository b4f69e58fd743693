// herd doctor against real damage: real herd processes, real files, real
// kills. Every test shows the finding, the repair fixing it, and a second
// repair changing nothing.
#include "health/doctor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <iostream>
#include <set>

#include "health/index_check.h"
#include "health/testing_for_test.h"
#include "registry/global_index.h"
#include "registry/ids.h"
#include "util/clock.h"

namespace herd::health {
namespace {

using namespace herd::health::testing;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// Orphan tests end an agent's entry and look at once.
DoctorOptions NoOrphanGrace() {
  DoctorOptions options;
  options.orphan_grace = std::chrono::seconds(0);
  return options;
}

// Named health_* so `ctest -R health` selects it (ctest sees only Suite.Test).
class health_Doctor : public DoctorTest {};

TEST_F(health_Doctor, HealthyWorkspaceWithRunningAgentHasNoErrorsAfterOneRepair) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  // Deploy leaves the index's task summary behind (reported as a herd bug);
  // the first repair rebuilds it, nothing else is touched.
  json first = Repair();
  for (const json& finding : AllFindings(first)) {
    EXPECT_EQ(finding["kind"], "index_mismatch") << finding.dump(2);
  }
  json report = Check();
  EXPECT_TRUE(AllFindings(report).empty()) << Kinds(report);
  EXPECT_TRUE(report["summary"]["healthy"].get<bool>());
  json after = Agent(task_id, agent["id"]);
  EXPECT_EQ(after["status"], "running");
  EXPECT_TRUE(IsRunning(IdentityFromEntry(after, "pid", "process_start_time")));
  EXPECT_TRUE(IsRunning(IdentityFromEntry(after, "supervisor_pid", "supervisor_start_time")));
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, ZombieWhoseSupervisorAndAgentWereKilledIsMarkedProcessLost) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  std::string agent_id = agent["id"];
  CrashAgent(agent);
  ASSERT_EQ(Agent(task_id, agent_id)["status"], "running");  // nobody recorded the crash

  json report = Check();
  std::vector<json> zombies = FindingsOfKind(report, "zombie");
  ASSERT_THAT(zombies, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(zombies[0]["agent_id"], agent_id);
  EXPECT_EQ(zombies[0]["task_id"], task_id);
  EXPECT_EQ(zombies[0]["severity"], "error");
  EXPECT_THAT(zombies[0]["detail"].get<std::string>(), HasSubstr("are gone"));
  EXPECT_FALSE(report["summary"]["healthy"].get<bool>());
  EXPECT_EQ(Agent(task_id, agent_id)["status"], "running");  // diagnosing writes nothing

  json repaired = Repair();
  EXPECT_EQ(FindingsOfKind(repaired, "zombie")[0]["repair_result"], "changed") << repaired.dump(2);
  json after = Agent(task_id, agent_id);
  EXPECT_EQ(after["status"], "error");
  EXPECT_EQ(after["error"], "process lost");
  EXPECT_TRUE(after.contains("ended_at"));
  json task = Task(task_id);
  EXPECT_EQ(task["active_count"], 0);
  EXPECT_EQ(task["status"], "COMPLETED");
  // The index learnt about it too.
  Result<store::Snapshot> index = stores().global.Read(workspace().GlobalRegistryPath());
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->document["agents"][agent_id]["status"], "error");
  EXPECT_TRUE(repaired["summary"]["healthy"].get<bool>()) << repaired.dump(2);
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, EntryStuckInStartingWithoutSupervisorIsLostOnlyAfterTheGrace) {
  std::string task_id = CreateTask();
  // What a deployer that died between admission and start leaves behind.
  EditTask(task_id, [](json& task) {
    for (const char* id : {"old-000000-aaaaaa", "new-000000-bbbbbb"}) {
      registry::AdmissionRequest request;
      request.agent_id = id;
      request.type = "x";
      ASSERT_TRUE(registry::AdmitAgent(task, request).ok());
    }
    (*registry::FindAgent(task, "old-000000-aaaaaa"))["started_at"] = "2020-01-01T00:00:00.000000Z";
  });

  json report = Check();
  std::vector<json> zombies = FindingsOfKind(report, "zombie");
  ASSERT_THAT(zombies, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(zombies[0]["agent_id"], "old-000000-aaaaaa");
  EXPECT_THAT(zombies[0]["detail"].get<std::string>(), HasSubstr("starting"));

  Repair();
  EXPECT_EQ(Agent(task_id, "old-000000-aaaaaa")["error"], "process lost");
  EXPECT_EQ(Agent(task_id, "new-000000-bbbbbb")["status"], "running");  // still within its grace
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, AgentRunningWithoutSupervisorIsReportedNotKilledThenLostOnceItExits) {
  std::string task_id = CreateTask();
  Child agent_process({"sleep", "300"});
  Child gone({"true"});
  gone.Reap();
  Identity dead_supervisor = gone.identity();
  AddStartedAgent(task_id, "lone-000000-cccccc", agent_process.identity(), dead_supervisor);

  json report = Repair();
  std::vector<json> zombies = FindingsOfKind(report, "zombie");
  ASSERT_THAT(zombies, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(zombies[0]["severity"], "warning");
  EXPECT_THAT(zombies[0]["repair"].get<std::string>(), HasSubstr("none"));
  EXPECT_TRUE(IsRunning(agent_process.identity()));
  EXPECT_EQ(Agent(task_id, "lone-000000-cccccc")["status"], "running");

  ::kill(agent_process.identity().pid, SIGKILL);
  agent_process.Reap();
  json after = Repair();
  EXPECT_EQ(FindingsOfKind(after, "zombie")[0]["repair_result"], "changed") << after.dump(2);
  EXPECT_EQ(Agent(task_id, "lone-000000-cccccc")["error"], "process lost");
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, SupervisorOfAnAgentMarkedCompletedIsAnOrphanAndIsKilled) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  std::string agent_id = agent["id"];
  Identity supervisor = IdentityFromEntry(agent, "supervisor_pid", "supervisor_start_time");
  Identity agent_process = IdentityFromEntry(agent, "pid", "process_start_time");
  // Another herd process records the agent as completed while it runs on.
  EditTask(task_id, [&](json& task) {
    ASSERT_TRUE(
        registry::ApplyProgress(task, agent_id, "completed", "done", 100, NowIso8601()).ok());
  });

  // Within the default grace an ended agent may still be exiting: not an orphan yet.
  EXPECT_TRUE(FindingsOfKind(Check(), "orphan").empty());

  json report = Doctor(NoOrphanGrace());
  std::vector<json> orphans = FindingsOfKind(report, "orphan");
  ASSERT_THAT(orphans, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(orphans[0]["agent_id"], agent_id);
  EXPECT_THAT(orphans[0]["detail"].get<std::string>(),
              HasSubstr("supervisor " + std::to_string(supervisor.pid)));
  EXPECT_TRUE(IsRunning(supervisor));

  DoctorOptions repair = NoOrphanGrace();
  json repaired = Repair(repair);
  ASSERT_EQ(FindingsOfKind(repaired, "orphan")[0]["repair_result"], "changed") << repaired.dump(2);
  EXPECT_TRUE(WaitForExit({supervisor, agent_process}));
  // Doctor recorded nothing; the supervisor recorded the exit itself and
  // the status the agent reported stands.
  json after = Agent(task_id, agent_id);
  EXPECT_EQ(after["status"], "completed");
  ExpectSecondRepairChangesNothing(repair);
}

TEST_F(health_Doctor, AgentProcessOutlivingItsEndedEntryWithoutSupervisorIsAnOrphan) {
  std::string task_id = CreateTask();
  Child agent_process({"sleep", "300"});
  Child gone({"true"});
  gone.Reap();
  AddStartedAgent(task_id, "late-000000-dddddd", agent_process.identity(), gone.identity());
  EditTask(task_id, [&](json& task) {
    ASSERT_TRUE(
        registry::MarkTerminated(task, "late-000000-dddddd", "test", "2020-01-01T00:00:00.000000Z")
            .ok());
  });

  json report = Check();  // ended long ago: past the default grace
  std::vector<json> orphans = FindingsOfKind(report, "orphan");
  ASSERT_THAT(orphans, SizeIs(1)) << Kinds(report);
  EXPECT_THAT(orphans[0]["detail"].get<std::string>(),
              HasSubstr("agent process " + std::to_string(agent_process.identity().pid)));
  Repair();
  EXPECT_TRUE(WaitForExit({agent_process.identity()}));
  EXPECT_EQ(Agent(task_id, "late-000000-dddddd")["status"], "terminated");  // nothing recorded
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, SupervisorOfAnAgentMissingFromItsRegistryIsAnOrphan) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  std::string agent_id = agent["id"];
  Identity supervisor = IdentityFromEntry(agent, "supervisor_pid", "supervisor_start_time");
  EditTask(task_id, [&](json& task) { registry::ReleaseAgent(task, agent_id); });

  json report = Check();  // a missing entry needs no grace
  ASSERT_THAT(FindingsOfKind(report, "orphan"), SizeIs(1)) << Kinds(report);
  Repair();
  EXPECT_TRUE(WaitForExit({supervisor}));
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, SupervisorOfADeletedTaskIsAnOrphan) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  Identity supervisor = IdentityFromEntry(agent, "supervisor_pid", "supervisor_start_time");
  std::filesystem::remove_all(workspace().TaskDirectory(task_id));

  json report = Check();
  std::vector<json> orphans = FindingsOfKind(report, "orphan");
  ASSERT_THAT(orphans, SizeIs(1)) << Kinds(report);
  EXPECT_THAT(orphans[0]["detail"].get<std::string>(), HasSubstr("has no registry"));
  Repair();
  EXPECT_TRUE(WaitForExit({supervisor}));
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, SupervisorsOfOtherWorkspacesAreNeverOrphans) {
  // An agent of a base this doctor was not asked about, marked completed
  // while it runs: its own doctor would stop it, this one must not.
  TempDir other;
  std::string other_base = other.path() + "/ws";
  std::string task_id;
  json agent;
  {
    ScopedEnvironment isolated;
    isolated.Set("XDG_STATE_HOME", other.path() + "/state");
    std::string own_base = base_;
    UseBase(other_base);
    task_id = CreateTask();
    agent = Deploy(task_id);
    UseBase(own_base);
  }
  registry::Workspace elsewhere(other_base);
  Status ended = stores().tasks.Update(
      elsewhere.TaskRegistryPath(task_id), [&](json& task) -> Result<store::Decision> {
        HERD_RETURN_IF_ERROR(
            registry::ApplyProgress(task, agent["id"], "completed", "done", 100, NowIso8601())
                .status());
        return store::Decision::kCommit;
      });
  ASSERT_TRUE(ended.ok()) << ended.ToString();
  CreateTask();  // this doctor's own base

  json report = Repair(NoOrphanGrace());
  EXPECT_TRUE(FindingsOfKind(report, "orphan").empty()) << Kinds(report);
  Identity supervisor = IdentityFromEntry(agent, "supervisor_pid", "supervisor_start_time");
  EXPECT_TRUE(IsRunning(supervisor));
  // Clean up the other base's agent (TearDown only knows this test's base).
  std::vector<Identity> processes = DescendantsOf(supervisor.pid);
  processes.push_back(supervisor);
  KillAndWait(processes);
}

TEST_F(health_Doctor, DeletedTaskRegistryIsRestoredFromItsBackup) {
  std::string task_id = CreateTask();
  Deploy(task_id);
  std::string path = TaskPath(task_id);
  ASSERT_TRUE(FileExists(path + ".bak"));
  uint64_t backup_sequence = json::parse(ReadFile(path + ".bak"))["herd_sequence"];
  ASSERT_EQ(::unlink(path.c_str()), 0);

  json report = Check();
  std::vector<json> missing = FindingsOfKind(report, "missing_registry");
  ASSERT_THAT(missing, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(missing[0]["task_id"], task_id);
  EXPECT_EQ(missing[0]["path"], path);
  EXPECT_FALSE(FileExists(path));

  json repaired = Repair();
  EXPECT_EQ(FindingsOfKind(repaired, "missing_registry")[0]["repair_result"], "changed");
  ASSERT_TRUE(FileExists(path));
  json restored = json::parse(ReadFile(path), nullptr, false);
  ASSERT_FALSE(restored.is_discarded());
  EXPECT_EQ(restored["task_id"], task_id);
  // The deleted version had backup + 1; the restoring commit skips it.
  EXPECT_EQ(restored["herd_sequence"], backup_sequence + 2);
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, CorruptTaskRegistryIsRestoredAndTheQuarantinedCopyReported) {
  std::string task_id = CreateTask();
  Deploy(task_id);
  std::string path = TaskPath(task_id);
  WriteFile(path, "{\"task_id\": \"truncat");

  json report = Check();
  ASSERT_THAT(FindingsOfKind(report, "corrupt"), SizeIs(1)) << Kinds(report);
  Repair();
  EXPECT_FALSE(json::parse(ReadFile(path), nullptr, false).is_discarded());
  std::vector<std::string> quarantined =
      FilesContaining(workspace().TaskDirectory(task_id), ".corrupt.");
  ASSERT_THAT(quarantined, SizeIs(1));
  EXPECT_EQ(ReadFile(quarantined[0]), "{\"task_id\": \"truncat");

  // Kept, and said where it is, on every later run.
  json later = Check();
  std::vector<json> kept = FindingsOfKind(later, "quarantined");
  ASSERT_THAT(kept, SizeIs(1)) << Kinds(later);
  EXPECT_EQ(kept[0]["path"], quarantined[0]);
  EXPECT_EQ(kept[0]["severity"], "warning");
  ExpectSecondRepairChangesNothing();
  EXPECT_TRUE(FileExists(quarantined[0]));
}

TEST_F(health_Doctor, CorruptTaskRegistryWithoutBackupIsReportedAndLeftInPlace) {
  std::string task_id = CreateTask();
  std::string path = TaskPath(task_id);
  ::unlink((path + ".bak").c_str());
  WriteFile(path, "not json");
  json report = Repair();
  std::vector<json> corrupt = FindingsOfKind(report, "corrupt");
  ASSERT_THAT(corrupt, SizeIs(1)) << Kinds(report);
  EXPECT_THAT(corrupt[0]["repair"].get<std::string>(), HasSubstr("none"));
  EXPECT_FALSE(report["summary"]["healthy"].get<bool>());
  EXPECT_EQ(ReadFile(path), "not json");
}

// A hand edit that leaves the file valid JSON but a field of the wrong
// type: every operation refuses the task with the same message, and doctor
// reports it without touching the file (the person's edit is theirs to fix).
TEST_F(health_Doctor, AFieldOfTheWrongTypeIsReportedAndTheFileLeftAsItIs) {
  std::string task_id = CreateTask();
  std::string path = TaskPath(task_id);
  json document = json::parse(ReadFile(path));
  document["max_agents"] = "45";
  WriteFile(path, document.dump());
  std::string edited = ReadFile(path);

  json report = Repair();
  std::vector<json> damaged = FindingsOfKind(report, "damaged_field");
  ASSERT_THAT(damaged, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(damaged[0]["task_id"], task_id);
  EXPECT_THAT(damaged[0]["detail"].get<std::string>(),
              AllOf(HasSubstr(path), HasSubstr("\"max_agents\""), HasSubstr("a string")));
  EXPECT_THAT(damaged[0]["repair"].get<std::string>(), HasSubstr("none"));
  EXPECT_FALSE(report["summary"]["healthy"].get<bool>());
  EXPECT_EQ(ReadFile(path), edited);
}

TEST_F(health_Doctor, GarbledGlobalIndexIsRebuilt) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  std::string path = workspace().GlobalRegistryPath();
  WriteFile(path, "{\"tasks\": garbage");

  json report = Check();
  std::vector<json> corrupt = FindingsOfKind(report, "corrupt");
  ASSERT_THAT(corrupt, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(corrupt[0]["task_id"], "");
  EXPECT_EQ(corrupt[0]["path"], path);

  Repair();
  json index = json::parse(ReadFile(path), nullptr, false);
  ASSERT_FALSE(index.is_discarded());
  EXPECT_EQ(index["tasks"][task_id]["status"], "ACTIVE");
  EXPECT_EQ(index["agents"][agent["id"].get<std::string>()]["status"], "running");
  EXPECT_THAT(FilesContaining(base_ + "/registry", ".corrupt."), SizeIs(1));
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, GlobalIndexWithDamagedBackupIsMovedAsideAndRebuilt) {
  std::string task_id = CreateTask();
  std::string path = workspace().GlobalRegistryPath();
  WriteFile(path, "[]");
  WriteFile(path + ".bak", "");
  json report = Check();
  ASSERT_THAT(FindingsOfKind(report, "corrupt"), SizeIs(1)) << Kinds(report);

  json repaired = Repair();
  EXPECT_EQ(FindingsOfKind(repaired, "corrupt")[0]["repair_result"], "changed") << repaired.dump(2);
  json index = json::parse(ReadFile(path), nullptr, false);
  ASSERT_TRUE(index.is_object());
  EXPECT_TRUE(index["tasks"].contains(task_id));
  EXPECT_THAT(FilesContaining(base_ + "/registry", ".corrupt."), SizeIs(2));
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, DeletedGlobalIndexIsRestoredOrRebuilt) {
  std::string task_id = CreateTask();
  Deploy(task_id);
  std::string path = workspace().GlobalRegistryPath();
  // Deleted, backup left: restorable.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  json report = Check();
  ASSERT_THAT(FindingsOfKind(report, "missing_registry"), SizeIs(1)) << Kinds(report);
  Repair();
  ASSERT_TRUE(FileExists(path));
  EXPECT_TRUE(IndexMismatches(Context()).empty());

  // Deleted with its backup: every task is missing from the index.
  ASSERT_EQ(::unlink(path.c_str()), 0);
  ::unlink((path + ".bak").c_str());
  report = Check();
  std::vector<json> mismatches = FindingsOfKind(report, "index_mismatch");
  ASSERT_FALSE(mismatches.empty()) << Kinds(report);
  EXPECT_THAT(mismatches[0]["detail"].get<std::string>(), HasSubstr("missing from the index"));
  Repair();
  json index = json::parse(ReadFile(path), nullptr, false);
  ASSERT_TRUE(index.is_object());
  EXPECT_EQ(index["tasks"][task_id]["active_count"], 1);
  ExpectSecondRepairChangesNothing();
}

// What a `herd task create` that failed half-way (a full disk) leaves: the
// task's empty subdirectories and the registry's lock file, no registry.
class health_IncompleteTask : public DoctorTest {
 protected:
  std::string MakeIncompleteTask() {
    CreateTask();  // a complete task beside it, which nothing may touch
    std::string task_id = registry::NewTaskId();
    std::string directory = workspace().TaskDirectory(task_id);
    for (const char* sub : {"progress", "findings", "logs", "prompts"}) {
      std::filesystem::create_directories(directory + "/" + sub);
    }
    WriteFile(TaskPath(task_id) + ".lock", "");
    return task_id;
  }
  // Older than the age under which a creation may still be in progress.
  void Age(const std::string& task_id) {
    std::string directory = workspace().TaskDirectory(task_id);
    for (const auto& entry : std::filesystem::directory_iterator(directory)) {
      if (entry.is_directory()) Backdate(entry.path().string(), std::chrono::seconds(60));
    }
    Backdate(directory, std::chrono::seconds(60));
  }
};

TEST_F(health_IncompleteTask, EmptyTaskDirectoryIsReportedAndRemoved) {
  std::string task_id = MakeIncompleteTask();
  Age(task_id);
  std::string directory = workspace().TaskDirectory(task_id);

  json report = Check();
  std::vector<json> incomplete = FindingsOfKind(report, "incomplete_task");
  ASSERT_THAT(incomplete, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(incomplete[0]["task_id"], task_id);
  EXPECT_EQ(incomplete[0]["severity"], "error");
  EXPECT_FALSE(report["summary"]["healthy"].get<bool>());
  EXPECT_TRUE(FileExists(directory));

  json repaired = Repair();
  incomplete = FindingsOfKind(repaired, "incomplete_task");
  ASSERT_THAT(incomplete, SizeIs(1)) << Kinds(repaired);
  EXPECT_EQ(incomplete[0]["repair_result"], "changed") << incomplete[0].dump(2);
  EXPECT_FALSE(FileExists(directory));
  EXPECT_TRUE(repaired["summary"]["healthy"].get<bool>()) << repaired.dump(2);
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_IncompleteTask, TaskDirectoryHoldingAFileIsReportedAndKept) {
  std::string task_id = MakeIncompleteTask();
  std::string notes = workspace().TaskDirectory(task_id) + "/logs/notes.txt";
  WriteFile(notes, "a person's notes");
  Age(task_id);

  json repaired = Repair();

  std::vector<json> incomplete = FindingsOfKind(repaired, "incomplete_task");
  ASSERT_THAT(incomplete, SizeIs(1)) << Kinds(repaired);
  EXPECT_FALSE(incomplete[0].contains("repair_result")) << incomplete[0].dump(2);
  EXPECT_THAT(incomplete[0]["detail"].get<std::string>(), HasSubstr("logs/notes.txt"));
  EXPECT_THAT(incomplete[0]["repair"].get<std::string>(), HasSubstr("none"));
  EXPECT_EQ(ReadFile(notes), "a person's notes");
  EXPECT_TRUE(FileExists(TaskPath(task_id) + ".lock"));
}

TEST_F(health_IncompleteTask, TaskDirectoryBeingCreatedIsLeftAlone) {
  std::string task_id = MakeIncompleteTask();  // just now: its creation may be running

  json repaired = Repair();

  EXPECT_THAT(FindingsOfKind(repaired, "incomplete_task"), SizeIs(0)) << Kinds(repaired);
  EXPECT_TRUE(FileExists(workspace().TaskDirectory(task_id) + "/logs"));
}

TEST_F(health_Doctor, BackupThatCannotRestoreItsDeletedRegistryIsAStaleBackup) {
  std::string task_id = CreateTask();
  Deploy(task_id);
  std::string task_path = TaskPath(task_id);
  std::string index_path = workspace().GlobalRegistryPath();
  for (const std::string& path : {task_path, index_path}) {
    ASSERT_EQ(::unlink(path.c_str()), 0);
    WriteFile(path + ".bak", "{\"trunc");
  }

  json report = Repair();
  std::vector<json> stale = FindingsOfKind(report, "stale_backup");
  ASSERT_THAT(stale, SizeIs(2)) << Kinds(report);
  for (const json& finding : stale) {
    if (finding["task_id"] == task_id) {
      // Nothing intact to restore a task from: left for a person, unhealthy.
      EXPECT_EQ(finding["path"], task_path + ".bak");
      EXPECT_THAT(finding["repair"].get<std::string>(), HasSubstr("none"));
    } else {
      // The index is derived: moved aside and rebuilt.
      EXPECT_EQ(finding["repair_result"], "changed") << finding.dump(2);
    }
  }
  EXPECT_FALSE(report["summary"]["healthy"].get<bool>());
  EXPECT_EQ(ReadFile(task_path + ".bak"), "{\"trunc");
  EXPECT_TRUE(json::parse(ReadFile(index_path), nullptr, false).is_object());
}

TEST_F(health_Doctor, GlobalIndexThatDisagreesWithTaskRegistriesIsRebuilt) {
  std::string task_id = CreateTask();
  json first = Deploy(task_id);
  json second = Deploy(task_id);
  Repair();  // start from an index that agrees
  ASSERT_TRUE(IndexMismatches(Context()).empty());
  Status edited = stores().global.Update(
      workspace().GlobalRegistryPath(), [&](json& index) -> Result<store::Decision> {
        index["agents"].erase(first["id"].get<std::string>());
        index["agents"][second["id"].get<std::string>()]["status"] = "completed";
        index["tasks"]["TASK-20200101-000000-deadbeef"] = {{"status", "ACTIVE"}};
        return store::Decision::kCommit;
      });
  ASSERT_TRUE(edited.ok());

  json report = Check();
  std::vector<json> mismatches = FindingsOfKind(report, "index_mismatch");
  std::string all;
  for (const json& mismatch : mismatches) all += mismatch["detail"].get<std::string>() + "\n";
  EXPECT_THAT(all, HasSubstr(first["id"].get<std::string>() + " of task " + task_id +
                             " is missing from the index"));
  EXPECT_THAT(all, HasSubstr("status \"completed\""));
  EXPECT_THAT(all, HasSubstr("TASK-20200101-000000-deadbeef"));

  json repaired = Repair();
  EXPECT_EQ(repaired["repairs"].size(), 1u) << "one rebuild fixes every mismatch";
  EXPECT_TRUE(IndexMismatches(Context()).empty());
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, LeftoverTempFileOfADeadWriterIsRemoved) {
  std::string task_id = CreateTask();
  std::string dead = std::to_string(UnusedPid());
  std::string leftover = TaskPath(task_id) + ".tmp." + dead + ".deadbeef";
  std::string in_use = TaskPath(task_id) + ".tmp." + std::to_string(getpid()) + ".cafe";
  std::string fresh = TaskPath(task_id) + ".tmp." + dead + ".beef";
  for (const std::string& path : {leftover, in_use, fresh}) WriteFile(path, "{\"half\":");
  Backdate(leftover, std::chrono::hours(1));
  Backdate(in_use, std::chrono::hours(1));

  json report = Check();
  std::vector<json> temps = FindingsOfKind(report, "temp_file");
  ASSERT_THAT(temps, SizeIs(1)) << Kinds(report);  // not a live writer's, not a fresh one
  EXPECT_EQ(temps[0]["path"], leftover);

  Repair();
  EXPECT_FALSE(FileExists(leftover));
  EXPECT_TRUE(FileExists(in_use));
  EXPECT_TRUE(FileExists(fresh));
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, OldMetricsFilesOfExitedProcessesAreFoldedIntoTheHistory) {
  CreateTask();  // real transactions, in files too recent to fold
  std::string old_file = base() + "/metrics/" + std::to_string(UnusedPid()) + ".jsonl";
  std::string lines;
  for (int i = 1; i <= 50; ++i) {
    lines += json{{"t", NowUnixSeconds() - 7200},
                  {"file", "x"},
                  {"wait_ms", i},
                  {"hold_ms", 1},
                  {"flushes", 2},
                  {"committed", true},
                  {"recovered", false},
                  {"outcome", "ok"}}
                 .dump() +
             "\n";
  }
  WriteFile(old_file, lines);
  Backdate(old_file, std::chrono::hours(2));
  long before = Check()["workspaces"][0]["lock_metrics"]["all_time"]["transactions"];

  json report = Check();
  std::vector<json> backlog = FindingsOfKind(report, "metrics_backlog");
  ASSERT_THAT(backlog, SizeIs(1)) << Kinds(report);  // the fresh files are not in it
  EXPECT_EQ(backlog[0]["severity"], "warning");
  EXPECT_TRUE(report["summary"]["healthy"].get<bool>());

  json repaired = Repair();
  EXPECT_EQ(FindingsOfKind(repaired, "metrics_backlog")[0]["repair_result"], "changed")
      << repaired.dump(2);
  EXPECT_FALSE(FileExists(old_file));
  const json& all_time = repaired["workspaces"][0]["lock_metrics"]["all_time"];
  // Everything counted before is still counted (plus this repair's own
  // transactions); the 50 folded waits still set the maximum.
  EXPECT_GE(all_time["transactions"].get<long>(), before);
  EXPECT_FALSE(all_time["exact_percentiles"].get<bool>());
  EXPECT_GE(all_time["lock_wait_ms"]["max"].get<double>(), 50.0);
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, CountDriftIsRecomputedFromTheAgentList) {
  std::string task_id = CreateTask();
  Deploy(task_id);
  Repair();  // index in step first
  EditTask(task_id, [](json& task) {
    task["active_count"] = 7;  // a blind += that should never happen
    task["completed_count"] = 3;
  });

  json report = Check();
  std::vector<json> drift = FindingsOfKind(report, "count_drift");
  ASSERT_THAT(drift, SizeIs(1)) << Kinds(report);
  EXPECT_THAT(drift[0]["detail"].get<std::string>(), HasSubstr("active_count is 7"));

  Repair();
  json task = Task(task_id);
  EXPECT_EQ(task["active_count"], 1);
  EXPECT_EQ(task["completed_count"], 0);
  EXPECT_EQ(task["total_spawned"], 1);
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, DryRunReportsEveryRepairAndChangesNothing) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  CrashAgent(agent);
  EditTask(task_id, [](json& task) { task["active_count"] = 5; });
  std::string leftover = TaskPath(task_id) + ".tmp." + std::to_string(UnusedPid()) + ".0123abcd";
  WriteFile(leftover, "x");
  Backdate(leftover, std::chrono::hours(1));
  WriteFile(workspace().GlobalRegistryPath(), "garbage");
  std::map<std::string, std::string> before = SnapshotTree(base_, {"/metrics/"});
  EXPECT_FALSE(Check()["summary"]["healthy"].get<bool>());
  EXPECT_EQ(SnapshotTree(base_, {"/metrics/"}), before) << "diagnosing wrote something";

  DoctorOptions options;
  options.repair = true;
  options.dry_run = true;
  json report = Doctor(options);
  EXPECT_EQ(SnapshotTree(base_, {"/metrics/"}), before);
  EXPECT_EQ(report["summary"]["repaired"], 0);
  EXPECT_EQ(report["summary"]["mode"], "dry_run");
  std::set<std::string> planned;
  for (const json& repair : report["repairs"]) {
    EXPECT_TRUE(repair["dry_run"].get<bool>());
    EXPECT_FALSE(repair["changed"].get<bool>());
    EXPECT_THAT(repair["action"].get<std::string>(), HasSubstr("would "));
    planned.insert(repair["kind"]);
  }
  std::set<std::string> expected = {"zombie", "temp_file", "corrupt", "count_drift"};
  EXPECT_TRUE(std::includes(planned.begin(), planned.end(), expected.begin(), expected.end()))
      << report["repairs"].dump(2);
  for (const json& finding : AllFindings(report)) {
    if (finding.contains("repair_result")) {
      EXPECT_EQ(finding["repair_result"], "dry_run");
    }
  }

  // The real repair then does what the dry run said. (The zombie's
  // transaction recomputes the counts, so the drift is gone with it.)
  json repaired = Repair();
  EXPECT_TRUE(repaired["summary"]["healthy"].get<bool>()) << repaired.dump(2);
  EXPECT_EQ(Agent(task_id, agent["id"])["error"], "process lost");
  EXPECT_EQ(Task(task_id)["active_count"], 0);
  EXPECT_FALSE(FileExists(leftover));
  EXPECT_FALSE(
      json::parse(ReadFile(workspace().GlobalRegistryPath()), nullptr, false).is_discarded());
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, TaskIdNarrowsTheDiagnosisToThatTask) {
  std::string damaged = CreateTask();
  std::string other = CreateTask();
  EditTask(damaged, [](json& task) { task["total_spawned"] = 9; });
  EditTask(other, [](json& task) { task["total_spawned"] = 9; });

  DoctorOptions options;
  options.task_id = damaged;
  options.repair = true;
  json report = Doctor(options);
  std::vector<json> drift = FindingsOfKind(report, "count_drift");
  ASSERT_THAT(drift, SizeIs(1)) << Kinds(report);
  EXPECT_EQ(drift[0]["task_id"], damaged);
  EXPECT_EQ(Task(damaged)["total_spawned"], 0);
  EXPECT_EQ(Task(other)["total_spawned"], 9);

  options.task_id = "TASK-20200101-000000-00000000";
  EXPECT_FALSE(Diagnose(stores(), workspace(), options).ok());
}

// 8 processes keep updating the same task while doctor repairs it: no
// update is lost and no healthy agent is touched.
TEST_F(health_Doctor, RepairWhileEightProcessesUpdateTheSameTaskLosesNothing) {
  constexpr int kWriters = 8;
  constexpr int kIncrements = 150;
  std::string task_id = CreateTask();
  std::vector<json> healthy;
  for (int i = 0; i < kWriters; ++i) healthy.push_back(Deploy(task_id));
  json victim = Deploy(task_id);
  CrashAgent(victim);
  EditTask(task_id, [](json& task) { task["active_count"] = 42; });
  std::string leftover = TaskPath(task_id) + ".tmp." + std::to_string(UnusedPid()) + ".feedface";
  WriteFile(leftover, "x");
  Backdate(leftover, std::chrono::hours(1));
  WriteFile(workspace().GlobalRegistryPath(), "garbage");
  json before = Check();
  std::set<std::string> found;
  for (const json& finding : AllFindings(before)) found.insert(finding["kind"]);
  std::set<std::string> expected = {"zombie", "temp_file", "corrupt", "count_drift"};
  ASSERT_TRUE(std::includes(found.begin(), found.end(), expected.begin(), expected.end()))
      << Kinds(before);

  std::vector<pid_t> writers;
  for (int i = 0; i < kWriters; ++i) {
    std::string agent_id = healthy[i]["id"];
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: its own stores, as another herd process would have.
      registry::RegistryStores stores;
      registry::Workspace workspace(base_);
      for (int n = 0; n < kIncrements; ++n) {
        Status status = stores.tasks.Update(
            workspace.TaskRegistryPath(task_id), [&](json& task) -> Result<store::Decision> {
              json* agent = registry::FindAgent(task, agent_id);
              if (agent == nullptr) return Status::NotFound(agent_id);
              (*agent)["doctor_test_counter"] = agent->value("doctor_test_counter", 0) + 1;
              (*agent)["progress"] = n % 100;
              (*agent)["last_update"] = NowIso8601();
              // A raw store update (no RecomputeCounts), so the count drift
              // made above stays until doctor repairs it.
              return store::Decision::kCommit;
            });
        if (!status.ok()) ::_exit(1);
      }
      ::_exit(0);
    }
    writers.push_back(pid);
  }

  // Repair over and over while they write.
  int rounds = 0;
  std::set<std::string> repaired_kinds;
  std::vector<int> statuses(kWriters, -1);
  bool finished = false;
  auto deadline = DeadlineIn(std::chrono::seconds(120));
  while (!finished && Clock::now() < deadline) {
    json report = Repair();
    ++rounds;
    for (const json& repair : report["repairs"]) {
      if (repair["changed"].get<bool>()) repaired_kinds.insert(repair["kind"]);
      EXPECT_FALSE(repair.contains("error")) << repair.dump(2);
    }
    for (const json& finding : AllFindings(report)) {
      // Only the damage made above; never a healthy agent.
      for (const json& agent : healthy) EXPECT_NE(finding.value("agent_id", ""), agent["id"]);
    }
    finished = true;
    for (int i = 0; i < kWriters; ++i) {
      if (statuses[i] != -1) continue;
      int status = 0;
      if (::waitpid(writers[i], &status, WNOHANG) == writers[i]) {
        statuses[i] = status;
      } else {
        finished = false;
      }
    }
  }
  ASSERT_TRUE(finished) << "writers did not finish";
  for (int status : statuses) EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(rounds, 2);
  // The zombie's transaction recomputes the counts, so count_drift may be
  // fixed by it rather than by its own repair; index_mismatch may show up
  // because deploys leave the index behind.
  repaired_kinds.erase("index_mismatch");
  repaired_kinds.erase("count_drift");
  // The files this test plants are written 0644, as another tool would
  // leave them: doctor makes them private too.
  EXPECT_EQ(repaired_kinds,
            (std::set<std::string>{"zombie", "temp_file", "corrupt", "open_permissions"}));

  Repair();  // after the writers: the index catches up too
  json task = Task(task_id);
  for (const json& agent : healthy) {
    json after = *registry::FindAgent(task, agent["id"]);
    EXPECT_EQ(after["doctor_test_counter"], kIncrements) << after.dump(2);
    EXPECT_EQ(after["status"], "running");
    EXPECT_FALSE(after.contains("error"));
    EXPECT_EQ(after["pid"], agent["pid"]);
    EXPECT_TRUE(IsRunning(IdentityFromEntry(after, "pid", "process_start_time")));
    EXPECT_TRUE(IsRunning(IdentityFromEntry(after, "supervisor_pid", "supervisor_start_time")));
  }
  EXPECT_EQ((*registry::FindAgent(task, victim["id"]))["error"], "process lost");
  EXPECT_EQ(task["active_count"], kWriters);
  EXPECT_FALSE(FileExists(leftover));
  EXPECT_TRUE(IndexMismatches(Context()).empty());
  ExpectSecondRepairChangesNothing();
}

TEST_F(health_Doctor, ReportRendersFindingsRepairsAndLockFigures) {
  std::string task_id = CreateTask();
  json agent = Deploy(task_id);
  CrashAgent(agent);
  std::string leftover = TaskPath(task_id) + ".tmp." + std::to_string(UnusedPid()) + ".00c0ffee";
  WriteFile(leftover, "x");
  Backdate(leftover, std::chrono::hours(1));
  WriteFile(workspace().GlobalRegistryPath(), "garbage");

  std::string diagnosis = RenderReport(Check());
  std::string repair = RenderReport(Repair());
  std::cout << "---- herd doctor ----\n"
            << diagnosis << "---- herd doctor --repair ----\n"
            << repair;
  EXPECT_THAT(diagnosis, HasSubstr("NOT healthy"));
  EXPECT_THAT(diagnosis, HasSubstr(task_id));
  EXPECT_THAT(diagnosis, HasSubstr("zombie"));
  EXPECT_THAT(diagnosis, HasSubstr("temp_file"));
  EXPECT_THAT(diagnosis, HasSubstr("repair: "));
  EXPECT_THAT(diagnosis, HasSubstr("last hour"));
  EXPECT_THAT(diagnosis, HasSubstr("since creation"));
  EXPECT_THAT(repair, HasSubstr("repaired; healthy"));
  EXPECT_THAT(repair, HasSubstr("changed"));
  EXPECT_THAT(repair, HasSubstr("process lost"));
  // The JSON report keeps its shape.
  json report = Check();
  ASSERT_TRUE(report["workspaces"].is_array());
  const json& workspace_report = report["workspaces"][0];
  EXPECT_EQ(workspace_report["base"], base_);
  for (const char* key :
       {"transactions", "lock_wait_ms", "hold_ms", "timeouts", "corruption_recoveries"}) {
    EXPECT_TRUE(workspace_report["lock_metrics"]["all_time"].contains(key)) << key;
    EXPECT_TRUE(workspace_report["lock_metrics"]["last_hour"].contains(key)) << key;
  }
  EXPECT_GT(workspace_report["lock_metrics"]["all_time"]["transactions"].get<int>(), 0);
  EXPECT_GE(workspace_report["lock_metrics"]["all_time"]["corruption_recoveries"].get<int>(), 1);
}

}  // namespace
}  // namespace herd::health
