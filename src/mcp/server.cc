#include "mcp/server.h"

#include <iostream>

namespace herd::mcp {

int Serve(const std::string& workspace_base) {
  std::cerr << "herd: serve is not implemented yet\n";
  return 1;
}

}  // namespace herd::mcp
