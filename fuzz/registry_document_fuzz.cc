// Fuzzes the loading of a task's registry (AGENT_REGISTRY.json) that a
// person, another tool or a damaged disk may have written: the input is the
// file's bytes. Reading it (store/json_store.h with the task validator),
// showing the task's status and timeline, and `herd doctor`'s checks must
// each give a result or an error, never a crash or a hang.
//
// Each input replaces the file of one task in the fuzzer's own workspace;
// its backup and moved-aside copies are removed first, so the input is
// what is read. Nothing writes except the transaction, which moves a
// corrupt file aside; no repair runs and no process is signalled.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_support.h"
#include "health/doctor.h"
#include "orchestrator/orchestrator.h"

namespace {

using nlohmann::json;

struct Fixture {
  Fixture()
      : workspace(herd::fuzz::FuzzHome() + "/workspace"),
        orchestrator(workspace, herd::registry::RegistryStores()) {
    herd::CreateTaskRequest request;
    request.description = "Fuzz the registry loader";
    herd::Result<json> task = orchestrator.CreateTask(request);
    if (!task.ok()) std::abort();
    task_id = task->value("task_id", "");
    task_directory = workspace.base() + "/" + task_id;
    registry_path = workspace.TaskRegistryPath(task_id);
  }

  // Removes AGENT_REGISTRY.json.bak and .corrupt.* copies.
  void RemoveCopies() const {
    DIR* directory = opendir(task_directory.c_str());
    if (directory == nullptr) std::abort();
    std::string prefix = registry_path.substr(registry_path.rfind('/') + 1) + ".";
    while (dirent* entry = readdir(directory)) {
      std::string name = entry->d_name;
      if (name.rfind(prefix, 0) == 0 && name != prefix + "lock") {
        unlink((task_directory + "/" + name).c_str());
      }
    }
    closedir(directory);
  }

  herd::registry::Workspace workspace;
  herd::Orchestrator orchestrator;
  std::string task_id;
  std::string task_directory;
  std::string registry_path;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();
  fixture->RemoveCopies();
  int fd = open(fixture->registry_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  if (size > 0 && write(fd, data, size) != static_cast<ssize_t>(size)) std::abort();
  close(fd);

  const herd::Orchestrator& orchestrator = fixture->orchestrator;
  herd::Result<json> status = orchestrator.TaskStatus(fixture->task_id);
  if (status.ok()) (void)status->dump(-1, ' ', false, json::error_handler_t::replace);
  (void)orchestrator.ProgressTimeline(fixture->task_id);
  herd::health::DoctorOptions options;
  options.task_id = fixture->task_id;
  herd::Result<json> report =
      herd::health::Diagnose(orchestrator.stores(), fixture->workspace, options);
  if (report.ok()) (void)herd::health::RenderReport(*report);
  (void)orchestrator.stores().tasks.Update(fixture->registry_path,
                                           [](json&) -> herd::Result<herd::store::Decision> {
                                             return herd::store::Decision::kNoChange;
                                           });
  return 0;
}
