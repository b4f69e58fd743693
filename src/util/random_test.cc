#include "util/random.h"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>

namespace herd {
namespace {

TEST(RandomHexTest, ProducesTheRequestedNumberOfHexDigits) {
  for (int digits : {1, 6, 8, 15, 16, 32}) {
    std::string hex = RandomHex(digits);
    EXPECT_EQ(hex.size(), static_cast<size_t>(digits));
    EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << hex;
  }
}

TEST(RandomUuidTest, IsAVersionFourUuidAndNeverRepeats) {
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = RandomUuid();
    EXPECT_TRUE(std::regex_match(id, uuid)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(RandomHexTest, RepeatsAreVanishinglyRare) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(RandomHex(16));
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace herd
