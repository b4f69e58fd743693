#include "registry/ids.h"

#include <cctype>
#include <ctime>

#include "util/clock.h"
#include "util/random.h"

namespace herd::registry {
namespace {

constexpr size_t kMaxIdLength = 128;
constexpr size_t kMaxTypePrefix = 40;

Status ValidateId(const std::string& id, const char* what) {
  if (id.empty()) return Status::InvalidArgument(std::string(what) + " is empty");
  if (id.size() > kMaxIdLength) {
    return Status::InvalidArgument(std::string(what) + " is longer than 128 characters");
  }
  if (!std::isalnum(static_cast<unsigned char>(id[0]))) {
    return Status::InvalidArgument(std::string(what) + " \"" + id +
                                   "\" must start with a letter or digit");
  }
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return Status::InvalidArgument(std::string(what) + " \"" + id +
                                     "\" may contain only letters, digits, '-' and '_'");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string NewTaskId() {
  return "TASK-" + CompactUtcStamp() + "-" + RandomHex(8);
}

std::string SafeTypePrefix(const std::string& agent_type) {
  std::string prefix;
  for (char c : agent_type) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '_') {
      prefix += static_cast<char>(std::tolower(u));
    } else if (!prefix.empty() && prefix.back() != '-') {
      prefix += '-';
    }
    if (prefix.size() >= kMaxTypePrefix) break;
  }
  while (!prefix.empty() && (prefix.back() == '-' || prefix.back() == '_')) prefix.pop_back();
  while (!prefix.empty() && prefix.front() == '_') prefix.erase(prefix.begin());
  return prefix.empty() ? "agent" : prefix;
}

std::string NewAgentId(const std::string& agent_type) {
  time_t now = time(nullptr);
  tm utc{};
  gmtime_r(&now, &utc);
  char clock[16];
  std::snprintf(clock, sizeof clock, "%02d%02d%02d", utc.tm_hour, utc.tm_min, utc.tm_sec);
  return SafeTypePrefix(agent_type) + "-" + clock + "-" + RandomHex(6);
}

Status ValidateTaskId(const std::string& task_id) {
  return ValidateId(task_id, "task id");
}

Status ValidateAgentId(const std::string& agent_id) {
  return ValidateId(agent_id, "agent id");
}

Status ValidateAgentType(const std::string& agent_type) {
  if (agent_type.empty()) {
    return Status::InvalidArgument("agent type is empty: give a short role such as \"tester\"");
  }
  if (agent_type.size() > kMaxIdLength) {
    return Status::InvalidArgument("agent type is longer than 128 characters: use a short role");
  }
  bool has_alnum = false;
  for (char c : agent_type) {
    unsigned char u = static_cast<unsigned char>(c);
    if (std::iscntrl(u)) {
      return Status::InvalidArgument("agent type contains a control character");
    }
    if (std::isalnum(u)) has_alnum = true;
  }
  if (!has_alnum) {
    return Status::InvalidArgument(
        "agent type \"" + agent_type +
        "\" has no letter or digit: give a short role such as \"tester\"");
  }
  return Status::Ok();
}

}  // namespace herd::registry
