#!/usr/bin/env bash
# The house format (.clang-format, STYLE.md).
#   scripts/format.sh          reformats every tracked .c and .h file
#   scripts/format.sh --check  changes nothing; fails listing the files off
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format)
bad=0
for f in $(git ls-files '*.c' '*.h'); do
  if [ "${1:-}" = "--check" ]; then
    if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
      echo "not formatted: $f (scripts/format.sh)"
      bad=1
    fi
  else
    "$cf" --style=file -i "$f"
  fi
done
exit $bad
