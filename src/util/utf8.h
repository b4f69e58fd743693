// UTF-8 helpers for text herd shortens before showing it.
#pragma once

#include <cstddef>
#include <string>

namespace herd {

// The longest prefix of `text` of at most `limit` bytes that does not split
// a multi-byte UTF-8 sequence (`text` itself if it fits).
std::string Utf8Prefix(const std::string& text, size_t limit);

}  // namespace herd
