#include "util/journal_reader.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "util/testing_for_test.h"
#include "util/text_file.h"

namespace herd {
namespace {

using testing_util::TempDir;
using testing_util::WriteFile;

std::string Line(int n) {
  return "{\"n\":" + std::to_string(n) + "}";
}

void AppendLines(const std::string& path, int from, int to) {
  for (int n = from; n < to; ++n) ASSERT_TRUE(AppendLine(path, Line(n)).ok());
}

std::vector<std::string> Lines(int from, int to) {
  std::vector<std::string> lines;
  for (int n = from; n < to; ++n) lines.push_back(Line(n));
  return lines;
}

class JournalReaderTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string path_ = dir_.File("p.jsonl");
  JournalReader reader_;
};

TEST_F(JournalReaderTest, MissingJournalIsEmpty) {
  JournalSlice slice = JournalReader().Read(dir_.File("none.jsonl"), 5);
  EXPECT_EQ(slice.total, 0u);
  EXPECT_TRUE(slice.newest.empty());
}

TEST_F(JournalReaderTest, CountsEveryLineAndKeepsTheNewestOldestFirst) {
  AppendLines(path_, 0, 20);
  JournalSlice slice = reader_.Read(path_, 3);
  EXPECT_EQ(slice.total, 20u);
  EXPECT_EQ(slice.newest, Lines(17, 20));
}

TEST_F(JournalReaderTest, KeepIsCappedAtMaxKeep) {
  AppendLines(path_, 0, 30);
  JournalSlice slice = reader_.Read(path_, 1000);
  EXPECT_EQ(slice.total, 30u);
  EXPECT_EQ(slice.newest, Lines(30 - JournalReader::kMaxKeep, 30));
}

TEST_F(JournalReaderTest, AppendsAreSeenAndAgreeWithAFreshReader) {
  int written = 0;
  for (int round = 1; round <= 12; ++round) {
    AppendLines(path_, written, written + round);  // 1, 2, 3... lines per round
    written += round;
    JournalSlice incremental = reader_.Read(path_, 10);
    JournalSlice fresh = JournalReader().Read(path_, 10);
    EXPECT_EQ(incremental.total, static_cast<size_t>(written)) << "round " << round;
    EXPECT_EQ(incremental.newest, fresh.newest) << "round " << round;
    EXPECT_EQ(incremental.newest, Lines(std::max(0, written - 10), written));
  }
  // Reading again without an append gives the same answer.
  EXPECT_EQ(reader_.Read(path_, 10).total, static_cast<size_t>(written));
}

TEST_F(JournalReaderTest, PartialLastLineWaitsForItsNewline) {
  AppendLines(path_, 0, 2);
  {
    std::ofstream file(path_, std::ios::app);
    file << "{\"n\":";  // a write in progress
  }
  JournalSlice before = reader_.Read(path_, 5);
  EXPECT_EQ(before.total, 2u);
  EXPECT_EQ(before.newest, Lines(0, 2));
  {
    std::ofstream file(path_, std::ios::app);
    file << "2}\n";
  }
  JournalSlice after = reader_.Read(path_, 5);
  EXPECT_EQ(after.total, 3u);
  EXPECT_EQ(after.newest, Lines(0, 3));
}

TEST_F(JournalReaderTest, EmptyLinesAreCountedButNotReturned) {
  WriteFile(path_, Line(0) + "\n\n" + Line(1) + "\n");
  JournalSlice slice = reader_.Read(path_, 5);
  EXPECT_EQ(slice.total, 3u);
  EXPECT_EQ(slice.newest, Lines(0, 2));
}

TEST_F(JournalReaderTest, ReplacedFileIsReadFromTheStart) {
  AppendLines(path_, 0, 8);
  EXPECT_EQ(reader_.Read(path_, 5).total, 8u);
  // Another file renamed over it, larger than what was consumed.
  std::string other = dir_.File("other.jsonl");
  AppendLines(other, 100, 112);
  ASSERT_EQ(std::rename(other.c_str(), path_.c_str()), 0);
  JournalSlice slice = reader_.Read(path_, 3);
  EXPECT_EQ(slice.total, 12u);
  EXPECT_EQ(slice.newest, Lines(109, 112));
}

TEST_F(JournalReaderTest, ShrunkOrRewrittenFileIsReadFromTheStart) {
  AppendLines(path_, 0, 8);
  EXPECT_EQ(reader_.Read(path_, 5).total, 8u);
  WriteFile(path_, Line(50) + "\n");  // truncated in place
  JournalSlice shrunk = reader_.Read(path_, 5);
  EXPECT_EQ(shrunk.total, 1u);
  EXPECT_EQ(shrunk.newest, Lines(50, 51));
  // Deleted: empty again, and a new journal at the same path_ starts over.
  ASSERT_EQ(std::remove(path_.c_str()), 0);
  EXPECT_EQ(reader_.Read(path_, 5).total, 0u);
  AppendLines(path_, 60, 62);
  EXPECT_EQ(reader_.Read(path_, 5).newest, Lines(60, 62));
}

TEST_F(JournalReaderTest, ConcurrentReadersWhileAWriterAppendsEndExact) {
  constexpr int kLines = 2000;
  std::thread writer([&] { AppendLines(path_, 0, kLines); });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      size_t previous = 0;
      for (int i = 0; i < 300; ++i) {
        JournalSlice slice = reader_.Read(path_, 10);
        // Totals seen by one thread never go backwards, and the newest
        // lines are always the last lines of what was counted.
        EXPECT_GE(slice.total, previous);
        previous = slice.total;
        if (slice.total > 0) {
          EXPECT_EQ(slice.newest.back(), Line(static_cast<int>(slice.total) - 1));
        }
      }
    });
  }
  writer.join();
  for (auto& thread : readers) thread.join();
  JournalSlice final_slice = reader_.Read(path_, 10);
  EXPECT_EQ(final_slice.total, static_cast<size_t>(kLines));
  EXPECT_EQ(final_slice.newest, Lines(kLines - 10, kLines));
}

}  // namespace
}  // namespace herd
