/*
 * jwt — verification of EdDSA (Ed25519) JSON Web Tokens for the API
 * (docs/http-api.md, "Authentication").
 *
 * A compact JWS is parsed by hand: three base64url segments (with or
 * without padding), header and payload JSON objects, header alg "EdDSA",
 * an Ed25519 signature over "<header>.<payload>" checked with libsodium.
 * Time claims exp / iat / nbf are checked when present, numeric and
 * non-zero; other claims (roles, user) are not, as upstream.
 *
 * Verified tokens are cached by their exact text (at most JWT_CACHE_SIZE);
 * every cache hit re-checks the time claims, and a hit that fails them is
 * evicted and verified again in full. The verifier owns its cache and
 * guards it with its own mutex, so one verifier serves all server threads.
 */
#ifndef CCMS_JWT_H
#define CCMS_JWT_H

#include <stddef.h>
#include <stdint.h>

#define JWT_CACHE_SIZE 1024

enum jwt_error {
    JWT_EINVALID = -5001,   /* token rejected; the message says why */
    JWT_EKEY = -5002,       /* the configured key is not valid base64 */
    JWT_ENOMEM = -5003,
};

struct jwt_verifier;

/*
 * Creates a verifier for the standard-base64 (RFC 4648 §4, padded) raw
 * 32-byte Ed25519 public key. Undecodable base64 -> JWT_EKEY (a startup
 * error). A key that decodes to another length is accepted, but then every
 * token is rejected with "key is invalid" (as upstream).
 */
int jwt_verifier_create(const char *public_key_base64, struct jwt_verifier **out);
void jwt_verifier_destroy(struct jwt_verifier *v);

/*
 * Verifies token[0..len) at time now (Unix seconds). Returns 0, or
 * JWT_EINVALID with a static, upstream-worded reason in *reason (e.g.
 * "Token is expired", "ed25519: verification error"), or JWT_ENOMEM.
 */
int jwt_verify(struct jwt_verifier *v, const char *token, size_t len, int64_t now,
               const char **reason);

#endif
