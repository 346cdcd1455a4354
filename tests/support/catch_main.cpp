// The one Catch2 main shared by every test binary (compiling it is slow; do it once).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
