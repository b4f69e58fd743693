// herd's MCP tools and resources: definitions and handlers.
//
// The tools keep the reference orchestrator's names, parameters and result
// keys (create_real_task, deploy_headless_agent, get_real_task_status,
// get_agent_output, kill_real_agent, update_agent_progress,
// report_agent_finding, spawn_child_agent), plus herd's get_health_status
// and wait_for_agents. They are one table (kTools in
// tools.cc): name, title, description, hints, the request whose parameters
// (orchestrator/requests.h) make the inputSchema and check the arguments,
// the output schema, and a short handler that fills the request, calls the
// Orchestrator, and returns the result object with "success": true, or
// {"success": false, "error": "..."} for a handled failure, which the
// server sends as a tool result with isError (so a model can correct
// itself), never as a protocol error. Replies that grow with use
// are kept within the clients' output limits (mcp/client_limits.h).
// Thread-safe.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "orchestrator/orchestrator.h"
#include "util/stop_signal.h"

namespace herd::mcp {

using nlohmann::json;

struct ToolOutcome {
  json structured;        // the result object, always with "success"
  bool is_error = false;  // a handled failure
};

// Called by long handlers to report progress (message only; the server
// numbers the notifications).
using ProgressReporter = std::function<void(const std::string& message)>;

// What a handler gets from the call beyond its arguments.
struct CallContext {
  // Empty when the call carried no progress token: nobody listens.
  ProgressReporter progress;
  // Stopped when the client cancels the call (notifications/cancelled) or
  // the server shuts down; blocking handlers return early on it. May be
  // null (a call inside a batch).
  const StopSignal* stop = nullptr;

  void Progress(const std::string& message) const {
    if (progress) progress(message);
  }
};

// A task resource's uri split: task://{task_id}/status or
// task://{task_id}/progress-timeline. The id is as written, not validated.
struct TaskResourceUri {
  enum class View { kStatus, kProgressTimeline };
  std::string task_id;
  View view = View::kStatus;
};

// Nullopt for any other uri (tasks://list included).
std::optional<TaskResourceUri> ParseTaskResourceUri(const std::string& uri);

class ToolSet {
 public:
  explicit ToolSet(const Orchestrator& orchestrator);

  // The tools/list array: name, title, description, inputSchema,
  // outputSchema, annotations.
  const json& Definitions() const { return definitions_; }
  bool Has(const std::string& name) const;
  // True for a tool that may block for a long time (it waits for agents):
  // the server runs it outside its worker pool.
  bool Blocks(const std::string& name) const;

  // Runs tool `name` (which must exist) with `arguments`.
  ToolOutcome Call(const std::string& name, const json& arguments,
                   const CallContext& context) const;

  // resources/list and resources/templates/list results.
  json ListResources() const;
  json ListResourceTemplates() const;
  // The contents of `uri`, or NotFound for an unknown resource.
  Result<json> ReadResource(const std::string& uri) const;

 private:
  const Orchestrator& orchestrator_;
  json definitions_;
};

}  // namespace herd::mcp
