#include "registry/metrics.h"

#include <unistd.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "registry/file_names.h"
#include "registry/workspace.h"
#include "util/clock.h"
#include "util/text_file.h"

namespace herd::registry {

std::string WorkspaceBaseOf(const std::string& registry_path) {
  size_t file_slash = registry_path.rfind('/');
  if (file_slash == std::string::npos || file_slash == 0) return "";
  size_t directory_slash = registry_path.rfind('/', file_slash - 1);
  if (directory_slash == std::string::npos) return "";
  return registry_path.substr(0, directory_slash);
}

void RecordTransactionMetrics(const std::string& path, const store::TransactionStats& stats,
                              const Status& status) {
  std::string base = WorkspaceBaseOf(path);
  if (base.empty()) return;
  std::string directory = Workspace(base).MetricsDirectory();
  {
    // Whether each directory is usable, decided once per process: created
    // if missing, never written through a symbolic link.
    static std::mutex mutex;
    static std::map<std::string, bool> usable;
    std::lock_guard<std::mutex> guard(mutex);
    auto [found, inserted] = usable.try_emplace(directory, false);
    if (inserted) {
      found->second = Workspace(base).CheckLayout().ok() && MakeDirectories(directory).ok();
    }
    if (!found->second) return;
  }
  const char* outcome = "ok";
  if (status.Is(Status::Code::kTimeout))
    outcome = "timeout";
  else if (status.Is(Status::Code::kCorruption))
    outcome = "corruption";
  else if (status.Is(Status::Code::kNotDurable))
    outcome = "not_durable";
  else if (!status.ok() && stats.committed)
    outcome = "error";
  else if (status.Is(Status::Code::kIOError))
    outcome = "error";
  nlohmann::json line = {{"t", NowUnixSeconds()},         {"file", path.substr(base.size() + 1)},
                         {"wait_ms", stats.lock_wait_ms}, {"hold_ms", stats.hold_ms},
                         {"flushes", stats.flushes},      {"committed", stats.committed},
                         {"recovered", stats.recovered},  {"outcome", outcome}};
  // Metrics are best effort: a full disk must not fail the transaction.
  (void)AppendLine(directory + "/" + ProcessMetricsFileName(getpid()), line.dump());
}

}  // namespace herd::registry
