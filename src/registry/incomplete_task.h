// Incomplete tasks: a task directory with neither a registry nor a backup.
//
// `herd task create` makes the task's directories before it commits the
// task's first registry version; when that commit fails (a full disk, an I/O
// error) what it made is left behind. Such a directory is herd's own
// scaffolding when it holds nothing but the empty subdirectories herd
// creates (kTaskSubdirectories, workspace.h) and the registry's lock file: removing it
// loses nothing. Anything else in it (a person's file, a log with content,
// a symlink) means it is not herd's to remove.
//
// RemoveTaskScaffolding holds the task registry's lock while it checks and
// removes, so no store transaction on that task can interleave. It removes
// no file but the lock file and no directory that is not empty (rmdir(2)
// itself refuses one). Safe to call from any thread or process.
#pragma once

#include <string>
#include <vector>

#include "registry/registry_stores.h"
#include "registry/workspace.h"
#include "util/status.h"

namespace herd::registry {

// What the task directory holds beyond herd's empty scaffolding, as paths
// relative to it ("logs/notes.txt", "draft/"), sorted; empty when it is
// nothing but scaffolding or does not exist.
std::vector<std::string> EntriesBeyondScaffolding(const Workspace& workspace,
                                                  const std::string& task_id);

// Removes the task directory if, under its registry's lock, it has no
// registry, no backup and nothing beyond scaffolding. Ok if it is gone
// afterwards (or was already); Status::Refused naming what is in the way
// otherwise; an I/O error if the file system refused.
Status RemoveTaskScaffolding(const RegistryStores& stores, const Workspace& workspace,
                             const std::string& task_id);

}  // namespace herd::registry
