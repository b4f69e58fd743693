// A throwaway PostgreSQL server for a benchmark run that was given none:
// started by scripts/test-postgres.sh (HERD_POSTGRES_SCRIPT, which the
// build defines) in a directory of its own, /tmp/herd-bench-pg-<random>
// (not inside a 0700 scratch directory: the server runs as postgres), and
// stopped when the process exits (atexit: a forked child must leave by
// _exit). fsync stays on. One per process.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "util/random.h"

namespace herd::bench {

namespace throwaway_detail {
inline std::string& Directory() {
  static std::string directory;  // "" until one is started
  return directory;
}
}  // namespace throwaway_detail

// Stops the server this process started, if any.
inline void StopThrowawayPostgres() {
  std::string& directory = throwaway_detail::Directory();
  if (directory.empty()) return;
  std::string command = std::string(HERD_POSTGRES_SCRIPT) + " stop " + directory + " >&2";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "could not stop the PostgreSQL server in %s\n", directory.c_str());
  }
  directory.clear();
}

// Starts one and returns its conninfo; "" after saying why on stderr.
inline std::string StartThrowawayPostgres() {
  std::string& directory = throwaway_detail::Directory();
  directory = "/tmp/herd-bench-pg-" + RandomHex(8);
  std::string command = std::string(HERD_POSTGRES_SCRIPT) + " start " + directory + " >&2";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "cannot start a PostgreSQL server (%s): give one with --postgres URL\n",
                 command.c_str());
    directory.clear();
    return "";
  }
  std::atexit(StopThrowawayPostgres);
  return "host=" + directory + " user=postgres dbname=postgres";
}

}  // namespace herd::bench
