#include "util/json_parse.h"

#include <exception>
#include <string>

#include "util/utf8.h"

namespace herd {
namespace {

using nlohmann::json;

// Thrown by the depth check to stop nlohmann's parser at once (a callback
// returning false would only drop the value and read on through the text).
struct TooDeep {};

constexpr size_t kMaxDetailBytes = 200;
constexpr size_t kMaxNumberBytes = 40;

std::string Capped(std::string_view text, size_t limit) {
  if (text.size() <= limit) return std::string(text);
  return std::string(text.substr(0, limit)) + "...";
}

// nlohmann's message without its "[json.exception.parse_error.101] "
// prefix, capped: its "last read: '...'" may quote a megabyte of string.
std::string Detail(const char* what) {
  std::string_view text(what);
  if (!text.empty() && text.front() == '[') {
    size_t end = text.find("] ");
    if (end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return ShowableUtf8(Capped(text, kMaxDetailBytes));
}

// The number quoted in "number overflow parsing '1e400'".
std::string OverflowingNumber(const char* what) {
  std::string_view text(what);
  size_t open = text.find('\'');
  size_t close = text.rfind('\'');
  if (open == std::string_view::npos || close <= open) return "";
  return Capped(text.substr(open + 1, close - open - 1), kMaxNumberBytes);
}

Status Fail(JsonParseFailure kind, std::string message, JsonParseFailure* failure) {
  if (failure != nullptr) *failure = kind;
  return Status::InvalidArgument(std::move(message));
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

size_t SkipSpace(std::string_view text, size_t at) {
  while (at < text.size() && IsSpace(text[at])) ++at;
  return at;
}

// `at` is on an opening quote; returns the index just past the closing one,
// or npos for an unterminated string.
size_t EndOfString(std::string_view text, size_t at) {
  for (size_t i = at + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// The end of the scalar that starts at `at` (a string, or the characters a
// number or literal can contain); `at` itself for anything else.
size_t EndOfScalar(std::string_view text, size_t at) {
  if (at < text.size() && text[at] == '"') return EndOfString(text, at);
  size_t end = at;
  while (end < text.size()) {
    char c = text[end];
    bool scalar_char = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       c == '+' || c == '-' || c == '.';
    if (!scalar_char) break;
    ++end;
  }
  return end;
}

}  // namespace

Result<json> ParseJson(std::string_view text, int max_depth, JsonParseFailure* failure) {
  if (failure != nullptr) *failure = JsonParseFailure::kNone;
  // `depth` is the number of arrays and objects around the one starting.
  json::parser_callback_t limit_depth = [max_depth](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= max_depth) {
      throw TooDeep();
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), limit_depth, /*allow_exceptions=*/true);
  } catch (const TooDeep&) {
    return Fail(
        JsonParseFailure::kTooDeep,
        "arrays and objects are nested deeper than " + std::to_string(max_depth) + " levels",
        failure);
  } catch (const json::out_of_range& error) {
    if (error.id == 406) {
      return Fail(JsonParseFailure::kNumberOutOfRange,
                  "a number is out of the range of a double (+-1.8e308): " +
                      OverflowingNumber(error.what()),
                  failure);
    }
    return Fail(JsonParseFailure::kSyntax, Detail(error.what()), failure);
  } catch (const std::exception& error) {  // json::parse_error, or no memory for the value
    return Fail(JsonParseFailure::kSyntax, Detail(error.what()), failure);
  }
}

std::optional<json> FindTopLevelScalar(std::string_view text, std::string_view key) {
  size_t at = SkipSpace(text, 0);
  if (at >= text.size() || text[at] != '{') return std::nullopt;
  std::optional<json> found;
  int depth = 0;
  bool expect_key = false;  // the next string at depth 1 is a member name
  while (at < text.size()) {
    char c = text[at];
    if (c == '"') {
      size_t end = EndOfString(text, at);
      if (end == std::string_view::npos) break;
      bool is_key = depth == 1 && expect_key;
      expect_key = false;
      if (is_key && text.substr(at + 1, end - at - 2) == key) {
        size_t colon = SkipSpace(text, end);
        if (colon >= text.size() || text[colon] != ':') break;
        size_t value_start = SkipSpace(text, colon + 1);
        size_t value_end = EndOfScalar(text, value_start);
        found.reset();
        if (value_end != std::string_view::npos && value_end > value_start) {
          std::string_view value_text = text.substr(value_start, value_end - value_start);
          json value = json::parse(value_text.begin(), value_text.end(), nullptr,
                                   /*allow_exceptions=*/false);
          if (!value.is_discarded()) found = std::move(value);
        }
        end = colon + 1;  // a container value is walked like any other
      }
      at = end;
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
      if (depth == 1) expect_key = true;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) break;  // the end of the top-level object
    } else if (c == ',' && depth == 1) {
      expect_key = true;
    }
    ++at;
  }
  return found;
}

}  // namespace herd
