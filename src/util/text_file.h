// Line-oriented file helpers for append-only logs (JSONL journals, agent
// output).
//
// AppendLine writes one whole line with a single write(2) on an O_APPEND
// descriptor, so lines from concurrent processes never interleave.
// ReadTailLines reads backwards from the end in blocks: its cost is the
// size of the tail, not of the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd {

// Appends `line` plus '\n' to `path` (created 0644 if missing).
Status AppendLine(const std::string& path, const std::string& line);

struct Tail {
  std::vector<std::string> lines;  // oldest first, without '\n'
  uint64_t file_size = 0;
  bool truncated = false;  // more lines (or bytes) exist before the first one
};

// The last `max_lines` lines of `path`, reading at most `max_bytes` from
// the end (a longer line is cut at its start). A missing file is NotFound.
Result<Tail> ReadTailLines(const std::string& path, size_t max_lines, size_t max_bytes);

// Every line of `path`; a missing file yields no lines.
Result<std::vector<std::string>> ReadAllLines(const std::string& path);

}  // namespace herd
