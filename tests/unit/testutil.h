/*
 * testutil — includes and small helpers shared by the cmocka unit tests.
 */
#ifndef CCMS_TESTUTIL_H
#define CCMS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

/* Asserts that two NUL-terminated strings are equal, printing both on failure. */
/* tests/fixtures of the clone the test was built from (set by the Makefile
 * from the test file's own location). */
#ifndef CCMS_FIXTURE_DIR
#error "CCMS_FIXTURE_DIR must name tests/fixtures (the Makefile sets it)"
#endif

#define assert_str_eq(a, b) assert_string_equal((a), (b))

/* Asserts a double is NaN. */
#define assert_nan(x) assert_true(isnan((double)(x)))

#endif
