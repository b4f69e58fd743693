// herd logs --follow: prints an agent's output as it arrives until the
// agent has ended, and never polls.
//
// Two sources, one contract. On the machine that runs the agent the log
// file is read from where the last print stopped, woken by inotify
// (util/directory_watch.h) on the log's directory and on the task's files.
// From any other machine of a shared (PostgreSQL) registry the tail the
// registry keeps (registry/pg_registry.h herd_output) is read chunk by
// chunk, woken by its notifications and by the task's commits; if the
// follower falls so far behind that chunks were dropped, it says so on
// stderr and goes on from the oldest kept.
//
// Either way the agent's state is read before the output it is compared
// with, so the output written before its end is printed before the follow
// returns.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "orchestrator/orchestrator.h"

namespace herd::cli {

// Prints the log file's bytes from `offset` as they are written until the
// agent has ended. Returns an exit code (commands.h).
int FollowLogFile(const Orchestrator& orchestrator, const std::string& task_id,
                  const std::string& agent_id, const std::string& log_path, uint64_t offset);

// For an agent whose output is in the registry
// (Orchestrator::OutputIsInRegistry): prints the last `tail_lines` lines
// the registry keeps (SIZE_MAX: all of them), then each chunk as the
// agent's node appends it, until the agent has ended. Returns an exit code
// (commands.h).
int FollowRegistryOutput(const Orchestrator& orchestrator, const std::string& task_id,
                         const std::string& agent_id, size_t tail_lines);

}  // namespace herd::cli
