#!/usr/bin/env bash
# Builds drvm and runs every test: the full build (warnings as errors), the unit tests again under
# ASan/UBSan in a Debug build, and a Release build of drvm, so that every build type a user may
# pick builds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDRVM_WERROR=ON >/dev/null
cmake --build build -j "$jobs"

cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDRVM_SANITIZE=ON -DDRVM_WERROR=ON \
  -DDRVM_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit

# Release (-O3, where GCC's warnings differ most): the product, everything drvm is built from. The
# tests are built twice above already; building them a third time would cost CI minutes, not
# catch anything a user's build could fail on (users build without -Werror).
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DDRVM_WERROR=ON \
  -DDRVM_BUILD_BENCH=OFF >/dev/null
cmake --build build-release -j "$jobs" --target drvm guest_images

ctest --test-dir build --output-on-failure -j "$jobs"
