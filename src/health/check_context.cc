#include "health/check_context.h"

#include <algorithm>

namespace herd::health {

std::vector<std::string> TaskIdsOf(const CheckContext& context) {
  std::vector<std::string> task_ids = context.workspace.TaskIds();
  if (context.task_id.empty()) return task_ids;
  bool present = std::find(task_ids.begin(), task_ids.end(), context.task_id) != task_ids.end();
  return present ? std::vector<std::string>{context.task_id} : std::vector<std::string>{};
}

}  // namespace herd::health
