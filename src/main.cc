// herd: starts, tracks, limits, reports on and stops headless coding agents.
//
// Entry point. Before anything else it routes logging to stderr: stdout is
// reserved for command output and, under `herd serve`, MCP messages only.
// Then it installs the notification hook (agents/notify_hook.h).
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "agents/notify_hook.h"
#include "cli/commands.h"
#include "mcp/server.h"

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("herd"));
  spdlog::set_pattern("herd: %l: %v");
  spdlog::set_level(spdlog::level::info);
  signal(SIGPIPE, SIG_IGN);
  // Every agent end this process commits runs the person's hook, if any.
  herd::agents::InstallNotifyHook();
  return herd::cli::Run(argc, argv, herd::mcp::Serve);
}
