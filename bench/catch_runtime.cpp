// Catch2's implementation, without its main(). plc_bench is no test, but it
// reuses PlcClient from the test harness, whose object file also holds the Catch
// matchers for grpc::Status (tests/support/plc_client.cpp), so the linker needs
// Catch's symbols. CATCH_CONFIG_RUNNER compiles them and leaves main() to us.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
