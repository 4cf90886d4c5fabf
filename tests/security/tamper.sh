#!/usr/bin/env bash
# security.tamper: nobody can forge a change, not even the server.
#
# (a) One byte flipped in a stored changeset of site:HAN — in its sealed
#     body, its header, its signature (kzs_cs.body/hdr/sig, edited with the
#     sqlite3 shell while the server is stopped): a device that has not
#     pulled it yet (an observer enrolled for this) refuses it on sync with
#     a clear error and exit code 5, keeps its cursor, and its replica does
#     not get the data.  With the original store back it syncs (the check
#     is not vacuous).
# (b) One byte flipped in the stored roster (kzs_roster): the server
#     refuses to load it at start (log), a device that already holds the
#     roster is refused, and a device that has none refuses the tampered
#     roster (exit 5).
# (c) OL, a real member, signs a changeset for site:HAN with its own key:
#     the server refuses the PUSH (PERM) and stores nothing.  The same
#     changeset inserted into the store as the next site:HAN changeset (a
#     hostile server) is refused by HAN and by LAND on sync: its author may
#     not write site:HAN; their cursors stay.
. "$(dirname "$0")/seclib.sh"
sec_setup tamper "$@"

sample_network
# Two observers: obs pulls the tampered changesets, obs2 meets the
# tampered roster as its first roster.
join obs LAND obs-1 observer
join obs2 LAND obs2-1 observer
ksync land

DB=srv/store.db
srv_stop || fail "kzsyncd did not stop cleanly"
cp "$DB" store.orig || fail "backup"
[ -e "$DB-wal" ] && [ -s "$DB-wal" ] && fail "the store has a WAL after a clean stop"
restore() {
    srv_stop || fail "kzsyncd did not stop cleanly"
    cp store.orig "$DB" && rm -f "$DB-wal" "$DB-shm" || fail "restore"
}

SEQ=$(scalar "$DB" "SELECT max(server_seq) FROM kzs_cs WHERE scope = 'site:HAN'")
[ -n "$SEQ" ] && [ "$SEQ" -ge 1 ] || fail "no site:HAN changeset in the store"
WHERE="scope = 'site:HAN' AND server_seq = $SEQ"
BODY_LEN=$(scalar "$DB" "SELECT length(body) FROM kzs_cs WHERE $WHERE")
HDR_LEN=$(scalar "$DB" "SELECT length(hdr) FROM kzs_cs WHERE $WHERE")
log "site:HAN changeset $SEQ: header $HDR_LEN bytes, body $BODY_LEN bytes"
LINDENHOF="SELECT count(*) FROM institution WHERE name LIKE 'Kinder- und Jugendklinik Lindenhof%'"

# ---- (a) body, header, signature ------------------------------------
for col in body hdr sig; do
    case $col in
    body) off=$((BODY_LEN / 2)) ;;
    hdr) off=$HDR_LEN ;;   # last byte: the header still decodes
    sig) off=10 ;;
    esac
    flip_byte "$DB" kzs_cs "$col" "$WHERE" "$off"
    srv_restart
    sync_expect_refused obs "refused changeset $SEQ of site:HAN|does not decrypt"
    assert_eq "obs's site:HAN cursor after a tampered $col" "" \
        "$(scalar obs/replica.db "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN' AND server_seq >= $SEQ")"
    assert_eq "Lindenhof at obs after a tampered $col" 0 "$(scalar obs/replica.db "$LINDENHOF")"
    restore
done
srv_restart
ksync obs
assert_eq "Lindenhof at obs with the true store" 1 "$(scalar obs/replica.db "$LINDENHOF")"
log "(a) tampered body, header and signature refused; the true changeset applies"

# ---- (b) the roster -------------------------------------------------
restore
RLEN=$(scalar "$DB" "SELECT length(bytes) FROM kzs_roster")
flip_byte "$DB" kzs_roster bytes "id = 1" $((RLEN / 2))
srv_restart
grep -q "stored roster.*does not verify" "$SRV_DIR.log" ||
    fail "the server loaded a tampered roster without complaint"
sync_expect_refused han "refused|roster|not in the roster"
sync_expect_refused obs2 "roster refused|refused"
assert_eq "obs2 pinned no admin key" "" \
    "$(scalar obs2/replica.db "SELECT value FROM kz_meta WHERE key = 'admin_key'")"
restore
srv_restart
ksync han
ksync obs2
log "(b) tampered roster: refused by the server at start and by the clients"

# ---- (c) a member signs for a scope it may not write ------------------
before=$(scalar "$DB" "SELECT count(*) FROM kzs_cs")
out=$(st push ol site:HAN 1) || fail "sectool push: $out"
echo "$out" | grep -q "^ERROR PERM" || fail "OL's PUSH to site:HAN: expected ERROR PERM, got: $out"
log "OL pushes to site:HAN: $out"
out=$(st push ol site:OL 1) || fail "sectool push: $out"
echo "$out" | grep -q "^ERROR SEQ_GAP .*other content" ||
    fail "control: OL re-pushing its own site:OL seq 1 with other bytes: $out"
srv_stop || fail "kzsyncd did not stop cleanly"
assert_eq "changesets stored after the refused PUSH" "$before" "$(scalar "$DB" "SELECT count(*) FROM kzs_cs")"
restore

mapfile -t cs < <(st craft ol site:HAN 1 1)
[ "${#cs[@]}" -eq 4 ] || fail "sectool craft"
NEXT=$((SEQ + 1))
sql "$DB" "INSERT INTO kzs_cs(scope, server_seq, author, author_seq, sig, hdr, body)
    VALUES ('site:HAN', $NEXT, X'${cs[0]}', 1, X'${cs[3]}', X'${cs[1]}', X'${cs[2]}')" ||
    fail "insert the forged changeset"
srv_restart
for dir in han land obs; do
    cur=$(scalar "$dir/replica.db" "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN'")
    sync_expect_refused "$dir" "refused changeset $NEXT of site:HAN: its author may not write this scope"
    assert_eq "$dir's site:HAN cursor" "$cur" \
        "$(scalar "$dir/replica.db" "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN'")"
done
restore
srv_restart
for dir in han land obs; do ksync "$dir"; done
log "(c) OL's changeset for site:HAN: PUSH refused (PERM); planted in the store, refused by HAN, LAND and an observer"

# ---- (d) a tampered changeset behind a genuine one, in one batch -------
INST=$(scalar han/replica.db "SELECT id FROM institution WHERE name LIKE 'Kinder- und Jugendklinik Lindenhof%'")
sql han/replica.db "UPDATE institution SET website = 'https://echt.example' WHERE id = '$INST'" || fail "HAN's write"
ksync han
sql han/replica.db "UPDATE institution SET website = 'https://verfaelscht.example' WHERE id = '$INST'" || fail "HAN's write"
ksync han
LAST=$(scalar "$DB" "SELECT max(server_seq) FROM kzs_cs WHERE scope = 'site:HAN'")
[ "$LAST" -eq $((SEQ + 2)) ] || fail "expected HAN's two changesets at $((SEQ + 1)) and $((SEQ + 2)), got $LAST"
srv_stop || fail "kzsyncd did not stop cleanly"
cp "$DB" store.d || fail "backup"
WHERE_T="scope = 'site:HAN' AND server_seq = $LAST"
flip_byte "$DB" kzs_cs body "$WHERE_T" $(($(scalar "$DB" "SELECT length(body) FROM kzs_cs WHERE $WHERE_T") / 2))
srv_restart
WEBSITE="SELECT website FROM institution WHERE id = '$INST'"
sync_expect_refused obs "refused changeset $LAST of site:HAN: the signature does not verify"
assert_eq "obs's site:HAN cursor: the genuine changeset before the tampered one is kept" \
    "$((SEQ + 1))" "$(scalar obs/replica.db "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN'")"
assert_eq "obs holds the genuine change, not the tampered one" "https://echt.example" "$(scalar obs/replica.db "$WEBSITE")"
srv_stop || fail "kzsyncd did not stop cleanly"
cp store.d "$DB" && rm -f "$DB-wal" "$DB-shm" || fail "restore"
srv_restart
ksync obs
assert_eq "obs with the true store" "https://verfaelscht.example" "$(scalar obs/replica.db "$WEBSITE")"
log "(d) a tampered changeset after a genuine one in the same batch: the genuine one applies, the tampered one is refused"
sec_done
