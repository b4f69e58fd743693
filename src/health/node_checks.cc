#include "health/node_checks.h"

#include <map>
#include <memory>
#include <string>

#include "registry/pg_registry.h"
#include "registry/registries.h"
#include "registry/task_registry.h"

namespace herd::health {
namespace {

using nlohmann::json;
using registry::AgentRecord;
using registry::NodePlacement;
using registry::NodeView;
using registry::PgRegistry;

json NodeJson(const NodeView& node) {
  return {{"name", node.spec.name},
          {"hostname", node.spec.hostname},
          {"state", node.state},
          {"incarnation", node.incarnation},
          {"lease_expires_at", node.lease_expires_at},
          {"lease_remaining_ms", node.lease_remaining_ms},
          {"running", node.running},
          {"capacity", node.spec.capacity},
          {"labels", node.spec.labels}};
}

const NodeView* FindNode(const std::vector<NodeView>& nodes, const std::string& name) {
  for (const NodeView& node : nodes) {
    if (node.spec.name == name) return &node;
  }
  return nullptr;
}

// Still "up" by its row, but its lease ran out by the server's clock.
bool LeaseExpired(const NodeView& node) {
  return node.state == "up" && node.lease_remaining_ms <= 0;
}

// Why the node incarnation an agent was placed on can no longer run it
// (`node` is the node's row, null if the registry has none), or "" if it
// can. Once not "", never "" again: incarnations only grow, and a node
// comes back up only as a new incarnation.
std::string WhyNodeCannotRunIt(const NodeView* node, const NodePlacement& placement) {
  std::string name = "its node " + placement.name;
  if (node == nullptr) return name + " is not in the registry";
  if (node->incarnation != placement.incarnation) {
    return name + " is now incarnation " + std::to_string(node->incarnation) + " (" + node->state +
           "), not the agent's " + std::to_string(placement.incarnation);
  }
  if (node->state != "up") return name + " is " + node->state;
  return "";
}

// The node's lease, for a person: when it expired and how long ago.
std::string ExpiredLease(const NodeView& node) {
  return "its lease expired at " + node.lease_expires_at + " (" +
         std::to_string(-node.lease_remaining_ms) + " ms ago by the server's clock)";
}

// ExpireNodeLeases, reporting what it changed: the agents it marked "node
// lost", and the nodes it marked "expired" (read before and after).
RepairOutcome ExpireLeases(const PgRegistry& pg) {
  Result<std::vector<NodeView>> before = pg.ListNodes();
  if (!before.ok()) return RepairOutcome::Failed(before.status());
  Result<std::vector<PgRegistry::LostAgent>> lost = pg.ExpireNodeLeases();
  if (!lost.ok()) return RepairOutcome::Failed(lost.status());
  Result<std::vector<NodeView>> after = pg.ListNodes();
  if (!after.ok()) return RepairOutcome::Failed(after.status());
  std::string nodes;
  for (const NodeView& node : *before) {
    const NodeView* now = FindNode(*after, node.spec.name);
    if (LeaseExpired(node) && now != nullptr && now->state == "expired" &&
        now->incarnation > node.incarnation) {
      nodes += (nodes.empty() ? "" : ", ") + node.spec.name;
    }
  }
  if (lost->empty() && nodes.empty()) {
    return RepairOutcome::Unchanged("no node's lease is expired any more (expired meanwhile)");
  }
  std::string agents;
  for (const PgRegistry::LostAgent& agent : *lost) {
    agents += (agents.empty() ? "" : ", ") + agent.task_id + "/" + agent.agent.id;
  }
  std::string action = "marked node(s) " + (nodes.empty() ? std::string("-") : nodes) +
                       " \"expired\" and " + std::to_string(lost->size()) +
                       " agent(s) error \"node lost\"";
  if (!agents.empty()) action += ": " + agents;
  return RepairOutcome::Changed(action);
}

// Marks an agent of a node incarnation that cannot run it lost, re-checking
// under the task's lock that it is still active on that incarnation.
RepairOutcome MarkPlacedAgentLost(const CheckContext& context, const std::string& task_id,
                                  const std::string& agent_id, const NodePlacement& placement) {
  Result<std::vector<NodeView>> nodes = context.stores->postgres->ListNodes();
  if (!nodes.ok()) return RepairOutcome::Failed(nodes.status());
  std::string why = WhyNodeCannotRunIt(FindNode(*nodes, placement.name), placement);
  if (why.empty()) return RepairOutcome::Unchanged("its node runs it");
  Result<registry::Registry::LostOutcome> outcome =
      registry::RegistryFor(*context.stores, context.workspace)
          ->MarkLost(task_id, agent_id,
                     [&](const AgentRecord& agent) -> std::optional<std::string> {
                       if (!registry::IsActiveStatus(agent.status) || !agent.node ||
                           agent.node->name != placement.name ||
                           agent.node->incarnation != placement.incarnation) {
                         return std::nullopt;
                       }
                       return "placed on node " + placement.name + " (incarnation " +
                              std::to_string(placement.incarnation) + "), but " + why;
                     });
  if (!outcome.ok()) return RepairOutcome::Failed(outcome.status());
  if (!outcome->marked) return RepairOutcome::Unchanged(outcome->left_alone);
  return RepairOutcome::Changed("marked " + agent_id + " error \"" + registry::kLostReason + "\"");
}

Finding DeadNodeAgent(const std::string& task_id, const AgentRecord& agent, std::string detail,
                      std::shared_ptr<Fix> fix) {
  Finding finding;
  finding.kind = FindingKind::kDeadNodeAgent;
  finding.severity = Severity::kError;
  finding.task_id = task_id;
  finding.agent_id = agent.id;
  finding.detail = std::move(detail);
  finding.fix = std::move(fix);
  return finding;
}

}  // namespace

Result<NodeChecks> CheckNodes(const CheckContext& context) {
  const PgRegistry& pg = *context.stores->postgres;
  HERD_ASSIGN_OR_RETURN(std::vector<NodeView> nodes, pg.ListNodes());
  // The active agents placed on each node, by node name.
  std::map<std::string, std::vector<PgRegistry::TaskAgent>> placed;
  std::unique_ptr<const registry::Registry> registry =
      registry::RegistryFor(*context.stores, context.workspace);
  for (const std::string& task_id : TaskIdsOf(context)) {
    Result<registry::SharedTask> task = registry->ReadTask(task_id);
    if (!task.ok()) return task.status();
    for (const AgentRecord& agent : (*task)->task.agents) {
      if (agent.node && registry::IsActiveStatus(agent.status)) {
        placed[agent.node->name].push_back({task_id, agent});
      }
    }
  }

  NodeChecks checks;
  // One repair for every expired lease: ExpireNodeLeases takes them all.
  std::shared_ptr<Fix> expire;
  auto expire_fix = [&] {
    if (!expire) {
      const registry::RegistryStores* stores = context.stores;
      expire = std::make_shared<Fix>(
          FindingKind::kExpiredNodeLease, "nodes with an expired lease",
          "mark every node whose lease has expired \"expired\" and its active agents error "
          "\"node lost\", in one registry transaction that re-checks each lease",
          [stores] { return ExpireLeases(*stores->postgres); });
    }
    return expire;
  };
  for (const NodeView& node : nodes) {
    checks.nodes.push_back(NodeJson(node));
    if (!LeaseExpired(node)) continue;
    const std::vector<PgRegistry::TaskAgent>& agents = placed[node.spec.name];
    Finding finding;
    finding.kind = FindingKind::kExpiredNodeLease;
    finding.severity = agents.empty() ? Severity::kWarning : Severity::kError;
    finding.detail = "node " + node.spec.name + " (" + node.spec.hostname + ", incarnation " +
                     std::to_string(node.incarnation) + ") is \"up\" but " + ExpiredLease(node) +
                     ": its daemon stopped renewing, and " + std::to_string(agents.size()) +
                     " agent(s) of this diagnosis are active on it";
    finding.fix = expire_fix();
    checks.findings.push_back(std::move(finding));
    for (const PgRegistry::TaskAgent& placed_agent : agents) {
      checks.findings.push_back(DeadNodeAgent(placed_agent.task_id, placed_agent.agent,
                                              "active on node " + node.spec.name + " (" +
                                                  node.spec.hostname + "), but " +
                                                  ExpiredLease(node) + ": no daemon answers for it",
                                              expire_fix()));
    }
  }
  // Agents whose node incarnation is gone although the node's lease is not
  // what expired (a later incarnation, a node that left or is unknown).
  for (const auto& [name, agents] : placed) {
    const NodeView* node = FindNode(nodes, name);
    if (node != nullptr && LeaseExpired(*node)) continue;  // reported with its node
    for (const PgRegistry::TaskAgent& placed_agent : agents) {
      const NodePlacement placement = *placed_agent.agent.node;
      std::string why = WhyNodeCannotRunIt(node, placement);
      if (why.empty()) continue;
      CheckContext captured = context;
      std::string task_id = placed_agent.task_id;
      std::string agent_id = placed_agent.agent.id;
      auto fix = std::make_shared<Fix>(
          FindingKind::kDeadNodeAgent, task_id + "/" + agent_id,
          "mark " + agent_id + " status \"error\", error \"" + registry::kLostReason +
              "\" (re-checked in the task's transaction)",
          [captured, task_id, agent_id, placement] {
            return MarkPlacedAgentLost(captured, task_id, agent_id, placement);
          });
      checks.findings.push_back(DeadNodeAgent(
          task_id, placed_agent.agent,
          "active on node " + name + " (incarnation " + std::to_string(placement.incarnation) +
              "), but " + why + ": nothing will run it or record its end",
          std::move(fix)));
    }
  }
  return checks;
}

}  // namespace herd::health
