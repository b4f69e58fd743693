#include "util/journal_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace herd {
namespace {

constexpr size_t kMaxKeep = JournalReader::kMaxKeep;

// What a reader remembers of one journal.
struct Journal {
  dev_t device = 0;
  ino_t inode = 0;
  off_t consumed = 0;  // bytes up to and including the last newline
  timespec modified{};
  size_t total = 0;
  std::deque<std::string> newest;  // at most kMaxKeep, oldest first
  size_t bytes = 0;                // of `newest`
};

bool SameTime(const timespec& a, const timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Reads [offset, min(end of file, limit)) of `path` into `bytes`; fills
// `info` from the open descriptor, so the bytes and the identity belong to
// the same file.
bool ReadFrom(const std::string& path, off_t offset, off_t limit, std::string* bytes,
              struct stat* info) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return false;
  bool ok = ::fstat(fd, info) == 0;
  off_t end = ok ? std::min(info->st_size, limit) : 0;
  if (ok && end > offset) {
    bytes->resize(static_cast<size_t>(end - offset));
    size_t filled = 0;
    while (filled < bytes->size()) {
      ssize_t got = ::pread(fd, bytes->data() + filled, bytes->size() - filled,
                            offset + static_cast<off_t>(filled));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;  // an error, or the file shrank meanwhile: keep what was read
      filled += static_cast<size_t>(got);
    }
    bytes->resize(filled);
  }
  ::close(fd);
  return ok;
}

// Where reading stops. Lines past the committed length belong to a
// transaction still under way (or one that failed): not read.
off_t ReadLimit(const struct stat& seen, std::optional<uint64_t> committed_bytes) {
  if (committed_bytes && static_cast<uint64_t>(seen.st_size) > *committed_bytes) {
    return static_cast<off_t>(*committed_bytes);
  }
  return std::numeric_limits<off_t>::max();
}

// How the file `seen` differs from what `journal` remembers of it.
enum class Change { kNone, kAppended, kOther };

Change ChangeSince(const Journal& journal, const struct stat& seen, off_t limit) {
  off_t size = std::min(seen.st_size, limit);
  // An append past the committed length changes the file's time without
  // changing what is read, so the time is not compared then.
  bool capped = size < seen.st_size;
  bool same_file = journal.device == seen.st_dev && journal.inode == seen.st_ino;
  bool same_time = capped || SameTime(journal.modified, seen.st_mtim);
  if (same_file && same_time && size == journal.consumed) return Change::kNone;
  bool appended =
      same_file && size >= journal.consumed && !(size == journal.consumed && !same_time);
  return appended ? Change::kAppended : Change::kOther;
}

// Appended to: reads the new bytes. Anything else: starts `journal` over
// and reads the file whole. Records in `journal` which file was read.
bool ReadChange(const std::string& path, const struct stat& seen, off_t limit, Change change,
                Journal* journal, std::string* bytes) {
  if (change != Change::kAppended) *journal = Journal();
  struct stat opened {};
  if (!ReadFrom(path, journal->consumed, limit, bytes, &opened)) return false;
  if (opened.st_dev != seen.st_dev || opened.st_ino != seen.st_ino) {
    // Replaced between stat and open: read the new file whole.
    *journal = Journal();
    bytes->clear();
    if (!ReadFrom(path, 0, limit, bytes, &opened)) return false;
  }
  journal->device = opened.st_dev;
  journal->inode = opened.st_ino;
  journal->modified = opened.st_mtim;
  return true;
}

size_t CountNewlines(const char* data, size_t size) {
  size_t lines = 0;
  for (const char* cursor = data; const char* newline = static_cast<const char*>(std::memchr(
                                      cursor, '\n', static_cast<size_t>(data + size - cursor)));
       cursor = newline + 1) {
    ++lines;
  }
  return lines;
}

// The newest non-empty lines of bytes[0, complete), at most kMaxKeep,
// found from the end: newest first.
std::vector<std::string> NewestNonEmptyLines(const std::string& bytes, size_t complete) {
  std::vector<std::string> newest;
  size_t end = complete;
  while (newest.size() < kMaxKeep && end > 0) {
    --end;  // drop this line's '\n'
    size_t begin = end == 0 ? std::string::npos : bytes.rfind('\n', end - 1);
    begin = begin == std::string::npos ? 0 : begin + 1;
    if (end > begin) newest.emplace_back(bytes, begin, end - begin);
    end = begin;
  }
  return newest;
}

// Adds the complete lines of `bytes` (read from journal->consumed on) to
// `journal`. Only complete lines count; a trailing partial line waits for
// its newline.
void ConsumeCompleteLines(const std::string& bytes, Journal* journal) {
  size_t complete = bytes.rfind('\n');
  complete = complete == std::string::npos ? 0 : complete + 1;
  size_t lines = CountNewlines(bytes.data(), complete);
  std::vector<std::string> appended_newest = NewestNonEmptyLines(bytes, complete);
  for (auto line = appended_newest.rbegin(); line != appended_newest.rend(); ++line) {
    journal->newest.push_back(std::move(*line));
    if (journal->newest.size() > kMaxKeep) journal->newest.pop_front();
  }
  journal->total += lines;
  journal->consumed += static_cast<off_t>(complete);
  // A partial tail means the file is not yet "unchanged" at this size:
  // record the consumed size so the next read re-reads only the tail.

  journal->bytes = 0;
  for (const std::string& line : journal->newest) journal->bytes += line.size();
}

JournalSlice SliceOf(const Journal& journal, size_t keep) {
  JournalSlice slice;
  slice.total = journal.total;
  size_t first = journal.newest.size() - std::min(keep, journal.newest.size());
  slice.newest.assign(journal.newest.begin() + static_cast<long>(first), journal.newest.end());
  return slice;
}

}  // namespace

// The journals remembered, shared by copies of a reader and guarded by
// `mutex`; nothing is read from disk while it is held.
struct JournalReader::State {
  // Forgets the journal at `path`, so a new file there that reuses the
  // inode number is not taken for the old one grown.
  void Forget(const std::string& path) {
    std::lock_guard<std::mutex> guard(mutex);
    auto gone = journals.find(path);
    if (gone != journals.end()) {
      bytes -= gone->second.bytes;
      journals.erase(gone);
    }
  }

  // What is remembered of the journal at `path` (nothing yet: an empty one).
  Journal Recall(const std::string& path) {
    std::lock_guard<std::mutex> guard(mutex);
    auto found = journals.find(path);
    return found != journals.end() ? found->second : Journal();
  }

  // Remembers `journal` for `path`, first forgetting everything if the
  // memory is full.
  void Remember(const std::string& path, const Journal& journal) {
    std::lock_guard<std::mutex> guard(mutex);
    if (journals.size() >= kMaxJournals || bytes >= kMaxRememberedBytes) {
      journals.clear();
      bytes = 0;
    }
    Journal& stored = journals[path];
    // Keep whichever of two concurrent readers saw more of the same file.
    bool stored_is_newer = stored.device == journal.device && stored.inode == journal.inode &&
                           stored.consumed > journal.consumed;
    if (!stored_is_newer) {
      bytes = bytes - stored.bytes + journal.bytes;
      stored = journal;
    }
  }

  std::mutex mutex;
  std::unordered_map<std::string, Journal> journals;
  size_t bytes = 0;  // of every journal's `newest`
};

JournalReader::JournalReader() : state_(std::make_shared<State>()) {}

JournalSlice JournalReader::Read(const std::string& path, size_t keep,
                                 std::optional<uint64_t> committed_bytes) const {
  keep = std::min(keep, kMaxKeep);
  struct stat seen {};
  if (::lstat(path.c_str(), &seen) != 0 || !S_ISREG(seen.st_mode)) {
    state_->Forget(path);  // gone
    return {};
  }
  Journal journal = state_->Recall(path);
  off_t limit = ReadLimit(seen, committed_bytes);
  Change change = ChangeSince(journal, seen, limit);
  if (change != Change::kNone) {
    std::string bytes;
    if (!ReadChange(path, seen, limit, change, &journal, &bytes)) return {};
    ConsumeCompleteLines(bytes, &journal);
    state_->Remember(path, journal);
  }
  return SliceOf(journal, keep);
}

}  // namespace herd
