// Doctor checks that compare task registries with the processes running.
//
// - zombie: an entry with an active status whose agent process (pid + start
//   time) and supervisor (supervisor pid + start time) are both gone, so
//   nothing will ever record its end; or an entry stuck in phase "starting"
//   longer than the starting grace with no live supervisor (its deployer died
//   between admission and start). Repair: one task transaction that re-checks
//   the condition inside the mutation and marks the agent status "error",
//   error "process lost", ended_at; then any leftover process of the agent is
//   stopped (agents::StopAgentProcesses only signals verified identities).
//   An active entry whose supervisor is gone but whose agent still runs is
//   reported (severity warning) but left alone: the agent may be doing useful
//   work; once it exits, the zombie repair records it.
// - orphan: a live herd supervisor (processes.h) for this workspace base
//   whose agent's entry is terminal (for longer than the orphan grace) or
//   missing from a readable task registry, or a terminal entry whose
//   recorded agent process still runs with no supervisor. Repair: staged kill
//   of the supervisor and everything below it (SIGTERM, grace, SIGKILL),
//   after re-reading the registry; nothing is recorded by doctor (a live
//   supervisor records the exit itself).
// - count_drift: total_spawned, active_count or completed_count differ from
//   what registry::RecomputeCounts derives from the agent list. Repair: a
//   transaction that calls RecomputeCounts (and commits only if it changes
//   something), then the task's global index entry is refreshed.
//
// Only agents whose processes are this machine's are checked against /proc
// or signalled: never one placed on a node (agents::RunsOnThisMachine; its
// node answers for it, node_checks.h), and under PostgreSQL, where several
// machines share the registry, never an unplaced agent whose local files
// (launch plan, supervisor log, prompt) are not in its task's base here: it
// was deployed from another machine. Under PostgreSQL a supervisor is
// matched to its task by the base the task's row names, and one whose task
// the registry does not have is left alone (it may serve another registry).
//
// Processes are scanned before registries are read: an agent's entry is
// committed before its supervisor starts, so a supervisor seen in the scan
// is always visible in the registry read that follows.
#pragma once

#include <vector>

#include "health/check_context.h"
#include "health/findings.h"
#include "health/processes.h"

namespace herd::health {

// Zombie entries and orphaned processes of the context's tasks.
// `supervisors` is a FindSupervisors() scan made before this call.
std::vector<Finding> CheckAgents(const CheckContext& context,
                                 const std::vector<SupervisorProcess>& supervisors);

std::vector<Finding> CheckCounts(const CheckContext& context);

}  // namespace herd::health
