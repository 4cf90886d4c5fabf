kz_unit_test(replica LIBS kzclient)
kz_unit_test(converge LIBS kzclient TIMEOUT 300)
kz_unit_test(sample LIBS kzclient TIMEOUT 300)
