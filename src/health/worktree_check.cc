#include "health/worktree_check.h"

#include <filesystem>
#include <set>

#include "agents/agent_worktree.h"
#include "agents/liveness.h"
#include "agents/process.h"
#include "registry/registries.h"
#include "registry/task_registry.h"
#include "util/clock.h"
#include "worktrees/git.h"
#include "worktrees/worktree.h"

namespace herd::health {
namespace {

namespace fs = std::filesystem;

// "herd <task>/<agent>" -> task, agent.
bool ParseReason(const std::string& reason, std::string* task_id, std::string* agent_id) {
  if (reason.rfind("herd ", 0) != 0) return false;
  std::string rest = reason.substr(5);
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return false;
  *task_id = rest.substr(0, slash);
  *agent_id = rest.substr(slash + 1);
  return !task_id->empty() && !agent_id->empty();
}

// True when nothing of the agent runs, nor will: no entry, a start that
// was lost (its deployer died: liveness.h), or an end with its processes
// gone.
bool ProcessesGone(const registry::AgentRecord* agent, const CheckContext& context) {
  if (agent == nullptr) return true;
  agents::Liveness liveness = agents::ClassifyLiveness(*agent, context.now, context.starting_grace);
  if (agents::IsLost(liveness)) return true;
  if (liveness != agents::Liveness::kEnded) return false;
  for (const ProcessIdentity* identity : {&agent->process, &agent->supervisor}) {
    if (identity->recorded() && agents::IsAlive(*identity)) return false;
  }
  return true;
}

RepairOutcome RemoveOrphan(worktrees::WorktreeInfo info) {
  Result<worktrees::LossReport> loss = worktrees::WhatWouldBeLost(info);
  if (!loss.ok()) return RepairOutcome::Failed(loss.status());
  if (!loss->nothing_lost()) {
    return RepairOutcome::Unchanged("left alone: removing it would lose " + loss->Describe());
  }
  Result<worktrees::Removal> removed =
      worktrees::RemoveWorktree(info, agents::WorktreeRoot(), worktrees::RemoveMode::kSafe);
  if (!removed.ok()) return RepairOutcome::Failed(removed.status());
  return RepairOutcome::Changed("removed " + info.path +
                                (removed->branch_deleted ? " and branch " + info.branch : ""));
}

}  // namespace

std::vector<Finding> CheckWorktrees(const CheckContext& context) {
  std::vector<Finding> findings;
  std::vector<std::string> task_ids = TaskIdsOf(context);
  std::set<std::string> ours(task_ids.begin(), task_ids.end());
  std::shared_ptr<const registry::Registry> registry =
      registry::RegistryFor(*context.stores, context.workspace);
  std::set<std::string> listed_paths;
  std::string root = agents::WorktreeRoot();

  for (const worktrees::FoundWorktree& found : worktrees::FindHerdWorktrees(root)) {
    listed_paths.insert(found.path);
    std::string task_id, agent_id;
    if (!ParseReason(found.lock_reason, &task_id, &agent_id) || ours.count(task_id) == 0) continue;
    Result<registry::SharedTask> task = registry->ReadTask(task_id);
    if (!task.ok()) continue;  // registry_files reports it
    const registry::AgentRecord* agent = (*task)->task.FindAgent(agent_id);
    bool recorded = agent != nullptr && agent->worktree && agent->worktree->path == found.path &&
                    !agent->worktree->removed_at && !agent->worktree->base_sha.empty();
    Finding finding;
    finding.task_id = task_id;
    finding.agent_id = agent_id;
    finding.path = found.path;
    finding.severity = Severity::kWarning;
    if (found.missing) {
      finding.kind = FindingKind::kStaleWorktree;
      finding.detail = "git lists the worktree " + found.path + " (" + found.lock_reason + ") in " +
                       found.repository + " but its folder is gone";
      std::string repository = found.repository, path = found.path;
      finding.fix = std::make_shared<Fix>(
          FindingKind::kStaleWorktree, path,
          "unlock it and run git worktree prune (the branch stays)", [repository, path] {
            if (fs::exists(path)) return RepairOutcome::Unchanged("its folder is back");
            (void)worktrees::RunGit(repository, {"worktree", "unlock", path});
            Result<std::string> pruned = worktrees::Git(repository, {"worktree", "prune"});
            if (!pruned.ok()) return RepairOutcome::Failed(pruned.status());
            return RepairOutcome::Changed("pruned git's entry for " + path);
          });
      findings.push_back(std::move(finding));
      continue;
    }
    if (recorded) continue;
    finding.kind = FindingKind::kOrphanWorktree;
    finding.detail = "the worktree " + found.path + " (branch " + found.branch + ") of " +
                     found.repository + " is not recorded by agent " + agent_id +
                     (agent == nullptr ? " (no such agent)" : " (its creation never finished)");
    if (!ProcessesGone(agent, context)) {
      finding.no_fix_reason = "its agent may still run: check again once it has ended";
    } else {
      worktrees::WorktreeInfo info;
      info.repository = found.repository;
      info.path = found.path;
      info.branch = found.branch;
      // Only a branch named as herd names it counts as herd's.
      info.created_branch = found.branch == "herd/" + task_id + "/" + agent_id;
      finding.fix = std::make_shared<Fix>(FindingKind::kOrphanWorktree, found.path,
                                          "remove it if nothing would be lost",
                                          [info] { return RemoveOrphan(info); });
    }
    findings.push_back(std::move(finding));
  }

  for (const std::string& task_id : task_ids) {
    Result<registry::SharedTask> task = registry->ReadTask(task_id);
    if (!task.ok()) continue;
    for (const registry::AgentRecord& agent : (*task)->task.agents) {
      if (!agent.worktree || agent.worktree->removed_at || agent.worktree->base_sha.empty()) {
        continue;
      }
      const std::string& path = agent.worktree->path;
      if (fs::exists(path) || listed_paths.count(path) > 0) continue;
      // A placed agent's worktree is on its node's machine, not looked for here.
      if (agent.node) continue;
      Finding finding;
      finding.kind = FindingKind::kMissingWorktree;
      finding.severity = Severity::kWarning;
      finding.task_id = task_id;
      finding.agent_id = agent.id;
      finding.path = path;
      finding.detail = "agent " + agent.id + "'s worktree " + path + " is gone (its branch " +
                       agent.worktree->branch + " may remain)";
      registry::WorktreeRecord record = *agent.worktree;
      std::string agent_id = agent.id;
      finding.fix = std::make_shared<Fix>(
          FindingKind::kMissingWorktree, path, "record the worktree as removed",
          [registry, task_id, agent_id, record]() mutable {
            if (fs::exists(record.path)) return RepairOutcome::Unchanged("it is back");
            record.removed_at = NowIso8601();
            Status recorded = registry->RecordWorktree(task_id, agent_id, record);
            if (!recorded.ok()) return RepairOutcome::Failed(recorded);
            return RepairOutcome::Changed("recorded " + record.path + " as removed");
          });
      findings.push_back(std::move(finding));
    }
  }
  return findings;
}

}  // namespace herd::health
