#!/usr/bin/env bash
# Installs everything herd's tests need, builds herd, and runs every test:
# the C++ suites through ctest, then the MCP interop suites through node's
# test runner (real MCP clients and the real Claude Code CLI, offline), and
# the dashboard's browser tests (Debian's chromium driven by playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$(nproc)"

echo "== C++ tests (ctest) =="
ctest --test-dir build --output-on-failure -j2 --timeout 900

if [[ -f tests/interop/package-lock.json ]] && compgen -G "tests/interop/*.test.mjs" >/dev/null; then
  echo "== MCP interop tests (node --test) =="
  (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  HERD_BINARY="$PWD/build/herd" node --test --test-concurrency=1 tests/interop/
fi
