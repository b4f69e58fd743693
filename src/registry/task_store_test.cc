// The store edge's read path: a version is decoded once and shared by every
// read of the same bytes, and any change to the file, a commit or a hand
// edit that keeps the sequence, is the next read's result.
#include "registry/task_store.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

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

}  // namespace
}  // namespace herd::registry
