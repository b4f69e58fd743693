// The orchestrator's worktree operations: diff, merge, list, remove, prune.
//
// Each reads the task (no lock held while git runs), checks that the agent
// has a worktree of its own and, for a merge or a removal, that its
// processes are gone (pid + start time), acts through worktrees/, and
// records the outcome on the agent in one registry transaction.
#include <spdlog/spdlog.h>

#include "agents/agent_worktree.h"
#include "agents/process.h"
#include "orchestrator/orchestrator.h"
#include "orchestrator/worktree_status.h"
#include "registry/task_registry.h"
#include "registry/workspace.h"
#include "util/clock.h"

namespace herd {
namespace {

using registry::AgentRecord;
using registry::Workspace;

bool HasLiveWorktree(const AgentRecord& agent) {
  return agent.worktree && !agent.worktree->removed_at && !agent.worktree->base_sha.empty();
}

// A placed agent's worktree is on its node's machine: on any other its
// path is not there (so nothing here is read, changed or deleted for it).
bool WorktreeIsElsewhere(const AgentRecord& agent) {
  return agent.node && agent.worktree && !registry::IsDirectory(agent.worktree->path);
}

Status RefuseElsewhere(const AgentRecord& agent) {
  return Status::Refused("agent " + agent.id + "'s worktree " + agent.worktree->path +
                         " is on node " + agent.node->name +
                         "'s machine, not this one: run this there (herd on that machine, or "
                         "its herd serve)");
}

// Refused while anything of the agent may still run.
Status CheckProcessesGone(const AgentRecord& agent) {
  if (registry::IsActiveStatus(agent.status)) {
    return Status::Refused("agent " + agent.id + " is still " + agent.status +
                           ": wait for it to end (herd wait, wait_for_agents) or stop it (herd "
                           "kill) first");
  }
  for (const ProcessIdentity* identity : {&agent.process, &agent.supervisor}) {
    if (identity->recorded() && agents::IsAlive(*identity)) {
      return Status::Refused("agent " + agent.id + " has ended but its process " +
                             std::to_string(identity->pid) +
                             " still runs: wait until it has exited");
    }
  }
  return Status::Ok();
}

json SummaryFields(const worktrees::Summary& summary) {
  return {{"present", summary.present},
          {"files_changed", summary.files_changed},
          {"lines_added", summary.lines_added},
          {"lines_removed", summary.lines_removed},
          {"commits_ahead", summary.commits_ahead},
          {"dirty", summary.dirty}};
}

}  // namespace

std::vector<std::optional<worktrees::Summary>> WorktreeSummaries(const registry::TaskRecord& task) {
  std::vector<std::optional<worktrees::Summary>> summaries(task.agents.size());
  for (size_t i = 0; i < task.agents.size(); ++i) {
    const AgentRecord& agent = task.agents[i];
    if (!HasLiveWorktree(agent) || WorktreeIsElsewhere(agent)) continue;
    Result<worktrees::Summary> summary =
        worktrees::Summarize(agents::ToWorktreeInfo(*agent.worktree));
    if (summary.ok()) {
      summaries[i] = *summary;
    } else {
      spdlog::warn("no worktree summary for {}: {}", agent.id, summary.status().message());
    }
  }
  return summaries;
}

json WorktreeSummaryJson(const AgentRecord& agent, const worktrees::Summary& summary) {
  json fields = SummaryFields(summary);
  fields["branch"] = agent.worktree->branch;
  fields["path"] = agent.worktree->path;
  fields["base_ref"] = agent.worktree->base_ref;
  fields["merged_into"] = agent.worktree->merge ? json(agent.worktree->merge->into) : json(nullptr);
  return fields;
}

namespace {

// The agent's entry, which must have a worktree of its own.
Result<AgentRecord> AgentWithWorktree(const registry::TaskRecord& task,
                                      const std::string& agent_id) {
  const AgentRecord* agent = task.FindAgent(agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not in task " + task.task_id +
                            ": `herd status " + task.task_id + "` lists its agents");
  }
  if (!agent->worktree) {
    return Status::InvalidArgument("agent " + agent_id +
                                   " has no worktree of its own (it was deployed without "
                                   "--worktree, and works in " +
                                   agent->cwd + ")");
  }
  if (agent->worktree->base_sha.empty()) {
    return Status::NotFound("agent " + agent_id + "'s worktree was never completed (" +
                            agent->worktree->path + "): `herd doctor` reports leftovers");
  }
  if (agent->worktree->removed_at) {
    return Status::NotFound("agent " + agent_id + "'s worktree was removed at " +
                            *agent->worktree->removed_at);
  }
  if (WorktreeIsElsewhere(*agent)) return RefuseElsewhere(*agent);
  return *agent;
}

}  // namespace

Result<json> Orchestrator::AgentDiff(const DiffRequest& request) const {
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, ReadTask(request.task_id));
  HERD_ASSIGN_OR_RETURN(AgentRecord agent, AgentWithWorktree(snapshot->task, request.agent_id));
  worktrees::WorktreeInfo info = agents::ToWorktreeInfo(*agent.worktree);
  worktrees::DiffFormat format = request.format == "stat"        ? worktrees::DiffFormat::kStat
                                 : request.format == "name-only" ? worktrees::DiffFormat::kNameOnly
                                                                 : worktrees::DiffFormat::kPatch;
  HERD_ASSIGN_OR_RETURN(worktrees::Diff diff,
                        worktrees::DiffAgainstBase(info, format, request.max_bytes));
  HERD_ASSIGN_OR_RETURN(worktrees::Summary summary, worktrees::Summarize(info));
  json reply = {{"task_id", request.task_id},
                {"agent_id", request.agent_id},
                {"agent_status", agent.status},
                {"branch", info.branch},
                {"base_ref", info.base_ref},
                {"base_sha", info.base_sha},
                {"path", info.path},
                {"format", request.format},
                {"truncated", diff.truncated},
                {"summary", SummaryFields(summary)},
                {"uncommitted_files", summary.uncommitted_files}};
  reply["diff"] = std::move(diff.text);
  if (diff.truncated) {
    reply["note"] = "cut at " + std::to_string(request.max_bytes) +
                    " bytes: ask for format stat or name-only, or a larger max_bytes";
  }
  return reply;
}

Result<json> Orchestrator::MergeAgentWork(const MergeRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  std::unique_ptr<const registry::Registry> registry = RegistryOf(workspace);
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry->ReadTask(request.task_id));
  HERD_ASSIGN_OR_RETURN(AgentRecord agent, AgentWithWorktree(snapshot->task, request.agent_id));
  HERD_RETURN_IF_ERROR(CheckProcessesGone(agent));
  worktrees::MergeOptions options;
  HERD_ASSIGN_OR_RETURN(options.strategy, worktrees::ParseMergeStrategy(request.strategy));
  options.into = request.into;
  options.message = request.message;
  options.commit_pending = request.commit_pending;
  options.pending_message = "Uncommitted work of herd agent " + agent.id;
  HERD_ASSIGN_OR_RETURN(worktrees::MergeResult merged,
                        worktrees::Merge(agents::ToWorktreeInfo(*agent.worktree), options));
  if (!merged.merged) {
    std::string files;
    for (const std::string& file : merged.conflicts) files += (files.empty() ? "" : ", ") + file;
    return Status::Refused("merging " + agent.worktree->branch + " into " + merged.into +
                           " conflicts in " + files +
                           ": nothing was changed; resolve it in the agent's worktree " +
                           agent.worktree->path + " (or have an agent do it), then merge again");
  }
  registry::WorktreeRecord record = *agent.worktree;
  record.merge = registry::MergeRecord{.commit = merged.commit,
                                       .strategy = merged.strategy,
                                       .into = merged.into,
                                       .files = merged.files,
                                       .at = NowIso8601()};
  Status recorded = registry->RecordWorktree(request.task_id, agent.id, record);
  json reply = {{"task_id", request.task_id},
                {"agent_id", agent.id},
                {"merged", true},
                {"commit", merged.commit},
                {"into", merged.into},
                {"strategy", merged.strategy},
                {"files", merged.files},
                {"branch", agent.worktree->branch},
                {"pending_commit",
                 merged.pending_commit.empty() ? json(nullptr) : json(merged.pending_commit)}};
  if (!recorded.ok()) {
    reply["warning"] = "merged, but the merge is not recorded on the agent: " + recorded.message();
  }
  return reply;
}

Result<json> Orchestrator::ListWorktrees(const WorktreeListRequest& request) const {
  std::vector<registry::TaskRecord> tasks;
  if (!request.task_id.empty()) {
    HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, ReadTask(request.task_id));
    tasks.push_back(snapshot->task);
  } else {
    for (const TaskListing& listing : TaskListings()) {
      if (listing.error.empty()) tasks.push_back(listing.task);
    }
  }
  json listed = json::array();
  for (const registry::TaskRecord& task : tasks) {
    std::vector<std::optional<worktrees::Summary>> summaries = WorktreeSummaries(task);
    for (size_t i = 0; i < task.agents.size(); ++i) {
      const AgentRecord& agent = task.agents[i];
      if (!agent.worktree) continue;
      json entry = {{"task_id", task.task_id},
                    {"agent_id", agent.id},
                    {"agent_status", agent.status},
                    {"worktree", registry::EncodeWorktree(*agent.worktree)}};
      if (agent.node) entry["node"] = agent.node->name;
      if (summaries[i]) entry["summary"] = SummaryFields(*summaries[i]);
      listed.push_back(std::move(entry));
    }
  }
  return json{{"worktrees", listed}, {"total", listed.size()}, {"root", agents::WorktreeRoot()}};
}

namespace {

// Removes an ended agent's worktree and records it; `force` removes it even
// if work is lost. The reply names what was lost, or the refusal what would be.
Result<json> RemoveAgentWorktree(const registry::Registry& registry, const std::string& task_id,
                                 const AgentRecord& agent, worktrees::RemoveMode mode) {
  HERD_RETURN_IF_ERROR(CheckProcessesGone(agent));
  HERD_ASSIGN_OR_RETURN(worktrees::Removal removal,
                        worktrees::RemoveWorktree(agents::ToWorktreeInfo(*agent.worktree),
                                                  agents::WorktreeRoot(), mode));
  registry::WorktreeRecord record = *agent.worktree;
  record.removed_at = NowIso8601();
  Status recorded = registry.RecordWorktree(task_id, agent.id, record);
  json reply = {
      {"task_id", task_id},
      {"agent_id", agent.id},
      {"path", record.path},
      {"branch", record.branch},
      {"worktree_removed", removal.worktree_removed},
      {"branch_deleted", removal.branch_deleted},
      {"lost", removal.loss.nothing_lost() ? json(nullptr) : json(removal.loss.Describe())}};
  if (!recorded.ok()) reply["warning"] = "removed, but not recorded: " + recorded.message();
  return reply;
}

}  // namespace

Result<json> Orchestrator::RemoveWorktree(const WorktreeRemoveRequest& request) const {
  HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(request.task_id));
  std::unique_ptr<const registry::Registry> registry = RegistryOf(workspace);
  HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry->ReadTask(request.task_id));
  HERD_ASSIGN_OR_RETURN(AgentRecord agent, AgentWithWorktree(snapshot->task, request.agent_id));
  return RemoveAgentWorktree(
      *registry, request.task_id, agent,
      request.force ? worktrees::RemoveMode::kForce : worktrees::RemoveMode::kSafe);
}

Result<json> Orchestrator::PruneWorktrees(const WorktreePruneRequest& request) const {
  std::vector<std::string> task_ids;
  if (!request.task_id.empty()) {
    task_ids.push_back(request.task_id);
  } else {
    for (const TaskListing& listing : TaskListings()) {
      if (listing.error.empty()) task_ids.push_back(listing.task.task_id);
    }
  }
  json removed = json::array(), kept = json::array();
  for (const std::string& task_id : task_ids) {
    HERD_ASSIGN_OR_RETURN(Workspace workspace, Locate(task_id));
    std::unique_ptr<const registry::Registry> registry = RegistryOf(workspace);
    HERD_ASSIGN_OR_RETURN(registry::SharedTask snapshot, registry->ReadTask(task_id));
    for (const AgentRecord& agent : snapshot->task.agents) {
      if (!HasLiveWorktree(agent)) continue;
      json entry = {{"task_id", task_id},
                    {"agent_id", agent.id},
                    {"path", agent.worktree->path},
                    {"branch", agent.worktree->branch}};
      Status gone = WorktreeIsElsewhere(agent) ? RefuseElsewhere(agent) : CheckProcessesGone(agent);
      if (!gone.ok()) {
        entry["reason"] = gone.message();
        kept.push_back(std::move(entry));
        continue;
      }
      Result<worktrees::LossReport> loss =
          worktrees::WhatWouldBeLost(agents::ToWorktreeInfo(*agent.worktree));
      if (!loss.ok() || !loss->nothing_lost()) {
        entry["reason"] = loss.ok() ? "would lose " + loss->Describe() : loss.status().message();
        kept.push_back(std::move(entry));
        continue;
      }
      if (request.dry_run) {
        removed.push_back(std::move(entry));
        continue;
      }
      Result<json> done =
          RemoveAgentWorktree(*registry, task_id, agent, worktrees::RemoveMode::kSafe);
      if (done.ok()) {
        removed.push_back(*done);
      } else {
        entry["reason"] = done.status().message();
        kept.push_back(std::move(entry));
      }
    }
  }
  return json{{"dry_run", request.dry_run}, {"removed", removed}, {"kept", kept}};
}

}  // namespace herd
