#include "health/registry_files.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "registry/global_index.h"
#include "registry/incomplete_task.h"
#include "registry/registries.h"
#include "store/file_lock.h"
#include "store/file_names.h"
#include "store/file_system.h"
#include "util/clock.h"
#include "util/json_parse.h"

namespace herd::health {
namespace {

using nlohmann::json;

enum class FileState { kMissing, kValid, kInvalid, kUnreadable };

struct Inspection {
  FileState state = FileState::kMissing;
  std::string problem;  // for kInvalid and kUnreadable
};

// Reads and checks one file with `validator`, without locking or writing.
Inspection Inspect(const std::string& path, const store::Validator& validator) {
  Result<std::string> contents = store::FileSystem::Default()->ReadFile(path);
  if (!contents.ok()) {
    if (contents.status().Is(Status::Code::kNotFound)) return {FileState::kMissing, ""};
    return {FileState::kUnreadable, contents.status().message()};
  }
  Result<json> document = ParseJson(*contents, kMaxDocumentDepth);
  if (!document.ok()) {
    return {FileState::kInvalid,
            document.status().message() + " (" + std::to_string(contents->size()) + " bytes)"};
  }
  Status valid = validator(*document);
  if (!valid.ok()) return {FileState::kInvalid, valid.message()};
  return {FileState::kValid, ""};
}

// Whether some process with this pid exists in our pid namespace. A pid
// that exists may be the writer: its temp file is left alone.
bool PidExists(pid_t pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

// Modification time in Unix seconds, or nullopt if the file is gone.
std::optional<double> ModifiedAt(const std::string& path) {
  struct stat info {};
  if (lstat(path.c_str(), &info) != 0) return std::nullopt;
  return static_cast<double>(info.st_mtim.tv_sec) + info.st_mtim.tv_nsec / 1e9;
}

bool IsStaleTempFile(const CheckContext& context, const std::string& path, pid_t writer,
                     double now) {
  std::optional<double> modified = ModifiedAt(path);
  return modified && !PidExists(writer) &&
         now - *modified >= static_cast<double>(context.temp_file_min_age.count());
}

void CheckTempAndQuarantinedFiles(const CheckContext& context, const std::string& directory,
                                  const std::string& task_id, std::vector<Finding>* findings) {
  for (const std::string& name : registry::ListDirectory(directory)) {
    std::string path = directory + "/" + name;
    std::optional<store::SidecarName> sidecar = store::ParseSidecarName(name);
    if (!sidecar) continue;
    if (sidecar->type == store::SidecarType::kQuarantine) {
      const std::string& original = sidecar->document;
      const std::string& stamp = sidecar->detail;
      Finding finding;
      finding.kind = FindingKind::kQuarantined;
      finding.severity = Severity::kWarning;
      finding.task_id = task_id;
      finding.path = path;
      finding.detail = "a damaged version of " + original + " was moved aside (" + stamp +
                       ") when the store restored the file from its backup";
      finding.no_fix_reason =
          "kept for inspection at " + path + "; delete it once you no longer need it";
      findings->push_back(std::move(finding));
      continue;
    }
    if (sidecar->type != store::SidecarType::kTemp) continue;
    pid_t writer_pid = sidecar->writer;
    if (!IsStaleTempFile(context, path, writer_pid, context.now)) continue;
    Finding finding;
    finding.kind = FindingKind::kTempFile;
    finding.severity = Severity::kWarning;
    finding.task_id = task_id;
    finding.path = path;
    finding.detail = "temp file left by process " + std::to_string(writer_pid) +
                     ", which is no longer running (a write that never finished; the file it "
                     "was meant to replace is intact)";
    CheckContext captured = context;
    finding.fix = std::make_shared<Fix>(
        FindingKind::kTempFile, path, "remove " + path, [captured, path, writer_pid] {
          // Re-check: the name could have been reused by a live writer since.
          if (!ModifiedAt(path)) return RepairOutcome::Unchanged(path + " is already gone");
          if (!IsStaleTempFile(captured, path, writer_pid, NowUnixSeconds())) {
            return RepairOutcome::Unchanged(path + " is in use again; left alone");
          }
          Status removed = store::FileSystem::Default()->Remove(path);
          if (!removed.ok()) return RepairOutcome::Failed(removed);
          return RepairOutcome::Changed("removed " + path);
        });
    findings->push_back(std::move(finding));
  }
}

// A no-op transaction: the store restores a missing or damaged document from
// its backup under the lock (moving a damaged one aside) and commits it.
RepairOutcome RestoreFromBackup(const store::JsonStore& store, const std::string& path) {
  store::TransactionStats stats;
  Status status = store.Update(
      path, [](json&) -> Result<store::Decision> { return store::Decision::kNoChange; }, &stats);
  if (!status.ok()) return RepairOutcome::Failed(status);
  if (!stats.recovered) return RepairOutcome::Unchanged(path + " is intact again");
  return RepairOutcome::Changed(stats.recovery);
}

std::string MoveAside(const std::string& path, std::vector<std::string>* moved) {
  std::string target = store::QuarantineFileName(path, std::to_string(getpid()));
  Status renamed = store::FileSystem::Default()->Rename(path, target);
  if (!renamed.ok()) {
    return renamed.message() + ": move " + path + " aside by hand, then run `herd doctor " +
           "--repair` again";
  }
  moved->push_back(target);
  return "";
}

// The newest modification time of a task directory and its subdirectories.
std::optional<double> NewestChange(const std::string& directory) {
  std::optional<double> newest = ModifiedAt(directory);
  for (const char* sub : registry::kTaskSubdirectories) {
    std::optional<double> modified = ModifiedAt(directory + "/" + sub);
    if (modified && (!newest || *modified > *newest)) newest = modified;
  }
  return newest;
}

// A task directory with neither a registry nor a backup: a `herd task
// create` that failed half-way (a full disk), or a task whose registry was
// deleted. Removed when it holds only herd's empty scaffolding.
void CheckIncompleteTask(const CheckContext& context, const std::string& task_id,
                         std::vector<Finding>* findings) {
  std::string directory = context.workspace.TaskDirectory(task_id);
  // A creation may be between making the directories and its first commit.
  std::optional<double> changed = NewestChange(directory);
  if (!changed || context.now - *changed < static_cast<double>(context.temp_file_min_age.count())) {
    return;
  }
  Finding finding;
  finding.kind = FindingKind::kIncompleteTask;
  finding.severity = Severity::kError;
  finding.task_id = task_id;
  finding.path = directory;
  finding.detail =
      "task directory without a registry or backup (a task creation that failed "
      "half-way, e.g. on a full disk, or a registry deleted by hand)";
  std::vector<std::string> beyond = registry::EntriesBeyondScaffolding(context.workspace, task_id);
  if (!beyond.empty()) {
    constexpr size_t kListed = 10;
    std::string listed;
    for (size_t i = 0; i < beyond.size() && i < kListed; ++i) {
      listed += (i == 0 ? "" : ", ") + beyond[i];
    }
    if (beyond.size() > kListed) {
      listed += " and " + std::to_string(beyond.size() - kListed) + " more";
    }
    finding.detail += "; it holds what herd did not create: " + listed;
    finding.no_fix_reason =
        "herd removes only its own empty directories: move what you need out "
        "of " +
        directory +
        " and remove it, or run `herd doctor --repair` "
        "again once it holds nothing else";
    findings->push_back(std::move(finding));
    return;
  }
  finding.detail += "; it holds only the empty directories herd creates";
  const registry::RegistryStores* stores = context.stores;
  registry::Workspace workspace = context.workspace;
  finding.fix = std::make_shared<Fix>(
      FindingKind::kIncompleteTask, directory,
      "remove " + directory +
          " (re-checked under the registry's lock: only empty directories and "
          "the lock file are removed)",
      [stores, workspace, task_id, directory] {
        if (!ModifiedAt(directory)) return RepairOutcome::Unchanged(directory + " is already gone");
        Status removed = registry::RemoveTaskScaffolding(*stores, workspace, task_id);
        if (!removed.ok()) return RepairOutcome::Failed(removed);
        return RepairOutcome::Changed("removed " + directory);
      });
  findings->push_back(std::move(finding));
}

// A task registry that parses and validates, but whose fields do not all
// decode (a hand edit: "max_agents": "45"). Every operation on the task
// refuses it with the same message; herd never overwrites what a person
// may have meant, so the repair is theirs.
void CheckFields(const CheckContext& context, const std::string& task_id, const std::string& path,
                 std::vector<Finding>* findings) {
  Result<registry::SharedTask> task =
      registry::RegistryFor(*context.stores, context.workspace)->ReadTask(task_id);
  if (task.ok() || !task.status().Is(Status::Code::kCorruption)) return;
  Finding finding;
  finding.kind = FindingKind::kDamagedField;
  finding.severity = Severity::kError;
  finding.task_id = task_id;
  finding.path = path;
  finding.detail = task.status().message();
  finding.no_fix_reason = "every operation on task " + task_id +
                          " refuses the registry until the field is correct: edit " + path +
                          " by hand (or copy " + store::BackupFileName(path) +
                          " over it if that version is right)";
  findings->push_back(std::move(finding));
}

void CheckRegistry(const CheckContext& context, const std::string& path, bool is_global,
                   const std::string& task_id, std::vector<Finding>* findings) {
  const store::JsonStore& store = is_global ? context.stores->global : context.stores->tasks;
  const store::Validator& validator = store.options().validator;
  Inspection main = Inspect(path, validator);
  if (main.state == FileState::kValid) {
    if (!is_global) CheckFields(context, task_id, path, findings);
    return;
  }
  std::string backup_path = store::BackupFileName(path);
  Inspection backup = Inspect(backup_path, validator);
  if (main.state == FileState::kMissing && backup.state == FileState::kMissing) {
    // The global index may simply not exist yet; the index check covers it.
    if (!is_global) CheckIncompleteTask(context, task_id, findings);
    return;
  }

  Finding finding;
  finding.severity = Severity::kError;
  finding.task_id = task_id;
  finding.path = path;
  if (main.state == FileState::kMissing) {
    finding.kind = backup.state == FileState::kValid ? FindingKind::kMissingRegistry
                                                     : FindingKind::kStaleBackup;
    finding.detail = path + " is missing";
    if (backup.state == FileState::kValid) {
      finding.detail += "; its backup " + backup_path + " is intact (one version older)";
    } else {
      finding.path = backup_path;
      finding.detail += " and its backup " + backup_path + " cannot restore it: " + backup.problem;
    }
  } else {
    finding.kind = FindingKind::kCorrupt;
    finding.detail = main.state == FileState::kUnreadable
                         ? path + " cannot be read: " + main.problem
                         : path + ": " + main.problem;
    if (backup.state == FileState::kValid) {
      finding.detail += "; its backup " + backup_path + " is intact (one version older)";
    } else if (backup.state == FileState::kMissing) {
      finding.detail += "; there is no backup";
    } else {
      finding.detail += "; its backup is damaged too: " + backup.problem;
    }
  }

  if (main.state == FileState::kUnreadable) {
    finding.no_fix_reason =
        "check the file's permissions and the disk; herd will not replace a "
        "file it cannot read";
  } else if (is_global) {
    CheckContext captured = context;
    finding.fix = std::make_shared<Fix>(
        finding.kind, path,
        "rebuild the global index from the task registries (a damaged file is moved aside, not "
        "deleted)",
        [captured, kind = finding.kind] {
          return RebuildIndex(captured, std::string(KindName(kind)) + " global index");
        });
  } else if (backup.state == FileState::kValid) {
    const store::JsonStore* task_store = &context.stores->tasks;
    finding.fix =
        std::make_shared<Fix>(finding.kind, path,
                              "restore " + path + " from " + backup_path +
                                  " in a store transaction (a damaged file is moved aside as " +
                                  path + store::kQuarantineMarker + "<time>.<pid>)",
                              [task_store, path] { return RestoreFromBackup(*task_store, path); });
  } else {
    finding.no_fix_reason =
        "no intact copy exists and herd never starts an empty registry over "
        "data that existed: inspect " +
        path + " and " + backup_path + ", repair one by hand, or move both away to drop the task";
  }
  findings->push_back(std::move(finding));
}

}  // namespace

std::vector<Finding> CheckRegistryFiles(const CheckContext& context) {
  std::vector<Finding> findings;
  std::string index_directory = context.workspace.IndexDirectory();
  CheckTempAndQuarantinedFiles(context, index_directory, "", &findings);
  CheckRegistry(context, context.workspace.GlobalRegistryPath(), /*is_global=*/true, "", &findings);
  for (const std::string& task_id : TaskIdsOf(context)) {
    std::string directory = context.workspace.TaskDirectory(task_id);
    CheckTempAndQuarantinedFiles(context, directory, task_id, &findings);
    CheckTempAndQuarantinedFiles(context, directory + "/prompts", task_id, &findings);
    CheckRegistry(context, context.workspace.TaskRegistryPath(task_id), /*is_global=*/false,
                  task_id, &findings);
  }
  return findings;
}

RepairOutcome RebuildIndex(const CheckContext& context, const std::string& why) {
  const store::JsonStore& store = context.stores->global;
  std::string path = context.workspace.GlobalRegistryPath();
  std::vector<std::string> moved;
  {
    // Under the index's own lock (and no other): a damaged file the store
    // cannot recover from by itself is moved aside, never deleted.
    Result<store::FileLock> lock =
        store::FileLock::Acquire(store::LockFileName(path), store.options().lock_timeout);
    if (!lock.ok()) return RepairOutcome::Failed(lock.status());
    Inspection main = Inspect(path, store.options().validator);
    std::string backup_path = store::BackupFileName(path);
    Inspection backup = Inspect(backup_path, store.options().validator);
    if (main.state != FileState::kValid && backup.state != FileState::kValid) {
      for (const auto& [file, state] :
           {std::pair{path, main.state}, std::pair{backup_path, backup.state}}) {
        if (state != FileState::kInvalid) continue;
        std::string error = MoveAside(file, &moved);
        if (!error.empty()) return RepairOutcome::Failed(Status::IOError(error));
      }
    }
  }
  Status rebuilt = registry::RebuildGlobalIndex(*context.stores, context.workspace);
  if (!rebuilt.ok()) return RepairOutcome::Failed(rebuilt.WithContext("rebuilding " + path));
  std::string action = "rebuilt " + path + " from the task registries (" + why + ")";
  for (const std::string& file : moved) action += "; moved the damaged copy to " + file;
  return RepairOutcome::Changed(action);
}

}  // namespace herd::health
