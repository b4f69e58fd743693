#!/bin/sh
# A demo agent: works through a few steps, reporting progress and a finding
# to herd as it goes. herd gives it HERD_BIN, HERD_TASK_ID and HERD_AGENT_ID.
set -eu
report() { "$HERD_BIN" progress "$HERD_TASK_ID" "$HERD_AGENT_ID" --status "$1" --progress "$2" --message "$3" >/dev/null; }
echo "analyst: reading the prompt: $(head -c 60 "$HERD_PROMPT_FILE")"
report working 10 "reading the project"
sleep 1
report working 40 "counting files in $(pwd)"
echo "analyst: $(find . -type f -not -path "./.agent-workspace/*" | wc -l) files under $(pwd)"
sleep 1
"$HERD_BIN" finding "$HERD_TASK_ID" "$HERD_AGENT_ID" --type insight --severity medium \
  --message "the project has $(find . -type f -not -path "./.agent-workspace/*" | wc -l) files" --data "{\"directory\": \"$(pwd)\"}" >/dev/null
report working 80 "writing the summary"
sleep 1
report completed 100 "analysis done"
echo "analyst: done"
