#!/usr/bin/env bash
# What a worktree adds to a deploy: p50 wall time of `herd deploy` of a
# `true` command agent, with and without --worktree, on a clone of this
# repository and on a generated repository of ~5,000 files.
#   bench/worktree_deploy.sh [HERD_BINARY] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
herd=${1:-$PWD/build/herd}
runs=${2:-15}
scratch=$(mktemp -d /tmp/herd-worktree-bench-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export XDG_STATE_HOME=$scratch/state

git clone -q --no-hardlinks "$PWD" "$scratch/herd-repo"
big=$scratch/big-repo
mkdir -p "$big"
(cd "$big" && git init -q -b main &&
  for d in $(seq 1 50); do mkdir -p "d$d"; for f in $(seq 1 100); do echo "$d $f" > "d$d/f$f.txt"; done; done &&
  git add -A && git -c user.email=b@b -c user.name=b commit -qm files)

p50() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() {  # repository, extra deploy args...
  local repo=$1; shift
  local task
  task=$("$herd" task create "worktree deploy benchmark" --cwd "$repo" --max-agents 1000 \
    --max-concurrent 1000 --json | sed -n 's/.*"task_id": "\(.*\)".*/\1/p')
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    "$herd" deploy "$task" --type bench "$@" --backend command -- true >/dev/null
    end=$(date +%s%N)
    echo $(((end - start) / 1000000))
  done | p50
}

for repo in "$scratch/herd-repo" "$big"; do
  files=$(git -C "$repo" ls-files | wc -l)
  plain=$(measure "$repo")
  worktree=$(measure "$repo" --worktree)
  echo "$(basename "$repo") ($files files): deploy p50 ${plain} ms, with --worktree ${worktree} ms" \
    "(+$((worktree - plain)) ms), $runs runs each"
done
