#!/usr/bin/env bash
# integration.crash_safety: DESIGN.md §7 "a kill at any point loses no
# acknowledged or local change and a rerun converges", and §6 "a push is
# acknowledged only after it is durable".
#
# HAN writes training rows through the sqlite3 shell between rounds (ROWS
# per round, BIG in every fifth, so that a sync packs them in several
# steps of 8,192 log rows and a kill lands between steps; ROUNDS rounds);
# each round starts syncs and kill -9s, after a
# random delay (seeded: KZ_SEED, default 20261127), one of: HAN's
# `kzsync sync` (mid-push), LAND's `kzsync sync` (mid-pull), or kzsyncd
# while HAN and LAND sync (mid-commit); a killed server is restarted at
# once.  Afterwards, with clean syncs:
#   - every row HAN wrote is at HAN (a killed client loses no local write)
#     and at LAND (nothing written locally is missing anywhere);
#   - HAN's outbox is empty, the digests of site:HAN and network agree;
#   - the server's store holds every changeset once, author_seq and
#     server_seq without gaps, and every database passes integrity_check.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kz_setup crash_safety "$@"
SEED=${KZ_SEED:-20261127}
ROUNDS=15
ROWS=400
BIG=20000
RANDOM=$SEED
log "seed $SEED ($ROUNDS rounds of $ROWS rows, every fifth $BIG; KZ_SEED=n reruns another)"

net_create
sql land/replica.db <"$KZ_DATA/01_reference.sql" || fail "reference data"
kz sync land 2>/dev/null || fail "sync land"
site_join han HAN
kz sync land 2>/dev/null || fail "sync land (roster)"
kz sync han 2>/dev/null || fail "first sync of han"
sql han/replica.db <"$KZ_DATA/10_site_hannover.sql" || fail "HAN data"
kz sync han 2>/dev/null || fail "sync han"
kz sync land 2>/dev/null || fail "sync land"

# delay: 0..80 ms, from the seeded RNG
delay() { printf '0.%03d' $((RANDOM % 81)); }

kills_client=0 kills_server=0 kills_land=0 finished_first=0 mid_round=0
total=0
for ((r = 1; r <= ROUNDS; r++)); do
    rows=$ROWS
    ((r % 5 == 0)) && rows=$BIG
    add_trainings han HAN "cr$r" "$rows" || fail "round $r: the write at HAN failed"
    total=$((total + rows))
    n=$(count_trainings han "id LIKE 'cr%'")
    assert_eq "round $r: rows at HAN right after the write" $total "$n"
    what=$((RANDOM % 3))
    d=$(delay)
    if ((rows == BIG)); then
        # HAN's own sync, killed while it packs and pushes in steps.
        what=0
        d=$(printf '0.%03d' $((60 + RANDOM % 140)))
    fi
    case $what in
    0) # kill HAN's sync, mid-push
        kz_bg "$KZSYNC" sync han 2>/dev/null
        p=$KZ_LAST_PID
        sleep "$d"
        kill -0 "$p" 2>/dev/null || finished_first=$((finished_first + 1))
        kz_stop "$p" KILL
        kills_client=$((kills_client + 1))
        [ "$(sql han/replica.db "SELECT count(*) FROM kz_round")" = 0 ] ||
            mid_round=$((mid_round + 1))
        ;;
    1) # kill LAND's sync, mid-pull
        kz_bg "$KZSYNC" sync land 2>/dev/null
        p=$KZ_LAST_PID
        sleep "$d"
        kill -0 "$p" 2>/dev/null || finished_first=$((finished_first + 1))
        kz_stop "$p" KILL
        kills_land=$((kills_land + 1))
        ;;
    2) # kill the server while both sync, restart it
        kz_bg "$KZSYNC" sync han 2>/dev/null
        p1=$KZ_LAST_PID
        kz_bg "$KZSYNC" sync land 2>/dev/null
        p2=$KZ_LAST_PID
        sleep "$d"
        srv_stop KILL
        kills_server=$((kills_server + 1))
        srv_restart
        # the clients fail (4) or finish; bounded by KZ_CMD_TIMEOUT-like wait
        kz_stop "$p1" TERM
        kz_stop "$p2" TERM
        ;;
    esac
    # Sometimes a round in between that is not killed (a rerun after a kill).
    if ((RANDOM % 3 == 0)); then
        kz sync han 2>/dev/null || log "round $r: a plain sync of han failed (rc $?)"
    fi
done
log "kills: HAN client $kills_client ($mid_round between two steps of a build), LAND client $kills_land, server $kills_server ($finished_first syncs were done before their kill)"
[ $((kills_client + kills_land + kills_server)) -eq $ROUNDS ] || fail "not every round killed something"

# ---- clean syncs, then nothing is missing anywhere ----------------------
srv_alive || srv_restart
ok=0
for ((i = 0; i < 5; i++)); do
    if kz sync han 2>han.err && kz sync land 2>land.err && kz sync han 2>>han.err; then
        ok=1
        break
    fi
    sleep 0.5
done
[ $ok -eq 1 ] || fail "clean syncs after the kills fail: $(tail -n 2 han.err land.err)"

assert_eq "rows written at HAN, at HAN" $total "$(count_trainings han "id LIKE 'cr%'")"
assert_eq "rows written at HAN, at LAND" $total "$(count_trainings land "id LIKE 'cr%'")"
assert_eq "site:HAN digest LAND vs HAN" "$(digest han site:HAN)" "$(digest land site:HAN)"
assert_eq "network digest LAND vs HAN" "$(digest land network)" "$(digest han network)"
kz status han >status.txt 2>&1 || fail "kzsync status han"
grep -q "nothing to send" status.txt || fail "HAN still has changes to send: $(cat status.txt)"
# A HAN row changed after all that still travels (the replica is not stuck).
sql han/replica.db "UPDATE training SET participants_total = 99 WHERE id = 'cr1-1'" || fail "update"
kz sync han 2>/dev/null && kz sync land 2>/dev/null || fail "sync after the update"
assert_eq "an update after the kills at LAND" 99 \
    "$(sql land/replica.db "SELECT participants_total FROM training WHERE id = 'cr1-1'")"

# ---- the server's store and the replicas are sound ----------------------
srv_stop || fail "kzsyncd did not stop cleanly"
store=$KZ_SRV_DIR/store.db
assert_eq "store integrity" ok "$(sql "$store" "PRAGMA integrity_check")"
for dir in han land; do
    assert_eq "$dir replica integrity" ok "$(sql "$dir/replica.db" "PRAGMA integrity_check")"
done
gaps=$(sql "$store" "SELECT scope, hex(author), count(*), max(author_seq) FROM kzs_cs
                     GROUP BY scope, author HAVING count(*) != max(author_seq) OR min(author_seq) != 1")
[ -z "$gaps" ] || fail "author_seq gaps or duplicates in the store: $gaps"
gaps=$(sql "$store" "SELECT scope, count(*), max(server_seq) FROM kzs_cs
                     GROUP BY scope HAVING count(*) != max(server_seq)")
[ -z "$gaps" ] || fail "server_seq gaps in the store: $gaps"
n_cs=$(sql "$store" "SELECT count(*) FROM kzs_cs WHERE scope = 'site:HAN'")
log "store: $n_cs changesets of site:HAN, no gaps, no duplicates"
kz_done
