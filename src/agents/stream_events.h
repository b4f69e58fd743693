// Reading agents' JSON event streams: usage, cost and the final result.
//
// Agent CLIs print one JSON event per line. UsageTracker is fed every line
// the agent prints and keeps, per backend:
//   claude, cursor-agent  `assistant` events carry message.usage; one API
//                         message may span several lines with the same
//                         message.id and the same usage, so usage is
//                         summed per distinct message id. The final `result`
//                         event has total_cost_usd, num_turns, duration_ms,
//                         usage and is_error; its usage replaces the running
//                         sum (Claude Code 2.1 prints each assistant line
//                         with the message's first usage figures, output
//                         tokens 1, before the answer has streamed).
//                         Claude Code 2.1's total_cost_usd is the session's
//                         (a resumed session's includes its earlier runs);
//                         the run's own is the sum of its
//                         model_usage_since_last_result costUSD, which is
//                         then recorded as total_cost_usd, the CLI's figure
//                         as session_total_cost_usd. terminal_reason and
//                         api_error_status (2.1) are kept when present.
//   codex                 `thread.started` names the session (thread_id);
//                         `turn.completed` carries usage {input_tokens,
//                         cached_input_tokens, cache_write_input_tokens,
//                         output_tokens, reasoning_output_tokens}: the
//                         THREAD's running total (Codex CLI 0.171.0: a
//                         resumed thread's counts its earlier turns too), so
//                         the tracker is told what the earlier turns used and
//                         keeps the difference; `turn.failed` / `error`
//                         events mark failure.
//   gemini                `init` names the session (session_id); the final
//                         `result` event has stats {total_tokens,
//                         input_tokens (cached ones included), output_tokens,
//                         cached, input, duration_ms, tool_calls, models}
//                         summed over the run's API calls, status
//                         success|error and, on error, error {type, message}.
// Lines that are not JSON (a crash trace, plain text) are skipped.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd::agents {

class UsageTracker {
 public:
  // `thread_usage_before`: for codex, the usage (in Usage()'s keys) of the
  // turns before this one of the same thread, which its running totals
  // include; null for a first turn.
  explicit UsageTracker(std::string backend, const nlohmann::json& thread_usage_before = nullptr);

  // Feeds one output line; returns true if the usage or result changed.
  bool Feed(std::string_view line);

  // {input_tokens, output_tokens, cache_read_input_tokens,
  //  cache_creation_input_tokens, total_tokens, messages}.
  nlohmann::json Usage() const;
  // The final result figures, or null: {total_cost_usd, num_turns,
  // duration_ms, usage, is_error, subtype, error?, session_total_cost_usd?,
  // terminal_reason?, api_error_status?}.
  const nlohmann::json& Result() const { return result_; }
  long long TotalTokens() const;
  // When the agent CLI's result says it failed: why ("" if it gave no
  // detail); nullopt when it did not fail or gave no result.
  std::optional<std::string> ReportedFailure() const;
  // The session the CLI reported (claude's and cursor-agent's session_id,
  // codex's thread.started thread_id, gemini's init session_id), or "".
  const std::string& SessionId() const { return session_id_; }

 private:
  void AddUsage(const nlohmann::json& usage);

  std::string backend_;
  long long input_tokens_ = 0;
  long long output_tokens_ = 0;
  long long cache_read_tokens_ = 0;
  long long cache_creation_tokens_ = 0;
  long long messages_ = 0;
  long long reported_total_tokens_ = 0;  // gemini: stats.total_tokens
  std::vector<std::string> seen_message_ids_;
  long long input_tokens_before_ = 0;  // codex: the thread's before this turn
  long long cached_tokens_before_ = 0;
  long long output_tokens_before_ = 0;
  nlohmann::json result_ = nullptr;
  std::string session_id_;
};

// The figures of the last result event in `lines` for `backend`, or null.
nlohmann::json ExtractResultEvent(const std::vector<std::string>& lines,
                                  const std::string& backend = "claude");

// Reads the end of `log_path` and extracts its result event.
nlohmann::json ReadResultEvent(const std::string& log_path, const std::string& backend = "claude");

}  // namespace herd::agents
