#!/bin/sh
# A demo agent that would run for a long time (and starts a background
# helper in a session of its own); the demo kills it.
set -eu
"$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status working --progress 5 \
  --message "watching for changes (runs until stopped)" >/dev/null
setsid sleep 600 &
echo "sleeper: started background helper $!"
sleep 600
