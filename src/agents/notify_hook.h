// Notifications: a person's command run on each agent's end (and turn's).
//
// Each agent transition a herd process commits (registry/transitions.h:
// completed, failed, killed, stopped by a limit, lost) runs the task's
// notify_command, or else $HERD_NOTIFY_COMMAND, once, by `/bin/sh -c`, with
// the event in its environment:
//
//   HERD_EVENT        agent_completed | agent_failed | agent_killed | agent_limit_hit
//                     | agent_turn_finished (a queued follow-up runs next)
//   HERD_TASK_ID, HERD_AGENT_ID, HERD_TASK_DIR, HERD_LOG_FILE
//   HERD_TURN                          the turn that ended (1 = the deploy's)
//   HERD_OLD_STATUS, HERD_NEW_STATUS
//   HERD_EXIT_CODE, HERD_EXIT_SIGNAL   ("" when not set)
//   HERD_REASON, HERD_LIMIT            ("" when none)
//   HERD_EVENT_AT                      when it happened (ISO 8601)
//   HERD_EVENT_JSON                    all of the above as one JSON object
//
// The committing process never waits for the command and never runs it
// under a lock: it starts `herd notify-hook`, which detaches at once (so
// the committer only reaps a process that has already exited), runs the
// command in a process group of its own with stdin from /dev/null and
// stdout and stderr on the committer's stderr (never on `herd serve`'s
// stdout), and waits on a pidfd until it exits or the timeout
// ($HERD_NOTIFY_TIMEOUT_SECONDS, default 30) passes, when the group is
// killed. A command that fails, times out or cannot start is logged on
// that stderr (a supervisor's is its log file); it is never fatal to
// anything.
#pragma once

#include <string>
#include <vector>

#include "registry/transitions.h"

namespace herd::agents {

inline constexpr int kDefaultNotifyTimeoutSeconds = 30;

// Makes this process run the hook for the transitions it commits
// (registry::SetTransitionObserver).
void InstallNotifyHook();

// Makes this process queue the transitions it commits, to start their
// hooks later with StartQueuedNotifyHooks. A supervisor does this: it stops
// every descendant when its agent ends, so its hooks start after that.
void QueueNotifyHooks();
int StartQueuedNotifyHooks();

// Starts the hook for each transition that has a command; returns how
// many were started.
int StartNotifyHooks(const std::vector<registry::AgentTransition>& transitions);

// `herd notify-hook --timeout S -- COMMAND`: detaches, runs COMMAND by
// /bin/sh -c with the inherited environment, enforces the timeout, logs a
// failure. Returns the exit code of the process that was started (0 once
// detached).
int RunNotifyHook(int timeout_seconds, const std::string& command);

// The hook's environment for `transition` ("KEY=value" entries).
std::vector<std::string> NotifyEnvironment(const registry::AgentTransition& transition);

// The timeout from $HERD_NOTIFY_TIMEOUT_SECONDS (whole seconds, at least
// 1), else kDefaultNotifyTimeoutSeconds.
int NotifyTimeoutSecondsFromEnvironment();

}  // namespace herd::agents
