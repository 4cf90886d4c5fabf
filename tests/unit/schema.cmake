# The Kinderschutz schema (client/schema/kinderschutz.sql) and the report
# writer (client/report*.c).
#
# Both tests are built without kzclient on purpose: the schema test needs
# only libsqlite3, and the report test compiles the report sources directly,
# so neither breaks while the replica engine in kzclient is being written.
# The product links cJSON into kzclient (libcjson, Debian libcjson-dev).
if(NOT TARGET PkgConfig::CJSON)
  pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
endif()

kz_unit_test(schema LIBS PkgConfig::SQLITE3)

file(GLOB KZ_REPORT_SRC CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/client/report*.c)
if(KZ_REPORT_SRC)
  kz_unit_test(report LIBS PkgConfig::SQLITE3 PkgConfig::CJSON m)
  target_sources(test_report PRIVATE ${KZ_REPORT_SRC})
  target_include_directories(test_report PRIVATE
    ${PROJECT_SOURCE_DIR}/client ${PROJECT_SOURCE_DIR}/common)
endif()
