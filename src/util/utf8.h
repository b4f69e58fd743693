// UTF-8 helpers for text herd shortens before showing it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace herd {

// The longest prefix of `text` of at most `limit` bytes that does not split
// a multi-byte UTF-8 sequence (`text` itself if it fits).
std::string Utf8Prefix(const std::string& text, size_t limit);

// `text` with every byte that is not part of valid UTF-8, and every control
// character but tab, written as \xNN: safe to put in a message, a terminal
// or a JSON string (bytes quoted from a damaged file).
std::string ShowableUtf8(std::string_view text);

}  // namespace herd
