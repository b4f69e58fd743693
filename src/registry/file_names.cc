#include "registry/file_names.h"

#include <cstdlib>

#include "registry/ids.h"
#include "util/random.h"

namespace herd::registry {
namespace {

// Where each of an agent's files lives and how its name ends.
struct AgentFileLayout {
  AgentFile file;
  const char* subdirectory;  // one of kTaskSubdirectories
  const char* suffix;        // after the agent id
};

constexpr AgentFileLayout kAgentFiles[] = {
    {AgentFile::kProgressJournal, "progress", "_progress.jsonl"},
    {AgentFile::kFindingsJournal, "findings", "_findings.jsonl"},
    {AgentFile::kStreamLog, "logs", "_stream.jsonl"},
    {AgentFile::kSupervisorLog, "logs", "_supervisor.log"},
    {AgentFile::kPrompt, "prompts", ".txt"},
    {AgentFile::kLaunchPlan, "prompts", "_launch.json"},
    {AgentFile::kMcpConfig, "prompts", "_mcp.json"},
};

constexpr char kLinesSuffix[] = ".jsonl";
constexpr char kFoldingPrefix[] = "folding-";
constexpr long kMaxPid = 1L << 22;

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::string AgentFileName(const std::string& agent_id, AgentFile file) {
  for (const AgentFileLayout& layout : kAgentFiles) {
    if (layout.file == file)
      return std::string(layout.subdirectory) + "/" + agent_id + layout.suffix;
  }
  return agent_id;  // unreachable: every AgentFile has a row
}

std::string AgentMessageFileName(const std::string& agent_id, const std::string& message_id) {
  return "prompts/" + agent_id + "_" + message_id + ".txt";
}

std::string NewMessageId() {
  return "msg-" + RandomHex(12);
}

std::optional<ParsedAgentFile> ParseAgentFileName(std::string_view name) {
  size_t slash = name.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string_view subdirectory = name.substr(0, slash);
  std::string_view entry = name.substr(slash + 1);
  for (const AgentFileLayout& layout : kAgentFiles) {
    std::string_view suffix = layout.suffix;
    if (subdirectory != layout.subdirectory || !EndsWith(entry, suffix)) continue;
    std::string agent_id(entry.substr(0, entry.size() - suffix.size()));
    if (!ValidateAgentId(agent_id).ok()) return std::nullopt;
    return ParsedAgentFile{layout.file, std::move(agent_id)};
  }
  return std::nullopt;
}

std::string ProcessMetricsFileName(pid_t pid) {
  return std::to_string(pid) + kLinesSuffix;
}

std::string FoldingMetricsFileName(const std::string& process_file) {
  std::string_view stem = process_file;
  if (EndsWith(stem, kLinesSuffix)) stem.remove_suffix(sizeof kLinesSuffix - 1);
  return std::string(kFoldingPrefix) + std::string(stem) + "-" + RandomHex(16) + kLinesSuffix;
}

std::optional<ParsedMetricsFile> ParseMetricsFileName(std::string_view name) {
  if (name == kMetricsHistoryFile) return ParsedMetricsFile{MetricsFile::kHistory, 0};
  if (!EndsWith(name, kLinesSuffix)) return std::nullopt;
  if (StartsWith(name, kFoldingPrefix)) return ParsedMetricsFile{MetricsFile::kFoldingLines, 0};
  std::string digits(name.substr(0, name.size() - (sizeof kLinesSuffix - 1)));
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  long pid = std::strtol(digits.c_str(), nullptr, 10);
  if (pid <= 0 || pid > kMaxPid) return std::nullopt;
  return ParsedMetricsFile{MetricsFile::kProcessLines, static_cast<pid_t>(pid)};
}

bool IsMetricsLinesFileName(std::string_view name) {
  return name.size() > sizeof kLinesSuffix - 1 && EndsWith(name, kLinesSuffix);
}

}  // namespace herd::registry
