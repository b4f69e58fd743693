// The herd command line: argument parsing and output for a person at a
// terminal (readable tables) or a script (--json on every command).
//
// The commands are one table (kCommands in commands.cc): each command's
// options come from its request's parameters (orchestrator/requests.h), and
// the parsed options become the JSON arguments an MCP client would send,
// checked by the same code, so the CLI and the MCP tools agree on every
// type, range, allowed value and default.
//
// Exit codes: 0 success; 1 refused or failed, including a value outside its
// range or allowed values (the message says why and what to do), and a
// `herd kill TASK --all` that left an agent's processes running; 2 usage
// error (an unknown command or option, a missing argument, a value of the
// wrong type, JSON that does not parse); 3 done but not recorded (herd kill
// stopped the agent, or the task's agents, but could not write the
// registry: the warning says what to do); 4 timed out (herd wait returned at
// its --timeout with agents still active: run it again to keep waiting).
// Every command works on the workspace from --workspace,
// $CLAUDE_ORCHESTRATOR_WORKSPACE, or ./.agent-workspace; tasks created for
// other project directories are found wherever they are.
#pragma once

#include <functional>
#include <string>

namespace herd::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotRecorded = 3;
inline constexpr int kExitTimedOut = 4;

// Runs `herd serve` on a workspace base; provided by the MCP layer.
using ServeFunction = std::function<int(const std::string& workspace_base)>;

// Parses argv, runs the command, returns the process exit code.
int Run(int argc, char** argv, const ServeFunction& serve);

}  // namespace herd::cli
