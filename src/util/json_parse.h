// Parsing JSON that herd did not write: requests, registry files a person
// may have edited, agents' output lines.
//
// nlohmann's parser itself is iterative, but copying, comparing and
// serialising a value recurse once per level, so a deeply nested value
// (200,000 '[' fit in one line) overflows the stack later, wherever it is
// first copied. ParseJson refuses such text before any value exists: it
// stops at the first array or object nested deeper than `max_depth`, so the
// work and memory a refused text costs are bounded by the limit, not by its
// length.
//
// FindTopLevelScalar reads one member of a top-level object without parsing
// the rest, to answer a request whose text failed to parse (too deep, a
// number out of range) with its own id.
//
// Both functions are pure, never throw and are safe from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "util/status.h"

namespace herd {

// How deep herd lets JSON nest. Requests, agents' output lines and
// command-line JSON need far less than 64 levels; registry documents hold
// agents' data, so they get more room.
inline constexpr int kMaxMessageDepth = 64;
inline constexpr int kMaxDocumentDepth = 512;

// Why a text did not parse, for callers that answer each case differently.
enum class JsonParseFailure {
  kNone,
  kSyntax,            // not JSON, or not valid UTF-8
  kTooDeep,           // arrays/objects nested deeper than the limit
  kNumberOutOfRange,  // a number beyond the range of a double (1e400)
};

// Parses `text` as one JSON value whose arrays and objects nest at most
// `max_depth` levels ("[[1]]" has two). On failure returns InvalidArgument
// with a message naming the problem (and, for syntax errors, the byte), and
// sets `*failure` (when given) to the kind; on success `*failure` is kNone.
Result<nlohmann::json> ParseJson(std::string_view text, int max_depth,
                                 JsonParseFailure* failure = nullptr);

// The value of member `key` of the object that `text` holds at its top
// level, when that value is a string, number, boolean or null that parses
// on its own. Nothing else of `text` needs to be valid or shallow. Keys are
// compared as written (an escaped "\u0069d" is not "id"); of duplicate keys
// the last wins, as in ParseJson. nullopt when there is no such member.
std::optional<nlohmann::json> FindTopLevelScalar(std::string_view text, std::string_view key);

}  // namespace herd
