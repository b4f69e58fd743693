// Doctor checks on the nodes of the PostgreSQL registry (registry/nodes.h):
// the machines whose `herd node` daemons run the agents placed on them.
//
// Reads the nodes (PgRegistry::ListNodes; lease times by the server's
// clock) and every task (Registry::TaskIds, ReadTask), and reports each
// node: its state, incarnation, lease (remaining ms), running vs capacity.
// Findings:
// - expired_node_lease: a node still "up" whose lease has expired by the
//   server's clock (its machine died or was cut off, and no other node has
//   renewed since to expire it). An error when agents are active on it, a
//   warning when none are. Repair: PgRegistry::ExpireNodeLeases, one
//   transaction that re-checks every lease under the node rows' locks,
//   marks those nodes "expired" and their active agents error "node lost".
// - dead_node_agent: an active agent placed on a node that can no longer
//   run it. Either its node's lease has expired (repaired with the node,
//   by the same one transaction), or its node is "left", "expired",
//   unknown, or now a later incarnation than the agent's (which the engine's
//   own node operations never leave behind). Repair of the latter:
//   Registry::MarkLost, one task transaction that re-checks under the task's
//   lock that the agent is still active on a node incarnation that is not
//   up; the condition cannot turn false again (an incarnation never comes
//   back), so the node rows it reads just before stay true.
// Placed agents are never looked for in this machine's /proc nor signalled:
// their nodes' daemons do that.
//
// Not thread-safe (doctor runs checks one by one); the context's stores must
// carry the PostgreSQL registry.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "health/check_context.h"
#include "health/findings.h"
#include "util/status.h"

namespace herd::health {

struct NodeChecks {
  // One object per node, by name: {"name", "hostname", "state",
  // "incarnation", "lease_expires_at", "lease_remaining_ms", "running",
  // "capacity", "labels"}.
  nlohmann::json nodes = nlohmann::json::array();
  std::vector<Finding> findings;
};

// The nodes' report and findings; an error when the registry cannot be read.
Result<NodeChecks> CheckNodes(const CheckContext& context);

}  // namespace herd::health
