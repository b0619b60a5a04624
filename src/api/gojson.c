/*
 * gojson — see gojson.h.
 */
#include "api/gojson.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The arena a parse on this thread builds its tree in (gojson_parse_in),
 * or NULL. jansson's allocation functions are set once, for the whole
 * process, to these two: with no arena they are malloc and free; during a
 * parse into an arena they allocate there, and what jansson frees while
 * parsing (the lexer's buffers as they grow, a tree cut short by an error)
 * is left to the arena. A tree built in an arena is never json_decref'd:
 * the arena is freed instead.
 */
static _Thread_local struct arena *parse_arena;

static void *gojson_malloc(size_t size)
{
    return parse_arena ? arena_alloc(parse_arena, size) : malloc(size);
}

static void gojson_free(void *p)
{
    if (parse_arena == NULL || !arena_owns(parse_arena, p))
        free(p);
}

static pthread_once_t alloc_funcs_once = PTHREAD_ONCE_INIT;

static void set_alloc_funcs(void)
{
    json_set_alloc_funcs(gojson_malloc, gojson_free);
}

void gojson_init(void)
{
    pthread_once(&alloc_funcs_once, set_alloc_funcs);
}

static bool gojson_only_space(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            return false;
    return true;
}

int gojson_parse_in(struct arena *a, const char *body, size_t len, json_t **out, char *err,
                    size_t err_len)
{
    gojson_init();
    parse_arena = a;
    int rc = gojson_parse(body, len, out, err, err_len);
    parse_arena = NULL;
    return rc;
}

int gojson_parse(const char *body, size_t len, json_t **out, char *err, size_t err_len)
{
    json_error_t je;
    *out = NULL;
    if (body == NULL || gojson_only_space(body, len)) {
        snprintf(err, err_len, "EOF");
        return -1;
    }
    *out = json_loadb(body, len, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &je);
    if (*out != NULL)
        return 0;
    if (json_error_code(&je) == json_error_premature_end_of_input)
        snprintf(err, err_len, "unexpected EOF");
    else
        snprintf(err, err_len, "%s (line %d, column %d)", je.text, je.line, je.column);
    return -1;
}

/* Upper-case form of the character at *p under Go's folding for ASCII
 * field names; advances *p. Returns 0 for characters that cannot equal an
 * ASCII letter (Go folds U+017F to 'S' and U+212A KELVIN SIGN to 'K'). */
static int gojson_fold_next(const unsigned char **p)
{
    const unsigned char *s = *p;
    if (s[0] < 0x80) {
        *p = s + 1;
        return (s[0] >= 'a' && s[0] <= 'z') ? s[0] - 'a' + 'A' : s[0];
    }
    if (s[0] == 0xc5 && s[1] == 0xbf) {
        *p = s + 2;
        return 'S';
    }
    if (s[0] == 0xe2 && s[1] == 0x84 && s[2] == 0xaa) {
        *p = s + 3;
        return 'K';
    }
    *p = s + 1;
    return 0;
}

bool gojson_key_matches(const char *key, const char *field)
{
    const unsigned char *k = (const unsigned char *)key;
    const unsigned char *f = (const unsigned char *)field;
    while (*k != '\0' && *f != '\0') {
        int a = gojson_fold_next(&k);
        int b = gojson_fold_next(&f);
        if (a == 0 || a != b)
            return false;
    }
    return *k == '\0' && *f == '\0';
}

static void gojson_kind(const json_t *v, bool with_number, char *out, size_t out_len)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: snprintf(out, out_len, "object"); break;
    case JSON_ARRAY: snprintf(out, out_len, "array"); break;
    case JSON_STRING: snprintf(out, out_len, "string"); break;
    case JSON_TRUE:
    case JSON_FALSE: snprintf(out, out_len, "bool"); break;
    case JSON_INTEGER:
        snprintf(out, out_len, with_number ? "number %lld" : "number",
                 (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        if (with_number)
            snprintf(out, out_len, "number %.17g", json_real_value(v));
        else
            snprintf(out, out_len, "number");
        break;
    default: snprintf(out, out_len, "null"); break;
    }
}

int gojson_type_error(const json_t *v, const struct gojson_where *where, const char *go_type,
                      char *err, size_t err_len)
{
    char kind[48];
    bool number_text = strcmp(go_type, "int64") == 0;
    gojson_kind(v, number_text, kind, sizeof(kind));
    if (where->struct_name == NULL)
        snprintf(err, err_len, "json: cannot unmarshal %s into Go value of type %s", kind,
                 go_type);
    else
        snprintf(err, err_len, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
                 kind, where->struct_name, where->path, go_type);
    return -1;
}

int gojson_string(const json_t *v, const struct gojson_where *where, struct gostr *out,
                  char *err, size_t err_len)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return gojson_type_error(v, where, "string", err, err_len);
    out->s = json_string_value(v);
    out->len = json_string_length(v);
    return 0;
}

int gojson_int64(const json_t *v, const struct gojson_where *where, int64_t *out,
                 char *err, size_t err_len)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return gojson_type_error(v, where, "int64", err, err_len);
    *out = (int64_t)json_integer_value(v);
    return 0;
}

int gojson_bool(const json_t *v, const struct gojson_where *where, bool *out,
                char *err, size_t err_len)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return gojson_type_error(v, where, "bool", err, err_len);
    *out = json_is_true(v);
    return 0;
}

int gojson_float(const json_t *v, const struct gojson_where *where, double *out,
                 char *err, size_t err_len)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return gojson_type_error(v, where, "float64", err, err_len);
    *out = json_number_value(v);
    return 0;
}

int gojson_strings(const json_t *v, const struct gojson_where *where, struct gostr **out,
                   size_t *count, bool *present, char *err, size_t err_len)
{
    *out = NULL;
    *count = 0;
    *present = false;
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return gojson_type_error(v, where, "[]string", err, err_len);
    size_t n = json_array_size(v);
    struct gostr *items = n ? calloc(n, sizeof(*items)) : NULL;
    if (n && items == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (gojson_string(json_array_get(v, i), where, &items[i], err, err_len) < 0) {
            free(items);
            return -1;
        }
        if (items[i].s == NULL)
            items[i].s = "";
    }
    *out = items;
    *count = n;
    *present = true;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4) and its code point, or 0. */
static size_t gojson_utf8(const unsigned char *s, size_t avail, uint32_t *cp)
{
    size_t n;
    uint32_t c, min;
    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (avail < n)
        return 0;
    c = s[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

static bool gojson_printable(uint32_t c)
{
    return !(c < 0xa0 || c == 0xad || c == 0x2028 || c == 0x2029 || c == 0xfeff);
}

static void gojson_quote_ascii(struct jbuf *b, unsigned char c)
{
    const char *esc = NULL;
    switch (c) {
    case '\a': esc = "\\a"; break;
    case '\b': esc = "\\b"; break;
    case '\f': esc = "\\f"; break;
    case '\n': esc = "\\n"; break;
    case '\r': esc = "\\r"; break;
    case '\t': esc = "\\t"; break;
    case '\v': esc = "\\v"; break;
    case '"': esc = "\\\""; break;
    case '\\': esc = "\\\\"; break;
    default: break;
    }
    if (esc != NULL)
        jbuf_puts(b, esc);
    else if (c < 0x20 || c == 0x7f)
        jbuf_printf(b, "\\x%02x", c);
    else
        jbuf_putc(b, (char)c);
}

void gojson_quote(struct jbuf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    jbuf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n;
        if (p[i] < 0x80) {
            gojson_quote_ascii(b, p[i++]);
        } else if ((n = gojson_utf8(p + i, len - i, &cp)) == 0) {
            jbuf_printf(b, "\\x%02x", p[i++]);
        } else {
            if (gojson_printable(cp))
                jbuf_append(b, p + i, n);
            else
                jbuf_printf(b, cp > 0xffff ? "\\U%08x" : "\\u%04x", (unsigned)cp);
            i += n;
        }
    }
    jbuf_putc(b, '"');
}
