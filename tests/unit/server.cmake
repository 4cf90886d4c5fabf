# server/ unit tests (STYLE.md 18).  The store tests fork, fsync and commit
# thousands of changesets, hence the longer timeout.
if(TARGET kzserver)
  kz_unit_test(store LIBS kzserver TIMEOUT 120)
endif()
if(TARGET kzserver)
  kz_unit_test(server LIBS kzserver)
endif()
