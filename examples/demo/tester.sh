#!/bin/sh
# A demo child agent. It tries to start a grandchild, which the task's
# max_depth of 2 refuses; it reports the refusal as a finding.
set -eu
report() { "$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status "$1" --progress "$2" --message "$3" >/dev/null; }
report working 20 "running tests"
if refusal=$("$HERD_BIN" deploy "$HERD_TASK_ID" --type helper --parent "$HERD_AGENT_ID" \
    --backend command -- true 2>&1); then
  echo "tester: unexpectedly allowed a grandchild"
else
  echo "tester: herd refused a grandchild: $refusal"
  "$HERD_BIN" finding "$HERD_TASK_ID" "$HERD_AGENT_ID" --type limit --severity low \
    --message "grandchild refused: ${refusal#herd: }" >/dev/null
fi
sleep 2
report completed 100 "tests passed"
