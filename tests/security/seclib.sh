# seclib.sh: shared helpers of the security tests (sourced, bash).
#
# Every test script is called as
#
#     bash TEST.sh KZSYNC KZSYNCD SAMPLE_DATA_DIR SECTOOL RECPROXY SLOT
#
# and starts with `sec_setup NAME "$@"`.  It runs real processes on
# loopback only, in its own temporary directory:
#
#   - Ports.  Slot S (0..9) owns the 400 ports 24000 + 400*S .. +399: above
#     the integration tests' 20000..23999, below the kernel's ephemeral
#     range (32768..), and disjoint between tests, so ctest -j never
#     collides.  Inside its range a test starts at an offset taken from its
#     process id (the hash of ctest's child), skips ports `ss` shows in use,
#     and if a listener still cannot bind it moves on (bounded).
#   - Processes.  Every background process is started through kz_bg
#     (../lib/procs.sh); the
#     EXIT trap stops (TERM, then KILL) and reaps each one by its pid.
#   - Bounds.  Every kzsync, sqlite3 and sectool call runs under `timeout`;
#     every wait loop is bounded.
#
# The work directory is removed on success and kept on failure.

set -u
set -o pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib/procs.sh"

SEC_TEST=
KZSYNC=
KZSYNCD=
SEC_DATA=
SECTOOL=
RECPROXY=
SEC_SLOT=0
SEC_WORK=
SEC_OK=0
SEC_T0=$SECONDS
SRV_PORT=
SRV_PID=
SRV_DIR=
SRV_KEY=
ADMIN_KEY=
PROXY_PORT=
PROXY_PID=
CLIENT_ADDR=   # what clients use as --server (the server, or the proxy)

CMD_TIMEOUT=${KZ_CMD_TIMEOUT:-30}

log() { printf '[%s %3ds] %s\n' "$SEC_TEST" "$((SECONDS - SEC_T0))" "$*" >&2; }

fail() {
    printf '[%s] FAIL: %s\n' "$SEC_TEST" "$*" >&2
    exit 1
}

assert_eq() { [ "$2" == "$3" ] || fail "$1: expected '$2', got '$3'"; }

sec_cleanup() {
    local rc=$? log=
    trap - EXIT INT TERM
    kz_stop_all
    [ -n "$SRV_DIR" ] && log=$SRV_DIR.log
    kz_finish "$rc" "$SEC_OK" "$SEC_TEST" "$SEC_T0" "$SEC_WORK" "$log"
}

sec_setup() {
    SEC_TEST=$1
    KZSYNC=$2
    KZSYNCD=$3
    SEC_DATA=$4
    SECTOOL=$5
    RECPROXY=$6
    SEC_SLOT=${7:-0}
    [ -x "$KZSYNC" ] || { echo "no kzsync at $KZSYNC" >&2; exit 2; }
    [ -x "$KZSYNCD" ] || { echo "no kzsyncd at $KZSYNCD" >&2; exit 2; }
    [ -x "$SECTOOL" ] || { echo "no sectool at $SECTOOL" >&2; exit 2; }
    [ -f "$SEC_DATA/01_reference.sql" ] || { echo "no sample data in $SEC_DATA" >&2; exit 2; }
    command -v sqlite3 >/dev/null || { echo "sqlite3 shell missing" >&2; exit 2; }
    SEC_WORK=$(mktemp -d "${TMPDIR:-/tmp}/kzsec-$SEC_TEST.XXXXXX") || exit 2
    trap sec_cleanup EXIT
    trap 'exit 130' INT TERM
    cd "$SEC_WORK" || exit 2
    log "work dir $SEC_WORK"
}

sec_done() { SEC_OK=1; exit 0; }

kz() { timeout -k 2 "$CMD_TIMEOUT" "$KZSYNC" "$@"; }
sql() { timeout -k 2 60 sqlite3 -bail "$@"; }
st() { timeout -k 2 "$CMD_TIMEOUT" "$SECTOOL" "$@"; }

# free_port [AFTER]: prints a port of this test's range not in use (after
# AFTER, if given).
free_port() {
    local base=$((24000 + 400 * SEC_SLOT)) off i p
    if [ $# -gt 0 ] && [ -n "$1" ]; then
        off=$((($1 - base + 1) % 400))
    else
        off=$((($$ + RANDOM) % 400))
    fi
    for ((i = 0; i < 400; i++)); do
        p=$((base + (off + i) % 400))
        if ! port_busy "$p"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# srv_start: runs kzsyncd on SRV_DIR (log appended to SRV_DIR.log) and
# waits until it listens (10 s).  Returns 1 if it exits or does not.
srv_start() {
    local log=$SRV_DIR.log before i
    before=$(grep -c "listening on" "$log" 2>/dev/null)
    before=${before:-0}
    kz_bg "$KZSYNCD" run "$SRV_DIR" 2>>"$log"
    SRV_PID=$KZ_LAST_PID
    for ((i = 0; i < 100; i++)); do
        if [ "$(grep -c "listening on" "$log" 2>/dev/null)" -gt "$before" ]; then
            return 0
        fi
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            wait "$SRV_PID" 2>/dev/null
            kz_forget "$SRV_PID"
            SRV_PID=
            return 1
        fi
        sleep 0.1
    done
    kz_stop "$SRV_PID"
    SRV_PID=
    return 1
}

srv_stop() {
    local rc=0
    if [ -n "$SRV_PID" ]; then
        kz_stop "$SRV_PID"
        rc=$?
    fi
    SRV_PID=
    return $rc
}

srv_restart() {
    local i
    for ((i = 0; i < 5; i++)); do
        srv_start && return 0
        sleep 0.3
    done
    fail "kzsyncd does not restart"
}

# proxy_start: a recording proxy (capture.bin) in front of the server.
proxy_start() {
    local attempt i
    for ((attempt = 0; attempt < 10; attempt++)); do
        PROXY_PORT=$(free_port "$SRV_PORT") || fail "no free port"
        [ "$PROXY_PORT" == "$SRV_PORT" ] && continue
        kz_bg "$RECPROXY" "$PROXY_PORT" "$SRV_PORT" "$SEC_WORK/capture.bin" \
            2>>"$SEC_WORK/proxy.log"
        PROXY_PID=$KZ_LAST_PID
        for ((i = 0; i < 50; i++)); do
            grep -q "recproxy listening on 127.0.0.1:$PROXY_PORT " \
                "$SEC_WORK/proxy.log" 2>/dev/null && return 0
            kill -0 "$PROXY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kz_stop "$PROXY_PID"
    done
    fail "the recording proxy does not start"
}

# net_create [proxy]: a server in srv/ (SRV_KEY), trusted and running,
# optionally behind the recording proxy, and the state office in land/
# (ADMIN_KEY) with the network created and its roster uploaded.
net_create() {
    local attempt
    SRV_DIR=$SEC_WORK/srv
    SRV_PORT=$(free_port) || fail "no free port"
    SRV_KEY=$("$KZSYNCD" init "$SRV_DIR" --listen "127.0.0.1:$SRV_PORT" \
        2>/dev/null | tail -n 1) || fail "kzsyncd init"
    for ((attempt = 0; attempt < 10; attempt++)); do
        srv_start && break
        grep -qi "address already in use\|EADDRINUSE" "$SRV_DIR.log" ||
            fail "kzsyncd does not start: $(tail -n 3 "$SRV_DIR.log")"
        SRV_PORT=$(free_port "$SRV_PORT") || fail "no free port"
        sed -i "s|^listen *=.*|listen = 127.0.0.1:$SRV_PORT|" "$SRV_DIR/kzsyncd.conf"
    done
    [ -n "$SRV_PID" ] || fail "kzsyncd does not listen"
    CLIENT_ADDR=127.0.0.1:$SRV_PORT
    if [ "${1:-}" == proxy ]; then
        proxy_start
        CLIENT_ADDR=127.0.0.1:$PROXY_PORT
    fi
    ADMIN_KEY=$(kz init land --site LAND --device land-1 \
        --server "$CLIENT_ADDR" --server-key "$SRV_KEY" \
        --create-network 2>/dev/null | tail -n 1) || fail "kzsync init land"
    srv_stop || fail "kzsyncd did not stop cleanly"
    "$KZSYNCD" trust "$SRV_DIR" "$ADMIN_KEY" 2>/dev/null || fail "kzsyncd trust"
    srv_restart
    kz sync land >/dev/null 2>&1 || fail "first sync of the state office"
    log "server on 127.0.0.1:$SRV_PORT, clients use $CLIENT_ADDR"
}

# join DIR SITE DEVICE [ROLE]: sets up a device, enrolled by the state
# office (the roster reaches the server with land's next sync).
# With SEC_MID_KEY=DIR, that device's identity is made again (bounded)
# until its Ed25519 key's first byte is in 0x40..0xbf, so that a later
# device's key can be picked above or below it in a few tries.
join() {
    local dir=$1 site=$2 dev=$3 role=${4:-site} req i b
    for ((i = 0; i < 40; i++)); do
        req=$(kz init "$dir" --site "$site" --device "$dev" \
            --server "$CLIENT_ADDR" --server-key "$SRV_KEY" 2>/dev/null | tail -n 1) ||
            fail "kzsync init $dir"
        [ "${SEC_MID_KEY:-}" == "$dir" ] || break
        b=$(od -An -tu1 -j20 -N1 "$dir/identity.key" | tr -d ' ')
        [ "$b" -ge 64 ] && [ "$b" -lt 192 ] && break
        rm -rf "$dir"
    done
    [ "$i" -lt 40 ] || fail "no key in the middle for $dir"
    kz member add land "$req" --role "$role" >/dev/null 2>&1 || fail "member add $dir"
}

# ksync DIR: one sync round that must succeed.
ksync() {
    local out
    out=$(kz sync "$1" 2>&1) || fail "kzsync sync $1: $out"
}

# sample_network [proxy]: the story of scripts/demo.sh: server, state
# office with the reference data, Hannover, Oldenburg and Lüneburg each
# with its sample file, everyone synced (twice, so that every replica has
# everything it may read).
sample_network() {
    local pair dir file
    net_create "${1:-}"
    sql land/replica.db <"$SEC_DATA/01_reference.sql" || fail "reference data"
    ksync land
    join han HAN han-1
    join ol OL ol-1
    join lg LG lg-1
    ksync land
    for pair in han:10_site_hannover.sql ol:11_site_oldenburg.sql lg:12_site_lueneburg.sql; do
        dir=${pair%%:*}
        file=${pair#*:}
        ksync "$dir"
        sql "$dir/replica.db" <"$SEC_DATA/$file" || fail "load $file"
        ksync "$dir"
    done
    ksync land
    for dir in han ol lg; do ksync "$dir"; done
    log "sample network synced"
}

# scalar DB SQL: one value.
scalar() { sql "$1" "$2" 2>/dev/null | head -n 1; }

# flip_byte DB TABLE COLUMN WHERE OFFSET: flips (xor 0x01) the byte at
# 1-based OFFSET of a blob, in place, with the sqlite3 shell only.
flip_byte() {
    local db=$1 tbl=$2 col=$3 where=$4 off=$5 hex byte nb
    local len
    len=$(scalar "$db" "SELECT typeof($col) || length($col) FROM $tbl WHERE $where")
    hex=$(scalar "$db" "SELECT hex(substr($col, $off, 1)) FROM $tbl WHERE $where")
    [ -n "$hex" ] || fail "flip_byte: nothing at $tbl.$col where $where"
    byte=$((16#$hex))
    nb=$(printf '%02X' $((byte ^ 1)))
    sql "$db" "UPDATE $tbl SET $col = CAST(substr($col, 1, $off - 1) || X'$nb' ||
        substr($col, $off + 1) AS BLOB) WHERE $where" || fail "flip_byte update"
    [ "$(scalar "$db" "SELECT hex(substr($col, $off, 1)) FROM $tbl WHERE $where")" == "$nb" ] ||
        fail "flip_byte did not take"
    assert_eq "flip_byte: type and length" "$len" \
        "$(scalar "$db" "SELECT typeof($col) || length($col) FROM $tbl WHERE $where")"
}

# sync_expect_refused DIR PATTERN: a sync of DIR must fail with exit code
# 5 and a stderr line matching PATTERN (grep -E).  Sets SYNC_ERR.
sync_expect_refused() {
    local rc
    SYNC_ERR=$(kz sync "$1" 2>&1 >/dev/null)
    rc=$?
    [ "$rc" -eq 5 ] || fail "sync $1: expected exit 5, got $rc ($SYNC_ERR)"
    echo "$SYNC_ERR" | grep -Eq "$2" || fail "sync $1: error does not match '$2': $SYNC_ERR"
    log "sync $1 refused as expected: $SYNC_ERR"
}
