#!/bin/sh
# A demo agent that starts a child agent under itself, then works.
set -eu
report() { "$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status "$1" --progress "$2" --message "$3" >/dev/null; }
report working 10 "starting a tester child"
child=$("$HERD_BIN" --json deploy "$HERD_TASK_ID" --type tester --parent "$HERD_AGENT_ID" \
  --backend command --prompt "test what the builder built" -- "$(dirname "$0")/tester.sh" \
  | jq -r .agent_id)
echo "builder: started child $child"
report working 50 "building while $child tests"
sleep 2
report completed 100 "build finished"
