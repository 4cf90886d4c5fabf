#!/usr/bin/env bash
# Installs the Debian 12 packages kzsync needs (README.md, "Dependencies"),
# skipping those already present.  Run as root.
#   scripts/deps.sh           what building and running kzsync needs
#   scripts/deps.sh --tests   also what the test suite needs (clang for the
#                             sanitizer build, clang-format, chromium)
set -euo pipefail
pkgs=(build-essential cmake pkg-config sqlite3 libsqlite3-dev libsodium-dev
      libuv1-dev libmsgpack-dev libinih-dev libcjson-dev)
if [ "${1:-}" = "--tests" ]; then
  pkgs+=(clang clang-format libclang-rt-14-dev chromium fonts-dejavu-core)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
