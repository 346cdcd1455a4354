# Third-party dependencies, all from Debian packages (scripts/setup.sh installs them).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(prometheus-cpp REQUIRED COMPONENTS core)
find_package(ZLIB REQUIRED)
find_package(OpenSSL REQUIRED)

pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka++ rdkafka)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)

# CLI11 is header-only; Debian ships no CMake config for it.
find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
add_library(streamtrain_cli11 INTERFACE)
target_include_directories(streamtrain_cli11 SYSTEM INTERFACE ${CLI11_INCLUDE_DIR})

# Debian builds cpp-httplib as a shared library (libcpp-httplib.so), found through pkg-config.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

if(STREAMTRAIN_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)
  include(Catch)
endif()
