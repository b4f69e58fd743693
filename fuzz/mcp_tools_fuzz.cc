// Fuzzes the MCP tools' argument parsing and handlers (mcp/tools.h). Input:
// a tools/call "params" object, {"name": ..., "arguments": ...}. A call with
// arguments of any shape must come back as a result or an isError result,
// never a crash.
//
// The calls run on a workspace in the fuzzer's own directory holding one
// task and its ended agent "fuzz-agent"; "TASK-FUZZ" in an input names the
// task, so the seeds reach past the task lookup. Deploys never name it (any
// task id they give does not exist), so nothing is ever started, and a
// `client_cwd` is replaced by a directory of the fuzzer's own. Calls get a
// stop signal already stopped, so a wait_for_agents returns at once.
#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "mcp/tools.h"
#include "util/json_parse.h"

namespace {

using nlohmann::json;

struct Fixture {
  Fixture()
      : workspace(herd::fuzz::FuzzHome() + "/workspace"),
        project(herd::fuzz::FuzzHome() + "/project"),
        orchestrator(herd::registry::Workspace(workspace), herd::registry::RegistryStores()),
        tools(orchestrator) {
    mkdir(project.c_str(), 0700);
    herd::CreateTaskRequest request;
    request.description = "Fuzz the tools of herd serve";
    request.max_agents = 1;
    herd::Result<json> task = orchestrator.CreateTask(request);
    if (!task.ok()) std::abort();
    task_id = task->value("task_id", "");
    // One agent that has ended, so progress, findings, output and kill
    // calls that name it reach their handlers' later checks.
    herd::Status added = orchestrator.stores().tasks.Update(
        herd::registry::Workspace(workspace).TaskRegistryPath(task_id),
        [](json& document) -> herd::Result<herd::store::Decision> {
          document["agents"].push_back({{"id", "fuzz-agent"},
                                        {"type", "fuzz"},
                                        {"backend", "command"},
                                        {"parent", "orchestrator"},
                                        {"depth", 1},
                                        {"status", "completed"},
                                        {"phase", "exited"},
                                        {"progress", 100},
                                        {"exit_code", 0}});
          return herd::store::Decision::kCommit;
        });
    if (!added.ok()) std::abort();
    herd::Result<std::shared_ptr<herd::StopSignal>> made = herd::StopSignal::Create();
    if (!made.ok()) std::abort();
    stopped = std::move(made).value();
    stopped->Stop();
  }

  std::string workspace;
  std::string project;
  herd::Orchestrator orchestrator;
  herd::mcp::ToolSet tools;
  std::string task_id;
  std::shared_ptr<herd::StopSignal> stopped;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();
  herd::Result<json> parsed = herd::ParseJson(
      std::string_view(reinterpret_cast<const char*>(data), size), herd::kMaxMessageDepth);
  if (!parsed.ok() || !parsed->is_object()) return 0;
  const json& params = *parsed;
  if (!params.contains("name") || !params["name"].is_string()) return 0;
  std::string name = params["name"];
  if (!fixture->tools.Has(name)) return 0;
  json arguments = params.value("arguments", json::object());
  if (arguments.is_object()) {
    bool deploys = name == "deploy_headless_agent" || name == "spawn_child_agent";
    if (!deploys && arguments.contains("task_id") && arguments["task_id"] == "TASK-FUZZ") {
      arguments["task_id"] = fixture->task_id;
    }
    if (arguments.contains("client_cwd") && arguments["client_cwd"].is_string()) {
      arguments["client_cwd"] = fixture->project;
    }
  }
  herd::mcp::CallContext context;
  context.stop = fixture->stopped.get();
  herd::mcp::ToolOutcome outcome = fixture->tools.Call(name, arguments, context);
  (void)outcome.structured.dump(-1, ' ', false, json::error_handler_t::replace);
  return 0;
}
