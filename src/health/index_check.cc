#include "health/index_check.h"

#include <map>
#include <set>

#include "health/registry_files.h"
#include "registry/global_index.h"

namespace herd::health {
namespace {

constexpr size_t kMaxReported = 20;
constexpr int kRebuildAttempts = 3;

}  // namespace

std::vector<std::string> IndexMismatches(const CheckContext& context) {
  return registry::IndexMismatches(*context.stores, context.workspace, TaskIdsOf(context),
                                   context.task_id);
}

std::vector<Finding> CheckIndex(const CheckContext& context) {
  std::vector<std::string> first = IndexMismatches(context);
  if (first.empty()) return {};
  // Another process may be between its task and index transactions: keep
  // only what a second look confirms.
  std::vector<std::string> second = IndexMismatches(context);
  std::set<std::string> confirmed(second.begin(), second.end());
  std::vector<std::string> mismatches;
  for (const std::string& line : first) {
    if (confirmed.count(line)) mismatches.push_back(line);
  }
  if (mismatches.empty()) return {};

  CheckContext captured = context;
  std::string path = context.workspace.GlobalRegistryPath();
  auto fix = std::make_shared<Fix>(
      FindingKind::kIndexMismatch, path,
      "rebuild the global index from the task registries (one index transaction), then compare "
      "again",
      [captured] {
        std::vector<std::string> now = IndexMismatches(captured);
        if (now.empty()) {
          return RepairOutcome::Unchanged(
              "the index agrees with the task registries now (an earlier repair refreshed it)");
        }
        std::string why = std::to_string(now.size()) + " disagreement(s)";
        RepairOutcome outcome;
        for (int attempt = 1; attempt <= kRebuildAttempts; ++attempt) {
          outcome = RebuildIndex(captured, why);
          if (!outcome.status.ok()) return outcome;
          std::vector<std::string> left = IndexMismatches(captured);
          if (left.empty()) return outcome;
          why = "again: " + left.front();
        }
        return RepairOutcome{
            true, outcome.action,
            Status::Refused("the index still disagrees after " + std::to_string(kRebuildAttempts) +
                            " rebuilds (task registries kept changing); run the "
                            "repair again")};
      });
  std::vector<Finding> findings;
  for (size_t i = 0; i < mismatches.size() && i < kMaxReported; ++i) {
    Finding finding;
    finding.kind = FindingKind::kIndexMismatch;
    finding.severity = Severity::kError;
    finding.path = path;
    finding.detail = mismatches[i];
    finding.fix = fix;
    findings.push_back(std::move(finding));
  }
  if (mismatches.size() > kMaxReported) {
    findings.back().detail +=
        " (and " + std::to_string(mismatches.size() - kMaxReported) + " more disagreements)";
  }
  return findings;
}

}  // namespace herd::health
