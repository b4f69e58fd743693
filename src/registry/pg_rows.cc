#include "registry/pg_rows.h"

#include "registry/global_index.h"
#include "registry/task_registry.h"
#include "util/json_parse.h"

namespace herd::registry::pg_rows {

using pg::Connection;

std::string Source(const std::string& task_id) {
  return "task " + task_id + " in the PostgreSQL registry";
}

Status TaskNotFound(const std::string& task_id) {
  return Status::NotFound("task " + task_id +
                          " does not exist: run `herd task list` to see the tasks");
}

Result<json> ParseStored(const std::string& text, const std::string& what) {
  Result<json> parsed = ParseJson(text, kMaxDocumentDepth);
  if (!parsed.ok()) return Status::Corruption(what + ": " + parsed.status().message());
  return parsed;
}

Result<LoadedTask> LoadForUpdate(Connection& c, const std::string& task_id) {
  LoadedTask loaded;
  HERD_ASSIGN_OR_RETURN(pg::Rows task,
                        c.Exec("SELECT sequence, document::text FROM herd_tasks WHERE task_id = $1 "
                               "FOR UPDATE",
                               {task_id}));
  if (task.empty()) return loaded;
  loaded.exists = true;
  loaded.sequence = static_cast<uint64_t>(task.Integer(0, 0));
  HERD_ASSIGN_OR_RETURN(json document, ParseStored(task.Text(0, 1), Source(task_id)));
  HERD_ASSIGN_OR_RETURN(pg::Rows agents,
                        c.Exec("SELECT agent_id, position, document::text FROM herd_agents "
                               "WHERE task_id = $1 ORDER BY position",
                               {task_id}));
  json entries = json::array();
  for (int row = 0; row < agents.size(); ++row) {
    HERD_ASSIGN_OR_RETURN(
        json entry,
        ParseStored(agents.Text(row, 2), Source(task_id) + ", agent " + agents.Text(row, 0)));
    loaded.stored_agents[agents.Text(row, 0)] = {static_cast<int>(agents.Integer(row, 1)), entry};
    entries.push_back(std::move(entry));
  }
  document["agents"] = std::move(entries);
  HERD_ASSIGN_OR_RETURN(loaded.task, DecodeTask(document, Source(task_id)));
  RecomputeCounts(loaded.task);
  return loaded;
}

// Writes the task's row (sequence + 1) and the agents' rows that changed;
// returns the new sequence.
Result<uint64_t> WriteTask(Connection& c, const LoadedTask& loaded, const TaskRecord& task) {
  json document = EncodeTask(task);
  json agents = std::move(document["agents"]);
  document.erase("agents");
  std::string stopped = task.stopped ? "true" : "false";
  uint64_t sequence = 1;
  if (!loaded.exists) {
    HERD_RETURN_IF_ERROR(c.Exec("INSERT INTO herd_tasks (task_id, sequence, document, stopped) "
                                "VALUES ($1, 1, $2::jsonb, $3)",
                                {task.task_id, document.dump(), stopped})
                             .status());
  } else {
    HERD_ASSIGN_OR_RETURN(
        pg::Rows updated,
        c.Exec("UPDATE herd_tasks SET sequence = sequence + 1, document = $2::jsonb, stopped = $3, "
               "updated_at = now() WHERE task_id = $1 RETURNING sequence",
               {task.task_id, document.dump(), stopped}));
    sequence = static_cast<uint64_t>(updated.Integer(0, 0));
  }
  std::set<std::string> present;
  for (int position = 0; position < static_cast<int>(agents.size()); ++position) {
    const json& entry = agents[position];
    const AgentRecord& agent = task.agents[position];
    present.insert(agent.id);
    auto stored = loaded.stored_agents.find(agent.id);
    if (stored != loaded.stored_agents.end() && stored->second.first == position &&
        stored->second.second == entry) {
      continue;
    }
    pg::Parameters row = {task.task_id,
                          agent.id,
                          std::to_string(position),
                          agent.status,
                          IsActiveStatus(agent.status) ? "true" : "false",
                          entry.dump(),
                          std::nullopt,
                          std::nullopt};
    if (agent.node) {
      row[6] = agent.node->name;
      row[7] = std::to_string(agent.node->incarnation);
    }
    HERD_RETURN_IF_ERROR(
        c.Exec("INSERT INTO herd_agents (task_id, agent_id, position, status, active, document, "
               "node_id, node_incarnation) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8) "
               "ON CONFLICT (task_id, agent_id) DO UPDATE SET position = EXCLUDED.position, "
               "status = EXCLUDED.status, active = EXCLUDED.active, document = EXCLUDED.document, "
               "node_id = EXCLUDED.node_id, node_incarnation = EXCLUDED.node_incarnation",
               row)
            .status());
  }
  // Delivered to listeners once this transaction commits, never before.
  HERD_RETURN_IF_ERROR(
      c.Exec("SELECT pg_notify($1, $2)", {std::string(PgRegistry::kCommitChannel),
                                          task.task_id + " " + std::to_string(sequence)})
          .status());
  for (const auto& [agent_id, stored] : loaded.stored_agents) {
    if (present.count(agent_id)) continue;
    HERD_RETURN_IF_ERROR(c.Exec("DELETE FROM herd_agents WHERE task_id = $1 AND agent_id = $2",
                                {task.task_id, agent_id})
                             .status());
  }
  return sequence;
}

Status LockCluster(Connection& c) {
  return c.Exec("SELECT id FROM herd_cluster WHERE id = 1 FOR UPDATE").status();
}

namespace {

// Active agents of every task but those of `excluding_agent` of
// `excluding_task` (the one being admitted or restarted), as committed.
Result<int> RunningAgents(Connection& c, const std::string& excluding_task,
                          const std::string& excluding_agent) {
  HERD_ASSIGN_OR_RETURN(pg::Rows rows,
                        c.Exec("SELECT count(*) FROM herd_agents WHERE active AND NOT "
                               "(task_id = $1 AND agent_id = $2)",
                               {excluding_task, excluding_agent}));
  return static_cast<int>(rows.Integer(0, 0));
}

}  // namespace

Result<std::set<int>> PortsHeld(Connection& c, const std::string& excluding_task,
                                const std::string& excluding_agent, const std::string& node) {
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      c.Exec("SELECT (document->>'port')::int FROM herd_agents WHERE active AND "
             "jsonb_typeof(document->'port') = 'number' AND NOT (task_id = $1 AND agent_id = $2) "
             "AND node_id IS NOT DISTINCT FROM $3",
             {excluding_task, excluding_agent,
              node.empty() ? std::optional<std::string>() : std::optional<std::string>(node)}));
  std::set<int> held;
  for (int row = 0; row < rows.size(); ++row) held.insert(static_cast<int>(rows.Integer(row, 0)));
  return held;
}

Status CheckClusterCap(Connection& c, const std::string& task_id, const std::string& agent_id,
                       int cap) {
  if (cap <= 0) return Status::Ok();
  HERD_ASSIGN_OR_RETURN(int running, RunningAgents(c, task_id, agent_id));
  return CheckRunningCap(running, cap, "in the PostgreSQL registry",
                         std::to_string(running) + " running in all its tasks");
}

std::string IsoTimestampSql(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
}

Result<std::vector<NodeView>> ReadNodes(Connection& c) {
  HERD_ASSIGN_OR_RETURN(
      pg::Rows rows,
      c.Exec("SELECT n.node_id, n.hostname, coalesce(n.capacity, 0), n.labels::text, n.state, "
             "n.incarnation, coalesce(" +
             IsoTimestampSql("n.lease_expires_at") +
             ", ''), "
             "coalesce(floor(extract(epoch FROM (n.lease_expires_at - clock_timestamp())) * "
             "1000)::bigint, 0), "
             "(SELECT count(*) FROM herd_agents a WHERE a.active AND a.node_id = n.node_id) "
             "FROM herd_nodes n ORDER BY n.node_id"));
  std::vector<NodeView> nodes;
  for (int row = 0; row < rows.size(); ++row) {
    NodeView node;
    node.spec.name = rows.Text(row, 0);
    node.spec.hostname = rows.Text(row, 1);
    node.spec.capacity = static_cast<int>(rows.Integer(row, 2));
    HERD_ASSIGN_OR_RETURN(json labels,
                          ParseStored(rows.Text(row, 3), "node " + node.spec.name + "'s labels"));
    for (const json& label : labels) {
      if (label.is_string()) node.spec.labels.push_back(label.get<std::string>());
    }
    node.state = rows.Text(row, 4);
    node.incarnation = rows.Integer(row, 5);
    node.lease_expires_at = rows.Text(row, 6);
    node.lease_remaining_ms = rows.Integer(row, 7);
    node.running = static_cast<int>(rows.Integer(row, 8));
    nodes.push_back(std::move(node));
  }
  return nodes;
}

}  // namespace herd::registry::pg_rows
