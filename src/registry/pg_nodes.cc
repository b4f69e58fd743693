// PgRegistry's nodes (registry/pg_registry.h, registry/nodes.h).
#include <functional>
#include <map>

#include "registry/pg_registry.h"
#include "registry/pg_rows.h"
#include "registry/task_registry.h"
#include "registry/transitions.h"
#include "util/clock.h"

namespace herd::registry {

using pg::Connection;

namespace {

std::string Milliseconds(std::chrono::milliseconds ttl) {
  return std::to_string(ttl.count());
}

Status ValidateTtl(std::chrono::milliseconds ttl) {
  if (ttl.count() < 1) return Status::InvalidArgument("a node's lease must last at least 1 ms");
  return Status::Ok();
}

// The node's row, locked (after the cluster row); empty if unknown.
Result<pg::Rows> LockNode(Connection& c, const std::string& name) {
  return c.Exec(
      "SELECT hostname, state, incarnation, lease_expires_at > clock_timestamp(), "
      "coalesce(" +
          pg_rows::IsoTimestampSql("lease_expires_at") +
          ", '') FROM herd_nodes WHERE node_id = $1 FOR UPDATE",
      {name});
}

// What a node operation committed, to tell of after the commit.
struct MarkedLost {
  std::vector<PgRegistry::LostAgent> lost;
  std::vector<AgentTransition> transitions;
};

// Marks "node lost", in the caller's transaction (which holds the cluster
// row and the node's row), the active agents of `node` placed on an
// incarnation below `below_incarnation` (0: any), task by task in id order.
Status MarkNodeAgentsLost(Connection& c, const std::string& node, int64_t below_incarnation,
                          const std::string& detail, MarkedLost* marked) {
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      c.Exec("SELECT task_id, agent_id FROM herd_agents WHERE active AND node_id = $1 AND "
             "($2::bigint = 0 OR node_incarnation < $2::bigint) ORDER BY task_id, agent_id",
             {node, std::to_string(below_incarnation)}));
  std::map<std::string, std::vector<std::string>> by_task;
  for (int row = 0; row < rows.size(); ++row) {
    by_task[rows.Text(row, 0)].push_back(rows.Text(row, 1));
  }
  std::string now = NowIso8601();
  for (const auto& [task_id, agent_ids] : by_task) {
    HERD_ASSIGN_OR_RETURN(pg_rows::LoadedTask loaded, pg_rows::LoadForUpdate(c, task_id));
    if (!loaded.exists) continue;
    TaskRecord task = loaded.task;
    StatusesBefore before = StatusesOf(task);
    std::vector<std::string> changed;
    for (const std::string& agent_id : agent_ids) {
      AgentRecord* agent = task.FindAgent(agent_id);
      // Read under the task's lock: it may have ended since the query.
      if (agent == nullptr || !IsActiveStatus(agent->status)) continue;
      MarkAgentNodeLost(*agent, detail, now);
      changed.push_back(agent_id);
    }
    if (changed.empty()) continue;
    RecomputeCounts(task);
    HERD_RETURN_IF_ERROR(pg_rows::WriteTask(c, loaded, task).status());
    for (const std::string& agent_id : changed) {
      marked->lost.push_back({task_id, *task.FindAgent(agent_id)});
    }
    std::vector<AgentTransition> transitions = TransitionsBetween(before, task);
    marked->transitions.insert(marked->transitions.end(), transitions.begin(), transitions.end());
  }
  return Status::Ok();
}

// Runs `body` as one transaction that first takes the cluster row (every
// node operation's lock order starts there), collecting the agents it marks
// lost; tells of their transitions once it has committed.
Result<std::vector<PgRegistry::LostAgent>> LoseAgentsInOneTransaction(
    Connection& connection, pg::Idempotence idempotence,
    const std::function<Result<pg::Finish>(Connection& c, MarkedLost* marked)>& body) {
  MarkedLost marked;
  Status status =
      pg::RunTransaction(connection, idempotence, [&](Connection& c) -> Result<pg::Finish> {
        marked = MarkedLost{};  // from an attempt that did not commit
        HERD_RETURN_IF_ERROR(pg_rows::LockCluster(c));
        return body(c, &marked);
      });
  if (!status.ok()) return status;
  ObserveTransitions(marked.transitions);
  return std::move(marked.lost);
}

}  // namespace

Result<PgRegistry::NodeRegistration> PgRegistry::RegisterNode(const NodeSpec& spec,
                                                              std::chrono::milliseconds ttl) const {
  HERD_RETURN_IF_ERROR(ValidateNodeSpec(spec));
  HERD_RETURN_IF_ERROR(ValidateTtl(ttl));
  json labels = spec.labels;
  NodeRegistration registration;
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  // Not idempotent: a second run would register a second incarnation.
  Result<std::vector<LostAgent>> lost = LoseAgentsInOneTransaction(
      *lease, pg::Idempotence::kNotIdempotent,
      [&](Connection& c, MarkedLost* marked) -> Result<pg::Finish> {
        HERD_ASSIGN_OR_RETURN(pg::Rows existing, LockNode(c, spec.name));
        int64_t previous = 0;
        if (!existing.empty()) {
          previous = existing.Integer(0, 2);
          bool held = existing.Text(0, 1) == "up" && existing.Text(0, 3) == "t";
          if (held && existing.Text(0, 0) != spec.hostname) {
            return Status::Refused("node " + spec.name + " is up on " + existing.Text(0, 0) +
                                   " (its lease runs until " + existing.Text(0, 4) +
                                   "): give this machine another --name, or stop that node first");
          }
        }
        HERD_ASSIGN_OR_RETURN(
            pg::Rows registered,
            c.Exec(
                "INSERT INTO herd_nodes (node_id, hostname, incarnation, lease_expires_at, "
                "capacity, labels, state, registered_at, renewed_at) VALUES ($1, $2, $3, "
                "clock_timestamp() + $4 * interval '1 millisecond', $5, $6::jsonb, 'up', "
                "clock_timestamp(), clock_timestamp()) ON CONFLICT (node_id) DO UPDATE SET "
                "hostname = EXCLUDED.hostname, incarnation = herd_nodes.incarnation + 1, "
                "lease_expires_at = EXCLUDED.lease_expires_at, capacity = EXCLUDED.capacity, "
                "labels = EXCLUDED.labels, state = 'up', registered_at = EXCLUDED.registered_at, "
                "renewed_at = EXCLUDED.renewed_at RETURNING incarnation, " +
                    pg_rows::IsoTimestampSql("lease_expires_at"),
                {spec.name, spec.hostname, std::to_string(previous + 1), Milliseconds(ttl),
                 std::to_string(spec.capacity), labels.dump()}));
        registration.lease = {spec.name, registered.Integer(0, 0), registered.Text(0, 1)};
        HERD_RETURN_IF_ERROR(MarkNodeAgentsLost(
            c, spec.name, registration.lease.incarnation,
            "its node " + spec.name + " registered again (incarnation " +
                std::to_string(registration.lease.incarnation) + "): the agent's process on " +
                spec.hostname + " is gone with the earlier daemon",
            marked));
        return pg::Finish::kCommit;
      });
  if (!lost.ok()) return lost.status();
  registration.lost = std::move(lost).value();
  return registration;
}

Result<NodeLease> PgRegistry::RenewNodeLease(const std::string& name, int64_t incarnation,
                                             std::chrono::milliseconds ttl) const {
  HERD_RETURN_IF_ERROR(ValidateTtl(ttl));
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  // One statement: the lease is extended only while it holds.
  HERD_ASSIGN_OR_RETURN(
      pg::Rows renewed,
      (*lease).Exec("UPDATE herd_nodes SET lease_expires_at = clock_timestamp() + $3 * interval "
                    "'1 millisecond', renewed_at = clock_timestamp() WHERE node_id = $1 AND "
                    "incarnation = $2 AND state = 'up' AND lease_expires_at > clock_timestamp() "
                    "RETURNING " +
                        pg_rows::IsoTimestampSql("lease_expires_at"),
                    {name, std::to_string(incarnation), Milliseconds(ttl)}));
  if (renewed.empty()) {
    return Status::Refused("the lease of node " + name + " (incarnation " +
                           std::to_string(incarnation) +
                           ") has expired or was taken over: its agents are marked lost; stop "
                           "them and register the node again");
  }
  return NodeLease{name, incarnation, renewed.Text(0, 0)};
}

Result<std::vector<PgRegistry::LostAgent>> PgRegistry::LeaveNode(const std::string& name,
                                                                 int64_t incarnation) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  return LoseAgentsInOneTransaction(
      *lease, pg::Idempotence::kIdempotent,
      [&](Connection& c, MarkedLost* marked) -> Result<pg::Finish> {
        HERD_ASSIGN_OR_RETURN(pg::Rows node, LockNode(c, name));
        if (node.empty()) return Status::NotFound("there is no node " + name);
        if (node.Integer(0, 2) != incarnation) {
          return Status::Refused("node " + name + " is now incarnation " +
                                 std::to_string(node.Integer(0, 2)) + ", not " +
                                 std::to_string(incarnation) + ": nothing was changed");
        }
        if (node.Text(0, 1) == "left") return pg::Finish::kRollback;  // a second leave
        HERD_RETURN_IF_ERROR(MarkNodeAgentsLost(
            c, name, 0, "its node " + name + " stopped while the agent was active", marked));
        HERD_RETURN_IF_ERROR(
            c.Exec("UPDATE herd_nodes SET state = 'left', lease_expires_at = clock_timestamp() "
                   "WHERE node_id = $1",
                   {name})
                .status());
        return pg::Finish::kCommit;
      });
}

Result<std::vector<PgRegistry::LostAgent>> PgRegistry::ExpireNodeLeases() const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  return LoseAgentsInOneTransaction(
      *lease, pg::Idempotence::kIdempotent,
      [&](Connection& c, MarkedLost* marked) -> Result<pg::Finish> {
        HERD_ASSIGN_OR_RETURN(
            pg::Rows expired,
            c.Exec("SELECT node_id, incarnation, " + pg_rows::IsoTimestampSql("lease_expires_at") +
                   " FROM herd_nodes WHERE state = 'up' AND "
                   "lease_expires_at <= clock_timestamp() ORDER BY node_id FOR UPDATE"));
        if (expired.empty()) return pg::Finish::kRollback;
        for (int row = 0; row < expired.size(); ++row) {
          std::string name = expired.Text(row, 0);
          HERD_RETURN_IF_ERROR(MarkNodeAgentsLost(
              c, name, 0,
              "its node " + name + " (incarnation " + expired.Text(row, 1) +
                  ") stopped renewing its lease, which expired at " + expired.Text(row, 2),
              marked));
          // The node's row is locked: its lease was not renewed meanwhile.
          HERD_RETURN_IF_ERROR(
              c.Exec("UPDATE herd_nodes SET state = 'expired', incarnation = incarnation + 1 "
                     "WHERE node_id = $1",
                     {name})
                  .status());
        }
        return pg::Finish::kCommit;
      });
}

Result<std::vector<NodeView>> PgRegistry::ListNodes() const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  return pg_rows::ReadNodes(*lease);
}

Result<std::vector<PgRegistry::TaskAgent>> PgRegistry::NodeWork(const std::string& name,
                                                                int64_t incarnation) const {
  HERD_ASSIGN_OR_RETURN(Pool::Lease lease, pool_->Take());
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      (*lease).Exec("SELECT task_id, document::text FROM herd_agents WHERE node_id = $1 AND "
                    "node_incarnation = $2::bigint AND (active OR (document ? 'supervisor_pid' "
                    "AND coalesce(document->>'phase', '') NOT IN ('exited', 'lost'))) "
                    "ORDER BY task_id, agent_id",
                    {name, std::to_string(incarnation)}));
  std::vector<TaskAgent> work;
  for (int row = 0; row < rows.size(); ++row) {
    std::string task_id = rows.Text(row, 0);
    HERD_ASSIGN_OR_RETURN(json document,
                          pg_rows::ParseStored(rows.Text(row, 1), pg_rows::Source(task_id)));
    HERD_ASSIGN_OR_RETURN(AgentRecord agent, DecodeAgent(document, pg_rows::Source(task_id)));
    work.push_back({std::move(task_id), std::move(agent)});
  }
  return work;
}

}  // namespace herd::registry
