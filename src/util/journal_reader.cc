#include "util/journal_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

namespace herd {
namespace {

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

}  // namespace

JournalReader::JournalReader() : state_(std::make_shared<State>()) {}

JournalSlice JournalReader::Read(const std::string& path, size_t keep,
                                 std::optional<uint64_t> committed_bytes) const {
  keep = std::min(keep, kMaxKeep);
  struct stat seen {};
  if (::lstat(path.c_str(), &seen) != 0 || !S_ISREG(seen.st_mode)) {
    // Gone: forget it, so a new file at this path that reuses the inode
    // number is not taken for the old one grown.
    std::lock_guard<std::mutex> guard(state_->mutex);
    auto gone = state_->journals.find(path);
    if (gone != state_->journals.end()) {
      state_->bytes -= gone->second.bytes;
      state_->journals.erase(gone);
    }
    return {};
  }

  Journal journal;
  {
    std::lock_guard<std::mutex> guard(state_->mutex);
    auto found = state_->journals.find(path);
    if (found != state_->journals.end()) journal = found->second;
  }
  // Lines past the committed length belong to a transaction still under
  // way (or one that failed): not read. Their append changes the file's
  // time without changing what is read, so the time is not compared then.
  off_t limit = std::numeric_limits<off_t>::max();
  if (committed_bytes && static_cast<uint64_t>(seen.st_size) > *committed_bytes) {
    limit = static_cast<off_t>(*committed_bytes);
  }
  off_t size = std::min(seen.st_size, limit);
  bool capped = size < seen.st_size;
  bool same_file = journal.device == seen.st_dev && journal.inode == seen.st_ino;
  bool same_time = capped || SameTime(journal.modified, seen.st_mtim);
  bool unchanged = same_file && same_time && size == journal.consumed;
  if (!unchanged) {
    // Appended to: read the new bytes. Anything else: start over.
    bool appended =
        same_file && size >= journal.consumed && !(size == journal.consumed && !same_time);
    if (!appended) journal = Journal();
    std::string bytes;
    struct stat opened {};
    if (!ReadFrom(path, journal.consumed, limit, &bytes, &opened)) return {};
    if (opened.st_dev != seen.st_dev || opened.st_ino != seen.st_ino) {
      // Replaced between stat and open: read the new file whole.
      journal = Journal();
      bytes.clear();
      if (!ReadFrom(path, 0, limit, &bytes, &opened)) return {};
    }
    journal.device = opened.st_dev;
    journal.inode = opened.st_ino;
    journal.modified = opened.st_mtim;

    // Only complete lines count; a trailing partial line waits for its newline.
    size_t complete = bytes.rfind('\n');
    complete = complete == std::string::npos ? 0 : complete + 1;
    const char* data = bytes.data();
    size_t lines = 0;
    for (const char* cursor = data;
         const char* newline = static_cast<const char*>(
             std::memchr(cursor, '\n', static_cast<size_t>(data + complete - cursor)));
         cursor = newline + 1) {
      ++lines;
    }
    // The newest non-empty lines of this read, found from the end.
    std::vector<std::string> appended_newest;
    size_t end = complete;
    while (appended_newest.size() < kMaxKeep && end > 0) {
      --end;  // drop this line's '\n'
      size_t begin = end == 0 ? std::string::npos : bytes.rfind('\n', end - 1);
      begin = begin == std::string::npos ? 0 : begin + 1;
      if (end > begin) appended_newest.emplace_back(bytes, begin, end - begin);
      end = begin;
    }
    for (auto line = appended_newest.rbegin(); line != appended_newest.rend(); ++line) {
      journal.newest.push_back(std::move(*line));
      if (journal.newest.size() > kMaxKeep) journal.newest.pop_front();
    }
    journal.total += lines;
    journal.consumed += static_cast<off_t>(complete);
    // A partial tail means the file is not yet "unchanged" at this size:
    // record the consumed size so the next read re-reads only the tail.

    journal.bytes = 0;
    for (const std::string& line : journal.newest) journal.bytes += line.size();

    std::lock_guard<std::mutex> guard(state_->mutex);
    if (state_->journals.size() >= kMaxJournals || state_->bytes >= kMaxRememberedBytes) {
      state_->journals.clear();
      state_->bytes = 0;
    }
    Journal& stored = state_->journals[path];
    // Keep whichever of two concurrent readers saw more of the same file.
    bool stored_is_newer = stored.device == journal.device && stored.inode == journal.inode &&
                           stored.consumed > journal.consumed;
    if (!stored_is_newer) {
      state_->bytes = state_->bytes - stored.bytes + journal.bytes;
      stored = journal;
    }
  }

  JournalSlice slice;
  slice.total = journal.total;
  size_t first = journal.newest.size() - std::min(keep, journal.newest.size());
  slice.newest.assign(journal.newest.begin() + static_cast<long>(first), journal.newest.end());
  return slice;
}

}  // namespace herd
