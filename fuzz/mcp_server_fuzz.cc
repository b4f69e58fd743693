// Fuzzes `herd serve`'s JSON-RPC framing and dispatch (mcp/server.h): the
// input is what a client writes to the server's stdin, lines, batches and
// all. Every line must get an answer or be ignored as the protocol says;
// none may crash the server or hang it.
//
// Tool calls run for real on a workspace in the fuzzer's own directory.
// Inputs naming `client_cwd`, or escaping an ASCII character (which could
// spell it), are skipped: a task created for a client directory would write
// `.agent-workspace/` into whatever directory the input names. Deploys
// cannot start anything: they need a task id, and every task id the
// fuzzer's tasks get is random.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_support.h"
#include "mcp/server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string workspace = herd::fuzz::FuzzHome() + "/workspace";
  static const int output_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.find("client_cwd") != std::string_view::npos ||
      input.find("\\u00") != std::string_view::npos) {
    return 0;
  }
  int input_fd = memfd_create("herd-fuzz-stdin", MFD_CLOEXEC);
  if (input_fd < 0) std::abort();
  size_t written = 0;
  while (written < size) {
    ssize_t result = write(input_fd, data + written, size - written);
    if (result <= 0) std::abort();
    written += static_cast<size_t>(result);
  }
  lseek(input_fd, 0, SEEK_SET);
  herd::mcp::ServeOn(workspace, input_fd, output_fd);
  close(input_fd);
  return 0;
}
