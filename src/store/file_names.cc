#include "store/file_names.h"

#include <unistd.h>

#include <cstdlib>

#include "util/clock.h"
#include "util/random.h"

namespace herd::store {
namespace {

constexpr size_t kMaxPidDigits = 9;

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

bool AllOf(std::string_view text, std::string_view allowed) {
  return text.find_first_not_of(allowed) == std::string_view::npos;
}

// The temp file "D.tmp.<pid>[.<hex>]", or nullopt.
std::optional<SidecarName> ParseTempName(std::string_view name) {
  size_t marker = name.rfind(kTempMarker);
  if (marker == std::string_view::npos || marker == 0) return std::nullopt;
  std::string_view rest = name.substr(marker + sizeof kTempMarker - 1);
  size_t dot = rest.find('.');
  std::string_view pid = rest.substr(0, dot);
  if (pid.empty() || pid.size() > kMaxPidDigits || !AllOf(pid, "0123456789")) return std::nullopt;
  if (dot != std::string_view::npos) {
    std::string_view random = rest.substr(dot + 1);
    if (random.empty() || !AllOf(random, "0123456789abcdefABCDEF")) return std::nullopt;
  }
  SidecarName parsed;
  parsed.type = SidecarType::kTemp;
  parsed.document = std::string(name.substr(0, marker));
  parsed.writer = static_cast<pid_t>(std::strtol(std::string(pid).c_str(), nullptr, 10));
  return parsed;
}

}  // namespace

std::string LockFileName(const std::string& document) {
  return document + kLockSuffix;
}

std::string BackupFileName(const std::string& document) {
  return document + kBackupSuffix;
}

std::string UniqueSuffix() {
  return std::to_string(getpid()) + "." + RandomHex(16);
}

std::string TempFileName(const std::string& document) {
  return document + kTempMarker + UniqueSuffix();
}

std::string QuarantineFileName(const std::string& document, const std::string& unique) {
  return document + kQuarantineMarker + CompactUtcStamp() + "." + unique;
}

std::optional<SidecarName> ParseSidecarName(std::string_view name) {
  size_t quarantine = name.find(kQuarantineMarker);
  if (quarantine != std::string_view::npos) {
    SidecarName parsed;
    parsed.type = SidecarType::kQuarantine;
    parsed.document = std::string(name.substr(0, quarantine));
    parsed.detail = std::string(name.substr(quarantine + sizeof kQuarantineMarker - 1));
    return parsed;
  }
  if (std::optional<SidecarName> temp = ParseTempName(name)) return temp;
  for (auto [suffix, type] : {std::pair{std::string_view(kBackupSuffix), SidecarType::kBackup},
                              std::pair{std::string_view(kLockSuffix), SidecarType::kLock}}) {
    if (name.size() > suffix.size() && EndsWith(name, suffix)) {
      SidecarName parsed;
      parsed.type = type;
      parsed.document = std::string(name.substr(0, name.size() - suffix.size()));
      return parsed;
    }
  }
  return std::nullopt;
}

}  // namespace herd::store
