#include "health/check_context.h"

#include <algorithm>

#include "registry/registries.h"

namespace herd::health {

std::vector<std::string> TaskIdsOf(const CheckContext& context) {
  Result<std::vector<std::string>> listed =
      registry::RegistryFor(*context.stores, context.workspace)->TaskIds();
  if (!listed.ok()) return {};
  std::vector<std::string> task_ids = std::move(listed).value();
  if (context.task_id.empty()) return task_ids;
  bool present = std::find(task_ids.begin(), task_ids.end(), context.task_id) != task_ids.end();
  return present ? std::vector<std::string>{context.task_id} : std::vector<std::string>{};
}

}  // namespace herd::health
