#include "cli/follow.h"

#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "registry/pg_registry.h"
#include "registry/task_registry.h"
#include "util/directory_watch.h"

namespace herd::cli {
namespace {

// Whether the agent has ended (or cannot be read: nothing more will come).
bool AgentHasEnded(const Orchestrator& orchestrator, const std::string& task_id,
                   const std::string& agent_id) {
  Result<registry::SharedTask> snapshot = orchestrator.ReadTask(task_id);
  if (!snapshot.ok()) return true;
  const registry::AgentRecord* agent = (*snapshot)->task.FindAgent(agent_id);
  return agent == nullptr || registry::IsTerminalStatus(agent->status);
}

// The end of `text` that holds its last `lines` lines.
std::string LastLines(const std::string& text, size_t lines) {
  if (lines == SIZE_MAX) return text;
  size_t begin = text.size();
  if (begin > 0 && text[begin - 1] == '\n') --begin;  // the last line's own newline
  for (size_t seen = 0; begin > 0; --begin) {
    if (text[begin - 1] == '\n' && ++seen == lines) break;
  }
  return lines == 0 ? std::string() : text.substr(begin);
}

}  // namespace

int FollowLogFile(const Orchestrator& orchestrator, const std::string& task_id,
                  const std::string& agent_id, const std::string& log_path, uint64_t offset) {
  std::string logs_directory = log_path.substr(0, log_path.rfind('/'));
  std::string task_directory = logs_directory.substr(0, logs_directory.rfind('/'));
  Result<DirectoryWatch> watch = DirectoryWatch::Open();
  Status watched =
      watch.ok() ? watch->Add(logs_directory, WatchFor::kGrowingFiles) : watch.status();
  if (watched.ok()) watched = watch->Add(task_directory, WatchFor::kReplacedFiles);
  // Its supervisor closes the log once the turn's end is recorded: with the
  // PostgreSQL registry no file in the task directory says so.
  if (watched.ok()) watched = watch->Add(logs_directory, WatchFor::kReplacedFiles);
  if (!watched.ok()) {
    std::cerr << "herd: cannot follow the log: " << watched.message() << "\n";
    return kExitFailed;
  }
  for (;;) {
    bool ended = AgentHasEnded(orchestrator, task_id, agent_id);
    std::ifstream file(log_path, std::ios::binary);
    if (file) {
      file.seekg(static_cast<std::streamoff>(offset));
      char buffer[65536];
      while (file.read(buffer, sizeof buffer) || file.gcount() > 0) {
        std::cout.write(buffer, file.gcount());
        offset += static_cast<uint64_t>(file.gcount());
      }
      std::cout.flush();
    }
    if (ended) return kExitOk;
    Result<Wake> woken = watch->WaitUntil(MonotonicClock::time_point::max());
    if (!woken.ok()) {
      std::cerr << "herd: " << woken.status().message() << "\n";
      return kExitFailed;
    }
  }
}

int FollowRegistryOutput(const Orchestrator& orchestrator, const std::string& task_id,
                         const std::string& agent_id, size_t tail_lines) {
  Result<registry::SharedTask> snapshot = orchestrator.ReadTask(task_id);
  if (snapshot.ok() && (*snapshot)->task.FindAgent(agent_id) == nullptr) {
    snapshot = Status::NotFound("agent " + agent_id + " is not part of task " + task_id +
                                ": run `herd status " + task_id + "`");
  }
  if (!snapshot.ok()) {
    std::cerr << "herd: " << snapshot.status().message() << "\n";
    return kExitFailed;
  }
  const registry::PgRegistry& registry = *orchestrator.stores().postgres;
  // Watch first, then read: a chunk appended after the read wakes the wait.
  Result<std::unique_ptr<registry::CommitWatch>> watch =
      registry.WatchCommitsAndOutput(task_id, task_id, agent_id);
  if (!watch.ok()) {
    std::cerr << "herd: cannot follow the output: " << watch.status().message() << "\n";
    return kExitFailed;
  }
  int64_t last_chunk = 0;
  for (bool first = true;; first = false) {
    bool ended = AgentHasEnded(orchestrator, task_id, agent_id);
    Result<registry::PgRegistry::OutputAfter> read =
        registry.ReadOutputAfter(task_id, agent_id, last_chunk);
    if (!read.ok()) {
      std::cerr << "herd: cannot read the output: " << read.status().message() << "\n";
      return kExitFailed;
    }
    if (read->dropped) {
      std::cerr << "herd: some of " << agent_id
                << "'s output went by unread: the registry keeps only its newest "
                << registry::Registry::kOutputTailBytes / 1024 << " KiB and "
                << registry::Registry::kOutputTailLines << " lines\n";
    }
    std::cout << (first ? LastLines(read->bytes, tail_lines) : read->bytes);
    std::cout.flush();
    last_chunk = read->last_chunk;
    if (ended) return kExitOk;
    Result<Wake> woken = (*watch)->WaitUntil(MonotonicClock::time_point::max(), nullptr);
    if (!woken.ok()) {
      std::cerr << "herd: " << woken.status().message() << "\n";
      return kExitFailed;
    }
  }
}

}  // namespace herd::cli
