/*
 * Tests for lineproto: the tokenizer (docs/line-protocol.md "Syntax", every syntax
 * element and error class), float parsing against strtod, and the chunked
 * line reader (every split position, random chunks, over-long lines).
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "lineproto.h"

/* ---- helpers ------------------------------------------------------------- */

static char scratch_buf[1 << 16];
static struct lp_line parsed;
static struct lp_error perr;

static int parse_n(const char *line, size_t len)
{
    memset(&perr, 0, sizeof perr);
    return lp_parse(line, len, scratch_buf, &parsed, &perr);
}

static int parse(const char *line)
{
    return parse_n(line, strlen(line));
}

static void expect_ok(const char *line)
{
    int rc = parse(line);
    if (rc != LP_OK)
        fail_msg("expected OK for \"%s\", got %d: %zu: %s", line, rc, perr.column, perr.message);
}

static void expect_err_n(const char *line, size_t len, size_t column, const char *message)
{
    int rc = parse_n(line, len);
    if (rc != LP_ERR_SYNTAX)
        fail_msg("expected a syntax error for \"%.*s\", got %d", (int)len, line, rc);
    if (strstr(perr.message, message) == NULL)
        fail_msg("\"%.*s\": message \"%s\" does not contain \"%s\"", (int)len, line, perr.message,
                 message);
    if (column && perr.column != column)
        fail_msg("\"%.*s\": column %zu, expected %zu (%s)", (int)len, line, perr.column, column,
                 perr.message);
}

static void expect_err(const char *line, size_t column, const char *message)
{
    expect_err_n(line, strlen(line), column, message);
}

static void assert_lpstr(struct lp_str s, const char *expected)
{
    if (s.len != strlen(expected) || memcmp(s.ptr, expected, s.len) != 0)
        fail_msg("got \"%.*s\" (%zu bytes), expected \"%s\"", (int)s.len, s.ptr, s.len, expected);
}

/* ---- syntax -------------------------------------------------------------- */

static void test_basic_line(void **state)
{
    (void)state;
    expect_ok("cpu_load,cluster=alex,hostname=a0124,type=node value=35.0 1725827464");
    assert_lpstr(parsed.measurement, "cpu_load");
    assert_int_equal(parsed.tag_count, 3);
    assert_lpstr(parsed.tag_keys[0], "cluster");
    assert_lpstr(parsed.tag_values[0], "alex");
    assert_lpstr(parsed.tag_keys[1], "hostname");
    assert_lpstr(parsed.tag_values[1], "a0124");
    assert_lpstr(parsed.tag_keys[2], "type");
    assert_lpstr(parsed.tag_values[2], "node");
    assert_int_equal(parsed.field_count, 1);
    assert_lpstr(parsed.fields[0].key, "value");
    assert_int_equal(parsed.fields[0].kind, LP_FLOAT);
    assert_true(parsed.fields[0].v.f == 35.0);
    assert_true(parsed.has_timestamp);
    assert_int_equal(parsed.timestamp, 1725827464);
}

static void test_minimal_and_spacing(void **state)
{
    (void)state;
    expect_ok("m v=1");
    assert_lpstr(parsed.measurement, "m");
    assert_int_equal(parsed.tag_count, 0);
    assert_int_equal(parsed.field_count, 1);
    assert_false(parsed.has_timestamp);

    expect_ok("   m    v=1    ");
    assert_lpstr(parsed.measurement, "m");
    assert_false(parsed.has_timestamp);

    expect_ok("m,a=b   v=2   -17   ");
    assert_int_equal(parsed.tag_count, 1);
    assert_true(parsed.has_timestamp);
    assert_int_equal(parsed.timestamp, -17);

    expect_ok("m v=1 0");
    assert_true(parsed.has_timestamp);
    assert_int_equal(parsed.timestamp, 0);

    expect_ok("m v=1 9223372036854775807");
    assert_int_equal(parsed.timestamp, INT64_MAX);
    expect_ok("m v=1 -9223372036854775808");
    assert_int_equal(parsed.timestamp, INT64_MIN);

    /* tags need not be sorted; duplicates are reported as written */
    expect_ok("m,z=1,a=2,z=3 v=1");
    assert_int_equal(parsed.tag_count, 3);
    assert_lpstr(parsed.tag_values[2], "3");
}

static void test_empty_and_comments(void **state)
{
    (void)state;
    assert_int_equal(parse(""), LP_EMPTY);
    assert_int_equal(parse("     "), LP_EMPTY);
    assert_int_equal(parse("\r"), LP_EMPTY);
    assert_int_equal(parse("   \r"), LP_EMPTY);
    assert_int_equal(parse("# a comment, with = all \"sorts\" of\\ stuff"), LP_EMPTY);
    assert_int_equal(parse("   #indented comment"), LP_EMPTY);
    assert_int_equal(parse("#"), LP_EMPTY);
    assert_int_equal(parse("# comment\r"), LP_EMPTY);
    assert_int_equal(parse("# ünïcödé \xff bytes are fine in comments"), LP_EMPTY);
    /* control characters are not allowed in comments (decoder rule) */
    expect_err("# tab\there", 1, "invalid character found in comment line");
    expect_err("  #\x01", 3, "invalid character found in comment line");
    expect_err("# lone \r cr", 1, "invalid character found in comment line");

    struct lp_str name;
    bool esc;
    assert_int_equal(lp_peek_measurement("", 0, &name, &esc, &perr), LP_EMPTY);
    assert_int_equal(lp_peek_measurement("  # x", 5, &name, &esc, &perr), LP_EMPTY);
}

static void test_crlf_and_lone_cr(void **state)
{
    (void)state;
    expect_ok("m v=1\r");
    assert_false(parsed.has_timestamp);
    expect_ok("m v=1 123\r");
    assert_int_equal(parsed.timestamp, 123);
    expect_ok("m,a=b v=\"s\"\r");
    assert_lpstr(parsed.fields[0].v.s, "s");

    expect_err("m v=1\r\r", 6, "unexpected character '\\r' after field \"v\"");
    expect_err("m v=1\rx", 6, "unexpected character '\\r'");
    expect_err("m\r v=1", 2, "expected tag key or field but found '\\r' instead");
    expect_err("\rm v=1", 1, "invalid character '\\r' found at start of measurement name");
    expect_err("m,a=b\rc v=1", 6, "'\\r'");
    expect_err("m v=1 12\r3", 7, "invalid timestamp (\"12\\r3\")");
    expect_err("m v=1 \rfoo", 7, "invalid timestamp");
    /* a string cannot hide a lone CR at the end of the line... */
    expect_err("m v=\"abc\r", 5, "expected closing quote for string field \"v\"");
    /* ...but may contain one inside */
    expect_ok("m v=\"a\rb\"");
    assert_lpstr(parsed.fields[0].v.s, "a\rb");
}

static void test_escapes(void **state)
{
    (void)state;
    /* measurement: "\," and "\ " only */
    expect_ok("c\\,p\\ u v=1");
    assert_lpstr(parsed.measurement, "c,p u");
    assert_true(parsed.measurement.ptr >= scratch_buf &&
                parsed.measurement.ptr < scratch_buf + sizeof scratch_buf);
    expect_ok("a\\=b v=1");
    assert_lpstr(parsed.measurement, "a\\=b");
    expect_ok("a\\b\\\\c v=1");
    assert_lpstr(parsed.measurement, "a\\b\\\\c");
    expect_ok("a=b v=1");
    assert_lpstr(parsed.measurement, "a=b");
    /* "\\" is no escape: the second backslash escapes the ',', and '=' does
     * not end a measurement */
    expect_ok("x\\\\,t=1 v=1");
    assert_lpstr(parsed.measurement, "x\\,t=1");
    assert_int_equal(parsed.tag_count, 0);

    /* tag keys and values: "\," "\=" "\ " */
    expect_ok("m,k\\ e\\,y\\==v\\ a\\,l\\=ue,k2=a\\b v=1");
    assert_lpstr(parsed.tag_keys[0], "k e,y=");
    assert_lpstr(parsed.tag_values[0], "v a,l=ue");
    assert_lpstr(parsed.tag_keys[1], "k2");
    assert_lpstr(parsed.tag_values[1], "a\\b");

    /* field keys share the tag key escapes */
    expect_ok("m f\\ i\\=e\\,ld=1i");
    assert_lpstr(parsed.fields[0].key, "f i=e,ld");
    assert_int_equal(parsed.fields[0].kind, LP_INT);

    /* "b\ " escapes the space, so "v" belongs to the tag value */
    expect_err("m,a=b\\ v=1", 9, "empty tag key");
    /* a backslash before a byte it does not escape stays literal, also at the end */
    expect_err("m,a=b\\", 7, "expected field key but none found");
    expect_ok("m,a=b\\c v=1");
    assert_lpstr(parsed.tag_values[0], "b\\c");
    /* "\\" is no escape in names either: the second backslash escapes the space */
    expect_err("m,a=b\\\\ v=1", 10, "empty tag key");
}

static void test_string_fields(void **state)
{
    (void)state;
    expect_ok("m s=\"plain\"");
    assert_int_equal(parsed.fields[0].kind, LP_STRING);
    assert_lpstr(parsed.fields[0].v.s, "plain");

    expect_ok("m s=\"\"");
    assert_lpstr(parsed.fields[0].v.s, "");

    expect_ok("m s=\"a,b c=d\",n=1 5");
    assert_lpstr(parsed.fields[0].v.s, "a,b c=d");
    assert_int_equal(parsed.field_count, 2);
    assert_int_equal(parsed.timestamp, 5);

    expect_ok("m s=\"q\\\"b\\\\n\\nr\\rt\\tx\\y\\\"\"");
    assert_lpstr(parsed.fields[0].v.s, "q\"b\\n\nr\rt\tx\\y\"");

    expect_ok("m s=\"ends with backslash\\\\\"");
    assert_lpstr(parsed.fields[0].v.s, "ends with backslash\\");

    expect_err("m s=\"unterminated", 5, "expected closing quote for string field \"s\", found end of input");
    expect_err("m s=\"escaped end\\\"", 5, "expected closing quote");
    expect_err("m s=\"a\"b", 8, "unexpected character 'b' after field \"s\"");
    expect_ok("m s=\"tab\tinside\"");
    assert_lpstr(parsed.fields[0].v.s, "tab\tinside");
}

static void test_value_kinds(void **state)
{
    (void)state;
    expect_ok("m a=1i,b=2u,c=-3i,d=t,e=FALSE,f=\"str\",g=1.5e3,h=True,i=F,j=0u");
    assert_int_equal(parsed.field_count, 10);
    assert_int_equal(parsed.fields[0].kind, LP_INT);
    assert_int_equal(parsed.fields[0].v.i, 1);
    assert_int_equal(parsed.fields[1].kind, LP_UINT);
    assert_int_equal(parsed.fields[1].v.u, 2);
    assert_int_equal(parsed.fields[2].v.i, -3);
    assert_int_equal(parsed.fields[3].kind, LP_BOOL);
    assert_true(parsed.fields[3].v.b);
    assert_false(parsed.fields[4].v.b);
    assert_int_equal(parsed.fields[5].kind, LP_STRING);
    assert_int_equal(parsed.fields[6].kind, LP_FLOAT);
    assert_true(parsed.fields[6].v.f == 1500.0);
    assert_true(parsed.fields[7].v.b);
    assert_false(parsed.fields[8].v.b);
    assert_int_equal(parsed.fields[9].v.u, 0);

    static const char *bools_true[] = { "t", "T", "true", "True", "TRUE" };
    static const char *bools_false[] = { "f", "F", "false", "False", "FALSE" };
    char buf[64];
    for (size_t i = 0; i < 5; i++) {
        snprintf(buf, sizeof buf, "m b=%s", bools_true[i]);
        expect_ok(buf);
        assert_true(parsed.fields[0].v.b);
        snprintf(buf, sizeof buf, "m b=%s", bools_false[i]);
        expect_ok(buf);
        assert_false(parsed.fields[0].v.b);
    }
    expect_err("m b=tru", 5, "cannot parse value for field key \"b\": invalid bool value \"tru\"");
    expect_err("m b=tRUE", 5, "invalid bool value");
    expect_err("m b=falsey", 5, "invalid bool value");

    /* integers */
    expect_ok("m v=9223372036854775807i");
    assert_true(parsed.fields[0].v.i == INT64_MAX);
    expect_ok("m v=-9223372036854775808i");
    assert_true(parsed.fields[0].v.i == INT64_MIN);
    expect_err("m v=9223372036854775808i", 5,
               "cannot parse value for field key \"v\": line-protocol value out of range");
    expect_err("m v=-9223372036854775809i", 5, "out of range");
    expect_err("m v=12ai", 5, "invalid integer value syntax");
    expect_err("m v=-i", 5, "invalid integer value syntax");
    expect_err("m v=1.5i", 5, "invalid integer value syntax");
    expect_ok("m v=18446744073709551615u");
    assert_true(parsed.fields[0].v.u == UINT64_MAX);
    expect_err("m v=18446744073709551616u", 5, "out of range");
    expect_err("m v=-1u", 5, "invalid unsigned integer value syntax");
    expect_err("m v=u", 5, "unrecognized type");
}

static void test_floats(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        double value;
    } ok[] = {
        { "0", 0.0 }, { "-0", -0.0 }, { "1", 1.0 }, { "1.", 1.0 }, { ".5", 0.5 }, { "-.5", -0.5 },
        { "1.5e3", 1500.0 }, { "1.5E3", 1500.0 }, { "1.5e+3", 1500.0 }, { "15e-1", 1.5 },
        { "0.000001", 1e-6 }, { "123456789012345678", 123456789012345678.0 },
        { "1e22", 1e22 }, { "1e23", 1e23 }, { "1e-400", 0.0 }, { "-1e-400", -0.0 },
        { "1.7976931348623157e308", 1.7976931348623157e308 },
        { "4.9406564584124654e-324", 4.9406564584124654e-324 },
        { "0.1", 0.1 }, { "3.4028234663852886e38", 3.4028234663852886e38 },
        { "12345678901234567890123", 12345678901234567890123.0 },
        { "0.30000000000000004", 0.30000000000000004 },
        { "000123.4500", 123.45 }, { "0x1p4", 16.0 }, { "-0x1.8p1", -3.0 },
        { "0X.8P0", 0.5 },
    };
    char buf[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(buf, sizeof buf, "m v=%s", ok[i].text);
        expect_ok(buf);
        assert_int_equal(parsed.fields[0].kind, LP_FLOAT);
        if (memcmp(&parsed.fields[0].v.f, &ok[i].value, sizeof(double)) != 0)
            fail_msg("%s parsed as %.17g, expected %.17g", ok[i].text, parsed.fields[0].v.f,
                     ok[i].value);
    }

    expect_err("m v=NaN", 5, "value for field \"v\" (\"NaN\") has unrecognized type");
    expect_err("m v=nan", 5, "has unrecognized type");
    expect_err("m v=inf", 5, "value for field \"v\" (\"inf\") has unrecognized type");
    expect_err("m v=Inf", 5, "has unrecognized type");
    expect_err("m v=+1", 5, "has unrecognized type");
    expect_err("m v=-inf", 5, "cannot parse value for field key \"v\": non-number \"-inf\" cannot be represented");
    expect_err("m v=-Infinity", 5, "non-number");
    expect_err("m v=-nan", 5, "invalid float value syntax");
    expect_err("m v=-infin", 5, "invalid float value syntax");
    expect_err("m v=1e400", 5, "cannot parse value for field key \"v\": line-protocol value out of range");
    expect_err("m v=-1e400", 5, "out of range");
    expect_err("m v=1797693134862315708145274237317043567981e270", 5, "out of range");
    expect_err("m v=1.2.3", 5, "invalid float value syntax");
    expect_err("m v=1e", 5, "invalid float value syntax");
    expect_err("m v=1e+", 5, "invalid float value syntax");
    expect_err("m v=.", 5, "invalid float value syntax");
    expect_err("m v=-", 5, "invalid float value syntax");
    expect_err("m v=1_000", 5, "invalid float value syntax");
    expect_err("m v=0x10", 5, "invalid float value syntax");
    expect_err("m v=0xp1", 5, "invalid float value syntax");
    expect_err("m v=1x", 5, "invalid float value syntax");
    expect_err("m v=1\t2", 5, "invalid float value syntax");
    expect_err("m v=--1", 5, "invalid float value syntax");
    expect_err("m v=1e5.5", 5, "invalid float value syntax");
}

/* The fast path must give exactly strtod's correctly rounded result. */
static void test_float_matches_strtod(void **state)
{
    (void)state;
    unsigned seed = 12345;
    char num[96], line[128];
    for (int iter = 0; iter < 200000; iter++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        int intdigits = (int)(r % 12), fracdigits = (int)((r >> 4) % 12);
        size_t o = 0;
        if (r & 0x100000)
            num[o++] = '-';
        for (int i = 0; i < intdigits; i++) {
            seed = seed * 1103515245u + 12345u;
            num[o++] = (char)('0' + (seed >> 16) % 10);
        }
        if (fracdigits || !intdigits) {
            num[o++] = '.';
            for (int i = 0; i < fracdigits || (!intdigits && i == 0); i++) {
                seed = seed * 1103515245u + 12345u;
                num[o++] = (char)('0' + (seed >> 16) % 10);
            }
        }
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 3 == 0)
            o += (size_t)snprintf(num + o, sizeof num - o, "e%d", (int)((seed >> 4) % 60) - 30);
        num[o] = '\0';
        snprintf(line, sizeof line, "m v=%s", num);
        expect_ok(line);
        double want = strtod(num, NULL);
        if (memcmp(&parsed.fields[0].v.f, &want, sizeof want) != 0)
            fail_msg("%s parsed as %.17g, strtod gives %.17g", num, parsed.fields[0].v.f, want);
    }
}

static void test_tag_errors(void **state)
{
    (void)state;
    expect_err("m,type= value=1", 8, "expected tag value after tag key \"type\", but none found");
    expect_err("cpu,cluster=a,type=,x=y value=1", 20, "expected tag value after tag key \"type\", but none found");
    expect_err("m,=x value=1", 3, "empty tag key");
    expect_err("m, a=b v=1", 3, "expected tag key after comma; got white space instead");
    expect_err("m,a=b, v=1", 7, "expected tag key after comma; got white space instead");
    expect_err("m,", 3, "expected tag key after comma; got end of input");
    expect_err("m", 2, "expected tag key or field but found end of input instead");
    expect_err("m,a v=1", 3, "expected '=' after tag key \"a\", but got ' ' instead");
    expect_err("m,a", 3, "expected '=' after tag key \"a\", but got end of input instead");
    expect_err("m,a,b=c v=1", 3, "expected '=' after tag key \"a\", but got ',' instead");
    expect_err("m,a=b", 6, "expected field key but none found");
    expect_err("m,a=b=c v=1", 6, "empty tag key");
    expect_err("m,a=b\tc v=1", 6, "expected tag key or field but found '\\t' instead");
    expect_err("m,a\x01=b v=1", 3, "expected '=' after tag key \"a\", but got '\\x01' instead");
    expect_err_n("m\0 v=1", 6, 2, "expected tag key or field but found '\\x00' instead");

    /* exactly LP_MAX_TAGS tags are fine, one more is an error */
    char line[2048];
    size_t o = (size_t)snprintf(line, sizeof line, "m");
    for (int i = 0; i < LP_MAX_TAGS; i++)
        o += (size_t)snprintf(line + o, sizeof line - o, ",t%d=v", i);
    snprintf(line + o, sizeof line - o, " v=1");
    expect_ok(line);
    assert_int_equal(parsed.tag_count, LP_MAX_TAGS);
    snprintf(line + o, sizeof line - o, ",x=y v=1");
    expect_err(line, o + 2, "too many tags");
}

static void test_field_errors(void **state)
{
    (void)state;
    expect_err("m v", 4, "want '=' after field key \"v\", found end of input");
    expect_err("m v 1", 4, "want '=' after field key \"v\", found ' '");
    expect_err("m v=", 5, "expected value for field \"v\", found end of input");
    expect_err("m v= 1", 5, "missing field value for field \"v\"");
    expect_err("m v=,w=1", 5, "missing field value for field \"v\"");
    expect_err("m v=abc", 5, "value for field \"v\" (\"abc\") has unrecognized type");
    expect_err("m x=abc def", 5, "value for field \"x\" (\"abc\") has unrecognized type");
    expect_err("m v=1,", 7, "expected field key but none found");
    expect_err("m v=1, w=2", 7, "invalid character ' ' found at start of field key");
    expect_err("m =1", 3, "invalid character '=' found at start of field key");
    expect_err("m v=1\x01", 5, "invalid float value syntax");  /* controls are value bytes */
    expect_err("m,a=b  ", 8, "expected field key but none found");

    char line[1024];
    size_t o = (size_t)snprintf(line, sizeof line, "m ");
    for (int i = 0; i < LP_MAX_FIELDS; i++)
        o += (size_t)snprintf(line + o, sizeof line - o, "%sf%d=1", i ? "," : "", i);
    expect_ok(line);
    assert_int_equal(parsed.field_count, LP_MAX_FIELDS);
    snprintf(line + o, sizeof line - o, ",x=1");
    expect_err(line, o + 2, "too many fields");
}

static void test_timestamp_errors(void **state)
{
    (void)state;
    expect_err("m v=1 abc", 7, "invalid timestamp (\"abc\")");
    expect_err("m v=1 12a", 7, "invalid timestamp (\"12a\")");
    expect_err("m v=1 +5", 7, "invalid timestamp (\"+5\")");
    expect_err("m v=1 1.5", 7, "invalid timestamp");
    expect_err("m v=1 1 2", 9, "unexpected text after timestamp (\"2\")");
    expect_err("m v=1 -", 7, "invalid timestamp (\"-\")");
    expect_err("m v=1 1-2", 7, "invalid timestamp (\"1-2\")");
    expect_err("m v=1 99999999999999999999", 7, "out of range");
    expect_err("m v=1 -9223372036854775809", 7, "out of range");
}

static void test_measurement_errors(void **state)
{
    (void)state;
    expect_err(",x v=1", 1, "invalid character ',' found at start of measurement name");
    expect_err("  ,x v=1", 3, "invalid character ',' found at start of measurement name");
    expect_err("\tm v=1", 1, "invalid character '\\t' found at start of measurement name");
    expect_err("\x7fm v=1", 1, "invalid character '\\x7f' found at start of measurement name");

    struct lp_str name;
    bool esc = true;
    assert_int_equal(lp_peek_measurement("cpu,a=b v=1", 11, &name, &esc, &perr), LP_OK);
    assert_lpstr(name, "cpu");
    assert_false(esc);
    /* peek does not look past the measurement */
    assert_int_equal(lp_peek_measurement("cpu,,,garbage\x01", 14, &name, &esc, &perr), LP_OK);
    assert_lpstr(name, "cpu");
    assert_int_equal(lp_peek_measurement("  c\\ pu v=1", 11, &name, &esc, &perr), LP_OK);
    assert_lpstr(name, "c\\ pu");
    assert_true(esc);
    assert_int_equal(lp_peek_measurement(",x", 2, &name, &esc, &perr), LP_ERR_SYNTAX);
    assert_int_equal(perr.column, 1);
    assert_int_equal(lp_peek_measurement("m\xff v=1", 6, &name, &esc, &perr), LP_ERR_SYNTAX);
    assert_non_null(strstr(perr.message, "invalid utf-8"));
    assert_int_equal(lp_peek_measurement("m\r", 2, &name, &esc, &perr), LP_OK);
    assert_lpstr(name, "m");
}

static void test_utf8(void **state)
{
    (void)state;
    expect_ok("m\xc3\xa9,t\xc3\xbc=\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80 f\xc3\xb6=\"\xc3\x9f\" 1");
    assert_lpstr(parsed.measurement, "m\xc3\xa9");
    assert_lpstr(parsed.tag_values[0], "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80");
    assert_lpstr(parsed.fields[0].v.s, "\xc3\x9f");
    /* U+10FFFF and U+FFFF are valid */
    expect_ok("\xf4\x8f\xbf\xbf \xef\xbf\xbf=1");

    expect_err("m\xff v=1", 1, "invalid utf-8 sequence in token \"m\\xff\"");
    expect_err("m,\xc3=b v=1", 3, "invalid utf-8");
    expect_err("m,a=\xc3 v=1", 5, "invalid utf-8");
    expect_err("m \xe2\x82=1", 3, "invalid utf-8");
    expect_err("m s=\"\x80\"", 6, "invalid utf-8");
    expect_err("m\xc0\x80 v=1", 1, "invalid utf-8");      /* overlong NUL */
    expect_err("m\xe0\x80\x80 v=1", 1, "invalid utf-8");  /* overlong */
    expect_err("m\xed\xa0\x80 v=1", 1, "invalid utf-8");  /* surrogate */
    expect_err("m\xf4\x90\x80\x80 v=1", 1, "invalid utf-8");  /* > U+10FFFF */
    expect_err("m\xf8\x88\x80\x80\x80 v=1", 1, "invalid utf-8");
    expect_err("m\xc3\\ \xa9 v=1", 1, "invalid utf-8");  /* an escape does not join a sequence */
    /* bytes >= 0x80 in a non-string field value are simply a bad number */
    expect_err("m v=1\xc3\xa9", 5, "invalid float value syntax");
}

/* Strings of a parsed line must lie inside the line or the scratch buffer. */
static void assert_inside(struct lp_str s, const char *line, size_t len)
{
    bool in_line = s.ptr >= line && s.ptr + s.len <= line + len;
    bool in_scratch = s.ptr >= scratch_buf && s.ptr + s.len <= scratch_buf + len;
    assert_true(in_line || in_scratch);
}

static void test_garbage(void **state)
{
    (void)state;
    unsigned seed = 99;
    char line[200];
    static const char alphabet[] = "ab=, \"\\\r\t#-.0123456789iutfTF\x80\xc3\xa9\xff";
    for (int iter = 0; iter < 100000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof line;
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            line[i] = (seed >> 24) & 1 ? alphabet[(seed >> 16) % (sizeof alphabet - 1)]
                                       : (char)(seed >> 16);
        }
        int rc = parse_n(line, len);
        assert_true(rc == LP_OK || rc == LP_EMPTY || rc == LP_ERR_SYNTAX);
        if (rc == LP_ERR_SYNTAX) {
            assert_true(perr.column >= 1 && perr.column <= len + 1);
            assert_true(strlen(perr.message) > 0);
        }
        if (rc == LP_OK) {
            assert_inside(parsed.measurement, line, len);
            assert_true(parsed.field_count >= 1);
            for (size_t i = 0; i < parsed.tag_count; i++) {
                assert_inside(parsed.tag_keys[i], line, len);
                assert_inside(parsed.tag_values[i], line, len);
            }
            for (size_t i = 0; i < parsed.field_count; i++) {
                assert_inside(parsed.fields[i].key, line, len);
                if (parsed.fields[i].kind == LP_STRING)
                    assert_inside(parsed.fields[i].v.s, line, len);
                if (parsed.fields[i].kind == LP_FLOAT)
                    assert_true(isfinite(parsed.fields[i].v.f));
            }
        }
    }
}

/* A float needing strtod after escaped names: its NUL-terminated copy goes
 * to the scratch behind the unescaped names and must fit in len bytes. */
static void test_scratch_bounds(void **state)
{
    (void)state;
    expect_ok("\\ \\ \\ \\  \\,\\,=1.00000000000000000001");
    assert_lpstr(parsed.measurement, "    ");
    assert_lpstr(parsed.fields[0].key, ",,");
    assert_true(parsed.fields[0].v.f == 1.0);
    expect_ok("a\\,,b\\,=c\\, d\\,=\"x\\\\\",e=123456789012345678901234567890");
    assert_true(parsed.fields[1].v.f == 123456789012345678901234567890.0);
}

/* ---- reader -------------------------------------------------------------- */

struct rec_line {
    char *text;
    size_t len;
    size_t line_no;
    int status;
};

struct recorder {
    struct rec_line lines[256];
    size_t count;
    int stop_at;     /* return non-zero on this line number (0 = never) */
};

static int record_line(void *ctx, const char *line, size_t len, size_t line_no, int status)
{
    struct recorder *r = ctx;
    assert_true(r->count < 256);
    struct rec_line *l = &r->lines[r->count++];
    l->text = malloc(len + 1);
    assert_non_null(l->text);
    memcpy(l->text, line, len);
    l->text[len] = '\0';
    l->len = len;
    l->line_no = line_no;
    l->status = status;
    if (r->stop_at && (int)line_no == r->stop_at)
        return 42;
    return 0;
}

static void recorder_clear(struct recorder *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->lines[i].text);
    r->count = 0;
}

static void assert_same_lines(const struct recorder *a, const struct recorder *b)
{
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        assert_int_equal(a->lines[i].len, b->lines[i].len);
        assert_memory_equal(a->lines[i].text, b->lines[i].text, a->lines[i].len);
        assert_int_equal(a->lines[i].line_no, b->lines[i].line_no);
        assert_int_equal(a->lines[i].status, b->lines[i].status);
    }
}

/* Feeds body in the chunk sizes given by next_chunk (0 = rest). */
static void read_chunks(const char *body, size_t len, size_t max_line, const size_t *chunks,
                        size_t nchunks, struct recorder *out)
{
    struct lp_reader r;
    lp_reader_init(&r, max_line);
    size_t pos = 0, k = 0;
    while (pos < len) {
        size_t n = k < nchunks ? chunks[k++] : len - pos;
        if (n > len - pos)
            n = len - pos;
        /* copy into an exact-size heap block so ASan sees overreads */
        char *chunk = malloc(n ? n : 1);
        memcpy(chunk, body + pos, n);
        assert_int_equal(lp_reader_feed(&r, chunk, n, record_line, out), 0);
        free(chunk);
        pos += n;
    }
    assert_int_equal(lp_reader_finish(&r, record_line, out), 0);
    lp_reader_destroy(&r);
}

static const char reader_body[] =
    "cpu,host=a value=1 100\n"
    "\n"
    "# comment\r\n"
    "mem,host=b value=2.5 101\r\n"
    "this line is definitely longer than forty bytes and gets cut\n"
    "ok value=3\n"
    "lone\rcr value=4\n"
    "another one that is much too long to fit in forty bytes, no newline follows";

static void test_reader_whole(void **state)
{
    (void)state;
    struct recorder rec = { .count = 0 };
    read_chunks(reader_body, sizeof reader_body - 1, 40, NULL, 0, &rec);
    assert_int_equal(rec.count, 8);
    assert_str_eq(rec.lines[0].text, "cpu,host=a value=1 100");
    assert_int_equal(rec.lines[0].line_no, 1);
    assert_str_eq(rec.lines[1].text, "");
    assert_str_eq(rec.lines[2].text, "# comment\r");
    assert_str_eq(rec.lines[3].text, "mem,host=b value=2.5 101\r");
    assert_int_equal(rec.lines[4].status, LP_ERR_LINE_TOO_LONG);
    assert_int_equal(rec.lines[4].line_no, 5);
    assert_true(rec.lines[4].len <= 64);
    assert_memory_equal(rec.lines[4].text, "this line is definitely", 23);
    assert_str_eq(rec.lines[5].text, "ok value=3");
    assert_int_equal(rec.lines[5].line_no, 6);
    assert_int_equal(rec.lines[5].status, LP_OK);
    assert_str_eq(rec.lines[6].text, "lone\rcr value=4");
    assert_int_equal(rec.lines[7].status, LP_ERR_LINE_TOO_LONG);
    assert_int_equal(rec.lines[7].line_no, 8);
    recorder_clear(&rec);
}

static void test_reader_every_split(void **state)
{
    (void)state;
    const size_t len = sizeof reader_body - 1;
    struct recorder whole = { .count = 0 }, split = { .count = 0 };
    read_chunks(reader_body, len, 40, NULL, 0, &whole);
    for (size_t k = 0; k <= len; k++) {
        size_t chunks[1] = { k };
        read_chunks(reader_body, len, 40, chunks, 1, &split);
        assert_same_lines(&whole, &split);
        recorder_clear(&split);
    }
    /* two splits at every pair of positions of a short body */
    static const char small[] = "a v=1\nbb v=2\r\n\nccc v=3";
    for (size_t i = 0; i <= sizeof small - 1; i++)
        for (size_t j = 0; j <= sizeof small - 1 - i; j++) {
            struct recorder ref = { .count = 0 };
            size_t chunks[2] = { i, j };
            read_chunks(small, sizeof small - 1, 0, NULL, 0, &ref);
            read_chunks(small, sizeof small - 1, 0, chunks, 2, &split);
            assert_same_lines(&ref, &split);
            recorder_clear(&split);
            recorder_clear(&ref);
        }
    recorder_clear(&whole);
}

static void test_reader_bytewise_and_random(void **state)
{
    (void)state;
    const size_t len = sizeof reader_body - 1;
    struct recorder whole = { .count = 0 }, other = { .count = 0 };
    read_chunks(reader_body, len, 40, NULL, 0, &whole);

    size_t ones[sizeof reader_body];
    for (size_t i = 0; i < len; i++)
        ones[i] = 1;
    read_chunks(reader_body, len, 40, ones, len, &other);
    assert_same_lines(&whole, &other);
    recorder_clear(&other);

    unsigned seed = 7;
    for (int iter = 0; iter < 500; iter++) {
        size_t chunks[64];
        for (size_t i = 0; i < 64; i++) {
            seed = seed * 1103515245u + 12345u;
            chunks[i] = (seed >> 16) % 20;
        }
        read_chunks(reader_body, len, 40, chunks, 64, &other);
        assert_same_lines(&whole, &other);
        recorder_clear(&other);
    }
    recorder_clear(&whole);
}

/* Parse results must not depend on how the body was chunked. */
static void test_reader_parse_equivalence(void **state)
{
    (void)state;
    static const char body[] =
        "flops_any,cluster=c\\ 1,hostname=h1,type=hwthread,type-id=0 value=1.25 1700000000\n"
        "mem_used,hostname=h1 value=42i\r\n"
        "bad,,line value=1\n"
        "# comment\n"
        "str s=\"with\\\"quote\" 5\n";
    const size_t len = sizeof body - 1;
    struct recorder whole = { .count = 0 }, bytes = { .count = 0 };
    read_chunks(body, len, 0, NULL, 0, &whole);
    size_t ones[sizeof body];
    for (size_t i = 0; i < len; i++)
        ones[i] = 1;
    read_chunks(body, len, 0, ones, len, &bytes);
    assert_same_lines(&whole, &bytes);
    assert_int_equal(whole.count, 5);
    int expected[] = { LP_OK, LP_OK, LP_ERR_SYNTAX, LP_EMPTY, LP_OK };
    for (size_t i = 0; i < whole.count; i++)
        assert_int_equal(parse_n(whole.lines[i].text, whole.lines[i].len), expected[i]);
    recorder_clear(&whole);
    recorder_clear(&bytes);
}

static void test_reader_long_lines(void **state)
{
    (void)state;
    /* exactly max_line bytes is fine, one more is too long */
    struct recorder rec = { .count = 0 };
    read_chunks("12345\n123456\n1234567890123\nx", 28, 5, NULL, 0, &rec);
    assert_int_equal(rec.count, 4);
    assert_int_equal(rec.lines[0].status, LP_OK);
    assert_int_equal(rec.lines[1].status, LP_ERR_LINE_TOO_LONG);
    assert_int_equal(rec.lines[2].status, LP_ERR_LINE_TOO_LONG);
    assert_int_equal(rec.lines[2].line_no, 3);
    assert_str_eq(rec.lines[3].text, "x");
    assert_int_equal(rec.lines[3].line_no, 4);
    recorder_clear(&rec);

    /* a long line fed in small pieces is reported exactly once */
    char body[5000];
    memset(body, 'a', sizeof body);
    body[4000] = '\n';
    memcpy(body + 4001, "ok\n", 3);
    size_t n = 4004;
    size_t chunks[1000];
    for (size_t i = 0; i < 1000; i++)
        chunks[i] = 7;
    read_chunks(body, n, 100, chunks, 1000, &rec);
    assert_int_equal(rec.count, 2);
    assert_int_equal(rec.lines[0].status, LP_ERR_LINE_TOO_LONG);
    assert_int_equal(rec.lines[0].len, 64);
    assert_int_equal(rec.lines[1].status, LP_OK);
    assert_str_eq(rec.lines[1].text, "ok");
    assert_int_equal(rec.lines[1].line_no, 2);
    recorder_clear(&rec);

    /* unlimited (0) keeps long lines, carried across chunks */
    read_chunks(body, n, 0, chunks, 1000, &rec);
    assert_int_equal(rec.count, 2);
    assert_int_equal(rec.lines[0].len, 4000);
    assert_int_equal(rec.lines[0].status, LP_OK);
    recorder_clear(&rec);
}

static void test_reader_stop_and_edges(void **state)
{
    (void)state;
    struct recorder rec = { .count = 0, .stop_at = 2 };
    struct lp_reader r;
    lp_reader_init(&r, 0);
    assert_int_equal(lp_reader_feed(&r, "a\nb\nc\n", 6, record_line, &rec), 42);
    assert_int_equal(rec.count, 2);
    lp_reader_destroy(&r);
    recorder_clear(&rec);

    rec.stop_at = 0;
    lp_reader_init(&r, 0);
    assert_int_equal(lp_reader_feed(&r, "", 0, record_line, &rec), 0);
    assert_int_equal(lp_reader_finish(&r, record_line, &rec), 0);
    assert_int_equal(rec.count, 0);
    assert_int_equal(lp_reader_feed(&r, "\n\n", 2, record_line, &rec), 0);
    assert_int_equal(lp_reader_finish(&r, record_line, &rec), 0);
    assert_int_equal(rec.count, 2);
    assert_int_equal(rec.lines[1].line_no, 2);
    lp_reader_destroy(&r);
    recorder_clear(&rec);
}

/* Names are scanned 16 bytes at a time: a byte that ends a token or needs
 * a closer look is found at every position of a long token, in the first
 * 16 bytes, across the block edge and in the scalar tail. */
static void test_long_tokens_every_position(void **state)
{
    (void)state;
    char value[48], line[160];
    for (size_t at = 0; at < sizeof value; at++) {
        /* a ',' at `at` splits the tag value into two tags */
        memset(value, 'a', sizeof value);
        value[at] = ',';
        int n = snprintf(line, sizeof line, "m,k=v%.*s%s value=1 1700000000", (int)sizeof value,
                         value, at + 1 < sizeof value ? "=w" : "");
        if (at + 1 == sizeof value) {
            /* a trailing comma leaves no tag key */
            expect_err_n(line, (size_t)n, 0, "expected tag key");
            continue;
        }
        assert_int_equal(parse_n(line, (size_t)n), LP_OK);
        assert_int_equal(parsed.tag_count, 2);
        assert_int_equal(parsed.tag_values[0].len, 1 + at);
        assert_int_equal(parsed.tag_keys[1].len, sizeof value - at - 1);
        assert_lpstr(parsed.tag_values[1], "w");

        /* an escaped space at `at` stays inside the value, unescaped */
        char esc[64];
        memset(esc, 'b', sizeof esc);
        esc[at] = '\\';
        esc[at + 1] = ' ';
        n = snprintf(line, sizeof line, "m,k=%.*s value=1", (int)(sizeof value + 1), esc);
        assert_int_equal(parse_n(line, (size_t)n), LP_OK);
        assert_int_equal(parsed.tag_count, 1);
        assert_int_equal(parsed.tag_values[0].len, sizeof value);
        assert_int_equal(parsed.tag_values[0].ptr[at], ' ');

        /* a control byte at `at` of a measurement-long name is an error */
        memset(value, 'c', sizeof value);
        value[at] = '\x01';
        n = snprintf(line, sizeof line, "m,k=%.*s value=1", (int)sizeof value, value);
        assert_int_equal(parse_n(line, (size_t)n), LP_ERR_SYNTAX);

        /* '=' inside a long measurement does not end it */
        memset(value, 'd', sizeof value);
        value[at] = '=';
        n = snprintf(line, sizeof line, "%.*s,k=v value=1", (int)sizeof value, value);
        assert_int_equal(parse_n(line, (size_t)n), LP_OK);
        assert_int_equal(parsed.measurement.len, sizeof value);

        /* a byte >= 0x80 at `at`: valid UTF-8 is taken, a stray byte is not */
        memset(value, 'e', sizeof value);
        value[at] = (char)0xc3;
        if (at + 1 < sizeof value) {
            value[at + 1] = (char)0xa9;
            n = snprintf(line, sizeof line, "m,k=%.*s value=1", (int)sizeof value, value);
            assert_int_equal(parse_n(line, (size_t)n), LP_OK);
            assert_int_equal(parsed.tag_values[0].len, sizeof value);
        }
        value[at] = (char)0xff;
        n = snprintf(line, sizeof line, "m,k=%.*s value=1", (int)sizeof value, value);
        expect_err_n(line, (size_t)n, 0, "invalid utf-8");
    }
}

/* Timestamps are read eight digits at a time: every length up to 20
 * digits, a bad byte at every position, and the int64 limits. */
static void test_timestamp_digits(void **state)
{
    (void)state;
    char line[80];
    const char *digits = "12345678901234567890";
    for (size_t len = 1; len <= 18; len++) {
        snprintf(line, sizeof line, "m value=1 %.*s", (int)len, digits);
        expect_ok(line);
        int64_t want = 0;
        for (size_t i = 0; i < len; i++)
            want = want * 10 + (digits[i] - '0');
        assert_true(parsed.has_timestamp);
        assert_int_equal(parsed.timestamp, want);
        snprintf(line, sizeof line, "m value=1 -%.*s", (int)len, digits);
        expect_ok(line);
        assert_int_equal(parsed.timestamp, -want);
        /* one byte that is no digit, at every position */
        for (size_t at = 0; at < len; at++) {
            for (int bad = 0; bad < 4; bad++) {
                static const char bad_bytes[] = { '/', ':', 'a', '.' };
                snprintf(line, sizeof line, "m value=1 %.*s", (int)len, digits);
                line[10 + at] = bad_bytes[bad];
                assert_int_equal(parse(line), LP_ERR_SYNTAX);
            }
        }
    }
    expect_ok("m value=1 1234567890123456789");
    assert_int_equal(parsed.timestamp, INT64_C(1234567890123456789));
    expect_ok("m value=1 9223372036854775807");
    assert_int_equal(parsed.timestamp, INT64_MAX);
    expect_ok("m value=1 -9223372036854775808");
    assert_int_equal(parsed.timestamp, INT64_MIN);
    expect_err("m value=1 9223372036854775808", 0, "out of range");
    expect_err("m value=1 -9223372036854775809", 0, "out of range");
    expect_err("m value=1 12345678901234567890", 0, "out of range");
    expect_ok("m value=1 000000000000000000001");
    assert_int_equal(parsed.timestamp, 1);
    /* integer fields use the same reader */
    expect_ok("m value=123456789012345678i");
    assert_int_equal(parsed.fields[0].v.i, INT64_C(123456789012345678));
    expect_ok("m value=18446744073709551615u");
    assert_true(parsed.fields[0].v.u == UINT64_MAX);
    expect_err("m value=18446744073709551616u", 0, "out of range");
}

/* lp_tag_section finds the bytes between measurement and fields (up to the
 * first space, at any distance from a 16-byte edge) and declines escapes
 * and lines without fields; lp_parse_fields from its end gives what
 * lp_parse gives, errors and their columns included. */
static void test_tag_section_and_fields(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "cpu,hostname=a,type=hwthread,type-id=3 value=1.5 1700000000",
        "cpu,hostname=a   value=2,x=3i 1700000000\r",
        "cpu value=1",
        "cpu,host=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa value=-0.25",
        "cpu,hostname=a value=oops 1700000000",
        "cpu,hostname=a value=1 17000x",
        "cpu,hostname=a value=1 1700000000 trailing",
        "cpu,hostname=a ",
        "cpu,hostname=a value=\"s\",b=t 5",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *line = lines[i];
        size_t len = strlen(line);
        struct lp_str name;
        bool esc;
        struct lp_error e1, e2;
        assert_int_equal(lp_peek_measurement(line, len, &name, &esc, &e1), LP_OK);
        size_t end;
        assert_true(lp_tag_section(line, len, name, &end));
        assert_int_equal(line[end], ' ');
        assert_null(memchr(line, ' ', end));
        static struct lp_line whole, rest;
        static char scratch2[256];
        memset(&e1, 0, sizeof e1);
        memset(&e2, 0, sizeof e2);
        int rc1 = lp_parse(line, len, scratch_buf, &whole, &e1);
        int rc2 = lp_parse_fields(line, len, end, scratch2, NULL, &rest, &e2);
        assert_int_equal(rc1, rc2);
        if (rc1 != LP_OK) {
            assert_int_equal(e1.column, e2.column);
            assert_string_equal(e1.message, e2.message);
            continue;
        }
        assert_int_equal(rest.tag_count, 0);
        assert_int_equal(rest.field_count, whole.field_count);
        assert_int_equal(rest.has_timestamp, whole.has_timestamp);
        assert_int_equal(rest.timestamp, whole.timestamp);
        for (size_t f = 0; f < whole.field_count; f++) {
            assert_int_equal(rest.fields[f].kind, whole.fields[f].kind);
            assert_memory_equal(&rest.fields[f].v, &whole.fields[f].v, sizeof whole.fields[f].v);
        }
    }
    /* declined: an escape before the first space, no space at all */
    static const char *const declined[] = {
        "cpu,hostname=a\\ b value=1", "cpu,hostname=a\\,b value=1", "cpu,hostname=a",
        "cpu,host=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\ value=1",
    };
    for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++) {
        const char *line = declined[i];
        struct lp_str name;
        bool esc;
        struct lp_error e;
        assert_int_equal(lp_peek_measurement(line, strlen(line), &name, &esc, &e), LP_OK);
        size_t end;
        assert_false(lp_tag_section(line, strlen(line), name, &end));
    }
}

/* A timestamp memo carried across lines never changes a result: a token
 * that only starts like the remembered one (longer, followed by a digit
 * or junk), a shorter one, a negative one, timestamps of every length and
 * one too long to remember all parse exactly as without it. */
static void test_timestamp_memo(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "m,h=a value=1 1700000000",
        "m,h=a value=2 1700000000",       /* remembered */
        "m,h=a value=3 17000000001",      /* the same ten bytes, then one more */
        "m,h=a value=4 1700000000x",      /* the same, then junk: an error */
        "m,h=a value=5 1700000000 tail",  /* the same, then text: an error */
        "m,h=a value=6 1700000000   ",    /* the same, trailing spaces */
        "m,h=a value=7 170000000",        /* shorter */
        "m,h=a value=8 -1700000000",
        "m,h=a value=9 -1700000000",
        "m,h=a value=10 1700000000000",   /* ms */
        "m,h=a value=11 1700000000000000", /* us */
        "m,h=a value=12 1700000000000000000", /* ns */
        "m,h=a value=13 1700000000000000000",
        "m,h=a value=14 1700000000000000001",
        "m,h=a value=15 99999999999999999999", /* out of range: an error */
        "m,h=a value=16 0000000000000000000001700000000", /* too long to remember */
        "m,h=a value=17 0000000000000000000001700000000",
        "m,h=a value=18 1",
        "m,h=a value=19 1",
        "m,h=a value=20",                 /* no timestamp */
        "m,h=a value=21 1",
    };
    struct lp_memo memo;
    memset(&memo, 0, sizeof memo);
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *line = lines[i];
        size_t len = strlen(line);
        static struct lp_line whole, peeked, rest;
        static char scratch2[256], scratch3[256];
        struct lp_error e1, e2, e3;
        memset(&e1, 0, sizeof e1);
        memset(&e2, 0, sizeof e2);
        memset(&e3, 0, sizeof e3);
        int rc1 = lp_parse(line, len, scratch_buf, &whole, &e1);
        struct lp_str name;
        bool esc;
        assert_int_equal(lp_peek_measurement(line, len, &name, &esc, &e2), LP_OK);
        int rc2 = lp_parse_peeked(line, len, name, esc, scratch2, &memo, &peeked, &e2);
        size_t end;
        assert_true(lp_tag_section(line, len, name, &end));
        int rc3 = lp_parse_fields(line, len, end, scratch3, &memo, &rest, &e3);
        assert_int_equal(rc1, rc2);
        assert_int_equal(rc1, rc3);
        if (rc1 != LP_OK) {
            assert_int_equal(e1.column, e2.column);
            assert_string_equal(e1.message, e2.message);
            assert_int_equal(e1.column, e3.column);
            assert_string_equal(e1.message, e3.message);
            continue;
        }
        assert_int_equal(peeked.has_timestamp, whole.has_timestamp);
        assert_int_equal(rest.has_timestamp, whole.has_timestamp);
        assert_true(peeked.timestamp == whole.timestamp && rest.timestamp == whole.timestamp);
    }
    /* the last timestamp parsed is the one remembered */
    assert_int_equal(memo.ts_len, 1);
    assert_int_equal(memo.timestamp, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_line),
        cmocka_unit_test(test_minimal_and_spacing),
        cmocka_unit_test(test_empty_and_comments),
        cmocka_unit_test(test_crlf_and_lone_cr),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_string_fields),
        cmocka_unit_test(test_value_kinds),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_float_matches_strtod),
        cmocka_unit_test(test_tag_errors),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_timestamp_errors),
        cmocka_unit_test(test_measurement_errors),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_scratch_bounds),
        cmocka_unit_test(test_reader_whole),
        cmocka_unit_test(test_reader_every_split),
        cmocka_unit_test(test_reader_bytewise_and_random),
        cmocka_unit_test(test_reader_parse_equivalence),
        cmocka_unit_test(test_reader_long_lines),
        cmocka_unit_test(test_reader_stop_and_edges),
        cmocka_unit_test(test_long_tokens_every_position),
        cmocka_unit_test(test_timestamp_digits),
        cmocka_unit_test(test_tag_section_and_fields),
        cmocka_unit_test(test_timestamp_memo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
