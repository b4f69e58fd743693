// herd doctor: finds what went wrong in a workspace and repairs it.
//
// (Interface fixed; implementation in progress.)
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::health {

struct DoctorOptions {
  std::string task_id;   // "" = every task in every known workspace base
  bool repair = false;   // fix what is found, in store transactions
  bool dry_run = false;  // with repair: say what would change, change nothing
};

// The health report (and, with repair, the changes made) as JSON.
Result<nlohmann::json> Diagnose(const registry::RegistryStores& stores,
                                const registry::Workspace& preferred, const DoctorOptions& options);

// The report as text for a terminal.
std::string RenderReport(const nlohmann::json& report);

}  // namespace herd::health
