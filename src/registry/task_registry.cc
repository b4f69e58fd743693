#include "registry/task_registry.h"

#include <cstdlib>

#include "util/clock.h"

namespace herd::registry {
namespace {

constexpr const char* kActiveStatuses[] = {"running", "working", "blocked"};
constexpr const char* kTerminalStatuses[] = {"completed", "error", "terminated", "failed"};
constexpr size_t kPromptPreviewLength = 200;

int LimitFromEnvironment(const char* name, int fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (end == nullptr || *end != '\0' || value < 1 || value > 100000) return fallback;
  return static_cast<int>(value);
}

std::string Utf8Prefix(const std::string& text, size_t limit) {
  if (text.size() <= limit) return text;
  size_t cut = limit;
  // Do not split a multi-byte UTF-8 sequence.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

int IntOr(const json& object, const char* key, int fallback) {
  auto found = object.find(key);
  if (found == object.end() || !found->is_number_integer()) return fallback;
  return found->get<int>();
}

std::string StringOr(const json& object, const char* key, const std::string& fallback = "") {
  auto found = object.find(key);
  if (found == object.end() || !found->is_string()) return fallback;
  return found->get<std::string>();
}

}  // namespace

bool IsActiveStatus(const std::string& status) {
  for (const char* active : kActiveStatuses) {
    if (status == active) return true;
  }
  return false;
}

bool IsTerminalStatus(const std::string& status) {
  for (const char* terminal : kTerminalStatuses) {
    if (status == terminal) return true;
  }
  return false;
}

Status ValidateAgentStatus(const std::string& status) {
  if (IsActiveStatus(status) || IsTerminalStatus(status)) return Status::Ok();
  return Status::InvalidArgument(
      "unknown status \"" + status +
      "\": use one of running, working, blocked (active) or completed, error, terminated, "
      "failed (final)");
}

Limits Limits::FromEnvironment() {
  Limits limits;
  limits.max_agents = LimitFromEnvironment("CLAUDE_ORCHESTRATOR_MAX_AGENTS", limits.max_agents);
  limits.max_concurrent =
      LimitFromEnvironment("CLAUDE_ORCHESTRATOR_MAX_CONCURRENT", limits.max_concurrent);
  limits.max_depth = LimitFromEnvironment("CLAUDE_ORCHESTRATOR_MAX_DEPTH", limits.max_depth);
  return limits;
}

json NewTaskDocument(const std::string& task_id, const TaskSpec& spec,
                     const std::string& workspace_base) {
  json task = {
      {"task_id", task_id},
      {"task_description", spec.description},
      {"created_at", NowIso8601()},
      {"workspace", workspace_base + "/" + task_id},
      {"workspace_base", workspace_base},
      {"client_cwd", spec.client_cwd.empty() ? json(nullptr) : json(spec.client_cwd)},
      {"status", "INITIALIZED"},
      {"priority", spec.priority},
      {"agents", json::array()},
      {"agent_hierarchy", {{kOrchestratorParent, json::array()}}},
      {"max_agents", spec.limits.max_agents},
      {"max_concurrent", spec.limits.max_concurrent},
      {"max_depth", spec.limits.max_depth},
      {"total_spawned", 0},
      {"active_count", 0},
      {"completed_count", 0},
      {"spiral_checks", {{"enabled", true}, {"last_check", nullptr}, {"violations", 0}}},
  };
  if (!spec.context.empty()) task["task_context"] = spec.context;
  return task;
}

Status ValidateTaskDocument(const json& document) {
  if (!document.is_object()) return Status::Corruption("the registry is not a JSON object");
  auto task_id = document.find("task_id");
  if (task_id == document.end() || !task_id->is_string()) {
    return Status::Corruption("the registry has no task_id");
  }
  auto agents = document.find("agents");
  if (agents == document.end() || !agents->is_array()) {
    return Status::Corruption("the registry has no agents list");
  }
  for (const json& agent : *agents) {
    if (!agent.is_object() || !agent.contains("id") || !agent["id"].is_string()) {
      return Status::Corruption("the registry has an agent entry without an id");
    }
  }
  return Status::Ok();
}

void RecomputeCounts(json& task) {
  int active = 0;
  int completed = 0;
  const json& agents = task["agents"];
  for (const json& agent : agents) {
    std::string status = StringOr(agent, "status");
    if (IsActiveStatus(status)) ++active;
    if (status == "completed") ++completed;
  }
  task["total_spawned"] = static_cast<int>(agents.size());
  task["active_count"] = active;
  task["completed_count"] = completed;
  if (agents.empty()) {
    task["status"] = "INITIALIZED";
  } else {
    task["status"] = active > 0 ? "ACTIVE" : "COMPLETED";
  }
}

json* FindAgent(json& task, const std::string& agent_id) {
  auto agents = task.find("agents");
  if (agents == task.end() || !agents->is_array()) return nullptr;
  for (json& agent : *agents) {
    if (agent.is_object() && StringOr(agent, "id") == agent_id) return &agent;
  }
  return nullptr;
}

const json* FindAgent(const json& task, const std::string& agent_id) {
  return FindAgent(const_cast<json&>(task), agent_id);
}

int AgentDepth(const json& task, const std::string& agent_id) {
  const json* agent = FindAgent(task, agent_id);
  return agent == nullptr ? 0 : IntOr(*agent, "depth", 1);
}

Result<json> AdmitAgent(json& task, const AdmissionRequest& request) {
  const std::string task_id = StringOr(task, "task_id");
  int depth = 1;
  if (request.parent != kOrchestratorParent) {
    const json* parent = FindAgent(task, request.parent);
    if (parent == nullptr) {
      return Status::Refused("parent agent " + request.parent + " is not part of task " + task_id +
                             ": use an agent id from `herd status " + task_id + "`");
    }
    std::string parent_status = StringOr(*parent, "status");
    if (!IsActiveStatus(parent_status)) {
      return Status::Refused("parent agent " + request.parent + " has already ended (" +
                             parent_status + "); only an active agent can start children");
    }
    depth = IntOr(*parent, "depth", 1) + 1;
  }

  RecomputeCounts(task);
  int max_depth = IntOr(task, "max_depth", 5);
  int max_concurrent = IntOr(task, "max_concurrent", 20);
  int max_agents = IntOr(task, "max_agents", 45);
  if (depth > max_depth) {
    return Status::Refused("max_depth reached: a child of " + request.parent + " would be at depth " +
                           std::to_string(depth) + " but task " + task_id + " allows " +
                           std::to_string(max_depth) +
                           "; create the task with a higher --max-depth");
  }
  if (task["active_count"].get<int>() >= max_concurrent) {
    return Status::Refused("max_concurrent reached: task " + task_id + " already has " +
                           std::to_string(max_concurrent) +
                           " active agents; wait for one to finish or kill one, or create the "
                           "task with a higher --max-concurrent");
  }
  if (task["total_spawned"].get<int>() >= max_agents) {
    return Status::Refused("max_agents reached: task " + task_id + " has started " +
                           std::to_string(max_agents) +
                           " agents in its lifetime; create a new task or one with a higher "
                           "--max-agents");
  }
  if (FindAgent(task, request.agent_id) != nullptr) {
    return Status::Refused("agent id " + request.agent_id + " is already taken; deploy again");
  }

  std::string now = NowIso8601();
  json agent = {
      {"id", request.agent_id},
      {"type", request.type},
      {"parent", request.parent},
      {"depth", depth},
      {"status", "running"},
      {"phase", "starting"},
      {"started_at", now},
      {"last_update", now},
      {"progress", 0},
      {"prompt", Utf8Prefix(request.prompt, kPromptPreviewLength)},
      {"tracked_files", request.tracked_files},
      {"backend", request.backend},
      {"model", request.model.empty() ? json(nullptr) : json(request.model)},
      {"cwd", request.cwd},
  };
  task["agents"].push_back(agent);
  json& hierarchy = task["agent_hierarchy"];
  if (!hierarchy.is_object()) hierarchy = json::object();
  if (!hierarchy[request.parent].is_array()) hierarchy[request.parent] = json::array();
  hierarchy[request.parent].push_back(request.agent_id);
  RecomputeCounts(task);
  return agent;
}

void ReleaseAgent(json& task, const std::string& agent_id) {
  json& agents = task["agents"];
  for (auto it = agents.begin(); it != agents.end(); ++it) {
    if (StringOr(*it, "id") == agent_id) {
      std::string parent = StringOr(*it, "parent", kOrchestratorParent);
      agents.erase(it);
      json& siblings = task["agent_hierarchy"][parent];
      if (siblings.is_array()) {
        for (auto sibling = siblings.begin(); sibling != siblings.end(); ++sibling) {
          if (*sibling == agent_id) {
            siblings.erase(sibling);
            break;
          }
        }
      }
      break;
    }
  }
  RecomputeCounts(task);
}

Result<json> ApplyProgress(json& task, const std::string& agent_id, const std::string& status,
                           const std::string& message, int progress,
                           const std::string& timestamp) {
  HERD_RETURN_IF_ERROR(ValidateAgentStatus(status));
  if (progress < 0 || progress > 100) {
    return Status::InvalidArgument("progress " + std::to_string(progress) +
                                   " is outside 0-100: report a percentage");
  }
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " +
                            StringOr(task, "task_id") + ": check the Agent ID in your prompt");
  }
  std::string current = StringOr(*agent, "status");
  if (IsTerminalStatus(current)) {
    return Status::Refused("agent " + agent_id + " has already ended (" + current +
                           "); a final status cannot change");
  }
  (*agent)["status"] = status;
  (*agent)["progress"] = progress;
  (*agent)["last_update"] = timestamp;
  (*agent)["last_message"] = message;
  if (status == "completed") (*agent)["completed_at"] = timestamp;
  if (IsTerminalStatus(status) && status != "completed") (*agent)["ended_reason"] = message;
  RecomputeCounts(task);
  return json{{"agent_id", agent_id},
              {"status", status},
              {"progress", progress},
              {"message", message},
              {"timestamp", timestamp}};
}

Result<bool> MarkTerminated(json& task, const std::string& agent_id, const std::string& reason,
                            const std::string& timestamp) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) {
    return Status::NotFound("agent " + agent_id + " is not part of task " +
                            StringOr(task, "task_id") + ": run `herd status " +
                            StringOr(task, "task_id") + "` to list its agents");
  }
  if (IsTerminalStatus(StringOr(*agent, "status"))) return false;
  (*agent)["status"] = "terminated";
  (*agent)["terminated_at"] = timestamp;
  (*agent)["termination_reason"] = reason;
  (*agent)["last_update"] = timestamp;
  RecomputeCounts(task);
  return true;
}

Status RecordStart(json& task, const std::string& agent_id, const ProcessIdentity& agent_process,
                   const ProcessIdentity& supervisor) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  (*agent)["pid"] = agent_process.pid;
  (*agent)["pgid"] = agent_process.pid;
  (*agent)["process_start_time"] = agent_process.start_time;
  (*agent)["supervisor_pid"] = supervisor.pid;
  (*agent)["supervisor_start_time"] = supervisor.start_time;
  (*agent)["phase"] = "running";
  (*agent)["last_update"] = NowIso8601();
  return Status::Ok();
}

Status RecordExit(json& task, const std::string& agent_id, const ExitRecord& exit) {
  json* agent = FindAgent(task, agent_id);
  if (agent == nullptr) return Status::NotFound("agent " + agent_id + " vanished from its task");
  (*agent)["exit_code"] = exit.exit_code ? json(*exit.exit_code) : json(nullptr);
  (*agent)["exit_signal"] = exit.exit_signal ? json(*exit.exit_signal) : json(nullptr);
  (*agent)["ended_at"] = exit.ended_at;
  (*agent)["phase"] = "exited";
  if (!exit.result.is_null()) (*agent)["result"] = exit.result;
  std::string status = StringOr(*agent, "status");
  if (IsActiveStatus(status)) {
    bool success = exit.exit_code && *exit.exit_code == 0 && exit.error.empty();
    (*agent)["status"] = success ? "completed" : "error";
    (*agent)["last_update"] = exit.ended_at;
    if (success) {
      (*agent)["completed_at"] = exit.ended_at;
      (*agent)["progress"] = 100;
    } else {
      std::string reason = exit.error;
      if (reason.empty() && exit.exit_signal) {
        reason = "killed by signal " + std::to_string(*exit.exit_signal);
      } else if (reason.empty() && exit.exit_code) {
        reason = "exited with status " + std::to_string(*exit.exit_code);
      }
      (*agent)["error"] = reason;
    }
  }
  RecomputeCounts(task);
  return Status::Ok();
}

}  // namespace herd::registry
