#include "health/doctor.h"

#include <sys/stat.h>

#include <cstdio>
#include <map>
#include <set>

#include "health/agent_checks.h"
#include "health/check_context.h"
#include "health/findings.h"
#include "health/index_check.h"
#include "health/metrics_history.h"
#include "health/metrics_report.h"
#include "health/node_checks.h"
#include "health/processes.h"
#include "health/registry_files.h"
#include "health/workspace_files.h"
#include "health/worktree_check.h"
#include "registry/ids.h"
#include "registry/registries.h"
#include "store/json_store.h"
#include "util/clock.h"
#include "util/json_fields.h"

namespace herd::health {
namespace {

using nlohmann::json;

enum class Mode { kDiagnose, kRepair, kDryRun };

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kDiagnose: return "diagnose";
    case Mode::kRepair: return "repair";
    case Mode::kDryRun: return "dry_run";
  }
  return "diagnose";
}

// The checks of the JSON workspace that look at its files, which a
// PostgreSQL registry does not have (its counts are queried from its rows,
// its locks are the server's), with why each is skipped there.
const std::pair<const char*, const char*> kJsonOnlyChecks[] = {
    {"registry_files",
     "tasks and agents are rows, not files (corrupt, missing_registry, "
     "stale_backup, quarantined, temp_file, incomplete_task, damaged_field)"},
    {"count_drift", "counts are queried from the agents' rows"},
    {"index", "there is no global index file"},
    {"metrics_history", "no lock metrics files are written"},
    {"lock_metrics", "row locks are the server's (pg_locks)"},
    {"workspace_files", "not yet: the local files of PostgreSQL tasks are not walked"},
    {"worktrees", "not yet under PostgreSQL"},
};

struct Totals {
  int findings = 0;
  int repaired = 0;
  int unresolved = 0;
};

class WorkspaceDoctor {
 public:
  WorkspaceDoctor(CheckContext context, Mode mode, json* repairs, Totals* totals)
      : context_(std::move(context)), mode_(mode), repairs_(repairs), totals_(totals) {}

  Result<json> Run() {
    bool postgres = registry::UsesPostgres(*context_.stores);
    // One consistent picture first: every check looks before anything is
    // repaired, so a repair report lists what a diagnosis lists.
    if (!postgres) {
      Collect(CheckWorkspaceFiles(context_));
      Collect(CheckRegistryFiles(context_));
    }
    // Processes are scanned before the registries are read (agent_checks.h).
    std::vector<SupervisorProcess> supervisors = agents::FindSupervisors();
    Collect(CheckAgents(context_, supervisors));
    json nodes;
    if (postgres) {
      HERD_ASSIGN_OR_RETURN(NodeChecks checks, CheckNodes(context_));
      Collect(std::move(checks.findings));
      nodes = std::move(checks.nodes);
    } else {
      Collect(CheckCounts(context_));
      if (context_.task_id.empty()) Collect(CheckMetricsBacklog(context_));
      Collect(CheckIndex(context_));
      Collect(CheckWorktrees(context_));
    }
    // Then the repairs, in the same order: files first (later repairs
    // need readable registries), the index last (task repairs refresh the
    // entries they touch). Each re-checks its condition, so one that an
    // earlier repair already took care of changes nothing and says so.
    if (mode_ != Mode::kDiagnose) {
      for (Finding& finding : findings_) Repair(finding);
    }

    json report = {{"base", context_.workspace.base()},
                   {"engine", postgres ? "postgresql" : "json"},
                   {"tasks_checked", TaskIdsOf(context_).size()}};
    json tasks = json::array();
    json workspace_findings = json::array();
    std::map<std::string, json> by_task;
    for (const Finding& finding : findings_) {
      if (finding.task_id.empty()) {
        workspace_findings.push_back(finding.ToJson());
      } else {
        json& list = by_task[finding.task_id];
        if (list.is_null()) list = json::array();
        list.push_back(finding.ToJson());
      }
      ++totals_->findings;
      if (finding.severity == Severity::kError && finding.Unresolved()) ++totals_->unresolved;
    }
    for (auto& [task_id, list] : by_task) {
      tasks.push_back({{"task_id", task_id}, {"findings", std::move(list)}});
    }
    report["tasks"] = std::move(tasks);
    report["workspace_findings"] = std::move(workspace_findings);
    if (postgres) {
      report["nodes"] = std::move(nodes);
      json skipped = json::object();
      for (const auto& [check, why] : kJsonOnlyChecks) skipped[check] = why;
      report["skipped_checks"] = std::move(skipped);
      return report;
    }
    std::string filesystem = store::WarnIfNetworkFilesystem(context_.workspace.base());
    if (!filesystem.empty()) report["filesystem_warning"] = filesystem;
    report["lock_metrics"] =
        LockMetrics(context_.stores->metrics, context_.workspace.base(), NowUnixSeconds());
    return report;
  }

 private:
  void Collect(std::vector<Finding> found) {
    for (Finding& finding : found) findings_.push_back(std::move(finding));
  }

  // Runs (or, in a dry run, plans) the finding's repair, once per Fix.
  void Repair(Finding& finding) {
    if (!finding.fix || !ran_.insert(finding.fix.get()).second) return;
    const RepairOutcome& outcome =
        mode_ == Mode::kDryRun ? finding.fix->Skip() : finding.fix->Run();
    json repair = {{"kind", KindName(finding.fix->kind())},
                   {"target", finding.fix->target()},
                   {"action", outcome.action},
                   {"changed", outcome.changed},
                   {"dry_run", outcome.dry_run}};
    if (!outcome.status.ok()) repair["error"] = outcome.status.ToString();
    if (outcome.changed) ++totals_->repaired;
    repairs_->push_back(std::move(repair));
  }

  CheckContext context_;
  Mode mode_;
  json* repairs_;
  Totals* totals_;
  std::vector<Finding> findings_;
  std::set<const Fix*> ran_;
};

// --- Text rendering -----------------------------------------------------------

std::string Pad(const std::string& text, size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

std::string Number(const json& value) {
  if (value.is_number_integer()) return std::to_string(value.get<long long>());
  if (value.is_number()) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.3f", value.get<double>());
    return buffer;
  }
  return value.is_null() ? "-" : value.dump();
}

void RenderFindings(const json& findings, std::string* out) {
  for (const json& finding : findings) {
    std::string head =
        "    " + Pad(StringOr(finding, "kind"), 17) + Pad(StringOr(finding, "severity"), 8);
    std::string subject = StringOr(finding, "agent_id");
    *out += head + (subject.empty() ? "" : subject + ": ") + StringOr(finding, "detail") + "\n";
    std::string indent(head.size(), ' ');
    std::string result = StringOr(finding, "repair_result");
    if (result.empty()) {
      *out += indent + "repair: " + StringOr(finding, "repair") + "\n";
    } else {
      *out += indent + result + ": " + StringOr(finding, "repair_action") + "\n";
    }
  }
}

void RenderLockFigures(const json& metrics, std::string* out) {
  const std::vector<std::pair<std::string, size_t>> columns = {
      {"", 20},         {"transactions", 14}, {"wait p50", 10}, {"p95", 10},
      {"p99", 10},      {"max", 10},          {"hold p50", 10}, {"hold p99", 10},
      {"timeouts", 10}, {"recoveries", 12},   {"failures", 9}};
  std::string header = "    ";
  for (const auto& [name, width] : columns) header += Pad(name, width);
  *out += "  lock figures (ms; from " + StringOr(metrics, "directory") + ", " +
          Number(metrics.value("files", json(0))) + " file(s))\n";
  while (!header.empty() && header.back() == ' ') header.pop_back();
  *out += header + "\n";
  for (const auto& [key, label] :
       {std::pair{"last_hour", "last hour"}, std::pair{"all_time", "since creation"}}) {
    const json figures = metrics.value(key, json::object());
    const json wait = figures.value("lock_wait_ms", json::object());
    const json hold = figures.value("hold_ms", json::object());
    std::vector<std::string> cells = {label,
                                      Number(figures.value("transactions", json(0))),
                                      Number(wait.value("p50", json(nullptr))),
                                      Number(wait.value("p95", json(nullptr))),
                                      Number(wait.value("p99", json(nullptr))),
                                      Number(wait.value("max", json(nullptr))),
                                      Number(hold.value("p50", json(nullptr))),
                                      Number(hold.value("p99", json(nullptr))),
                                      Number(figures.value("timeouts", json(0))),
                                      Number(figures.value("corruption_recoveries", json(0))),
                                      Number(figures.value("corruption_failures", json(0)))};
    std::string row = "    ";
    for (size_t i = 0; i < cells.size(); ++i) row += Pad(cells[i], columns[i].second);
    while (!row.empty() && row.back() == ' ') row.pop_back();
    *out += row + "\n";
  }
  long unreadable = metrics.value("unreadable_lines", 0L);
  if (unreadable > 0)
    *out += "    (" + std::to_string(unreadable) + " unreadable line(s) skipped)\n";
  if (!metrics.value("all_time", json::object()).value("exact_percentiles", true)) {
    *out += "    (since creation includes folded history: its percentiles are within 4.4%)\n";
  }
  if (metrics.contains("history_error")) {
    *out += "    (history not read: " + StringOr(metrics, "history_error") + ")\n";
  }
}

// The nodes of a PostgreSQL registry: state, lease, load.
void RenderNodes(const json& nodes, std::string* out) {
  if (nodes.empty()) {
    *out += "  nodes: none registered (agents run where they are deployed)\n";
    return;
  }
  *out += "  nodes\n";
  for (const json& node : nodes) {
    long long remaining = node.value("lease_remaining_ms", 0LL);
    std::string state = StringOr(node, "state");
    std::string lease = state != "up"   ? "lease ended " + StringOr(node, "lease_expires_at")
                        : remaining > 0 ? "lease " + std::to_string(remaining) + " ms left"
                                        : "lease EXPIRED " + std::to_string(-remaining) + " ms ago";
    *out += "    " + Pad(StringOr(node, "name"), 17) + Pad(state, 8) + "incarnation " +
            Number(node.value("incarnation", json(0))) + ", " + lease + ", running " +
            Number(node.value("running", json(0))) + "/" + Number(node.value("capacity", json(0))) +
            ", on " + StringOr(node, "hostname") + "\n";
  }
}

}  // namespace

Result<json> Diagnose(const registry::RegistryStores& stores, const registry::Workspace& preferred,
                      const DoctorOptions& options) {
  bool postgres = registry::UsesPostgres(stores);
  std::vector<std::string> bases;
  if (postgres) {
    // One registry for every machine: its tasks are read from the server,
    // so a registry that cannot be read fails the diagnosis here, before
    // any check runs.
    std::unique_ptr<const registry::Registry> registry = registry::RegistryFor(stores, preferred);
    if (!options.task_id.empty()) {
      HERD_RETURN_IF_ERROR(registry::ValidateTaskId(options.task_id));
      HERD_RETURN_IF_ERROR(registry->ReadTask(options.task_id).status());
    } else {
      HERD_RETURN_IF_ERROR(registry->TaskIds().status());
    }
    bases.push_back(preferred.base());
  } else if (!options.task_id.empty()) {
    Result<registry::Workspace> located = registry::LocateTask(stores, preferred, options.task_id);
    if (!located.ok()) return located.status();
    bases.push_back(located->base());
  } else {
    for (const registry::Workspace& base : registry::RegistryBases(stores, preferred)) {
      bases.push_back(base.base());
    }
  }
  Mode mode = options.dry_run ? Mode::kDryRun : options.repair ? Mode::kRepair : Mode::kDiagnose;

  json workspaces = json::array();
  json repairs = json::array();
  Totals totals;
  for (const std::string& base : bases) {
    if (!postgres && !registry::IsDirectory(base)) continue;
    CheckContext context;
    context.stores = &stores;
    context.workspace = registry::Workspace(base);
    context.task_id = options.task_id;
    context.now = NowUnixSeconds();
    context.starting_grace = options.starting_grace;
    context.orphan_grace = options.orphan_grace;
    context.temp_file_min_age = options.temp_file_min_age;
    context.kill_grace = options.kill_grace;
    HERD_ASSIGN_OR_RETURN(json workspace, WorkspaceDoctor(context, mode, &repairs, &totals).Run());
    workspaces.push_back(std::move(workspace));
  }
  json summary = {{"mode", ModeName(mode)},          {"workspaces", workspaces.size()},
                  {"findings", totals.findings},     {"repaired", totals.repaired},
                  {"unresolved", totals.unresolved}, {"healthy", totals.unresolved == 0}};
  return json{{"engine", postgres ? "postgresql" : "json"},
              {"workspaces", std::move(workspaces)},
              {"summary", std::move(summary)},
              {"repairs", std::move(repairs)}};
}

std::string RenderReport(const json& report) {
  std::string out;
  const json summary = report.value("summary", json::object());
  std::string mode = StringOr(summary, "mode");
  int findings = summary.value("findings", 0);
  int unresolved = summary.value("unresolved", 0);
  bool postgres = StringOr(report, "engine") == "postgresql";
  out += "herd doctor";
  if (mode == "repair") out += " --repair";
  if (mode == "dry_run") out += " --dry-run";
  out += ": " +
         (postgres ? std::string("the PostgreSQL registry")
                   : Number(summary.value("workspaces", json(0))) + " workspace(s)") +
         ", " + std::to_string(findings) + " finding(s)";
  if (mode == "repair") out += ", " + Number(summary.value("repaired", json(0))) + " repaired";
  out += "; ";
  if (summary.value("healthy", false)) {
    out += "healthy\n";
  } else {
    out += "NOT healthy (" + std::to_string(unresolved) + " unresolved error(s))";
    out += mode == "diagnose" ? "; --repair fixes what it can, --dry-run shows how\n" : "\n";
  }

  for (const json& workspace : report.value("workspaces", json::array())) {
    std::string checked = Number(workspace.value("tasks_checked", json(0))) + " task(s) checked";
    if (postgres) {
      out += "\nPostgreSQL registry (" + checked + "; this machine's base " +
             StringOr(workspace, "base") + ")\n";
    } else {
      out += "\nworkspace " + StringOr(workspace, "base") + " (" + checked + ")\n";
    }
    if (workspace.contains("filesystem_warning")) {
      out += "  warning: " + StringOr(workspace, "filesystem_warning") + "\n";
    }
    const json tasks = workspace.value("tasks", json::array());
    const json general = workspace.value("workspace_findings", json::array());
    if (tasks.empty() && general.empty()) out += "  no findings\n";
    for (const json& task : tasks) {
      out += "  " + StringOr(task, "task_id") + "\n";
      RenderFindings(task.value("findings", json::array()), &out);
    }
    if (!general.empty()) {
      out += "  (workspace)\n";
      RenderFindings(general, &out);
    }
    if (postgres) {
      RenderNodes(workspace.value("nodes", json::array()), &out);
      std::string skipped;
      const json checks = workspace.value("skipped_checks", json::object());
      for (const auto& check : checks.items()) {
        skipped += (skipped.empty() ? "" : ", ") + check.key();
      }
      out += "  skipped (checks of the JSON workspace's files): " + skipped + "\n";
    } else {
      RenderLockFigures(workspace.value("lock_metrics", json::object()), &out);
    }
  }

  const json repairs = report.value("repairs", json::array());
  if (!repairs.empty()) {
    out += "\n" +
           std::string(mode == "dry_run" ? "repairs (dry run, nothing changed)" : "repairs") +
           ":\n";
    for (const json& repair : repairs) {
      std::string state = repair.contains("error")         ? "FAILED"
                          : repair.value("dry_run", false) ? "planned"
                          : repair.value("changed", false) ? "changed"
                                                           : "unchanged";
      out += "  " + Pad(state, 10) + Pad(StringOr(repair, "kind"), 17) +
             StringOr(repair, "target") + ": " + StringOr(repair, "action") + "\n";
      if (repair.contains("error")) out += "            " + StringOr(repair, "error") + "\n";
    }
  }
  return out;
}

}  // namespace herd::health
