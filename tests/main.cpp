// Catch2 entry point for headscope_tests (one binary; ctest runs each test case on its own). Compute threads
// follow $HEADSCOPE_THREADS as in the CLI (default: all cores), so in-process results and CLI results come from
// the same thread count, and with the same BLAS kernels (use_fast_blas_kernels, as the CLI's main). A run in which every test case skipped exits with testutil::kSkipExit, which ctest
// reports as skipped, not passed.
#define CATCH_CONFIG_RUNNER
#include "kernels/device.h"
#include "model/model.h"
#include "test_helpers.h"
#include "testing.h"

namespace {
struct SkipListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    TestEventListenerBase::testCaseStarting(info);
    testutil::detail::test_case_started(info.name);
  }
};
}  // namespace
CATCH_REGISTER_LISTENER(SkipListener)

int main(int argc, char* argv[]) {
  headscope::use_fast_blas_kernels(argv);
  headscope::set_threads(0);
  const int rc = Catch::Session().run(argc, argv);
  if (rc == 0 && testutil::detail::every_test_case_skipped()) return testutil::kSkipExit;
  return rc;
}
