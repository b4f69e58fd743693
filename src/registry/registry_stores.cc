#include "registry/registry_stores.h"

#include "registry/global_index.h"
#include "registry/task_registry.h"

namespace herd::registry {
namespace {

store::StoreOptions WithValidator(store::StoreOptions options, store::Validator validator) {
  options.validator = std::move(validator);
  return options;
}

}  // namespace

store::StoreOptions RegistryStores::DefaultOptions() {
  store::StoreOptions options;
  options.lock_timeout = store::LockTimeoutFromEnvironment();
  return options;
}

RegistryStores::RegistryStores(const store::StoreOptions& options)
    : tasks(WithValidator(options, ValidateTaskDocument)),
      global(WithValidator(options, ValidateGlobalDocument)),
      workspaces(WithValidator(options, store::RequireSequence)) {}

}  // namespace herd::registry
