#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the whole story on
# this machine, over loopback:
#   a kzsyncd server; the state office (LAND) creates the network; the
#   Hannover, Oldenburg and Lüneburg centres are enrolled; the state office
#   loads the reference data and each centre its own sample file (through the
#   plain sqlite3 shell); everyone syncs; the state office writes the
#   consolidated report.  It ends with the server stopped and prints where the
#   report is.
#
#   scripts/demo.sh [WORKDIR]     (default: demo/ in the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKZ_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target kzsync kzsyncd >/dev/null

kzsync=$root/build/client/kzsync
kzsyncd=$root/build/server/kzsyncd
data=$root/../shared/sample-data
work=${1:-$root/demo}
port=${KZ_DEMO_PORT:-7400}

rm -rf "$work"
mkdir -p "$work"
cd "$work"
say() { printf '\n== %s\n' "$*"; }

server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  server_pid=
}
trap stop_server EXIT

say "kzsyncd: set up the server (127.0.0.1:$port)"
server_key=$("$kzsyncd" init server --listen "127.0.0.1:$port" | tail -n 1)
echo "server key: $server_key"

say "state office: create the network"
admin_key=$("$kzsync" init land --site LAND --device land-1 \
  --server "127.0.0.1:$port" --server-key "$server_key" --create-network | tail -n 1)
echo "admin key: $admin_key"
"$kzsyncd" trust server "$admin_key"

"$kzsyncd" run server 2>server.log &
server_pid=$!
for _ in $(seq 50); do
  grep -q "listening on" server.log 2>/dev/null && break
  sleep 0.1
done
grep -q "listening on" server.log || { cat server.log; exit 1; }

say "state office: reference data (sqlite3 shell), first sync"
sqlite3 -bail land/replica.db < "$data/01_reference.sql"
"$kzsync" sync land

for site in HAN OL LG; do
  dir=$(echo "$site" | tr 'A-Z' 'a-z')
  say "centre $site: set up, enrolled by the state office"
  request=$("$kzsync" init "$dir" --site "$site" --device "$dir-1" \
    --server "127.0.0.1:$port" --server-key "$server_key" \
    --admin-key "$admin_key" | tail -n 1)
  "$kzsync" member add land "$request" --role site
done
"$kzsync" sync land

for pair in han:10_site_hannover.sql ol:11_site_oldenburg.sql lg:12_site_lueneburg.sql; do
  dir=${pair%%:*}
  file=${pair#*:}
  say "centre $(echo "$dir" | tr 'a-z' 'A-Z'): first sync, then its records (sqlite3 shell), sync"
  "$kzsync" sync "$dir"
  sqlite3 -bail "$dir/replica.db" < "$data/$file"
  "$kzsync" sync "$dir"
done

say "state office: sync, then the consolidated report"
"$kzsync" sync land
"$kzsync" member list land
for scope in network site:HAN site:OL site:LG; do
  printf '%-10s state office %s\n' "$scope" "$("$kzsync" digest land --scope "$scope" | cut -c1-16)"
done
for dir in han ol lg; do
  site=$(echo "$dir" | tr 'a-z' 'A-Z')
  printf '%-10s centre       %s\n' "site:$site" "$("$kzsync" digest "$dir" --scope "site:$site" | cut -c1-16)"
done
"$kzsync" report land --format html --out "$work/state-report.html"
"$kzsync" report land --format csv --out "$work/state-report.csv"
"$kzsync" report land --format json --out "$work/state-report.json"

stop_server
trap - EXIT
say "done: the state office's consolidated report"
echo "  $work/state-report.html  (also .csv and .json); server log: $work/server.log"
