// Store file names: the files the store keeps beside a document, made and
// parsed in this one place (after LevelDB's db/filename.h).
//
// For a document at path D the store uses:
//
//   D.lock                                 its lock (store/file_lock.h), never removed
//   D.bak                                  the previous committed version
//   D.tmp.<pid>.<16 hex>                   a replace in progress; gone once it returns
//   D.corrupt.<UTC stamp>.<pid>.<16 hex>   a damaged version the store moved aside
//   D.corrupt.<UTC stamp>.<pid>            one `herd doctor --repair` moved aside
//
// Older herds wrote temp files as `D.tmp.<pid>`; the parser still takes
// them, so doctor can clean them up. The makers take a path and return a
// path; ParseSidecarName takes the name of a directory entry (no directory
// part). Nothing here touches the disk; everything is thread-safe.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace herd::store {

inline constexpr char kLockSuffix[] = ".lock";
inline constexpr char kBackupSuffix[] = ".bak";
inline constexpr char kTempMarker[] = ".tmp.";
inline constexpr char kQuarantineMarker[] = ".corrupt.";

// "D.lock".
std::string LockFileName(const std::string& document);

// "D.bak".
std::string BackupFileName(const std::string& document);

// "<pid>.<16 random hex digits>": unique across processes and calls.
std::string UniqueSuffix();

// "D.tmp.<UniqueSuffix>": a name beside D that no other process or call uses.
std::string TempFileName(const std::string& document);

// "D.corrupt.<CompactUtcStamp now>.<unique>". The store passes UniqueSuffix()
// (a second recovery in the same second never replaces the first copy);
// doctor passes its pid.
std::string QuarantineFileName(const std::string& document, const std::string& unique);

enum class SidecarType { kLock, kBackup, kTemp, kQuarantine };

struct SidecarName {
  SidecarType type = SidecarType::kLock;
  std::string document;  // the name of the document it belongs to
  pid_t writer = 0;      // kTemp: the process writing it
  std::string detail;    // kQuarantine: what follows the marker (stamp and writer)
};

// What `name` is a sidecar of, or nullopt for any other name. A name with
// the quarantine marker anywhere is a quarantined copy (doctor reports them
// and never deletes them, so a lookalike costs a warning at worst). A temp
// file needs a document name before the last ".tmp.", then a pid of 1 to 9
// digits and optionally "." and hex digits; a lock or backup, a document
// name before its suffix.
std::optional<SidecarName> ParseSidecarName(std::string_view name);

}  // namespace herd::store
