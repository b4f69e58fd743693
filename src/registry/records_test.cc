// Tests for the registry's typed records and their JSON form: documents of
// the reference orchestrator and of other tools round-trip, unknown keys
// included; damaged fields are errors that name the file, the entry and the
// field; nothing throws.
#include "registry/records.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "registry/task_registry.h"
#include "util/json_parse.h"

namespace herd::registry {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kSource[] = "/ws/TASK-20261127-034936-0123abcd/AGENT_REGISTRY.json";

// A registry as the reference orchestrator writes it, with keys herd does
// not model (claude_pid, tmux_session's cousins, a tool's own notes).
json ReferenceDocument() {
  return json::parse(R"({
    "task_id": "TASK-20261127-034936-0123abcd",
    "task_description": "Refactor the parser",
    "created_at": "2026-11-27T03:49:36.123456",
    "workspace": "/ws/TASK-20261127-034936-0123abcd",
    "workspace_base": "/ws",
    "client_cwd": null,
    "status": "ACTIVE",
    "priority": "P1",
    "agents": [
      {"id": "worker-034936-a1b2c3", "type": "worker", "tmux_session": "agent_worker",
       "parent": "orchestrator", "depth": 1, "phase": "initialization", "status": "running",
       "started_at": "2026-11-27T03:49:37", "progress": 10, "last_update": "2026-11-27T03:50:00",
       "prompt": "Refactor", "claude_pid": 4242, "cursor_pid": null,
       "tracked_files": {"prompt_file": "/ws/p.txt", "log_file": "/ws/l.jsonl",
                         "editor_state": {"open": ["a.py"]}}},
      {"id": "tester-034999-d4e5f6", "type": "tester", "parent": "worker-034936-a1b2c3",
       "depth": 2, "status": "completed", "started_at": "2026-11-27T03:49:40",
       "completed_at": "2026-11-27T03:55:00", "progress": 100,
       "last_update": "2026-11-27T03:55:00", "prompt": "Test", "tracked_files": {}}
    ],
    "agent_hierarchy": {"orchestrator": ["worker-034936-a1b2c3"],
                        "worker-034936-a1b2c3": ["tester-034999-d4e5f6"]},
    "max_agents": 45, "max_concurrent": 20, "max_depth": 5,
    "total_spawned": 2, "active_count": 1, "completed_count": 1,
    "spiral_checks": {"enabled": true, "last_check": null, "violations": 0},
    "task_context": {"expected_deliverables": ["a parser"]},
    "another_tools_note": {"reviewed_by": "ci", "score": 0.93},
    "herd_sequence": 12
  })");
}

TEST(RecordsTest, AReferenceDocumentDecodesIntoTypedFields) {
  Result<TaskRecord> task = DecodeTask(ReferenceDocument(), kSource);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(task->task_id, "TASK-20261127-034936-0123abcd");
  EXPECT_EQ(task->description, "Refactor the parser");
  EXPECT_EQ(task->priority, "P1");
  EXPECT_EQ(task->client_cwd, "");
  EXPECT_EQ(task->limits.max_agents, 45);
  ASSERT_EQ(task->agents.size(), 2u);
  const AgentRecord& worker = task->agents[0];
  EXPECT_EQ(worker.status, "running");
  EXPECT_EQ(worker.progress, 10);
  EXPECT_EQ(worker.tracked_files.log_file, "/ws/l.jsonl");
  EXPECT_EQ(worker.tmux_session, "agent_worker");
  EXPECT_FALSE(worker.process.recorded());  // the reference records no pid herd can trust
  EXPECT_EQ(task->agents[1].depth, 2);
  EXPECT_EQ(task->hierarchy.at("worker-034936-a1b2c3"),
            std::vector<std::string>{"tester-034999-d4e5f6"});
}

TEST(RecordsTest, EveryKeyRoundTripsIncludingOnesHerdDoesNotKnow) {
  json original = ReferenceDocument();
  Result<TaskRecord> task = DecodeTask(original, kSource);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  RecomputeCounts(*task);
  json encoded = EncodeTask(*task);
  // Other tools' keys, at every level, come back exactly.
  EXPECT_EQ(encoded["another_tools_note"], original["another_tools_note"]);
  EXPECT_EQ(encoded["herd_sequence"], 12);
  EXPECT_EQ(encoded["agents"][0]["claude_pid"], 4242);
  EXPECT_TRUE(encoded["agents"][0].contains("cursor_pid"));
  EXPECT_EQ(encoded["agents"][0]["tracked_files"]["editor_state"],
            original["agents"][0]["tracked_files"]["editor_state"]);
  // And every key of the original is still there with the same value,
  // except those herd writes in its own canonical form.
  for (auto it = original.begin(); it != original.end(); ++it) {
    ASSERT_TRUE(encoded.contains(it.key())) << it.key();
    if (it.key() == "agents") continue;
    EXPECT_EQ(encoded[it.key()], it.value()) << it.key();
  }
  for (size_t i = 0; i < original["agents"].size(); ++i) {
    const json& before = original["agents"][i];
    for (auto it = before.begin(); it != before.end(); ++it) {
      ASSERT_TRUE(encoded["agents"][i].contains(it.key())) << it.key();
      EXPECT_EQ(encoded["agents"][i][it.key()], it.value()) << i << " " << it.key();
    }
  }
  // Decoding what was encoded gives the same document again.
  Result<TaskRecord> again = DecodeTask(encoded, kSource);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  RecomputeCounts(*again);
  EXPECT_EQ(EncodeTask(*again), encoded);
}

TEST(RecordsTest, ATaskStopRoundTripsAndAMistypedOneIsAnError) {
  json document = ReferenceDocument();
  document["stopped_at"] = "2026-11-27T04:00:00Z";
  document["stopped_reason"] = "the plan changed";
  Result<TaskRecord> task = DecodeTask(document, kSource);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  ASSERT_TRUE(task->stopped);
  EXPECT_EQ(task->stopped->reason, "the plan changed");
  EXPECT_EQ(task->stopped->at, "2026-11-27T04:00:00Z");
  json encoded = EncodeTask(*task);
  EXPECT_EQ(encoded["stopped_at"], "2026-11-27T04:00:00Z");
  EXPECT_EQ(encoded["stopped_reason"], "the plan changed");
  EXPECT_FALSE(EncodeTask(*DecodeTask(ReferenceDocument(), kSource)).contains("stopped_at"));
  document["stopped_reason"] = 7;
  Result<TaskRecord> damaged = DecodeTask(document, kSource);
  ASSERT_FALSE(damaged.ok());
  EXPECT_THAT(damaged.status().message(), HasSubstr("stopped_reason"));
}

TEST(RecordsTest, DerivedFieldsAreRecomputedNotTrusted) {
  json document = ReferenceDocument();
  document["active_count"] = 40;
  document["total_spawned"] = "many";  // not even a number: never read
  document["status"] = "COMPLETED";
  Result<TaskRecord> task = DecodeTask(document, kSource);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  RecomputeCounts(*task);
  EXPECT_EQ(task->active_count, 1);
  EXPECT_EQ(task->total_spawned, 2);
  EXPECT_EQ(task->completed_count, 1);
  EXPECT_EQ(task->status, "ACTIVE");
}

TEST(RecordsTest, AFieldOfTheWrongTypeNamesTheFileTheEntryAndTheField) {
  struct Damage {
    const char* where;  // "task" or the agent index
    const char* field;
    json value;
  };
  for (const Damage& damage :
       {Damage{"task", "max_agents", "45"}, Damage{"task", "max_concurrent", -3},
        Damage{"task", "isolate_agent_config", "yes"},
        Damage{"task", "agent_hierarchy", json::array()}, Damage{"task", "budget", "lots"},
        Damage{"0", "status", 7}, Damage{"0", "pid", "12"}, Damage{"0", "progress", 12.5},
        Damage{"0", "depth", 0}, Damage{"0", "exit_code", "0"}, Damage{"0", "tracked_files", "log"},
        Damage{"0", "stopped_by_limit", 3}, Damage{"0", "kill_grace_ms", json::object()}}) {
    json document = ReferenceDocument();
    bool on_task = std::string(damage.where) == "task";
    json& target = on_task ? document : document["agents"][std::stoi(damage.where)];
    target[damage.field] = damage.value;
    Result<TaskRecord> task = DecodeTask(document, kSource);
    ASSERT_FALSE(task.ok()) << damage.field;
    EXPECT_TRUE(task.status().Is(Status::Code::kCorruption)) << damage.field;
    EXPECT_THAT(task.status().message(),
                AllOf(HasSubstr(kSource), HasSubstr(damage.field), HasSubstr("by hand")))
        << damage.field;
    if (!on_task) {
      EXPECT_THAT(task.status().message(), HasSubstr("agent worker-034936-a1b2c3"));
    }
  }
}

TEST(RecordsTest, MistypedAgentFieldsAreErrorsNeverExceptions) {
  // (This was a liveness test when every layer read the entry's JSON.)
  json entry = {{"id", "worker-1"}, {"status", 7}, {"phase", false}, {"pid", "12"}};
  Result<AgentRecord> agent = DecodeAgent(entry, kSource);
  ASSERT_FALSE(agent.ok());
  EXPECT_THAT(agent.status().message(), HasSubstr("\"status\""));
  entry["status"] = "running";
  entry["phase"] = "running";
  agent = DecodeAgent(entry, kSource);
  ASSERT_FALSE(agent.ok());
  EXPECT_THAT(agent.status().message(), AllOf(HasSubstr("\"pid\""), HasSubstr("a string")));
  entry.erase("pid");
  agent = DecodeAgent(entry, kSource);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_FALSE(agent->process.recorded());
}

TEST(RecordsTest, EntriesWithoutAnIdOrThatAreNotObjectsAreErrors) {
  for (json bad : {json(3), json("worker"), json::object(), json({{"id", 5}})}) {
    json document = ReferenceDocument();
    document["agents"].push_back(bad);
    Result<TaskRecord> task = DecodeTask(document, kSource);
    ASSERT_FALSE(task.ok()) << bad.dump();
    EXPECT_THAT(task.status().message(), HasSubstr(kSource));
  }
  Result<TaskRecord> not_object = DecodeTask(json::array(), kSource);
  EXPECT_FALSE(not_object.ok());
  json no_list = ReferenceDocument();
  no_list["agents"] = "none";
  EXPECT_FALSE(DecodeTask(no_list, kSource).ok());
}

TEST(RecordsTest, MissingOrNullFieldsTakeTheirDefaults) {
  Result<TaskRecord> task =
      DecodeTask({{"task_id", "TASK-1"}, {"agents", {{{"id", "a"}, {"model", nullptr}}}}}, kSource);
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  EXPECT_EQ(task->limits.max_agents, Limits{}.max_agents);
  EXPECT_EQ(task->agents[0].parent, kOrchestratorParent);
  EXPECT_EQ(task->agents[0].depth, 1);
  EXPECT_EQ(task->agents[0].model, "");
  EXPECT_FALSE(task->agents[0].exit);
}

TEST(RecordsTest, AnExitIsWrittenWithItsNullsAndReadBack) {
  AgentRecord agent;
  agent.id = "worker-1";
  agent.exit = ExitInfo{std::nullopt, 15, "2026-11-27T03:55:00Z"};
  json entry = EncodeAgent(agent);
  EXPECT_TRUE(entry["exit_code"].is_null());
  EXPECT_EQ(entry["exit_signal"], 15);
  Result<AgentRecord> back = DecodeAgent(entry, kSource);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(back->exit);
  EXPECT_FALSE(back->exit->exit_code);
  EXPECT_EQ(back->exit->exit_signal, 15);
  EXPECT_EQ(back->exit->ended_at, "2026-11-27T03:55:00Z");
}

TEST(RecordsTest, JournalLinesRoundTrip) {
  ProgressUpdate update{"worker-1", "working", 40, "halfway", "2026-11-27T03:55:00Z"};
  Result<ProgressUpdate> back = DecodeProgressUpdate(EncodeProgressUpdate(update), "journal");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->message, "halfway");
  EXPECT_EQ(back->progress, 40);
  Finding finding{"worker-1", "issue", "high", "a bug", {{"file", "a.cc"}}, "2026-11-27T03:56Z"};
  Result<Finding> found = DecodeFinding(EncodeFinding(finding), "journal");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->data["file"], "a.cc");
  EXPECT_FALSE(DecodeProgressUpdate({{"progress", "half"}}, "journal").ok());
}

TEST(RecordsTest, HostileDocumentsGiveErrorsNotCrashes) {
  // The shapes the registry_document fuzz target found or might.
  for (const char* text : {
           R"({"task_id":"T","agents":[],"max_agents":"45"})",
           R"({"task_id":"T","agents":[{"id":"a","usage":{"input_tokens":"x"}}]})",
           R"({"task_id":"T","agents":[{"id":"a","result":[1,2]}]})",
           R"({"task_id":"T","agents":[{"id":"a","process_start_time":-1}]})",
           R"({"task_id":"T","agents":[{"id":"a","progress":1e300}]})",
           R"({"task_id":"T","agents":[],"budget":{"max_tokens":1.5}})",
           R"({"task_id":"T","agents":[],"budget_exceeded":{"limit":3}})",
           R"({"task_id":7,"agents":[]})",
       }) {
    Result<json> document = ParseJson(text, kMaxDocumentDepth);
    ASSERT_TRUE(document.ok()) << text;
    Result<TaskRecord> task = DecodeTask(*document, kSource);
    if (task.ok()) {
      // What decodes is usable: the rules run on it without throwing.
      RecomputeCounts(*task);
      EXPECT_NO_THROW(EncodeTask(*task).dump()) << text;
      EXPECT_NO_THROW(SubtreeUsage(*task)) << text;
    } else {
      EXPECT_THAT(task.status().message(), HasSubstr(kSource)) << text;
    }
  }
}

}  // namespace
}  // namespace herd::registry

namespace herd::registry {
namespace {

TEST(RecordsTest, AnAgentsWorktreeAndPortRoundTripWithUnknownKeys) {
  json entry = json::parse(R"({
    "id": "worker-1", "type": "worker", "status": "completed", "port": 20001,
    "worktree": {"repository": "/p", "path": "/s/worktrees/p-1/T/worker-1",
                 "branch": "herd/T/worker-1", "base_ref": "main", "base_sha": "abc",
                 "created_branch": true, "editor_note": 7,
                 "merge": {"commit": "def", "strategy": "squash", "into": "main",
                           "files": ["a.txt"], "at": "2026-12-01T00:00:00", "by": "ci"}}
  })");
  Result<AgentRecord> agent = DecodeAgent(entry, kSource);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE(agent->worktree.has_value());
  EXPECT_EQ(agent->worktree->branch, "herd/T/worker-1");
  EXPECT_TRUE(agent->worktree->created_branch);
  ASSERT_TRUE(agent->worktree->merge.has_value());
  EXPECT_EQ(agent->worktree->merge->files, std::vector<std::string>{"a.txt"});
  EXPECT_EQ(agent->port, 20001);
  json encoded = EncodeAgent(*agent);
  EXPECT_EQ(encoded["worktree"], entry["worktree"]);
  EXPECT_EQ(encoded["port"], 20001);

  entry["worktree"]["created_branch"] = "yes";
  Result<AgentRecord> damaged = DecodeAgent(entry, kSource);
  ASSERT_FALSE(damaged.ok());
  EXPECT_THAT(damaged.status().message(), HasSubstr("created_branch"));
}

TEST(RecordsTest, TheTaskWorktreeDefaultIsStoredOnlyWhenSet) {
  TaskRecord task;
  EXPECT_FALSE(EncodeTask(task).contains("agent_worktrees"));
  task.agent_worktrees = true;
  Result<TaskRecord> again = DecodeTask(EncodeTask(task), kSource);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->agent_worktrees);
}

}  // namespace
}  // namespace herd::registry
