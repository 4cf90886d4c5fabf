#!/usr/bin/env bash
# security.zero_knowledge: the server never sees content.
#
# The sample network of scripts/demo.sh (server, LAND, HAN, OL, LG) syncs
# entirely through a recording TCP proxy that appends every byte of every
# connection, both directions, to capture.bin.  Then no plaintext of any
# record may appear in:
#   - any file of the server's directory (store.db, -wal, -shm, conf, key),
#     read raw,
#   - the hex of every blob of the store (catches a value split across two
#     database pages),
#   - the server's log,
#   - the capture of the whole traffic.
# The strings checked: every distinctive string literal of the sample files
# (institution names, person names, e-mail addresses, phone numbers,
# streets, case review codes, agreement titles, record ids …) plus a few
# named ones; and, so that the check is not vacuous, every one of them must
# appear in the clients' replicas.
. "$(dirname "$0")/seclib.sh"
sec_setup zero_knowledge "$@"

sample_network proxy
for dir in land han ol lg; do
    kz status "$dir" >/dev/null 2>&1 || fail "status $dir"
done
srv_stop || fail "kzsyncd did not stop cleanly"
kz_stop "$PROXY_PID"
[ -s capture.bin ] || fail "nothing captured"
log "captured $(stat -c %s capture.bin) bytes of traffic"

# The strings: every quoted literal of the sample files that is at least 6
# bytes long and not a bare code, number or date.
export LC_ALL=C
cat "$SEC_DATA"/01_reference.sql "$SEC_DATA"/1[0-9]_site_*.sql |
    grep -v '^--' | grep -o "'[^']*'" | sed "s/^'//; s/'\$//" |
    awk 'length($0) >= 6' |
    grep -Ev '^[a-z0-9_]+$' |
    grep -Ev '^[0-9]{4}-[0-9]{2}-[0-9]{2}' |
    grep -Ev '^[0-9 .,:+-]+$' | sort -u >strings.txt
cat >>strings.txt <<'EOF'
Kinder- und Jugendklinik Lindenhof
Miriam Lühmann
m.luehmann@kz-hannover.example
+49 40 66969-101
Lindenhofallee 3
FA-LG-2026-01
FA-HAN-2026-01
EOF
sort -u -o strings.txt strings.txt
n=$(wc -l <strings.txt)
[ "$n" -ge 300 ] || fail "only $n strings to check"
for s in "Kinder- und Jugendklinik Lindenhof" "FA-LG-2026-01" "@kz-hannover.example" \
    "Miriam" "+49 40 66969-1"; do
    grep -qF -- "$s" strings.txt || fail "the list lacks '$s'"
done
log "$n distinctive strings from the sample files"

# Not vacuous: the clients hold every one of them (LAND and the sites; the
# personal data only at its own site).
for dir in land han ol lg; do
    sql "$dir/replica.db" .dump >"dump-$dir.sql" || fail "dump $dir"
done
missing=0
while IFS= read -r s; do
    # .dump doubles single quotes inside literals
    q=${s//\'/\'\'}
    if ! grep -qF -- "$q" dump-land.sql dump-han.sql dump-ol.sql dump-lg.sql; then
        echo "  not in any replica: $s" >&2
        missing=$((missing + 1))
    fi
done <strings.txt
[ "$missing" -eq 0 ] || fail "$missing strings are in no client replica (the check would be vacuous)"
for s in "Kinder- und Jugendklinik Lindenhof" "Miriam" "FA-LG-2026-01"; do
    grep -qF -- "$s" dump-han.sql dump-lg.sql || fail "'$s' not at the sites"
done
log "all $n strings are in the clients' replicas"

# The server's side: raw bytes of every file, the log, the capture.
files=()
while IFS= read -r f; do files+=("$f"); done < <(find srv -type f)
[ "${#files[@]}" -ge 2 ] || fail "server directory has no files"
ls srv/store.db >/dev/null || fail "no srv/store.db"
files+=(srv.log capture.bin)
for f in "${files[@]}"; do
    if hits=$(grep -a -o -F -f strings.txt "$f" | sort -u | head -n 5) && [ -n "$hits" ]; then
        fail "plaintext in $f: $(echo "$hits" | tr '\n' '|')"
    fi
done
log "no plaintext in ${#files[@]} files (server dir, log, capture)"

# The store's blobs as hex (a value may straddle a database page boundary
# in the raw file).
sql srv/store.db "SELECT hex(hdr) || ' ' || hex(body) || ' ' || hex(sig) FROM kzs_cs;
    SELECT hex(bytes) FROM kzs_roster; SELECT hex(bytes) FROM kzs_key;" >store.hex ||
    fail "read the store"
[ "$(scalar srv/store.db 'SELECT count(DISTINCT scope) FROM kzs_cs')" -ge 7 ] || fail "the store lacks scopes"
while IFS= read -r s; do printf '%s' "$s" | od -An -tx1 -v | tr -d ' \n' | tr a-f A-F; echo; done \
    <strings.txt >strings.hex
if hits=$(grep -o -F -f strings.hex store.hex | sort -u | head -n 3) && [ -n "$hits" ]; then
    fail "plaintext (hex) in the store's blobs: $hits"
fi
log "no plaintext in the hex of $(wc -l <store.hex) stored blobs"

# The server holds no scope key: the only key material in its directory is
# its own identity; sealed envelopes only (kzs_key).
cols=$(scalar srv/store.db "SELECT group_concat(name) FROM pragma_table_info('kzs_key')")
assert_eq "kzs_key columns" "id,recipient,bytes" "$cols"
sec_done
