# Every dependency comes from a Debian 12 package; a missing one names the package to install.
find_package(PkgConfig QUIET)
if(NOT PkgConfig_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config (or run scripts/install-deps.sh)")
endif()
find_package(Threads REQUIRED)

macro(pgsidecar_require_pkg var module debian_package)
  pkg_check_modules(${var} QUIET IMPORTED_TARGET ${module})
  if(NOT ${var}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install ${debian_package} (or run scripts/install-deps.sh)")
  endif()
endmacro()

pgsidecar_require_pkg(LIBUV libuv libuv1-dev)
pgsidecar_require_pkg(LIBPQ libpq libpq-dev)
# The HTTP endpoint (proxy/http/) serves from libmicrohttpd's own threads.
pgsidecar_require_pkg(LIBMICROHTTPD libmicrohttpd libmicrohttpd-dev)

find_package(OpenSSL QUIET)
if(NOT OpenSSL_FOUND)
  message(FATAL_ERROR "OpenSSL not found: apt-get install libssl-dev (or run scripts/install-deps.sh)")
endif()

find_package(tomlplusplus QUIET)
if(NOT tomlplusplus_FOUND)
  message(FATAL_ERROR "toml++ not found: apt-get install libtomlplusplus-dev (or run scripts/install-deps.sh)")
endif()

find_path(PG_QUERY_INCLUDE_DIR pg_query.h)
find_library(PG_QUERY_LIBRARY NAMES pg_query)
if(NOT PG_QUERY_INCLUDE_DIR OR NOT PG_QUERY_LIBRARY)
  message(FATAL_ERROR "libpg_query not found: apt-get install libpg-query-dev (or run scripts/install-deps.sh)")
endif()
add_library(PgQuery::PgQuery UNKNOWN IMPORTED)
set_target_properties(PgQuery::PgQuery PROPERTIES IMPORTED_LOCATION ${PG_QUERY_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${PG_QUERY_INCLUDE_DIR})

# libpg_query hands its parse tree back as JSON (its protobuf output costs ~5x more);
# simdjson reads that JSON for the read-only statement classifier (proxy/classify.cpp).
find_package(simdjson CONFIG QUIET)
if(NOT simdjson_FOUND)
  message(FATAL_ERROR "simdjson not found: apt-get install libsimdjson-dev (or run scripts/install-deps.sh)")
endif()
set_property(TARGET PgQuery::PgQuery APPEND PROPERTY INTERFACE_LINK_LIBRARIES simdjson::simdjson)

if(PGSIDECAR_TESTS)
  find_package(doctest QUIET)
  if(NOT doctest_FOUND)
    message(FATAL_ERROR "doctest not found: apt-get install doctest-dev (or run scripts/install-deps.sh)")
  endif()
  # The metrics exposition is checked by Prometheus's own linter.
  find_program(PROMTOOL_EXECUTABLE promtool)
  if(NOT PROMTOOL_EXECUTABLE)
    message(FATAL_ERROR "promtool not found: apt-get install prometheus (or run scripts/install-deps.sh)")
  endif()
endif()
