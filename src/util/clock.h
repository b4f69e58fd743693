// Time helpers shared by every layer: a monotonic clock for measuring and
// deadlines, and the UTC wall-clock timestamps written into registries.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace herd {

using MonotonicClock = std::chrono::steady_clock;

// Milliseconds elapsed since `start`, with sub-millisecond precision.
double MillisecondsSince(MonotonicClock::time_point start);
// Milliseconds from `start` to `end`, with sub-millisecond precision.
double MillisecondsBetween(MonotonicClock::time_point start, MonotonicClock::time_point end);

// Now as ISO 8601 UTC with microseconds, e.g. "2026-11-27T03:49:36.123456Z".
// Lexicographic order equals time order, which timelines rely on.
std::string NowIso8601();

// "2026-11-27T03:49:36.123456Z" as seconds since the Unix epoch; nullopt if
// the text is not such a timestamp.
std::optional<double> ParseIso8601(const std::string& text);

// Seconds since the Unix epoch as "2026-11-27T03:49:36Z".
std::string FormatIso8601(double unix_seconds);

// Seconds since the Unix epoch, as a double (wall clock).
double NowUnixSeconds();

// Compact UTC stamp for file and id names: "20261127-034936".
std::string CompactUtcStamp();

}  // namespace herd
