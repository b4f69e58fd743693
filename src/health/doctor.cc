#include "health/doctor.h"

namespace herd::health {

Result<nlohmann::json> Diagnose(const registry::RegistryStores&, const registry::Workspace&,
                                const DoctorOptions&) {
  return Status::InvalidArgument("herd doctor is not implemented yet");
}

std::string RenderReport(const nlohmann::json& report) { return report.dump(2) + "\n"; }

}  // namespace herd::health
