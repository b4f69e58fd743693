#include "registry/registries.h"

#include <cstdlib>

#include "registry/json_registry.h"
#include "registry/pg_registry.h"

namespace herd::registry {

Status SelectRegistry(const RegistrySetting& setting, const std::string& default_base,
                      RegistryStores* stores) {
  if (!setting.postgres()) {
    stores->postgres = nullptr;
    return Status::Ok();
  }
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<PgRegistry> opened,
                        PgRegistry::Open(PgOptionsOf(setting), default_base));
  stores->postgres = std::move(opened);
  return Status::Ok();
}

Status SelectRegistryFromEnvironment(const std::string& default_base, RegistryStores* stores) {
  const char* value = std::getenv("HERD_REGISTRY");
  HERD_ASSIGN_OR_RETURN(RegistrySetting setting,
                        ParseRegistrySetting(value != nullptr ? value : ""));
  return SelectRegistry(setting, default_base, stores);
}

std::unique_ptr<const Registry> RegistryFor(const RegistryStores& stores,
                                            const Workspace& workspace) {
  if (stores.postgres) return stores.postgres->ForWorkspace(workspace.base());
  return std::make_unique<JsonRegistry>(stores, workspace);
}

std::vector<Workspace> RegistryBases(const RegistryStores& stores, const Workspace& first) {
  if (stores.postgres) return {first};
  std::vector<Workspace> bases;
  for (const std::string& base : KnownWorkspaces(stores, first.base())) bases.emplace_back(base);
  return bases;
}

}  // namespace herd::registry
