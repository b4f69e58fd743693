#include "registry/registry_setting.h"

#include "registry/json_registry.h"
#include "registry/pg_registry.h"
#include "store/json_store.h"

namespace herd::registry {

std::string RegistrySetting::Describe() const {
  return postgres() ? "PostgreSQL at " + pg::RedactedSetting(conninfo) : "the JSON workspace";
}

Result<RegistrySetting> ParseRegistrySetting(const std::string& setting) {
  RegistrySetting parsed;
  if (setting.empty() || setting == "json") return parsed;
  if (!pg::IsPostgresSetting(setting)) {
    return Status::InvalidArgument(
        "HERD_REGISTRY (or --registry) is \"" + pg::RedactedSetting(setting) +
        "\": give a postgresql:// URL or a libpq conninfo (host=... dbname=...) for the "
        "PostgreSQL registry, or leave it unset (or \"json\") for the JSON workspace");
  }
  parsed.engine = RegistrySetting::Engine::kPostgres;
  parsed.conninfo = setting;
  return parsed;
}

pg::ConnectOptions PgOptionsOf(const RegistrySetting& setting) {
  pg::ConnectOptions options;
  options.conninfo = setting.conninfo;
  options.lock_timeout_ms = static_cast<int>(store::LockTimeoutFromEnvironment().count());
  return options;
}

Result<std::unique_ptr<Registry>> OpenRegistry(const RegistrySetting& setting,
                                               const Workspace& workspace,
                                               const RegistryStores& stores) {
  if (!setting.postgres()) return std::unique_ptr<Registry>(new JsonRegistry(stores, workspace));
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<PgRegistry> opened,
                        PgRegistry::Open(PgOptionsOf(setting), workspace.base()));
  return std::unique_ptr<Registry>(std::move(opened));
}

}  // namespace herd::registry
