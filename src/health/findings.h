// Findings: what herd doctor found wrong, and the repair that fixes it.
//
// A check (workspace_files.h, registry_files.h, agent_checks.h, index_check.h,
// node_checks.h) looks at one workspace base (or the shared registry) without
// changing anything and returns Findings. A finding that doctor can fix carries a Fix: a closure
// that performs the repair as store transactions (or a staged kill) and re-checks the condition
// itself before changing anything, because the workspace may have changed since the check looked
// (other herd processes keep writing). Several findings may share one Fix (every index mismatch is
// fixed by one rebuild); it runs once.
//
// Plain data plus closures; not thread-safe (doctor runs checks one by one).
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd::health {

enum class FindingKind {
  kZombie,            // an active entry whose processes are gone
  kOrphan,            // a running herd process no registry lists as active
  kCountDrift,        // stored counts differ from the agent list
  kIndexMismatch,     // the global index disagrees with the task registries
  kCorrupt,           // a registry file that does not parse or validate
  kQuarantined,       // a corrupt copy the store moved aside
  kMissingRegistry,   // a registry file that is gone, with a backup
  kIncompleteTask,    // a task directory with neither a registry nor a backup
  kTempFile,          // a temp file left by a writer that died
  kStaleBackup,       // a backup whose registry is gone and that cannot restore it
  kMetricsBacklog,    // metrics files of exited processes waiting to be folded
  kWorkspaceLink,     // a symbolic link inside a workspace (herd never follows one)
  kOpenPermissions,   // workspace files or directories other users can read
  kDamagedField,      // a registry that parses but holds a field of the wrong type
  kOrphanWorktree,    // a herd worktree on disk that no agent records
  kStaleWorktree,     // a herd worktree git lists whose folder is gone
  kMissingWorktree,   // an agent's recorded worktree that is gone
  kExpiredNodeLease,  // a node still "up" whose lease has expired (node_checks.h)
  kDeadNodeAgent,     // an active agent placed on a node that no longer runs it
};

// "zombie", "orphan", "count_drift", ...
const char* KindName(FindingKind kind);

enum class Severity {
  kWarning,  // worth knowing; the workspace still works (healthy stays true)
  kError,    // wrong state that misleads readers or blocks work
};

const char* SeverityName(Severity severity);

// What a repair did.
struct RepairOutcome {
  bool changed = false;
  std::string action;    // what it did, or why it changed nothing
  Status status;         // non-ok if the repair failed
  bool dry_run = false;  // not run: the action says what it would do

  static RepairOutcome Changed(std::string action) { return {true, std::move(action), Status()}; }
  static RepairOutcome Unchanged(std::string why) { return {false, std::move(why), Status()}; }
  static RepairOutcome Failed(Status status) { return {false, status.message(), status}; }
  static RepairOutcome DryRun(std::string plan) { return {false, "would " + plan, Status(), true}; }
};

// One repair, possibly shared by several findings; Run() executes it once.
class Fix {
 public:
  Fix(FindingKind kind, std::string target, std::string plan, std::function<RepairOutcome()> run)
      : kind_(kind), target_(std::move(target)), plan_(std::move(plan)), run_(std::move(run)) {}

  FindingKind kind() const { return kind_; }
  const std::string& target() const { return target_; }
  // What the repair will do, for reports and dry runs.
  const std::string& plan() const { return plan_; }

  // Runs the repair the first time; later calls return the same outcome.
  const RepairOutcome& Run();
  // Records a dry run: nothing is changed.
  const RepairOutcome& Skip();
  const std::optional<RepairOutcome>& outcome() const { return outcome_; }

 private:
  FindingKind kind_;
  std::string target_;
  std::string plan_;
  std::function<RepairOutcome()> run_;
  std::optional<RepairOutcome> outcome_;
};

struct Finding {
  FindingKind kind = FindingKind::kCorrupt;
  Severity severity = Severity::kError;
  std::string task_id;   // "" for findings about the workspace as a whole
  std::string agent_id;  // "" when not about one agent
  std::string path;      // the file concerned, if any
  std::string detail;    // what is wrong, for a person
  // Without a fix: why doctor leaves it alone and what a person can do.
  std::string no_fix_reason;
  std::shared_ptr<Fix> fix;  // null when doctor cannot fix it

  // {"kind", "severity", "detail", "repair", "agent_id"?, "path"?, "repair_result"?}
  nlohmann::json ToJson() const;
  // True when the finding still stands after repairs (no fix, or it failed).
  bool Unresolved() const;
};

}  // namespace herd::health
