// The per-agent supervisor: `herd supervise`, one small process per agent.
//
// The launcher starts it; it detaches (fork, setsid) so the agent outlives
// whoever deployed it, becomes a child subreaper so every descendant of the
// agent stays its child, and starts the agent in its own process group with
// an argv vector, the prompt file on stdin, stdout and stderr appended to
// the agent's stream log, and no other inherited descriptor. The agent gets
// PR_SET_PDEATHSIG=SIGKILL: if the supervisor is killed, the agent dies
// with it instead of running on unrecorded (`herd status` then reports the
// entry as lost).
//
// Handshake: the launcher passes the write end of a close-on-exec pipe as
// descriptor `handshake_fd`. The supervisor writes exactly one line, then
// closes it: "started <pid> <start_time>" once the agent has exec'd and its
// identity is committed to the registry, or "failed <reason>". EOF without
// a line means the supervisor died. No sleeping on either side.
//
// On the agent's exit it records, in one transaction, the exit code or
// signal, the end time and the stream-json result figures; an agent still
// active becomes completed (exit 0) or error. Then it stops leftover
// descendants (SIGTERM, a short grace, SIGKILL), reaps them and exits.
//
// Turns (registry/turns.h): when that transaction began the next turn with
// a queued follow-up message, the supervisor runs it next, the same way
// (backend.h PlanFollowUpTurn), and so on until no message waits. SIGUSR1
// queued with a turn number (herd's interrupt) stops that turn, if it is
// still the one running, with the kill grace; its end is recorded as
// terminated by the interrupt and the queued message runs next. Started
// with a later turn (SupervisorArgs::turn), it runs that turn first.
//
// A stop that could not be recorded when it happened still reads as a stop:
// if the entry is active when the exit is recorded although a stop was
// asked for (a timeout whose record failed, herd's marked SIGTERM from a
// kill that could not write the registry, or any other SIGTERM, SIGINT or
// SIGHUP), the agent becomes terminated with a reason that says so
// ("stopped by herd kill; the reason could not be recorded ...").
//
// When the exit cannot be recorded because the registry cannot be written
// (an I/O error such as ENOSPC, or a lock timeout), the supervisor first
// stops the leftovers, so nothing of the agent runs on unrecorded, then
// retries with exponential backoff (kFirstExitRecordRetry doubling up to
// kLongestExitRecordRetry; another stop request retries at once) for
// kExitRecordPatience. There is no event for "space was freed" to wait
// for, so it waits in poll() on its wake pipe with the backoff as timeout.
// Then it gives up, saying so in its log; `herd doctor --repair` marks the
// entry it leaves active error "process lost".
//
// Lifeline (a node's supervisors: node/node_daemon.h): the read end of a
// pipe whose write end only the node's daemon holds. Its EOF (the daemon
// ended, was killed, or gave up a lease it could not renew) stops the
// agent at once with kLifelineStopGrace, recorded as terminated because
// its node's daemon is gone, so no agent outlives the node that answers
// for it.
#pragma once

#include <chrono>
#include <string>

namespace herd::agents {

inline constexpr std::chrono::milliseconds kFirstExitRecordRetry{100};
inline constexpr std::chrono::seconds kLongestExitRecordRetry{5};
inline constexpr std::chrono::minutes kExitRecordPatience{10};
inline constexpr std::chrono::seconds kLifelineStopGrace{2};

struct SupervisorArgs {
  std::string workspace_base;
  std::string task_id;
  std::string agent_id;
  int handshake_fd = 3;
  // The turn to run: 1 (the deploy), or a later one a follow-up message
  // began (registry/turns.h), which must be waiting to start.
  int turn = 1;
  // The node's lifeline (above), or -1.
  int lifeline_fd = -1;
};

// Runs the supervisor; returns the exit code for the intermediate process
// (the detached supervisor itself never returns to the caller).
int RunSupervisor(const SupervisorArgs& args);

}  // namespace herd::agents
