// `herd serve`: the MCP server over stdio (placeholder until the MCP layer lands).
#pragma once

#include <string>

namespace herd::mcp {

// Serves MCP on stdin/stdout for `workspace_base`; returns the exit code.
int Serve(const std::string& workspace_base);

}  // namespace herd::mcp
