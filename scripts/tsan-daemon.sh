#!/bin/sh
# Builds the daemon under ThreadSanitizer into build-tsan/cc-metric-store-tsan
# (same sources, packages and warning flags as the Makefile) and, with
# --run, runs the concurrent writer/reader integration test against it.
#
#   scripts/tsan-daemon.sh          build only
#   scripts/tsan-daemon.sh --run    build, then run test_hostile's concurrency
#                                   test with TSAN_OPTIONS=halt_on_error=1
#
# A data race makes the daemon exit with status 66 and print the report
# (both stacks) to its stderr, which the test shows when it fails. Slow:
# not part of `make test`. See docs/security.md.
set -eu

cd "$(dirname "$0")/.."
OUT=${TSAN_DAEMON_OUT:-build-tsan/cc-metric-store-tsan}
PKGS=$(sed -n 's/^PKGS *:= *//p' Makefile)
CC=${CC:-gcc}

mkdir -p "$(dirname "$OUT")"
echo "building $OUT (packages: $PKGS)"
# shellcheck disable=SC2046,SC2086
$CC -D_GNU_SOURCE -Isrc $(pkg-config --cflags $PKGS) \
    -DCCMS_VERSION='"1.5.4-c.tsan"' -DCCMS_GIT_HASH='"tsan"' \
    -std=c11 -Wall -Wextra -pthread -fno-strict-aliasing -O1 -g -fsanitize=thread \
    -o "$OUT" src/*.c src/*/*.c $(pkg-config --libs $PKGS) -lm -pthread

if [ "${1:-}" = "--run" ]; then
    export CCMS_BINARY="$PWD/$OUT"
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
    # The daemon under TSan is 5-15x slower; the test scales its load down
    # when CCMS_TSAN is set.
    export CCMS_TSAN=1
    cd tests/integration
    exec python3 -m unittest -v test_hostile.ConcurrencyTest
fi
