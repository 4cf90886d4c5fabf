#!/usr/bin/env bash
# The HTML report in headless Chromium (ctest integration_report.browser).
#
#   report_browser.sh KZSYNC KZSYNCD REPORT_CHECK SAMPLE_DIR WORKDIR
#
# 1. A sample network over loopback, as scripts/demo.sh: a kzsyncd server,
#    the state office (LAND) and the Hannover, Oldenburg and Lüneburg
#    centres; reference data and each centre's sample file loaded with the
#    sqlite3 shell; everyone syncs.
# 2. `kzsync report --format html` on the state office's replica (the
#    consolidated view) and on Hannover's own replica, which holds its
#    contacts, named participants and notes: neither page may show them.
# 3. Each page in Chromium: a screenshot (PNG of the window size, not
#    blank), the rendered DOM (section headings, SVG charts whose bars have
#    a size), a PDF print (several pages) and Chromium's log (no console
#    message, no uncaught error).  A probe page with console output proves
#    that the log check sees console messages at all.
# Chromium missing is a failure, not a skip: scripts/deps.sh installs it.
set -euo pipefail
kzsync=$1 kzsyncd=$2 check=$3 data=$4 work=$5

fail() { echo "report_browser: $*" >&2; exit 1; }
command -v chromium >/dev/null ||
  fail "chromium is not installed (Debian package chromium; scripts/deps.sh installs it)"
command -v sqlite3 >/dev/null || fail "the sqlite3 shell is not installed"

rm -rf "$work"
mkdir -p "$work"
cd "$work"

# ---- 1. the sample network -------------------------------------------------
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
}
trap cleanup EXIT

# A port of our own: a few tries from a pid-derived start.
port=$((20000 + $$ % 20000))
for _ in 1 2 3 4 5; do
  rm -rf server server.log
  server_key=$("$kzsyncd" init server --listen "127.0.0.1:$port" | tail -n 1)
  rm -rf land
  admin_key=$("$kzsync" init land --site LAND --device land-1 \
    --server "127.0.0.1:$port" --server-key "$server_key" --create-network |
    tail -n 1)
  "$kzsyncd" trust server "$admin_key" >/dev/null
  "$kzsyncd" run server 2>server.log &
  server_pid=$!
  for _ in $(seq 50); do
    grep -q "listening on" server.log 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "listening on" server.log && break
  cleanup
  server_pid=
  port=$((port + 7))
done
[ -n "$server_pid" ] || { cat server.log >&2; fail "kzsyncd did not start"; }

{
  sqlite3 -bail land/replica.db < "$data/01_reference.sql"
  "$kzsync" sync land
  for site in HAN OL LG; do
    dir=$(echo "$site" | tr 'A-Z' 'a-z')
    request=$("$kzsync" init "$dir" --site "$site" --device "$dir-1" \
      --server "127.0.0.1:$port" --server-key "$server_key" | tail -n 1)
    "$kzsync" member add land "$request" --role site
  done
  "$kzsync" sync land
  for pair in han:10_site_hannover ol:11_site_oldenburg lg:12_site_lueneburg; do
    dir=${pair%%:*}
    "$kzsync" sync "$dir"
    sqlite3 -bail "$dir/replica.db" < "$data/${pair#*:}.sql"
    "$kzsync" sync "$dir"
  done
  "$kzsync" sync land
  "$kzsync" sync han
  # The reference date is a local setting (report_setting, not synced):
  # the sample data gives the state office 2026-11-27; Hannover's would be
  # today, and the checks below look for the sample's date on both pages.
  as_of=$(sqlite3 -bail land/replica.db "SELECT as_of FROM v_as_of")
  sqlite3 -bail han/replica.db \
    "INSERT INTO report_setting VALUES ('as_of_date', '$as_of')"
} >network.log 2>&1 || { cat network.log >&2; fail "setting up the sample network failed"; }
cleanup
server_pid=

# ---- 2. the reports --------------------------------------------------------
"$kzsync" report land --format html --out state.html
"$kzsync" report han --format html --out han.html
"$check" html state.html land/replica.db
"$check" html han.html han/replica.db

# ---- 3. in Chromium --------------------------------------------------------
# Flags: no sandbox (CI runs as root), no GPU, and nothing that would reach
# the network on its own (updates, sync, QUIC).
chrome() {
  local profile
  profile=$(mktemp -d "$work/profile.XXXXXX")
  timeout 60 chromium --headless --no-sandbox --disable-gpu \
    --disable-dev-shm-usage --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update \
    --disable-sync --hide-scrollbars --no-pdf-header-footer \
    --enable-logging=stderr --v=0 --user-data-dir="$profile" "$@"
}

# The probe: console output must show up in the log, or the check is blind.
printf '<!DOCTYPE html><p>probe</p><script>console.error("kz-probe")</script>\n' >probe.html
chrome --dump-dom "file://$work/probe.html" >probe.dom 2>probe.log || true
grep -q "kz-probe" probe.log ||
  fail "chromium's log shows no console message of the probe page"
if "$check" log probe.log 2>/dev/null; then
  fail "report_check log missed the probe's console message"
fi

for page in state han; do
  url="file://$work/$page.html"
  chrome --screenshot="$work/$page.png" --window-size=1280,2400 "$url" \
    >/dev/null 2>"$page.shot.log" ||
    { cat "$page.shot.log" >&2; fail "chromium could not take a screenshot of $page.html"; }
  chrome --dump-dom "$url" >"$page.dom" 2>"$page.dom.log" ||
    { cat "$page.dom.log" >&2; fail "chromium could not load $page.html"; }
  chrome --print-to-pdf="$work/$page.pdf" "$url" >/dev/null 2>"$page.pdf.log" ||
    { cat "$page.pdf.log" >&2; fail "chromium could not print $page.html"; }
  "$check" png "$page.png" 1280 2400
  "$check" log "$page.shot.log"
  "$check" log "$page.dom.log"
  "$check" log "$page.pdf.log"
  # One page per section at least when printed.
  "$check" pdf "$page.pdf" 7
done
# The state office's report has every chart (17 with the sample data); a
# site's replica charts what it holds, at least its own figures.
"$check" dom state.dom 15
"$check" dom han.dom 8
echo "report_browser: ok ($work/state.png, $work/han.png)"
