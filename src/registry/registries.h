// Registries: the one place the layers above get the Registry of a task.
//
// The engine is chosen once per process from the registry setting
// (registry_setting.h: HERD_REGISTRY or --registry) by SelectRegistry,
// which records it in the RegistryStores every layer already carries:
// - the JSON workspace (the default): RegistryFor makes a JsonRegistry for
//   the task's workspace base, and a task is located through the index of
//   known workspace bases (workspace.h LocateTask);
// - PostgreSQL: SelectRegistry opens one PgRegistry (its connection pool)
//   for the process; RegistryFor returns views of it that share its
//   connections, and a task is located by its row, whose workspace_base
//   says where its local files (prompt, launch plan, logs, config
//   directories) are on this machine.
// A forked child (a supervisor) selects its own from HERD_REGISTRY in its
// environment, which the CLI sets for its children when --registry is given.
//
// Thread-safe: the stores may be shared once selected.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "registry/registry.h"
#include "registry/registry_setting.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::registry {

// Records the engine `setting` selects in `stores` (PostgreSQL: connects
// and migrates the schema; `default_base` is where its new tasks go unless
// they name another).
Status SelectRegistry(const RegistrySetting& setting, const std::string& default_base,
                      RegistryStores* stores);
// SelectRegistry from HERD_REGISTRY (unset: the JSON workspace).
Status SelectRegistryFromEnvironment(const std::string& default_base, RegistryStores* stores);

// Whether the stores carry the PostgreSQL registry.
inline bool UsesPostgres(const RegistryStores& stores) {
  return stores.postgres != nullptr;
}

// The registry of the tasks whose workspace base is `workspace`.
std::unique_ptr<const Registry> RegistryFor(const RegistryStores& stores,
                                            const Workspace& workspace);

// The registries that together hold every task herd knows, each with the
// workspace base it was opened for: JSON, one per known workspace base
// (`first` first); PostgreSQL, the one registry (for `first`).
std::vector<Workspace> RegistryBases(const RegistryStores& stores, const Workspace& first);

}  // namespace herd::registry
