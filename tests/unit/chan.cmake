kz_unit_test(chan LIBS kzproto)
