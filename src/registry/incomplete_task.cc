#include "registry/incomplete_task.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>

#include "store/file_lock.h"
#include "store/file_names.h"

namespace herd::registry {
namespace {

enum class EntryType { kMissing, kDirectory, kRegularFile, kOther };

// What `path` itself is (symlinks are not followed).
EntryType TypeOf(const std::string& path) {
  struct stat info {};
  if (lstat(path.c_str(), &info) != 0) return EntryType::kMissing;
  if (S_ISDIR(info.st_mode)) return EntryType::kDirectory;
  if (S_ISREG(info.st_mode)) return EntryType::kRegularFile;
  return EntryType::kOther;
}

bool IsTaskSubdirectory(const std::string& name) {
  return std::find_if(std::begin(kTaskSubdirectories), std::end(kTaskSubdirectories),
                      [&](const char* sub) { return name == sub; }) !=
         std::end(kTaskSubdirectories);
}

std::string LockFileName(const Workspace& workspace, const std::string& task_id) {
  std::string path = store::LockFileName(workspace.TaskRegistryPath(task_id));
  return path.substr(path.rfind('/') + 1);
}

// rmdir(2), where a directory that is already gone is not an error and one
// that is not empty is Refused.
Status RemoveEmptyDirectory(const std::string& path) {
  if (rmdir(path.c_str()) == 0 || errno == ENOENT) return Status::Ok();
  if (errno == ENOTEMPTY || errno == EEXIST) {
    return Status::Refused(path + " is no longer empty; left as it is");
  }
  return Status::FromErrno("cannot remove " + path, errno);
}

}  // namespace

std::vector<std::string> EntriesBeyondScaffolding(const Workspace& workspace,
                                                  const std::string& task_id) {
  std::string directory = workspace.TaskDirectory(task_id);
  std::string lock_name = LockFileName(workspace, task_id);
  std::vector<std::string> beyond;
  for (const std::string& name : ListDirectory(directory)) {
    EntryType type = TypeOf(directory + "/" + name);
    if (type == EntryType::kDirectory && IsTaskSubdirectory(name)) {
      for (const std::string& inside : ListDirectory(directory + "/" + name)) {
        bool is_directory = TypeOf(directory + "/" + name + "/" + inside) == EntryType::kDirectory;
        beyond.push_back(name + "/" + inside + (is_directory ? "/" : ""));
      }
    } else if (!(type == EntryType::kRegularFile && name == lock_name)) {
      beyond.push_back(name + (type == EntryType::kDirectory ? "/" : ""));
    }
  }
  std::sort(beyond.begin(), beyond.end());
  return beyond;
}

Status RemoveTaskScaffolding(const RegistryStores& stores, const Workspace& workspace,
                             const std::string& task_id) {
  std::string directory = workspace.TaskDirectory(task_id);
  std::string registry = workspace.TaskRegistryPath(task_id);
  std::string lock_path = store::LockFileName(registry);
  if (TypeOf(directory) == EntryType::kMissing) return Status::Ok();
  auto check = [&]() -> Status {
    for (const std::string& path : {registry, store::BackupFileName(registry)}) {
      if (TypeOf(path) != EntryType::kMissing) {
        return Status::Refused(directory + " has a registry (" + path + "); left as it is");
      }
    }
    std::vector<std::string> beyond = EntriesBeyondScaffolding(workspace, task_id);
    if (beyond.empty()) return Status::Ok();
    std::string listed;
    for (const std::string& entry : beyond) listed += (listed.empty() ? "" : ", ") + entry;
    return Status::Refused(directory + " holds what herd did not create (" + listed +
                           "); left as it is");
  };
  // Looked at before the lock too: taking it would create the lock file.
  HERD_RETURN_IF_ERROR(check());
  Result<store::FileLock> lock =
      store::FileLock::Acquire(lock_path, stores.tasks.options().lock_timeout);
  if (!lock.ok()) return lock.status();
  HERD_RETURN_IF_ERROR(check());
  for (const char* sub : kTaskSubdirectories) {
    HERD_RETURN_IF_ERROR(RemoveEmptyDirectory(directory + "/" + sub));
  }
  // The lock file goes last but one: a transaction that opened it meanwhile
  // finds no document and no directory to write one in.
  if (unlink(lock_path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("cannot remove " + lock_path, errno);
  }
  return RemoveEmptyDirectory(directory);
}

}  // namespace herd::registry
