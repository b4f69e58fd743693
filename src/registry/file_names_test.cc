// Tests for the workspace's file names: each agent and metrics file name
// parses back to what made it, the on-disk forms are pinned (the reference
// orchestrator and older workspaces use them), and lookalikes are refused.
#include "registry/file_names.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <regex>
#include <string>

#include "registry/ids.h"
#include "registry/workspace.h"

namespace herd::registry {
namespace {

constexpr AgentFile kEveryAgentFile[] = {
    AgentFile::kProgressJournal, AgentFile::kFindingsJournal, AgentFile::kStreamLog,
    AgentFile::kSupervisorLog,   AgentFile::kPrompt,          AgentFile::kLaunchPlan,
    AgentFile::kMcpConfig,
};

TEST(RegistryFileNamesTest, AgentFilesHaveTheirOnDiskForms) {
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kProgressJournal), "progress/a-1_progress.jsonl");
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kFindingsJournal), "findings/a-1_findings.jsonl");
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kStreamLog), "logs/a-1_stream.jsonl");
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kSupervisorLog), "logs/a-1_supervisor.log");
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kPrompt), "prompts/a-1.txt");
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kLaunchPlan), "prompts/a-1_launch.json");
  EXPECT_EQ(AgentFileName("a-1", AgentFile::kMcpConfig), "prompts/a-1_mcp.json");
}

TEST(RegistryFileNamesTest, WorkspacePathsUseTheNames) {
  Workspace workspace("/w");
  EXPECT_EQ(workspace.GlobalRegistryPath(), "/w/registry/GLOBAL_REGISTRY.json");
  EXPECT_EQ(workspace.MetricsDirectory(), "/w/metrics");
  EXPECT_EQ(workspace.TaskRegistryPath("T"), "/w/T/AGENT_REGISTRY.json");
  EXPECT_EQ(workspace.ProgressPath("T", "a"), "/w/T/progress/a_progress.jsonl");
  EXPECT_EQ(workspace.FindingsPath("T", "a"), "/w/T/findings/a_findings.jsonl");
  EXPECT_EQ(workspace.StreamLogPath("T", "a"), "/w/T/logs/a_stream.jsonl");
  EXPECT_EQ(workspace.SupervisorLogPath("T", "a"), "/w/T/logs/a_supervisor.log");
  EXPECT_EQ(workspace.PromptPath("T", "a"), "/w/T/prompts/a.txt");
  EXPECT_EQ(workspace.LaunchPlanPath("T", "a"), "/w/T/prompts/a_launch.json");
  EXPECT_EQ(workspace.McpConfigPath("T", "a"), "/w/T/prompts/a_mcp.json");
  EXPECT_EQ(workspace.AgentConfigDirectory("T", "a"), "/w/T/agents/a");
  EXPECT_EQ(Workspace::ForProject("/").base(), "/.agent-workspace");
}

TEST(RegistryFileNamesTest, EveryAgentFileRoundTrips) {
  // Ids that end like a suffix must still come back whole.
  for (const std::string& agent_id :
       {NewAgentId("tester"), std::string("x_progress"), std::string("a_launch"),
        std::string("b_mcp"), std::string("c_stream"), std::string("7")}) {
    for (AgentFile file : kEveryAgentFile) {
      std::string name = AgentFileName(agent_id, file);
      std::optional<ParsedAgentFile> parsed = ParseAgentFileName(name);
      ASSERT_TRUE(parsed) << name;
      EXPECT_EQ(parsed->file, file) << name;
      EXPECT_EQ(parsed->agent_id, agent_id) << name;
    }
  }
}

TEST(RegistryFileNamesTest, LookalikeAgentFilesAreRefused) {
  for (const char* name : {
           "a_progress.jsonl",               // no subdirectory
           "logs/a_progress.jsonl",          // a journal name in the wrong directory
           "progress/a_findings.jsonl",      // likewise
           "progress/_progress.jsonl",       // no agent id
           "progress/a_progress.jsonl.bak",  // a sidecar, not the journal
           "progress/a_progress.json",       // wrong extension
           "progress/../a_progress.jsonl",   // not an id
           "progress/a.b_progress.jsonl",    // not an id
           "prompts/a.txt.tmp.1.ab",         // a temp file
           "prompts/a_launch.json.lock",     // a lock
           "logs/a_stream.log",              // wrong suffix
           "prompts/sub/a.txt",              // nested
           "AGENT_REGISTRY.json",
           "",
       }) {
    EXPECT_FALSE(ParseAgentFileName(name)) << name;
  }
}

TEST(RegistryFileNamesTest, MetricsFilesHaveTheirOnDiskForms) {
  EXPECT_EQ(ProcessMetricsFileName(4242), "4242.jsonl");
  EXPECT_TRUE(std::regex_match(FoldingMetricsFileName("4242.jsonl"),
                               std::regex("folding-4242-[0-9a-f]{16}\\.jsonl")))
      << FoldingMetricsFileName("4242.jsonl");
  EXPECT_NE(FoldingMetricsFileName("4242.jsonl"), FoldingMetricsFileName("4242.jsonl"));
  EXPECT_STREQ(kMetricsHistoryFile, "history.json");
}

TEST(RegistryFileNamesTest, MetricsFilesRoundTrip) {
  std::optional<ParsedMetricsFile> process = ParseMetricsFileName(ProcessMetricsFileName(getpid()));
  ASSERT_TRUE(process);
  EXPECT_EQ(process->file, MetricsFile::kProcessLines);
  EXPECT_EQ(process->writer, getpid());

  std::optional<ParsedMetricsFile> folding =
      ParseMetricsFileName(FoldingMetricsFileName(ProcessMetricsFileName(getpid())));
  ASSERT_TRUE(folding);
  EXPECT_EQ(folding->file, MetricsFile::kFoldingLines);

  std::optional<ParsedMetricsFile> history = ParseMetricsFileName(kMetricsHistoryFile);
  ASSERT_TRUE(history);
  EXPECT_EQ(history->file, MetricsFile::kHistory);
}

TEST(RegistryFileNamesTest, LookalikeMetricsFilesAreRefused) {
  for (const char* name : {
           "0.jsonl",        // no process has pid 0
           "4194305.jsonl",  // above the kernel's largest pid
           "99999999999999999999.jsonl",
           "-12.jsonl",
           "12a.jsonl",
           ".jsonl",
           "12.json",
           "12.jsonl.bak",  // the store's sidecars are not metrics
           "history.json.bak",
           "history.json.tmp.1.ab",
           "history.jsonl",
           "fold-12-ab.jsonl",
           "folding-12-ab.json",
       }) {
    EXPECT_FALSE(ParseMetricsFileName(name)) << name;
  }
}

TEST(RegistryFileNamesTest, ReportsReadEveryLinesFileInTheMetricsDirectory) {
  EXPECT_TRUE(IsMetricsLinesFileName(ProcessMetricsFileName(12)));
  EXPECT_TRUE(IsMetricsLinesFileName(FoldingMetricsFileName("12.jsonl")));
  EXPECT_TRUE(IsMetricsLinesFileName("copied-by-hand.jsonl"));
  EXPECT_FALSE(IsMetricsLinesFileName(".jsonl"));
  EXPECT_FALSE(IsMetricsLinesFileName(kMetricsHistoryFile));
  EXPECT_FALSE(IsMetricsLinesFileName("12.jsonl.bak"));
}

}  // namespace
}  // namespace herd::registry
