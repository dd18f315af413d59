/* token: verification of connection and subscription JWTs (protocol.md
 * A11) with libjwt. HS256/384/512 with a shared secret; RS256/384/512 with
 * an RSA public key; ES256/384/512 with an EC public key. The algorithm is
 * read from the token header first and must belong to a family for which a
 * key is configured: `none` and algorithm confusion (an HMAC token checked
 * with a public key as the secret) are refused before any verification. */
#ifndef PLAZA_TOKEN_H
#define PLAZA_TOKEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct token_keys {
    const char *hmac_secret;     /* NULL/"" = HMAC tokens refused */
    char *rsa_public_pem;        /* PEM text (not a path); NULL = RSA refused */
    char *ec_public_pem;         /* PEM text; NULL = ECDSA refused */
    const char *audience;        /* if set, `aud` must contain it */
    const char *issuer;          /* if set, `iss` must equal it */
} token_keys;

enum {
    TOKEN_OK = 0,
    TOKEN_INVALID = -1,          /* bad format, signature, algorithm, claims */
    TOKEN_EXPIRED = -2,          /* exp in the past */
};

typedef struct conn_token {
    char *user;                  /* `sub` ("" = anonymous) */
    int64_t exp;                 /* seconds; 0 = none */
    int64_t expire_at;           /* seconds; 0 = use exp */
    char *info;                  /* compact raw JSON of `info`, or NULL */
    size_t info_len;
    char **channels;             /* `channels` (server-side subscriptions) */
    int nchannels;
} conn_token;

typedef struct sub_token {
    char *user;                  /* `sub` */
    char *channel;               /* `channel` (required) */
    char *client;                /* `client`, or NULL */
    int64_t exp;
    int64_t expire_at;
    char *info;                  /* compact raw JSON of `info`, or NULL */
    size_t info_len;
} sub_token;

/* Reads key files given by path (NULL/"" = not configured). Returns 0 or -1
 * with err naming the file. */
int token_keys_load(token_keys *k, const char *rsa_pem_path,
                    const char *ec_pem_path, char *err, size_t errlen);
void token_keys_free(token_keys *k);

/* Verifies a connection token at time now (unix seconds). On TOKEN_OK *out
 * is filled (free with conn_token_free); on failure err says why (for
 * logs, never sent to clients). A `channel` claim makes it invalid. */
int token_verify_conn(const token_keys *k, const char *jwt, int64_t now,
                      conn_token *out, char *err, size_t errlen);

/* Verifies a subscription token; `channel` must be present. */
int token_verify_sub(const token_keys *k, const char *jwt, int64_t now,
                     sub_token *out, char *err, size_t errlen);

void conn_token_free(conn_token *t);

/* Signs a connection token (HS256 with secret): sub = user, exp, and
 * info (compact JSON object text, or NULL). Returns the JWT (free()), or
 * NULL if out of memory or info is not a JSON object. */
char *token_sign_conn(const char *secret, const char *user, const char *info_json,
                      int64_t exp);
void sub_token_free(sub_token *t);

#endif
