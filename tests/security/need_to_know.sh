#!/usr/bin/env bash
# security.need_to_know: each centre reads only what it needs.
#
#  - HAN holds no row of OL (nor LG) in any table with a site_id; a PULL of
#    site:OL or private:OL with HAN's own identity over the real protocol
#    gets ERROR PERM; HAN holds no key of site:OL / private:OL, and none of
#    its keys opens OL's sealed changesets taken from the server's store
#    (while OL's own keys do: the tool works).
#  - The state office: no row in contact, training_participant, app_user,
#    audit_log; no non-NULL private column; not the unreleased case review
#    FA-LG-2026-01, its findings or measures; no private:* key, none of its
#    keys opens a private:* changeset; a PULL of private:HAN gets PERM.
#  - An observer: its local writes to every tracked table are refused
#    (READ-ONLY), a raw PUSH with its identity is refused by the server
#    (PERM) for every kind of scope, and after its sync the store holds
#    nothing from it.
. "$(dirname "$0")/seclib.sh"
sec_setup need_to_know "$@"

sample_network
join obs LAND obs-1 observer
ksync land
ksync obs
DB=srv/store.db

site_id() { scalar land/replica.db "SELECT id FROM site WHERE code = '$1'"; }
OL_ID=$(site_id OL)
LG_ID=$(site_id LG)
HAN_ID=$(site_id HAN)
[ -n "$OL_ID" ] && [ -n "$LG_ID" ] && [ -n "$HAN_ID" ] || fail "site ids"

# Tables with a site_id column (the shipped schema), as the replica has them.
count_site_rows() { # DIR SITE_ID: rows of that site over all site tables
    local t n total=0
    for t in $(site_tables "$1"); do
        n=$(scalar "$1/replica.db" "SELECT count(*) FROM \"$t\" WHERE site_id = '$2'")
        total=$((total + n))
    done
    echo "$total"
}
site_tables() {
    sql "$1/replica.db" "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p
        WHERE m.type = 'table' AND p.name = 'site_id' AND m.name NOT LIKE 'kz%'
        AND m.name <> 'site' ORDER BY 1" 2>/dev/null
}
[ "$(site_tables han | wc -l)" -ge 15 ] || fail "too few site tables: $(site_tables han | tr '\n' ' ')"

# ---- HAN does not read OL -------------------------------------------
assert_eq "OL rows at HAN" 0 "$(count_site_rows han "$OL_ID")"
assert_eq "LG rows at HAN" 0 "$(count_site_rows han "$LG_ID")"
n=$(count_site_rows ol "$OL_ID")
[ "$n" -ge 100 ] || fail "OL holds only $n of its own rows (control)"
n=$(count_site_rows land "$OL_ID")
[ "$n" -ge 50 ] || fail "LAND holds only $n OL rows (control)"
log "HAN holds none of OL's or LG's rows (OL has $(count_site_rows ol "$OL_ID"), LAND $n)"

for scope in site:OL private:OL private:LAND; do
    out=$(st pull han "$scope")
    echo "$out" | grep -q "^ERROR PERM" || fail "HAN's PULL of $scope: expected ERROR PERM, got: $out"
done
out=$(st pull han site:HAN)
echo "$out" | grep -Eq "^BATCH [1-9]" || fail "control: HAN's PULL of site:HAN: $out"
log "HAN's PULL of site:OL / private:OL: $(st pull han site:OL)"

assert_eq "HAN's keys of OL's scopes" 0 \
    "$(scalar han/replica.db "SELECT count(*) FROM kz_scope_key WHERE scope LIKE '%:OL' OR scope LIKE '%:LG'")"
for scope in site:OL private:OL; do
    out=$(st tryopen han "$DB" "$scope" 1) || fail "tryopen: $out"
    echo "$out" | grep -Eq "^keys [1-9][0-9]* opened 0\$" || fail "HAN's keys on $scope 1: $out"
    out=$(st tryopen ol "$DB" "$scope" 1) || fail "tryopen: $out"
    echo "$out" | grep -Eq "opened 1\$" || fail "control: OL's keys on $scope 1: $out"
done
log "OL's sealed changesets, copied from the store, open with none of HAN's keys"

# ---- the state office -------------------------------------------------
for t in contact training_participant app_user audit_log; do
    assert_eq "$t rows at LAND" 0 "$(scalar land/replica.db "SELECT count(*) FROM $t")"
    n=$(scalar han/replica.db "SELECT count(*) FROM $t")
    [ "$n" -ge 1 ] || fail "control: HAN has no $t rows"
done
for tc in institution.notes network.coordinator_user_id \
    network_membership.delegate_contact_id document.file_ref \
    consultation.outcome_note case_review.summary_anonymised \
    case_review.anonymisation_checked_by; do
    t=${tc%.*}
    c=${tc#*.}
    assert_eq "non-NULL $tc at LAND" 0 \
        "$(scalar land/replica.db "SELECT count(*) FROM $t WHERE $c IS NOT NULL")"
    [ "$(scalar land/replica.db "SELECT count(*) FROM $t")" -ge 1 ] || fail "control: LAND has no $t rows"
done
# the sites have some of them (not vacuous)
n=$(scalar han/replica.db "SELECT (SELECT count(*) FROM network_membership WHERE delegate_contact_id IS NOT NULL)
    + (SELECT count(*) FROM case_review WHERE anonymisation_checked_by IS NOT NULL)
    + (SELECT count(*) FROM network WHERE coordinator_user_id IS NOT NULL)")
[ "$n" -ge 1 ] || fail "control: HAN has no private column values"
CR=$(scalar lg/replica.db "SELECT id FROM case_review WHERE review_code = 'FA-LG-2026-01'")
[ -n "$CR" ] || fail "control: LG has no FA-LG-2026-01"
assert_eq "FA-LG-2026-01 at LAND" 0 \
    "$(scalar land/replica.db "SELECT count(*) FROM case_review WHERE review_code = 'FA-LG-2026-01' OR id = '$CR'")"
for t in measure case_review_finding case_review_sector; do
    assert_eq "$t of FA-LG-2026-01 at LAND" 0 \
        "$(scalar land/replica.db "SELECT count(*) FROM $t WHERE case_review_id = '$CR'")"
done
[ "$(scalar lg/replica.db "SELECT count(*) FROM measure WHERE case_review_id = '$CR'")" -ge 1 ] ||
    fail "control: LG has no measures of FA-LG-2026-01"
assert_eq "LAND's private keys" 0 \
    "$(scalar land/replica.db "SELECT count(*) FROM kz_scope_key WHERE scope LIKE 'private:%'")"
for site in HAN OL LG; do
    out=$(st tryopen land "$DB" "private:$site" 1) || fail "tryopen: $out"
    echo "$out" | grep -Eq "^keys [1-9][0-9]* opened 0\$" || fail "LAND's keys on private:$site 1: $out"
    out=$(st pull land "private:$site")
    echo "$out" | grep -q "^ERROR PERM" || fail "LAND's PULL of private:$site: $out"
done
log "the state office holds no personal data, no private column, no unreleased review, no private key"

# ---- an observer writes nothing -----------------------------------------
tables=$(sql obs/replica.db "SELECT tbl FROM kz_track_decl ORDER BY 1" 2>/dev/null)
[ "$(echo "$tables" | wc -l)" -ge 20 ] || fail "too few tracked tables: $tables"
before=$(scalar "$DB" "SELECT count(*) FROM kzs_cs")
nrows=0
for t in $tables; do
    err=$(sql obs/replica.db "INSERT INTO \"$t\" DEFAULT VALUES" 2>&1) &&
        fail "observer: INSERT into $t succeeded"
    echo "$err" | grep -q "READ-ONLY" || fail "observer: INSERT into $t: $err"
    if [ "$(scalar obs/replica.db "SELECT count(*) FROM \"$t\"")" -gt 0 ]; then
        nrows=$((nrows + 1))
        err=$(sql obs/replica.db "DELETE FROM \"$t\"" 2>&1) && fail "observer: DELETE from $t succeeded"
        echo "$err" | grep -q "READ-ONLY" || fail "observer: DELETE from $t: $err"
        col=$(scalar obs/replica.db "SELECT name FROM pragma_table_info('$t') WHERE pk = 0 LIMIT 1")
        if [ -n "$col" ]; then
            err=$(sql obs/replica.db "UPDATE \"$t\" SET \"$col\" = \"$col\"" 2>&1) &&
                fail "observer: UPDATE of $t succeeded"
            echo "$err" | grep -q "READ-ONLY" || fail "observer: UPDATE of $t: $err"
        fi
    fi
done
[ "$nrows" -ge 10 ] || fail "observer holds rows in only $nrows tables"
log "observer: INSERT refused in $(echo "$tables" | wc -l) tables, DELETE and UPDATE in $nrows (READ-ONLY)"
for scope in network site:HAN site:LAND private:HAN private:LAND; do
    out=$(st push obs "$scope" 1)
    echo "$out" | grep -q "^ERROR PERM" || fail "observer's raw PUSH to $scope: expected ERROR PERM, got: $out"
done
log "observer's raw PUSH: $out"
ksync obs
assert_eq "observer's outbox" 0 "$(scalar obs/replica.db "SELECT count(*) FROM kz_outbox")"
srv_stop || fail "kzsyncd did not stop cleanly"
assert_eq "changesets stored after the observer's attempts" "$before" "$(scalar "$DB" "SELECT count(*) FROM kzs_cs")"
OBS_PK=$(od -An -tx1 -j20 -N32 obs/identity.key | tr -d ' \n')
[ ${#OBS_PK} -eq 64 ] || fail "observer's key"
assert_eq "changesets by the observer in the store" 0 \
    "$(scalar "$DB" "SELECT count(*) FROM kzs_cs WHERE hex(author) = upper('$OBS_PK')")"
sec_done
