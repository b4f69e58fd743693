#include "health/processes.h"

namespace herd::health {

StopFigures StopProcessTrees(const std::vector<ProcessIdentity>& roots,
                             std::chrono::milliseconds grace) {
  return agents::StopProcesses(
      [&roots] {
        std::vector<ProcessIdentity> trees;
        for (const ProcessIdentity& root : roots) {
          if (!agents::IsAlive(root)) continue;
          trees.push_back(root);
          for (const ProcessIdentity& child : agents::Descendants(root.pid)) trees.push_back(child);
        }
        return trees;
      },
      grace);
}

}  // namespace herd::health
