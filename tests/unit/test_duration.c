#include <stdio.h>

#include "testutil.h"

#include "util/duration.h"

#define NS 1LL
#define US (1000 * NS)
#define MS (1000 * US)
#define SEC (1000 * MS)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

struct valid_case {
    const char *in;
    int64_t want;
};

/* Mostly Go's own time.ParseDuration test table. */
static const struct valid_case valid_cases[] = {
    {"0", 0},
    {"5s", 5 * SEC},
    {"30s", 30 * SEC},
    {"1478s", 1478 * SEC},
    {"-5s", -5 * SEC},
    {"+5s", 5 * SEC},
    {"-0", 0},
    {"+0", 0},
    {"5.0s", 5 * SEC},
    {"5.6s", 5 * SEC + 600 * MS},
    {"5.s", 5 * SEC},
    {".5s", 500 * MS},
    {"1.0s", 1 * SEC},
    {"1.00s", 1 * SEC},
    {"1.004s", 1 * SEC + 4 * MS},
    {"1.0040s", 1 * SEC + 4 * MS},
    {"100.00100s", 100 * SEC + 1 * MS},
    {"10ns", 10 * NS},
    {"11us", 11 * US},
    {"12\xc2\xb5s", 12 * US},
    {"12\xce\xbcs", 12 * US},
    {"13ms", 13 * MS},
    {"14s", 14 * SEC},
    {"15m", 15 * MIN},
    {"16h", 16 * HOUR},
    {"48h", 48 * HOUR},
    {"12h", 12 * HOUR},
    {"1.5h", HOUR + 30 * MIN},
    {"1h30m", HOUR + 30 * MIN},
    {"300ms", 300 * MS},
    {"-1h", -HOUR},
    {"3h30m", 3 * HOUR + 30 * MIN},
    {"10.5s4m", 4 * MIN + 10 * SEC + 500 * MS},
    {"-2m3.4s", -(2 * MIN + 3 * SEC + 400 * MS)},
    {"1h2m3s4ms5us6ns", 1 * HOUR + 2 * MIN + 3 * SEC + 4 * MS + 5 * US + 6 * NS},
    {"39h9m14.425s", 39 * HOUR + 9 * MIN + 14 * SEC + 425 * MS},
    {"52763797000ns", 52763797000 * NS},
    {"0.3333333333333333333h", 20 * MIN},
    {"9007199254740993ns", (1LL << 53) + 1},
    {"9223372036854775807ns", INT64_MAX},
    {"9223372036854775.807us", INT64_MAX},
    {"9223372036s854ms775us807ns", INT64_MAX},
    {"-9223372036854775808ns", INT64_MIN},
    {"-9223372036854775.808us", INT64_MIN},
    {"-9223372036s854ms775us808ns", INT64_MIN},
    {"-2562047h47m16.854775808s", INT64_MIN},
    {"0.100000000000000000000h", 6 * MIN},
    {"0.830103483285477580700h", 49 * MIN + 48 * SEC + 372539827 * NS},
    {"0s", 0},
    {"000h", 0},
};

static const char *const invalid_cases[] = {
    "",
    "3",
    "30",
    "-",
    "+",
    "s",
    ".",
    "-.",
    ".s",
    "+.s",
    "1d",
    "2d",
    "1 h",
    " 1h",
    "1h ",
    "1H",
    "1sec",
    "1.5.5h",
    "0x10s",
    "--1s",
    "9223372036854775808ns",
    "9223372036854775.808us",
    "9223372036854ms775us808ns",
    "-9223372036854775809ns",
    "2562048h",
    "99999999999999999999h",
    "\xc2s",
    "1\xc2\xb5",
};

static void test_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        int64_t got = 12345;
        int rc = duration_parse(valid_cases[i].in, &got);
        if (rc != 0 || got != valid_cases[i].want)
            fail_msg("\"%s\": rc %d, got %lld, want %lld", valid_cases[i].in, rc, (long long)got,
                     (long long)valid_cases[i].want);
    }
}

static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++) {
        int64_t got = 777;
        if (duration_parse(invalid_cases[i], &got) != -1)
            fail_msg("\"%s\" accepted as %lld", invalid_cases[i], (long long)got);
    }
    int64_t got;
    assert_int_equal(duration_parse(NULL, &got), -1);
}

/* Every whole number of seconds up to a year round-trips through "<n>s". */
static void test_seconds_sweep(void **state)
{
    (void)state;
    char buf[64];
    for (int64_t s = 0; s < 366LL * 24 * 3600; s += 997) {
        snprintf(buf, sizeof buf, "%llds", (long long)s);
        int64_t got;
        assert_int_equal(duration_parse(buf, &got), 0);
        assert_true(got == s * SEC);
        snprintf(buf, sizeof buf, "%lldh%lldm%llds", (long long)(s / 3600),
                 (long long)(s / 60 % 60), (long long)(s % 60));
        assert_int_equal(duration_parse(buf, &got), 0);
        assert_true(got == s * SEC);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_seconds_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
