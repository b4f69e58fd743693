// Doctor checks on the registry files themselves.
//
// For each task registry (<TASK>/AGENT_REGISTRY.json) and the global index
// (registry/GLOBAL_REGISTRY.json) it compares the file and its backup
// (`.bak`, the previous committed version) using the store's own validators:
// - corrupt: the file does not parse or validate. With a valid backup the
//   repair is a no-op store transaction: JsonStore::Update itself moves the
//   bad file aside (`.corrupt.<time>.<pid>`) and restores the backup. The
//   global index, being derived, is rebuilt from the task registries even
//   without a backup (damaged copies are first moved aside under its lock).
//   A task registry without a valid backup is left for a person: the store
//   never starts an empty registry over data that existed.
// - missing_registry: the file is gone but its backup is valid (restored the
//   same way).
// - incomplete_task: a task directory with neither a registry nor a backup
//   (a `herd task create` that failed half-way, or a registry deleted by
//   hand), unchanged for the temp file age (a creation may be under way).
//   Removed (registry::RemoveTaskScaffolding, under the registry's lock) when
//   it holds only the empty directories herd creates; otherwise reported with
//   what else it holds and left for a person.
// - stale_backup: the file is gone and its backup is damaged, so it cannot
//   restore anything (global: moved aside and rebuilt; task: reported).
// - quarantined: `*.corrupt.*` copies the store moved aside. Never deleted:
//   the finding says where they are.
// - temp_file: `X.tmp.<pid>[.<random>]` whose writer is no longer running and
//   that is older than a few seconds (a live writer's temp file exists for
//   about a millisecond). Removed.
#pragma once

#include <vector>

#include "health/check_context.h"
#include "health/findings.h"

namespace herd::health {

std::vector<Finding> CheckRegistryFiles(const CheckContext& context);

// For index repairs: rebuilds the global index from the task registries,
// first moving aside (under the index's lock) a damaged index file or
// backup that the store could not recover from by itself.
RepairOutcome RebuildIndex(const CheckContext& context, const std::string& why);

}  // namespace herd::health
