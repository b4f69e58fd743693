// For test binaries that deploy agents in-process, through the Orchestrator
// or the MCP tools rather than through the herd binary. Test code only.
//
// DeployAgent starts `herd supervise` from /proc/self/exe, which in such a
// binary is the test binary itself. TestMainOrSupervisor lets it play that
// part: started as `<binary> supervise --workspace W --task T --agent A`
// (the launcher's exact argv) it runs the real supervisor,
// agents::RunSupervisor, as `herd supervise` would, and no test; otherwise
// it runs the tests. The binary's one main() calls it:
//
//   int main(int argc, char** argv) {
//     return herd::test_util::TestMainOrSupervisor(argc, argv);
//   }
#pragma once

#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "agents/notify_hook.h"
#include "agents/supervisor.h"

namespace herd::test_util {

inline int TestMainOrSupervisor(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "supervise") {
    agents::SupervisorArgs args;
    for (int i = 2; i + 1 < argc; i += 2) {
      std::string_view option = argv[i];
      if (option == "--workspace") args.workspace_base = argv[i + 1];
      if (option == "--task") args.task_id = argv[i + 1];
      if (option == "--agent") args.agent_id = argv[i + 1];
      if (option == "--turn") args.turn = std::atoi(argv[i + 1]);
    }
    signal(SIGPIPE, SIG_IGN);  // as herd's main does
    return agents::RunSupervisor(args);
  }
  if (argc > 1 && std::string_view(argv[1]) == "notify-hook") {
    // `<binary> notify-hook --timeout S -- COMMAND`, as agents/notify_hook.cc starts it.
    return agents::RunNotifyHook(argc > 3 ? std::atoi(argv[3]) : 30, argc > 5 ? argv[5] : "");
  }
  agents::InstallNotifyHook();  // as herd's main does
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}

}  // namespace herd::test_util
