#!/usr/bin/env bash
# Installs what herd needs to build and test, from Debian's packages and
# (for the interop tests) npm's lockfile. Idempotent: quiet when everything
# is already present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-format nodejs npm tmux jq procps
  chromium  # the dashboard's browser tests (tests/interop/dashboard*.test.mjs)
  # scripts/fuzz.sh: clang and its libFuzzer and sanitizer runtimes.
  clang libclang-rt-14-dev
  postgresql-15 libpq-dev  # the PostgreSQL registry and its tests (a throwaway server)
  libsqlite3-dev sqlite3   # herd-bench-store's SQLite baseline
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

# nodejs/npm may come from elsewhere (nodesource, nvm): accept any node >= 20.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for package in "${missing[@]}"; do
    [[ "$package" == nodejs || "$package" == npm ]] || filtered+=("$package")
  done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
