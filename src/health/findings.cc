#include "health/findings.h"

namespace herd::health {

const char* KindName(FindingKind kind) {
  switch (kind) {
    case FindingKind::kZombie: return "zombie";
    case FindingKind::kOrphan: return "orphan";
    case FindingKind::kCountDrift: return "count_drift";
    case FindingKind::kIndexMismatch: return "index_mismatch";
    case FindingKind::kCorrupt: return "corrupt";
    case FindingKind::kQuarantined: return "quarantined";
    case FindingKind::kMissingRegistry: return "missing_registry";
    case FindingKind::kIncompleteTask: return "incomplete_task";
    case FindingKind::kTempFile: return "temp_file";
    case FindingKind::kMetricsBacklog: return "metrics_backlog";
    case FindingKind::kStaleBackup: return "stale_backup";
    case FindingKind::kWorkspaceLink: return "workspace_link";
    case FindingKind::kOpenPermissions: return "open_permissions";
    case FindingKind::kDamagedField: return "damaged_field";
    case FindingKind::kOrphanWorktree: return "orphan_worktree";
    case FindingKind::kStaleWorktree: return "stale_worktree";
    case FindingKind::kMissingWorktree: return "missing_worktree";
    case FindingKind::kExpiredNodeLease: return "expired_node_lease";
    case FindingKind::kDeadNodeAgent: return "dead_node_agent";
  }
  return "unknown";
}

const char* SeverityName(Severity severity) {
  return severity == Severity::kError ? "error" : "warning";
}

const RepairOutcome& Fix::Run() {
  if (!outcome_) outcome_ = run_();
  return *outcome_;
}

const RepairOutcome& Fix::Skip() {
  if (!outcome_) outcome_ = RepairOutcome::DryRun(plan_);
  return *outcome_;
}

nlohmann::json Finding::ToJson() const {
  nlohmann::json out = {
      {"kind", KindName(kind)}, {"severity", SeverityName(severity)}, {"detail", detail}};
  if (!agent_id.empty()) out["agent_id"] = agent_id;
  if (!path.empty()) out["path"] = path;
  if (!fix) {
    out["repair"] = "none: " + no_fix_reason;
    return out;
  }
  out["repair"] = fix->plan();
  if (const auto& outcome = fix->outcome()) {
    out["repair_result"] = outcome->dry_run        ? "dry_run"
                           : !outcome->status.ok() ? "failed"
                           : outcome->changed      ? "changed"
                                                   : "unchanged";
    out["repair_action"] = outcome->action;
  }
  return out;
}

bool Finding::Unresolved() const {
  if (!fix || !fix->outcome()) return true;
  const RepairOutcome& outcome = *fix->outcome();
  // A dry run changes nothing: the finding stands.
  return outcome.dry_run || !outcome.status.ok();
}

}  // namespace herd::health
