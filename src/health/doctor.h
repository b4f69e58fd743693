// herd doctor: finds what went wrong in a workspace and repairs it.
//
// Diagnose looks at every known workspace base (registry::KnownWorkspaces,
// `preferred` first), or only at the base holding options.task_id, and
// reports per base and task (checks in registry_files.h, agent_checks.h,
// index_check.h, metrics_history.h, workspace_files.h; figures in
// metrics_report.h):
//   workspace_link, open_permissions, zombie, orphan, count_drift,
//   index_mismatch, corrupt, quarantined, missing_registry, incomplete_task,
//   temp_file, stale_backup, metrics_backlog (whole-base runs only),
//   orphan_worktree, stale_worktree, missing_worktree (worktree_check.h)
// plus the lock figures of the base, over the last hour and since creation.
//
// Under the PostgreSQL registry (registry::UsesPostgres) there is one
// registry for every machine, diagnosed once (as one "workspaces" entry,
// "engine": "postgresql", `preferred` standing for this machine): its nodes
// and their leases by the server's clock (node_checks.h:
// expired_node_lease, dead_node_agent), and zombie and orphan for the
// agents whose processes are this machine's (agent_checks.h; never an
// agent placed on a node or deployed from another machine). The checks of
// the JSON workspace's files do not apply and are listed as skipped, with
// why ("skipped_checks"); there are no lock figures.
//
// With repair, every check first looks (so the report lists what a diagnosis
// lists), then each finding that can be fixed is fixed, in this order:
// registry files, agents and processes, counts, the global index. Every
// registry change is a store transaction that re-checks its condition under
// the lock (a problem an earlier repair or another process already fixed is
// reported "unchanged"); orphans are stopped with a staged kill through
// pidfds. Diagnose never holds two registry locks at once, never writes when
// only diagnosing, and with dry_run reports what it would change without
// changing anything. Running a repair twice changes nothing the second time.
//
// Safe while agents work and other herd processes write: reads are lock-free
// store reads, every repair decides again on fresh data under the lock, and
// only processes identified as herd supervisors (never by name) of the
// diagnosed bases, or agent processes recorded by pid + start time, are ever
// signalled.
//
// Report JSON:
// {"engine": "json"|"postgresql",
//  "workspaces": [{"base", "engine", "tasks_checked", "tasks": [{"task_id",
//    "findings": [Finding]}], "workspace_findings": [Finding],
//    "filesystem_warning"?, "lock_metrics": {"last_hour", "all_time", ...}
//    (JSON), "nodes": [node_checks.h], "skipped_checks": {check: why}
//    (PostgreSQL)}],
//  "summary": {"findings", "repaired", "unresolved", "healthy", "mode"},
//  "repairs": [{"kind", "target", "action", "changed", "dry_run", "error"?}]}
// Finding: {"kind", "severity" (error|warning), "detail", "repair" (what the
// repair does, or "none: <why and what a person can do>"), "agent_id"?,
// "path"?, "repair_result"? (changed|unchanged|failed|dry_run),
// "repair_action"?}. Only tasks with findings are listed. healthy is true
// when no error-severity finding is left unresolved; warnings (quarantined
// copies kept for inspection, temp files, an agent running without its
// supervisor) do not make a workspace unhealthy.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "agents/liveness.h"
#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::health {

struct DoctorOptions {
  std::string task_id;   // "" = every task in every known workspace base
  bool repair = false;   // fix what is found, in store transactions
  bool dry_run = false;  // say what repair would change, change nothing (implies repair's plan)

  // Tunables; the defaults suit a person running `herd doctor`.
  // An entry in phase "starting" this long with no supervisor has lost its start.
  std::chrono::seconds starting_grace = agents::kStartingGrace;
  // How long after an entry ended its processes may still be exiting before
  // they count as orphans (plus the entry's own kill_grace_ms, if any).
  std::chrono::seconds orphan_grace{30};
  // Temp files and incomplete task directories changed more recently than
  // this are never touched: their writer may be at work.
  std::chrono::seconds temp_file_min_age{10};
  // SIGTERM to SIGKILL when stopping orphans and leftovers.
  std::chrono::milliseconds kill_grace{5000};
};

// The health report (and, with repair, the changes made) as JSON. Fails
// only when options.task_id is invalid or not found, or the PostgreSQL
// registry cannot be read (before anything is repaired).
Result<nlohmann::json> Diagnose(const registry::RegistryStores& stores,
                                const registry::Workspace& preferred, const DoctorOptions& options);

// The report as text for a terminal: a summary line, findings per task,
// repairs, and a table of lock figures per workspace.
std::string RenderReport(const nlohmann::json& report);

}  // namespace herd::health
