kz_unit_test(hlc LIBS kzcommon)
kz_unit_test(buf LIBS kzcommon)
