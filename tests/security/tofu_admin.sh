#!/usr/bin/env bash
# security.tofu_admin — a dishonest server operator against a new device.
#
# A new device learns the network's admin key from the first roster the
# (pinned) server serves, provided that roster lists the device (ctx.c
# kzc_set_roster, PROTOCOL.md "A sync round").  The server operator holds
# the server key, and a join request is public (it is read out over the
# phone; it says nothing secret).  So the operator, before the new device's
# first sync, runs kzsyncd with the same server key but a network of its
# own: its own admin key, a roster listing the new device (from its join
# request), and a site:HAN key the operator made.  The device pins the
# operator's admin key, accepts the operator's site:HAN key and seals its
# site data with it: the operator reads it.  Here the expected, secure
# behaviour is asserted: the device must not end up trusting any admin key
# but the network's, and the operator must not read HAN's records.
#
# The fix: the admin key is bound at enrolment (`kzsync init …
# --admin-key`), so the device refuses a roster signed by any other key.
# (Without --admin-key, init warns that the first roster is trusted.)
. "$(dirname "$0")/seclib.sh"
sec_setup tofu_admin "$@"

net_create
sql land/replica.db <"$SEC_DATA/01_reference.sql" || fail "reference data"
ksync land
req=$(kz init han --site HAN --device han-1 --server "$CLIENT_ADDR" \
    --server-key "$SRV_KEY" --admin-key "$ADMIN_KEY" 2>/dev/null |
    tail -n 1) || fail "init han"
kz member add land "$req" --role site >/dev/null 2>&1 || fail "member add han"
ksync land
log "the state office enrolled han-1 (admin $ADMIN_KEY)"

# The operator swaps in its own network, same server key, same address.
srv_stop || fail "kzsyncd did not stop cleanly"
mkdir evilsrv && cp "$SRV_DIR/server.key" "$SRV_DIR/kzsyncd.conf" evilsrv/ || fail "copy"
sed -i "/^admin_key *=/d" evilsrv/kzsyncd.conf
chmod 700 evilsrv
REAL_SRV_DIR=$SRV_DIR
SRV_DIR=$SEC_WORK/evilsrv
EVIL_KEY=$(kz init evil --site LAND --device evil-1 --server "$CLIENT_ADDR" \
    --server-key "$SRV_KEY" --create-network 2>/dev/null | tail -n 1) || fail "init evil"
"$KZSYNCD" trust "$SRV_DIR" "$EVIL_KEY" 2>/dev/null || fail "trust evil"
srv_restart
ksync evil
sql evil/replica.db <"$SEC_DATA/01_reference.sql" || fail "evil reference data"
ksync evil
kz member add evil "$req" --role site >/dev/null 2>&1 || fail "evil member add"
ksync evil

# The new device's first sync, its records, its next sync.
out=$(kz sync han 2>&1)
rc=$?
log "han-1's first sync against the operator's network: exit $rc $out"
pinned=$(scalar han/replica.db "SELECT value FROM kz_meta WHERE key = 'admin_key'")
if [ "$rc" -eq 0 ]; then
    sql han/replica.db <"$SEC_DATA/10_site_hannover.sql" || fail "load HAN"
    kz sync han >/dev/null 2>&1
    kz sync evil >/dev/null 2>&1
fi
leaked=$(scalar evil/replica.db "SELECT count(*) FROM institution WHERE name LIKE 'Kinder- und Jugendklinik Lindenhof%'")
log "han-1 pinned admin key: ${pinned:-none}; HAN institutions the operator reads: ${leaked:-0}"
[ "$pinned" == "$EVIL_KEY" ] && fail "han-1 pinned the operator's admin key"
[ "${leaked:-0}" -eq 0 ] || fail "the operator reads HAN's records"
SRV_DIR=$REAL_SRV_DIR
sec_done
