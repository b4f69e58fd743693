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

}  // namespace herd::registry
