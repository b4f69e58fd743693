// herd dashboard: a live page of every task herd knows (on this machine,
// or in the PostgreSQL registry), served by the herd binary on 127.0.0.1.
//
// Routes (every one behind AccessGuard, access.h):
//   GET  /                 the page (index.html); /?token=T logs in
//   GET  /dashboard.js, /dashboard.css, /favicon.svg   its script, style and icon
//   GET  /events?task_id=&agent_id=&last_event_id=   Server-Sent Events, below
//   GET  /api/output?task_id=&agent_id=&before=|from=&max_bytes=
//                          a window of whole lines of the agent's log
//                          (Orchestrator::AgentOutputWindow), for paging back;
//                          of the registry's tail when the log is not on
//                          this machine (PostgreSQL)
//   GET  /api/doctor       herd doctor's report (health::Diagnose, no repair)
//   POST /api/kill         {task_id, agent_id, reason}: Orchestrator::Kill
//   POST /api/stop         {task_id, reason}: Orchestrator::StopTask
//   POST /api/send         {task_id, agent_id, message, interrupt}:
//                          Orchestrator::SendMessage (a follow-up: the agent's next turn)
// The POST bodies are the MCP tools' arguments, checked by the same request
// structs (KillRequest, StopTaskRequest, SendMessageRequest), so the page, the CLI and MCP
// accept and refuse the same things. Replies are JSON: the operation's
// result plus "success", or {"success": false, "error"} with a 4xx.
//
// The event stream. One per page; each event is one JSON line:
//   event: tasks   {"tasks": [...]} every task, with counts, usage, budget, limits
//   event: task    {"status": get_real_task_status, "timeline": newest entries}
//                  for task_id, when given
//   event: output  {"agent_id", "begin", "end", "file_size", "text"} for
//                  agent_id, when given: first the log's tail, then what it
//                  grows by; when the log is not on this machine (PostgreSQL,
//                  the agent ran elsewhere), the newest window of the tail
//                  the registry keeps (Registry::ReadOutputTail), whole,
//                  each time it changed
// Every event's id is the stream's cursor (EventCursor): fingerprints of
// the tasks and task payloads last sent and the output offset reached (or
// the fingerprint of the registry's tail sent). A browser reconnecting
// sends it back as Last-Event-ID (a page opening a new stream, as
// last_event_id in the query) and gets only what changed since, even from
// a restarted server (the cursor is derived from the registry, not from
// server memory). The stream blocks on a ChangeFeed
// (orchestrator/change_feed.h): every task's commits (inotify of the JSON
// workspace's files, or PostgreSQL's LISTEN) and the followed agent's log
// directory where it is on this machine (inotify: appends to the
// registry's tail are not commits, so that tail is read again on the
// commits). It sends a comment every kKeepAliveSeconds so a page that went
// away is noticed, and nothing else runs on a timer.
//
// Thread-safe: Handle runs on the server's connection threads concurrently;
// the Orchestrator is thread-safe and the rest is immutable.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

#include "dashboard/access.h"
#include "dashboard/http.h"
#include "orchestrator/orchestrator.h"

namespace herd::dashboard {

inline constexpr int kKeepAliveSeconds = 15;
// The timeline sent with a task: its newest entries.
inline constexpr size_t kTimelineEntries = 500;
// At most this many event streams at once (each holds a thread and an
// inotify instance, or under PostgreSQL a listening connection and, while
// it follows a local log, two more threads); the next is answered 503.
inline constexpr int kMaxStreams = 32;

// What a page has been sent, as the id of every event.
struct EventCursor {
  uint64_t tasks = 0;              // fingerprint of the last tasks event
  uint64_t task = 0;               // of the last task event
  std::optional<uint64_t> output;  // offset the output reached, if sent
  // Or, from the registry's tail: the fingerprint of the window sent.
  std::optional<uint64_t> registry_tail;
  std::string ToString() const;  // "t<hex>.s<hex>.o<dec>|o-|r<hex>"
  static std::optional<EventCursor> Parse(const std::string& text);
};

class Dashboard {
 public:
  // `orchestrator` must outlive this object.
  Dashboard(const Orchestrator& orchestrator, AccessGuard guard);

  const AccessGuard& guard() const { return guard_; }
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  HttpResponse Route(const HttpRequest& request) const;
  HttpResponse Events(const HttpRequest& request) const;
  HttpResponse Output(const HttpRequest& request) const;
  HttpResponse Doctor() const;
  HttpResponse Kill(const HttpRequest& request) const;
  HttpResponse Stop(const HttpRequest& request) const;
  HttpResponse Send(const HttpRequest& request) const;

  const Orchestrator& orchestrator_;
  const AccessGuard guard_;
};

struct DashboardOptions {
  int port = 0;               // 0: any free port
  bool open_browser = false;  // run xdg-open on the URL
};

// herd dashboard: serves until SIGINT or SIGTERM, printing the URL (with
// its token) to `out` first. Returns the exit code. The token is kept in
// herd's state directory ($XDG_STATE_HOME/herd/dashboard_token, 0600) and
// reused, so pages open before a restart carry on; a missing or malformed
// file gets a new random one.
int RunDashboard(const Orchestrator& orchestrator, const DashboardOptions& options,
                 std::ostream& out);

}  // namespace herd::dashboard
