// The seed's registry locking, translated line by line, to test the tests.
//
// The seed (shared/seed/000_827e9436ee40308e.txt) "fixed" lost registry
// updates with two helpers, read_registry_with_lock() and
// write_registry_with_lock(), and called them one after the other. It is
// wrong in the three ways registry-store.md describes, and this translation
// keeps every one of them on purpose:
// 1. The lock is released between the read and the write (two lock holds
//    per read-modify-write), so concurrent updates are lost.
// 2. The write truncates and rewrites the data file in place (open "r+",
//    seek, truncate, write, fsync; a missing file is opened "w", which
//    truncates before locking), so a crash leaves a torn file.
// 3. It locks the data file itself with flock(LOCK_EX | LOCK_NB) and polls
//    every 50 ms until a 5 s timeout.
// The data is written in 8 KiB pieces, as Python's buffered json.dump does.
//
// Tests run the store's harnesses against SeedUpdate to prove that those
// harnesses detect the failures herd's store must not have. Never use it
// for anything else.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "store/json_store.h"
#include "util/status.h"

namespace herd::store::seed {

inline constexpr std::chrono::milliseconds kSeedTimeout{5000};
inline constexpr std::chrono::milliseconds kSeedPollInterval{50};

namespace internal {

inline Status WriteInPieces(int fd, std::string_view data, const std::string& path) {
  constexpr size_t kPythonBufferSize = 8192;
  while (!data.empty()) {
    ssize_t written = ::write(fd, data.data(), std::min(data.size(), kPythonBufferSize));
    if (written < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("seed: cannot write " + path, errno);
    }
    data.remove_prefix(static_cast<size_t>(written));
  }
  return Status::Ok();
}

// The seed's locking step: LOCK_NB; on contention close the file, sleep
// 50 ms and have the caller reopen it. Returns Ok when locked, Timeout once
// 5 s have passed since `start`, Refused when the caller must retry.
inline Status TryLockOrBackOff(int fd, std::chrono::steady_clock::time_point start,
                               const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Status::Ok();
  int lock_errno = errno;
  ::close(fd);
  if (lock_errno != EWOULDBLOCK) return Status::FromErrno("seed: cannot lock " + path, lock_errno);
  if (std::chrono::steady_clock::now() - start >= kSeedTimeout) {
    return Status::Timeout("seed: could not acquire lock on " + path + " within 5s");
  }
  std::this_thread::sleep_for(kSeedPollInterval);
  return Status::Refused("retry");
}

inline Result<std::string> ReadAll(int fd, const std::string& path) {
  std::string contents;
  char buffer[65536];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("seed: cannot read " + path, errno);
    }
    if (got == 0) return contents;
    contents.append(buffer, static_cast<size_t>(got));
  }
}

inline std::string Dump(const nlohmann::json& registry) {
  return registry.dump(2);
}

}  // namespace internal

// read_registry_with_lock(): lock, read, unlock. A missing file is an error.
inline Result<nlohmann::json> ReadWithLock(const std::string& path) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::FromErrno("seed: cannot open " + path, errno);
    Status locked = internal::TryLockOrBackOff(fd, start, path);
    if (locked.Is(Status::Code::kRefused)) continue;
    if (!locked.ok()) return locked;
    // json.load(f) runs under the lock; the finally clause unlocks.
    Result<std::string> contents = internal::ReadAll(fd, path);
    nlohmann::json registry =
        contents.ok() ? nlohmann::json::parse(*contents, nullptr, false) : nlohmann::json();
    ::flock(fd, LOCK_UN);
    ::close(fd);
    if (!contents.ok()) return contents.status();
    if (registry.is_discarded()) return Status::Corruption("seed: " + path + " is not valid JSON");
    return registry;
  }
}

// write_registry_with_lock(): lock, truncate in place, write, fsync, unlock.
inline Status WriteWithLock(const std::string& path, const nlohmann::json& registry) {
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      // open(path, 'w'): truncates first, then blocks for the lock.
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) return Status::FromErrno("seed: cannot create " + path, errno);
      ::flock(fd, LOCK_EX);
    } else if (fd < 0) {
      return Status::FromErrno("seed: cannot open " + path, errno);
    } else {
      Status locked = internal::TryLockOrBackOff(fd, start, path);
      if (locked.Is(Status::Code::kRefused)) continue;
      if (!locked.ok()) return locked;
      ::lseek(fd, 0, SEEK_SET);
      if (::ftruncate(fd, 0) != 0) {
        int saved_errno = errno;
        ::close(fd);
        return Status::FromErrno("seed: cannot truncate " + path, saved_errno);
      }
    }
    // json.dump(registry, f, indent=2) serialises as it writes: after the
    // truncate, with the file empty meanwhile.
    Status status = internal::WriteInPieces(fd, internal::Dump(registry), path);
    if (status.ok() && ::fsync(fd) != 0) {
      status = Status::FromErrno("seed: cannot fsync " + path, errno);
    }
    ::flock(fd, LOCK_UN);
    ::close(fd);
    return status;
  }
}

// What the seed's kill_real_agent() did: read under one lock hold, change
// the registry, write under another.
inline Status Update(const std::string& path, const Mutation& mutation) {
  Result<nlohmann::json> registry = ReadWithLock(path);
  if (!registry.ok()) return registry.status();
  Result<Decision> decision = mutation(*registry);
  if (!decision.ok()) return decision.status();
  if (*decision == Decision::kNoChange) return Status::Ok();
  return WriteWithLock(path, *registry);
}

}  // namespace herd::store::seed
