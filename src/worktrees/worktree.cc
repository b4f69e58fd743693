#include "worktrees/worktree.h"

#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "store/file_lock.h"
#include "worktrees/git.h"

namespace herd::worktrees {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kRepositoryLockTimeout{120000};
constexpr const char kRepositoryFile[] = "repository";
constexpr const char kLockFile[] = ".herd-worktrees";
constexpr const char kReasonPrefix[] = "herd ";

bool Exists(const std::string& path) {
  std::error_code error;
  return fs::exists(fs::symlink_status(path, error));
}

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// FNV-1a, as 8 hex digits: a stable short name for a repository's path.
std::string ShortHash(const std::string& text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", hash);
  return hex;
}

std::string Joined(const std::vector<std::string>& items, size_t shown = 10) {
  std::string text;
  for (size_t i = 0; i < items.size() && i < shown; ++i) text += (i ? ", " : "") + items[i];
  if (items.size() > shown) text += " and " + std::to_string(items.size() - shown) + " more";
  return text;
}

// The repository's main checkout (the directory holding its .git) and its
// common git directory.
struct Repository {
  std::string top;
  std::string common_dir;
};

Result<Repository> FindRepository(const std::string& directory) {
  if (!fs::is_directory(directory)) {
    return Status::InvalidArgument(directory + " is not a directory");
  }
  Result<std::string> common =
      GitLine(directory, {"rev-parse", "--path-format=absolute", "--git-common-dir"});
  if (!common.ok()) {
    return Status::InvalidArgument(
        directory +
        " is not inside a git repository, so agents cannot get worktrees there: run `git init` "
        "and commit once, or deploy without --worktree");
  }
  Repository repository;
  repository.common_dir = fs::weakly_canonical(*common).string();
  repository.top = Basename(repository.common_dir) == ".git" ? Dirname(repository.common_dir)
                                                             : repository.common_dir;
  return repository;
}

std::string RepositoryKey(const Repository& repository) {
  std::string name;
  for (char c : Basename(repository.top)) {
    name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '-';
  }
  if (name.empty()) name = "repository";
  return name + "-" + ShortHash(repository.common_dir);
}

Result<store::FileLock> LockRepository(const std::string& key_directory) {
  std::error_code error;
  fs::create_directories(key_directory, error);
  if (error) return Status::IOError("cannot create " + key_directory + ": " + error.message());
  return store::FileLock::Acquire(key_directory + "/" + kLockFile, kRepositoryLockTimeout);
}

// Git identity for commits herd makes when the repository has none.
std::vector<std::string> IdentityEnvironment(const std::string& directory) {
  Result<GitOutput> email = RunGit(directory, {"config", "user.email"});
  if (email.ok() && email->exit_code == 0 && !email->out.empty()) return {};
  return {"GIT_AUTHOR_NAME=herd", "GIT_AUTHOR_EMAIL=herd@localhost", "GIT_COMMITTER_NAME=herd",
          "GIT_COMMITTER_EMAIL=herd@localhost"};
}

// Runs `use` with GIT_INDEX_FILE set to a copy of the worktree's index in
// which every change of the working tree (untracked files included) is
// staged: the agent's own index is never written.
template <typename Use>
auto WithStagedCopy(const std::string& worktree, Use use) -> decltype(use(GitOptions{})) {
  HERD_ASSIGN_OR_RETURN(std::string index, GitLine(worktree, {"rev-parse", "--path-format=absolute",
                                                              "--git-path", "index"}));
  char temporary[] = "/tmp/herd-index-XXXXXX";
  int fd = mkstemp(temporary);
  if (fd < 0) return Status::FromErrno("cannot create a temporary index", errno);
  close(fd);
  std::string copy = temporary;
  std::error_code error;
  if (Exists(index)) {
    fs::copy_file(index, copy, fs::copy_options::overwrite_existing, error);
  } else {
    fs::remove(copy, error);  // git makes a fresh one
  }
  GitOptions options;
  options.environment = {"GIT_INDEX_FILE=" + copy};
  auto result = [&]() -> decltype(use(GitOptions{})) {
    if (error) return Status::IOError("cannot copy " + index + ": " + error.message());
    HERD_RETURN_IF_ERROR(Git(worktree, {"add", "-A"}, options).status());
    return use(options);
  }();
  fs::remove(copy, error);
  fs::remove(copy + ".lock", error);
  return result;
}

std::vector<std::string> UncommittedFiles(const std::string& worktree, const GitOptions& staged) {
  Result<std::string> names =
      Git(worktree, {"diff", "--cached", "--name-only", "-z", "--no-renames", "HEAD"}, staged);
  return names.ok() ? SplitNul(*names) : std::vector<std::string>{};
}

bool BranchExists(const std::string& directory, const std::string& branch) {
  Result<GitOutput> shown =
      RunGit(directory, {"show-ref", "--verify", "--quiet", "refs/heads/" + branch});
  return shown.ok() && shown->exit_code == 0;
}

Result<std::string> ResolveCommit(const std::string& directory, const std::string& ref) {
  Result<std::string> sha = GitLine(
      directory, {"rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}"});
  if (!sha.ok() || sha->empty()) {
    return Status::InvalidArgument("\"" + ref + "\" is not a branch, tag or commit of " +
                                   directory + ": give one that `git rev-parse` knows");
  }
  return sha;
}

Status CheckBranchName(const std::string& directory, const std::string& branch) {
  Result<GitOutput> checked = RunGit(directory, {"check-ref-format", "--branch", branch});
  if (!checked.ok()) return checked.status();
  if (checked->exit_code != 0 || branch.empty() || branch[0] == '-') {
    return Status::InvalidArgument("\"" + branch +
                                   "\" is not a valid branch name (see `git check-ref-format`)");
  }
  return Status::Ok();
}

// A relative path that stays inside the repository.
Status CheckRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/') {
    return Status::InvalidArgument("--copy " + path +
                                   ": give a path relative to the repository's top directory");
  }
  for (const auto& part : fs::path(path)) {
    if (part == "..") {
      return Status::InvalidArgument("--copy " + path + ": a path may not leave the repository");
    }
  }
  return Status::Ok();
}

Status CopyInto(const std::string& from_top, const std::string& to_top,
                const std::string& relative) {
  std::error_code error;
  fs::path source = fs::path(from_top) / relative;
  fs::path target = fs::path(to_top) / relative;
  fs::create_directories(target.parent_path(), error);
  if (!error) {
    fs::copy(source, target,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks |
                 fs::copy_options::overwrite_existing,
             error);
  }
  if (error) {
    return Status::IOError("cannot copy " + source.string() +
                           " into the worktree: " + error.message());
  }
  return Status::Ok();
}

// The gitignored files of `top` that its .worktreeinclude lists.
Result<std::vector<std::string>> IncludedFiles(const std::string& top) {
  std::string include = top + "/.worktreeinclude";
  if (!fs::is_regular_file(include)) return std::vector<std::string>{};
  HERD_ASSIGN_OR_RETURN(std::string listed, Git(top, {"ls-files", "-z", "--others", "--ignored",
                                                      "--exclude-from=" + include}));
  std::vector<std::string> candidates = SplitNul(listed);
  if (candidates.empty()) return candidates;
  GitOptions input;
  for (const std::string& candidate : candidates) input.input += candidate + '\0';
  HERD_ASSIGN_OR_RETURN(GitOutput ignored, RunGit(top, {"check-ignore", "-z", "--stdin"}, input));
  if (ignored.exit_code > 1) {
    return Status::IOError("git check-ignore failed in " + top + ": " + ignored.err);
  }
  return SplitNul(ignored.out);
}

// One `git worktree list --porcelain` entry.
struct ListedWorktree {
  std::string path;
  std::string head;
  std::string branch;  // without refs/heads/
  bool locked = false;
  std::string lock_reason;
  bool prunable = false;
};

std::vector<ListedWorktree> ListWorktrees(const std::string& directory) {
  std::vector<ListedWorktree> listed;
  Result<std::string> text = Git(directory, {"worktree", "list", "--porcelain", "-z"});
  if (!text.ok()) return listed;
  for (const std::string& field : SplitNul(*text + std::string(1, '\0'))) {
    auto value = [&](const char* key) -> std::optional<std::string> {
      size_t length = std::strlen(key);
      if (field.compare(0, length, key) != 0) return std::nullopt;
      if (field.size() == length) return std::string();
      if (field[length] != ' ') return std::nullopt;
      return field.substr(length + 1);
    };
    if (auto path = value("worktree")) {
      listed.push_back({});
      listed.back().path = *path;
      continue;
    }
    if (listed.empty()) continue;
    ListedWorktree& entry = listed.back();
    if (auto head = value("HEAD")) entry.head = *head;
    if (auto branch = value("branch")) {
      entry.branch = branch->rfind("refs/heads/", 0) == 0 ? branch->substr(11) : *branch;
    }
    if (auto reason = value("locked")) {
      entry.locked = true;
      entry.lock_reason = *reason;
    }
    if (value("prunable")) entry.prunable = true;
  }
  return listed;
}

std::optional<ListedWorktree> FindListed(const std::string& repository, const std::string& path) {
  for (ListedWorktree& entry : ListWorktrees(repository)) {
    if (entry.path == path) return entry;
  }
  return std::nullopt;
}

bool IsUnder(const std::string& path, const std::string& root) {
  std::string canonical_root = fs::weakly_canonical(root).string();
  std::string canonical = fs::weakly_canonical(path).string();
  return canonical.size() > canonical_root.size() + 1 &&
         canonical.compare(0, canonical_root.size(), canonical_root) == 0 &&
         canonical[canonical_root.size()] == '/';
}

// Takes back a half-made worktree: its git entry, its folder, its branch.
void Discard(const Repository& repository, const std::string& path, const std::string& branch,
             bool created_branch) {
  (void)RunGit(repository.top, {"worktree", "unlock", path});
  (void)RunGit(repository.top, {"worktree", "remove", "--force", "--force", path});
  std::error_code error;
  if (Exists(path) && fs::is_empty(path, error)) fs::remove(path, error);
  (void)RunGit(repository.top, {"worktree", "prune"});
  if (created_branch) (void)RunGit(repository.top, {"branch", "-D", branch});
}

}  // namespace

std::string LockReason(const std::string& task_id, const std::string& agent_id) {
  return std::string(kReasonPrefix) + task_id + "/" + agent_id;
}

Result<std::string> RepositoryTopLevel(const std::string& directory) {
  HERD_ASSIGN_OR_RETURN(Repository repository, FindRepository(directory));
  return repository.top;
}

Result<std::string> PlannedPath(const std::string& directory, const std::string& root,
                                const std::string& task_id, const std::string& agent_id) {
  HERD_ASSIGN_OR_RETURN(Repository repository, FindRepository(directory));
  return root + "/" + RepositoryKey(repository) + "/" + task_id + "/" + agent_id;
}

Result<Created> CreateWorktree(const CreateSpec& spec) {
  HERD_ASSIGN_OR_RETURN(Repository repository, FindRepository(spec.directory));
  for (const std::string& path : spec.copy_paths) HERD_RETURN_IF_ERROR(CheckRelativePath(path));
  Created created;
  WorktreeInfo& info = created.info;
  info.repository = repository.top;
  info.base_ref = spec.base_ref;
  if (info.base_ref.empty()) {
    Result<GitOutput> head = RunGit(spec.directory, {"symbolic-ref", "--quiet", "--short", "HEAD"});
    info.base_ref = head.ok() && head->exit_code == 0 ? SplitLines(head->out).at(0) : "HEAD";
  }
  HERD_ASSIGN_OR_RETURN(info.base_sha, ResolveCommit(spec.directory, info.base_ref));
  info.branch = spec.branch.empty() ? "herd/" + spec.task_id + "/" + spec.agent_id : spec.branch;
  HERD_RETURN_IF_ERROR(CheckBranchName(repository.top, info.branch));
  std::string key_directory = spec.root + "/" + RepositoryKey(repository);
  info.path = key_directory + "/" + spec.task_id + "/" + spec.agent_id;
  if (Exists(info.path)) {
    return Status::Refused("worktree folder " + info.path +
                           " already exists: `herd doctor` reports leftovers");
  }

  {
    // Serialised with every other herd change to this repository's
    // worktrees: git's own lock files fail, not wait, under parallel use.
    HERD_ASSIGN_OR_RETURN(store::FileLock lock, LockRepository(key_directory));
    std::string named = key_directory + "/" + kRepositoryFile;
    if (!Exists(named)) {
      std::ofstream(named) << repository.top << "\n";
    }
    std::error_code error;
    fs::create_directories(Dirname(info.path), error);
    if (error)
      return Status::IOError("cannot create " + Dirname(info.path) + ": " + error.message());
    std::vector<std::string> add = {"worktree", "add", "--lock", "--reason",
                                    LockReason(spec.task_id, spec.agent_id)};
    info.created_branch = !BranchExists(repository.top, info.branch);
    if (info.created_branch) {
      add.insert(add.end(), {"-b", info.branch, info.path, info.base_sha});
    } else {
      add.insert(add.end(), {info.path, info.branch});
    }
    Result<std::string> added = Git(repository.top, add);
    if (!added.ok()) {
      Discard(repository, info.path, info.branch, false);
      return added.status().WithContext("cannot create the agent's worktree");
    }
  }

  Status ready = [&]() -> Status {
    HERD_ASSIGN_OR_RETURN(std::vector<std::string> included, IncludedFiles(repository.top));
    for (const std::string& path : included) {
      HERD_RETURN_IF_ERROR(CopyInto(repository.top, info.path, path));
      created.copied.push_back(path);
    }
    for (const std::string& path : spec.copy_paths) {
      if (!Exists(repository.top + "/" + path)) {
        return Status::InvalidArgument("--copy " + path + ": there is no such file in " +
                                       repository.top);
      }
      HERD_RETURN_IF_ERROR(CopyInto(repository.top, info.path, path));
      created.copied.push_back(path);
    }
    return Status::Ok();
  }();
  if (!ready.ok()) {
    HERD_ASSIGN_OR_RETURN(store::FileLock lock, LockRepository(key_directory));
    Discard(repository, info.path, info.branch, info.created_branch);
    return ready.WithContext("the agent's worktree was not created (nothing was left behind)");
  }
  if (Exists(info.path + "/.gitmodules")) {
    Result<std::string> submodules =
        Git(info.path, {"submodule", "update", "--init", "--recursive"});
    if (!submodules.ok()) {
      created.warnings.push_back("submodules not initialised: " + submodules.status().message());
    }
  }
  return created;
}

Result<Diff> DiffAgainstBase(const WorktreeInfo& worktree, DiffFormat format, size_t max_bytes) {
  if (!fs::is_directory(worktree.path)) {
    return Status::NotFound("the worktree " + worktree.path + " no longer exists: its branch " +
                            worktree.branch + " may still hold its commits");
  }
  return WithStagedCopy(worktree.path, [&](GitOptions staged) -> Result<Diff> {
    std::vector<std::string> args = {"diff", "--cached", "--no-color", "--no-ext-diff"};
    if (format == DiffFormat::kStat) args.push_back("--stat");
    if (format == DiffFormat::kNameOnly) args.push_back("--name-only");
    args.push_back(worktree.base_sha);
    staged.max_output = max_bytes;
    HERD_ASSIGN_OR_RETURN(GitOutput output, RunGit(worktree.path, args, staged));
    if (output.exit_code != 0) {
      return Status::IOError("git diff failed in " + worktree.path + ": " + output.err);
    }
    return Diff{std::move(output.out), output.truncated};
  });
}

Result<Summary> Summarize(const WorktreeInfo& worktree) {
  Summary summary;
  if (!fs::is_directory(worktree.path)) return summary;
  summary.present = true;
  return WithStagedCopy(worktree.path, [&](const GitOptions& staged) -> Result<Summary> {
    HERD_ASSIGN_OR_RETURN(
        std::string numstat,
        Git(worktree.path,
            {"diff", "--cached", "--numstat", "-z", "--no-renames", worktree.base_sha}, staged));
    for (const std::string& record : SplitNul(numstat)) {
      // "<added>\t<removed>\t<path>" ("-" for binary files).
      size_t tab = record.find('\t');
      size_t second = tab == std::string::npos ? tab : record.find('\t', tab + 1);
      if (second == std::string::npos) continue;
      ++summary.files_changed;
      summary.lines_added += std::atoll(record.substr(0, tab).c_str());
      summary.lines_removed += std::atoll(record.substr(tab + 1, second - tab - 1).c_str());
    }
    HERD_ASSIGN_OR_RETURN(
        std::string ahead,
        GitLine(worktree.path, {"rev-list", "--count", worktree.base_sha + "..HEAD"}));
    summary.commits_ahead = std::atoi(ahead.c_str());
    summary.uncommitted_files = UncommittedFiles(worktree.path, staged);
    summary.dirty = !summary.uncommitted_files.empty();
    return summary;
  });
}

const char* MergeStrategyName(MergeStrategy strategy) {
  switch (strategy) {
    case MergeStrategy::kSquash: return "squash";
    case MergeStrategy::kRebase: return "rebase";
    case MergeStrategy::kFfOnly: return "ff-only";
  }
  return "squash";
}

Result<MergeStrategy> ParseMergeStrategy(const std::string& name) {
  for (MergeStrategy strategy :
       {MergeStrategy::kSquash, MergeStrategy::kRebase, MergeStrategy::kFfOnly}) {
    if (name == MergeStrategyName(strategy)) return strategy;
  }
  return Status::InvalidArgument("merge strategy \"" + name +
                                 "\" is not one of squash, rebase, ff-only");
}

namespace {

// Where `branch` is checked out, if anywhere.
std::optional<std::string> CheckoutOf(const std::string& repository, const std::string& branch) {
  for (const ListedWorktree& entry : ListWorktrees(repository)) {
    if (entry.branch == branch && !entry.prunable) return entry.path;
  }
  return std::nullopt;
}

// The merge of `ours` and `theirs` as git would make it, without touching
// any checkout: the tree, or the conflicting files.
struct TrialMerge {
  std::string tree;
  std::vector<std::string> conflicts;
};

Result<TrialMerge> MergeTree(const std::string& repository, const std::string& ours,
                             const std::string& theirs) {
  HERD_ASSIGN_OR_RETURN(GitOutput output,
                        RunGit(repository, {"merge-tree", "--write-tree", "--name-only",
                                            "--no-messages", "-z", ours, theirs}));
  if (output.exit_code > 1) {
    return Status::IOError("git merge-tree failed in " + repository + ": " + output.err);
  }
  std::vector<std::string> fields = SplitNul(output.out);
  TrialMerge trial;
  if (!fields.empty()) trial.tree = fields[0];
  if (output.exit_code == 1) {
    for (size_t i = 1; i < fields.size(); ++i) {
      if (trial.conflicts.empty() || trial.conflicts.back() != fields[i]) {
        trial.conflicts.push_back(fields[i]);
      }
    }
    if (trial.conflicts.empty()) trial.conflicts.push_back("(unknown)");
  }
  return trial;
}

}  // namespace

Result<MergeResult> Merge(const WorktreeInfo& worktree, const MergeOptions& options) {
  MergeResult result;
  result.strategy = MergeStrategyName(options.strategy);
  result.into = options.into.empty() ? worktree.base_ref : options.into;
  const std::string& repository = worktree.repository;
  if (!BranchExists(repository, result.into)) {
    return Status::InvalidArgument("cannot merge into \"" + result.into +
                                   "\": it is not a branch of " + repository +
                                   "; name one with --into BRANCH (into)");
  }
  if (result.into == worktree.branch) {
    return Status::InvalidArgument("cannot merge " + worktree.branch + " into itself");
  }
  if (!fs::is_directory(worktree.path)) {
    return Status::NotFound("the worktree " + worktree.path + " no longer exists");
  }
  HERD_ASSIGN_OR_RETURN(Summary summary, Summarize(worktree));
  if (summary.dirty && !options.commit_pending) {
    return Status::Refused("the agent's worktree " + worktree.path + " has uncommitted files (" +
                           Joined(summary.uncommitted_files) +
                           "): pass --commit-pending (commit_pending) to commit them as the "
                           "agent's own commit first, or commit them yourself");
  }
  std::optional<std::string> checkout = CheckoutOf(repository, result.into);
  if (checkout) {
    HERD_ASSIGN_OR_RETURN(std::string dirty,
                          Git(*checkout, {"status", "--porcelain", "--untracked-files=no"}));
    if (!dirty.empty()) {
      return Status::Refused("the target checkout " + *checkout + " (" + result.into +
                             ") has uncommitted changes: commit or stash them, then merge "
                             "again; nothing was changed");
    }
  }
  HERD_ASSIGN_OR_RETURN(std::string target_sha, ResolveCommit(repository, result.into));
  HERD_ASSIGN_OR_RETURN(std::string source, ResolveCommit(worktree.path, "HEAD"));
  std::vector<std::string> identity = IdentityEnvironment(repository);
  std::string pending_message = options.pending_message.empty()
                                    ? "Uncommitted work of " + Basename(worktree.path)
                                    : options.pending_message;
  if (summary.dirty) {
    // Try the merge with the pending work as a commit object first; the
    // agent's branch moves only once the merge is known to succeed.
    HERD_ASSIGN_OR_RETURN(
        source, WithStagedCopy(worktree.path, [&](GitOptions staged) -> Result<std::string> {
          HERD_ASSIGN_OR_RETURN(std::string tree, GitLine(worktree.path, {"write-tree"}, staged));
          GitOptions with_identity;
          with_identity.environment = identity;
          return GitLine(worktree.path, {"commit-tree", tree, "-p", source, "-m", pending_message},
                         with_identity);
        }));
  }
  HERD_ASSIGN_OR_RETURN(TrialMerge trial, MergeTree(repository, target_sha, source));
  if (!trial.conflicts.empty()) {
    result.conflicts = trial.conflicts;
    return result;
  }
  Result<GitOutput> ancestor =
      RunGit(repository, {"merge-base", "--is-ancestor", target_sha, source});
  bool fast_forward = ancestor.ok() && ancestor->exit_code == 0;
  if (options.strategy == MergeStrategy::kFfOnly && !fast_forward) {
    return Status::Refused(result.into + " has commits the agent's branch " + worktree.branch +
                           " does not: not a fast-forward; use squash or rebase; nothing was "
                           "changed");
  }
  if (summary.dirty) {
    GitOptions with_identity;
    with_identity.environment = identity;
    HERD_RETURN_IF_ERROR(Git(worktree.path, {"add", "-A"}).status());
    HERD_RETURN_IF_ERROR(
        Git(worktree.path, {"commit", "--no-verify", "-q", "-m", pending_message}, with_identity)
            .status());
    HERD_ASSIGN_OR_RETURN(result.pending_commit, ResolveCommit(worktree.path, "HEAD"));
    source = result.pending_commit;
  }
  std::string new_head;
  GitOptions with_identity;
  with_identity.environment = identity;
  switch (options.strategy) {
    case MergeStrategy::kFfOnly: new_head = source; break;
    case MergeStrategy::kSquash: {
      std::string message = options.message.empty()
                                ? "Squashed work of agent " + Basename(worktree.path) +
                                      " (branch " + worktree.branch + ")"
                                : options.message;
      HERD_ASSIGN_OR_RETURN(
          new_head,
          GitLine(repository, {"commit-tree", trial.tree, "-p", target_sha, "-m", message},
                  with_identity));
      break;
    }
    case MergeStrategy::kRebase: {
      if (fast_forward) {
        new_head = source;
        break;
      }
      Result<GitOutput> rebased =
          RunGit(worktree.path, {"rebase", "--no-autostash", target_sha}, with_identity);
      if (!rebased.ok() || rebased->exit_code != 0) {
        Result<std::string> unmerged =
            Git(worktree.path, {"diff", "--name-only", "-z", "--diff-filter=U"});
        (void)RunGit(worktree.path, {"rebase", "--abort"});
        result.conflicts = unmerged.ok() ? SplitNul(*unmerged) : std::vector<std::string>{};
        if (result.conflicts.empty()) result.conflicts.push_back("(a commit of the branch)");
        return result;
      }
      HERD_ASSIGN_OR_RETURN(new_head, ResolveCommit(worktree.path, "HEAD"));
      break;
    }
  }
  HERD_ASSIGN_OR_RETURN(std::string files,
                        Git(repository, {"diff", "--name-only", "-z", target_sha, new_head}));
  result.files = SplitNul(files);
  if (checkout) {
    // The checkout is clean: a fast-forward that git refuses if it would
    // overwrite an untracked file.
    HERD_RETURN_IF_ERROR(Git(*checkout, {"merge", "--ff-only", "-q", new_head})
                             .status()
                             .WithContext("the target checkout " + *checkout + " was not updated"));
  } else {
    HERD_RETURN_IF_ERROR(
        Git(repository, {"update-ref", "refs/heads/" + result.into, new_head, target_sha})
            .status());
  }
  result.commit = new_head;
  result.merged = true;
  return result;
}

std::string LossReport::Describe() const {
  std::vector<std::string> parts;
  if (!present) parts.push_back("the worktree is already gone from disk");
  if (!uncommitted_files.empty()) {
    parts.push_back(std::to_string(uncommitted_files.size()) + " uncommitted file(s) (" +
                    Joined(uncommitted_files) + ")");
  }
  if (!unmerged_commits.empty()) {
    parts.push_back(std::to_string(unmerged_commits.size()) + " commit(s) not in " + target + " (" +
                    Joined(unmerged_commits, 5) + ")");
  }
  if (parts.size() == 1 && !present) return parts[0];
  std::string text;
  for (const std::string& part : parts) {
    if (part.rfind("the worktree", 0) == 0) continue;
    text += (text.empty() ? "" : "; ") + part;
  }
  return text.empty() ? "nothing" : text;
}

Result<LossReport> WhatWouldBeLost(const WorktreeInfo& worktree, const std::string& target) {
  LossReport loss;
  loss.present = fs::is_directory(worktree.path);
  loss.target = target.empty() ? worktree.base_ref : target;
  const std::string& repository = worktree.repository;
  std::string source;
  if (loss.present) {
    HERD_ASSIGN_OR_RETURN(
        loss.uncommitted_files,
        WithStagedCopy(worktree.path,
                       [&](const GitOptions& staged) -> Result<std::vector<std::string>> {
                         return UncommittedFiles(worktree.path, staged);
                       }));
    Result<std::string> head = ResolveCommit(worktree.path, "HEAD");
    if (head.ok()) source = *head;
  }
  // Commits are lost only with a branch herd deletes.
  if (!worktree.created_branch) return loss;
  if (BranchExists(repository, worktree.branch)) {
    HERD_ASSIGN_OR_RETURN(source, ResolveCommit(repository, "refs/heads/" + worktree.branch));
  }
  if (source.empty()) return loss;
  if (loss.target.empty()) {
    // No base known (a creation that never finished): the commits only
    // this branch has.
    loss.target = "any other branch";
    HERD_ASSIGN_OR_RETURN(
        std::string only_here,
        Git(repository, {"log", "--format=%h %s", source, "--not",
                         "--exclude=refs/heads/" + worktree.branch, "--branches"}));
    loss.unmerged_commits = SplitLines(only_here);
    return loss;
  }
  Result<std::string> target_sha = ResolveCommit(repository, loss.target);
  if (!target_sha.ok()) {
    loss.target = worktree.base_sha;
    target_sha = worktree.base_sha;
  }
  HERD_ASSIGN_OR_RETURN(std::string commits,
                        Git(repository, {"log", "--format=%h %s", *target_sha + ".." + source}));
  std::vector<std::string> listed = SplitLines(commits);
  if (listed.empty()) return loss;
  // Squash-merged (or cherry-picked): merging would change nothing.
  Result<TrialMerge> trial = MergeTree(repository, *target_sha, source);
  Result<std::string> target_tree = GitLine(repository, {"rev-parse", *target_sha + "^{tree}"});
  if (trial.ok() && trial->conflicts.empty() && target_tree.ok() && trial->tree == *target_tree) {
    return loss;
  }
  loss.unmerged_commits = std::move(listed);
  return loss;
}

Result<Removal> RemoveWorktree(const WorktreeInfo& worktree, const std::string& root,
                               RemoveMode mode) {
  if (!IsUnder(worktree.path, root)) {
    return Status::Refused(worktree.path + " is not under herd's worktree root " + root +
                           ": herd removes only worktrees it created");
  }
  HERD_ASSIGN_OR_RETURN(Repository repository, FindRepository(worktree.repository));
  std::optional<ListedWorktree> listed = FindListed(repository.top, worktree.path);
  if (listed && listed->lock_reason.rfind(kReasonPrefix, 0) != 0) {
    return Status::Refused(worktree.path + " does not carry herd's lock (\"" + listed->lock_reason +
                           "\"): herd removes only worktrees it created");
  }
  Removal removal;
  HERD_ASSIGN_OR_RETURN(removal.loss, WhatWouldBeLost(worktree));
  if (mode == RemoveMode::kSafe && !removal.loss.nothing_lost()) {
    return Status::Refused("removing " + worktree.path + " would lose " + removal.loss.Describe() +
                           ": merge or commit the work first, or remove it with --force");
  }
  std::string key_directory = Dirname(Dirname(worktree.path));
  HERD_ASSIGN_OR_RETURN(store::FileLock lock, LockRepository(key_directory));
  if (listed) {
    (void)RunGit(repository.top, {"worktree", "unlock", worktree.path});
    if (removal.loss.present) {
      std::vector<std::string> remove = {"worktree", "remove"};
      if (mode == RemoveMode::kForce) remove.push_back("--force");
      remove.push_back(worktree.path);
      Status removed = Git(repository.top, remove).status();
      if (!removed.ok()) {
        (void)RunGit(repository.top,
                     {"worktree", "lock", "--reason", listed->lock_reason, worktree.path});
        return removed.WithContext("the worktree was not removed");
      }
    } else {
      HERD_RETURN_IF_ERROR(Git(repository.top, {"worktree", "prune"}).status());
    }
    removal.worktree_removed = true;
  } else if (removal.loss.present) {
    return Status::Refused(worktree.path +
                           " is not a worktree git knows of: herd leaves it alone; look at it "
                           "and delete it yourself");
  }
  if (worktree.created_branch && BranchExists(repository.top, worktree.branch)) {
    HERD_RETURN_IF_ERROR(Git(repository.top, {"branch", "-D", worktree.branch})
                             .status()
                             .WithContext("the worktree was removed but not its branch"));
    removal.branch_deleted = true;
  }
  std::error_code error;
  fs::remove(Dirname(worktree.path), error);  // the task's folder, once empty
  return removal;
}

std::vector<FoundWorktree> FindHerdWorktrees(const std::string& root) {
  std::vector<FoundWorktree> found;
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(root, error)) {
    std::ifstream named(entry.path() / kRepositoryFile);
    std::string repository;
    if (!std::getline(named, repository) || !fs::is_directory(repository)) continue;
    for (const ListedWorktree& listed : ListWorktrees(repository)) {
      if (listed.lock_reason.rfind(kReasonPrefix, 0) != 0) continue;
      FoundWorktree worktree;
      worktree.repository = repository;
      worktree.path = listed.path;
      worktree.branch = listed.branch;
      worktree.lock_reason = listed.lock_reason;
      worktree.missing = listed.prunable || !fs::is_directory(listed.path);
      found.push_back(std::move(worktree));
    }
  }
  return found;
}

}  // namespace herd::worktrees
