# Tests of common/crypto (Wycheproof) and proto/noise (Noise test vectors).
# cJSON parses the JSON vector files; it is a test-only dependency.
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
kz_unit_test(crypto LIBS kzcommon PkgConfig::CJSON LABELS crypto)
kz_unit_test(noise LIBS kzproto kzcommon PkgConfig::CJSON LABELS crypto
             TIMEOUT 300)
