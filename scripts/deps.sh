#!/usr/bin/env bash
# Installs the Debian 12 packages kzsync needs (README.md, "Dependencies"),
# skipping those already present.  Run as root.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev sqlite3
      libsqlite3-dev libsodium-dev libuv1-dev libmsgpack-dev libinih-dev
      libcjson-dev chromium)
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
