#!/usr/bin/env bash
# security.withholding: nobody can silently drop or replay a change.
#
# HAN writes the same cell three times, syncing after each, so site:HAN
# holds four changesets of HAN (author_seq 1..4; v2, v3, v4 of the
# Lindenhof clinic's website).  Then, with the server stopped, its store
# is edited as a hostile server would:
#  - gap: changeset 3 is deleted (nothing renumbered).  An observer that
#    has not pulled site:HAN yet gets 1, 2 and 4: its sync fails (non-zero
#    exit) naming the missing changeset ("… missing", the engine's ESEQ),
#    its site:HAN cursor stays before 4 and the website stays at what it
#    had applied (v2, never v4 on top of a hole).  With the changeset back,
#    it catches up (v4).
#  - replay: changeset 2 is served again as the scope's newest (a copy with
#    a new server_seq; the store's uniqueness on author_seq is dropped for
#    this).  HAN, LAND and a fresh observer skip it as a duplicate: their
#    syncs succeed, the website stays v4, LAND's digest is unchanged and
#    all agree on site:HAN.
. "$(dirname "$0")/seclib.sh"
sec_setup withholding "$@"

sample_network
DB=srv/store.db
INST=$(scalar han/replica.db "SELECT id FROM institution WHERE name LIKE 'Kinder- und Jugendklinik Lindenhof%'")
[ -n "$INST" ] || fail "no Lindenhof at HAN"
for v in v2 v3 v4; do
    sql han/replica.db "UPDATE institution SET website = 'https://lindenhof-$v.example' WHERE id = '$INST'" ||
        fail "write $v"
    ksync han
done
ksync land
website() { scalar "$1/replica.db" "SELECT website FROM institution WHERE id = '$INST'"; }
assert_eq "LAND's website" "https://lindenhof-v4.example" "$(website land)"
HAN_PK=$(od -An -tx1 -j20 -N32 han/identity.key | tr -d ' \n' | tr a-f A-F)
assert_eq "HAN's site:HAN changesets" "1 2 3 4" \
    "$(sql "$DB" "SELECT author_seq FROM kzs_cs WHERE scope = 'site:HAN' AND hex(author) = '$HAN_PK' ORDER BY server_seq" | tr '\n' ' ' | sed 's/ $//')"
S3=$(scalar "$DB" "SELECT server_seq FROM kzs_cs WHERE scope = 'site:HAN' AND hex(author) = '$HAN_PK' AND author_seq = 3")
S4=$(scalar "$DB" "SELECT server_seq FROM kzs_cs WHERE scope = 'site:HAN' AND hex(author) = '$HAN_PK' AND author_seq = 4")
join obs LAND obs-1 observer
join obs2 LAND obs2-1 observer
ksync land
LAND_DIGEST=$(kz digest land | tail -n 1)
SITE_DIGEST=$(kz digest land --scope site:HAN | tail -n 1)

srv_stop || fail "kzsyncd did not stop cleanly"
cp "$DB" store.orig || fail "backup"

# ---- gap ------------------------------------------------------------
sql "$DB" "DELETE FROM kzs_cs WHERE scope = 'site:HAN' AND server_seq = $S3" || fail "delete"
srv_restart
out=$(kz sync obs 2>&1)
rc=$?
[ "$rc" -ne 0 ] || fail "obs synced over a withheld changeset: $out"
echo "$out" | grep -q "missing" || fail "obs's error does not name the gap: $out"
echo "$out" | grep -Eq "changeset 4 of this author in site:HAN arrived after 2: 1 missing" ||
    fail "obs's error is not precise: $out"
log "withheld changeset: sync exit $rc: $out"
cur=$(scalar obs/replica.db "SELECT coalesce(max(server_seq), 0) FROM kz_cursor WHERE scope = 'site:HAN'")
[ "$cur" -lt "$S4" ] || fail "obs's cursor moved past the hole ($cur)"
assert_eq "obs's website over the hole" "https://lindenhof-v2.example" "$(website obs)"
out=$(kz sync obs 2>&1) && fail "a second sync over the hole succeeded: $out"
srv_stop || fail "kzsyncd did not stop cleanly"
cp store.orig "$DB" && rm -f "$DB-wal" "$DB-shm" || fail "restore"
srv_restart
ksync obs
assert_eq "obs's website with the changeset back" "https://lindenhof-v4.example" "$(website obs)"
assert_eq "obs's site:HAN digest" "$SITE_DIGEST" "$(kz digest obs --scope site:HAN | tail -n 1)"
log "the gap is refused, and closed once the changeset is served"

# ---- replay -----------------------------------------------------------
srv_stop || fail "kzsyncd did not stop cleanly"
sql "$DB" "BEGIN;
CREATE TABLE kzs_cs_x(id INTEGER PRIMARY KEY, scope TEXT NOT NULL,
    server_seq INTEGER NOT NULL, author BLOB NOT NULL, author_seq INTEGER NOT NULL,
    sig BLOB NOT NULL, hdr BLOB NOT NULL, body BLOB NOT NULL, UNIQUE (scope, server_seq));
INSERT INTO kzs_cs_x SELECT id, scope, server_seq, author, author_seq, sig, hdr, body FROM kzs_cs;
DROP TABLE kzs_cs;
ALTER TABLE kzs_cs_x RENAME TO kzs_cs;
INSERT INTO kzs_cs(scope, server_seq, author, author_seq, sig, hdr, body)
    SELECT scope, (SELECT max(server_seq) + 1 FROM kzs_cs WHERE scope = 'site:HAN'),
           author, author_seq, sig, hdr, body
    FROM kzs_cs WHERE scope = 'site:HAN' AND hex(author) = '$HAN_PK' AND author_seq = 2;
COMMIT;" || fail "replay a changeset in the store"
DUP=$(scalar "$DB" "SELECT max(server_seq) FROM kzs_cs WHERE scope = 'site:HAN'")
assert_eq "the replayed copy" 2 \
    "$(scalar "$DB" "SELECT author_seq FROM kzs_cs WHERE scope = 'site:HAN' AND server_seq = $DUP")"
srv_restart
for dir in han land obs obs2; do
    out=$(kz sync "$dir" 2>&1) || fail "sync $dir with a replayed changeset: $out"
    assert_eq "$dir's site:HAN cursor" "$DUP" \
        "$(scalar "$dir/replica.db" "SELECT server_seq FROM kz_cursor WHERE scope = 'site:HAN'")"
    assert_eq "$dir's website after the replay" "https://lindenhof-v4.example" "$(website "$dir")"
    assert_eq "$dir's site:HAN digest after the replay" "$SITE_DIGEST" \
        "$(kz digest "$dir" --scope site:HAN | tail -n 1)"
done
assert_eq "LAND's digest after the replay" "$LAND_DIGEST" "$(kz digest land | tail -n 1)"
assert_eq "conflicts recorded at LAND" 0 "$(scalar land/replica.db "SELECT count(*) FROM kz_conflict")"
log "a replayed changeset is skipped as a duplicate: digests unchanged, no conflicts"
sec_done
