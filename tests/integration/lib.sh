# lib.sh: shared helpers of the integration tests (sourced, bash).
#
# Every test script is called as
#
#     bash TEST.sh KZSYNC KZSYNCD SAMPLE_DATA_DIR [HOSTILE] [PORT_SLOT]
#
# and starts with `kz_setup NAME "$@"`.  It then runs real processes on
# loopback only, in its own temporary directory, on its own port:
#
#   - Ports.  Every test has a slot (0..19) and owns the 200 ports
#     20000 + 200*slot .. +199: below the kernel's ephemeral range
#     (32768..60999 on Linux), so no outgoing connection of another test
#     can be sitting on them, and disjoint between tests, so ctest -j
#     never collides.  Inside its range a test starts at an offset taken
#     from its process id, skips ports that `ss` shows in use, and if
#     kzsyncd still cannot listen (someone else took it meanwhile) it
#     moves to the next port and tries again (bounded).
#   - Processes.  Every background process is started through kz_bg,
#     which records its pid; the EXIT trap kills (TERM, then KILL) and
#     reaps every one of them, whatever way the script ends.
#   - Bounds.  Every kzsync and sqlite3 command runs under `timeout`, and
#     every wait loop is bounded in iterations and time.
#
# The work directory is removed on success and kept (its path printed)
# on failure.

set -u
set -o pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

KZ_TEST=
KZSYNC=
KZSYNCD=
KZ_DATA=
KZ_HOSTILE=
KZ_SLOT=0
KZ_WORK=
KZ_PORT=
KZ_HOST=127.0.0.1   # or ::1 (kz_use_ipv6)
KZ_SRV_PID=
KZ_SRV_DIR=
KZ_SRV_KEY=
KZ_ADMIN_KEY=
KZ_OK=0
KZ_T0=$SECONDS

# Default bound of one kzsync command (seconds).
KZ_CMD_TIMEOUT=${KZ_CMD_TIMEOUT:-30}

log() { printf '[%s %3ds] %s\n' "$KZ_TEST" "$((SECONDS - KZ_T0))" "$*" >&2; }

fail() {
    printf '[%s] FAIL: %s\n' "$KZ_TEST" "$*" >&2
    exit 1
}

# check COND-TEXT CMD...: runs CMD, fails the test with COND-TEXT if it
# returns non-zero.
check() {
    local what=$1
    shift
    "$@" || fail "$what"
}

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
    [ "$2" == "$3" ] || fail "$1: expected '$2', got '$3'"
}

# assert_ne WHAT A B
assert_ne() {
    [ "$2" != "$3" ] || fail "$1: both are '$2'"
}

kz_cleanup() {
    local rc=$? log=
    trap - EXIT INT TERM
    kz_stop_all
    [ -n "$KZ_SRV_DIR" ] && log=$KZ_SRV_DIR.log
    kz_finish "$rc" "$KZ_OK" "$KZ_TEST" "$KZ_T0" "$KZ_WORK" "$log"
}

# kz_setup NAME KZSYNC KZSYNCD DATA [HOSTILE] [SLOT]
kz_setup() {
    KZ_TEST=$1
    KZSYNC=$2
    KZSYNCD=$3
    KZ_DATA=$4
    KZ_HOSTILE=${5:-}
    KZ_SLOT=${6:-0}
    [ -x "$KZSYNC" ] || { echo "no kzsync at $KZSYNC" >&2; exit 2; }
    [ -x "$KZSYNCD" ] || { echo "no kzsyncd at $KZSYNCD" >&2; exit 2; }
    [ -f "$KZ_DATA/01_reference.sql" ] || { echo "no sample data in $KZ_DATA" >&2; exit 2; }
    command -v sqlite3 >/dev/null || { echo "sqlite3 shell missing" >&2; exit 2; }
    KZ_WORK=$(mktemp -d "${TMPDIR:-/tmp}/kzit-$KZ_TEST.XXXXXX") || exit 2
    trap kz_cleanup EXIT
    trap 'exit 130' INT TERM
    cd "$KZ_WORK" || exit 2
    log "work dir $KZ_WORK"
}

kz_done() { KZ_OK=1; exit 0; }

kz() { timeout -k 2 "$KZ_CMD_TIMEOUT" "$KZSYNC" "$@"; }
sql() { timeout -k 2 60 sqlite3 -bail -cmd ".timeout 10000" "$@"; }

# wait_until SECONDS CMD...: polls CMD every 0.1 s until it succeeds;
# returns 1 after SECONDS.
wait_until() {
    local limit=$1 i n
    shift
    n=$((limit * 10))
    for ((i = 0; i < n; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# kz_addr: HOST:PORT of the server ([::1]:PORT for IPv6)
kz_addr() {
    case $KZ_HOST in
    *:*) printf '[%s]:%s' "$KZ_HOST" "$KZ_PORT" ;;
    *) printf '%s:%s' "$KZ_HOST" "$KZ_PORT" ;;
    esac
}

# kz_use_ipv6: serve on ::1 if this machine has IPv6 loopback (returns 1
# and keeps 127.0.0.1 otherwise).
kz_use_ipv6() {
    if [ -r /proc/net/if_inet6 ] && grep -q '^0*1 ' /proc/net/if_inet6; then
        KZ_HOST=::1
        return 0
    fi
    return 1
}

# next_port: sets KZ_PORT to a port of this test's range not in use.
next_port() {
    local base=$((20000 + 200 * KZ_SLOT)) off i p
    if [ -z "$KZ_PORT" ]; then
        off=$(($$ % 200))
    else
        off=$(((KZ_PORT - base + 1) % 200))
    fi
    for ((i = 0; i < 200; i++)); do
        p=$((base + (off + i) % 200))
        if ! port_busy "$p"; then
            KZ_PORT=$p
            return 0
        fi
    done
    fail "no free port in $base..$((base + 199))"
}

conf_set() { # conf_set DIR KEY VALUE: sets a [server] key of kzsyncd.conf
    local f=$1/kzsyncd.conf
    if grep -q "^$2 *=" "$f"; then
        sed -i "s|^$2 *=.*|$2 = $3|" "$f"
    else
        sed -i "s|^\[server\]\$|[server]\n$2 = $3|" "$f"
    fi
}

# srv_start: runs kzsyncd on KZ_SRV_DIR (log appended to KZ_SRV_DIR.log)
# and waits until it listens.  Returns 1 if it exits or does not listen
# within 10 s.
srv_start() {
    local log=$KZ_SRV_DIR.log before
    before=$(grep -c "listening on" "$log" 2>/dev/null)
    before=${before:-0}
    kz_bg "$KZSYNCD" run "$KZ_SRV_DIR" 2>>"$log"
    KZ_SRV_PID=$KZ_LAST_PID
    local i
    for ((i = 0; i < 100; i++)); do
        if [ "$(grep -c "listening on" "$log" 2>/dev/null)" -gt "$before" ]; then
            return 0
        fi
        if ! kill -0 "$KZ_SRV_PID" 2>/dev/null; then
            wait "$KZ_SRV_PID" 2>/dev/null
            kz_forget "$KZ_SRV_PID"
            KZ_SRV_PID=
            return 1
        fi
        sleep 0.1
    done
    kz_stop "$KZ_SRV_PID" KILL
    KZ_SRV_PID=
    return 1
}

# srv_stop [SIG]: stops the server (default TERM); returns its status.
srv_stop() {
    local rc=0
    if [ -n "$KZ_SRV_PID" ]; then
        kz_stop "$KZ_SRV_PID" "${1:-TERM}"
        rc=$?
    fi
    KZ_SRV_PID=
    return $rc
}

srv_alive() { [ -n "$KZ_SRV_PID" ] && kill -0 "$KZ_SRV_PID" 2>/dev/null; }

# srv_restart_bounded: srv_start, retried a few times (a killed server's
# store may need a moment; a port in TIME_WAIT is fine with SO_REUSEADDR).
srv_restart() {
    local i
    for ((i = 0; i < 5; i++)); do
        srv_start && return 0
        sleep 0.3
    done
    fail "kzsyncd does not restart"
}

# net_create [CONF_KEY=VALUE …]: a server in srv/ (KZ_SRV_KEY) and the
# state office in land/ (KZ_ADMIN_KEY), server trusted and running,
# roster uploaded.  Extra arguments set kzsyncd.conf keys.
net_create() {
    local attempt kv
    KZ_SRV_DIR=$KZ_WORK/srv
    next_port
    KZ_SRV_KEY=$("$KZSYNCD" init "$KZ_SRV_DIR" --listen "$(kz_addr)" 2>/dev/null | tail -n 1) ||
        fail "kzsyncd init"
    for kv in "$@"; do
        conf_set "$KZ_SRV_DIR" "${kv%%=*}" "${kv#*=}"
    done
    for ((attempt = 0; attempt < 10; attempt++)); do
        srv_start && break
        grep -qi "address already in use\|EADDRINUSE" "$KZ_SRV_DIR.log" ||
            fail "kzsyncd does not start: $(tail -n 3 "$KZ_SRV_DIR.log")"
        log "port $KZ_PORT taken, trying the next one"
        next_port
        conf_set "$KZ_SRV_DIR" listen "$(kz_addr)"
    done
    srv_alive || fail "kzsyncd does not listen"
    srv_stop || fail "kzsyncd did not stop cleanly"
    KZ_ADMIN_KEY=$(kz init land --site LAND --device land-1 \
        --server "$(kz_addr)" --server-key "$KZ_SRV_KEY" \
        --create-network 2>/dev/null | tail -n 1) || fail "kzsync init land"
    "$KZSYNCD" trust "$KZ_SRV_DIR" "$KZ_ADMIN_KEY" 2>/dev/null || fail "kzsyncd trust"
    srv_restart
    kz sync land 2>/dev/null || fail "first sync of the state office"
    log "server on $(kz_addr), network created"
}

# site_join DIR SITE: sets up a centre's device DIR-1 and has the state
# office enrol it (the roster reaches the server with land's sync).
site_join() {
    local dir=$1 site=$2 req
    req=$(kz init "$dir" --site "$site" --device "$dir-1" \
        --server "$(kz_addr)" --server-key "$KZ_SRV_KEY" 2>/dev/null | tail -n 1) ||
        fail "kzsync init $dir"
    kz member add land "$req" --role site >/dev/null 2>&1 || fail "member add $dir"
}

# digest DIR [SCOPE]
digest() {
    if [ $# -gt 1 ]; then
        kz digest "$1" --scope "$2" 2>/dev/null | tail -n 1
    else
        kz digest "$1" 2>/dev/null | tail -n 1
    fi
}

# rss_kb PID: VmRSS of PID in KiB
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# add_trainings DIR SITE PREFIX N: N training rows of SITE, ids PREFIX-1..N,
# written through the sqlite3 shell in one transaction.
add_trainings() {
    sql "$1/replica.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $4)
        INSERT INTO training (id, site_id, title, training_kind, start_date,
                              event_format, participants_total)
        SELECT '$3-' || i, (SELECT id FROM site WHERE code = '$2'),
               'Fortbildung $3 ' || i, 'inhouse_training', '2026-03-01',
               'online', i % 40 FROM c"
}

# count_rows DIR WHERE: rows of training matching WHERE
count_trainings() { sql "$1/replica.db" "SELECT count(*) FROM training WHERE $2"; }

# session_of PEER: the server's session id of the connection from PEER
# (IP:PORT), from the server log.
session_of() {
    grep -oE "session [0-9]+ (from )?$1[: ]" "$KZ_SRV_DIR.log" | head -n 1 | awk '{print $2}'
}

# close_reason SESSION: the reason the server logged when it closed it.
close_reason() {
    grep -E "^info: session $1 .* closed: " "$KZ_SRV_DIR.log" | head -n 1 | sed 's/.* closed: //'
}
