// JsonStore: transactions on JSON documents that many processes share.
//
// Contract:
// - Update(path, mutation) is one transaction: it takes the sidecar lock
//   `path.lock`, reads and checks the current document, applies `mutation`,
//   and, if the mutation asks for it, durably replaces the file, all under
//   one lock hold. Concurrent updates from any number of threads and
//   processes are serialised; none is lost.
// - A replace writes `path.tmp.<pid>.<random>` in the same directory (every
//   name beside `path` is made in store/file_names.h),
//   fdatasyncs it, keeps the previous version as `path.bak` (a hard link),
//   renames the temp file over `path` and, once the lock is released but
//   before Update returns, fsyncs the directory (a later holder's fsync of
//   the same directory covers this rename too). The file is
//   never truncated in place, so a crash at any instant leaves either the
//   old or the new document. A failed write or flush removes the temp file,
//   leaves `path` untouched and returns the error; a failed directory fsync
//   after the rename returns Status::NotDurable (the change is visible but
//   may not survive a power loss).
// - Every committed document carries "herd_sequence", incremented by one
//   per commit, so no version can silently go backwards. The commit that
//   restores a backup skips one number (the lost version, the backup's
//   successor, may have been read under it) and is also written as the
//   backup (a copy, not a link), so a second loss restores it and skips
//   past it too: a number that readers saw never names two documents.
// - A document that does not parse or fails the validator is moved aside as
//   `path.corrupt.<UTC time>.<pid>.<random>` and the transaction starts from `path.bak`,
//   reporting the recovery in its stats and in the log. If no valid backup
//   exists the transaction fails with Status::Corruption and leaves the
//   file where it is: the store never silently starts an empty registry
//   over data that existed. A deleted `path` with a valid backup is
//   restored the same way.
// - Read(path) takes no lock: rename is atomic, so it always sees one whole
//   committed version. It never writes; if `path` is damaged it returns the
//   backup and says so. The last parse of each path is cached with the
//   exact bytes it came from: a read whose bytes are unchanged costs a read
//   and a compare, not a parse. ReadShared returns that cached parse itself
//   (the same object for the same bytes, so callers may key their own
//   derived values on its address); Read returns a copy.
// - Never fork, exec or sleep inside a mutation: the lock is held.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "store/file_system.h"
#include "util/status.h"

namespace herd::store {

// The key holding the commit sequence number inside every document.
inline constexpr const char kSequenceKey[] = "herd_sequence";

// What a mutation decided to do with the document it was given.
enum class Decision { kCommit, kNoChange };

// Applies a change to `document` in place. An error aborts the transaction
// without writing and is returned by Update unchanged.
using Mutation = std::function<Result<Decision>(nlohmann::json& document)>;

// Checks a parsed document; a non-ok Status means the file is corrupt.
using Validator = std::function<Status(const nlohmann::json& document)>;

// The default validator: a JSON object with an unsigned "herd_sequence".
Status RequireSequence(const nlohmann::json& document);

struct TransactionStats;

// Told about every finished transaction (whatever its outcome), after the
// lock is released. Must be cheap and must not block: it runs on the
// caller's thread.
using TransactionObserver = std::function<void(
    const std::string& path, const TransactionStats& stats, const Status& status)>;

struct StoreOptions {
  std::chrono::milliseconds lock_timeout{10000};
  FileSystem* file_system = FileSystem::Default();
  Validator validator = RequireSequence;
  TransactionObserver observer;  // optional
};

// True for the errors of a transaction that mean "the document cannot be
// written now" (ENOSPC, EIO, a read-only file system, a lock held too long)
// rather than "the request is wrong": worth acting on anyway, or retrying.
inline bool IsUnwritable(const Status& status) {
  return status.Is(Status::Code::kIOError) || status.Is(Status::Code::kTimeout);
}

// The lock timeout from $HERD_LOCK_TIMEOUT_MS, else 10 s.
std::chrono::milliseconds LockTimeoutFromEnvironment();

// Figures for one transaction, filled in whether it succeeded or not.
struct TransactionStats {
  double lock_wait_ms = 0;  // from the first lock attempt until it was held
  double hold_ms = 0;       // from taking the lock until releasing it
  int flushes = 0;          // fdatasync + directory fsync calls
  bool committed = false;   // a new version was renamed into place
  bool durable = false;     // ... and its directory entry was flushed
  bool recovered = false;   // the transaction started from the backup
  uint64_t sequence = 0;    // sequence of the document after the transaction
  std::string recovery;     // what recovery did, for logs and reports
};

struct Snapshot {
  nlohmann::json document;
  uint64_t sequence = 0;
  bool from_backup = false;  // `path` was missing or damaged
};

class JsonStore {
 public:
  explicit JsonStore(StoreOptions options = {});

  // One read-check-mutate-write transaction under the lock. Creates the
  // document (the mutation receives an empty object) if neither `path` nor
  // a backup exists. The directory must exist.
  Status Update(const std::string& path, const Mutation& mutation,
                TransactionStats* stats = nullptr) const;

  // The latest committed version, without locking. Status::NotFound if the
  // document was never created.
  Result<Snapshot> Read(const std::string& path) const;
  Result<std::shared_ptr<const Snapshot>> ReadShared(const std::string& path) const;

  const StoreOptions& options() const { return options_; }

 private:
  // Work a commit leaves for after the lock is released.
  struct DeferredWork {
    std::string sync_directory;   // fsync this directory (the rename's)
    std::string committed_bytes;  // what was written, for the read cache
    int old_backup_fd = -1;       // closing it frees the replaced backup
  };
  Status UpdateLocked(const std::string& path, const Mutation& mutation, TransactionStats* stats,
                      DeferredWork* deferred, nlohmann::json* committed) const;
  Status FinishCommit(const std::string& path, nlohmann::json document, TransactionStats* stats,
                      DeferredWork* deferred) const;
  std::shared_ptr<const Snapshot> CachedParse(const std::string& path,
                                              const std::string& bytes) const;
  void Remember(const std::string& path, std::string bytes,
                std::shared_ptr<const Snapshot> snapshot) const;
  // Loads and checks `path` under the lock, recovering from the backup
  // when it is damaged or deleted.
  Result<nlohmann::json> LoadForUpdate(const std::string& path, TransactionStats* stats) const;
  // Parses and validates a file's contents.
  Result<nlohmann::json> Parse(const std::string& path, const std::string& contents) const;
  // Durably replaces `path` with `document`.
  // What becomes `path.bak` when a version is replaced.
  enum class Backup {
    kNone,         // nothing: the file is new
    kCurrentFile,  // the version being replaced (the usual case)
    kNewVersion,   // a copy of the new version: after a recovery the current file is gone
  };
  Status Replace(const std::string& path, const nlohmann::json& document, Backup backup,
                 TransactionStats* stats, DeferredWork* deferred) const;

  // The last parse of each path, with the exact bytes it came from.
  struct ReadCache;
  Result<Snapshot> ReadUncached(const std::string& path, const Result<std::string>& contents) const;

  StoreOptions options_;
  std::shared_ptr<ReadCache> cache_;
};

// Warns (once per directory per process, on stderr) when `directory` is on
// NFS, CIFS/SMB or FUSE, where file locks are not reliable. Returns the
// warning text, or "" for a local filesystem.
std::string WarnIfNetworkFilesystem(const std::string& directory);

}  // namespace herd::store
