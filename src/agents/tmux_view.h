// An optional tmux view of an agent, so a person can attach and watch it.
//
// OpenTmuxView starts a detached tmux session named "herd-<agent id>" whose
// only window follows the agent's output (`herd logs TASK AGENT --follow`).
// A person attaches with `tmux attach -t herd-<agent id>`. tmux is never the
// source of truth: the agent runs under its supervisor either way, the
// session only shows its log, and it closes by itself when the agent ends.
// Agent ids contain only [a-z0-9_-], so the name never trips tmux's own
// syntax ('.' and ':' are separators there).
#pragma once

#include <string>

#include "util/status.h"

namespace herd::agents {

// Returns the session name. Fails with a clear message if tmux is missing.
Result<std::string> OpenTmuxView(const std::string& herd_binary, const std::string& workspace_base,
                                 const std::string& task_id, const std::string& agent_id);

}  // namespace herd::agents
