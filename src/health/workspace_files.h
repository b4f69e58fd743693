// Doctor checks on the files of a workspace as files: links and modes.
//
// The walk starts at the base and goes through registry/, metrics/ and the
// task directories (only the diagnosed task's, when one is named), without
// ever following a symbolic link (nftw with FTW_PHYS):
// - workspace_link (error): a symbolic link anywhere in the walk. herd never
//   follows one (registry/workspace.h), so the operations that meet it
//   refuse; herd did not create it, so doctor does not remove it either: the
//   finding says where it points and how to remove it.
// - open_permissions (warning): files or directories that the group or
//   other users may read, write or enter (workspaces made before herd
//   created everything private, or files copied in). Prompts, registries and
//   logs carry secrets. The repair takes those bits away (files keep their
//   owner bits, directories become 0700), re-checking each path first.
#pragma once

#include <vector>

#include "health/check_context.h"
#include "health/findings.h"

namespace herd::health {

std::vector<Finding> CheckWorkspaceFiles(const CheckContext& context);

}  // namespace herd::health
