// RegistryStores: one JsonStore per kind of registry document, each with
// the validator that decides whether a file of that kind is intact.
//
// All share the lock timeout and FileSystem of the options they are built
// from. They also carry the PostgreSQL registry when HERD_REGISTRY (or
// --registry) selects it (registry/registries.h), and the journal reader's
// cache. Cheap to copy (copies share all of it); safe to use from many
// threads.
#pragma once

#include <memory>

#include "store/json_store.h"
#include "util/journal_reader.h"

namespace herd::registry {

class PgRegistry;

struct RegistryStores {
  // Options without a validator; each store gets its own.
  explicit RegistryStores(const store::StoreOptions& options = DefaultOptions());

  static store::StoreOptions DefaultOptions();  // lock timeout from the environment

  store::JsonStore tasks;       // <TASK>/AGENT_REGISTRY.json
  store::JsonStore global;      // registry/GLOBAL_REGISTRY.json
  store::JsonStore workspaces;  // the known-workspaces registry
  store::JsonStore metrics;     // metrics/history.json (health/metrics_history.h)

  // The PostgreSQL registry, opened once per process (registries.h
  // SelectRegistry); null: the JSON workspace.
  std::shared_ptr<const PgRegistry> postgres;
  // Progress and findings files, read incrementally (the JSON engine).
  JournalReader journals;
};

}  // namespace herd::registry
