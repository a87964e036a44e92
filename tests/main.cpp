// Catch2 entry point for headscope_tests (one binary; ctest runs each test case on its own).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
