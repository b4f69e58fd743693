#include "agents/stream_events.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "util/json_parse.h"
#include "util/text_file.h"

namespace herd::agents {

using nlohmann::json;

namespace {

// Agents print what they like, so every field is read by type: a field of
// another type counts as absent instead of throwing in the supervisor.
long long Number(const json& object, const char* key) {
  if (!object.is_object()) return 0;
  auto found = object.find(key);
  if (found == object.end() || !found->is_number()) return 0;
  if (found->is_number_float()) {
    // Converting a double beyond long long's range is undefined.
    double value = found->get<double>();
    if (!(value > -9.2e18 && value < 9.2e18)) return 0;
    return static_cast<long long>(value);
  }
  if (found->is_number_unsigned() && found->get<unsigned long long>() > (1ULL << 62)) return 0;
  return found->get<long long>();
}

std::string String(const json& object, const char* key, const std::string& fallback = "") {
  if (!object.is_object()) return fallback;
  auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : fallback;
}

bool Bool(const json& object, const char* key) {
  if (!object.is_object()) return false;
  auto found = object.find(key);
  return found != object.end() && found->is_boolean() && found->get<bool>();
}

// What this run of Claude Code cost, from a result event's
// model_usage_since_last_result (2.1): {model: {costUSD, ...}, ...}. The
// event's total_cost_usd is the session's since its start, earlier runs of
// a resumed session included. nullopt when the event does not say.
std::optional<double> RunCost(const json& event) {
  auto since = event.find("model_usage_since_last_result");
  if (since == event.end() || !since->is_object()) return std::nullopt;
  double cost = 0;
  for (const json& model : *since) {
    if (!model.is_object()) continue;
    auto value = model.find("costUSD");
    if (value != model.end() && value->is_number()) cost += value->get<double>();
  }
  return cost;
}

json ParseEvent(std::string_view line) {
  size_t start = line.find_first_not_of(" \t\r");
  if (start == std::string_view::npos || line[start] != '{') return nullptr;
  // Agents print what they like: a line nested too deep to copy safely is
  // not an event.
  Result<json> event = ParseJson(line.substr(start), kMaxMessageDepth);
  if (!event.ok() || !event->is_object()) return nullptr;
  return std::move(event).value();
}

}  // namespace

UsageTracker::UsageTracker(std::string backend, const json& thread_usage_before)
    : backend_(std::move(backend)),
      input_tokens_before_(Number(thread_usage_before, "input_tokens")),
      cached_tokens_before_(Number(thread_usage_before, "cache_read_input_tokens")),
      output_tokens_before_(Number(thread_usage_before, "output_tokens")) {}

void UsageTracker::AddUsage(const json& usage) {
  input_tokens_ += Number(usage, "input_tokens");
  output_tokens_ += Number(usage, "output_tokens");
  cache_read_tokens_ +=
      Number(usage, "cache_read_input_tokens") + Number(usage, "cached_input_tokens");
  cache_creation_tokens_ += Number(usage, "cache_creation_input_tokens");
  ++messages_;
}

bool UsageTracker::Feed(std::string_view line) {
  json event = ParseEvent(line);
  if (event.is_null()) return false;
  std::string type = String(event, "type");
  if (backend_ == "codex") {
    if (type == "thread.started") {
      session_id_ = String(event, "thread_id", session_id_);
      return false;
    }
    if (type == "turn.completed" && event.contains("usage")) {
      // The thread's running total: this turn used what it added.
      const json& usage = event["usage"];
      input_tokens_ = std::max(0LL, Number(usage, "input_tokens") - input_tokens_before_);
      cache_read_tokens_ =
          std::max(0LL, Number(usage, "cached_input_tokens") - cached_tokens_before_);
      output_tokens_ = std::max(0LL, Number(usage, "output_tokens") - output_tokens_before_);
      ++messages_;
      return true;
    }
    if (type == "turn.failed" || type == "error") {
      std::string message = String(event, "message");
      if (event.contains("error") && event["error"].is_object()) {
        message = String(event["error"], "message", message);
      }
      result_ = {{"is_error", true}, {"subtype", type}, {"error", message}, {"usage", Usage()}};
      return true;
    }
    return false;
  }
  if (backend_ == "gemini") {
    if (type == "init") {
      session_id_ = String(event, "session_id", session_id_);
      return false;
    }
    if (type != "result") return false;
    json stats = event.contains("stats") ? event["stats"] : json::object();
    input_tokens_ = Number(stats, "input_tokens");
    output_tokens_ = Number(stats, "output_tokens");
    cache_read_tokens_ = Number(stats, "cached");
    reported_total_tokens_ = Number(stats, "total_tokens");
    messages_ = 1;
    result_ = {{"is_error", String(event, "status", "success") != "success"},
               {"subtype", String(event, "status")},
               {"duration_ms", Number(stats, "duration_ms")},
               {"num_turns", Number(stats, "tool_calls") + 1},
               {"usage", Usage()}};
    if (!session_id_.empty()) result_["session_id"] = session_id_;
    if (event.contains("error")) {
      // {"type":"FatalAuthenticationError","message":"..."}
      const json& error = event["error"];
      result_["error"] = error.is_string() ? error.get<std::string>() : String(error, "message");
    }
    return true;
  }
  // claude and cursor-agent share Claude Code's stream-json shape.
  if (type == "system" || type == "result") session_id_ = String(event, "session_id", session_id_);
  if (type == "assistant" && event.contains("message") && event["message"].is_object()) {
    const json& message = event["message"];
    if (!message.contains("usage")) return false;
    std::string id = String(message, "id");
    if (!id.empty()) {
      if (std::find(seen_message_ids_.begin(), seen_message_ids_.end(), id) !=
          seen_message_ids_.end()) {
        return false;  // another content block of a message already counted
      }
      seen_message_ids_.push_back(id);
    }
    AddUsage(message["usage"]);
    return true;
  }
  if (type == "result") {
    result_ = json::object();
    for (const char* key :
         {"total_cost_usd", "num_turns", "duration_ms", "duration_api_ms", "usage", "is_error",
          "subtype", "session_id", "terminal_reason", "api_error_status"}) {
      if (event.contains(key) && !event[key].is_null()) result_[key] = event[key];
    }
    if (Bool(event, "is_error") && event.contains("result") && event["result"].is_string()) {
      result_["error"] = event["result"].get<std::string>().substr(0, 500);
    }
    std::optional<double> run_cost = RunCost(event);
    if (run_cost && result_.contains("total_cost_usd") && result_["total_cost_usd"].is_number() &&
        std::fabs(result_["total_cost_usd"].get<double>() - *run_cost) > 1e-9) {
      result_["session_total_cost_usd"] = result_["total_cost_usd"];
      result_["total_cost_usd"] = *run_cost;
    }
    // The result's usage is the run's own total; the assistant lines' may
    // be a message's first figures only.
    if (event.contains("usage") && event["usage"].is_object()) {
      const json& usage = event["usage"];
      input_tokens_ = Number(usage, "input_tokens");
      output_tokens_ = Number(usage, "output_tokens");
      cache_read_tokens_ = Number(usage, "cache_read_input_tokens");
      cache_creation_tokens_ = Number(usage, "cache_creation_input_tokens");
    }
    return true;
  }
  return false;
}

json UsageTracker::Usage() const {
  return {{"input_tokens", input_tokens_},
          {"output_tokens", output_tokens_},
          {"cache_read_input_tokens", cache_read_tokens_},
          {"cache_creation_input_tokens", cache_creation_tokens_},
          {"total_tokens", TotalTokens()},
          {"messages", messages_}};
}

std::optional<std::string> UsageTracker::ReportedFailure() const {
  if (!result_.is_object() || !Bool(result_, "is_error")) return std::nullopt;
  auto error = result_.find("error");
  return error != result_.end() && error->is_string() ? error->get<std::string>() : "";
}

long long UsageTracker::TotalTokens() const {
  // Codex's cached_input_tokens are part of its input_tokens; Anthropic's
  // cache reads and writes are counted apart from input_tokens.
  if (backend_ == "codex") return input_tokens_ + output_tokens_;
  // Gemini CLI's total also counts thoughts and tool-use prompts; its
  // input_tokens include the cached ones.
  if (backend_ == "gemini") return reported_total_tokens_;
  return input_tokens_ + output_tokens_ + cache_read_tokens_ + cache_creation_tokens_;
}

json ExtractResultEvent(const std::vector<std::string>& lines, const std::string& backend) {
  for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
    UsageTracker tracker(backend);
    tracker.Feed(*line);
    if (!tracker.Result().is_null()) return tracker.Result();
  }
  return nullptr;
}

json ReadResultEvent(const std::string& log_path, const std::string& backend) {
  // The result event is the last line; 256 KiB covers a long final answer.
  Result<Tail> tail = ReadTailLines(log_path, 50, 256 * 1024);
  if (!tail.ok()) return nullptr;
  return ExtractResultEvent(tail->lines, backend);
}

}  // namespace herd::agents
