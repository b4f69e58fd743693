#!/usr/bin/env bash
# Installs what herd needs, builds it, and runs its main job: a demonstration
# of herd's registry store under concurrent writer processes, side by side
# with the locking scheme herd replaces.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build >/dev/null
exec ./build/herd-bench-store --quick
