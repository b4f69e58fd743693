// Injected I/O failures: every step of a durable replace is made to fail
// with ENOSPC or EIO through FaultFileSystem, the one seam the store has
// between itself and the kernel. A failed transaction must return the
// error, leave the old file byte-identical and leave no temp file behind; a
// failed directory fsync after the rename is "not durable", not a failure.
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/fault_file_system_for_test.h"
#include "store/json_store.h"
#include "store/testing_for_test.h"

namespace herd::store {
namespace {

using nlohmann::json;
using Step = FaultFileSystem::Step;

using namespace ::herd::store::testing;

std::vector<std::string> TempFiles(const std::string& directory) {
  std::vector<std::string> temps;
  for (const auto& [name, bytes] : DirectoryContents(directory)) {
    if (name.find(".tmp.") != std::string::npos) temps.push_back(name);
  }
  return temps;
}

JsonStore StoreOn(FileSystem& file_system) {
  StoreOptions options;
  options.file_system = &file_system;
  return JsonStore(options);
}

Result<Decision> Increment(json& document) {
  document["counter"] = document.value("counter", 0) + 1;
  return Decision::kCommit;
}

struct Fault {
  Step step;
  int error_number;
};

std::string ErrnoName(int error_number) {
  return error_number == ENOSPC ? "ENOSPC" : "EIO";
}

std::string FaultName(const ::testing::TestParamInfo<Fault>& info) {
  return std::string(FaultFileSystem::StepName(info.param.step)) + "_" +
         ErrnoName(info.param.error_number);
}

void PrintTo(const Fault& fault, std::ostream* out) {
  *out << FaultFileSystem::StepName(fault.step) << " fails with " << ErrnoName(fault.error_number);
}

// Each test starts from two committed versions: the file holds sequence 2
// (counter 2) and its backup sequence 1, so every step of a replace,
// including the backup link, runs.
class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(JsonStore().Update(path_, Increment).ok());
    before_ = DirectoryContents(dir_.path());
    ASSERT_TRUE(before_.count("registry.json.bak"));
  }

  Status UpdateThrough(FaultFileSystem& file_system, TransactionStats* stats = nullptr) {
    return StoreOn(file_system).Update(path_, Increment, stats);
  }

  TempDir dir_;
  std::string path_ = dir_.File("registry.json");
  std::map<std::string, std::string> before_;
};

// --- A step before the rename fails: nothing changes ------------------------

class FailedStep : public FaultInjectionTest, public ::testing::WithParamInterface<Fault> {
 protected:
  Status UpdateWithFault(TransactionStats* stats = nullptr) {
    FaultFileSystem file_system;
    file_system.FailStep(GetParam().step, GetParam().error_number);
    return UpdateThrough(file_system, stats);
  }
};

TEST_P(FailedStep, ReturnsTheErrorAndLeavesTheOldFileByteIdentical) {
  TransactionStats stats;
  Status status = UpdateWithFault(&stats);
  std::printf("%s\n", status.ToString().c_str());
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(status.Is(Status::Code::kIOError)) << status.ToString();
  EXPECT_EQ(status.error_number(), GetParam().error_number);
  EXPECT_NE(status.message().find("(injected)"), std::string::npos) << status.message();
  EXPECT_FALSE(stats.committed);
  EXPECT_FALSE(stats.durable);

  EXPECT_EQ(ReadBytes(path_), before_.at("registry.json"));
  EXPECT_TRUE(TempFiles(dir_.path()).empty());
  Result<Snapshot> snapshot = JsonStore().Read(path_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_FALSE(snapshot->from_backup);
  EXPECT_EQ(snapshot->sequence, 2u);
}

TEST_P(FailedStep, NextUpdateCommitsOnTopOfTheOldVersion) {
  ASSERT_FALSE(UpdateWithFault().ok());
  TransactionStats stats;
  ASSERT_TRUE(JsonStore().Update(path_, Increment, &stats).ok());
  EXPECT_FALSE(stats.recovered);
  EXPECT_EQ(stats.sequence, 3u);
  EXPECT_EQ(json::parse(ReadBytes(path_))["counter"], 3);
}

INSTANTIATE_TEST_SUITE_P(BeforeTheRename, FailedStep,
                         ::testing::Values(Fault{Step::kWriteAll, ENOSPC},
                                           Fault{Step::kWriteAll, EIO},
                                           Fault{Step::kSyncData, ENOSPC},
                                           Fault{Step::kSyncData, EIO}, Fault{Step::kClose, EIO},
                                           Fault{Step::kLink, ENOSPC}, Fault{Step::kLink, EIO},
                                           Fault{Step::kRename, ENOSPC}, Fault{Step::kRename, EIO}),
                         FaultName);

// Steps before the backup link: the whole directory, backup included, is as
// it was.
class FailedStepKeepsTheDirectory : public FailedStep {};

TEST_P(FailedStepKeepsTheDirectory, BackupIncluded) {
  ASSERT_FALSE(UpdateWithFault().ok());
  EXPECT_EQ(DirectoryContents(dir_.path()), before_);
}

INSTANTIATE_TEST_SUITE_P(BeforeTheBackupLink, FailedStepKeepsTheDirectory,
                         ::testing::Values(Fault{Step::kCreateExclusive, ENOSPC},
                                           Fault{Step::kCreateExclusive, EIO},
                                           Fault{Step::kWriteAll, ENOSPC},
                                           Fault{Step::kWriteAll, EIO},
                                           Fault{Step::kSyncData, ENOSPC},
                                           Fault{Step::kSyncData, EIO}, Fault{Step::kClose, EIO}),
                         FaultName);

TEST_F(FaultInjectionTest, FailedRenameLeavesTheUnchangedFileAsTheBackup) {
  // The backup is renamed into place before the document, so when the
  // document's rename fails the backup holds the current (unchanged)
  // version: still a whole, valid last good copy.
  FaultFileSystem file_system;
  file_system.FailStep(Step::kRename, ENOSPC, /*successful_calls=*/1);
  ASSERT_FALSE(UpdateThrough(file_system).ok());
  EXPECT_EQ(ReadBytes(path_ + ".bak"), before_.at("registry.json"));
}

// When the backup link fails (ENOSPC, EIO, EMLINK) the previous backup must
// survive: otherwise a later corruption of `path` could not be recovered.
TEST_F(FaultInjectionTest, FailedLinkKeepsThePreviousBackup) {
  FaultFileSystem file_system;
  file_system.FailStep(Step::kLink, ENOSPC);
  ASSERT_FALSE(UpdateThrough(file_system).ok());
  EXPECT_EQ(DirectoryContents(dir_.path()), before_);
}

TEST_F(FaultInjectionTest, FailedCreateExclusiveWritesNothing) {
  FaultFileSystem file_system;
  file_system.FailStep(Step::kCreateExclusive, ENOSPC);
  Status status = UpdateThrough(file_system);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error_number(), ENOSPC);
  EXPECT_EQ(file_system.calls(Step::kWriteAll), 0);
  EXPECT_EQ(file_system.calls(Step::kRename), 0);
}

TEST_F(FaultInjectionTest, FailedFlushIsNeverRetriedNorRenamedIntoPlace) {
  // After a failed fdatasync Linux may have dropped the dirty pages, so a
  // retry that "succeeds" proves nothing.
  FaultFileSystem file_system;
  file_system.FailStep(Step::kSyncData, EIO);
  TransactionStats stats;
  ASSERT_FALSE(UpdateThrough(file_system, &stats).ok());
  EXPECT_EQ(file_system.calls(Step::kSyncData), 1);
  EXPECT_EQ(file_system.calls(Step::kRename), 0);
  EXPECT_EQ(file_system.calls(Step::kSyncDirectory), 0);
}

// A recovery writes the restored version twice (the file and its backup
// copy): the disk filling up during the copy fails the transaction, leaves
// the old backup intact and no temp file behind; the next update recovers.
TEST_F(FaultInjectionTest, FailedBackupCopyDuringARecoveryKeepsTheOldBackup) {
  ASSERT_EQ(std::remove(path_.c_str()), 0);  // lost: the next update restores the backup
  FaultFileSystem file_system;
  file_system.FailStep(Step::kWriteAll, ENOSPC, /*successful_calls=*/1);
  Status status = UpdateThrough(file_system);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(ReadBytes(path_ + ".bak"), before_.at("registry.json.bak"));
  EXPECT_FALSE(std::filesystem::exists(path_));
  EXPECT_TRUE(TempFiles(dir_.path()).empty());

  TransactionStats stats;
  ASSERT_TRUE(JsonStore().Update(path_, Increment, &stats).ok());
  EXPECT_TRUE(stats.recovered);
}

TEST_F(FaultInjectionTest, FailedWriteOfANewDocumentCreatesNothing) {
  std::string new_path = dir_.File("new-registry.json");
  FaultFileSystem file_system;
  file_system.FailStep(Step::kWriteAll, ENOSPC);
  Status status = StoreOn(file_system).Update(new_path, Increment);
  ASSERT_FALSE(status.ok());
  EXPECT_FALSE(std::filesystem::exists(new_path));
  EXPECT_TRUE(TempFiles(dir_.path()).empty());
  EXPECT_TRUE(JsonStore().Read(new_path).status().Is(Status::Code::kNotFound));
}

TEST_F(FaultInjectionTest, FailedQuarantineLeavesTheDamagedFileInPlace) {
  std::ofstream(path_, std::ios::trunc) << "garbage";
  FaultFileSystem file_system;
  file_system.FailStep(Step::kRename, EIO);  // the first rename moves the bad file aside
  Status status = UpdateThrough(file_system);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(ReadBytes(path_), "garbage");
  EXPECT_EQ(ReadBytes(path_ + ".bak"), before_.at("registry.json.bak"));
  EXPECT_TRUE(TempFiles(dir_.path()).empty());

  TransactionStats stats;
  ASSERT_TRUE(JsonStore().Update(path_, Increment, &stats).ok());
  EXPECT_TRUE(stats.recovered);
  EXPECT_EQ(stats.sequence, 3u)
      << "restored the backup's sequence 1, then committed skipping the lost version's 2";
}

// --- The directory fsync after the rename fails: visible, not durable ------

class FailedDirectorySync : public FaultInjectionTest, public ::testing::WithParamInterface<int> {};

TEST_P(FailedDirectorySync, ReportsNotDurableAndTheNewVersionIsVisible) {
  FaultFileSystem file_system;
  file_system.FailStep(Step::kSyncDirectory, GetParam());
  TransactionStats stats;
  Status status = UpdateThrough(file_system, &stats);
  std::printf("%s\n", status.ToString().c_str());
  ASSERT_TRUE(status.Is(Status::Code::kNotDurable)) << status.ToString();
  EXPECT_NE(status.message().find(path_), std::string::npos) << status.message();
  EXPECT_TRUE(stats.committed);
  EXPECT_FALSE(stats.durable);
  EXPECT_EQ(stats.sequence, 3u);
  EXPECT_EQ(file_system.calls(Step::kSyncDirectory), 1);

  Result<Snapshot> snapshot = JsonStore().Read(path_);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->sequence, 3u);
  EXPECT_EQ(ReadBytes(path_ + ".bak"), before_.at("registry.json"));
  EXPECT_TRUE(TempFiles(dir_.path()).empty());
}

INSTANTIATE_TEST_SUITE_P(Errors, FailedDirectorySync, ::testing::Values(EIO, ENOSPC),
                         [](const auto& info) { return ErrnoName(info.param); });

}  // namespace
}  // namespace herd::store
