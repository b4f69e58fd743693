#include "util/clock.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>

namespace herd {

double MillisecondsSince(MonotonicClock::time_point start) {
  return MillisecondsBetween(start, MonotonicClock::now());
}

double MillisecondsBetween(MonotonicClock::time_point start, MonotonicClock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

std::string NowIso8601() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                now.tv_nsec / 1000);
  return buffer;
}

double NowUnixSeconds() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

std::string CompactUtcStamp() {
  time_t now = time(nullptr);
  tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y%m%d-%H%M%S", &utc);
  return buffer;
}

std::optional<double> ParseIso8601(const std::string& text) {
  int year, month, day, hour, minute;
  double second;
  char zone = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%c", &year, &month, &day, &hour, &minute,
                  &second, &zone) != 7 ||
      zone != 'Z') {
    return std::nullopt;
  }
  tm utc{};
  utc.tm_year = year - 1900;
  utc.tm_mon = month - 1;
  utc.tm_mday = day;
  utc.tm_hour = hour;
  utc.tm_min = minute;
  return static_cast<double>(timegm(&utc)) + second;
}

std::string FormatIso8601(double unix_seconds) {
  time_t seconds = static_cast<time_t>(unix_seconds);
  tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

}  // namespace herd
