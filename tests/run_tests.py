#!/usr/bin/env python3
"""Runs every test suite of the project and prints one summary line.

    run_tests.py --unit BIN... [--asan BIN...] [--integration DIR]

Unit test binaries are cmocka programs; their "[  PASSED  ] N test(s)." and
"[  FAILED  ] N test(s)" lines are counted. A binary that crashes or prints
no cmocka summary counts as one failure. Integration tests are Python
unittest modules (tests/integration/test_*.py) that start the real binary.

The last line is "N passed, M failed"; the exit status is 1 on any failure.
"""
import argparse
import os
import re
import subprocess
import sys
import time
import unittest

PASSED_RE = re.compile(r"^\[  PASSED  \] (\d+) test", re.M)
FAILED_RE = re.compile(r"^\[  FAILED  \] (\d+) test", re.M)


def run_cmocka(binary, label, env=None):
    """Returns (passed, failed) for one cmocka binary and echoes failures."""
    start = time.monotonic()
    try:
        proc = subprocess.run([binary], capture_output=True, text=True,
                              timeout=600, env=env)
        out = proc.stdout + proc.stderr
        code = proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        out += "\nTIMEOUT after 600 s"
        code = -1
    passed = sum(int(n) for n in PASSED_RE.findall(out))
    failed = sum(int(n) for n in FAILED_RE.findall(out))
    sanitizer = "ERROR: AddressSanitizer" in out or "runtime error:" in out \
        or "WARNING: ThreadSanitizer" in out or "ERROR: LeakSanitizer" in out
    if (code != 0 and failed == 0) or sanitizer:
        failed += 1
        if passed > 0 and sanitizer:
            passed -= 1
    status = "ok" if failed == 0 else "FAIL"
    print(f"{label:6} {os.path.basename(binary):28} {passed:4} passed {failed:3} failed"
          f"  ({time.monotonic() - start:.1f}s) {status}", flush=True)
    if failed:
        print(out[-6000:], flush=True)
    return passed, failed


def run_integration(directory):
    sys.path.insert(0, os.path.abspath(directory))
    loader = unittest.TestLoader()
    suite = loader.discover(directory, pattern="test_*.py", top_level_dir=directory)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2)
    result = runner.run(suite)
    # A test that cannot arrange its precondition must not pass silently:
    # a skip counts as a failure.
    for test, reason in result.skipped:
        print("SKIPPED counts as FAILED: %s: %s" % (test.id(), reason), flush=True)
    failed = (len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
              + len(result.skipped))
    passed = result.testsRun - failed
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unit", nargs="*", default=[])
    ap.add_argument("--asan", nargs="*", default=[])
    ap.add_argument("--integration")
    args = ap.parse_args()

    total_passed = total_failed = 0
    for binary in args.unit:
        p, f = run_cmocka(binary, "unit")
        total_passed += p
        total_failed += f
    asan_env = dict(os.environ)
    asan_env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    asan_env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    for binary in args.asan:
        p, f = run_cmocka(binary, "asan", env=asan_env)
        total_passed += p
        total_failed += f
    if args.integration:
        p, f = run_integration(args.integration)
        total_passed += p
        total_failed += f

    print(f"{total_passed} passed, {total_failed} failed", flush=True)
    sys.exit(1 if total_failed else 0)


if __name__ == "__main__":
    main()
