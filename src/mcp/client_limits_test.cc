// Fitting status replies and timelines to MCP clients' output limits, on
// documents built by hand.
#include "mcp/client_limits.h"

#include <gtest/gtest.h>

#include <string>

namespace herd::mcp {
namespace {

using nlohmann::json;

// An agent entry like the registry's, with a long prompt and file paths.
json Agent(int n, const std::string& status, const std::string& last_update) {
  std::string id = "worker-000000-" + std::to_string(100000 + n);
  return {{"id", id},
          {"type", "worker"},
          {"parent", "orchestrator"},
          {"depth", 1},
          {"status", status},
          {"liveness", status == "running" ? "alive" : "ended"},
          {"progress", n % 100},
          {"last_update", last_update},
          {"started_at", "2026-11-27T00:00:00.000000Z"},
          {"prompt", std::string(200, 'p')},
          {"pid", 1000 + n},
          {"tracked_files",
           {{"log_file", "/tmp/ws/TASK/logs/" + id + "_stream.jsonl"},
            {"progress_file", "/tmp/ws/TASK/progress/" + id + "_progress.jsonl"}}},
          {"subtree_usage",
           {{"total_tokens", 10 * n}, {"total_cost_usd", 0.01 * n}, {"num_turns", 1}}}};
}

// A status with `count` agents: the first `active` running and updated
// longest ago, the others ended, later ones updated more recently.
json Status(int count, int active = 0) {
  json list = json::array();
  for (int n = 0; n < count; ++n) {
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "2026-11-27T01:%02d:%02d.000000Z", (n / 60) % 60, n % 60);
    list.push_back(Agent(n, n < active ? "running" : "completed",
                         n < active ? "2026-11-27T00:00:00.000000Z" : stamp));
  }
  return {{"task_id", "TASK-20261127-000000-00000000"},
          {"agents", {{"total_spawned", count}, {"agents_list", list}}}};
}

size_t Bytes(const json& value) {
  return value.dump().size();
}

TEST(FitAgentsListTest, SmallTaskKeepsFullEntries) {
  json fitted = FitAgentsList(Status(5), "auto");
  EXPECT_EQ(fitted["agents"]["agents_list_format"], "full");
  EXPECT_EQ(fitted["agents"]["agents_list"], Status(5)["agents"]["agents_list"]);
  EXPECT_FALSE(fitted["agents"].contains("agents_omitted"));
}

TEST(FitAgentsListTest, SummaryKeepsWhatFollowsAnAgentAndDropsTheRest) {
  json fitted = FitAgentsList(Status(3), "summary");
  EXPECT_EQ(fitted["agents"]["agents_list_format"], "summary");
  ASSERT_EQ(fitted["agents"]["agents_list"].size(), 3u);
  const json& entry = fitted["agents"]["agents_list"][2];
  EXPECT_EQ(entry["id"], "worker-000000-100002");
  EXPECT_EQ(entry["liveness"], "ended");
  EXPECT_EQ(entry["progress"], 2);
  EXPECT_EQ(entry["subtree_usage"], json({{"total_tokens", 20}, {"total_cost_usd", 0.02}}));
  for (const char* dropped : {"prompt", "pid", "tracked_files"}) {
    EXPECT_FALSE(entry.contains(dropped)) << dropped;
  }
  EXPECT_NE(fitted["agents"]["agents_list_note"].get<std::string>().find("response_format"),
            std::string::npos);
}

TEST(FitAgentsListTest, LargeTaskIsSummarisedWithinTheBudgetActiveAndNewestFirst) {
  json status = Status(1000, /*active=*/20);
  ASSERT_GT(Bytes(status["agents"]["agents_list"]), 4 * kAgentsListBudget);
  json fitted = FitAgentsList(status, "auto");
  const json& agents = fitted["agents"];
  EXPECT_EQ(agents["agents_list_format"], "summary");
  EXPECT_LE(Bytes(agents["agents_list"]), kAgentsListBudget);
  size_t kept = agents["agents_list"].size();
  ASSERT_TRUE(agents.contains("agents_omitted"));
  EXPECT_EQ(kept + agents["agents_omitted"].get<size_t>(), 1000u);
  // Every running agent is kept although it was updated longest ago; the
  // ended ones kept are the most recent; the list stays in admission order.
  int running = 0, previous = -1, lowest_ended = 1000;
  for (const json& entry : agents["agents_list"]) {
    int n = std::stoi(entry["id"].get<std::string>().substr(14)) - 100000;
    EXPECT_GT(n, previous);
    previous = n;
    if (entry["status"] == "running")
      ++running;
    else
      lowest_ended = std::min(lowest_ended, n);
  }
  EXPECT_EQ(running, 20);
  EXPECT_EQ(lowest_ended, 1000 - static_cast<int>(kept - 20));
}

TEST(FitAgentsListTest, FullIsNeverShortened) {
  json status = Status(1000);
  json fitted = FitAgentsList(status, "full");
  EXPECT_EQ(fitted["agents"]["agents_list"], status["agents"]["agents_list"]);
  EXPECT_EQ(fitted["agents"]["agents_list_format"], "full");
}

TEST(FitAgentsListTest, LongTextsAreCutOnACharacterBoundary) {
  json status = Status(1);
  std::string accented = "a";  // so that byte 200 falls inside a character
  for (int i = 0; i < 300; ++i) accented += "\xc3\xa9";  // é, two bytes each
  status["agents"]["agents_list"][0]["error"] = accented;
  status["agents"]["agents_list"][0]["last_update"] = 7;  // mistyped: must not throw
  json fitted = FitAgentsList(status, "summary");
  std::string error = fitted["agents"]["agents_list"][0]["error"];
  EXPECT_EQ(error, accented.substr(0, 199) + "...");
  EXPECT_NO_THROW(fitted.dump());  // valid UTF-8 throughout
}

TEST(FitAgentsListTest, LongRecentReportsAreShortenedUnlessFullIsAsked) {
  json status = Status(2);
  status["enhanced_progress"] = {
      {"recent_updates",
       json::array({{{"message", std::string(5000, 'm')}}, {{"message", "short"}}})},
      {"recent_findings",
       json::array({{{"message", "f"}, {"data", {{"blob", std::string(10000, 'd')}}}},
                    {{"message", "g"}, {"data", {{"small", 1}}}}})}};
  json fitted = FitAgentsList(status, "auto");
  const json& progress = fitted["enhanced_progress"];
  EXPECT_EQ(progress["recent_updates"][0]["message"], std::string(1000, 'm') + "...");
  EXPECT_EQ(progress["recent_updates"][1]["message"], "short");
  EXPECT_GT(progress["recent_findings"][0]["data"]["omitted_bytes"].get<size_t>(), 10000u);
  EXPECT_EQ(progress["recent_findings"][1]["data"], json({{"small", 1}}));
  EXPECT_EQ(FitAgentsList(status, "full")["enhanced_progress"], status["enhanced_progress"]);
}

TEST(FitTimelineTest, KeepsTheNewestEntriesWithinTheBudgetOldestFirst) {
  json entries = json::array();
  for (int i = 0; i < 5000; ++i) {
    entries.push_back({{"timestamp", i}, {"message", "update number " + std::to_string(i)}});
  }
  json fitted = FitTimeline({{"task_id", "T"}, {"timeline", entries}, {"total_entries", 5000}});
  const json& kept = fitted["timeline"];
  EXPECT_LE(Bytes(kept), kAgentsListBudget);
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.back()["timestamp"], 4999);
  EXPECT_EQ(kept.size() + fitted["omitted_older_entries"].get<size_t>(), 5000u);
  EXPECT_EQ(kept.front()["timestamp"], 5000 - static_cast<int>(kept.size()));

  json small = {{"timeline", json::array({{{"timestamp", 1}}})}};
  EXPECT_EQ(FitTimeline(small), small);
}

TEST(FitTaskListTest, KeepsTheNewestTasksWithinTheBudget) {
  json tasks = json::array();
  for (int i = 0; i < 3000; ++i) {  // newest first, as ListTasks orders them
    tasks.push_back({{"task_id", "TASK-" + std::to_string(3000 - i)},
                     {"description", "a task described in a few words"}});
  }
  json fitted = FitTaskList({{"tasks", tasks}, {"total", 3000}});
  EXPECT_LE(Bytes(fitted["tasks"]), kAgentsListBudget);
  ASSERT_FALSE(fitted["tasks"].empty());
  EXPECT_EQ(fitted["tasks"][0]["task_id"], "TASK-3000");
  EXPECT_EQ(fitted["tasks"].size() + fitted["omitted_older_tasks"].get<size_t>(), 3000u);
  EXPECT_EQ(fitted["total"], 3000);

  json few = {{"tasks", json::array({{{"task_id", "TASK-1"}}})}, {"total", 1}};
  EXPECT_EQ(FitTaskList(few), few);
}

// A wait_for_agents reply with `agents` entries, every fifth still active.
json WaitReply(int agents, size_t result_bytes) {
  json list = json::array();
  for (int i = 0; i < agents; ++i) {
    bool ended = i % 5 != 0;
    list.push_back({{"agent_id", "worker-000000-" + std::to_string(100000 + i)},
                    {"status", ended ? "completed" : "running"},
                    {"ended", ended},
                    {"last_message", std::string(900, 'm')},
                    {"final_result", ended ? json(std::string(result_bytes, 'r')) : json(nullptr)},
                    {"findings", 1}});
  }
  return {{"task_id", "TASK-X"}, {"condition_met", false}, {"agents", list}};
}

TEST(FitWaitReplyTest, SmallReplyIsLeftWhole) {
  json reply = WaitReply(5, 1000);
  EXPECT_EQ(FitWaitReply(reply), reply);
}

TEST(FitWaitReplyTest, LargeReplyFitsWithTheStillActiveFirst) {
  json fitted = FitWaitReply(WaitReply(400, 1000));
  const json& agents = fitted["agents"];
  EXPECT_LE(agents.dump().size(), kAgentsListBudget);
  ASSERT_GE(agents.size(), 80u) << "the 80 still-active ones all fit";
  for (size_t i = 0; i < 80; ++i) EXPECT_EQ(agents[i]["ended"], false) << i;
  EXPECT_EQ(fitted.value("agents_omitted", 0u) + agents.size(), 400u);
  EXPECT_GT(fitted.value("agents_omitted", 0u), 0u);
  for (const json& agent : agents) {
    EXPECT_FALSE(agent.contains("final_result"));
    EXPECT_LE(agent["last_message"].get<std::string>().size(), 203u);
  }
  EXPECT_NE(fitted.value("agents_note", "").find("ended agents omitted"), std::string::npos);
}

}  // namespace
}  // namespace herd::mcp
