#!/usr/bin/env bash
# headscope test suite: configures and builds if needed, then runs every test with ctest.
# The last line printed is ctest's summary. Real-model tests skip with a message when the model is absent.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
fi
cmake --build build -j"$(nproc)" || exit 1
log=$(mktemp)
ctest --test-dir build --output-on-failure -j"$(nproc)" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
grep -E "tests passed|tests failed" "$log" | tail -n 1
rm -f "$log"
exit "$rc"
