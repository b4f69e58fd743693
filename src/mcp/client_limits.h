// Client limits: keeping MCP replies small enough for the clients that read
// them.
//
// Claude Code refuses a tool result over 25,000 tokens
// (MAX_MCP_OUTPUT_TOKENS, about 100 KB of JSON) and tells the model to use
// "pagination, filtering, or limit parameters" (2.0.30; 2.1 saves it to a
// file and tells the model to read that); other clients have similar
// limits. The parts of herd's replies that grow with use (the agent list of
// a status, the progress timeline, the list of tasks) are kept within
// kAgentsListBudget bytes of compact JSON by default, and the reply says
// what was shortened and how to get the rest. (get_agent_output has its own
// byte limit, `max_bytes`.)
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace herd::mcp {

inline constexpr size_t kAgentsListBudget = 64 * 1024;

// What every herd tool declares as its largest result in characters
// (`_meta["anthropic/maxResultSizeChars"]` of its definition in
// tools/list). Claude Code 2.1 keeps an MCP tool result of up to 50,000
// characters in the conversation unless the tool declares more (up to
// 500,000); a longer one is saved to a file and the model is given its
// first 2 KB and the path. herd's replies are kept under the 25,000-token
// limit, about 100,000 characters, so that is what each tool declares.
inline constexpr size_t kDeclaredMaxResultChars = 100000;

// A get_real_task_status reply with its agent entries fitted: "full" leaves
// them whole; "auto" too while they fit kAgentsListBudget; beyond that (and
// always for "summary") each entry is summarised (id, type, parent, depth,
// status, liveness, progress, times, exit, error, usage; long texts cut at
// 200 characters), and summaries that still do not fit are left out, active
// agents and the most recently updated kept first. Adds
// agents.agents_list_format ("full" or "summary"), and for summaries
// agents.agents_list_note and, if any were left out, agents.agents_omitted.
// Unless "full", the recent updates' and findings' messages are cut at 1000
// bytes and finding data over 4 KB is replaced by {"omitted_bytes", "note"}.
nlohmann::json FitAgentsList(nlohmann::json status, const std::string& format);

// A progress timeline ({"timeline": [...oldest first]}) with only its newest
// entries that fit kAgentsListBudget, plus "omitted_older_entries" and a
// note when any were left out (a resource read has no parameters to ask
// for less).
nlohmann::json FitTimeline(nlohmann::json timeline);

// A wait_for_agents reply with its agents fitted into kAgentsListBudget:
// while they do not fit, final results are dropped and texts cut at 200
// characters; then agents are left out, still-active ones kept first,
// with agents_omitted and agents_note saying so.
nlohmann::json FitWaitReply(nlohmann::json reply);

// The tasks://list reply ({"tasks": [...newest first]}) with only its newest
// tasks that fit kAgentsListBudget, plus "omitted_older_tasks" and a note
// when any were left out.
nlohmann::json FitTaskList(nlohmann::json list);

}  // namespace herd::mcp
