/*
 * gojson — request decoding with Go encoding/json semantics on top of
 * jansson, shared by the api/ endpoints (internal to src/api/).
 *
 * Go rules reproduced (docs/http-api.md, "Query"): only the first JSON value of a
 * body is read; an empty body is "EOF" and a truncated one "unexpected
 * EOF"; object keys match struct fields exactly or case-insensitively;
 * `null` leaves a field alone; int64 fields reject fractions and strings;
 * type errors read "json: cannot unmarshal <kind> into Go struct field
 * <Struct>.<path> of type <type>".
 *
 * Decoded strings (struct gostr) point into the jansson tree and live as
 * long as it does; arrays of them are malloc'd and owned by the caller.
 */
#ifndef CCMS_GOJSON_H
#define CCMS_GOJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"
#include "util/jsonw.h"

#define GOJSON_ERR_MAX 256

struct gostr {
    const char *s;
    size_t len;
};

/* Where a value sits, for type error messages. struct_name NULL means a
 * top-level Go value (message "into Go value of type <type>"). */
struct gojson_where {
    const char *struct_name;   /* innermost Go struct, e.g. "APIQuery" */
    const char *path;          /* field path from the root, e.g. "queries.metric" */
};

/* Parses the first JSON value of body (any type, NUL allowed in strings).
 * Returns 0 with *out set (json_decref it), or -1 with a message in err. */
int gojson_parse(const char *body, size_t len, json_t **out, char *err, size_t err_len);

/* Points jansson's allocation functions at gojson's (once; later calls do
 * nothing). main calls it before any thread starts, so that no thread
 * reads them while they change; gojson_parse_in calls it too. */
void gojson_init(void);

/* The same, with the tree built in arena a (util/arena.h): the tree lives
 * until arena_free_all(a) and must not be json_decref'd. For a request's
 * body, read and dropped with the request: a query's few hundred JSON
 * objects then cost no trips through the general allocator. */
int gojson_parse_in(struct arena *a, const char *body, size_t len, json_t **out, char *err,
                    size_t err_len);

/* Go's key-to-field matching: exact, or equal under Go's case folding. */
bool gojson_key_matches(const char *key, const char *field);

/* Writes the Go type error for v into err. Always returns -1. */
int gojson_type_error(const json_t *v, const struct gojson_where *where, const char *go_type,
                      char *err, size_t err_len);

/* Field decoders: null leaves *out alone; a wrong type gives -1 and a Go
 * type error in err; otherwise 0. */
int gojson_string(const json_t *v, const struct gojson_where *where, struct gostr *out,
                  char *err, size_t err_len);
int gojson_int64(const json_t *v, const struct gojson_where *where, int64_t *out,
                 char *err, size_t err_len);
int gojson_bool(const json_t *v, const struct gojson_where *where, bool *out,
                char *err, size_t err_len);
int gojson_float(const json_t *v, const struct gojson_where *where, double *out,
                 char *err, size_t err_len);

/*
 * []string: null gives *present = false and no array; an array gives
 * *present = true and a malloc'd array (NULL when empty) of its elements,
 * null elements being "". Returns 0, -1 (type error in err) or -ENOMEM.
 */
int gojson_strings(const json_t *v, const struct gojson_where *where, struct gostr **out,
                   size_t *count, bool *present, char *err, size_t err_len);

/* Appends s quoted like Go's strconv.Quote (used in %#v and ParseInt errors). */
void gojson_quote(struct jbuf *b, const char *s, size_t len);

#endif
