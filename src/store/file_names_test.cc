// Tests for the store's sidecar names: each name parses back to what made
// it, the exact on-disk forms are pinned (older herds and doctor depend on
// them), and names that merely look alike are not taken for sidecars.
#include "store/file_names.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>
#include <string>

namespace herd::store {
namespace {

constexpr char kDocument[] = "AGENT_REGISTRY.json";

TEST(StoreFileNamesTest, NamesHaveTheirOnDiskForms) {
  EXPECT_EQ(LockFileName("/w/T/AGENT_REGISTRY.json"), "/w/T/AGENT_REGISTRY.json.lock");
  EXPECT_EQ(BackupFileName("/w/T/AGENT_REGISTRY.json"), "/w/T/AGENT_REGISTRY.json.bak");
  std::string pid = std::to_string(getpid());
  EXPECT_TRUE(std::regex_match(TempFileName("/w/x.json"),
                               std::regex("/w/x\\.json\\.tmp\\." + pid + "\\.[0-9a-f]{16}")))
      << TempFileName("/w/x.json");
  EXPECT_TRUE(std::regex_match(
      QuarantineFileName("/w/x.json", UniqueSuffix()),
      std::regex("/w/x\\.json\\.corrupt\\.[0-9]{8}-[0-9]{6}\\." + pid + "\\.[0-9a-f]{16}")))
      << QuarantineFileName("/w/x.json", UniqueSuffix());
}

TEST(StoreFileNamesTest, TempNamesAreUniquePerCall) {
  EXPECT_NE(TempFileName(kDocument), TempFileName(kDocument));
  EXPECT_NE(UniqueSuffix(), UniqueSuffix());
}

TEST(StoreFileNamesTest, LockAndBackupRoundTrip) {
  std::optional<SidecarName> lock = ParseSidecarName(LockFileName(kDocument));
  ASSERT_TRUE(lock);
  EXPECT_EQ(lock->type, SidecarType::kLock);
  EXPECT_EQ(lock->document, kDocument);

  std::optional<SidecarName> backup = ParseSidecarName(BackupFileName(kDocument));
  ASSERT_TRUE(backup);
  EXPECT_EQ(backup->type, SidecarType::kBackup);
  EXPECT_EQ(backup->document, kDocument);
}

TEST(StoreFileNamesTest, TempNameRoundTripsToItsDocumentAndWriter) {
  std::optional<SidecarName> temp = ParseSidecarName(TempFileName(kDocument));
  ASSERT_TRUE(temp);
  EXPECT_EQ(temp->type, SidecarType::kTemp);
  EXPECT_EQ(temp->document, kDocument);
  EXPECT_EQ(temp->writer, getpid());
}

TEST(StoreFileNamesTest, TempNameOfABackupBelongsToTheBackup) {
  // The store links the current version under a temp name of the backup.
  std::optional<SidecarName> temp = ParseSidecarName(TempFileName(BackupFileName(kDocument)));
  ASSERT_TRUE(temp);
  EXPECT_EQ(temp->type, SidecarType::kTemp);
  EXPECT_EQ(temp->document, std::string(kDocument) + ".bak");
}

TEST(StoreFileNamesTest, OlderTempNamesWithoutRandomPartParse) {
  std::optional<SidecarName> temp = ParseSidecarName("x.json.tmp.4242");
  ASSERT_TRUE(temp);
  EXPECT_EQ(temp->type, SidecarType::kTemp);
  EXPECT_EQ(temp->document, "x.json");
  EXPECT_EQ(temp->writer, 4242);
  // Upper-case hex was accepted too.
  temp = ParseSidecarName("x.json.tmp.4242.ABCDEF0123456789");
  ASSERT_TRUE(temp);
  EXPECT_EQ(temp->writer, 4242);
}

TEST(StoreFileNamesTest, QuarantineNamesOfStoreAndDoctorRoundTrip) {
  for (const std::string& unique : {UniqueSuffix(), std::to_string(getpid())}) {
    std::string name = QuarantineFileName(kDocument, unique);
    std::optional<SidecarName> quarantined = ParseSidecarName(name);
    ASSERT_TRUE(quarantined) << name;
    EXPECT_EQ(quarantined->type, SidecarType::kQuarantine);
    EXPECT_EQ(quarantined->document, kDocument);
    // "<stamp>.<unique>"
    EXPECT_TRUE(
        std::regex_match(quarantined->detail.substr(0, 16), std::regex("[0-9]{8}-[0-9]{6}.")))
        << quarantined->detail;
    EXPECT_EQ(quarantined->detail.substr(16), unique);
  }
}

TEST(StoreFileNamesTest, QuarantineMarkerWinsOverATempLookingTail) {
  // A quarantined copy is never taken for a temp file (doctor deletes those).
  std::optional<SidecarName> parsed = ParseSidecarName("x.json.corrupt.20261127-034936.tmp.1.ab");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->type, SidecarType::kQuarantine);
  EXPECT_EQ(parsed->document, "x.json");
}

TEST(StoreFileNamesTest, LookalikeTempNamesAreNotTempFiles) {
  for (const char* name : {
           ".tmp.123",               // no document
           "x.json.tmp.",            // no pid
           "x.json.tmp.abc",         // pid not digits
           "x.json.tmp.-12",         // sign
           "x.json.tmp.1234567890",  // more digits than any pid
           "x.json.tmp.123.",        // empty random part
           "x.json.tmp.123.xyz",     // random part not hex
           "x.json.tmp.123.ab.cd",   // two parts after the pid
           "x.json.tmp",             // marker without its dot
           "x.json_tmp_123",
       }) {
    std::optional<SidecarName> parsed = ParseSidecarName(name);
    EXPECT_TRUE(!parsed || parsed->type != SidecarType::kTemp) << name;
  }
}

TEST(StoreFileNamesTest, OtherNamesAreNotSidecars) {
  for (const char* name : {"AGENT_REGISTRY.json", ".lock", ".bak", "x.locked", "x.bak2", "x.backup",
                           "x.corrupted", "x.corrupt", "notes.txt", ""}) {
    EXPECT_FALSE(ParseSidecarName(name)) << name;
  }
}

}  // namespace
}  // namespace herd::store
