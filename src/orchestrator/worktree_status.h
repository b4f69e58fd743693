// The worktree figures a task's status shows per agent (internal to the
// orchestrator: orchestrator.cc's StatusReport and ToJson use them).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "registry/records.h"
#include "worktrees/worktree.h"

namespace herd {

// Per agent of `task`, in order: its own worktree's summary, or unset (no
// worktree of its own, or removed). Runs git for each; holds no lock.
std::vector<std::optional<worktrees::Summary>> WorktreeSummaries(const registry::TaskRecord& task);

// {branch, path, present, files_changed, lines_added, lines_removed,
// commits_ahead, dirty, merged_into}.
nlohmann::json WorktreeSummaryJson(const registry::AgentRecord& agent,
                                   const worktrees::Summary& summary);

}  // namespace herd
