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
#pragma once

#include <string>

namespace herd::agents {

struct SupervisorArgs {
  std::string workspace_base;
  std::string task_id;
  std::string agent_id;
  int handshake_fd = 3;
};

// Runs the supervisor; returns the exit code for the intermediate process
// (the detached supervisor itself never returns to the caller).
int RunSupervisor(const SupervisorArgs& args);

}  // namespace herd::agents
