#include "store/file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "store/file_names.h"

namespace herd::store {

Result<int> FileSystem::CreateExclusive(const std::string& path) {
  int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, kPrivateFileMode);
  if (fd < 0) return Status::FromErrno("cannot create " + path, errno);
  return fd;
}

Status FileSystem::WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("cannot write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return Status::Ok();
}

Status FileSystem::SyncData(int fd, const std::string& path) {
  if (::fdatasync(fd) != 0) return Status::FromErrno("cannot flush " + path + " to disk", errno);
  return Status::Ok();
}

Status FileSystem::Close(int fd, const std::string& path) {
  // Linux releases the descriptor even when close reports an error; never retry.
  if (::close(fd) != 0 && errno != EINTR) return Status::FromErrno("cannot close " + path, errno);
  return Status::Ok();
}

Status FileSystem::Link(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) != 0) {
    return Status::FromErrno("cannot link " + from + " to " + to, errno);
  }
  return Status::Ok();
}

Status FileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return Status::FromErrno("cannot rename " + from + " to " + to, errno);
  }
  return Status::Ok();
}

Status FileSystem::Remove(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("cannot remove " + path, errno);
  }
  return Status::Ok();
}

Status FileSystem::SyncDirectory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::FromErrno("cannot open directory " + directory, errno);
  int result = ::fsync(fd);
  int saved_errno = errno;
  ::close(fd);
  if (result != 0) return Status::FromErrno("cannot flush directory " + directory, saved_errno);
  return Status::Ok();
}

Result<std::string> FileSystem::ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::FromErrno("cannot open " + path, errno);
  }
  std::string contents;
  struct stat info {};
  if (::fstat(fd, &info) == 0 && info.st_size > 0)
    contents.reserve(static_cast<size_t>(info.st_size));
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      int saved_errno = errno;
      ::close(fd);
      return Status::FromErrno("cannot read " + path, saved_errno);
    }
    if (got == 0) break;
    contents.append(buffer, static_cast<size_t>(got));
  }
  ::close(fd);
  return contents;
}

FileSystem* FileSystem::Default() {
  static FileSystem real;
  return &real;
}

Status ReplaceFileDurably(FileSystem* fs, const std::string& path, std::string_view contents) {
  std::string temp = TempFileName(path);
  Result<int> fd = fs->CreateExclusive(temp);
  if (!fd.ok()) return fd.status();
  Status status = fs->WriteAll(*fd, contents, temp);
  if (status.ok()) status = fs->SyncData(*fd, temp);
  Status closed = fs->Close(*fd, temp);
  if (status.ok()) status = closed;
  if (status.ok()) status = fs->Rename(temp, path);
  if (!status.ok()) {
    fs->Remove(temp);
    return status.WithContext(path + " is unchanged");
  }
  size_t slash = path.rfind('/');
  std::string directory = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  return fs->SyncDirectory(directory);
}

}  // namespace herd::store
