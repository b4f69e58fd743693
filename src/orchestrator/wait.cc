// Orchestrator::WaitForAgents and its report (orchestrator.h).
//
// The wait watches the task's commits first (Registry::WatchCommits), then
// reads the task, then blocks; every commit to the task wakes it to read
// again, so no change between a read and the next block is missed, and
// nothing runs while nothing changes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "orchestrator/orchestrator.h"
#include "registry/ids.h"
#include "util/clock.h"
#include "util/json_fields.h"
#include "util/utf8.h"

namespace herd {
namespace {

using registry::AgentRecord;
using registry::SharedTask;
using registry::TaskRecord;

// A backend's final answer is shown up to this many bytes.
constexpr size_t kFinalResultPreviewBytes = 1000;
// Ids named in a summary before "and N more".
constexpr size_t kIdsInSummary = 10;

// Which of a task's agents a wait is about.
class WaitSet {
 public:
  // Named agents must be in the task. With none named: every agent that
  // has not ended in `first`, and every agent added later.
  static Result<WaitSet> For(const WaitRequest& request, const TaskRecord& first) {
    WaitSet set;
    set.named_ = !request.agent_ids.empty();
    for (const std::string& agent_id : request.agent_ids) {
      HERD_RETURN_IF_ERROR(registry::ValidateAgentId(agent_id));
      if (first.FindAgent(agent_id) == nullptr) {
        return Status::NotFound("agent " + agent_id + " is not part of task " + first.task_id +
                                ": run `herd status " + first.task_id + "` for its agents");
      }
      set.ids_.insert(agent_id);
    }
    if (!set.named_) {
      for (const AgentRecord& agent : first.agents) {
        if (registry::IsTerminalStatus(agent.status)) set.ids_.insert(agent.id);
      }
    }
    return set;
  }

  // The agents waited for in `task`, in its order.
  std::vector<const AgentRecord*> Select(const TaskRecord& task) const {
    std::vector<const AgentRecord*> selected;
    for (const AgentRecord& agent : task.agents) {
      // Named: those ids. Otherwise the ids are the ones that had ended.
      if ((ids_.count(agent.id) > 0) == named_) selected.push_back(&agent);
    }
    return selected;
  }

 private:
  bool named_ = false;
  std::set<std::string> ids_;
};

struct Tally {
  size_t waited = 0;
  size_t ended = 0;
};

Tally Count(const WaitSet& set, const TaskRecord& task) {
  Tally tally;
  for (const AgentRecord* agent : set.Select(task)) {
    ++tally.waited;
    if (registry::IsTerminalStatus(agent->status)) ++tally.ended;
  }
  return tally;
}

// Nothing to wait for holds either way.
bool Holds(const std::string& mode, const Tally& tally) {
  if (mode == "any") return tally.ended > 0 || tally.waited == 0;
  return tally.ended == tally.waited;
}

std::string ProgressMessage(const Tally& tally, MonotonicClock::time_point start,
                            double timeout_seconds) {
  return std::to_string(tally.ended) + " of " + std::to_string(tally.waited) +
         " agents ended; waiting for " + std::to_string(tally.waited - tally.ended) + " (" +
         std::to_string(static_cast<long long>(MillisecondsSince(start) / 1000)) + " s of " +
         std::to_string(static_cast<long long>(timeout_seconds)) + " s)";
}

struct Blocked {
  SharedTask snapshot;  // the last read
  WaitReport::Outcome outcome = WaitReport::Outcome::kConditionMet;
};

// Evaluates the condition on every read and blocks on `watch` in between
// until it holds, the deadline passes or the wait is stopped.
Result<Blocked> Block(registry::CommitWatch& watch, const std::function<Result<SharedTask>()>& read,
                      SharedTask first, const WaitSet& set, const WaitRequest& request,
                      const WaitHooks& hooks, MonotonicClock::time_point start) {
  const auto deadline = start + std::chrono::duration_cast<MonotonicClock::duration>(
                                    std::chrono::duration<double>(request.timeout_seconds));
  const auto never = MonotonicClock::time_point::max();
  Blocked blocked{std::move(first)};
  size_t reported_ended = Count(set, blocked.snapshot->task).ended;
  auto next_progress = hooks.progress ? start + hooks.progress_interval : never;
  for (;;) {
    Tally tally = Count(set, blocked.snapshot->task);
    if (Holds(request.mode, tally)) return blocked;
    auto now = MonotonicClock::now();
    if (hooks.progress && (tally.ended != reported_ended || now >= next_progress)) {
      hooks.progress(ProgressMessage(tally, start, request.timeout_seconds));
      reported_ended = tally.ended;
      next_progress = now + hooks.progress_interval;
    }
    if (now >= deadline) {
      blocked.outcome = WaitReport::Outcome::kTimedOut;
      return blocked;
    }
    HERD_ASSIGN_OR_RETURN(Wake wake,
                          watch.WaitUntil(std::min(deadline, next_progress), hooks.stop));
    if (wake == Wake::kStopped) {
      blocked.outcome = WaitReport::Outcome::kStopped;
      return blocked;
    }
    // A change, the deadline (an exit at the last moment still counts) or
    // a progress tick: read again.
    HERD_ASSIGN_OR_RETURN(blocked.snapshot, read());
  }
}

// "3 completed, 1 error".
std::string StatusBreakdown(const std::vector<WaitedAgent>& agents) {
  std::map<std::string, size_t> counts;
  for (const WaitedAgent& waited : agents) {
    if (waited.ended()) ++counts[waited.agent.status];
  }
  std::string text;
  for (const auto& [status, count] : counts) {
    text += (text.empty() ? "" : ", ") + std::to_string(count) + " " + status;
  }
  return text;
}

std::string IdList(const std::vector<std::string>& ids) {
  std::string text;
  for (size_t i = 0; i < ids.size() && i < kIdsInSummary; ++i) {
    text += (i == 0 ? "" : ", ") + ids[i];
  }
  if (ids.size() > kIdsInSummary) {
    text += " and " + std::to_string(ids.size() - kIdsInSummary) + " more";
  }
  return text;
}

json OptionalNumber(const std::optional<int>& value) {
  return value ? json(*value) : json(nullptr);
}

// Why it ended, in the entry's own words: an error, a kill, its own report.
json EndReason(const AgentRecord& agent) {
  if (agent.error) return *agent.error;
  if (agent.termination_reason) return *agent.termination_reason;
  if (agent.ended_reason) return *agent.ended_reason;
  return nullptr;
}

// The backend's final answer (Claude Code's result text), cut short.
json FinalResultPreview(const AgentRecord& agent) {
  if (!agent.result.is_object()) return nullptr;
  auto text = agent.result.find("result");
  if (text == agent.result.end() || !text->is_string()) return nullptr;
  const std::string& full = text->get_ref<const std::string&>();
  if (full.size() <= kFinalResultPreviewBytes) return full;
  return Utf8Prefix(full, kFinalResultPreviewBytes) + "...";
}

}  // namespace

bool WaitedAgent::ended() const {
  // A queued follow-up runs as its next turn (registry/turns.h).
  return registry::IsTerminalStatus(agent.status) && agent.message_queue.empty();
}

json WaitedAgent::ToJson() const {
  const std::optional<registry::ExitInfo>& exit = agent.exit;
  return {{"agent_id", agent.id},
          {"type", agent.type},
          {"status", agent.status},
          {"ended", ended()},
          {"liveness", agents::LivenessName(liveness)},
          {"progress", agent.progress},
          {"exit_code", exit ? OptionalNumber(exit->exit_code) : json(nullptr)},
          {"exit_signal", exit ? OptionalNumber(exit->exit_signal) : json(nullptr)},
          {"ended_at", exit ? NullIfEmpty(exit->ended_at) : json(nullptr)},
          {"last_message", agent.last_message ? json(*agent.last_message) : json(nullptr)},
          {"reason", EndReason(agent)},
          {"final_result", FinalResultPreview(agent)},
          {"findings", findings},
          {"turn", agent.turn},
          {"queued_messages", agent.message_queue.size()},
          {"usage", registry::AgentUsage(agent).ToJson()}};
}

std::vector<std::string> WaitReport::StillActive() const {
  std::vector<std::string> ids;
  for (const WaitedAgent& waited : agents) {
    if (!waited.ended()) ids.push_back(waited.agent.id);
  }
  return ids;
}

std::string WaitReport::Summary() const {
  std::vector<std::string> active = StillActive();
  size_t ended = agents.size() - active.size();
  if (agents.empty()) return "no agents to wait for: none of the task's agents is active";
  std::string text =
      std::to_string(ended) + " of " + std::to_string(agents.size()) + " agents have ended";
  if (ended > 0) text += " (" + StatusBreakdown(agents) + ")";
  if (active.empty()) return text;
  text += "; " + std::to_string(active.size()) + " still active: " + IdList(active);
  // Tenths below ten seconds: "0.5 s", "12 s".
  char waited[32];
  std::snprintf(waited, sizeof waited, waited_seconds < 10 ? "%.1f" : "%.0f", waited_seconds);
  if (outcome == Outcome::kTimedOut) {
    text = "timed out after " + std::string(waited) + " s: " + text +
           ". Call wait_for_agents again to keep waiting (herd wait on the command line)";
  } else if (outcome == Outcome::kStopped) {
    text = "stopped after " + std::string(waited) + " s: " + text;
  }
  return text;
}

json WaitReport::ToJson() const {
  json listed = json::array();
  for (const WaitedAgent& waited : agents) listed.push_back(waited.ToJson());
  std::vector<std::string> active = StillActive();
  json reply = {{"task_id", task_id},
                {"mode", mode},
                {"condition_met", outcome == Outcome::kConditionMet},
                {"timed_out", outcome == Outcome::kTimedOut},
                {"stopped", outcome == Outcome::kStopped},
                {"waited_seconds", std::round(waited_seconds * 1000) / 1000},
                {"timeout_seconds", timeout_seconds},
                {"waited_for", agents.size()},
                {"ended", agents.size() - active.size()},
                {"still_active", active},
                {"summary", Summary()}};
  reply["agents"] = std::move(listed);
  return reply;
}

Result<WaitReport> Orchestrator::WaitForAgents(const WaitRequest& request,
                                               const WaitHooks& hooks) const {
  if (std::find(WaitRequest::Modes().begin(), WaitRequest::Modes().end(), request.mode) ==
      WaitRequest::Modes().end()) {
    return Status::InvalidArgument("mode must be " + Alternatives(WaitRequest::Modes()));
  }
  if (!(request.timeout_seconds >= 0 &&
        request.timeout_seconds <= WaitRequest::kMaxTimeoutSeconds)) {
    return Status::InvalidArgument("timeout_seconds must be from 0 to " +
                                   std::to_string(WaitRequest::kMaxTimeoutSeconds));
  }
  const auto start = MonotonicClock::now();
  HERD_ASSIGN_OR_RETURN(registry::Workspace workspace, Locate(request.task_id));
  const std::string& task_id = request.task_id;
  // Watch before the first read: a change after the read then wakes the
  // first block.
  std::unique_ptr<const registry::Registry> registry = RegistryOf(workspace);
  HERD_ASSIGN_OR_RETURN(std::unique_ptr<registry::CommitWatch> watch,
                        registry->WatchCommits(task_id));
  auto read = [&] { return registry->ReadTask(task_id); };
  HERD_ASSIGN_OR_RETURN(SharedTask first, read());
  HERD_ASSIGN_OR_RETURN(WaitSet set, WaitSet::For(request, first->task));
  HERD_ASSIGN_OR_RETURN(Blocked blocked,
                        Block(*watch, read, std::move(first), set, request, hooks, start));

  WaitReport report;
  report.outcome = blocked.outcome;
  report.task_id = task_id;
  report.mode = request.mode;
  report.timeout_seconds = request.timeout_seconds;
  const double now = NowUnixSeconds();
  for (const AgentRecord* agent : set.Select(blocked.snapshot->task)) {
    WaitedAgent& waited = report.agents.emplace_back();
    waited.agent = *agent;
    HERD_ASSIGN_OR_RETURN(JournalSlice findings,
                          registry->ReadJournal(task_id, *agent, registry::Journal::kFindings, 0));
    waited.findings = findings.total;
    waited.liveness =
        agents::ClassifyLiveness(*agent, now, agents::kStartingGrace, processes_.get());
  }
  report.waited_seconds = MillisecondsSince(start) / 1000;
  return report;
}

}  // namespace herd
