#include "health/workspace_files.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "registry/workspace.h"
#include "store/file_system.h"

namespace herd::health {
namespace {

// Permission bits herd never leaves on its files: group and other.
constexpr mode_t kSharedBits = 077;
// Paths named in a finding's detail; the repair covers them all.
constexpr size_t kExamplesShown = 5;

struct WalkResult {
  std::vector<std::pair<std::string, std::string>> links;  // path, target
  std::vector<std::string> open;                           // group/other bits set
};

// nftw has no user pointer: the walk in progress, one at a time per thread.
thread_local WalkResult* current_walk = nullptr;

int Visit(const char* path, const struct stat* info, int type, struct FTW*) {
  if (type == FTW_SL || type == FTW_SLN) {
    char target[4096];
    ssize_t length = ::readlink(path, target, sizeof target - 1);
    current_walk->links.emplace_back(
        path, length > 0 ? std::string(target, static_cast<size_t>(length)) : "?");
    return FTW_CONTINUE;
  }
  if ((type == FTW_F || type == FTW_D || type == FTW_DP) && (info->st_mode & kSharedBits) != 0) {
    current_walk->open.push_back(path);
  }
  return FTW_CONTINUE;
}

// Walks `root` (which may be missing) without following links.
void Walk(const std::string& root, WalkResult* result) {
  struct stat info {};
  if (::lstat(root.c_str(), &info) != 0) return;
  current_walk = result;
  ::nftw(root.c_str(), Visit, 32, FTW_PHYS | FTW_ACTIONRETVAL);
  current_walk = nullptr;
}

// The directories of the base that are not task directories, without
// descending: registry/ and metrics/ are walked on their own.
void CheckBaseItself(const std::string& base, WalkResult* result) {
  struct stat info {};
  if (::lstat(base.c_str(), &info) != 0) return;
  if (S_ISLNK(info.st_mode)) {
    Walk(base, result);  // reports the link, goes no further
    return;
  }
  if ((info.st_mode & kSharedBits) != 0) result->open.push_back(base);
}

RepairOutcome TightenPermissions(const std::vector<std::string>& paths) {
  int tightened = 0;
  for (const std::string& path : paths) {
    struct stat info {};
    // Re-checked: never through a link, only what is still too open.
    if (::lstat(path.c_str(), &info) != 0 || S_ISLNK(info.st_mode)) continue;
    if ((info.st_mode & kSharedBits) == 0) continue;
    mode_t mode = S_ISDIR(info.st_mode) ? store::kPrivateDirectoryMode
                                        : (info.st_mode & 07700 & ~static_cast<mode_t>(S_ISUID));
    if (::chmod(path.c_str(), mode) != 0) {
      return RepairOutcome::Failed(Status::FromErrno("cannot change the mode of " + path, errno));
    }
    ++tightened;
  }
  if (tightened == 0) return RepairOutcome::Unchanged("every path was already private");
  return RepairOutcome::Changed("made " + std::to_string(tightened) +
                                " files and directories private to their owner");
}

}  // namespace

std::vector<Finding> CheckWorkspaceFiles(const CheckContext& context) {
  const registry::Workspace& workspace = context.workspace;
  WalkResult walk;
  CheckBaseItself(workspace.base(), &walk);
  if (!registry::IsSymbolicLink(workspace.base())) {
    Walk(workspace.IndexDirectory(), &walk);
    Walk(workspace.MetricsDirectory(), &walk);
    for (const std::string& name : registry::ListDirectory(workspace.base())) {
      if (name.rfind("TASK-", 0) != 0) continue;
      if (!context.task_id.empty() && name != context.task_id) continue;
      Walk(workspace.TaskDirectory(name), &walk);
    }
  }

  std::vector<Finding> findings;
  for (const auto& [path, target] : walk.links) {
    Finding finding;
    finding.kind = FindingKind::kWorkspaceLink;
    finding.severity = Severity::kError;
    finding.path = path;
    std::string relative = path.substr(workspace.base().size());
    if (relative.rfind("/TASK-", 0) == 0) {
      finding.task_id = relative.substr(1, relative.find('/', 1) - 1);
    }
    finding.detail = path + " is a symbolic link to " + target +
                     "; herd never follows links inside a workspace, so operations that meet it "
                     "refuse (a repository can ship one to redirect herd's writes)";
    finding.no_fix_reason =
        "herd did not create it, so it leaves it alone: if you did not put it "
        "there, remove it (rm " +
        path + ")";
    findings.push_back(std::move(finding));
  }
  if (!walk.open.empty()) {
    Finding finding;
    finding.kind = FindingKind::kOpenPermissions;
    finding.severity = Severity::kWarning;
    finding.path = walk.open.front();
    std::string examples;
    for (size_t i = 0; i < walk.open.size() && i < kExamplesShown; ++i) {
      examples += (i ? ", " : "") + walk.open[i];
    }
    if (walk.open.size() > kExamplesShown) examples += ", ...";
    finding.detail = std::to_string(walk.open.size()) +
                     " files or directories can be read by other users (" + examples +
                     "); prompts, registries and logs carry secrets";
    std::vector<std::string> paths = walk.open;
    finding.fix = std::make_shared<Fix>(
        FindingKind::kOpenPermissions, workspace.base(),
        "make " + std::to_string(paths.size()) + " files and directories private (0600/0700)",
        [paths] { return TightenPermissions(paths); });
    findings.push_back(std::move(finding));
  }
  return findings;
}

}  // namespace herd::health
