/*
 * jwt — see jwt.h. Error texts follow golang-jwt v4, which upstream uses.
 */
#include "net/jwt.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The time claims of a verified token: what a cache hit re-checks. */
struct jwt_claims {
    bool has_exp, has_iat, has_nbf;
    int64_t exp, iat, nbf;
};

struct jwt_cache_entry {
    char *token;            /* owned; NULL = free slot */
    size_t len;
    struct jwt_claims claims;
};

struct jwt_verifier {
    unsigned char key[crypto_sign_PUBLICKEYBYTES];
    bool key_valid;
    pthread_mutex_t lock;   /* guards the cache */
    struct jwt_cache_entry cache[JWT_CACHE_SIZE];
    size_t cached;
};

/* ---- lifetime ----------------------------------------------------------- */

int jwt_verifier_create(const char *public_key_base64, struct jwt_verifier **out)
{
    if (sodium_init() < 0)
        return JWT_ENOMEM;
    unsigned char raw[256];
    size_t raw_len = 0;
    const char *end = NULL;
    size_t text_len = strlen(public_key_base64);
    if (sodium_base642bin(raw, sizeof raw, public_key_base64, text_len, NULL, &raw_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != public_key_base64 + text_len)
        return JWT_EKEY;
    struct jwt_verifier *v = calloc(1, sizeof(*v));
    if (!v)
        return JWT_ENOMEM;
    v->key_valid = raw_len == crypto_sign_PUBLICKEYBYTES;
    if (v->key_valid)
        memcpy(v->key, raw, sizeof v->key);
    pthread_mutex_init(&v->lock, NULL);
    *out = v;
    return 0;
}

static void cache_clear(struct jwt_verifier *v)
{
    for (size_t i = 0; i < JWT_CACHE_SIZE; i++) {
        free(v->cache[i].token);
        v->cache[i].token = NULL;
    }
    v->cached = 0;
}

void jwt_verifier_destroy(struct jwt_verifier *v)
{
    if (!v)
        return;
    cache_clear(v);
    pthread_mutex_destroy(&v->lock);
    free(v);
}

/* ---- claims --------------------------------------------------------------- */

/* A time claim counts when it is a non-zero number (fraction truncated). */
static bool time_claim(json_t *payload, const char *name, int64_t *out)
{
    json_t *c = json_object_get(payload, name);
    if (!c || !json_is_number(c))
        return false;
    double d = json_number_value(c);
    if (!isfinite(d) || d == 0 || d > 9.2e18 || d < -9.2e18)
        return false;
    *out = (int64_t)d;
    return true;
}

/* golang-jwt v4 MapClaims.Valid: exp, iat, nbf; the last failure's text wins. */
static const char *claims_problem(const struct jwt_claims *c, int64_t now)
{
    const char *problem = NULL;
    if (c->has_exp && !(now < c->exp))
        problem = "Token is expired";
    if (c->has_iat && !(now >= c->iat))
        problem = "Token used before issued";
    if (c->has_nbf && !(now >= c->nbf))
        problem = "Token is not valid yet";
    return problem;
}

/* ---- parsing -------------------------------------------------------------- */

/* base64url with or without padding; *out is malloc'd. */
static bool b64url_decode(const char *s, size_t len, unsigned char **out, size_t *out_len)
{
    unsigned char *buf = malloc(len + 1);
    if (!buf)
        return false;
    const char *end = NULL;
    int variants[2] = {sodium_base64_VARIANT_URLSAFE_NO_PADDING, sodium_base64_VARIANT_URLSAFE};
    for (int i = 0; i < 2; i++) {
        if (sodium_base642bin(buf, len + 1, s, len, NULL, out_len, &end, variants[i]) == 0 &&
            end == s + len) {
            *out = buf;
            return true;
        }
    }
    free(buf);
    return false;
}

static json_t *decode_object(const char *s, size_t len)
{
    unsigned char *raw;
    size_t raw_len;
    if (!b64url_decode(s, len, &raw, &raw_len))
        return NULL;
    json_t *obj = json_loadb((const char *)raw, raw_len, 0, NULL);
    free(raw);
    if (obj && !json_is_object(obj)) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

static const char *check_alg(json_t *header)
{
    static const char *const known[] = {"none",  "HS256", "HS384", "HS512", "RS256", "RS384",
                                        "RS512", "ES256", "ES384", "ES512", "PS256", "PS384",
                                        "PS512", NULL};
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg)
        return "signing method (alg) is unavailable.";
    if (strcmp(alg, "EdDSA") == 0)
        return NULL;
    for (int i = 0; known[i]; i++)
        if (strcmp(alg, known[i]) == 0)
            return "only Ed25519/EdDSA supported";
    return "signing method (alg) is unavailable.";
}

static const char *check_signature(const struct jwt_verifier *v, const char *token,
                                   size_t signed_len, const char *sig, size_t sig_len)
{
    if (!v->key_valid)
        return "key is invalid";
    unsigned char *raw;
    size_t raw_len;
    if (!b64url_decode(sig, sig_len, &raw, &raw_len))
        return "illegal base64 data in the signature";
    bool ok = raw_len == crypto_sign_BYTES &&
              crypto_sign_verify_detached(raw, (const unsigned char *)token, signed_len,
                                          v->key) == 0;
    free(raw);
    return ok ? NULL : "ed25519: verification error";
}

/* Full verification; fills *claims for the cache. */
static const char *verify_full(const struct jwt_verifier *v, const char *token, size_t len,
                               int64_t now, struct jwt_claims *claims)
{
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return "token contains an invalid number of segments";
    json_t *header = decode_object(token, (size_t)(dot1 - token));
    json_t *payload = header ? decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1)) : NULL;
    const char *problem = NULL;
    if (!header)
        problem = "token header is not a base64url-encoded JSON object";
    else if (!payload)
        problem = "token payload is not a base64url-encoded JSON object";
    else
        problem = check_alg(header);
    if (!problem)
        problem = check_signature(v, token, (size_t)(dot2 - token), dot2 + 1,
                                  len - (size_t)(dot2 + 1 - token));
    if (!problem) {
        claims->has_exp = time_claim(payload, "exp", &claims->exp);
        claims->has_iat = time_claim(payload, "iat", &claims->iat);
        claims->has_nbf = time_claim(payload, "nbf", &claims->nbf);
        problem = claims_problem(claims, now);
    }
    json_decref(header);
    json_decref(payload);
    return problem;
}

/* ---- cache ------------------------------------------------------------------ */

static size_t cache_slot(const char *token, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ull;
    return (size_t)(h % JWT_CACHE_SIZE);
}

/* Linear probing over the whole table: index of the entry or of a free slot. */
static size_t cache_find(const struct jwt_verifier *v, const char *token, size_t len, bool *found)
{
    size_t i = cache_slot(token, len);
    for (size_t n = 0; n < JWT_CACHE_SIZE; n++, i = (i + 1) % JWT_CACHE_SIZE) {
        const struct jwt_cache_entry *e = &v->cache[i];
        if (!e->token) {
            *found = false;
            return i;
        }
        if (e->len == len && memcmp(e->token, token, len) == 0) {
            *found = true;
            return i;
        }
    }
    *found = false;
    return JWT_CACHE_SIZE;
}

/* Rebuilds the table without the entries whose claims fail at now. */
static void cache_evict_invalid(struct jwt_verifier *v, int64_t now)
{
    struct jwt_cache_entry keep[JWT_CACHE_SIZE];
    size_t kept = 0;
    for (size_t i = 0; i < JWT_CACHE_SIZE; i++) {
        struct jwt_cache_entry *e = &v->cache[i];
        if (!e->token)
            continue;
        if (claims_problem(&e->claims, now))
            free(e->token);
        else
            keep[kept++] = *e;
        e->token = NULL;
    }
    v->cached = 0;
    for (size_t k = 0; k < kept; k++) {
        bool found;
        size_t i = cache_find(v, keep[k].token, keep[k].len, &found);
        v->cache[i] = keep[k];
        v->cached++;
    }
}

static void cache_insert(struct jwt_verifier *v, const char *token, size_t len,
                         const struct jwt_claims *claims, int64_t now)
{
    if (v->cached >= JWT_CACHE_SIZE * 3 / 4)
        cache_evict_invalid(v, now);
    if (v->cached >= JWT_CACHE_SIZE * 3 / 4)
        cache_clear(v);
    bool found;
    size_t i = cache_find(v, token, len, &found);
    if (found || i == JWT_CACHE_SIZE)
        return;
    char *copy = malloc(len);
    if (!copy)
        return; /* only the cache is lost */
    memcpy(copy, token, len);
    v->cache[i] = (struct jwt_cache_entry){copy, len, *claims};
    v->cached++;
}

/* Removes entry i, re-placing the probe chain after it. */
static void cache_remove(struct jwt_verifier *v, size_t i)
{
    free(v->cache[i].token);
    v->cache[i].token = NULL;
    v->cached--;
    for (size_t j = (i + 1) % JWT_CACHE_SIZE; v->cache[j].token; j = (j + 1) % JWT_CACHE_SIZE) {
        struct jwt_cache_entry e = v->cache[j];
        v->cache[j].token = NULL;
        bool found;
        size_t k = cache_find(v, e.token, e.len, &found);
        v->cache[k] = e;
    }
}

int jwt_verify(struct jwt_verifier *v, const char *token, size_t len, int64_t now,
               const char **reason)
{
    pthread_mutex_lock(&v->lock);
    bool found;
    size_t i = cache_find(v, token, len, &found);
    if (found) {
        if (!claims_problem(&v->cache[i].claims, now)) {
            pthread_mutex_unlock(&v->lock);
            return 0;
        }
        cache_remove(v, i);
    }
    pthread_mutex_unlock(&v->lock);

    struct jwt_claims claims = {0};
    const char *problem = verify_full(v, token, len, now, &claims);
    if (problem) {
        *reason = problem;
        return JWT_EINVALID;
    }
    pthread_mutex_lock(&v->lock);
    cache_insert(v, token, len, &claims, now);
    pthread_mutex_unlock(&v->lock);
    return 0;
}
