// herd: starts, tracks, limits, reports on and stops headless coding agents.
//
// Entry point. Before anything else it routes logging to stderr: stdout is
// reserved for command output and, under `herd serve`, MCP messages only.
#include <signal.h>

#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("herd"));
  spdlog::set_pattern("herd: %l: %v");
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"herd: run many headless coding agents at once, within limits, and stop them cleanly"};
  app.set_version_flag("--version", std::string("herd ") + HERD_VERSION);
  app.require_subcommand(0);
  CLI11_PARSE(app, argc, argv);
  if (app.get_subcommands().empty()) {
    std::cout << app.help();
  }
  return 0;
}
