// The node daemon: `herd node run`, one per machine of a shared
// (PostgreSQL) registry. It runs the agents the registry places on its
// machine, and answers for them.
//
// Start: it locks its state directory (one daemon per directory; a second
// is refused, naming the holder), registers its node (a name, a capacity,
// labels) as a new incarnation with a lease on the server's clock
// (registry/pg_registry.h RegisterNode; active agents of an earlier
// incarnation are marked lost, never run again), and sets HERD_NODE and
// HERD_NODE_INCARNATION for every process it starts.
//
// Work: it LISTENs on every task's commits (PgRegistry::WatchEveryCommit)
// and, once at start, on every wake and on every lease renewal, catches up
// (PgRegistry::NodeWork): each agent placed on this incarnation and not
// started yet is started under a supervisor of this machine
// (agents/launcher.h StartPlacedAgent, or StartFollowUpTurn for a turn a
// message from another machine began; each start on a thread of its own,
// so the lease is renewed while supervisors start); a message sent with
// interrupt has the running turn's supervisor signalled; each that has ended (a kill, a
// stop, a budget, from any machine) while its supervisor still runs is
// stopped by that supervisor, found by pid and start time
// (agents/killer.h RequestStop), which records the exit: the record is the
// kill's confirmation. A notification only wakes it; the catch-up decides.
//
// Lease: renewed every ttl/3 (ExpireNodeLeases then marks the agents of
// other nodes whose leases ran out lost). Every supervisor it starts holds
// the read end of a lifeline pipe whose write end only the daemon holds
// (agents/supervisor.h): when the daemon ends or is killed, or when no
// renewal has succeeded by ttl - SelfStopMargin(ttl) after the last
// successful one was sent (so before the lease can expire by the server's
// clock; a watchdog thread, node/lifelines.h, so a renewal stuck in the
// network cannot delay it), the lifelines close and every agent stops
// within kLifelineStopGrace; its next contact with the registry registers
// a new incarnation. A renewal refused (the lease expired, or a newer
// incarnation took the name) stops the agents the same way and registers
// again, as a new incarnation.
//
// Stop (SIGTERM, SIGINT): closes the lifelines, waits for the supervisors
// to record the exits (bounded), then leaves (state "left").
//
// Nothing is held while it forks or waits: the lock is its own directory's
// flock, and every registry change is one transaction of the registry's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "registry/nodes.h"
#include "registry/registry_stores.h"
#include "util/status.h"
#include "util/stop_signal.h"

namespace herd::node {

inline constexpr std::chrono::seconds kDefaultLeaseTtl{30};
inline constexpr std::chrono::seconds kShortestLeaseTtl{5};

// How long before its lease could expire a node that cannot renew stops
// its agents: a third of the lease, and at least the lifeline's grace and
// a second more.
std::chrono::milliseconds SelfStopMargin(std::chrono::milliseconds ttl);

struct NodeOptions {
  registry::NodeSpec spec;
  std::string state_directory;  // its lock, its agents' files and logs
  std::chrono::milliseconds lease_ttl = kDefaultLeaseTtl;
  // Called after each registration with its incarnation (herd node run
  // prints it, so whoever started the daemon knows it is up).
  std::function<void(int64_t incarnation)> on_registered;
};

// Checks the options (the node's spec, the lease) without touching
// anything: InvalidArgument says what to change.
Status ValidateNodeOptions(const NodeOptions& options);

// Runs the daemon until `stop` is stopped; `stores` must carry the
// PostgreSQL registry. Returns an error only when it cannot start (the
// directory is held, the registry refuses the name) or cannot leave.
Status RunNode(const registry::RegistryStores& stores, const NodeOptions& options,
               const StopSignal& stop);

}  // namespace herd::node
