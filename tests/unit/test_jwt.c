/* Tests for net/jwt.c: the upstream doc token, tokens signed here with
 * every claim combination, rejected algorithms and malformed tokens, and
 * the cache re-checking time claims on every hit. */
#include "testutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/jwt.h"

#define DOC_KEY "kzfYrYy+TzpanWZHJ5qSdMj5uKUWgq74BWhQG6copP0="
#define DOC_TOKEN                                                                            \
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJFZERTQSJ9.eyJ1c2VyIjoiYWRtaW4iLCJyb2xlcyI6WyJST0xFX0FETUlOIiwi" \
    "Uk9MRV9BTkFMWVNUIiwiUk9MRV9VU0VSIl19.d-3_3FZTsadPjDEdsWrrQ7nS0edMAR4zjl-eK7rJU3HziNBfI9PD" \
    "HDIpJVHTNN5E5SlLGLFXctWyKAkwhXL-Dw"

static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
static char pk_b64[64];

static int setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    crypto_sign_keypair(pk, sk);
    sodium_bin2base64(pk_b64, sizeof pk_b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* Builds header.payload.signature with our key; variant picks padding. */
static char *sign(const char *header, const char *payload, int variant)
{
    static char token[4096];
    char h[1024], p[1024], sig_b64[128];
    sodium_bin2base64(h, sizeof h, (const unsigned char *)header, strlen(header), variant);
    sodium_bin2base64(p, sizeof p, (const unsigned char *)payload, strlen(payload), variant);
    snprintf(token, sizeof token, "%s.%s", h, p);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)token, strlen(token), sk);
    sodium_bin2base64(sig_b64, sizeof sig_b64, sig, sizeof sig, variant);
    strcat(token, ".");
    strcat(token, sig_b64);
    return token;
}

#define EDDSA "{\"alg\":\"EdDSA\",\"typ\":\"JWT\"}"
#define NOPAD sodium_base64_VARIANT_URLSAFE_NO_PADDING

static const char *verify(struct jwt_verifier *v, const char *token, int64_t now)
{
    const char *reason = NULL;
    int rc = jwt_verify(v, token, strlen(token), now, &reason);
    if (rc == 0)
        return "ok";
    assert_int_equal(rc, JWT_EINVALID);
    return reason;
}

static void test_upstream_doc_token(void **state)
{
    (void)state;
    struct jwt_verifier *v;
    assert_int_equal(jwt_verifier_create(DOC_KEY, &v), 0);
    assert_str_eq(verify(v, DOC_TOKEN, 1700000000), "ok");
    assert_str_eq(verify(v, DOC_TOKEN, 1700000000), "ok"); /* cached */
    char tampered[] = DOC_TOKEN;
    tampered[strlen(tampered) - 5] ^= 1;
    assert_str_eq(verify(v, tampered, 1700000000), "ed25519: verification error");
    jwt_verifier_destroy(v);
}

static void test_time_claims(void **state)
{
    (void)state;
    struct jwt_verifier *v;
    assert_int_equal(jwt_verifier_create(pk_b64, &v), 0);
    assert_str_eq(verify(v, sign(EDDSA, "{\"exp\":2000}", NOPAD), 1999), "ok");
    assert_str_eq(verify(v, sign(EDDSA, "{\"exp\":2000}", NOPAD), 2000), "Token is expired");
    assert_str_eq(verify(v, sign(EDDSA, "{\"exp\":2000.9}", NOPAD), 2000), "Token is expired");
    assert_str_eq(verify(v, sign(EDDSA, "{\"nbf\":2000}", NOPAD), 1999), "Token is not valid yet");
    assert_str_eq(verify(v, sign(EDDSA, "{\"nbf\":2000}", NOPAD), 2000), "ok");
    assert_str_eq(verify(v, sign(EDDSA, "{\"iat\":2000}", NOPAD), 1999),
                  "Token used before issued");
    /* several failures: the last check (nbf) names the problem */
    assert_str_eq(verify(v, sign(EDDSA, "{\"exp\":10,\"nbf\":3000}", NOPAD), 2000),
                  "Token is not valid yet");
    /* zero and non-numeric claims are ignored */
    assert_str_eq(verify(v, sign(EDDSA, "{\"exp\":0,\"nbf\":\"later\"}", NOPAD), 2000), "ok");
    /* padded base64url is accepted too */
    assert_str_eq(verify(v, sign(EDDSA, "{\"user\":\"a\"}", sodium_base64_VARIANT_URLSAFE), 1),
                  "ok");
    jwt_verifier_destroy(v);
}

static void test_cache_rechecks_expiry(void **state)
{
    (void)state;
    struct jwt_verifier *v;
    assert_int_equal(jwt_verifier_create(pk_b64, &v), 0);
    char token[4096];
    strcpy(token, sign(EDDSA, "{\"exp\":5000}", NOPAD));
    assert_str_eq(verify(v, token, 4000), "ok");
    assert_str_eq(verify(v, token, 4999), "ok");
    assert_str_eq(verify(v, token, 5000), "Token is expired");
    assert_str_eq(verify(v, token, 4000), "ok"); /* verified again in full */
    /* far more distinct tokens than the cache holds */
    for (int i = 0; i < 3 * JWT_CACHE_SIZE; i++) {
        char payload[64];
        snprintf(payload, sizeof payload, "{\"n\":%d,\"exp\":%d}", i, i % 2 ? 100 : 9000);
        assert_str_eq(verify(v, sign(EDDSA, payload, NOPAD), 50), "ok");
    }
    assert_str_eq(verify(v, token, 4000), "ok");
    jwt_verifier_destroy(v);
}

static void test_rejected_tokens(void **state)
{
    (void)state;
    struct jwt_verifier *v;
    assert_int_equal(jwt_verifier_create(pk_b64, &v), 0);
    assert_str_eq(verify(v, sign("{\"alg\":\"HS256\"}", "{}", NOPAD), 1),
                  "only Ed25519/EdDSA supported");
    assert_str_eq(verify(v, sign("{\"alg\":\"none\"}", "{}", NOPAD), 1),
                  "only Ed25519/EdDSA supported");
    assert_str_eq(verify(v, sign("{\"alg\":\"XYZ\"}", "{}", NOPAD), 1),
                  "signing method (alg) is unavailable.");
    assert_str_eq(verify(v, sign("{}", "{}", NOPAD), 1), "signing method (alg) is unavailable.");
    assert_str_eq(verify(v, "abc", 1), "token contains an invalid number of segments");
    assert_str_eq(verify(v, "a.b", 1), "token contains an invalid number of segments");
    assert_str_eq(verify(v, "a.b.c.d", 1), "token contains an invalid number of segments");
    assert_str_eq(verify(v, "!!.??.**", 1), "token header is not a base64url-encoded JSON object");
    assert_str_eq(verify(v, sign(EDDSA, "[1,2]", NOPAD), 1),
                  "token payload is not a base64url-encoded JSON object");
    /* signed by another key */
    struct jwt_verifier *doc;
    assert_int_equal(jwt_verifier_create(DOC_KEY, &doc), 0);
    assert_str_eq(verify(doc, sign(EDDSA, "{}", NOPAD), 1), "ed25519: verification error");
    jwt_verifier_destroy(doc);
    /* the signature cut short */
    char token[4096];
    strcpy(token, sign(EDDSA, "{}", NOPAD));
    token[strlen(token) - 10] = '\0';
    assert_str_eq(verify(v, token, 1), "ed25519: verification error");
    jwt_verifier_destroy(v);
}

static void test_keys(void **state)
{
    (void)state;
    struct jwt_verifier *v;
    assert_int_equal(jwt_verifier_create("not base64!", &v), JWT_EKEY);
    assert_int_equal(jwt_verifier_create("AAAA", &v), 0); /* 3 bytes: every token rejected */
    assert_str_eq(verify(v, DOC_TOKEN, 1), "key is invalid");
    jwt_verifier_destroy(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_doc_token),
        cmocka_unit_test(test_time_claims),
        cmocka_unit_test(test_cache_rechecks_expiry),
        cmocka_unit_test(test_rejected_tokens),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
