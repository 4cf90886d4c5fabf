kz_unit_test(chan LIBS kzproto)
kz_unit_test(seal LIBS kzproto)
