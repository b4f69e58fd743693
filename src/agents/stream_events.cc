#include "agents/stream_events.h"

#include "util/text_file.h"

namespace herd::agents {

using nlohmann::json;

json ExtractResultEvent(const std::vector<std::string>& lines) {
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    if (line->find("\"result\"") == std::string::npos) continue;
    json event = json::parse(*line, nullptr, false);
    if (event.is_discarded() || !event.is_object() || event.value("type", "") != "result") continue;
    json figures = json::object();
    for (const char* key : {"total_cost_usd", "num_turns", "duration_ms", "duration_api_ms",
                            "usage", "is_error", "subtype", "session_id"}) {
      if (event.contains(key)) figures[key] = event[key];
    }
    return figures;
  }
  return nullptr;
}

json ReadResultEvent(const std::string& log_path) {
  // The result event is the last line; 256 KiB covers a long final answer.
  Result<Tail> tail = ReadTailLines(log_path, 50, 256 * 1024);
  if (!tail.ok()) return nullptr;
  return ExtractResultEvent(tail->lines);
}

}  // namespace herd::agents
