#include "mcp/client_limits.h"

#include <algorithm>
#include <string>
#include <vector>

#include "util/json_fields.h"
#include "util/utf8.h"

namespace herd::mcp {
namespace {

using nlohmann::json;

constexpr size_t kSummaryTextLength = 200;
constexpr size_t kDataPreviewBytes = 4 * 1024;

// The fields of an agent a summary keeps (the others, such as the prompt,
// process ids and file paths, are in the full entry).
const char* const kSummaryKeys[] = {"id",           "type",
                                    "parent",       "depth",
                                    "status",       "liveness",
                                    "progress",     "last_update",
                                    "started_at",   "ended_at",
                                    "exit_code",    "exit_signal",
                                    "error",        "termination_reason",
                                    "last_message", "worktree_summary"};

json SummaryOf(const json& agent) {
  json summary = json::object();
  for (const char* key : kSummaryKeys) {
    auto found = agent.find(key);
    if (found == agent.end() || found->is_null()) continue;
    if (found->is_string() && found->get_ref<const std::string&>().size() > kSummaryTextLength) {
      summary[key] = Utf8Prefix(found->get_ref<const std::string&>(), kSummaryTextLength) + "...";
    } else {
      summary[key] = *found;
    }
  }
  auto usage = agent.find("subtree_usage");
  if (usage != agent.end() && usage->is_object()) {
    summary["subtree_usage"] = {{"total_tokens", usage->value("total_tokens", json(0))},
                                {"total_cost_usd", usage->value("total_cost_usd", json(0.0))}};
  }
  return summary;
}

// Whether `list` serialises to at most `budget` bytes; stops counting as
// soon as it does not.
bool FitsIn(const json& list, size_t budget) {
  size_t used = 2;
  for (const json& entry : list) {
    used += entry.dump(-1, ' ', false, json::error_handler_t::replace).size() + 1;
    if (used > budget) return false;
  }
  return true;
}

enum class Keep { kFirst, kLast };

// Drops entries from the other end of `entries` until the rest fits
// kAgentsListBudget; returns how many were dropped.
size_t KeepWithinBudget(json* entries, Keep keep) {
  if (FitsIn(*entries, kAgentsListBudget)) return 0;
  size_t count = entries->size();
  size_t used = 2, kept = 0;
  while (kept < count) {
    const json& next = (*entries)[keep == Keep::kFirst ? kept : count - 1 - kept];
    size_t size = next.dump(-1, ' ', false, json::error_handler_t::replace).size() + 1;
    if (used + size > kAgentsListBudget) break;
    used += size;
    ++kept;
  }
  json fitted = json::array();
  size_t begin = keep == Keep::kFirst ? 0 : count - kept;
  for (size_t i = begin; i < begin + kept; ++i) fitted.push_back(std::move((*entries)[i]));
  *entries = std::move(fitted);
  return count - kept;
}

// `document[key]` kept within the budget from the `keep` end; when entries
// were left out, says how many under `omitted_key`, and why under "note".
json FitList(json document, const char* key, Keep keep, const char* omitted_key, const char* note) {
  size_t omitted = KeepWithinBudget(&document[key], keep);
  if (omitted == 0) return document;
  document[omitted_key] = omitted;
  document["note"] = note;
  return document;
}

// Recent updates and findings may carry up to 64 KB messages and 256 KB of
// data each: unless "full" was asked for, long ones are shortened (the
// journals keep them whole).
void ShortenRecentReports(json& status) {
  auto progress = status.find("enhanced_progress");
  if (progress == status.end() || !progress->is_object()) return;
  for (const char* list : {"recent_updates", "recent_findings"}) {
    auto entries = progress->find(list);
    if (entries == progress->end() || !entries->is_array()) continue;
    for (json& entry : *entries) {
      auto message = entry.find("message");
      if (message != entry.end() && message->is_string() &&
          message->get_ref<const std::string&>().size() > kSummaryTextLength * 5) {
        *message =
            Utf8Prefix(message->get_ref<const std::string&>(), kSummaryTextLength * 5) + "...";
      }
      auto data = entry.find("data");
      if (data == entry.end()) continue;
      size_t bytes = data->dump(-1, ' ', false, json::error_handler_t::replace).size();
      if (bytes > kDataPreviewBytes) {
        *data = {{"omitted_bytes", bytes},
                 {"note", "too large to repeat here; the agent's findings file has it"}};
      }
    }
  }
}

}  // namespace

json FitAgentsList(json status, const std::string& format) {
  if (format != "full") ShortenRecentReports(status);
  json& agents = status["agents"];
  json& list = agents["agents_list"];
  if (format == "full" || (format == "auto" && FitsIn(list, kAgentsListBudget))) {
    agents["agents_list_format"] = "full";
    return status;
  }
  std::vector<json> summaries;
  for (const json& agent : list) summaries.push_back(SummaryOf(agent));
  // Which to keep if they do not all fit: active first, then newest update.
  std::vector<size_t> order(summaries.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto text = [&](size_t i, const char* key) { return StringOr(summaries[i], key); };
  auto active = [&](size_t i) { return text(i, "liveness") != "ended"; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (active(a) != active(b)) return active(a);
    return text(a, "last_update") > text(b, "last_update");
  });
  std::vector<bool> kept(summaries.size(), false);
  size_t used = 0;
  for (size_t i : order) {
    size_t size = summaries[i].dump(-1, ' ', false, json::error_handler_t::replace).size() + 1;
    if (used + size > kAgentsListBudget) break;
    used += size;
    kept[i] = true;
  }
  json fitted = json::array();
  size_t omitted = 0;
  for (size_t i = 0; i < summaries.size(); ++i) {
    if (kept[i]) {
      fitted.push_back(std::move(summaries[i]));
    } else {
      ++omitted;
    }
  }
  list = std::move(fitted);
  agents["agents_list_format"] = "summary";
  if (omitted > 0) agents["agents_omitted"] = omitted;
  agents["agents_list_note"] =
      "agents are summarised" + std::string(omitted > 0 ? " (the least recent omitted)" : "") +
      " so the reply fits MCP clients' output limits; response_format \"full\" or "
      "`herd status " +
      status.value("task_id", std::string("TASK")) +
      " --json` gives every field, and get_agent_output one agent's output";
  return status;
}

json FitWaitReply(json reply) {
  json& agents = reply["agents"];
  if (FitsIn(agents, kAgentsListBudget)) return reply;
  // Still-active agents first: they are what the caller waits for.
  json ordered = json::array();
  json ended = json::array();
  for (json& agent : agents) {
    if (!agent.is_object()) continue;
    agent.erase("final_result");
    for (const char* key : {"last_message", "reason"}) {
      auto text = agent.find(key);
      if (text == agent.end() || !text->is_string() ||
          text->get_ref<const std::string&>().size() <= kSummaryTextLength) {
        continue;
      }
      *text = Utf8Prefix(text->get_ref<const std::string&>(), kSummaryTextLength) + "...";
    }
    (agent.value("ended", true) ? ended : ordered).push_back(std::move(agent));
  }
  for (json& agent : ended) ordered.push_back(std::move(agent));
  size_t omitted = KeepWithinBudget(&ordered, Keep::kFirst);
  agents = std::move(ordered);
  if (omitted > 0) reply["agents_omitted"] = omitted;
  reply["agents_note"] =
      "final results are left out and long texts cut" +
      std::string(omitted > 0 ? ", and " + std::to_string(omitted) + " ended agents omitted,"
                              : "") +
      " so the reply fits MCP clients' output limits; get_real_task_status and get_agent_output "
      "give the rest";
  return reply;
}

json FitTimeline(json timeline) {
  return FitList(std::move(timeline), "timeline", Keep::kLast, "omitted_older_entries",
                 "the oldest entries are left out so the reply fits MCP clients' output "
                 "limits; each agent's full journal is in its progress and findings files");
}

json FitTaskList(json list) {
  return FitList(std::move(list), "tasks", Keep::kFirst, "omitted_older_tasks",
                 "the oldest tasks are left out so the reply fits MCP clients' output limits; "
                 "`herd task list --json` lists every task");
}

}  // namespace herd::mcp
