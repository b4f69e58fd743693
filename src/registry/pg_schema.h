// The PostgreSQL registry's schema and its migrations.
//
// herd creates and migrates its own schema: each migration is one numbered
// step, applied in one transaction under a transaction-level advisory lock
// (so processes opening the registry at once migrate it once) and recorded
// in herd_schema_migrations. Tables (all prefixed herd_):
//
// - herd_cluster: one row (id 1), the row every cluster-wide limit locks
//   (the machine/cluster running cap), always before any task row.
// - herd_tasks: one row per task: its typed record as a JSONB document
//   (records.h EncodeTask without the agents; unknown keys kept), the
//   commit sequence, and the columns queries need (stopped).
// - herd_agents: one row per agent: its entry as a JSONB document
//   (EncodeAgent), its position in the task's admission order, status and
//   `active` (counted by the cap), the admission's client-made request id
//   (unique: a retried admission finds its row), and the node and node
//   incarnation it was placed on (null for an agent started where it was
//   deployed).
// - herd_journal: the progress and findings lines, numbered per agent and
//   journal in commit order.
// - herd_output: the newest chunks of each agent's output (bounded), so it
//   is readable from any machine and outlives the machine that ran it.
// - herd_nodes: the machines running agents (registry/nodes.h): name,
//   hostname, capacity, labels, state, incarnation and lease expiry (server
//   clock).
#pragma once

#include <string>

#include "pg/connection.h"
#include "util/status.h"

namespace herd::registry {

// The newest schema version this binary knows.
int PgSchemaVersion();

// The version the database holds (0: no herd schema yet).
Result<int> PgStoredSchemaVersion(pg::Connection& connection);

// Applies every migration newer than the stored version; refuses (Refused,
// saying to upgrade herd) a database whose schema is newer than this
// binary's. Idempotent. Returns the version before.
Result<int> MigratePgSchema(pg::Connection& connection);

}  // namespace herd::registry
