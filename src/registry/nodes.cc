#include "registry/nodes.h"

#include <algorithm>
#include <cctype>

namespace herd::registry {
namespace {

constexpr size_t kMaxNameBytes = 63;

bool IsName(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  if (!std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

bool HasLabels(const NodeView& node, const std::vector<std::string>& labels) {
  return std::all_of(labels.begin(), labels.end(), [&](const std::string& label) {
    return std::find(node.spec.labels.begin(), node.spec.labels.end(), label) !=
           node.spec.labels.end();
  });
}

std::string Joined(const std::vector<std::string>& items) {
  std::string joined;
  for (const std::string& item : items) joined += (joined.empty() ? "" : ", ") + item;
  return joined;
}

// Why `node` cannot take the agent, or "" if it can.
std::string Unfit(const NodeView& node, const PlacementRequest& request) {
  if (node.state == "left") return "stopped";
  if (node.state == "expired" || !node.leased()) return "lease expired";
  if (!HasLabels(node, request.labels)) {
    return "labels " + (node.spec.labels.empty() ? "none" : Joined(node.spec.labels));
  }
  if (node.running >= node.spec.capacity) {
    return std::to_string(node.running) + " of " + std::to_string(node.spec.capacity) + " running";
  }
  return "";
}

}  // namespace

Status ValidateNodeSpec(const NodeSpec& spec) {
  if (!IsName(spec.name)) {
    return Status::InvalidArgument(
        "node name \"" + spec.name +
        "\" is not valid: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or "
        "digit");
  }
  if (spec.capacity < 1) {
    return Status::InvalidArgument("node capacity must be at least 1 (agents at once)");
  }
  for (const std::string& label : spec.labels) {
    if (!IsName(label)) {
      return Status::InvalidArgument("label \"" + label +
                                     "\" is not valid: use letters, digits, '.', '_' or '-'");
    }
  }
  return Status::Ok();
}

Result<const NodeView*> ChoosePlacement(const std::vector<NodeView>& nodes,
                                        const PlacementRequest& request) {
  std::string wanted = request.labels.empty() ? "" : " with labels " + Joined(request.labels);
  if (!request.node.empty()) {
    auto named = std::find_if(nodes.begin(), nodes.end(),
                              [&](const NodeView& node) { return node.spec.name == request.node; });
    if (named == nodes.end()) {
      std::vector<std::string> known;
      for (const NodeView& node : nodes) known.push_back(node.spec.name);
      return Status::Refused("there is no node " + request.node + " (the registry knows " +
                             (known.empty() ? std::string("none") : Joined(known)) +
                             "): name one of those, or none to place the agent on any node with "
                             "room");
    }
    std::string unfit = Unfit(*named, request);
    if (!unfit.empty()) {
      return Status::Refused("node " + request.node + " cannot take the agent" + wanted + " (" +
                             unfit +
                             "): name another node, or none to place the agent on any node with "
                             "room");
    }
    return &*named;
  }
  const NodeView* best = nullptr;
  std::vector<std::string> reasons;
  for (const NodeView& node : nodes) {
    std::string unfit = Unfit(node, request);
    if (!unfit.empty()) {
      if (node.state != "left") reasons.push_back(node.spec.name + " (" + unfit + ")");
      continue;
    }
    // running/capacity compared without division.
    auto better = [](const NodeView& a, const NodeView& b) {
      int64_t left = static_cast<int64_t>(a.running) * b.spec.capacity;
      int64_t right = static_cast<int64_t>(b.running) * a.spec.capacity;
      if (left != right) return left < right;
      if (a.running != b.running) return a.running < b.running;
      return a.spec.name < b.spec.name;
    };
    if (best == nullptr || better(node, *best)) best = &node;
  }
  if (best != nullptr) return best;
  if (reasons.empty()) {
    return Status::Refused(
        "no herd node is running: start `herd node` on a machine that is to "
        "run agents (it registers itself in this registry)");
  }
  return Status::Refused("no node can take the agent" + wanted + ": " + Joined(reasons) +
                         ": wait for agents to end, raise a node's --capacity, or start "
                         "`herd node` on another machine");
}

}  // namespace herd::registry
