// Backends: argv built from documented flags, and their JSON event streams
// read for usage and results on lines the real CLIs printed (Codex CLI
// 0.171.0, Gemini CLI 0.61.0, against tests/interop's scripted model
// servers), the others' on sample lines written from each tool's
// documentation (Claude Code stream-json, cursor-agent stream-json).
#include "agents/backend.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>

#include "agents/stream_events.h"
#include "util/testing_for_test.h"

namespace herd::agents {
namespace {

LaunchRequest Request(const std::string& backend) {
  LaunchRequest request;
  request.backend = backend;
  request.task_id = "TASK-1";
  request.agent_id = "worker-1";
  request.workspace_base = "/ws";
  request.prompt_path = "/ws/TASK-1/prompts/worker-1.txt";
  request.mcp_config_path = "/ws/TASK-1/prompts/worker-1_mcp.json";
  request.herd_binary = "/usr/bin/herd";
  return request;
}

bool Has(const std::vector<std::string>& words, const std::string& word) {
  for (const std::string& candidate : words) {
    if (candidate == word) return true;
  }
  return false;
}

TEST(BackendTest, ClaudeUsesReferenceFlagsModelAndPerAgentMcpConfig) {
  unsetenv("CLAUDE_EXECUTABLE");
  unsetenv("CLAUDE_FLAGS");
  LaunchRequest request = Request("claude");
  request.model = "opus";
  Result<LaunchPlan> plan = PlanLaunch(request);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->argv[0], "claude");
  for (const char* flag : {"--print", "--verbose", "--dangerously-skip-permissions"}) {
    EXPECT_TRUE(Has(plan->argv, flag)) << flag;
  }
  // --model replaced, not duplicated.
  int models = 0;
  for (size_t i = 0; i + 1 < plan->argv.size(); ++i) {
    if (plan->argv[i] == "--model") {
      ++models;
      EXPECT_EQ(plan->argv[i + 1], "opus");
    }
  }
  EXPECT_EQ(models, 1);
  EXPECT_TRUE(Has(plan->argv, "--mcp-config=/ws/TASK-1/prompts/worker-1_mcp.json"));
  EXPECT_EQ(plan->stdin_path, request.prompt_path);  // the prompt never goes on argv
  EXPECT_TRUE(plan->stream_json);
  EXPECT_TRUE(plan->supports_mcp);
}

TEST(BackendTest, ClaudeIsGivenTheSessionIdHerdRecords) {
  unsetenv("CLAUDE_EXECUTABLE");
  unsetenv("CLAUDE_FLAGS");
  LaunchRequest request = Request("claude");
  request.session_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  Result<LaunchPlan> plan = PlanLaunch(request);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto flag = std::find(plan->argv.begin(), plan->argv.end(), "--session-id");
  ASSERT_NE(flag, plan->argv.end());
  ASSERT_NE(flag + 1, plan->argv.end());
  EXPECT_EQ(*(flag + 1), request.session_id);
  EXPECT_TRUE(BackendTakesSessionId("claude"));
  EXPECT_TRUE(BackendTakesSessionId("gemini"));
  for (const char* backend : {"codex", "cursor-agent", "command"}) {
    EXPECT_FALSE(BackendTakesSessionId(backend)) << backend;
  }
}

TEST(BackendTest, ClaudeHonoursClaudeExecutableAndClaudeFlags) {
  setenv("CLAUDE_EXECUTABLE", "/opt/claude/bin/claude", 1);
  setenv("CLAUDE_FLAGS", "-p --output-format stream-json --verbose", 1);
  Result<LaunchPlan> plan = PlanLaunch(Request("claude"));
  unsetenv("CLAUDE_EXECUTABLE");
  unsetenv("CLAUDE_FLAGS");
  ASSERT_TRUE(plan.ok());
  std::vector<std::string> expected = {"/opt/claude/bin/claude",
                                       "-p",
                                       "--output-format",
                                       "stream-json",
                                       "--verbose",
                                       "--mcp-config=/ws/TASK-1/prompts/worker-1_mcp.json"};
  EXPECT_EQ(plan->argv, expected);
}

// What `codex exec` is given for herd's MCP server (Codex has no
// --mcp-config file): the per-agent server as `-c` overrides, in TOML.
const std::vector<std::string> kCodexMcpOverrides = {
    "-c", R"(mcp_servers.herd.command="/usr/bin/herd")",
    "-c", R"(mcp_servers.herd.args=["serve","--workspace","/ws"])",
    "-c", R"(mcp_servers.herd.env={"CLAUDE_ORCHESTRATOR_WORKSPACE"="/ws"})",
    "-c", R"(mcp_servers.herd.default_tools_approval_mode="approve")"};

// `argv` without its env_vars override (its names are this process's
// environment's), which is checked on its own.
std::vector<std::string> WithoutEnvVars(std::vector<std::string> argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].rfind("mcp_servers.herd.env_vars=", 0) == 0 && argv[i - 1] == "-c") {
      argv.erase(argv.begin() + static_cast<long>(i) - 1, argv.begin() + static_cast<long>(i) + 1);
      break;
    }
  }
  return argv;
}

std::vector<std::string> CodexArgv(const std::vector<std::string>& after_overrides) {
  std::vector<std::string> argv = {"codex", "exec", "--json", "--skip-git-repo-check",
                                   "--dangerously-bypass-approvals-and-sandbox"};
  argv.insert(argv.end(), kCodexMcpOverrides.begin(), kCodexMcpOverrides.end());
  argv.insert(argv.end(), after_overrides.begin(), after_overrides.end());
  return argv;
}

TEST(BackendTest, CodexIsGivenHerdsMcpServerAsConfigOverrides) {
  unsetenv("CODEX_EXECUTABLE");
  LaunchRequest codex = Request("codex");
  codex.model = "gpt-5";
  Result<LaunchPlan> plan = PlanLaunch(codex);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(WithoutEnvVars(plan->argv), CodexArgv({"--model", "gpt-5", "-"}));
  EXPECT_TRUE(plan->supports_mcp);
  EXPECT_EQ(plan->stdin_path, codex.prompt_path);
}

// Codex gives an MCP server only HOME, PATH, USER and a few more of its
// environment: herd's server must see the rest too (XDG_STATE_HOME, the
// budgets, the backends' settings and keys its children inherit).
TEST(BackendTest, CodexPassesTheAgentsWholeEnvironmentToHerdsServer) {
  setenv("HERD_CODEX_TEST_VARIABLE", "1", 1);
  Result<LaunchPlan> plan = PlanLaunch(Request("codex"));
  unsetenv("HERD_CODEX_TEST_VARIABLE");
  ASSERT_TRUE(plan.ok());
  auto env_vars = std::find_if(plan->argv.begin(), plan->argv.end(), [](const std::string& word) {
    return word.rfind("mcp_servers.herd.env_vars=[", 0) == 0;
  });
  ASSERT_NE(env_vars, plan->argv.end());
  for (const char* name :
       {"\"HERD_CODEX_TEST_VARIABLE\"", "\"PATH\"", "\"HERD_AGENT_ID\"", "\"HERD_PROMPT_FILE\""}) {
    EXPECT_NE(env_vars->find(name), std::string::npos) << name << " in " << *env_vars;
  }
  EXPECT_EQ(env_vars->back(), ']');
}

TEST(BackendTest, CodexOverridesQuoteThePathsAsTomlStrings) {
  unsetenv("CODEX_EXECUTABLE");
  LaunchRequest codex = Request("codex");
  codex.herd_binary = "/opt/my \"herd\"\\bin/herd";
  codex.workspace_base = "/tmp/ws\tx";
  Result<LaunchPlan> plan = PlanLaunch(codex);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(Has(plan->argv, R"(mcp_servers.herd.command="/opt/my \"herd\"\\bin/herd")"));
  EXPECT_TRUE(Has(plan->argv, R"(mcp_servers.herd.args=["serve","--workspace","/tmp/ws\u0009x"])"));
}

TEST(BackendTest, CodexHonoursCodexExecutable) {
  setenv("CODEX_EXECUTABLE", "/opt/codex/bin/codex", 1);
  Result<LaunchPlan> plan = PlanLaunch(Request("codex"));
  unsetenv("CODEX_EXECUTABLE");
  ASSERT_TRUE(plan.ok());
  std::vector<std::string> expected = CodexArgv({"-"});
  expected[0] = "/opt/codex/bin/codex";
  EXPECT_EQ(WithoutEnvVars(plan->argv), expected);
}

TEST(BackendTest, CursorAndGeminiUseTheirHeadlessModes) {
  Result<LaunchPlan> cursor_plan = PlanLaunch(Request("cursor-agent"));
  ASSERT_TRUE(cursor_plan.ok());
  EXPECT_EQ(cursor_plan->argv[0], "cursor-agent");
  EXPECT_TRUE(Has(cursor_plan->argv, "-p"));
  EXPECT_TRUE(Has(cursor_plan->argv, "stream-json"));

  LaunchRequest gemini = Request("gemini");
  gemini.model = "gemini-2.5-pro";
  gemini.session_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  Result<LaunchPlan> gemini_plan = PlanLaunch(gemini);
  ASSERT_TRUE(gemini_plan.ok());
  // As run by tests/interop/gemini_agent.test.mjs with Gemini CLI 0.61.0.
  std::vector<std::string> gemini_argv = {"gemini",
                                          "--output-format",
                                          "stream-json",
                                          "--yolo",
                                          "--skip-trust",
                                          "-m",
                                          "gemini-2.5-pro",
                                          "--session-id",
                                          "0f8fad5b-d9cb-469f-a165-70867728950e",
                                          "-p",
                                          "Follow the instructions given on standard input."};
  EXPECT_EQ(gemini_plan->argv, gemini_argv);
  for (const LaunchPlan* plan : {&*cursor_plan, &*gemini_plan}) {
    EXPECT_EQ(plan->stdin_path, "/ws/TASK-1/prompts/worker-1.txt");
    EXPECT_TRUE(plan->stream_json);
  }
}

TEST(BackendTest, CommandBackendNeedsArgvAndGetsHerdEnvironment) {
  Result<LaunchPlan> missing = PlanLaunch(Request("command"));
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("--backend command --"), std::string::npos);

  LaunchRequest request = Request("command");
  request.command_argv = {"python3", "agent.py"};
  Result<LaunchPlan> plan = PlanLaunch(request);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->argv, request.command_argv);
  EXPECT_FALSE(plan->supports_mcp);
  for (const char* variable :
       {"HERD_TASK_ID=TASK-1", "HERD_AGENT_ID=worker-1", "HERD_WORKSPACE=/ws",
        "HERD_PROMPT_FILE=/ws/TASK-1/prompts/worker-1.txt", "HERD_BIN=/usr/bin/herd"}) {
    EXPECT_TRUE(Has(plan->environment, variable)) << variable;
  }
}

TEST(BackendTest, UnknownBackendIsRefusedWithTheChoices) {
  Result<LaunchPlan> plan = PlanLaunch(Request("aider"));
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.status().message().find("claude, codex, cursor-agent, gemini, command"),
            std::string::npos);
}

// The value of KEY=... in a plan's environment, or "".
std::string EnvironmentValue(const LaunchPlan& plan, const std::string& key) {
  for (const std::string& entry : plan.environment) {
    if (entry.rfind(key + "=", 0) == 0) return entry.substr(key.size() + 1);
  }
  return "";
}

TEST(BackendTest, AClaudeFollowUpResumesTheSessionWithTheMessageOnStdin) {
  LaunchRequest request = Request("claude");
  request.session_id = "7b0c1c8e-4a5f-4d1e-9b2a-1f2e3d4c5b6a";
  Result<LaunchPlan> first = PlanLaunch(request);
  ASSERT_TRUE(first.ok());
  first->cwd = "/project";
  first->environment.push_back("CLAUDE_CONFIG_DIR=/ws/config");
  EXPECT_EQ(EnvironmentValue(*first, "HERD_TURN"), "1");

  Result<LaunchPlan> second =
      PlanFollowUpTurn(*first, request.session_id, 2, "/ws/TASK-1/prompts/worker-1_msg-1.txt");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  std::vector<std::string> expected = first->argv;
  auto flag = std::find(expected.begin(), expected.end(), "--session-id");
  ASSERT_NE(flag, expected.end());
  *flag = "--resume";
  EXPECT_EQ(second->argv, expected) << "only the session flag changes";
  EXPECT_EQ(second->stdin_path, "/ws/TASK-1/prompts/worker-1_msg-1.txt");
  EXPECT_EQ(second->cwd, "/project") << "resume finds sessions only where they started";
  EXPECT_EQ(EnvironmentValue(*second, "CLAUDE_CONFIG_DIR"), "/ws/config");
  EXPECT_EQ(EnvironmentValue(*second, "HERD_TURN"), "2");
  EXPECT_EQ(EnvironmentValue(*second, "HERD_PROMPT_FILE"), second->stdin_path);
  EXPECT_EQ(second->log_path, first->log_path);

  LaunchRequest unfixed = Request("claude");
  Result<LaunchPlan> old = PlanLaunch(unfixed);
  ASSERT_TRUE(old.ok());
  Result<LaunchPlan> refused = PlanFollowUpTurn(*old, "", 2, "/m.txt");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.status().Is(Status::Code::kRefused));
  EXPECT_NE(refused.status().message().find("session id"), std::string::npos);
}

TEST(BackendTest, AGeminiFollowUpResumesTheSessionHerdFixed) {
  LaunchRequest request = Request("gemini");
  request.session_id = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed";
  Result<LaunchPlan> first = PlanLaunch(request);
  ASSERT_TRUE(first.ok());
  first->environment.push_back("GEMINI_CLI_HOME=/ws/TASK-1/agents/worker-1/gemini-home");
  Result<LaunchPlan> second = PlanFollowUpTurn(*first, request.session_id, 2, "/m.txt");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  std::vector<std::string> expected = first->argv;
  auto flag = std::find(expected.begin(), expected.end(), "--session-id");
  ASSERT_NE(flag, expected.end());
  *flag = "--resume";  // gemini --resume takes the session's UUID
  EXPECT_EQ(second->argv, expected);
  EXPECT_EQ(second->stdin_path, "/m.txt");
  EXPECT_EQ(EnvironmentValue(*second, "GEMINI_CLI_HOME"), "/ws/TASK-1/agents/worker-1/gemini-home")
      << "sessions are saved under the agent's Gemini home";
  EXPECT_EQ(EnvironmentValue(*second, "HERD_TURN"), "2");

  Result<LaunchPlan> unfixed = PlanLaunch(Request("gemini"));
  ASSERT_TRUE(unfixed.ok());
  Result<LaunchPlan> refused = PlanFollowUpTurn(*unfixed, "", 2, "/m.txt");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("gemini agent was started without a session id"),
            std::string::npos);
}

TEST(BackendTest, GeminiSettingsAddHerdsServerAndKeepThePersonsOwn) {
  nlohmann::json user = {
      {"security", {{"auth", {{"selectedType", "gemini-api-key"}}}}},
      {"mcpServers", {{"github", {{"command", "gh-mcp"}}}, {"herd", {{"command", "old"}}}}}};
  nlohmann::json settings = GeminiSettingsFor(user, "/usr/bin/herd", "/ws");
  EXPECT_EQ(settings["security"], user["security"]);
  EXPECT_EQ(settings["mcpServers"]["github"], user["mcpServers"]["github"]);
  EXPECT_EQ(settings["mcpServers"]["herd"],
            McpConfigFor("/usr/bin/herd", "/ws")["mcpServers"]["herd"]);
  EXPECT_EQ(GeminiSettingsFor(nlohmann::json::array(), "/h", "/w")["mcpServers"].size(), 1u);
}

TEST(BackendTest, PrepareGeminiHomeWritesSettingsAndLinksTheRest) {
  testing_util::TempDir temp("herd-gemini-home");
  std::string user = temp.path() + "/user/.gemini";
  std::filesystem::create_directories(user + "/extensions");
  testing_util::WriteFile(user + "/settings.json",
                          "{\n  // comments are allowed\n  \"general\": {\"vimMode\": true}\n}\n");
  testing_util::WriteFile(user + "/oauth_creds.json", "{}");
  std::string home = temp.path() + "/agent-home";
  Status prepared = PrepareGeminiHome(home, user, "/usr/bin/herd", "/ws");
  ASSERT_TRUE(prepared.ok()) << prepared.ToString();
  nlohmann::json settings =
      nlohmann::json::parse(testing_util::ReadFile(home + "/.gemini/settings.json"));
  EXPECT_EQ(settings["general"]["vimMode"], true);
  EXPECT_EQ(settings["mcpServers"]["herd"]["command"], "/usr/bin/herd");
  for (const char* name : {"oauth_creds.json", "extensions"}) {
    std::string link = home + "/.gemini/" + name;
    EXPECT_TRUE(std::filesystem::is_symlink(link)) << link;
    EXPECT_EQ(std::filesystem::read_symlink(link), std::filesystem::path(user) / name);
  }
  EXPECT_FALSE(std::filesystem::is_symlink(home + "/.gemini/settings.json"));

  // No Gemini directory of the person's own: herd's server alone.
  std::string bare = temp.path() + "/bare-home";
  ASSERT_TRUE(PrepareGeminiHome(bare, temp.path() + "/nobody/.gemini", "/h", "/w").ok());
  settings = nlohmann::json::parse(testing_util::ReadFile(bare + "/.gemini/settings.json"));
  EXPECT_EQ(settings, GeminiSettingsFor(nlohmann::json::object(), "/h", "/w"));

  testing_util::WriteFile(user + "/settings.json", "[1, 2");
  Status broken = PrepareGeminiHome(temp.path() + "/other", user, "/h", "/w");
  EXPECT_TRUE(broken.Is(Status::Code::kCorruption)) << broken.ToString();
  EXPECT_NE(broken.message().find(user + "/settings.json"), std::string::npos);
}

TEST(BackendTest, ACodexFollowUpRunsExecResumeWithItsThread) {
  unsetenv("CODEX_EXECUTABLE");
  LaunchRequest request = Request("codex");
  request.model = "gpt-5";
  Result<LaunchPlan> first = PlanLaunch(request);
  ASSERT_TRUE(first.ok());
  Result<LaunchPlan> second = PlanFollowUpTurn(*first, "thread-123", 2, "/m.txt");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  // Codex CLI 0.171.0 applies exec's options (and -c) given before `resume`.
  EXPECT_EQ(WithoutEnvVars(second->argv),
            CodexArgv({"--model", "gpt-5", "resume", "thread-123", "-"}));
  EXPECT_EQ(second->stdin_path, "/m.txt");
  EXPECT_FALSE(PlanFollowUpTurn(*first, "", 2, "/m.txt").ok()) << "no thread, no resume";
}

TEST(BackendTest, ACommandFollowUpRunsTheSameArgvAndOthersRefuse) {
  LaunchRequest request = Request("command");
  request.command_argv = {"make", "lint"};
  Result<LaunchPlan> first = PlanLaunch(request);
  ASSERT_TRUE(first.ok());
  Result<LaunchPlan> third = PlanFollowUpTurn(*first, "", 3, "/m.txt");
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->argv, first->argv);
  EXPECT_EQ(EnvironmentValue(*third, "HERD_TURN"), "3");
  for (const char* backend : {"cursor-agent"}) {
    Result<LaunchPlan> plan = PlanLaunch(Request(backend));
    ASSERT_TRUE(plan.ok());
    Result<LaunchPlan> refused = PlanFollowUpTurn(*plan, "s", 2, "/m.txt");
    ASSERT_FALSE(refused.ok()) << backend;
    EXPECT_NE(refused.status().message().find("cannot continue a conversation"), std::string::npos);
    EXPECT_FALSE(CheckBackendCanResume(backend).ok());
  }
}

TEST(UsageTrackerTest, TheSessionIdComesFromTheCliEvents) {
  UsageTracker codex("codex");
  codex.Feed(R"({"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"})");
  EXPECT_EQ(codex.SessionId(), "0199a213-81c0-7800-8aa1-bbab2a035a53");
  UsageTracker claude("claude");
  claude.Feed(R"({"type":"system","subtype":"init","session_id":"abc"})");
  EXPECT_EQ(claude.SessionId(), "abc");
}

TEST(UsageTrackerTest, ClaudeCountsEachMessageOnceAndReadsTheResult) {
  UsageTracker tracker("claude");
  EXPECT_FALSE(tracker.Feed(R"({"type":"system","subtype":"init","mcp_servers":[]})"));
  // One API message split over two lines (text, then tool_use) repeats its usage.
  std::string message =
      R"({"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"hi"}],)"
      R"("usage":{"input_tokens":100,"output_tokens":20,"cache_read_input_tokens":1000,)"
      R"("cache_creation_input_tokens":50}}})";
  EXPECT_TRUE(tracker.Feed(message));
  EXPECT_FALSE(tracker.Feed(message));
  EXPECT_TRUE(tracker.Feed(
      R"({"type":"assistant","message":{"id":"msg_2","usage":{"input_tokens":10,"output_tokens":5}}})"));
  EXPECT_FALSE(tracker.Feed("not json at all"));
  EXPECT_EQ(tracker.Usage()["input_tokens"], 110);
  EXPECT_EQ(tracker.Usage()["output_tokens"], 25);
  EXPECT_EQ(tracker.TotalTokens(), 110 + 25 + 1000 + 50);
  EXPECT_TRUE(tracker.Result().is_null());

  EXPECT_TRUE(tracker.Feed(
      R"({"type":"result","subtype":"success","is_error":false,"total_cost_usd":0.0123,)"
      R"("num_turns":2,"duration_ms":3456,"usage":{"input_tokens":110,"output_tokens":25}})"));
  EXPECT_DOUBLE_EQ(tracker.Result()["total_cost_usd"].get<double>(), 0.0123);
  EXPECT_EQ(tracker.Result()["num_turns"], 2);
  EXPECT_EQ(tracker.Result()["duration_ms"], 3456);
}

TEST(UsageTrackerTest, ClaudeErrorResultCarriesTheApiError) {
  UsageTracker tracker("claude");
  tracker.Feed(R"({"type":"result","subtype":"success","is_error":true,)"
               R"("result":"API Error: 500 Internal server error","total_cost_usd":0})");
  EXPECT_TRUE(tracker.Result()["is_error"].get<bool>());
  EXPECT_EQ(tracker.Result()["error"], "API Error: 500 Internal server error");
}

// Lines printed by the real Codex CLI 0.171.0 (`codex exec --json`, then
// `codex exec --json resume <thread> -`) against tests/interop's scripted
// Responses API server: four responses in the first turn, one in the second.
// Each turn.completed is the thread's running total (the second's input is
// 21817 + 5811), and cached tokens are part of input_tokens.
constexpr const char* kCodexFirstTurn[] = {
    R"({"type":"thread.started","thread_id":"01a23334-104f-7a40-ba4c-897ce910e06e"})",
    R"({"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `scripted-model` not found. Defaulting to fallback metadata; this can degrade performance and cause issues."}})",
    R"({"type":"turn.started"})",
    R"({"type":"item.completed","item":{"id":"item_4","type":"agent_message","text":"Task complete."}})",
    R"({"type":"turn.completed","usage":{"input_tokens":21817,"cached_input_tokens":5453,"cache_write_input_tokens":0,"output_tokens":211,"reasoning_output_tokens":0}})"};
constexpr const char* kCodexResumedTurn[] = {
    R"({"type":"thread.started","thread_id":"01a23334-104f-7a40-ba4c-897ce910e06e"})",
    R"({"type":"turn.started"})",
    R"({"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"Task complete."}})",
    R"({"type":"turn.completed","usage":{"input_tokens":27628,"cached_input_tokens":6905,"cache_write_input_tokens":0,"output_tokens":222,"reasoning_output_tokens":0}})"};

TEST(UsageTrackerTest, CodexCountsCachedTokensOnceAndAWarningItemIsNoFailure) {
  UsageTracker tracker("codex");
  for (const char* line : kCodexFirstTurn) tracker.Feed(line);
  EXPECT_EQ(tracker.SessionId(), "01a23334-104f-7a40-ba4c-897ce910e06e");
  EXPECT_EQ(tracker.Usage()["input_tokens"], 21817);
  EXPECT_EQ(tracker.Usage()["cache_read_input_tokens"], 5453);
  EXPECT_EQ(tracker.Usage()["output_tokens"], 211);
  EXPECT_EQ(tracker.TotalTokens(), 21817 + 211);
  EXPECT_TRUE(tracker.Result().is_null()) << "an error item is a warning, not the turn failing";
  EXPECT_FALSE(tracker.ReportedFailure());
}

TEST(UsageTrackerTest, AResumedCodexTurnIsChargedOnlyWhatItAddedToTheThread) {
  UsageTracker first("codex");
  for (const char* line : kCodexFirstTurn) first.Feed(line);
  UsageTracker second("codex", first.Usage());
  for (const char* line : kCodexResumedTurn) second.Feed(line);
  EXPECT_EQ(second.Usage()["input_tokens"], 27628 - 21817);
  EXPECT_EQ(second.Usage()["cache_read_input_tokens"], 6905 - 5453);
  EXPECT_EQ(second.Usage()["output_tokens"], 222 - 211);
  EXPECT_EQ(first.TotalTokens() + second.TotalTokens(), 27628 + 222) << "the thread's total";
  // Told nothing of the earlier turns, the turn is charged the whole thread.
  UsageTracker unknown("codex");
  for (const char* line : kCodexResumedTurn) unknown.Feed(line);
  EXPECT_EQ(unknown.Usage()["input_tokens"], 27628);
}

TEST(UsageTrackerTest, CodexFailureEventsCarryTheirMessage) {
  // As printed by Codex CLI 0.171.0 when the Responses API answers 404.
  UsageTracker tracker("codex");
  EXPECT_TRUE(tracker.Feed(
      R"({"type":"error","message":"unexpected status 404 Not Found: probe, url: http://127.0.0.1:41727/v1/responses"})"));
  EXPECT_TRUE(tracker.Feed(
      R"({"type":"turn.failed","error":{"message":"unexpected status 404 Not Found: probe, url: http://127.0.0.1:41727/v1/responses"}})"));
  EXPECT_TRUE(tracker.Result()["is_error"].get<bool>());
  EXPECT_EQ(tracker.Result()["subtype"], "turn.failed");
  EXPECT_EQ(*tracker.ReportedFailure(),
            "unexpected status 404 Not Found: probe, url: http://127.0.0.1:41727/v1/responses");
}

TEST(UsageTrackerTest, CursorAgentSharesClaudeStreamJson) {
  UsageTracker tracker("cursor-agent");
  EXPECT_FALSE(tracker.Feed(
      R"({"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"ok"}]},"session_id":"s"})"));
  EXPECT_TRUE(tracker.Feed(
      R"({"type":"result","subtype":"success","is_error":false,"duration_ms":1234,"result":"ok","session_id":"s"})"));
  EXPECT_EQ(tracker.Result()["duration_ms"], 1234);
  EXPECT_FALSE(tracker.Result()["is_error"].get<bool>());
}

// Lines printed by Gemini CLI 0.61.0 against gemini_model_server.mjs.
TEST(UsageTrackerTest, GeminiReadsTheFinalStats) {
  UsageTracker tracker("gemini");
  EXPECT_FALSE(tracker.Feed(
      R"({"type":"init","timestamp":"2026-12-01T20:02:55.680Z","session_id":"0f8fad5b-d9cb-469f-a165-70867728950e","model":"gemini-2.5-pro"})"));
  EXPECT_EQ(tracker.SessionId(), "0f8fad5b-d9cb-469f-a165-70867728950e");
  EXPECT_FALSE(tracker.Feed(
      R"({"type":"tool_use","timestamp":"2026-12-01T20:02:56.127Z","tool_name":"mcp_herd_update_agent_progress","tool_id":"mcp_herd_update_agent_progress__call_1972fb1bb8_0_0_0","parameters":{"task_id":"TASK-1","agent_id":"a-1","status":"working","message":"Started work","progress":10}})"));
  EXPECT_FALSE(tracker.Feed(
      R"({"type":"message","timestamp":"2026-12-01T20:02:56.657Z","role":"assistant","content":"Task complete.","delta":true})"));
  EXPECT_FALSE(
      tracker.Feed("YOLO mode is enabled. All tool calls will be automatically approved."));
  EXPECT_TRUE(tracker.Feed(
      R"({"type":"result","timestamp":"2026-12-01T20:02:56.676Z","status":"success","stats":{"total_tokens":18782,"input_tokens":18672,"output_tokens":104,"cached":2333,"input":16339,"duration_ms":996,"tool_calls":2,"models":{"gemini-2.5-pro":{"total_tokens":18782,"input_tokens":18672,"output_tokens":104,"cached":2333,"input":16339}}}})"));
  EXPECT_EQ(tracker.TotalTokens(), 18782) << "the CLI's total, thoughts included";
  EXPECT_EQ(tracker.Usage()["input_tokens"], 18672);
  EXPECT_EQ(tracker.Usage()["output_tokens"], 104);
  EXPECT_EQ(tracker.Usage()["cache_read_input_tokens"], 2333);
  EXPECT_EQ(tracker.Result()["duration_ms"], 996);
  EXPECT_EQ(tracker.Result()["num_turns"], 3);
  EXPECT_EQ(tracker.Result()["session_id"], "0f8fad5b-d9cb-469f-a165-70867728950e");
  EXPECT_FALSE(tracker.Result()["is_error"].get<bool>());
  EXPECT_EQ(tracker.ReportedFailure(), std::nullopt);
}

TEST(UsageTrackerTest, GeminiErrorResultCarriesItsMessage) {
  // The model server answered HTTP 400; the CLI exited 144 (it exits with
  // the HTTP status, 400, which the kernel truncates to 8 bits).
  UsageTracker failed("gemini");
  EXPECT_TRUE(failed.Feed(
      R"({"type":"result","timestamp":"2026-12-01T20:06:22.308Z","status":"error","error":{"type":"unknown","message":"[API Error: {\"error\":{\"code\":400,\"message\":\"Bad request (scripted)\",\"status\":\"INVALID_ARGUMENT\"}}]"},"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":0,"tool_calls":0,"models":{"gemini-2.5-pro":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0}}}})"));
  EXPECT_TRUE(failed.Result()["is_error"].get<bool>());
  EXPECT_EQ(failed.Result()["subtype"], "error");
  const std::string message =
      "[API Error: {\"error\":{\"code\":400,\"message\":\"Bad request (scripted)\","
      "\"status\":\"INVALID_ARGUMENT\"}}]";
  EXPECT_EQ(failed.ReportedFailure(), message);
}

// Found by fuzz/stream_events_fuzz.cc: a field of an unexpected type threw
// out of Feed, in the supervisor.
TEST(UsageTrackerTest, FieldsOfTheWrongTypeCountAsAbsent) {
  for (const char* backend : {"claude", "cursor-agent", "codex", "gemini"}) {
    UsageTracker tracker(backend);
    EXPECT_FALSE(tracker.Feed(R"({"type":true})"));
    tracker.Feed(R"({"type":"result","is_error":{"input_tokens":-5},"status":7,"stats":[]})");
    tracker.Feed(R"({"type":"assistant","message":{"id":3,"usage":{"input_tokens":1e300}}})");
    tracker.Feed(R"({"type":"turn.completed","usage":{"input_tokens":-1e300,"output_tokens":2}})");
    tracker.Feed(R"({"type":"turn.failed","message":[],"error":{"message":false}})");
    EXPECT_GE(tracker.TotalTokens(), 0) << backend;
  }
}

TEST(UsageTrackerTest, ExtractResultEventFindsTheLastOne) {
  std::vector<std::string> lines = {
      R"({"type":"system","subtype":"init"})",
      R"({"type":"result","subtype":"success","is_error":false,"total_cost_usd":1.5,"num_turns":3})",
      "trailing garbage"};
  EXPECT_DOUBLE_EQ(ExtractResultEvent(lines)["total_cost_usd"].get<double>(), 1.5);
  EXPECT_TRUE(ExtractResultEvent({"nothing"}).is_null());
}

}  // namespace
}  // namespace herd::agents
