// Workspace file names: every name herd gives its own files in a workspace,
// made and parsed in this one place (after LevelDB's db/filename.h).
// registry/workspace.h joins them to a base into absolute paths; the
// store's sidecars of each document (`.lock`, `.bak`, `.tmp.*`,
// `.corrupt.*`) are named in store/file_names.h.
//
//   registry/GLOBAL_REGISTRY.json               index of every task and agent
//   metrics/<pid>.jsonl                         a process's lock figures, a line per transaction
//   metrics/folding-<pid>-<16 hex>.jsonl        ... while folded (health/metrics_history.h)
//   metrics/history.json                        ... once folded
//   <TASK_ID>/AGENT_REGISTRY.json               the task's registry
//   <TASK_ID>/progress/<agent>_progress.jsonl   an agent's progress journal
//   <TASK_ID>/findings/<agent>_findings.jsonl   its findings journal
//   <TASK_ID>/logs/<agent>_stream.jsonl         its own output
//   <TASK_ID>/logs/<agent>_supervisor.log       its supervisor's log
//   <TASK_ID>/prompts/<agent>.txt               the prompt it was given
//   <TASK_ID>/prompts/<agent>_launch.json       its launch plan (agents/backend.h)
//   <TASK_ID>/prompts/<agent>_mcp.json          its MCP configuration
//   <TASK_ID>/prompts/<agent>_<msg-id>.txt      a follow-up message to it (registry/turns.h)
//   <TASK_ID>/agents/<agent>/                   its own configuration, when isolated
//
// and in herd's state directory, outside every workspace, workspaces.json
// and running-agents.lock (registry/workspace.h, registry/global_index.h).
//
// Names are pure functions of their parts and the parsers accept exactly
// what the makers produce (plus the lookalikes noted below); nothing here
// touches the disk. Ids passed in must already be valid (registry/ids.h).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace herd::registry {

// A project's workspace base, inside the project directory.
inline constexpr char kDefaultWorkspaceDirectory[] = ".agent-workspace";
inline constexpr char kIndexDirectory[] = "registry";
inline constexpr char kGlobalRegistryFile[] = "GLOBAL_REGISTRY.json";
inline constexpr char kMetricsDirectory[] = "metrics";
inline constexpr char kTaskRegistryFile[] = "AGENT_REGISTRY.json";
inline constexpr char kAgentConfigsDirectory[] = "agents";
inline constexpr char kKnownWorkspacesFile[] = "workspaces.json";
inline constexpr char kRunningAgentsLockFile[] = "running-agents.lock";

// The subdirectories every task directory gets (Workspace::CreateTaskDirectories).
inline constexpr const char* kTaskSubdirectories[] = {"progress", "findings", "logs", "prompts"};

// --- An agent's files, relative to its task directory -------------------

enum class AgentFile {
  kProgressJournal,
  kFindingsJournal,
  kStreamLog,
  kSupervisorLog,
  kPrompt,
  kLaunchPlan,
  kMcpConfig,
};

// "<subdirectory>/<agent_id><suffix>", as in the table above.
std::string AgentFileName(const std::string& agent_id, AgentFile file);

// "prompts/<agent_id>_<message_id>.txt": a follow-up message's text.
// `message_id` is NewMessageId()'s.
std::string AgentMessageFileName(const std::string& agent_id, const std::string& message_id);

// "msg-<12 random hex>".
std::string NewMessageId();

struct ParsedAgentFile {
  AgentFile file = AgentFile::kProgressJournal;
  std::string agent_id;
};

// The inverse of AgentFileName: nullopt unless `name` (relative to the task
// directory) is one of an agent's files with a valid agent id.
std::optional<ParsedAgentFile> ParseAgentFileName(std::string_view name);

// --- The metrics directory's entries -------------------------------------

enum class MetricsFile {
  kProcessLines,  // <pid>.jsonl, appended to by that process
  kFoldingLines,  // folding-*.jsonl, taken by a fold
  kHistory,       // history.json
};

inline constexpr char kMetricsHistoryFile[] = "history.json";

// "<pid>.jsonl".
std::string ProcessMetricsFileName(pid_t pid);

// "folding-<pid>-<16 random hex>.jsonl" for the process file `process_file`
// ("<pid>.jsonl"): the name it takes while it is folded, which a process
// reusing the pid never appends to.
std::string FoldingMetricsFileName(const std::string& process_file);

struct ParsedMetricsFile {
  MetricsFile file = MetricsFile::kProcessLines;
  pid_t writer = 0;  // kProcessLines
};

// What a metrics directory entry is, or nullopt. A process file is digits
// (a pid from 1 to 2^22, the kernel's largest) then ".jsonl"; any
// "folding-*.jsonl" is a folding file, whoever named it, so a fold a crash
// interrupted is always finished.
std::optional<ParsedMetricsFile> ParseMetricsFileName(std::string_view name);

// True for the files a metrics report reads: every "*.jsonl" in the metrics
// directory (a process's, a folding one, or one copied there by hand).
bool IsMetricsLinesFileName(std::string_view name);

}  // namespace herd::registry
