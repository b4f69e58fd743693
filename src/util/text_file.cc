#include "util/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace herd {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<std::string> ReadWhole(const std::string& path, bool* missing) {
  *missing = false;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) {
      *missing = true;
      return std::string();
    }
    return Status::FromErrno("cannot open " + path, errno);
  }
  std::string contents;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot read " + path, errno);
    }
    if (got == 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  return contents;
}

}  // namespace

Status AppendLine(const std::string& path, const std::string& line) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Status::FromErrno("cannot open " + path + " for appending", errno);
  std::string data = line;
  data += '\n';
  ssize_t written;
  do {
    written = ::write(fd.get(), data.data(), data.size());
  } while (written < 0 && errno == EINTR);
  if (written < 0) return Status::FromErrno("cannot append to " + path, errno);
  if (static_cast<size_t>(written) != data.size()) {
    return Status::IOError("short append to " + path + " (disk full?)");
  }
  return Status::Ok();
}

Result<uint64_t> AppendJournalLine(const std::string& path, std::optional<uint64_t> committed_bytes,
                                   const std::string& line) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return Status::FromErrno("cannot open " + path + " for appending", errno);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Status::FromErrno("cannot stat " + path, errno);
  uint64_t start = static_cast<uint64_t>(info.st_size);
  if (committed_bytes && start > *committed_bytes) {
    // The line of a transaction that never committed (its writer failed or
    // was killed between the append and the commit).
    if (::ftruncate(fd.get(), static_cast<off_t>(*committed_bytes)) != 0) {
      return Status::FromErrno("cannot cut uncommitted lines off " + path, errno);
    }
    start = *committed_bytes;
  }
  std::string data = line;
  data += '\n';
  size_t done = 0;
  Status failed;
  while (done < data.size()) {
    ssize_t written = ::write(fd.get(), data.data() + done, data.size() - done);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      failed = Status::FromErrno("cannot append to " + path, written < 0 ? errno : ENOSPC);
      break;
    }
    done += static_cast<size_t>(written);
  }
  if (failed.ok() && ::fdatasync(fd.get()) != 0) {
    failed = Status::FromErrno("cannot flush " + path + " to disk", errno);
  }
  if (!failed.ok()) {
    // Never leave part of a line: the next append would be glued to it.
    if (::ftruncate(fd.get(), static_cast<off_t>(start)) != 0) {
      return failed.WithContext("and cutting the partial line off failed too (" +
                                std::string(std::strerror(errno)) + ")");
    }
    return failed;
  }
  return start + data.size();
}

Status CutJournal(const std::string& path, uint64_t committed_bytes) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno("cannot open " + path, errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Status::FromErrno("cannot stat " + path, errno);
  if (static_cast<uint64_t>(info.st_size) <= committed_bytes) return Status::Ok();
  if (::ftruncate(fd.get(), static_cast<off_t>(committed_bytes)) != 0) {
    return Status::FromErrno("cannot cut uncommitted lines off " + path, errno);
  }
  return Status::Ok();
}

Result<Tail> ReadTailLines(const std::string& path, size_t max_lines, size_t max_bytes) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::FromErrno("cannot open " + path, errno);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) return Status::FromErrno("cannot stat " + path, errno);
  Tail tail;
  tail.file_size = static_cast<uint64_t>(info.st_size);
  if (max_lines == 0 || tail.file_size == 0) {
    tail.truncated = tail.file_size > 0;
    return tail;
  }

  // Read blocks backwards until enough newlines are seen or the byte budget ends.
  const size_t kBlock = 64 * 1024;
  std::string data;  // the bytes from `start` to the end of the file
  uint64_t start = tail.file_size;
  size_t newlines = 0;
  while (start > 0 && data.size() < max_bytes) {
    size_t want = static_cast<size_t>(std::min<uint64_t>({kBlock, start, max_bytes - data.size()}));
    start -= want;
    std::string block(want, '\0');
    size_t have = 0;
    while (have < want) {
      ssize_t got =
          ::pread(fd.get(), block.data() + have, want - have, static_cast<off_t>(start + have));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) return Status::FromErrno("cannot read " + path, errno);
      if (got == 0) break;
      have += static_cast<size_t>(got);
    }
    block.resize(have);
    newlines += static_cast<size_t>(std::count(block.begin(), block.end(), '\n'));
    data.insert(0, block);
    // One more newline than lines wanted marks where the first wanted line starts
    // (the file's final newline ends the last line).
    if (newlines > max_lines) break;
  }

  // Split into lines, dropping the final empty piece after a trailing '\n'.
  std::vector<std::string> lines;
  size_t begin = 0;
  while (begin < data.size()) {
    size_t end = data.find('\n', begin);
    if (end == std::string::npos) end = data.size();
    lines.emplace_back(data, begin, end - begin);
    begin = end + 1;
  }
  // The first piece is partial unless we reached the start of the file.
  bool first_is_partial = start > 0;
  if (lines.size() > max_lines) {
    lines.erase(lines.begin(), lines.end() - static_cast<long>(max_lines));
    tail.truncated = true;
  } else if (first_is_partial) {
    tail.truncated = true;  // the byte budget cut the first line at its start
  }
  tail.lines = std::move(lines);
  return tail;
}

namespace {

// Opens `path` for a window read and returns its size in *size.
Result<int> OpenForWindow(const std::string& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::FromErrno("cannot open " + path, errno);
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    int error = errno;
    ::close(fd);
    return Status::FromErrno("cannot stat " + path, error);
  }
  *size = static_cast<uint64_t>(info.st_size);
  return fd;
}

// Bytes [offset, offset + size) of `fd`, fewer at the end of the file.
Result<std::string> ReadRange(int fd, const std::string& path, uint64_t offset, size_t size) {
  std::string data(size, '\0');
  size_t have = 0;
  while (have < size) {
    ssize_t got = ::pread(fd, data.data() + have, size - have, static_cast<off_t>(offset + have));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return Status::FromErrno("cannot read " + path, errno);
    if (got == 0) break;
    have += static_cast<size_t>(got);
  }
  data.resize(have);
  return data;
}

}  // namespace

Result<LineWindow> ReadLinesBefore(const std::string& path, uint64_t end, size_t max_bytes) {
  LineWindow window;
  HERD_ASSIGN_OR_RETURN(int raw_fd, OpenForWindow(path, &window.file_size));
  Fd fd(raw_fd);
  end = std::min(end, window.file_size);
  uint64_t begin = end - std::min<uint64_t>(end, max_bytes);
  // One byte more in front says whether `begin` is a line start.
  uint64_t read_from = begin > 0 ? begin - 1 : 0;
  HERD_ASSIGN_OR_RETURN(std::string data,
                        ReadRange(fd.get(), path, read_from, static_cast<size_t>(end - read_from)));
  size_t last_newline = data.rfind('\n');
  size_t first = begin > 0 ? 1 : 0;  // data[first] is at `begin`
  if (last_newline == std::string::npos || last_newline < first) {
    // No whole line inside: one cut line (or nothing).
    window.begin = begin;
    window.end = read_from + data.size();
    window.text = data.substr(std::min(first, data.size()));
    return window;
  }
  data.resize(last_newline + 1);
  if (begin > 0 && data[0] != '\n') {
    size_t line_start = data.find('\n') + 1;  // there is one: last_newline
    if (line_start < data.size()) first = line_start;
  }
  window.begin = read_from + first;
  window.end = read_from + data.size();
  window.text = data.substr(first);
  return window;
}

Result<LineWindow> ReadLinesFrom(const std::string& path, uint64_t begin, size_t max_bytes) {
  LineWindow window;
  HERD_ASSIGN_OR_RETURN(int raw_fd, OpenForWindow(path, &window.file_size));
  Fd fd(raw_fd);
  begin = std::min(begin, window.file_size);
  size_t want = static_cast<size_t>(std::min<uint64_t>(max_bytes, window.file_size - begin));
  HERD_ASSIGN_OR_RETURN(std::string data, ReadRange(fd.get(), path, begin, want));
  size_t last_newline = data.rfind('\n');
  if (last_newline != std::string::npos) {
    data.resize(last_newline + 1);
  } else if (data.size() < max_bytes) {
    data.clear();  // a line still being written
  }
  window.begin = begin;
  window.end = begin + data.size();
  window.text = std::move(data);
  return window;
}

Result<std::vector<std::string>> ReadAllLines(const std::string& path) {
  bool missing = false;
  Result<std::string> contents = ReadWhole(path, &missing);
  if (!contents.ok()) return contents.status();
  std::vector<std::string> lines;
  size_t begin = 0;
  const std::string& data = *contents;
  while (begin < data.size()) {
    size_t end = data.find('\n', begin);
    if (end == std::string::npos) end = data.size();
    if (end > begin) lines.emplace_back(data, begin, end - begin);
    begin = end + 1;
  }
  return lines;
}

}  // namespace herd
