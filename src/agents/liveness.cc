#include "agents/liveness.h"

#include <cstdlib>
#include <string>

#include "agents/process.h"
#include "registry/task_registry.h"
#include "util/clock.h"

namespace herd::agents {
Liveness ClassifyLiveness(const registry::AgentRecord& agent, double now_unix_seconds,
                          std::chrono::seconds starting_grace, ProcessWatch* watch) {
  auto is_alive = [watch](const ProcessIdentity& identity) {
    return watch != nullptr ? watch->IsAlive(identity) : IsAlive(identity);
  };
  if (!registry::IsActiveStatus(agent.status)) return Liveness::kEnded;
  if (!RunsOnThisMachine(agent)) return Liveness::kOnOtherNode;
  const ProcessIdentity& process = agent.process;
  const ProcessIdentity& supervisor = agent.supervisor;
  bool supervisor_alive = supervisor.pid > 0 && is_alive(supervisor);
  if (agent.phase == "starting" || process.pid <= 0) {
    if (supervisor_alive) return Liveness::kStarting;
    const std::string& started_at = agent.started_at.empty() ? agent.last_update : agent.started_at;
    std::optional<double> started = ParseIso8601(started_at);
    // An entry without a readable start time is given the benefit of the doubt.
    if (!started || now_unix_seconds - *started < static_cast<double>(starting_grace.count())) {
      return Liveness::kStarting;
    }
    return Liveness::kStartLost;
  }
  bool process_alive = is_alive(process);
  if (process_alive) return supervisor_alive ? Liveness::kAlive : Liveness::kUnsupervised;
  return supervisor_alive ? Liveness::kExiting : Liveness::kLost;
}

bool RunsOnThisMachine(const registry::AgentRecord& agent) {
  if (!agent.node) return true;
  const char* name = getenv("HERD_NODE");
  const char* incarnation = getenv("HERD_NODE_INCARNATION");
  return name != nullptr && incarnation != nullptr && agent.node->name == name &&
         std::to_string(agent.node->incarnation) == incarnation;
}

const char* LivenessName(Liveness liveness) {
  switch (liveness) {
    case Liveness::kEnded: return "ended";
    case Liveness::kStarting: return "starting";
    case Liveness::kAlive: return "alive";
    case Liveness::kUnsupervised: return "unsupervised";
    case Liveness::kExiting: return "exiting";
    case Liveness::kOnOtherNode: return "on_node";
    case Liveness::kStartLost:
    case Liveness::kLost: return "lost";
  }
  return "lost";
}

bool IsLost(Liveness liveness) {
  return liveness == Liveness::kLost || liveness == Liveness::kStartLost;
}

}  // namespace herd::agents
