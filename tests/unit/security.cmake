# Identity key files, rosters and join requests (common/keyfile,
# proto/roster, proto/join).
kz_unit_test(keyfile LIBS kzcommon LABELS security)
kz_unit_test(roster LIBS kzproto LABELS security)
