#include "health/index_check.h"

#include <map>
#include <set>

#include "health/registry_files.h"
#include "registry/task_registry.h"
#include "util/json_fields.h"

namespace herd::health {
namespace {

using nlohmann::json;

constexpr size_t kMaxReported = 20;
constexpr int kRebuildAttempts = 3;

const json& ObjectOr(const json& document, const char* key) {
  static const json kEmpty = json::object();
  auto found = document.find(key);
  return found != document.end() && found->is_object() ? *found : kEmpty;
}

}  // namespace

std::vector<std::string> IndexMismatches(const CheckContext& context) {
  std::vector<std::string> mismatches;
  json index;
  Result<store::Snapshot> read =
      context.stores->global.Read(context.workspace.GlobalRegistryPath());
  if (read.ok()) {
    index = std::move(read->document);
  } else if (read.status().Is(Status::Code::kNotFound)) {
    index = {{"tasks", json::object()}, {"agents", json::object()}};
  } else {
    return mismatches;
  }
  const json& indexed_tasks = ObjectOr(index, "tasks");
  const json& indexed_agents = ObjectOr(index, "agents");

  std::map<std::string, json> tasks;
  std::set<std::string> unreadable;
  for (const std::string& task_id : TaskIdsOf(context)) {
    Result<store::Snapshot> task =
        context.stores->tasks.Read(context.workspace.TaskRegistryPath(task_id));
    if (task.ok()) {
      tasks[task_id] = std::move(task->document);
    } else if (!task.status().Is(Status::Code::kNotFound)) {
      unreadable.insert(task_id);  // the file checks report it; the index keeps its entry
    }
  }

  for (const auto& [task_id, task] : tasks) {
    auto entry = indexed_tasks.find(task_id);
    if (entry == indexed_tasks.end() || !entry->is_object()) {
      mismatches.push_back("task " + task_id + " is missing from the index");
    } else {
      for (const char* key : {"status", "total_spawned", "active_count"}) {
        json in_index = entry->value(key, json(nullptr));
        json in_task = task.value(key, json(nullptr));
        if (in_index != in_task) {
          mismatches.push_back("task " + task_id + ": the index has " + key + " " +
                               in_index.dump() + ", the task registry " + in_task.dump());
        }
      }
    }
    for (const json& agent : task["agents"]) {
      std::string agent_id = StringOr(agent, "id");
      auto indexed = indexed_agents.find(agent_id);
      if (indexed == indexed_agents.end() || !indexed->is_object()) {
        mismatches.push_back("agent " + agent_id + " of task " + task_id +
                             " is missing from the index");
        continue;
      }
      if (StringOr(*indexed, "task_id") != task_id) {
        mismatches.push_back("agent " + agent_id + ": the index puts it in task " +
                             StringOr(*indexed, "task_id") + ", the registry of " + task_id +
                             " lists it");
      }
      if (StringOr(*indexed, "status") != StringOr(agent, "status")) {
        mismatches.push_back("agent " + agent_id + ": the index has status \"" +
                             StringOr(*indexed, "status") + "\", task " + task_id + " has \"" +
                             StringOr(agent, "status") + "\"");
      }
    }
  }

  auto in_scope = [&](const std::string& task_id) {
    return context.task_id.empty() || task_id == context.task_id;
  };
  for (const auto& [task_id, entry] : indexed_tasks.items()) {
    if (in_scope(task_id) && !tasks.count(task_id) && !unreadable.count(task_id)) {
      mismatches.push_back("the index lists task " + task_id +
                           ", which has no registry in this workspace");
    }
  }
  int active = 0;
  for (const auto& [agent_id, entry] : indexed_agents.items()) {
    std::string task_id = entry.is_object() ? StringOr(entry, "task_id") : "";
    if (entry.is_object() && registry::IsActiveStatus(StringOr(entry, "status"))) ++active;
    if (!in_scope(task_id) || unreadable.count(task_id)) continue;
    auto task = tasks.find(task_id);
    if (task == tasks.end()) {
      mismatches.push_back("the index lists agent " + agent_id + " of task " +
                           (task_id.empty() ? "(none)" : task_id) + ", which does not exist");
    } else if (registry::FindAgent(task->second, agent_id) == nullptr) {
      mismatches.push_back("the index lists agent " + agent_id + " under task " + task_id +
                           ", whose registry does not");
    }
  }
  if (context.task_id.empty()) {
    std::pair<const char*, size_t> totals[] = {{"total_tasks", indexed_tasks.size()},
                                               {"total_agents_spawned", indexed_agents.size()},
                                               {"active_agents", static_cast<size_t>(active)}};
    for (const auto& [key, expected] : totals) {
      json stored = index.value(key, json(nullptr));
      // An index that was never written has no totals yet.
      if (stored.is_null() && indexed_tasks.empty()) continue;
      if (stored != json(expected)) {
        mismatches.push_back(std::string("the index's ") + key + " is " + stored.dump() +
                             " but its own entries give " + std::to_string(expected));
      }
    }
  }
  return mismatches;
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
