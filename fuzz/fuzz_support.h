// Shared set-up for herd's libFuzzer targets (fuzz/*_fuzz.cc).
//
// Every target runs in a private temporary directory: FuzzHome() makes it
// once per process, points XDG_STATE_HOME (the known-workspaces registry)
// and CLAUDE_ORCHESTRATOR_WORKSPACE into it, and silences herd's logging so
// the fuzzer's own output stays readable. Nothing outside that directory is
// written. Not thread-safe; libFuzzer calls targets from one thread.
#pragma once

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace herd::fuzz {

// The directory, absolute; the process exits if it cannot be made.
inline const std::string& FuzzHome() {
  static const std::string home = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/herd-fuzz.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      std::perror("herd fuzz: mkdtemp");
      std::exit(1);
    }
    setenv("XDG_STATE_HOME", (pattern + "/state").c_str(), 1);
    setenv("CLAUDE_ORCHESTRATOR_WORKSPACE", (pattern + "/workspace").c_str(), 1);
    spdlog::set_level(spdlog::level::off);
    return pattern;
  }();
  return home;
}

}  // namespace herd::fuzz
