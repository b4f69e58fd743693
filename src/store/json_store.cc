#include "store/json_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <set>

#include "store/file_lock.h"
#include "store/file_names.h"
#include "util/clock.h"
#include "util/json_parse.h"

namespace herd::store {
namespace {

using nlohmann::json;

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string Serialize(const json& document) {
  // Replace invalid UTF-8 instead of throwing: agent output ends up here.
  return document.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

uint64_t SequenceOf(const json& document) {
  auto found = document.find(kSequenceKey);
  if (found == document.end() || !found->is_number_unsigned()) return 0;
  return found->get<uint64_t>();
}

}  // namespace

Status RequireSequence(const json& document) {
  if (!document.is_object()) return Status::Corruption("the document is not a JSON object");
  auto found = document.find(kSequenceKey);
  if (found == document.end() || !found->is_number_unsigned()) {
    return Status::Corruption(std::string("the document has no \"") + kSequenceKey + "\" number");
  }
  return Status::Ok();
}

std::chrono::milliseconds LockTimeoutFromEnvironment() {
  const char* text = std::getenv("HERD_LOCK_TIMEOUT_MS");
  if (text != nullptr && *text != '\0') {
    char* end = nullptr;
    long long value = std::strtoll(text, &end, 10);
    if (end != nullptr && *end == '\0' && value > 0) return std::chrono::milliseconds(value);
    spdlog::warn("ignoring HERD_LOCK_TIMEOUT_MS=\"{}\": expected a positive number of milliseconds",
                 text);
  }
  return std::chrono::milliseconds(10000);
}

struct JsonStore::ReadCache {
  static constexpr size_t kMaxEntries = 64;
  std::mutex mutex;
  // path -> (the exact bytes parsed, what they parsed to)
  std::map<std::string, std::pair<std::string, std::shared_ptr<const Snapshot>>> entries;
};

JsonStore::JsonStore(StoreOptions options)
    : options_(std::move(options)), cache_(std::make_shared<ReadCache>()) {}

Result<json> JsonStore::Parse(const std::string& path, const std::string& contents) const {
  // Far deeper than anything herd writes (MCP requests stop at 64 levels),
  // shallow enough that copying and serialising the document cannot
  // overflow a thread's stack.
  Result<json> parsed = ParseJson(contents, kMaxDocumentDepth);
  if (!parsed.ok()) {
    return Status::Corruption(path + " is not valid JSON (" + std::to_string(contents.size()) +
                              " bytes): " + parsed.status().message());
  }
  json document = std::move(parsed).value();
  Status valid = options_.validator(document);
  if (!valid.ok()) return valid.WithContext(path);
  return document;
}

Result<json> JsonStore::LoadForUpdate(const std::string& path, TransactionStats* stats) const {
  FileSystem* fs = options_.file_system;
  Result<std::string> contents = fs->ReadFile(path);
  std::string problem;
  if (contents.ok()) {
    if (std::shared_ptr<const Snapshot> cached = CachedParse(path, *contents)) {
      return cached->document;  // these exact bytes were parsed and checked before
    }
    Result<json> document = Parse(path, *contents);
    if (document.ok()) return document;
    problem = document.status().message();
  } else if (contents.status().Is(Status::Code::kNotFound)) {
    problem = path + " is missing";
  } else {
    return contents.status();
  }

  std::string backup_path = BackupFileName(path);
  Result<std::string> backup_contents = fs->ReadFile(backup_path);
  if (!backup_contents.ok()) {
    if (!backup_contents.status().Is(Status::Code::kNotFound)) return backup_contents.status();
    if (!contents.ok()) return json::object();  // never created: start empty
    return Status::Corruption(problem + "; there is no backup " + backup_path +
                              " to restore. The file was left in place: inspect it, then move "
                              "it away to start an empty registry");
  }
  Result<json> backup = Parse(backup_path, *backup_contents);
  if (!backup.ok()) {
    if (!contents.ok()) {
      return Status::Corruption(problem + " and its backup is damaged too (" +
                                backup.status().message() + "); inspect " + backup_path);
    }
    return Status::Corruption(problem + " and its backup is damaged too (" +
                              backup.status().message() +
                              "). Both files were left in place: "
                              "inspect them, then move them away to start an empty registry");
  }

  std::string recovery;
  if (contents.ok()) {
    // Time, pid and a random part: a second recovery never replaces the first
    // quarantined file.
    std::string quarantine = QuarantineFileName(path, UniqueSuffix());
    HERD_RETURN_IF_ERROR(fs->Rename(path, quarantine));
    recovery = problem + "; moved it to " + quarantine + " and restored sequence " +
               std::to_string(SequenceOf(*backup)) + " from " + backup_path;
  } else {
    recovery = problem + "; restored sequence " + std::to_string(SequenceOf(*backup)) + " from " +
               backup_path;
  }
  spdlog::error("registry recovered: {}", recovery);
  stats->recovered = true;
  stats->recovery = recovery;
  return backup;
}

namespace {

// Creates `path` (which must not exist), writes `data` and flushes it; on
// failure removes what it created.
Status WriteNewFileDurably(FileSystem* fs, const std::string& path, const std::string& data,
                           TransactionStats* stats) {
  Result<int> fd = fs->CreateExclusive(path);
  if (!fd.ok()) return fd.status();
  Status status = fs->WriteAll(*fd, data, path);
  if (status.ok()) {
    status = fs->SyncData(*fd, path);
    stats->flushes++;
  }
  Status closed = fs->Close(*fd, path);
  if (status.ok()) status = closed;
  if (!status.ok()) fs->Remove(path);
  return status;
}

}  // namespace

Status JsonStore::Replace(const std::string& path, const json& document, Backup backup,
                          TransactionStats* stats, DeferredWork* deferred) const {
  FileSystem* fs = options_.file_system;
  std::string temp_path = TempFileName(path);
  std::string data = Serialize(document);

  Status status = WriteNewFileDurably(fs, temp_path, data, stats);
  if (!status.ok()) {
    return status.WithContext("the update was not saved and " + path + " is unchanged");
  }
  if (backup != Backup::kNone) {
    // The current file was validated when it was read: it is the last good
    // copy. Link it under a temporary name and rename that over the backup,
    // so the previous backup stays until the new one exists. After a
    // recovery the new version becomes the backup, as a copy of its own:
    // a link would share the inode that `path` keeps, and damage written
    // into `path` in place would reach the backup too.
    std::string backup_path = BackupFileName(path);
    std::string backup_temp = TempFileName(backup_path);
    // Holding the old backup open defers freeing its blocks to the close,
    // after the lock is released: replacing it then costs a rename only.
    deferred->old_backup_fd = ::open(backup_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    status = backup == Backup::kCurrentFile ? fs->Link(path, backup_temp)
                                            : WriteNewFileDurably(fs, backup_temp, data, stats);
    if (status.ok()) {
      status = fs->Rename(backup_temp, backup_path);
      if (!status.ok()) fs->Remove(backup_temp);
    }
  }
  if (status.ok()) status = fs->Rename(temp_path, path);
  if (!status.ok()) {
    fs->Remove(temp_path);
    return status.WithContext("the update was not saved and " + path + " is unchanged");
  }
  stats->committed = true;
  deferred->sync_directory = DirectoryOf(path);
  deferred->committed_bytes = std::move(data);
  return Status::Ok();
}

Status JsonStore::FinishCommit(const std::string& path, json document, TransactionStats* stats,
                               DeferredWork* deferred) const {
  if (deferred->old_backup_fd >= 0) ::close(deferred->old_backup_fd);
  deferred->old_backup_fd = -1;
  if (deferred->sync_directory.empty()) return Status::Ok();
  // The next update in this process usually starts from these very bytes.
  auto committed = std::make_shared<Snapshot>();
  committed->document = std::move(document);
  committed->sequence = stats->sequence;
  Remember(path, std::move(deferred->committed_bytes), std::move(committed));
  // After the lock is released: the caller still waits for it, and a later
  // holder's own directory fsync covers this rename too.
  stats->flushes++;
  Status synced = options_.file_system->SyncDirectory(deferred->sync_directory);
  if (!synced.ok()) {
    return Status::NotDurable("the update to " + path +
                              " is visible but may not survive a crash: " + synced.message());
  }
  stats->durable = true;
  return Status::Ok();
}

Status JsonStore::Update(const std::string& path, const Mutation& mutation,
                         TransactionStats* stats) const {
  TransactionStats local_stats;
  if (stats == nullptr) stats = &local_stats;
  *stats = TransactionStats{};
  DeferredWork deferred;
  json committed;
  Status status = UpdateLocked(path, mutation, stats, &deferred, &committed);
  Status finished = FinishCommit(path, std::move(committed), stats, &deferred);
  if (status.ok()) status = finished;
  if (options_.observer) options_.observer(path, *stats, status);
  return status;
}

Status JsonStore::UpdateLocked(const std::string& path, const Mutation& mutation,
                               TransactionStats* stats, DeferredWork* deferred,
                               json* committed) const {
  Result<FileLock> lock =
      FileLock::Acquire(LockFileName(path), options_.lock_timeout, &stats->lock_wait_ms);
  if (!lock.ok()) return lock.status();
  auto held_since = MonotonicClock::now();
  struct HoldTimer {
    TransactionStats* stats;
    MonotonicClock::time_point since;
    ~HoldTimer() { stats->hold_ms = MillisecondsSince(since); }
  } hold_timer{stats, held_since};

  Result<json> loaded = LoadForUpdate(path, stats);
  if (!loaded.ok()) return loaded.status();
  json document = std::move(loaded).value();
  bool existed = document.contains(kSequenceKey) && !stats->recovered;
  uint64_t sequence = SequenceOf(document);
  stats->sequence = sequence;

  Result<Decision> decision = Decision::kNoChange;
  try {
    decision = mutation(document);
  } catch (const std::exception& error) {
    return Status::InvalidArgument(std::string("update of ") + path + " failed: " + error.what());
  }
  if (!decision.ok()) return decision.status();
  // A recovered document is written back even when the mutation changes
  // nothing, so the repair itself is committed.
  if (*decision == Decision::kNoChange && !stats->recovered) return Status::Ok();
  if (!document.is_object()) {
    return Status::InvalidArgument("update of " + path + " produced a non-object document");
  }
  // After a recovery the lost version (the backup's successor) had
  // sequence + 1; it may have been read, so its number is not reused.
  uint64_t next = sequence + (stats->recovered ? 2 : 1);
  document[kSequenceKey] = next;
  Backup backup = stats->recovered ? Backup::kNewVersion
                  : existed        ? Backup::kCurrentFile
                                   : Backup::kNone;
  Status replaced = Replace(path, document, backup, stats, deferred);
  if (stats->committed) {
    stats->sequence = next;
    *committed = std::move(document);
  }
  return replaced;
}

std::shared_ptr<const Snapshot> JsonStore::CachedParse(const std::string& path,
                                                       const std::string& bytes) const {
  std::lock_guard<std::mutex> guard(cache_->mutex);
  auto found = cache_->entries.find(path);
  if (found == cache_->entries.end() || found->second.first != bytes) return nullptr;
  return found->second.second;
}

void JsonStore::Remember(const std::string& path, std::string bytes,
                         std::shared_ptr<const Snapshot> snapshot) const {
  std::lock_guard<std::mutex> guard(cache_->mutex);
  if (cache_->entries.size() >= ReadCache::kMaxEntries) cache_->entries.clear();
  cache_->entries[path] = {std::move(bytes), std::move(snapshot)};
}

Result<Snapshot> JsonStore::Read(const std::string& path) const {
  HERD_ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snapshot, ReadShared(path));
  return *snapshot;
}

Result<std::shared_ptr<const Snapshot>> JsonStore::ReadShared(const std::string& path) const {
  Result<std::string> contents = options_.file_system->ReadFile(path);
  if (contents.ok()) {
    if (std::shared_ptr<const Snapshot> cached = CachedParse(path, *contents)) return cached;
  }
  HERD_ASSIGN_OR_RETURN(Snapshot uncached, ReadUncached(path, contents));
  auto snapshot = std::make_shared<const Snapshot>(std::move(uncached));
  if (!snapshot->from_backup) Remember(path, std::move(*contents), snapshot);
  return snapshot;
}

Result<Snapshot> JsonStore::ReadUncached(const std::string& path,
                                         const Result<std::string>& contents) const {
  FileSystem* fs = options_.file_system;
  Status problem;
  if (contents.ok()) {
    Result<json> document = Parse(path, *contents);
    if (document.ok()) {
      Snapshot snapshot;
      snapshot.sequence = SequenceOf(*document);
      snapshot.document = std::move(*document);
      return snapshot;
    }
    problem = document.status();
  } else if (!contents.status().Is(Status::Code::kNotFound)) {
    return contents.status();
  }

  std::string backup_path = BackupFileName(path);
  Result<std::string> backup_contents = fs->ReadFile(backup_path);
  // What to do, once nothing can be read in its place; the file is never
  // touched by a read.
  const std::string kLeftInPlace =
      ". The file was left in place: fix it by hand, or move it away to start an empty "
      "registry (`herd doctor` lists damaged files)";
  if (!backup_contents.ok()) {
    if (problem.ok()) return Status::NotFound(path + " does not exist");
    return Status::Corruption(problem.message() + "; there is no backup " + backup_path +
                              " to read instead" + kLeftInPlace);
  }
  Result<json> backup = Parse(backup_path, *backup_contents);
  if (!backup.ok()) {
    if (problem.ok()) return backup.status();
    return Status::Corruption(problem.message() + " and its backup is damaged too (" +
                              backup.status().message() + ")" + kLeftInPlace);
  }
  spdlog::warn("{}; reading its backup {} instead (the next update repairs it)",
               problem.ok() ? path + " is missing" : problem.message(), backup_path);
  Snapshot snapshot;
  snapshot.sequence = SequenceOf(*backup);
  snapshot.document = std::move(*backup);
  snapshot.from_backup = true;
  return snapshot;
}

std::string WarnIfNetworkFilesystem(const std::string& directory) {
  struct statfs info {};
  if (statfs(directory.c_str(), &info) != 0) return "";
  const char* kind = nullptr;
  switch (static_cast<unsigned long>(info.f_type)) {
    case 0x6969: kind = "NFS"; break;
    case 0xFF534D42: kind = "CIFS"; break;
    case 0xFE534D42: kind = "SMB2"; break;
    case 0x517B: kind = "SMB"; break;
    case 0x65735546: kind = "FUSE"; break;
    default: return "";
  }
  std::string warning = directory + " is on " + kind +
                        ": file locks there may not exclude other machines or may be "
                        "ignored, so concurrent updates can be lost. Keep the herd workspace "
                        "on a local disk (set CLAUDE_ORCHESTRATOR_WORKSPACE)";
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> guard(mutex);
  if (warned.insert(directory).second) spdlog::warn("{}", warning);
  return warning;
}

}  // namespace herd::store
