#!/usr/bin/env bash
# integration.hostile_peers: while a real centre (HAN) writes and syncs in a
# loop, hostile peers (kz_hostile, hostile.c) attack kzsyncd:
#   - pre-handshake: 100 000 bytes of garbage; a record length of 0xffff;
#     a slowloris that sends handshake message 1 one byte per second;
#     200 idle connections; 1000 connect/close cycles;
#   - as an enrolled device (evil-1 of HAN, handshake and HELLO real): an
#     application frame declaring 4 GiB; four msgpack count bombs
#     (`dd ff ff ff ff` as the message, as a PUSH's array header, as a
#     PUSH's changeset header, as a PULL's cursor list); a record with a
#     bad tag; a session that never sends HELLO.
# Asserts: every hostile connection is closed by the server (and the log
# says why: handshake timeout within handshake_timeout_ms = 1000, LIMIT or
# PROTOCOL for the bombs, …); the server stays up with bounded RSS, no
# leaked descriptors and every session it opened closed; every round of the
# real centre succeeds within a few seconds, and its data arrives at the
# state office.
#
# Two deviations this test found are fixed and now fail it (KZ_IT_STRICT=0
# only logs them): a 4 GiB application frame must get ERROR LIMIT before
# the close, and a session without HELLO must be closed within the
# handshake timeout.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kz_setup hostile_peers "$@"
[ -x "$KZ_HOSTILE" ] || fail "no kz_hostile tool (argument 4)"
strict=${KZ_IT_STRICT:-1}
H=$KZ_HOSTILE
HS_MS=1000     # handshake_timeout_ms
IDLE_MS=4000   # idle_timeout_ms

net_create handshake_timeout_ms=$HS_MS idle_timeout_ms=$IDLE_MS
sql land/replica.db <"$KZ_DATA/01_reference.sql" || fail "reference data"
kz sync land 2>/dev/null || fail "sync land"
site_join han HAN
site_join evil HAN
kz sync land 2>/dev/null || fail "sync land (roster)"
# Either device may be HAN's key holder (lowest signing key): both sync
# before HAN writes, so that han-1 holds the private:HAN key.
kz sync han 2>/dev/null || fail "first sync of han"
kz sync evil 2>/dev/null || fail "sync evil (it is a real device of HAN)"
kz sync han 2>/dev/null || fail "second sync of han"
sql han/replica.db <"$KZ_DATA/10_site_hannover.sql" || fail "HAN data"
kz sync han 2>/dev/null || fail "sync han"

pid=$KZ_SRV_PID
sleep 0.3
rss0=$(rss_kb "$pid")
fds0=$(ls "/proc/$pid/fd" | wc -l)
log "server pid $pid: RSS ${rss0} KiB, $fds0 descriptors"

# ---- the real centre: write, sync, in a loop (bounded: 400 rounds) -------
rm -f stop-loop
real_loop() {
    local i t0 t1 rc
    for ((i = 1; i <= 400; i++)); do
        [ -e stop-loop ] && break
        add_trainings han HAN "loop$i" 5 || { echo "$i write-failed 0" >>loop.txt; continue; }
        t0=$(date +%s%N)
        timeout -k 1 20 "$KZSYNC" sync han 2>>loop.err
        rc=$?
        t1=$(date +%s%N)
        echo "$i $rc $(((t1 - t0) / 1000000))" >>loop.txt
        sleep 0.1
    done
}
kz_bg real_loop
loop_pid=$KZ_LAST_PID

peers=()   # IP:PORT of every hostile connection, and what we expect
expect=()
# hostile MODE ARGS…: runs kz_hostile (bounded) and keeps its output.
hostile() {
    local mode=$1 out rc
    shift
    out=$(timeout -k 2 60 "$H" "$mode" 127.0.0.1 "$KZ_PORT" "$@")
    rc=$?
    printf '%s\n' "$out" >>hostile.txt
    LAST_OUT=$out
    LAST_LOCAL=$(printf '%s\n' "$out" | sed -n 's/^local=//p' | head -n 1)
    log "$(printf '%s\n' "$out" | tail -n 1)"
    return $rc
}

# Pre-handshake.
hostile garbage 100000 || fail "garbage: not closed"
peers+=("$LAST_LOCAL") expect+=("handshake failed")
hostile bigrec || fail "bigrec: not closed"
peers+=("$LAST_LOCAL") expect+=("handshake failed")
hostile slowloris 10 || fail "slowloris: not closed within 10 s"
ms=$(printf '%s\n' "$LAST_OUT" | sed -n 's/.*after \([0-9]*\) ms.*/\1/p')
[ "$ms" -le $((HS_MS + 1500)) ] || fail "slowloris held for $ms ms (handshake timeout $HS_MS)"
peers+=("$LAST_LOCAL") expect+=("handshake timeout")

# As an enrolled device.
hostile bigframe evil 16 || fail "4 GiB frame: not closed"
if ! grep -q "ERROR LIMIT" <<<"$LAST_OUT"; then
    [ "$strict" = 1 ] && fail "4 GiB frame: closed without ERROR LIMIT: $LAST_OUT"
    log "KNOWN PRODUCT BUG (not failed; KZ_IT_STRICT=1 fails it): an over-limit frame length is closed without the ERROR LIMIT PROTOCOL.md requires"
fi
peers+=("$LAST_LOCAL") expect+=("LIMIT")
for v in 0 1 2 3; do
    hostile bomb evil $v || fail "count bomb $v: not closed"
    grep -qE "ERROR (LIMIT|PROTOCOL)" <<<"$LAST_OUT" || fail "count bomb $v: no ERROR LIMIT/PROTOCOL: $LAST_OUT"
    peers+=("$LAST_LOCAL") expect+=("LIMIT|PROTOCOL")
done
hostile badrec evil || fail "bad record: not closed"
peers+=("$LAST_LOCAL") expect+=(".")
# No downgrade: a device offering only newer protocol versions is told so.
hostile newversion evil || fail "new version: not closed"
grep -q "ERROR VERSION" <<<"$LAST_OUT" || fail "new version: no ERROR VERSION: $LAST_OUT"
peers+=("$LAST_LOCAL") expect+=("VERSION")
# The session state machine of PROTOCOL.md: only HELLO before HELLO; a
# PUSH whose scope is not its header's is malformed; a second KEYS_GET
# while one is answered is refused, and the session stays.
hostile pingfirst evil || fail "PING before HELLO: not closed"
grep -q "ERROR STATE" <<<"$LAST_OUT" || fail "PING before HELLO: no ERROR STATE: $LAST_OUT"
peers+=("$LAST_LOCAL") expect+=("STATE")
hostile scopediff evil || fail "PUSH scope differs from its header's: not closed"
grep -q "ERROR PROTOCOL" <<<"$LAST_OUT" || fail "PUSH scope differs: no ERROR PROTOCOL: $LAST_OUT"
peers+=("$LAST_LOCAL") expect+=("PROTOCOL")
hostile twokeys evil || fail "two KEYS_GET at once: $LAST_OUT"
# More requests at once than the server keeps pending per session: it
# stops reading for a while, and must read on (a PING after them answered).
hostile manyrget evil 100 || fail "100 ROSTER_GETs at once: $LAST_OUT"
# The last ERROR reaches the peer even with its input still unread
# (PROTOCOL.md, CLOSING: output flushed, no reset).
hostile errflood evil || fail "ERROR amid unread input: not closed"
grep -q "ERROR STATE" <<<"$LAST_OUT" || fail "ERROR amid unread input: lost: $LAST_OUT"
peers+=("$LAST_LOCAL") expect+=("STATE")
rss_mid=$(rss_kb "$pid")

# A handshake without HELLO: PROTOCOL.md wants it closed within the
# handshake timeout; it must at least be closed by the idle timeout.
hostile nohello evil $(((IDLE_MS * 2 + 3000) / 1000)) || fail "no HELLO: never closed"
ms=$(printf '%s\n' "$LAST_OUT" | sed -n 's/.*after \([0-9]*\) ms.*/\1/p')
if [ "$ms" -gt $((HS_MS + 1500)) ]; then
    if [ "$strict" = 1 ]; then
        fail "a session without HELLO was held $ms ms (handshake timeout $HS_MS ms)"
    fi
    log "KNOWN PRODUCT BUG (not failed; KZ_IT_STRICT=1 fails it): a session without HELLO is held $ms ms, handshake timeout is $HS_MS ms (closed by the idle timeout, $IDLE_MS ms)"
fi
[ "$ms" -le $((IDLE_MS * 2)) ] || fail "no HELLO: held $ms ms, beyond the idle timeout"
peers+=("$LAST_LOCAL") expect+=("timeout|TIMEOUT")

# 200 idle connections, and meanwhile 1000 connect/close cycles.
kz_bg "$H" idle 127.0.0.1 "$KZ_PORT" 200 10 >idle.txt
idle_pid=$KZ_LAST_PID
sleep 0.3
rss_idle=$(rss_kb "$pid")
# The churn pauses 20 ms after every 50 connects, so that it tests what it
# is for — nothing leaks — rather than how many sessions a burst holds at
# once (bounded by max_connections; a few KiB each since the server shares
# one read buffer).
hostile churn 1000 50 || fail "churn: $LAST_OUT"
hostile churn 1000 50 || fail "churn (second round): $LAST_OUT"
for ((i = 0; i < 150; i++)); do
    kill -0 "$idle_pid" 2>/dev/null || break
    sleep 0.1
done
kz_stop "$idle_pid"
idle_rc=$?
log "$(tail -n 2 idle.txt | head -n 1)"
[ "$idle_rc" -eq 0 ] || fail "idle connections: not all opened and closed by the server: $(cat idle.txt)"
n_hs=$(grep -c "closed: handshake timeout" "$KZ_SRV_DIR.log")
[ "$n_hs" -ge 201 ] || fail "only $n_hs sessions closed by the handshake timeout (200 idle + slowloris)"

# A few more rounds of the real centre after the storm, then stop it.
sleep 1.5
touch stop-loop
for ((i = 0; i < 300; i++)); do
    kill -0 "$loop_pid" 2>/dev/null || break
    sleep 0.1
done
kz_stop "$loop_pid"

# ---- assertions --------------------------------------------------------
srv_alive || fail "kzsyncd died"
sleep 0.5
rss1=$(rss_kb "$pid")
fds1=$(ls "/proc/$pid/fd" | wc -l)
log "RSS: before ${rss0} KiB, after the device attacks ${rss_mid} KiB, with 200 idle ${rss_idle} KiB, at the end ${rss1} KiB; descriptors $fds0 -> $fds1"
if [ "${KZ_IT_SANITIZED:-0}" = 1 ]; then
    # ASan's shadow memory and quarantine: bounds are for the plain build.
    log "sanitizer build: RSS bounds not checked"
else
    [ "$rss1" -lt $((64 * 1024)) ] || fail "server RSS ${rss1} KiB >= 64 MiB"
    [ "$rss_mid" -lt $((rss0 + 16 * 1024)) ] || fail "the device attacks grew the RSS from $rss0 to $rss_mid KiB"
fi
[ "$fds1" -le "$fds0" ] || fail "descriptors: $fds0 before, $fds1 after (leak?)"

rounds=$(wc -l <loop.txt)
bad=$(awk '$2 != 0' loop.txt | head -n 5)
[ -z "$bad" ] || fail "rounds of the real centre failed (round rc ms): $bad; $(tail -n 3 loop.err)"
slow=$(awk '$3 > 5000' loop.txt | head -n 5)
[ -z "$slow" ] || fail "rounds of the real centre took over 5 s (round rc ms): $slow"
[ "$rounds" -ge 10 ] || fail "only $rounds rounds of the real centre ran"
log "real centre: $rounds rounds, all ok, slowest $(sort -k3 -n loop.txt | tail -n 1 | awk '{print $3}') ms"

# Every hostile connection: closed, and why.
for ((i = 0; i < ${#peers[@]}; i++)); do
    p=${peers[$i]}
    [ -n "$p" ] || fail "hostile connection $i printed no local address"
    sid=$(session_of "$p")
    [ -n "$sid" ] || fail "no session of $p in the server log"
    why=$(close_reason "$sid")
    [ -n "$why" ] || fail "session $sid ($p) never closed"
    grep -qE "${expect[$i]}" <<<"$why" || fail "session $sid ($p) closed with '$why', expected ${expect[$i]}"
done
# Every session the server ever opened is closed (ids are 1, 2, 3, …).
max=$(grep -oE "^info: session [0-9]+ " "$KZ_SRV_DIR.log" | awk '{print $3}' | sort -n | tail -n 1)
closed=$(grep -cE "^info: session [0-9]+ .* closed: " "$KZ_SRV_DIR.log")
[ "$closed" -ge 2200 ] || fail "only $closed sessions logged closed"
assert_eq "sessions closed vs sessions opened" "$max" "$closed"

# The real centre's data reached the state office.
kz sync han 2>/dev/null || fail "final sync han"
kz sync land 2>/dev/null || fail "final sync land"
n_han=$(count_trainings han "id LIKE 'loop%'")
assert_eq "loop trainings at LAND" "$n_han" "$(count_trainings land "id LIKE 'loop%'")"
assert_eq "site:HAN digest LAND vs HAN" "$(digest han site:HAN)" "$(digest land site:HAN)"
# Stopped while a device keeps sending and never reads, and while another
# has a large BATCH waiting in the server's output: both sessions linger
# after ERROR SHUTDOWN; the stop must still be clean (the server's memory
# outlives every session), and the ERROR must follow the BATCH out.
add_trainings han HAN big 60000 || fail "han writes 60000 trainings"
kz sync han 2>/dev/null || fail "sync han (60000 trainings)"
kz_bg "$H" stallpull 127.0.0.1 "$KZ_PORT" evil >stallpull.txt
sp_pid=$KZ_LAST_PID
kz_bg "$H" keepsend 127.0.0.1 "$KZ_PORT" evil 5 >keepsend.txt
ks_pid=$KZ_LAST_PID
wait_until 10 grep -q ready keepsend.txt || fail "keepsend did not connect"
wait_until 10 grep -q pulled stallpull.txt || fail "stallpull did not pull"
sleep 0.3
srv_stop || fail "kzsyncd did not stop cleanly after the attacks (a device sending)"
kz_stop "$ks_pid"
wait_until 15 bash -c "! kill -0 $sp_pid 2>/dev/null" || fail "stallpull did not finish"
kz_stop "$sp_pid" || fail "queued output and its ERROR lost at the stop: $(tail -n 1 stallpull.txt)"
log "$(tail -n 1 stallpull.txt)"
kz_done
