// `herd serve`: the Model Context Protocol over stdio.
//
// Newline-delimited JSON-RPC 2.0 on stdin/stdout, protocol versions
// 2025-11-25, 2025-06-18, 2025-03-26 (with batches) and 2024-11-05. A reader
// thread parses lines and answers fast methods inline; tools/call runs on a
// small worker pool so pings and cancellations are handled while tools run,
// and a call that blocks (wait_for_agents) on a thread of its own, so waits
// never hold up other calls. notifications/cancelled stops a call's wait at
// once and its reply is never sent; progress notifications go out only for
// a call that carried _meta.progressToken. resources/subscribe on a task's
// status or progress timeline makes one watcher thread per session send
// notifications/resources/updated after each change it sees
// (mcp/subscriptions.h); subscriptions end at stdin EOF. One writer mutex
// writes whole lines, whichever thread sends.
//
// stdout carries MCP messages only, always: Serve moves the protocol stream
// to a private descriptor and points fd 1 at stderr, so a stray write from
// anywhere in the process cannot corrupt the protocol, and every child is
// started with its own stdout (agents/). Bad input (invalid JSON or UTF-8,
// huge lines, unknown methods) gets an error reply and the server keeps
// serving; a message nested deeper than 64 levels, or holding a number
// beyond a double's range, is refused before any of it is copied, with an
// error carrying its id when its top level names one. On stdin EOF every
// request already read is answered before exit; a wait still blocking then
// returns at once with what it has seen (stopped: true).
#pragma once

#include <string>

namespace herd::mcp {

// The protocol versions herd speaks, newest first.
extern const char* const kProtocolVersions[4];

// Serves MCP on stdin/stdout for `workspace_base`; returns the exit code.
int Serve(const std::string& workspace_base);

// Serves on the given descriptors (for tests and benchmarks); returns when
// `input_fd` reaches EOF and every response has been written.
int ServeOn(const std::string& workspace_base, int input_fd, int output_fd);

}  // namespace herd::mcp
