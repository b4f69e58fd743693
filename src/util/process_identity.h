// ProcessIdentity: one process, told apart from any later process that
// reuses its pid.
//
// A pid alone names whichever process holds it now; the pid together with
// the process's start time (field 22 of /proc/<pid>/stat, in clock ticks
// since boot) names exactly one process for the life of the machine. herd
// records both for every agent and supervisor, and acts on a recorded
// process (signals it, reports it alive) only while both still match
// (agents/process.h). A plain value; pid 0 means "none recorded".
#pragma once

namespace herd {

struct ProcessIdentity {
  int pid = 0;
  unsigned long long start_time = 0;  // field 22 of /proc/<pid>/stat

  bool recorded() const { return pid > 0; }
  bool operator==(const ProcessIdentity&) const = default;
};

}  // namespace herd
