// Task and agent identifiers: generation and validation.
//
// Ids become file and directory names inside the workspace, so every id
// that arrives from outside is validated before it reaches a path: only
// [A-Za-z0-9_-], starting with a letter or digit, at most 128 characters.
// Nothing that can escape the workspace (`/`, `..`) or confuse tools that
// treat `.` and `:` specially gets through. Agent types are free text from
// the caller; NewAgentId() turns them into a safe id prefix.
#pragma once

#include <string>

#include "util/status.h"

namespace herd::registry {

// "TASK-YYYYMMDD-HHMMSS-<8 hex>", as the reference orchestrator makes them.
std::string NewTaskId();

// "<safe type>-HHMMSS-<6 hex>". `agent_type` must pass ValidateAgentType.
std::string NewAgentId(const std::string& agent_type);

// The type reduced to [a-z0-9_-]: "../../x" -> "x", "a.b:c" -> "a-b-c".
std::string SafeTypePrefix(const std::string& agent_type);

Status ValidateTaskId(const std::string& task_id);
Status ValidateAgentId(const std::string& agent_id);
// Refuses empty types, control characters, and types with no letter or digit.
Status ValidateAgentType(const std::string& agent_type);

}  // namespace herd::registry
