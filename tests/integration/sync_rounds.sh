#!/usr/bin/env bash
# integration.sync_rounds: what a sync round must survive.
#   A. `kzsync run` at HAN stays up and in sync while the state office
#      enrolls a second HAN device that then writes: every round refreshes
#      the roster and the keys before it pulls (it used to stop for good
#      with "its author is not in the roster").
#   B. The admin's roster upload stored by the server, but not noted as
#      done (a crash between the two): the next sync finds it there and
#      goes on (it used to be refused for ever: "the server has this
#      roster version").
#   C. A one-shot `kzsync sync` stopped by SIGTERM before its round ran
#      exits non-zero and does not say "in sync".
#   D. Two processes on one folder: a sync waits while another holds the
#      folder's lock (DIR/sync.lock), and syncs by hand beside a running
#      `kzsync run` all succeed and deliver everything.
#   E. A `kzsync run` whose round hangs (the server stopped with SIGSTOP)
#      stops on SIGTERM within seconds, and loses nothing.
#   F. A folder restored from an older backup: the server serves back this
#      device's changesets the folder does not have; the sync stops with
#      the reason (exit 5) instead of moving its cursor past them.
#   G. `kzsync run` facing a server whose key is not the pinned one stops
#      (exit 5) instead of retrying for ever.
#   H. A key envelope whose sealer was revoked before the recipient fetched
#      it is skipped (with a warning); the recipient's syncs go on.
#   I. A device's own pushes are not pulled back when nothing lies between
#      (its cursor follows the acknowledgement), and are when another
#      device's changeset came first: nothing is skipped.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kz_setup sync_rounds "$@"

net_create
sql land/replica.db <"$KZ_DATA/01_reference.sql" || fail "reference data"
kz sync land 2>/dev/null || fail "sync land"
site_join han HAN
kz sync land 2>/dev/null || fail "sync land (roster)"
kz sync han 2>/dev/null || fail "first sync han"

# ---- A: a run that outlives an enrolment ----------------------------------
kz_bg "$KZSYNC" run han --every 300 2>run-han.err
run_han=$KZ_LAST_PID
wait_until 10 bash -c "grep -q ': han-1 (site' '$KZ_SRV_DIR.log'" ||
    fail "kzsync run han does not connect"
site_join han2 HAN
kz sync land 2>/dev/null || fail "sync land (han2 enrolled)"
kz sync han2 2>/dev/null || fail "first sync han2"
add_trainings han2 HAN t2 3 || fail "han2 writes"
kz sync han2 2>/dev/null || fail "sync han2"
wait_until 20 bash -c "[ \$(sqlite3 han/replica.db \"SELECT count(*) FROM training WHERE id LIKE 't2-%'\") = 3 ]" ||
    fail "han's run did not pull han2's rows: $(tail -n 3 run-han.err)"
kill -0 "$run_han" 2>/dev/null || fail "kzsync run han stopped: $(tail -n 3 run-han.err)"
# and its own writes still go out
add_trainings han HAN t1 2 || fail "han writes"
wait_until 20 bash -c "timeout 30 '$KZSYNC' sync han2 2>/dev/null && [ \$(sqlite3 han2/replica.db \"SELECT count(*) FROM training WHERE id LIKE 't1-%'\") = 2 ]" ||
    fail "han's run did not push its rows: $(tail -n 3 run-han.err)"
kz_stop "$run_han" || fail "kzsync run han did not stop cleanly on SIGTERM"
log "A: kzsync run at HAN pulled a device enrolled after it started"

# ---- B: the roster upload was stored, but not noted ------------------------
sql land/replica.db "UPDATE kz_meta SET value = '1' WHERE key = 'roster_dirty'" ||
    fail "mark the roster dirty"
kz sync land 2>sync-land.err || fail "sync land after an unnoted upload: $(cat sync-land.err)"
assert_eq "roster_dirty after the sync" 0 \
    "$(sql land/replica.db "SELECT value FROM kz_meta WHERE key = 'roster_dirty'")"
log "B: an upload the server holds already is noted, not refused"

# ---- C: interrupted before the round ---------------------------------------
add_trainings han HAN t3 1 || fail "han writes"
kill -STOP "$KZ_SRV_PID"
kz_bg "$KZSYNC" sync han 2>sync-han.err
p=$KZ_LAST_PID
sleep 1
kill -TERM "$p"
rc=0
wait_until 10 bash -c "! kill -0 $p 2>/dev/null" || rc=1
kill -CONT "$KZ_SRV_PID"
[ "$rc" = 0 ] || fail "kzsync sync did not stop on SIGTERM"
kz_stop "$p"
rc=$?
[ "$rc" != 0 ] || fail "kzsync sync interrupted before its round exited 0: $(cat sync-han.err)"
grep -q "in sync" sync-han.err && fail "an interrupted sync says 'in sync': $(cat sync-han.err)"
grep -q "interrupted" sync-han.err || fail "no reason given: $(cat sync-han.err)"
kz sync han 2>/dev/null || fail "sync han after the interruption"
log "C: an interrupted one-shot sync exits $rc: $(tail -n 1 sync-han.err)"

# ---- D: two processes on one folder ----------------------------------------
# A sync waits while another process holds the folder's lock ...
kz_bg flock han/sync.lock sleep 2
holder=$KZ_LAST_PID
sleep 0.2
add_trainings han HAN d0 1 || fail "han writes"
t0=$(date +%s%N)
kz sync han 2>sync-d.err || fail "sync han while the lock was held: $(cat sync-d.err)"
ms=$((($(date +%s%N) - t0) / 1000000))
kz_stop "$holder"
[ "$ms" -ge 1500 ] || fail "kzsync sync did not wait for the lock (done in $ms ms)"
# ... and syncs by hand beside a running `kzsync run` all succeed.
kz_bg "$KZSYNC" run han --every 300 2>run-han-d.err
run_han=$KZ_LAST_PID
for i in $(seq 1 15); do
    add_trainings han HAN "d$i" 3 || fail "han writes ($i)"
    kz sync han 2>>sync-d.err || fail "sync han beside its run ($i): $(tail -n 1 sync-d.err)"
done
kill -0 "$run_han" 2>/dev/null || fail "kzsync run han stopped: $(tail -n 3 run-han-d.err)"
kz_stop "$run_han" || fail "kzsync run han did not stop cleanly"
kz sync han2 2>/dev/null || fail "sync han2"
assert_eq "rows of the d rounds at han2" 46 \
    "$(sql han2/replica.db "SELECT count(*) FROM training WHERE id LIKE 'd%'")"
log "D: a held lock was waited for ($ms ms); 15 syncs beside a run, all in"

# ---- E: a run stopped while the server hangs in its round -----------------
kz_bg "$KZSYNC" run han --every 300 2>run-han-e.err
run_han=$KZ_LAST_PID
sleep 1
kill -STOP "$KZ_SRV_PID"
add_trainings han HAN e 1 || fail "han writes"
sleep 1.5 # the run starts a round, which waits for the server
t0=$(date +%s%N)
kz_stop "$run_han"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$KZ_SRV_PID"
[ "$rc" = 0 ] || fail "kzsync run stopped with status $rc: $(tail -n 2 run-han-e.err)"
[ "$ms" -lt 8000 ] || fail "kzsync run took $ms ms to stop with the server hanging"
kz sync han 2>/dev/null || fail "sync han after the hung round"
kz sync han2 2>/dev/null || fail "sync han2"
assert_eq "the row written during the hung round, at han2" 1 \
    "$(sql han2/replica.db "SELECT count(*) FROM training WHERE id = 'e-1'")"
log "E: a run in a hung round stopped in $ms ms; nothing lost"

# ---- F: a folder restored from an older backup -----------------------------
kz sync han 2>/dev/null || fail "sync han before the backup"
cp -a han han-backup || fail "backup"
add_trainings han HAN f 5 || fail "han writes"
kz sync han 2>/dev/null || fail "sync han after writing"
rm -rf han && mv han-backup han
cur0=$(sql han/replica.db "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN'")
rc=0
kz sync han 2>sync-f.err || rc=$?
assert_eq "exit status of a sync of a restored folder" 5 "$rc"
grep -q "restored from a backup" sync-f.err || fail "no reason given: $(cat sync-f.err)"
assert_eq "site:HAN cursor of the restored folder" "$cur0" \
    "$(sql han/replica.db "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN'")"
log "F: a restored folder is told so: $(tail -n 1 sync-f.err)"

# ---- G: kzsync run facing a server that is not the pinned one --------------
other=$(timeout 30 "$KZSYNCD" init other-srv --listen 127.0.0.1:1 2>/dev/null | tail -n 1)
[ -n "$other" ] || fail "kzsyncd init other-srv"
cp -a han2 han-wrongkey || fail "copy han2"
sql han-wrongkey/replica.db "UPDATE kz_meta SET value = '$other' WHERE key = 'server_key'" ||
    fail "pin another server key"
kz_bg "$KZSYNC" run han-wrongkey 2>run-wrongkey.err
p=$KZ_LAST_PID
wait_until 10 bash -c "! kill -0 $p 2>/dev/null" ||
    fail "kzsync run kept retrying a server that is not the pinned one: $(tail -n 2 run-wrongkey.err)"
kz_stop "$p"
rc=$?
assert_eq "exit status of a run facing another server" 5 "$rc"
log "G: a run facing another server stops: $(tail -n 1 run-wrongkey.err)"

# ---- H: a key envelope from a device revoked since --------------------------
# lg (the first LG device, holder of the private:LG key) seals it to a
# second device lg2; lg-1 is revoked before lg2 first fetches its keys.
# lg2 must skip that envelope (its sealer may hand out nothing now) and go
# on as the site's remaining device, not fail every later sync.
site_join lg LG
kz sync land 2>/dev/null || fail "sync land (lg enrolled)"
kz sync lg 2>/dev/null || fail "first sync lg"
site_join lg2 LG
kz sync land 2>/dev/null || fail "sync land (lg2 enrolled)"
kz sync lg 2>/dev/null || fail "sync lg (seals private:LG to lg2)"
kz member revoke land lg-1 >/dev/null 2>&1 || fail "revoke lg-1"
kz sync land 2>/dev/null || fail "sync land (lg-1 revoked)"
for i in 1 2; do
    kz sync lg2 2>>sync-h.err || fail "sync lg2 ($i) after its key's sealer was revoked: $(tail -n 1 sync-h.err)"
done
grep -q "skipped a key envelope" sync-h.err || fail "no warning about the skipped envelope: $(cat sync-h.err)"
log "H: lg2 syncs past an envelope of a revoked sealer"

# ---- I: own pushes are not pulled back ------------------------------------
# (han is the restored folder of F now: han2 and a new device han3.)
site_join han3 HAN
kz sync land 2>/dev/null || fail "sync land (han3 enrolled)"
kz sync han2 2>/dev/null || fail "sync han2 (seals private:HAN to han3)"
kz sync han3 2>/dev/null || fail "first sync han3"
kz sync han2 2>/dev/null || fail "sync han2 before I"
add_trainings han2 HAN t6 2 || fail "han2 writes"
kz sync han2 2>sync-i.err || fail "sync han2 (I): $(cat sync-i.err)"
grep -q "pushed [1-9][0-9]*, received 0 changesets" sync-i.err ||
    fail "han2's own pushes came back: $(tail -n 1 sync-i.err)"
# han3's changesets are stored before han2's next ones: han2 pulls them.
add_trainings han3 HAN t7 3 || fail "han3 writes"
kz sync han3 2>/dev/null || fail "sync han3 (I)"
add_trainings han2 HAN t8 1 || fail "han2 writes (2)"
kz sync han2 2>sync-i2.err || fail "sync han2 (I, 2): $(cat sync-i2.err)"
assert_eq "han3's rows at han2" 3 "$(count_trainings han2 "id LIKE 't7-%'")"
grep -q "received 0 changesets" sync-i2.err &&
    fail "han2 skipped han3's changesets: $(tail -n 1 sync-i2.err)"
kz sync han3 2>/dev/null || fail "sync han3 (I, 2)"
assert_eq "han2's rows at han3" 3 "$(count_trainings han3 "id LIKE 't6-%' OR id LIKE 't8-%'")"
for sc in site:HAN private:HAN; do
    assert_eq "han2 and han3 ($sc)" "$(digest han2 $sc)" "$(digest han3 $sc)"
done
log "I: own pushes followed, not pulled back: $(tail -n 1 sync-i.err)"
kz_done
