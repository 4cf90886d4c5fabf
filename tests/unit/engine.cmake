kz_unit_test(replica LIBS kzclient)
