// Reading an agent's stream-json output (Claude Code, cursor-agent, ...).
//
// The CLIs print one JSON event per line; the last `result` event carries
// the run's cost, token usage, turns and duration. Lines that are not JSON
// (a crash trace, plain text) are skipped, never fatal.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace herd::agents {

// The figures of the last `{"type":"result",...}` line in `lines`:
// {total_cost_usd, num_turns, duration_ms, usage, is_error, subtype}, or
// null if there is none.
nlohmann::json ExtractResultEvent(const std::vector<std::string>& lines);

// Reads the end of `log_path` and extracts its result event.
nlohmann::json ReadResultEvent(const std::string& log_path);

}  // namespace herd::agents
