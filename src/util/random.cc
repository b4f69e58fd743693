#include "util/random.h"

#include <sys/random.h>

#include <cstdint>

#include "util/clock.h"

namespace herd {

std::string RandomHex(int digits) {
  unsigned char bytes[32] = {};
  size_t wanted = static_cast<size_t>((digits + 1) / 2);
  if (getrandom(bytes, wanted, 0) != static_cast<ssize_t>(wanted)) {
    // getrandom cannot fail for small requests once the pool is ready; mix
    // in the clock rather than aborting if it ever does.
    uint64_t fallback = static_cast<uint64_t>(NowUnixSeconds() * 1e9);
    for (size_t i = 0; i < wanted; ++i)
      bytes[i] = static_cast<unsigned char>(fallback >> (8 * (i % 8)));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (size_t i = 0; i < wanted; ++i) {
    hex += kHex[bytes[i] >> 4];
    hex += kHex[bytes[i] & 15];
  }
  hex.resize(static_cast<size_t>(digits));
  return hex;
}

std::string RandomUuid() {
  std::string hex = RandomHex(32);
  hex[12] = '4';                                                    // version 4: random
  hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];  // variant 10xx
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

}  // namespace herd
