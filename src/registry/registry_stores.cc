#include "registry/registry_stores.h"

#include "registry/global_index.h"
#include "registry/metrics.h"
#include "registry/task_registry.h"

namespace herd::registry {
namespace {

store::StoreOptions WithValidator(store::StoreOptions options, store::Validator validator) {
  options.validator = std::move(validator);
  return options;
}

// The known-workspaces file lives outside any workspace: no metrics for it.
store::StoreOptions WithoutObserver(store::StoreOptions options) {
  options.observer = nullptr;
  return options;
}

}  // namespace

store::StoreOptions RegistryStores::DefaultOptions() {
  store::StoreOptions options;
  options.lock_timeout = store::LockTimeoutFromEnvironment();
  options.observer = RecordTransactionMetrics;
  return options;
}

RegistryStores::RegistryStores(const store::StoreOptions& options)
    : tasks(WithValidator(options, ValidateTaskDocument)),
      global(WithValidator(options, ValidateGlobalDocument)),
      workspaces(WithoutObserver(WithValidator(options, store::RequireSequence))),
      metrics(WithValidator(options, store::RequireSequence)) {}

}  // namespace herd::registry
