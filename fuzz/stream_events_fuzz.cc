// Fuzzes the parser of agents' JSON event streams (agents/stream_events.h).
// Input: one byte choosing the backend, then the agent's output, one event
// per line. Whatever an agent prints must be skipped or counted, never
// crash the supervisor reading it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agents/stream_events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const char* const kBackends[] = {"claude", "cursor-agent", "codex", "gemini", "command"};
  if (size == 0) return 0;
  std::string backend = kBackends[data[0] % 5];
  std::string_view output(reinterpret_cast<const char*>(data + 1), size - 1);

  herd::agents::UsageTracker tracker(backend);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string_view::npos) end = output.size();
    std::string_view line = output.substr(start, end - start);
    tracker.Feed(line);
    lines.emplace_back(line);
    start = end + 1;
  }
  (void)tracker.Usage().dump();
  (void)tracker.Result().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  (void)tracker.TotalTokens();
  (void)herd::agents::ExtractResultEvent(lines, backend)
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
