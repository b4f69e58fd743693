// Line-oriented file helpers for append-only logs (JSONL journals, agent
// output).
//
// AppendLine writes one whole line with a single write(2) on an O_APPEND
// descriptor, so lines from concurrent processes never interleave.
// ReadTailLines reads backwards from the end in blocks: its cost is the
// size of the tail, not of the file. None of them follows a symbolic link
// at `path` (O_NOFOLLOW): the error then says it is a link.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd {

// Appends `line` plus '\n' to `path` (created 0600 if missing).
Status AppendLine(const std::string& path, const std::string& line);

// Appends `line` plus '\n' to a journal whose committed length is
// `committed_bytes`, for a caller that holds the lock of the document that
// records that length (the task registry, for agents' journals), so only
// one appender runs at a time. Anything beyond `committed_bytes` (the line
// of a transaction that never committed) is cut off first; `nullopt` means
// "the file as found is committed" (journals made before herd recorded
// their length). The line is flushed (fdatasync) before this returns, so a
// length recorded afterwards never points past what the disk holds. A failed
// write or flush cuts the file back to where it was: either the whole line
// is there or none of it. Returns the journal's new length.
Result<uint64_t> AppendJournalLine(const std::string& path, std::optional<uint64_t> committed_bytes,
                                   const std::string& line);

// Cuts the journal at `path` back to `committed_bytes` if it is longer (a
// missing file is fine). For the same lock holder as AppendJournalLine.
Status CutJournal(const std::string& path, uint64_t committed_bytes);

struct Tail {
  std::vector<std::string> lines;  // oldest first, without '\n'
  uint64_t file_size = 0;
  bool truncated = false;  // more lines (or bytes) exist before the first one
};

// The last `max_lines` lines of `path`, reading at most `max_bytes` from
// the end (a longer line is cut at its start). A missing file is NotFound.
Result<Tail> ReadTailLines(const std::string& path, size_t max_lines, size_t max_bytes);

// A run of whole lines of a file that may be growing, at a known place, so a
// reader can page back from the end of a large log or follow it forward.
struct LineWindow {
  uint64_t begin = 0;      // offset of its first byte, a line start
  uint64_t end = 0;        // offset just after its last '\n'
  uint64_t file_size = 0;  // as seen by this read
  std::string text;        // the bytes [begin, end)
};

// At most `max_bytes` of whole lines ending at `end` (clamped to the last
// '\n' before it, and to the file's size; UINT64_MAX: the file's end). A
// line longer than `max_bytes` comes cut at its start. A missing file is
// NotFound.
Result<LineWindow> ReadLinesBefore(const std::string& path, uint64_t end, size_t max_bytes);

// At most `max_bytes` of whole lines from `begin` on (a partial last line,
// still being written, is left for the next read; a line longer than
// `max_bytes` comes cut). `begin` past the end gives an empty window there.
Result<LineWindow> ReadLinesFrom(const std::string& path, uint64_t begin, size_t max_bytes);

// Every line of `path`; a missing file yields no lines.
Result<std::vector<std::string>> ReadAllLines(const std::string& path);

}  // namespace herd
