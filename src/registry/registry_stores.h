// RegistryStores: one JsonStore per kind of registry document, each with
// the validator that decides whether a file of that kind is intact.
//
// All share the lock timeout and FileSystem of the options they are built
// from. Cheap to copy; safe to use from many threads.
#pragma once

#include "store/json_store.h"

namespace herd::registry {

struct RegistryStores {
  // Options without a validator; each store gets its own.
  explicit RegistryStores(const store::StoreOptions& options = DefaultOptions());

  static store::StoreOptions DefaultOptions();  // lock timeout from the environment

  store::JsonStore tasks;       // <TASK>/AGENT_REGISTRY.json
  store::JsonStore global;      // registry/GLOBAL_REGISTRY.json
  store::JsonStore workspaces;  // the known-workspaces registry
  store::JsonStore metrics;     // metrics/history.json (health/metrics_history.h)
};

}  // namespace herd::registry
