#!/usr/bin/env bash
# Fails, listing the files, when a C++ file differs from what clang-format
# (configured by .clang-format) makes of it. Fix with:
#   git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'fuzz/*.cc' 'fuzz/*.h' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."

unformatted=()
while IFS= read -r file; do
  if ! clang-format --style=file "$file" | cmp -s - "$file"; then unformatted+=("$file"); fi
done < <(git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'fuzz/*.cc' 'fuzz/*.h')

if ((${#unformatted[@]})); then
  echo "check-format: ${#unformatted[@]} files differ from clang-format:" >&2
  printf '  %s\n' "${unformatted[@]}" >&2
  echo "fix: git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'fuzz/*.cc' 'fuzz/*.h' | xargs clang-format -i" >&2
  exit 1
fi
echo "check-format: every C++ file is formatted"
