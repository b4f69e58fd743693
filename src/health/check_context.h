// What every doctor check needs to know about the workspace it looks at.
//
// Checks only read (lock-free store reads, /proc, directory listings) and
// return findings; their Fix closures write, each in its own store
// transaction, never holding two registry locks at once. The context is
// copied into those closures, so it holds the stores by pointer: they must
// outlive the Diagnose call that created the context (they do).
//
// Under the PostgreSQL registry (registry::UsesPostgres) the context stands
// for the one shared registry: `workspace` is this machine's default base,
// and each task's row says which base holds its local files.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "agents/liveness.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"

namespace herd::health {

struct CheckContext {
  const registry::RegistryStores* stores = nullptr;
  registry::Workspace workspace{"/"};
  std::string task_id;  // "" = every task of the base
  double now = 0;       // Unix seconds, when the diagnosis started
  // An active entry still in phase "starting" this long without a live
  // supervisor has lost its start.
  std::chrono::seconds starting_grace = agents::kStartingGrace;
  // Processes of an agent whose entry ended this recently may still be on
  // their way out (a kill in progress, an agent finishing after it
  // reported "completed"): not orphans yet.
  std::chrono::seconds orphan_grace{30};
  // Temp files younger than this may belong to a writer in another pid
  // namespace, and a task directory changed this recently may be a `herd
  // task create` between its mkdir and its first commit: left alone.
  std::chrono::seconds temp_file_min_age{10};
  // SIGTERM to SIGKILL when stopping processes.
  std::chrono::milliseconds kill_grace{5000};
};

// The tasks of the context's registry (registry.h TaskIds: the JSON
// workspace's task directories, sorted, or every task row of PostgreSQL);
// only `context.task_id` when it is set and exists. Empty if the registry
// cannot be listed (Diagnose reads it first and reports that failure).
std::vector<std::string> TaskIdsOf(const CheckContext& context);

}  // namespace herd::health
