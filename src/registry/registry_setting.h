// Which registry engine herd uses, from one setting: HERD_REGISTRY or the
// --registry option. Unset (or "json") is the JSON workspace, the default
// for one machine; a postgresql:// or postgres:// URL, or a libpq conninfo
// ("host=... dbname=..."), is the PostgreSQL registry (registry/pg_registry.h,
// opened by registries.h SelectRegistry) that several machines can share. Anything else is refused,
// so a typo never silently falls back to the local files.
#pragma once

#include <memory>
#include <string>

#include "pg/connection.h"
#include "registry/registry.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::registry {

struct RegistrySetting {
  enum class Engine { kJsonWorkspace, kPostgres };
  Engine engine = Engine::kJsonWorkspace;
  std::string conninfo;  // kPostgres: the URL or conninfo as given

  bool postgres() const { return engine == Engine::kPostgres; }
  // "the JSON workspace" or "PostgreSQL at <setting without password>".
  std::string Describe() const;
};

Result<RegistrySetting> ParseRegistrySetting(const std::string& setting);

// The connection options of a PostgreSQL setting: lock_timeout from
// HERD_LOCK_TIMEOUT_MS as the JSON store's lock waits.
pg::ConnectOptions PgOptionsOf(const RegistrySetting& setting);

}  // namespace herd::registry
