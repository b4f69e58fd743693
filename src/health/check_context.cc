#include "health/check_context.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>

#include "registry/ids.h"

namespace herd::health {

std::vector<std::string> TaskIdsOf(const CheckContext& context) {
  std::vector<std::string> task_ids;
  DIR* directory = opendir(context.workspace.base().c_str());
  if (directory == nullptr) return task_ids;
  while (dirent* entry = readdir(directory)) {
    std::string name = entry->d_name;
    if (name.rfind("TASK-", 0) != 0 || !registry::ValidateTaskId(name).ok()) continue;
    if (!context.task_id.empty() && name != context.task_id) continue;
    struct stat info {};
    std::string path = context.workspace.TaskDirectory(name);
    if (stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode)) task_ids.push_back(name);
  }
  closedir(directory);
  std::sort(task_ids.begin(), task_ids.end());
  return task_ids;
}

}  // namespace herd::health
