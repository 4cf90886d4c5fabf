#!/usr/bin/env bash
# security.roster_refused: kzsyncd refuses every roster but a newer one the
# trusted admin signed, with one clear error, and keeps serving.
#
# After the sample network has synced, a site device (HAN) sends the server
# ROSTER_PUT three times over the real protocol (sectool roster):
#  - the roster in force, replayed: ERROR ROSTER "… this roster version or a
#    newer one";
#  - the same bytes with one byte of the signed body flipped: ERROR ROSTER;
#  - a roster of HAN's own making, one version newer, naming HAN's key as
#    the admin key and signed with it: ERROR ROSTER.
# After each, the server's stored roster (kzs_roster) is the same version
# and the same bytes, and HAN still syncs; then the admin's genuine next
# roster (a new member) is accepted and reaches every site.
. "$(dirname "$0")/seclib.sh"
sec_setup roster_refused "$@"

sample_network
DB=srv/store.db
stored() { scalar "$DB" "SELECT version || ':' || hex(bytes) FROM kzs_roster"; }
before=$(stored)
[ -n "$before" ] || fail "no roster stored"
log "stored roster version ${before%%:*}"

for mode in replay flipped forged; do
    out=$(st roster han "$mode" 2>&1) || fail "roster $mode: no answer: $out"
    log "roster $mode: $out"
    case $out in
    "ERROR ROSTER "*) ;;
    *) fail "roster $mode: expected ERROR ROSTER, got: $out" ;;
    esac
    [ "$mode" != replay ] || echo "$out" | grep -q "this roster version or a newer one" ||
        fail "roster replay: wrong reason: $out"
    assert_eq "stored roster after $mode" "$before" "$(stored)"
    ksync han
done
grep -q "roster refused" "$SRV_DIR.log" || fail "the server log does not say the roster was refused"

# The admin's genuine next roster still goes through.
req=$(kz init han2 --site HAN --device han2-1 --server "$CLIENT_ADDR" \
    --server-key "$SRV_KEY" --admin-key "$ADMIN_KEY" 2>/dev/null |
    tail -n 1) || fail "init han2"
kz member add land "$req" --role site >/dev/null 2>&1 || fail "member add han2"
ksync land
after=$(stored)
assert_eq "roster version after the admin's change" "$((${before%%:*} + 1))" "${after%%:*}"
ksync han   # shares private:HAN with han2-1
ksync han2
assert_eq "han sees han2 in the roster" "$(kz member list land | grep -c han2-1)" \
    "$(kz member list han | grep -c han2-1)"
sec_done
