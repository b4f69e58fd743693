#!/usr/bin/env bash
# Runs herd's tests under sanitizers; any report fails the run.
#   asan  build-asan/: every ctest suite with AddressSanitizer (leaks too) and
#         UndefinedBehaviorSanitizer; the herd binary the tests spawn is the
#         sanitized one.
#   tsan  build-tsan/: ThreadSanitizer on the threaded code: the tests of
#         the process watch and the journal reader, and herd serve's reader
#         and worker threads driven by the MCP concurrency interop suite and
#         its wait threads by the wait_for_agents suite.
# A report aborts the process that has it, so its test fails. Reports are
# also written under <build>/sanitizer-reports/: processes no test waits
# for (detached supervisors) report there, and the stage fails if any file
# appears. Usage: scripts/test-sanitizers.sh [asan|tsan]... (default both).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
stages=("$@")
((${#stages[@]})) || stages=(asan tsan)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

# configure DIR SANITIZERS: -O1 keeps the build and the tests quick while
# the reports keep their line numbers (-g1).
configure() {
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
    "-DHERD_SANITIZE=$2" "${launcher[@]}" >/dev/null
}

# reports_dir DIR: an empty directory for the stage's report files.
reports_dir() {
  rm -rf "$1/sanitizer-reports"
  mkdir -p "$1/sanitizer-reports"
  echo "$PWD/$1/sanitizer-reports"
}

# check_reports DIR: fails, printing them, if any report was written.
check_reports() {
  if compgen -G "$1/*" >/dev/null; then
    echo "test-sanitizers: sanitizer reports in $1:" >&2
    for report in "$1"/*; do
      echo "== $report" >&2
      cat "$report" >&2
    done
    return 1
  fi
}

run_asan() {
  configure build-asan address,undefined
  ninja -C build-asan -j"$(nproc)"
  local reports
  reports=$(reports_dir build-asan)
  echo "== C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer (ctest) =="
  local status=0
  # Not the 400-agent kill --all: 400 sanitized supervisors at once need more
  # memory than a 24 GiB machine has (the OOM killer ended it here). Its code
  # runs under ASan in the smaller KillAllTest cases; scripts/test.sh runs it
  # whole.
  ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$reports/asan" \
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:log_path=$reports/ubsan" \
    ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 \
    -E 'KillAllTest.StopsFourHundredSleepingAgents' || status=$?
  check_reports "$reports" || status=1
  return "$status"
}

run_tsan() {
  configure build-tsan thread
  ninja -C build-tsan -j"$(nproc)" herd herd_util_tests herd_agents_tests herd_node_tests
  local reports
  reports=$(reports_dir build-tsan)
  export TSAN_OPTIONS="halt_on_error=1:abort_on_error=1:second_deadlock_stack=1:log_path=$reports/tsan"
  echo "== threaded code under ThreadSanitizer (ctest -R, MCP concurrency and wait suites) =="
  local status=0
  # The node daemon: its lease watchdog, and starts on threads of their own
  # (a kill and a conversation across nodes; the 40-deploy race runs under
  # ASan, where processes are not slowed as much).
  ctest --test-dir build-tsan --output-on-failure -j2 --timeout 900 \
    -R 'ProcessWatch|JournalReader|LifelinesTest|NodeTest.KillOnOne|NodeTest.FollowUp' ||
    status=$?
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  HERD_BINARY="$PWD/build-tsan/herd" node --test --test-concurrency=1 \
    tests/interop/mcp_concurrency.test.mjs || status=$?
  # wait_for_agents on its own thread, stopped by the reader (cancellation)
  # and sending progress from it.
  HERD_BINARY="$PWD/build-tsan/herd" node --test --test-concurrency=1 \
    tests/interop/mcp_wait.test.mjs || status=$?
  unset TSAN_OPTIONS
  check_reports "$reports" || status=1
  return "$status"
}

for stage in "${stages[@]}"; do
  case "$stage" in
    asan) run_asan ;;
    tsan) run_tsan ;;
    *) echo "test-sanitizers: unknown stage $stage (asan or tsan)" >&2; exit 2 ;;
  esac
done
