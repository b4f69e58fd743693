// Liveness: whether an active registry entry still has the processes that
// will record its end, judged from what the entry records (pid + start time
// of the agent and of its supervisor; see agents/process.h).
//
// One classification for every surface: `herd status` and MCP
// get_real_task_status report it per agent, and `herd doctor` builds its
// lost-agent findings on it. It checks only the two recorded identities,
// so it is cheap enough to run for every agent on every status.
//
// An entry is "starting" from admission until its supervisor records the
// started agent (milliseconds normally). It counts as lost only when that
// has not happened within `starting_grace` and no recorded supervisor runs:
// its deployer died before the start, and nothing will record its end.
//
// An agent placed on another machine's node (a shared registry's) is
// "on_node": its pids are that machine's, so nothing here is checked, and
// its node answers for it (node/node_daemon.h).
#pragma once

#include <chrono>

#include "agents/process_watch.h"
#include "registry/records.h"

namespace herd::agents {

enum class Liveness {
  kEnded,         // status is terminal: nothing to watch
  kStarting,      // admitted, start not yet recorded, within the grace
  kStartLost,     // still "starting" after the grace with no supervisor
  kAlive,         // agent and supervisor running
  kUnsupervised,  // agent running, supervisor gone: its exit will not be recorded
  kExiting,       // agent gone, supervisor still running (it records the exit)
  kLost,          // agent and supervisor gone while the entry says active
  kOnOtherNode,   // placed on another machine's node, which answers for it
};

// Whether agent `agent` runs on this machine, so its processes may be
// signalled here: it was not placed on a node, or it was placed on the
// node whose daemon (or one of whose supervisors) this process is
// (HERD_NODE and HERD_NODE_INCARNATION, set by `herd node`). An agent
// elsewhere is stopped by its own node, which the registry's mark wakes.
bool RunsOnThisMachine(const registry::AgentRecord& agent);

// The default grace for an entry in phase "starting".
constexpr std::chrono::seconds kStartingGrace{60};

// Classifies `agent` (a registry entry) at `now_unix_seconds`. With a
// `watch`, processes are checked through its pidfds (cheap when asked
// again); without, through /proc.
Liveness ClassifyLiveness(const registry::AgentRecord& agent, double now_unix_seconds,
                          std::chrono::seconds starting_grace = kStartingGrace,
                          ProcessWatch* watch = nullptr);

// "ended", "starting", "alive", "unsupervised", "exiting", "on_node" or
// "lost" (both lost kinds), as status reports it.
const char* LivenessName(Liveness liveness);

// True for the two kinds nothing will ever resolve on its own.
bool IsLost(Liveness liveness);

}  // namespace herd::agents
