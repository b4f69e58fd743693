// Git: running the git command line, and nothing else.
//
// herd calls the `git` CLI (never libgit2: the CLI refuses to overwrite
// uncommitted or untracked files, honours hooks and sparse checkouts, and
// is what every person's repository is known to work with). Every call is
// an argv vector, never a shell string. The child gets LC_ALL=C (so output
// parses the same everywhere), GIT_TERMINAL_PROMPT=0 and GIT_OPTIONAL_LOCKS=0
// (a read never rewrites anyone's index), and none of the caller's GIT_*
// variables, so a herd started from a git hook cannot act on the wrong
// repository. Its stdin is /dev/null unless input is given; stdout and
// stderr are read through pipes; no other descriptor is inherited.
//
// RunGit blocks until git exits. It takes no lock: callers that must not
// run git while holding a registry lock simply do not call it there.
// Stateless: safe from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd::worktrees {

struct GitOptions {
  std::vector<std::string> environment;  // extra "KEY=value", e.g. GIT_INDEX_FILE
  std::string input;                     // written to git's stdin
  // Bytes of stdout kept; the rest is read and dropped (GitOutput::truncated).
  size_t max_output = 64 * 1024 * 1024;
};

struct GitOutput {
  int exit_code = -1;  // 128 + signal when a signal ended it
  std::string out;
  std::string err;
  bool truncated = false;  // stdout was longer than max_output
};

// Runs `git <args...>` in `directory`. An error only when git cannot be run
// at all; a non-zero exit is in exit_code.
Result<GitOutput> RunGit(const std::string& directory, const std::vector<std::string>& args,
                         const GitOptions& options = {});

// Runs git and returns its stdout, or an error quoting git's stderr and
// saying which command failed where, when it exits non-zero.
Result<std::string> Git(const std::string& directory, const std::vector<std::string>& args,
                        const GitOptions& options = {});

// stdout without its trailing newlines.
Result<std::string> GitLine(const std::string& directory, const std::vector<std::string>& args,
                            const GitOptions& options = {});

// The NUL-separated fields of `-z` output.
std::vector<std::string> SplitNul(const std::string& text);
// The lines of `text`, without empty ones.
std::vector<std::string> SplitLines(const std::string& text);

}  // namespace herd::worktrees
