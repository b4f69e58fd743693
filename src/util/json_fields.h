// Typed reads of JSON object fields that never throw: a missing field, a
// field of another type, or a value that is not an object gives the
// fallback. For documents herd did not necessarily write itself (registry
// files a person may have edited, agents' reports).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace herd {

std::string StringOr(const nlohmann::json& object, const char* key,
                     const std::string& fallback = "");
int IntOr(const nlohmann::json& object, const char* key, int fallback);
double NumberOr(const nlohmann::json& object, const char* key, double fallback);

// `text`, or null when it is empty (optional strings in herd's documents).
nlohmann::json NullIfEmpty(const std::string& text);

}  // namespace herd
