#include "util/utf8.h"

#include <gtest/gtest.h>

namespace herd {
namespace {

TEST(Utf8Test, PrefixNeverSplitsACharacter) {
  EXPECT_EQ(Utf8Prefix("h\xc3\xa9llo", 2), "h");
  EXPECT_EQ(Utf8Prefix("h\xc3\xa9llo", 3), "h\xc3\xa9");
  EXPECT_EQ(Utf8Prefix("short", 10), "short");
}

TEST(Utf8Test, ShowableKeepsValidTextAndEscapesEverythingElse) {
  EXPECT_EQ(ShowableUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x91\ttab"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x91\ttab");
  EXPECT_EQ(ShowableUtf8(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(ShowableUtf8("\x1b[2J\x7f\n"), "\\x1b[2J\\x7f\\x0a");
  EXPECT_EQ(ShowableUtf8("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(ShowableUtf8("\xc3"), "\\xc3") << "a sequence cut short";
  EXPECT_EQ(ShowableUtf8("\xc0\xaf"), "\\xc0\\xaf") << "an overlong form";
  EXPECT_EQ(ShowableUtf8("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "a surrogate";
  EXPECT_EQ(ShowableUtf8("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80") << "past U+10FFFF";
}

}  // namespace
}  // namespace herd
