#!/usr/bin/env bash
# security.revocation: a revoked device is out, and what is written after
# its revocation is sealed under keys it never had.
#
# A second Hannover device HAN2 joins and syncs everything; the state
# office revokes it (kzsync member revoke land han2-1; kzsync sync land).
# Then:
#  - HAN2's sync is refused (exit 5, the server refuses the device);
#  - HAN, OL, LG and LAND keep syncing, and LAND still gets HAN's data;
#  - data HAN writes after the revocation (a site:HAN and a private:HAN
#    change) is stored under epoch 2 of site:HAN and private:HAN (headers
#    decoded from the server's store), HAN holds epoch 2 of both, HAN2
#    only epoch 1;
#  - none of HAN2's keys opens those new changesets (HAN's do).
#
# HAN is made with a signing key in the middle of the range and HAN2 with
# one above it (bounded retries), so that HAN stays the
# private:HAN key holder (see revocation_holder.sh for the other case).
# Set SEC_HAN2_LOWER=1 to run this with HAN2 below HAN instead.
. "$(dirname "$0")/seclib.sh"
sec_setup "${SEC_NAME:-revocation}" "$@"

SEC_MID_KEY=han sample_network
DB=srv/store.db
sign_pk() { od -An -tx1 -j20 -N32 "$1/identity.key" | tr -d ' \n'; }
HAN_PK=$(sign_pk han)
want=${SEC_HAN2_LOWER:-0}
for ((i = 0; i < 40; i++)); do
    rm -rf han2
    req=$(kz init han2 --site HAN --device han2-1 --server "$CLIENT_ADDR" \
        --server-key "$SRV_KEY" 2>/dev/null | tail -n 1) || fail "init han2"
    pk=$(sign_pk han2)
    if [ "$want" -eq 1 ]; then [[ "$pk" < "$HAN_PK" ]] && break; else [[ "$pk" > "$HAN_PK" ]] && break; fi
done
[ "$i" -lt 40 ] || fail "no HAN2 key on the wanted side of HAN's"
kz member add land "$req" --role site >/dev/null 2>&1 || fail "member add han2"
log "HAN2 signing key is $([ "$want" -eq 1 ] && echo below || echo above) HAN's"
ksync land
ksync han
ksync han2
ksync han   # whatever HAN2 had to share
ksync han2
for dir in ol lg land; do ksync "$dir"; done
LINDENHOF="SELECT count(*) FROM institution WHERE name LIKE 'Kinder- und Jugendklinik Lindenhof%'"
assert_eq "HAN2 has HAN's institutions" 1 "$(scalar han2/replica.db "$LINDENHOF")"
[ "$(scalar han2/replica.db "SELECT count(*) FROM contact")" -ge 1 ] || fail "HAN2 has no contacts"
epochs() { sql "$1/replica.db" "SELECT scope || '=' || max(epoch) FROM kz_scope_key GROUP BY scope ORDER BY scope" 2>/dev/null | tr '\n' ' '; }
log "keys before the revocation: HAN2 $(epochs han2)| HAN $(epochs han)"
assert_eq "HAN2's digest of site:HAN" "$(kz digest han --scope site:HAN | tail -n 1)" \
    "$(kz digest han2 --scope site:HAN | tail -n 1)"

# ---- revoke ---------------------------------------------------------
kz member revoke land han2-1 >/dev/null 2>&1 || fail "member revoke"
ksync land
sync_expect_refused han2 "refused|revoked|not in the roster"
for dir in han ol lg land; do ksync "$dir"; done

# ---- HAN writes after the revocation ------------------------------------
INST=$(scalar han/replica.db "SELECT id FROM institution WHERE name LIKE 'Kinder- und Jugendklinik Lindenhof%'")
CONTACT=$(scalar han/replica.db "SELECT id FROM contact ORDER BY id LIMIT 1")
sql han/replica.db "UPDATE institution SET website = 'https://nach-widerruf.example' WHERE id = '$INST';
    UPDATE contact SET job_title = 'Nach dem Widerruf' WHERE id = '$CONTACT'" || fail "HAN's writes"
ksync han
for dir in land ol lg; do ksync "$dir"; done
assert_eq "LAND has HAN's write after the revocation" 1 \
    "$(scalar land/replica.db "SELECT count(*) FROM institution WHERE website = 'https://nach-widerruf.example'")"
assert_eq "LAND and HAN agree on site:HAN" "$(kz digest han --scope site:HAN | tail -n 1)" \
    "$(kz digest land --scope site:HAN | tail -n 1)"
sync_expect_refused han2 "refused|revoked|not in the roster"

log "keys after: HAN2 $(epochs han2)| HAN $(epochs han)"
for scope in site:HAN private:HAN; do
    assert_eq "HAN2's newest $scope epoch" 1 \
        "$(scalar han2/replica.db "SELECT max(epoch) FROM kz_scope_key WHERE scope = '$scope'")"
    assert_eq "HAN's newest $scope epoch" 2 \
        "$(scalar han/replica.db "SELECT max(epoch) FROM kz_scope_key WHERE scope = '$scope'")"
    seq=$(scalar "$DB" "SELECT max(server_seq) FROM kzs_cs WHERE scope = '$scope'")
    h=$(st hdr "$DB" "$scope" "$seq") || fail "hdr: $h"
    log "newest $scope changeset at the server: $seq: ${h% author=*}"
    echo "$h" | grep -q " epoch=2 " || fail "the newest $scope changeset is not under epoch 2: $h"
    out=$(st tryopen han2 "$DB" "$scope" "$seq") || fail "tryopen: $out"
    echo "$out" | grep -Eq "^keys [1-9][0-9]* opened 0\$" || fail "HAN2's keys open $scope $seq: $out"
    out=$(st tryopen han "$DB" "$scope" "$seq") || fail "tryopen: $out"
    echo "$out" | grep -Eq "opened 1\$" || fail "control: HAN's keys on $scope $seq: $out"
    # and HAN2 could open the changesets before the revocation (control)
    out=$(st tryopen han2 "$DB" "$scope" 1) || fail "tryopen: $out"
    echo "$out" | grep -Eq "opened 1\$" || fail "control: HAN2's keys on $scope 1: $out"
done
log "what HAN wrote after the revocation is sealed under epoch 2, which HAN2 never had"
sec_done
