// The store edge's read path: a version is decoded once and shared by every
// read of the same bytes, and any change to the file, a commit or a hand
// edit that keeps the sequence, is the next read's result.
#include "registry/task_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "registry/task_registry.h"
#include "registry/transitions.h"
#include "store/json_store.h"
#include "util/testing_for_test.h"

namespace herd::registry {
namespace {

using testing_util::TempDir;

class TaskStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(UpdateTaskRecord(store_, path_, [](TaskRecord& task) -> Result<store::Decision> {
                  task.task_id = "TASK-20260101-000000-00000001";
                  task.description = "first";
                  return store::Decision::kCommit;
                }).ok());
  }

  std::string ReadBytes() const {
    std::ifstream file(path_, std::ios::binary);
    std::stringstream bytes;
    bytes << file.rdbuf();
    return bytes.str();
  }

  TempDir dir_;
  std::string path_ = dir_.File("AGENT_REGISTRY.json");
  store::JsonStore store_;
};

TEST_F(TaskStoreTest, ReadsOfUnchangedBytesShareOneDecodedVersion) {
  Result<SharedTask> first = ReadTaskRecord(store_, path_);
  Result<SharedTask> second = ReadTaskRecord(store_, path_);
  ASSERT_TRUE(first.ok() && second.ok()) << first.status().ToString();
  EXPECT_EQ(first->get(), second->get());
  EXPECT_EQ((*first)->task.description, "first");
}

TEST_F(TaskStoreTest, ACommitIsTheNextReadsResult) {
  Result<SharedTask> before = ReadTaskRecord(store_, path_);
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE(UpdateTaskRecord(store_, path_, [](TaskRecord& task) -> Result<store::Decision> {
                task.description = "second";
                return store::Decision::kCommit;
              }).ok());
  Result<SharedTask> after = ReadTaskRecord(store_, path_);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)->task.description, "second");
  EXPECT_EQ((*after)->sequence, (*before)->sequence + 1);
  EXPECT_EQ((*before)->task.description, "first") << "a shared version never changes";
}

TEST_F(TaskStoreTest, AHandEditThatKeepsTheSequenceIsSeen) {
  ASSERT_TRUE(ReadTaskRecord(store_, path_).ok());
  std::string bytes = ReadBytes();
  size_t at = bytes.find("\"first\"");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 7, "\"fixed\"");  // same length, same herd_sequence
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;

  Result<SharedTask> edited = ReadTaskRecord(store_, path_);
  ASSERT_TRUE(edited.ok()) << edited.status().ToString();
  EXPECT_EQ((*edited)->task.description, "fixed");
}

TEST_F(TaskStoreTest, AHandEditThatDamagesAFieldFailsTheReadEveryTime) {
  ASSERT_TRUE(ReadTaskRecord(store_, path_).ok());
  std::string bytes = ReadBytes();
  size_t at = bytes.find("\"max_agents\":");
  ASSERT_NE(at, std::string::npos);
  bytes.insert(at + std::string("\"max_agents\":").size(), "\"45\",\"was\":");
  std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;

  for (int i = 0; i < 2; ++i) {
    Result<SharedTask> damaged = ReadTaskRecord(store_, path_);
    ASSERT_FALSE(damaged.ok()) << "read " << i;
    EXPECT_TRUE(damaged.status().Is(Status::Code::kCorruption)) << damaged.status().ToString();
    EXPECT_NE(damaged.status().message().find("max_agents"), std::string::npos);
  }
}

// Each agent's end is observed once, by the one transaction that commits
// it, however many threads race to end it.
TEST_F(TaskStoreTest, EveryTransitionIsObservedOnceUnderConcurrentEnds) {
  constexpr int kAgents = 8, kRacersPerAgent = 4;
  ASSERT_TRUE(UpdateTaskRecord(store_, path_, [&](TaskRecord& task) -> Result<store::Decision> {
                task.limits.max_concurrent = kAgents;
                for (int i = 0; i < kAgents; ++i) {
                  AdmissionRequest request;
                  request.agent_id = "worker-" + std::to_string(i);
                  request.type = "worker";
                  HERD_RETURN_IF_ERROR(AdmitAgent(task, request).status());
                }
                return store::Decision::kCommit;
              }).ok());
  std::mutex mutex;
  std::map<std::string, int> observed;
  std::vector<AgentTransition> seen;
  SetTransitionObserver([&](const std::vector<AgentTransition>& transitions) {
    std::lock_guard<std::mutex> guard(mutex);
    for (const AgentTransition& transition : transitions) {
      ++observed[transition.agent_id];
      seen.push_back(transition);
    }
  });
  std::vector<std::thread> racers;
  for (int i = 0; i < kAgents; ++i) {
    for (int racer = 0; racer < kRacersPerAgent; ++racer) {
      racers.emplace_back([&, i, racer] {
        std::string agent_id = "worker-" + std::to_string(i);
        Status status =
            UpdateTaskRecord(store_, path_, [&](TaskRecord& task) -> Result<store::Decision> {
              if (racer % 2 == 0) {
                HERD_ASSIGN_OR_RETURN(bool changed,
                                      MarkTerminated(task, agent_id, "stopped by a test", "now"));
                return changed ? store::Decision::kCommit : store::Decision::kNoChange;
              }
              ExitRecord exit;
              exit.exit_code = 0;
              exit.ended_at = "now";
              HERD_RETURN_IF_ERROR(RecordExit(task, agent_id, exit));
              return store::Decision::kCommit;
            });
        EXPECT_TRUE(status.ok()) << status.ToString();
      });
    }
  }
  for (std::thread& racer : racers) racer.join();
  SetTransitionObserver(nullptr);

  ASSERT_EQ(observed.size(), static_cast<size_t>(kAgents));
  for (const auto& [agent_id, count] : observed) EXPECT_EQ(count, 1) << agent_id;
  for (const AgentTransition& transition : seen) {
    EXPECT_EQ(transition.old_status, "running");
    EXPECT_TRUE(transition.event == "agent_killed" || transition.event == "agent_completed")
        << transition.event;
    EXPECT_EQ(transition.task_id, "TASK-20260101-000000-00000001");
  }
}

TEST_F(TaskStoreTest, AnUncommittedChangeIsNotObserved) {
  ASSERT_TRUE(UpdateTaskRecord(store_, path_, [](TaskRecord& task) -> Result<store::Decision> {
                AdmissionRequest request;
                request.agent_id = "worker-x";
                request.type = "worker";
                HERD_RETURN_IF_ERROR(AdmitAgent(task, request).status());
                return store::Decision::kCommit;
              }).ok());
  size_t observed = 0;
  SetTransitionObserver([&](const std::vector<AgentTransition>& t) { observed += t.size(); });
  auto terminate_then = [](Result<store::Decision> decision) {
    return [decision](TaskRecord& task) -> Result<store::Decision> {
      HERD_RETURN_IF_ERROR(MarkTerminated(task, "worker-x", "stop", "now").status());
      return decision;
    };
  };
  Status refused =
      UpdateTaskRecord(store_, path_, terminate_then(Status::Refused("changed my mind")));
  EXPECT_TRUE(refused.Is(Status::Code::kRefused));
  EXPECT_EQ(observed, 0u) << "a refused transaction has no transitions";
  ASSERT_TRUE(UpdateTaskRecord(store_, path_, terminate_then(store::Decision::kCommit)).ok());
  SetTransitionObserver(nullptr);
  EXPECT_EQ(observed, 1u);
}

}  // namespace
}  // namespace herd::registry
