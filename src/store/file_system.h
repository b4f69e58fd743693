// FileSystem: the seam between the store and the kernel's file calls.
//
// The store performs every step of a durable replace (write, fdatasync,
// link, rename, directory fsync) through this interface, so tests can make
// any single step fail with ENOSPC or EIO, as a real disk would, without
// mocking anything else (LevelDB's Env plays the same role). Default()
// returns the real implementation; it is stateless and thread-safe.
// Every descriptor it opens is O_CLOEXEC and O_NOFOLLOW: herd never follows
// a symbolic link to a file it reads or writes (a repository may ship links
// inside its workspace), and files it creates are private (kPrivateFileMode,
// whatever the umask).
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace herd::store {

// Modes of everything herd creates: prompts, registries and logs carry
// secrets, so they are readable by their owner only.
inline constexpr unsigned kPrivateFileMode = 0600;
inline constexpr unsigned kPrivateDirectoryMode = 0700;

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates `path` exclusively for writing and returns its descriptor.
  virtual Result<int> CreateExclusive(const std::string& path);
  // Writes all of `data` to `fd`, retrying short writes and EINTR.
  virtual Status WriteAll(int fd, std::string_view data, const std::string& path);
  // fdatasync(2).
  virtual Status SyncData(int fd, const std::string& path);
  virtual Status Close(int fd, const std::string& path);
  // link(2): a second name for an existing file.
  virtual Status Link(const std::string& from, const std::string& to);
  // rename(2): atomically replaces `to`.
  virtual Status Rename(const std::string& from, const std::string& to);
  // unlink(2); a missing file is not an error.
  virtual Status Remove(const std::string& path);
  // Opens `directory` and fsyncs it, making renames in it durable.
  virtual Status SyncDirectory(const std::string& directory);
  // Reads the whole file. A missing file is Status::NotFound.
  virtual Result<std::string> ReadFile(const std::string& path);

  static FileSystem* Default();
};

// Replaces `path` with `contents` durably: a new temp file beside it
// (store/file_names.h TempFileName) is written and fdatasynced, renamed over `path`, and the
// directory fsynced. On failure `path` is unchanged and no temp file is left.
Status ReplaceFileDurably(FileSystem* fs, const std::string& path, std::string_view contents);

}  // namespace herd::store
