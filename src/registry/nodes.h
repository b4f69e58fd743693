// Nodes: the machines that run the agents of a shared registry
// (PostgreSQL: registry/pg_registry.h), and the one rule that places an
// agent on one of them.
//
// A node is one `herd node` daemon: a name, a capacity (how many of the
// registry's agents may be active on it at once) and labels. It holds a
// lease that it renews; every lease time is the database server's clock,
// never a machine's own. Each registration is a new incarnation: an agent
// placed on an earlier incarnation is never started or resurrected by a
// later one. A node's state is
//   up       registered, its lease renewed in time;
//   left     its daemon stopped cleanly;
//   expired  its lease ran out, so its active agents were marked lost.
//
// ChoosePlacement is a pure function of what the admission transaction
// read under its locks (registry/pg_registry.cc Admit), so the same rule
// is tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd::registry {

// What a node offers, as its daemon registers it.
struct NodeSpec {
  std::string name;
  std::string hostname;
  int capacity = 0;  // at least 1
  std::vector<std::string> labels;
};

// Checks a node's name (a letter or digit, then letters, digits, '.', '_'
// or '-', at most 63), capacity and labels (the same characters).
Status ValidateNodeSpec(const NodeSpec& spec);

// A node as the registry holds it, with what the admission needs to know.
struct NodeView {
  NodeSpec spec;
  std::string state;  // up | left | expired
  int64_t incarnation = 0;
  std::string lease_expires_at;  // ISO 8601, server clock; "" if never leased
  // Milliseconds until the lease expires by the server's clock at the
  // read; 0 or less when it has expired.
  int64_t lease_remaining_ms = 0;
  int running = 0;  // active agents placed on it

  bool leased() const { return state == "up" && lease_remaining_ms > 0; }
};

// A lease a node holds: renew it (same incarnation) before it expires.
struct NodeLease {
  std::string name;
  int64_t incarnation = 0;
  std::string expires_at;  // server clock
};

// Where an admission asks its agent to run: a named node, or (no name) the
// least loaded node with room that has every label asked for.
struct PlacementRequest {
  std::string node;
  std::vector<std::string> labels;
};

// The node the agent goes to, from `nodes` (every node the registry knows):
// among the leased nodes with room (running < capacity) and every label of
// `request`, the one with the lowest running/capacity, then the fewest
// running, then the first by name. A refusal (Status::Refused) lists why
// each node could not take it and what to do.
Result<const NodeView*> ChoosePlacement(const std::vector<NodeView>& nodes,
                                        const PlacementRequest& request);

}  // namespace herd::registry
