#!/usr/bin/env bash
# Builds herd's libFuzzer targets with clang (build-fuzz/: fuzzer, address
# and undefined sanitizers) and runs each from its seed corpus in
# fuzz/corpus/<target>/ for a bounded time. Any crash, sanitizer report,
# input slower than the per-input timeout or memory beyond the limit fails
# the run; the input that did it is left in build-fuzz/artifacts/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...] (default 60, all).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(mcp_server mcp_tools stream_events registry_document)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
  -DHERD_FUZZ=ON -DHERD_SANITIZE=fuzzer-no-link,address,undefined "${launcher[@]}" >/dev/null
ninja -C build-fuzz -j"$(nproc)" fuzz

mkdir -p build-fuzz/artifacts
# The targets' workspaces (fuzz/fuzz_support.h) go here, one per run.
rm -rf build-fuzz/tmp
mkdir -p build-fuzz/tmp
export TMPDIR="$PWD/build-fuzz/tmp"
status=0
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds}s =="
  # The corpus the run grows stays in build-fuzz/; the seeds are read only.
  work="build-fuzz/corpus/$target"
  mkdir -p "$work"
  ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1" \
    UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1" \
    "build-fuzz/herd-fuzz-$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$target-" \
    "$work" "fuzz/corpus/$target" 2>"build-fuzz/$target.log" || {
    status=1
    echo "fuzz: $target failed; the end of build-fuzz/$target.log:" >&2
    tail -n 60 "build-fuzz/$target.log" >&2
  }
  grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "build-fuzz/$target.log" || true
done
exit "$status"
