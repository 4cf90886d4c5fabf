#!/usr/bin/env bash
# integration.sample_network_converges: a kzsyncd server, the state office
# (LAND) and three centres (HAN, OL, LG) load the sample network through the
# stock sqlite3 shell, each into its own replica, and sync through the
# server until everything has arrived.  Then:
#   - every scope's digest is equal wherever the scope may be read:
#     network on all four, site:X at X and at LAND;
#   - private:X is held only at X: the digest of private:X anywhere else
#     differs from X's, LAND holds no row of a personal-data table, and no
#     centre holds another centre's rows;
#   - LG's unreleased case review never reaches the state office;
#   - the state office's CSV report shows the figures of domain.md §3
#     ("Output on the sample data"), and the same figures as each
#     centre's own report for that centre.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
kz_setup sample_network_converges "$@"

net_create
sql land/replica.db <"$KZ_DATA/01_reference.sql" || fail "01_reference.sql at LAND"
kz sync land 2>/dev/null || fail "sync land (reference data)"

site_join han HAN
site_join ol OL
site_join lg LG
kz sync land 2>/dev/null || fail "sync land (roster)"

for pair in han:10_site_hannover.sql ol:11_site_oldenburg.sql lg:12_site_lueneburg.sql; do
    dir=${pair%%:*}
    kz sync "$dir" 2>/dev/null || fail "first sync of $dir"
    sql "$dir/replica.db" <"$KZ_DATA/${pair#*:}" || fail "${pair#*:} at $dir"
    kz sync "$dir" 2>/dev/null || fail "sync $dir after loading its data"
done
# One more round everywhere: everyone sees everything that was pushed.
for dir in land han ol lg; do
    kz sync "$dir" 2>/dev/null || fail "final sync of $dir"
done
log "network loaded and synced"

# ---- digests ---------------------------------------------------------
net=$(digest land network)
[ ${#net} -eq 64 ] || fail "digest land --scope network printed '$net'"
for dir in han ol lg; do
    assert_eq "network digest at $dir vs LAND" "$net" "$(digest "$dir" network)"
done
for dir in han ol lg; do
    site=${dir^^}
    d_site=$(digest "$dir" "site:$site")
    assert_eq "site:$site digest at LAND vs $site" "$d_site" "$(digest land "site:$site")"
    d_priv=$(digest "$dir" "private:$site")
    for other in land han ol lg; do
        [ "$other" == "$dir" ] && continue
        # Another member cannot read private:SITE.  `kzsync digest` there
        # still prints a digest (of the NULL private columns it holds for
        # that site's rows, or of nothing), exit 0 — it must differ from
        # the owner's, which covers the personal data.
        other_d=$(kz digest "$other" --scope "private:$site" 2>/dev/null | tail -n 1)
        rc=$?
        if [ $rc -eq 0 ]; then
            assert_ne "private:$site digest at $other vs at $site" "$d_priv" "$other_d"
        fi
    done
    # A site does not hold another site's site scope either.
    for other in han ol lg; do
        [ "$other" == "$dir" ] && continue
        assert_ne "site:$site digest at $other vs at $site" "$d_site" \
            "$(digest "$other" "site:$site")"
    done
done
# The whole-replica digest of two centres differs (each has its own scopes).
assert_ne "whole digest han vs ol" "$(digest han)" "$(digest ol)"
# Every digest is stable: a second sync round changes nothing.
for dir in land han ol lg; do
    kz sync "$dir" 2>/dev/null || fail "extra sync of $dir"
done
assert_eq "network digest after an idle round" "$net" "$(digest lg network)"

# ---- the privacy projection at the state office ------------------------
for t in app_user contact training_participant audit_log; do
    n=$(sql land/replica.db "SELECT count(*) FROM $t")
    assert_eq "rows of personal-data table $t at LAND" 0 "$n"
done
han_id=$(sql han/replica.db "SELECT id FROM site WHERE code = 'HAN'")
ol_id=$(sql han/replica.db "SELECT id FROM site WHERE code = 'OL'")
assert_eq "contacts at HAN" 22 "$(sql han/replica.db "SELECT count(*) FROM contact")"
assert_eq "HAN institutions at LAND" 12 \
    "$(sql land/replica.db "SELECT count(*) FROM institution WHERE site_id = '$han_id'")"
assert_eq "HAN institutions at OL" 0 \
    "$(sql ol/replica.db "SELECT count(*) FROM institution WHERE site_id = '$han_id'")"
assert_eq "OL institutions at HAN" 0 \
    "$(sql han/replica.db "SELECT count(*) FROM institution WHERE site_id = '$ol_id'")"
assert_eq "institutions at LAND (HAN+OL+LG)" 31 \
    "$(sql land/replica.db "SELECT count(*) FROM institution")"
# Private columns of site tables never reach LAND (they are set at HAN).
for tc in consultation:outcome_note network_membership:delegate_contact_id \
          case_review:summary_anonymised network:coordinator_user_id; do
    t=${tc%%:*} c=${tc#*:}
    n=$(sql han/replica.db "SELECT count(*) FROM $t WHERE $c IS NOT NULL")
    [ "$n" -gt 0 ] || fail "sample data: no $t.$c at HAN"
    assert_eq "$t.$c set at LAND" 0 "$(sql land/replica.db "SELECT count(*) FROM $t WHERE $c IS NOT NULL")"
    assert_ne "$t rows of HAN at LAND" 0 \
        "$(sql land/replica.db "SELECT count(*) FROM $t WHERE site_id = '$han_id'")"
done
# Case reviews: LG's unreleased one stays at LG.
n_lg=$(sql lg/replica.db "SELECT count(*) FROM case_review")
assert_eq "case reviews at LG" 1 "$n_lg"
assert_eq "unreleased case reviews at LAND" 0 \
    "$(sql land/replica.db "SELECT count(*) FROM case_review WHERE released_to_state IS NOT 1")"
assert_eq "case reviews at LAND (HAN 2 + OL 2)" 4 \
    "$(sql land/replica.db "SELECT count(*) FROM case_review")"
log "privacy projection ok"

# ---- the consolidated report ------------------------------------------
kz report land --format csv --out land.csv 2>/dev/null || fail "kzsync report land"
[ -s land.csv ] || fail "empty report"
head -n 1 land.csv | tr -d '\r' | grep -q '^section,table,indicator,row,site_code,column,label,value$' ||
    fail "report CSV header: $(head -n 1 land.csv)"
# csv_get FILE TABLE SITE COLUMN: the values of that cell (one per row).
csv_get() {
    tr -d '\r' <"$1" | awk -F, -v t="$2" -v s="$3" -v c="$4" \
        '$2 == t && $5 == s && $6 == c {print $NF}'
}
# IND-05: HAN one overdue (285 days) and one under review (210 days
# overdue); OL one overdue (78 days); LG two due within 90 days.
assert_eq "IND-05 HAN days overdue" "285 210" \
    "$(csv_get land.csv agreement_reviews_due HAN days_overdue | xargs)"
assert_eq "IND-05 OL days overdue" 78 "$(csv_get land.csv agreement_reviews_due OL days_overdue)"
assert_eq "IND-05 HAN reviews overdue" 2 "$(csv_get land.csv agreements_by_site HAN reviews_overdue)"
assert_eq "IND-05 OL reviews overdue" 1 "$(csv_get land.csv agreements_by_site OL reviews_overdue)"
assert_eq "IND-05 LG reviews overdue" 0 "$(csv_get land.csv agreements_by_site LG reviews_overdue)"
assert_eq "IND-05 LG reviews due in 90 days" 2 "$(csv_get land.csv agreements_by_site LG reviews_due_90d)"
assert_eq "IND-05 all sites overdue" 3 "$(csv_get land.csv agreements_by_site ALL reviews_overdue)"
# IND-11: HAN 40 % implemented with 1 overdue; OL 66.7 % with 1 overdue.
assert_eq "IND-11 HAN implementation rate" 40 \
    "$(csv_get land.csv measures HAN implementation_rate_pct | sed 's/\.0*$//')"
assert_eq "IND-11 OL implementation rate" 66.7 "$(csv_get land.csv measures OL implementation_rate_pct)"
assert_eq "IND-11 HAN overdue" 1 "$(csv_get land.csv measures HAN overdue)"
assert_eq "IND-11 OL overdue" 1 "$(csv_get land.csv measures OL overdue)"
# Each centre's own report shows, for that centre, exactly the records of
# the state office's consolidated report (row numbers aside), both as of the
# same day: the reference date is a local setting (report_setting, not
# synced), which the sample data gives the state office only; a centre's
# would be today.
as_of=$(sql land/replica.db "SELECT as_of FROM v_as_of") || fail "LAND's reference date"
for dir in han ol lg; do
    sql "$dir/replica.db" "INSERT INTO report_setting VALUES ('as_of_date', '$as_of')" ||
        fail "reference date at $dir"
done
site_records() { # FILE SITE: the report's records of SITE without the row number
    tr -d '\r' <"$1" | awk -F, -v s="$2" '$5 == s' | cut -d, -f1-3,5- | sort
}
for dir in han ol lg; do
    site=${dir^^}
    kz report "$dir" --format csv --out "$dir.csv" 2>/dev/null || fail "report $dir"
    n=$(site_records land.csv "$site" | wc -l)
    [ "$n" -gt 50 ] || fail "the state report has only $n records of $site"
    diff <(site_records land.csv "$site") <(site_records "$dir.csv" "$site") >"$dir.diff" ||
        fail "report records of $site differ between LAND and $site: $(head -n 4 "$dir.diff")"
done
log "report figures ok"
kz_done
