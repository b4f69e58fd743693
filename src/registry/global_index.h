// The global registry (registry/GLOBAL_REGISTRY.json): an index of every
// task and agent in one workspace base.
//
// It is never the source of truth: task registries are. Every change is an
// idempotent upsert keyed by id (never a blind += 1), totals are derived
// from the maps at each commit, and Rebuild() recreates it from the task
// registries. It is updated in its own transaction after the task
// registry's, never while a task registry lock is held. Its active-agent
// counts enforce the optional cap on running agents across every workspace
// of the machine, and its agents' ports keep each HERD_PORT to one active
// agent on the machine (MachineReservation).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "registry/registry_stores.h"
#include "registry/task_store.h"
#include "registry/workspace.h"
#include "store/file_lock.h"

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

// One admission's (or new turn's) reservation on this machine: the
// running cap and HERD_PORT. Held from before the task registry's
// transaction until the index holds the admitted agent, it makes the count,
// the ports in use and the upsert one step for every workspace of this user
// on this machine, so neither the cap nor a port can be raced across
// workspaces or tasks. Taken before any task registry's lock and never
// while one is held (the order is: this lock, a task registry's, the
// index's): no cycle.
class MachineReservation {
 public:
  // Takes RunningAgentsLockPath() (blocking, with the store's lock
  // deadline) and reads what every known workspace's index holds.
  static Result<MachineReservation> Begin(const RegistryStores& stores, const Workspace& workspace);

  // The HERD_PORTs active agents hold in any workspace, except
  // `agent_id`'s own.
  std::set<int> PortsHeld(const std::string& agent_id) const;

  // Indexes `task` (which holds `agent_id`, newly admitted or reactivated)
  // if fewer than `cap` other agents are active in every workspace
  // together; Status::Refused otherwise (nothing indexed). A cap of 0 means
  // no cap.
  Status Commit(const TaskSnapshot& task, const std::string& agent_id, int cap) const;

 private:
  MachineReservation(const RegistryStores& stores, const Workspace& workspace, store::FileLock lock)
      : stores_(&stores), workspace_(&workspace), lock_(std::move(lock)) {}

  const RegistryStores* stores_;
  const Workspace* workspace_;
  store::FileLock lock_;
  int active_elsewhere_ = 0;
  std::map<std::string, int> ports_elsewhere_;  // agent id -> port, other workspaces' active agents
};

// A reservation (MachineReservation::Begin, then Commit) for `agent_id`,
// already committed to `task`.
Status ReserveGlobalSlot(const RegistryStores& stores, const Workspace& workspace,
                         const TaskSnapshot& task, const std::string& agent_id, int cap);

// The machine-wide (per-user) lock of reservations, beside the
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
