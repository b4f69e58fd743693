// The global registry (registry/GLOBAL_REGISTRY.json): an index of every
// task and agent in one workspace base.
//
// It is never the source of truth: task registries are. Every change is an
// idempotent upsert keyed by id (never a blind += 1), totals are derived
// from the maps at each commit, and Rebuild() recreates it from the task
// registries. It is updated in its own transaction after the task
// registry's, never while a task registry lock is held. Its active-agent
// counts enforce the optional cap on running agents across every workspace
// of the machine (ReserveGlobalSlot).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "registry/registry_stores.h"
#include "registry/task_store.h"
#include "registry/workspace.h"

namespace herd::registry {

// The store validator for the global registry.
Status ValidateGlobalDocument(const nlohmann::json& document);

// Applies `mutation` to the task's registry in one transaction and, if it
// committed, upserts the committed version (with its sequence number) into
// the global index in a second one. `committed` receives that version.
Status UpdateTaskAndIndex(const RegistryStores& stores, const Workspace& workspace,
                          const std::string& task_id, const TaskMutation& mutation,
                          TaskSnapshot* committed = nullptr);

// Upserts the task's summary and all its agents from a task registry as
// committed (its sequence orders upserts: an older one never replaces a
// newer one).
Status UpsertTask(const RegistryStores& stores, const Workspace& workspace,
                  const TaskSnapshot& task);

// The rule of the running cap, for every engine: Refused, saying what to
// do, when `running` agents (not counting the one being admitted) already
// reach `cap` (0 = no cap). `scope` says where the cap applies ("on this
// machine"), `counted` what was counted.
Status CheckRunningCap(int running, int cap, const std::string& scope, const std::string& counted);

// Indexes `task` (which holds the newly admitted agent) if fewer than `cap`
// agents are active in every known workspace of this user on this machine
// together; Status::Refused otherwise. Capped reservations serialise on
// RunningAgentsLockPath(), so the cap cannot be raced across workspaces. A
// cap of 0 means no cap: the task is only indexed.
Status ReserveGlobalSlot(const RegistryStores& stores, const Workspace& workspace,
                         const TaskSnapshot& task, int cap);

// The machine-wide (per-user) lock of capped reservations, beside the
// known-workspaces registry.
std::string RunningAgentsLockPath();

// Recreates the index from every task registry under the base.
Status RebuildGlobalIndex(const RegistryStores& stores, const Workspace& workspace);

// The disagreements between the index and the registries of `task_ids`,
// one line each (scoped to `scope_task_id` when set): a task or agent
// missing, a status or count that differs, an entry of a task or agent that
// does not exist, totals that do not add up. Empty when they agree or the
// index cannot be read. Lock-free reads: another process may be between
// its task and index transactions, so callers look twice.
std::vector<std::string> IndexMismatches(const RegistryStores& stores, const Workspace& workspace,
                                         const std::vector<std::string>& task_ids,
                                         const std::string& scope_task_id);

// $HERD_MAX_RUNNING_AGENTS, or 0 (no cap).
int GlobalRunningCapFromEnvironment();

}  // namespace herd::registry
