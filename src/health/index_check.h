// Doctor check: does the global index agree with the task registries?
//
// The index (registry/GLOBAL_REGISTRY.json) is derived data. It disagrees
// when a task or agent is missing from it, when its status or counts differ
// from the task registry's, when it lists tasks or agents that no longer
// exist, or when its totals do not add up. Other herd processes update the
// index in a second transaction after each task transaction, so a
// difference may be a moment old: a mismatch is only reported if a second
// look (fresh reads) shows it too.
//
// Repair: registry::RebuildGlobalIndex (one transaction on the index, after
// lock-free reads of every task registry), then a fresh comparison; if a
// concurrent writer made the rebuilt index stale again, it is rebuilt again
// (a few times at most). All mismatches share this one repair.
#pragma once

#include <string>
#include <vector>

#include "health/check_context.h"
#include "health/findings.h"

namespace herd::health {

std::vector<Finding> CheckIndex(const CheckContext& context);

// The disagreements between the index and the task registries, one line
// each (scoped to context.task_id when set). Empty when they agree or the
// index cannot be read (the file checks report that).
std::vector<std::string> IndexMismatches(const CheckContext& context);

}  // namespace herd::health
