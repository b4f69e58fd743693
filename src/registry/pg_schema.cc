#include "registry/pg_schema.h"

#include <vector>

namespace herd::registry {
namespace {

struct Migration {
  int version;
  const char* description;
  std::vector<const char*> statements;
};

// Append only: a released migration is never edited.
const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> migrations = {
      {1,
       "tasks, agents, journals, the cluster row and nodes",
       {
           R"(CREATE TABLE herd_cluster (
                id integer PRIMARY KEY CHECK (id = 1),
                created_at timestamptz NOT NULL DEFAULT now()))",
           "INSERT INTO herd_cluster (id) VALUES (1) ON CONFLICT DO NOTHING",
           R"(CREATE TABLE herd_nodes (
                node_id text PRIMARY KEY,
                hostname text NOT NULL,
                incarnation bigint NOT NULL DEFAULT 1,
                lease_expires_at timestamptz,
                capacity integer,
                document jsonb NOT NULL DEFAULT '{}'::jsonb))",
           R"(CREATE TABLE herd_tasks (
                task_id text PRIMARY KEY,
                sequence bigint NOT NULL,
                document jsonb NOT NULL,
                stopped boolean NOT NULL DEFAULT false,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()))",
           R"(CREATE TABLE herd_agents (
                task_id text NOT NULL REFERENCES herd_tasks (task_id) ON DELETE CASCADE,
                agent_id text NOT NULL,
                position integer NOT NULL,
                status text NOT NULL,
                active boolean NOT NULL,
                request_id text UNIQUE,
                node_id text REFERENCES herd_nodes (node_id),
                document jsonb NOT NULL,
                PRIMARY KEY (task_id, agent_id)))",
           "CREATE INDEX herd_agents_active ON herd_agents (task_id) WHERE active",
           R"(CREATE TABLE herd_journal (
                task_id text NOT NULL,
                agent_id text NOT NULL,
                journal text NOT NULL CHECK (journal IN ('progress', 'findings')),
                line_number bigint NOT NULL,
                line jsonb NOT NULL,
                committed_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (task_id, agent_id, journal, line_number),
                FOREIGN KEY (task_id) REFERENCES herd_tasks (task_id) ON DELETE CASCADE))",
       }},
      {2,
       "the tail of each agent's output",
       {
           R"(CREATE TABLE herd_output (
                task_id text NOT NULL,
                agent_id text NOT NULL,
                chunk_number bigint NOT NULL,
                bytes bytea NOT NULL,
                line_count integer NOT NULL,
                appended_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (task_id, agent_id, chunk_number),
                FOREIGN KEY (task_id) REFERENCES herd_tasks (task_id) ON DELETE CASCADE))",
       }},
      {3,
       "nodes: state, labels, leases; agents placed on a node's incarnation",
       {
           R"(ALTER TABLE herd_nodes
                ADD COLUMN state text NOT NULL DEFAULT 'up'
                  CHECK (state IN ('up', 'left', 'expired')),
                ADD COLUMN labels jsonb NOT NULL DEFAULT '[]'::jsonb,
                ADD COLUMN registered_at timestamptz NOT NULL DEFAULT now(),
                ADD COLUMN renewed_at timestamptz)",
           "ALTER TABLE herd_agents ADD COLUMN node_incarnation bigint",
           "CREATE INDEX herd_agents_active_on_node ON herd_agents (node_id) WHERE active",
       }},
  };
  return migrations;
}

// Any constant: every herd process migrating one database takes this lock.
constexpr const char kMigrationLock[] = "SELECT pg_advisory_xact_lock(4852331)";

}  // namespace

int PgSchemaVersion() {
  return Migrations().back().version;
}

Result<int> PgStoredSchemaVersion(pg::Connection& connection) {
  HERD_ASSIGN_OR_RETURN(
      pg::Rows exists, connection.Exec("SELECT to_regclass('herd_schema_migrations') IS NOT NULL"));
  if (exists.Text(0, 0) != "t") return 0;
  HERD_ASSIGN_OR_RETURN(pg::Rows version, connection.Exec("SELECT coalesce(max(version), 0) FROM "
                                                          "herd_schema_migrations"));
  return static_cast<int>(version.Integer(0, 0));
}

Result<int> MigratePgSchema(pg::Connection& connection) {
  int before = 0;
  Status status = pg::RunTransaction(
      connection, pg::Idempotence::kIdempotent, [&](pg::Connection& c) -> Result<pg::Finish> {
        HERD_RETURN_IF_ERROR(c.Exec(kMigrationLock).status());
        HERD_RETURN_IF_ERROR(c.Exec(R"(CREATE TABLE IF NOT EXISTS herd_schema_migrations (
                                         version integer PRIMARY KEY,
                                         description text NOT NULL,
                                         applied_at timestamptz NOT NULL DEFAULT now()))")
                                 .status());
        HERD_ASSIGN_OR_RETURN(before, PgStoredSchemaVersion(c));
        if (before > PgSchemaVersion()) {
          return Status::Refused("the registry's schema is version " + std::to_string(before) +
                                 ", newer than this herd's (" + std::to_string(PgSchemaVersion()) +
                                 "): upgrade herd on this machine; nothing was changed");
        }
        for (const Migration& migration : Migrations()) {
          if (migration.version <= before) continue;
          for (const char* statement : migration.statements) {
            Result<pg::Rows> applied = c.Exec(statement);
            if (!applied.ok()) {
              return applied.status().WithContext("migration " + std::to_string(migration.version));
            }
          }
          HERD_RETURN_IF_ERROR(
              c.Exec("INSERT INTO herd_schema_migrations (version, description) VALUES ($1, $2)",
                     {std::to_string(migration.version), std::string(migration.description)})
                  .status());
        }
        return before == PgSchemaVersion() ? pg::Finish::kRollback : pg::Finish::kCommit;
      });
  if (!status.ok()) return status;
  return before;
}

}  // namespace herd::registry
