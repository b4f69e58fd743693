#!/usr/bin/env bash
# Installs what herd needs, builds it, and runs its main job:
#  1. the registry store under concurrent writer processes, side by side with
#     the locking scheme herd replaces (every figure measured in this run);
#  2. a real orchestration of small script agents (examples/demo/): they
#     report progress and findings through herd, one starts a child, the
#     child is refused a grandchild by the task's depth limit, one is killed;
#  3. two agents editing one small git repository in parallel, each in its
#     own worktree: their diffs, one merge, and the other's conflict refused
#     with nothing changed.
# Everything shown comes from herd's registry and the agents' own logs.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build >/dev/null

echo "== 1. The registry store under concurrent writers =="
./build/herd-bench-store --quick

echo
echo "== 2. Orchestrating agents =="
demo=$(mktemp -d /tmp/herd-demo.XXXXXX)
export XDG_STATE_HOME="$demo/state"           # keep the demo out of your own task list
herd="$PWD/build/herd"
run() { echo "\$ herd $*" >&2; "$herd" "$@"; }
json_field() { jq -r ".$1"; }

mkdir -p "$demo/project" && cp -r src "$demo/project/"   # a project for the agents to work in
task=$(run --json task create "Demo: analyse and build a project" --cwd "$demo/project" \
         --max-concurrent 4 --max-depth 2 | json_field task_id)
echo "created $task"
agents="$PWD/examples/demo"
analyst=$(run --json deploy "$task" --type analyst --backend command \
            --prompt "Analyse the project and report what you find." -- "$agents/analyst.sh" | json_field agent_id)
builder=$(run --json deploy "$task" --type builder --backend command \
            --prompt "Build the project; have a tester check it." -- "$agents/builder.sh" | json_field agent_id)
sleeper=$(run --json deploy "$task" --type watcher --backend command \
            --prompt "Watch for changes until stopped." -- "$agents/sleeper.sh" | json_field agent_id)
echo "deployed $analyst, $builder, $sleeper"
echo
echo "-- live status until only the watcher is left (redrawn on every registry change) --"
run watch "$task" --until-active 1
echo
echo "-- the watcher would run forever: kill it and everything it started --"
run kill "$task" "$sleeper" --reason "demo: no longer needed" --grace 2
echo
echo "-- final state --"
run status "$task"
echo
echo "-- the agents' own output, kept after they ended --"
for agent in $(run --json status "$task" | jq -r '.agents.agents_list[].id'); do
  echo "[$agent]"
  "$herd" logs "$task" "$agent" --tail 3 | sed 's/^/  /'
done
left=$(pgrep -f "sleep 600" | wc -l || true)
echo
echo "processes left from the demo's agents (pgrep): $left"
echo "the task lives in $demo/project/.agent-workspace; inspect it with: XDG_STATE_HOME=$XDG_STATE_HOME build/herd status $task"

echo
echo "== 3. Agents in their own git worktrees =="
repo="$demo/repo"
mkdir -p "$repo"
git -C "$repo" init -q -b main
git -C "$repo" config user.email demo@example.com
git -C "$repo" config user.name "herd demo"
printf 'Hello,\nworld\n' > "$repo/greeting.txt"
git -C "$repo" add -A && git -C "$repo" commit -qm "a greeting"
task=$(run --json task create "Demo: two agents, one file" --cwd "$repo" --worktree | json_field task_id)
# Each agent rewrites the same line of the same file and commits, in its own worktree.
edit() { echo "sed -i 's/world/$1/' greeting.txt && git commit -qam 'greet $1'"; }
first=$(run --json deploy "$task" --type greeter --backend command --prompt "greet" \
          -- sh -c "$(edit herd)" | json_field agent_id)
second=$(run --json deploy "$task" --type greeter --backend command --prompt "greet" \
           -- sh -c "$(edit everyone)" | json_field agent_id)
run wait "$task" --timeout 60 >/dev/null
for agent in "$first" "$second"; do run diff "$task" "$agent"; done
run merge "$task" "$first"
echo "greeting.txt on main now: $(tr '\n' ' ' < "$repo/greeting.txt")"
run merge "$task" "$second" || echo "(refused: main is unchanged, and $second keeps its branch and worktree)"
run worktree list "$task"
