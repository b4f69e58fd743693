#include "util/random.h"

#include <gtest/gtest.h>

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

TEST(RandomHexTest, RepeatsAreVanishinglyRare) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(RandomHex(16));
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace herd
