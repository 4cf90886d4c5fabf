# proto/ unit tests (STYLE.md 18).
kz_unit_test(mpk LIBS kzproto)
kz_unit_test(changeset LIBS kzproto)
kz_unit_test(frame LIBS kzproto)
kz_unit_test(msg LIBS kzproto)
