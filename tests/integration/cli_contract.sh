#!/usr/bin/env bash
# integration.cli_contract: the command-line contract of DESIGN.md §8 and
# README ("Exit codes: 0 success, 1 failed, 2 usage, 3 no replica in DIR
# (or one exists already), 4 server unreachable, 5 refused by the server,
# 6 version not supported.  Errors are one line on stderr."):
#   - `--help` on every command exits 0 and prints the usage on stdout;
#   - bad arguments exit 2;
#   - a key, a join request or a digest is the last line of stdout;
#   - `init` into a DIR that is set up exits 3 (kzsync and kzsyncd), a DIR
#     without a replica exits 3;
#   - sync against a stopped server exits 4 with one line on stderr;
#   - a device not yet added, a revoked device and a device that pins
#     another server key are refused (5) with one line on stderr;
#   - `kzsync run` against a stopped server keeps retrying and stops
#     cleanly (exit 0) on SIGTERM.
# The server listens on ::1 when the machine has IPv6 loopback.
#
# `kzsync member add|revoke|list --help` exited 2 once; that is fixed and
# fails this test again (KZ_IT_STRICT=0 only logs it).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kz_setup cli_contract "$@"
strict=${KZ_IT_STRICT:-1}

# expect_rc WHAT RC CMD...: runs CMD (stdout to out.txt, stderr to
# err.txt) and checks its exit status.
expect_rc() {
    local what=$1 want=$2 got
    shift 2
    timeout -k 2 30 "$@" >out.txt 2>err.txt
    got=$?
    [ "$got" -eq "$want" ] ||
        fail "$what: exit $got, expected $want (stderr: $(head -c 300 err.txt))"
}

# one_line WHAT: err.txt is exactly one non-empty line.
one_line() {
    local n
    n=$(wc -l <err.txt)
    [ "$n" -eq 1 ] && [ -n "$(head -n 1 err.txt)" ] ||
        fail "$1: stderr has $n lines, expected one: $(head -c 400 err.txt)"
}

known_bug() {
    if [ "$strict" = 1 ]; then
        fail "$*"
    fi
    log "KNOWN PRODUCT BUG (not failed; KZ_IT_STRICT=1 fails it): $*"
}

kz_use_ipv6 && log "server on ::1"

# ---- --help ------------------------------------------------------------
for cmd in "" init member sync run status digest conflicts report; do
    # shellcheck disable=SC2086
    expect_rc "kzsync $cmd --help" 0 "$KZSYNC" $cmd --help
    grep -q '^usage: kzsync' out.txt || fail "kzsync $cmd --help: no usage on stdout"
done
for sub in add revoke list; do
    timeout 10 "$KZSYNC" member "$sub" --help >out.txt 2>err.txt
    rc=$?
    if [ $rc -ne 0 ] || ! grep -q '^usage: kzsync member' out.txt; then
        known_bug "kzsync member $sub --help exits $rc with the usage on stderr (expected 0, usage on stdout)"
    fi
done
for cmd in "" init trust run; do
    # shellcheck disable=SC2086
    expect_rc "kzsyncd $cmd --help" 0 "$KZSYNCD" $cmd --help
    grep -q '^usage: kzsyncd' out.txt || fail "kzsyncd $cmd --help: no usage on stdout"
done
expect_rc "kzsync --version" 0 "$KZSYNC" --version

# ---- the network, on which the rest runs --------------------------------
# kzsyncd init: the server key is the last line of stdout.
next_port
KZ_SRV_DIR=$KZ_WORK/srv
expect_rc "kzsyncd init" 0 "$KZSYNCD" init "$KZ_SRV_DIR" --listen "$(kz_addr)"
KZ_SRV_KEY=$(tail -n 1 out.txt)
[[ $KZ_SRV_KEY =~ ^kzserver1\.[A-Za-z0-9_-]+$ ]] || fail "kzsyncd init: last line '$KZ_SRV_KEY'"
expect_rc "kzsyncd init again" 3 "$KZSYNCD" init "$KZ_SRV_DIR" --listen "$(kz_addr)"
one_line "kzsyncd init again"
expect_rc "kzsync init --create-network" 0 "$KZSYNC" init land --site LAND --device land-1 \
    --server "$(kz_addr)" --server-key "$KZ_SRV_KEY" --create-network
KZ_ADMIN_KEY=$(tail -n 1 out.txt)
[[ $KZ_ADMIN_KEY =~ ^kzadmin1\.[A-Za-z0-9_-]+$ ]] || fail "init --create-network: last line '$KZ_ADMIN_KEY'"
expect_rc "kzsync init into a set-up DIR" 3 "$KZSYNC" init land --site LAND --device land-2 \
    --server "$(kz_addr)" --server-key "$KZ_SRV_KEY" --create-network
one_line "kzsync init into a set-up DIR"
[ "$(tail -n 1 out.txt 2>/dev/null)" == "" ] || fail "a failed init printed to stdout"
expect_rc "kzsyncd trust" 0 "$KZSYNCD" trust "$KZ_SRV_DIR" "$KZ_ADMIN_KEY"

# ---- server stopped: exit 4, one line ---------------------------------
t0=$SECONDS
expect_rc "sync against a stopped server" 4 "$KZSYNC" sync land
one_line "sync against a stopped server"
[ $((SECONDS - t0)) -le 5 ] || fail "sync against a stopped server took $((SECONDS - t0)) s"

for ((attempt = 0; attempt < 10; attempt++)); do
    srv_start && break
    grep -q "address already in use" "$KZ_SRV_DIR.log" || fail "kzsyncd does not start"
    next_port
    conf_set "$KZ_SRV_DIR" listen "$(kz_addr)"
    sql land/replica.db "UPDATE kz_meta SET value = '$(kz_addr)' WHERE key = 'server'" ||
        fail "cannot move land to port $KZ_PORT"
done
srv_alive || fail "kzsyncd does not listen"
expect_rc "first sync of the state office" 0 "$KZSYNC" sync land
sql land/replica.db <"$KZ_DATA/01_reference.sql" || fail "reference data"
expect_rc "sync land" 0 "$KZSYNC" sync land

# ---- join request: last line; refused before it is added ---------------
expect_rc "kzsync init (join)" 0 "$KZSYNC" init han --site HAN --device han-1 \
    --server "$(kz_addr)" --server-key "$KZ_SRV_KEY"
join=$(tail -n 1 out.txt)
[[ $join =~ ^kzjoin1\. ]] || fail "join request: last line '$join'"
expect_rc "sync of a device not yet added" 5 "$KZSYNC" sync han
one_line "sync of a device not yet added"
expect_rc "member add" 0 "$KZSYNC" member add land "$join" --role site
expect_rc "sync of a device added but not yet uploaded" 5 "$KZSYNC" sync han
one_line "sync of a device added but not yet uploaded"
expect_rc "sync land (roster)" 0 "$KZSYNC" sync land
expect_rc "sync of an added device" 0 "$KZSYNC" sync han
expect_rc "member list" 0 "$KZSYNC" member list land
grep -q "han-1" out.txt || fail "member list does not show han-1"

# ---- digest: last line, 64 hex digits, equal after sync ----------------
expect_rc "digest" 0 "$KZSYNC" digest land --scope network
d_land=$(tail -n 1 out.txt)
[[ $d_land =~ ^[0-9a-f]{64}$ ]] || fail "digest: last line '$d_land'"
expect_rc "digest han" 0 "$KZSYNC" digest han --scope network
assert_eq "network digest han vs land" "$d_land" "$(tail -n 1 out.txt)"
expect_rc "digest (whole)" 0 "$KZSYNC" digest han
[[ $(tail -n 1 out.txt) =~ ^[0-9a-f]{64}$ ]] || fail "digest: last line '$(tail -n 1 out.txt)'"

# ---- usage errors: 2 ---------------------------------------------------
usage_cases=(
    ""
    "frobnicate"
    "sync"
    "sync land extra"
    "sync --bogus land"
    "run"
    "run land --every 0"
    "run land --every x"
    "status"
    "digest"
    "digest land --scope bogus"
    "report land"
    "report land --format pdf"
    "member"
    "member frob land"
    "member add land"
    "member add land $join"
    "member add land $join --role king"
    "member add land $join --role admin"
    "member add land garbage --role site"
    "init"
    "init x"
    "init x --site HAN --server $(kz_addr)"
    "init x --site han --server $(kz_addr) --server-key $KZ_SRV_KEY"
    "init x --site HAN --server $(kz_addr) --server-key nokey"
    "init x --site HAN --server noport --server-key $KZ_SRV_KEY"
    "init x --site HAN --server $(kz_addr) --server-key $KZ_SRV_KEY --bogus"
)
for args in "${usage_cases[@]}"; do
    # shellcheck disable=SC2086
    expect_rc "kzsync $args" 2 "$KZSYNC" $args
    [ -s err.txt ] || fail "kzsync $args: nothing on stderr"
done
[ ! -e x ] || fail "a refused init left x/ behind"
for args in "" "frob" "init" "trust" "trust $KZ_SRV_DIR" "trust $KZ_SRV_DIR notakey" \
    "run" "run a b" "init y --listen nope"; do
    # shellcheck disable=SC2086
    expect_rc "kzsyncd $args" 2 "$KZSYNCD" $args
done

# ---- no replica: 3 -----------------------------------------------------
for cmd in sync status digest conflicts "member list"; do
    # shellcheck disable=SC2086
    expect_rc "kzsync $cmd on a DIR without replica" 3 "$KZSYNC" $cmd nodir
    one_line "kzsync $cmd on a DIR without replica"
done
expect_rc "kzsync report on a DIR without replica" 3 "$KZSYNC" report nodir --format csv
expect_rc "kzsyncd run on a DIR that is not set up" 3 "$KZSYNCD" run nodir

# ---- refused: 5 --------------------------------------------------------
# A device that pins another server's key: the channel fails before the
# device says who it is.
other_key=$("$KZSYNCD" init other --listen "127.0.0.1:1" 2>/dev/null | tail -n 1)
expect_rc "init with a foreign server key" 0 "$KZSYNC" init ol --site OL --device ol-1 \
    --server "$(kz_addr)" --server-key "$other_key"
expect_rc "sync pinning another server key" 5 "$KZSYNC" sync ol
one_line "sync pinning another server key"
# A revoked device.
expect_rc "member revoke" 0 "$KZSYNC" member revoke land han-1
expect_rc "sync land (revocation)" 0 "$KZSYNC" sync land
expect_rc "sync of a revoked device" 5 "$KZSYNC" sync han
one_line "sync of a revoked device"
grep -q "han-1.*REVOKED" <("$KZSYNC" member list land 2>/dev/null) || fail "member list: han-1 not REVOKED"

# ---- run: retries while the server is down, SIGTERM stops it (exit 0) --
srv_stop || fail "kzsyncd did not stop cleanly on SIGTERM"
kz_bg "$KZSYNC" run land --every 1 2>run.err
run_pid=$KZ_LAST_PID
wait_until 10 grep -q "retrying in" run.err || fail "kzsync run does not report its retries: $(cat run.err)"
kill -0 "$run_pid" 2>/dev/null || fail "kzsync run gave up while the server is down"
kz_stop "$run_pid" TERM
rc=$?
assert_eq "kzsync run exit status after SIGTERM" 0 "$rc"
kz_done
