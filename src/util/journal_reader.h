// JournalReader: the line count and newest lines of append-only JSONL
// journals (agents' progress and findings), read incrementally.
//
// Journals only grow: every writer appends whole lines under its task's
// lock (AppendJournalLine in util/text_file.h); only lines past the
// committed length that a failed transaction left are ever cut off. A JournalReader remembers, per
// path, the file's identity (device and inode), how many bytes it has consumed (up to the last
// newline), how many lines those held and the newest kMaxKeep of them. Reading a journal again
// costs one stat(2) when nothing was appended, and a read of the appended bytes otherwise. A file
// that shrank, changed without growing, was replaced by another inode or deleted is read from the
// start. A last line without its newline (a write in progress, or a short
// write on a full disk) is neither counted nor returned until the newline
// arrives (it is read again each time until then). An in-place rewrite that
// grows the file cannot be told from an append; herd only appends.
//
// Lines are returned as stored, unparsed. Thread-safe: one reader may serve
// concurrent MCP calls. Memory: at most kMaxKeep lines per journal, of at
// most kMaxJournals journals and kMaxRememberedBytes of lines in all (past
// either, it forgets everything and reads again).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace herd {

struct JournalSlice {
  size_t total = 0;                 // complete lines in the journal (empty ones too)
  std::vector<std::string> newest;  // its last non-empty lines, at most `keep`, oldest first
};

class JournalReader {
 public:
  static constexpr size_t kMaxKeep = 10;
  static constexpr size_t kMaxJournals = 8192;
  static constexpr size_t kMaxRememberedBytes = 64 * 1024 * 1024;

  JournalReader();

  // The journal at `path`; a missing or unreadable file is an empty slice
  // (journals are optional: an agent that never reported has none).
  // `keep` is capped at kMaxKeep. `committed_bytes`, when known, is the
  // journal's length as its registry records it (text_file.h
  // AppendJournalLine): bytes past it are not read.
  JournalSlice Read(const std::string& path, size_t keep,
                    std::optional<uint64_t> committed_bytes = std::nullopt) const;

 private:
  // What the reader remembers of each journal (journal_reader.cc).
  struct State;

  std::shared_ptr<State> state_;  // shared by copies
};

}  // namespace herd
