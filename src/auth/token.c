/* token: owns verification of connection and subscription JWTs (protocol.md
 * A11) and the loading of the public keys they are checked with.
 *
 * Verification runs in this order:
 *   1. Shape: exactly three non-empty base64url segments, no padding.
 *   2. Header: decoded here, not by libjwt. `alg` must be spelled exactly
 *      as one of HS/RS/ES 256/384/512, and a key of that family must be
 *      configured. The key handed to libjwt is chosen from the family, so
 *      an HMAC token can never be checked with a public key as its secret
 *      (algorithm confusion) and `none` never reaches libjwt.
 *   3. Signature: jwt_decode with that key; libjwt's own idea of the
 *      algorithm must equal ours.
 *   4. Claims, decoded here from the payload with jansson so that numbers
 *      may be integers or reals: type checks first (a malformed claim makes
 *      the token invalid), then `exp` (expired), `nbf`, `aud`, `iss`, then
 *      the claims that depend on the token kind.
 *
 * `expire_at` follows Centrifugo: when present it replaces `exp` as the
 * connection's expiry; a positive value in the past is expired; 0 means the
 * connection never expires, reported as exp = expire_at = 0 (after `exp`
 * itself has been checked).
 *
 * Error strings are for logs only; any part of them taken from the token
 * is reduced to a short printable excerpt. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/token.h"

#define TOKEN_MAX_LEN (1024 * 1024)     /* longer strings are refused */
#define KEY_FILE_MAX (64 * 1024)        /* a PEM public key is ~1 KiB */
#define CLAIM_TIME_MAX 4611686018427387904.0  /* 2^62 s: far beyond use */

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

__attribute__((format(printf, 4, 5)))
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Copies at most 24 bytes of untrusted s into out, non-printables as '?'. */
static const char *excerpt(const char *s, char out[32]) {
    size_t i = 0;
    for (; s[i] && i < 24; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s[i]) { memcpy(out + i, "...", 3); i += 3; }
    out[i] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Base64 and JSON segments                                            */
/* ------------------------------------------------------------------ */

static int b64_value(unsigned char c, int url) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* Strict decoder. url: base64url without padding (JWS segments); else the
 * standard alphabet, with or without correct '=' padding (b64info). Unused
 * trailing bits must be zero. Returns a NUL-terminated malloc'ed buffer or
 * NULL. */
static unsigned char *b64_decode(const char *s, size_t n, int url,
                                 size_t *outlen) {
    size_t pad = 0;
    if (!url && n % 4 == 0)
        while (pad < 2 && n > pad && s[n - pad - 1] == '=') pad++;
    n -= pad;
    if (n % 4 == 1) return NULL;
    if (pad && (4 - n % 4) != pad) return NULL;

    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out) return NULL;
    size_t len = 0;
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i], url);
        if (v < 0) { free(out); return NULL; }
        acc = (acc << 6 | (unsigned)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) { free(out); return NULL; }
    out[len] = '\0';
    *outlen = len;
    return out;
}

/* Parses JSON text of any type; duplicate keys are refused (no two parsers
 * may disagree on what a token says). */
static json_t *json_parse(const char *p, size_t n) {
    return json_loadb(p, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
}

/* Decodes a base64url segment that must hold a JSON object. */
static json_t *segment_object(const char *s, size_t n) {
    size_t len;
    unsigned char *raw = b64_decode(s, n, 1, &len);
    if (!raw) return NULL;
    json_t *j = json_parse((const char *)raw, len);
    free(raw);
    if (j && !json_is_object(j)) { json_decref(j); j = NULL; }
    return j;
}

/* ------------------------------------------------------------------ */
/* Header, algorithm and signature                                     */
/* ------------------------------------------------------------------ */

enum { FAM_HMAC, FAM_RSA, FAM_EC };

static const struct {
    const char *name;
    jwt_alg_t alg;
    int family;
} algs[] = {
    {"HS256", JWT_ALG_HS256, FAM_HMAC}, {"HS384", JWT_ALG_HS384, FAM_HMAC},
    {"HS512", JWT_ALG_HS512, FAM_HMAC}, {"RS256", JWT_ALG_RS256, FAM_RSA},
    {"RS384", JWT_ALG_RS384, FAM_RSA},  {"RS512", JWT_ALG_RS512, FAM_RSA},
    {"ES256", JWT_ALG_ES256, FAM_EC},   {"ES384", JWT_ALG_ES384, FAM_EC},
    {"ES512", JWT_ALG_ES512, FAM_EC},
};

/* Index into algs of the exact (case-sensitive) name, or -1. */
static int alg_lookup(const char *name) {
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
        if (strcmp(algs[i].name, name) == 0) return (int)i;
    return -1;
}

/* The configured key for a family, or NULL with *len 0. */
static const char *family_key(const token_keys *k, int family, int *len) {
    const char *key = NULL;
    if (family == FAM_HMAC) key = k->hmac_secret;
    else if (family == FAM_RSA) key = k->rsa_public_pem;
    else if (family == FAM_EC) key = k->ec_public_pem;
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > (size_t)INT32_MAX) { *len = 0; return NULL; }
    *len = (int)n;
    return key;
}

/* Why the header's algorithm cannot be used, or NULL if it can. */
static const char *alg_refusal(const token_keys *k, json_t *hdr, int i) {
    int len;
    if (!json_is_string(json_object_get(hdr, "alg"))) return "header has no alg";
    if (i < 0) return "alg refused";
    if (json_object_get(hdr, "crit")) return "header has crit extensions";
    if (!family_key(k, algs[i].family, &len)) return "no key for alg";
    return NULL;
}

/* Reads the header segment and picks the algorithm. Returns the algs index
 * or -1 (error set). */
static int check_header(const token_keys *k, const char *h, size_t n,
                        char *err, size_t errlen) {
    char ex[32];
    json_t *hdr = segment_object(h, n);
    if (!hdr) return fail(-1, err, errlen, "header is not base64url JSON");
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    int i = alg ? alg_lookup(alg) : -1;
    const char *why = alg_refusal(k, hdr, i);
    if (why) {
        if (alg) fail(-1, err, errlen, "%s (%s)", why, excerpt(alg, ex));
        else fail(-1, err, errlen, "%s", why);
        i = -1;
    }
    json_decref(hdr);
    return i;
}

/* Checks shape, header and signature; on success *claims is the payload
 * object. */
static int verify_signature(const token_keys *k, const char *tok,
                            json_t **claims, char *err, size_t errlen) {
    if (!tok || !*tok) return fail(TOKEN_INVALID, err, errlen, "empty token");
    size_t n = strnlen(tok, TOKEN_MAX_LEN + 1);
    if (n > TOKEN_MAX_LEN)
        return fail(TOKEN_INVALID, err, errlen, "token too long");
    const char *d1 = strchr(tok, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || strchr(d2 + 1, '.') || d1 == tok || d2 == d1 + 1 || !d2[1])
        return fail(TOKEN_INVALID, err, errlen, "not three JWS segments");

    int i = check_header(k, tok, (size_t)(d1 - tok), err, errlen);
    if (i < 0) return TOKEN_INVALID;
    int keylen;
    const char *key = family_key(k, algs[i].family, &keylen);

    jwt_t *j = NULL;
    int rc = jwt_decode(&j, tok, (const unsigned char *)key, keylen);
    jwt_alg_t got = (rc == 0 && j) ? jwt_get_alg(j) : JWT_ALG_INVAL;
    jwt_free(j);
    ERR_clear_error();            /* keep OpenSSL's queue clean for TLS */
    if (rc != 0 || got != algs[i].alg)
        return fail(TOKEN_INVALID, err, errlen, "%s signature check failed",
                    algs[i].name);

    *claims = segment_object(d1 + 1, (size_t)(d2 - d1 - 1));
    if (!*claims)
        return fail(TOKEN_INVALID, err, errlen, "payload is not a JSON object");
    return TOKEN_OK;
}

/* ------------------------------------------------------------------ */
/* Claims common to both kinds                                         */
/* ------------------------------------------------------------------ */

typedef struct base_claims {
    char *user;
    char *info;
    size_t info_len;
    int has_exp, has_nbf, has_expire_at;
    double exp, nbf, expire_at;   /* as given (integer or real) */
} base_claims;

static void base_free(base_claims *b) {
    free(b->user);
    free(b->info);
    memset(b, 0, sizeof(*b));
}

/* A NumericDate claim: 0 absent, 1 present (*out set), -1 not a number or
 * out of range. */
static int time_claim(json_t *c, const char *name, double *out) {
    json_t *v = json_object_get(c, name);
    if (!v) return 0;
    if (!json_is_number(v)) return -1;
    double d = json_number_value(v);
    if (!isfinite(d) || d >= CLAIM_TIME_MAX || d <= -CLAIM_TIME_MAX) return -1;
    *out = d;
    return 1;
}

/* A claim that, when present, must be a string; NULL if absent. */
static int string_claim(json_t *c, const char *name, const char **out) {
    json_t *v = json_object_get(c, name);
    *out = json_string_value(v);
    return (!v || *out) ? 0 : -1;
}

/* `aud`: string or array of strings. */
static int aud_valid(json_t *aud) {
    if (!aud || json_is_string(aud)) return 1;
    if (!json_is_array(aud)) return 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v) if (!json_is_string(v)) return 0;
    return 1;
}

static int aud_contains(json_t *aud, const char *want) {
    if (json_is_string(aud)) return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
        if (strcmp(json_string_value(v), want) == 0) return 1;
    return 0;
}

/* Compact JSON text of v into b->info. */
static int set_info(base_claims *b, json_t *v) {
    b->info = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!b->info) return -1;
    b->info_len = strlen(b->info);
    return 0;
}

/* `info` (any JSON; null = absent) or, overriding it, a non-empty
 * `b64info` (standard base64 of JSON text). */
static int read_info(json_t *c, base_claims *b, char *err, size_t errlen) {
    const char *b64;
    if (string_claim(c, "b64info", &b64) < 0)
        return fail(-1, err, errlen, "b64info is not a string");
    if (b64 && *b64) {
        size_t n;
        unsigned char *raw = b64_decode(b64, strlen(b64), 0, &n);
        if (!raw) return fail(-1, err, errlen, "b64info is not base64");
        json_t *v = json_parse((const char *)raw, n);
        free(raw);
        if (!v) return fail(-1, err, errlen, "b64info is not JSON");
        int rc = json_is_null(v) ? 0 : set_info(b, v);
        json_decref(v);
        return rc ? fail(-1, err, errlen, "out of memory") : 0;
    }
    json_t *v = json_object_get(c, "info");
    if (!v || json_is_null(v)) return 0;
    return set_info(b, v) ? fail(-1, err, errlen, "out of memory") : 0;
}

/* Types of every registered and common claim, and the owned copies. */
static int read_base(json_t *c, base_claims *b, char *err, size_t errlen) {
    const char *s;
    if ((b->has_exp = time_claim(c, "exp", &b->exp)) < 0)
        return fail(-1, err, errlen, "exp is not a number");
    if ((b->has_nbf = time_claim(c, "nbf", &b->nbf)) < 0)
        return fail(-1, err, errlen, "nbf is not a number");
    if ((b->has_expire_at = time_claim(c, "expire_at", &b->expire_at)) < 0)
        return fail(-1, err, errlen, "expire_at is not a number");
    if (b->has_expire_at && b->expire_at < 0)
        return fail(-1, err, errlen, "expire_at is negative");
    double iat;
    if (time_claim(c, "iat", &iat) < 0)
        return fail(-1, err, errlen, "iat is not a number");
    if (string_claim(c, "iss", &s) < 0 || string_claim(c, "jti", &s) < 0)
        return fail(-1, err, errlen, "iss or jti is not a string");
    if (!aud_valid(json_object_get(c, "aud")))
        return fail(-1, err, errlen, "aud is not a string or string array");
    if (string_claim(c, "sub", &s) < 0)
        return fail(-1, err, errlen, "sub is not a string");
    if (!(b->user = strdup(s ? s : "")))
        return fail(-1, err, errlen, "out of memory");
    return read_info(c, b, err, errlen);
}

/* Time, audience and issuer against now and the configuration. */
static int check_base(const token_keys *k, json_t *c, const base_claims *b,
                      int64_t now, char *err, size_t errlen) {
    double t = (double)now;
    if (b->has_exp && b->exp <= t)
        return fail(TOKEN_EXPIRED, err, errlen, "token expired (exp)");
    if (b->has_expire_at && b->expire_at > 0 && b->expire_at <= t)
        return fail(TOKEN_EXPIRED, err, errlen, "token expired (expire_at)");
    if (b->has_nbf && t < b->nbf)
        return fail(TOKEN_INVALID, err, errlen, "token not valid yet (nbf)");
    if (k->audience && *k->audience) {
        json_t *aud = json_object_get(c, "aud");
        if (!aud || !aud_contains(aud, k->audience))
            return fail(TOKEN_INVALID, err, errlen, "audience mismatch");
    }
    if (k->issuer && *k->issuer) {
        const char *iss = json_string_value(json_object_get(c, "iss"));
        if (!iss || strcmp(iss, k->issuer) != 0)
            return fail(TOKEN_INVALID, err, errlen, "issuer mismatch");
    }
    return TOKEN_OK;
}

/* Signature, claim types and validity. On TOKEN_OK *claims and *b are
 * owned by the caller. */
static int verify_base(const token_keys *k, const char *tok, int64_t now,
                       json_t **claims, base_claims *b, char *err,
                       size_t errlen) {
    memset(b, 0, sizeof(*b));
    *claims = NULL;
    int rc = verify_signature(k, tok, claims, err, errlen);
    if (rc == TOKEN_OK)
        rc = read_base(*claims, b, err, errlen) ? TOKEN_INVALID : TOKEN_OK;
    if (rc == TOKEN_OK) rc = check_base(k, *claims, b, now, err, errlen);
    if (rc != TOKEN_OK) {
        json_decref(*claims);
        *claims = NULL;
        base_free(b);
    }
    return rc;
}

/* Connection expiry per Centrifugo: expire_at, when present, replaces exp
 * (0 = never). */
static void expiry(const base_claims *b, int64_t *exp, int64_t *expire_at) {
    *exp = b->has_exp ? (int64_t)b->exp : 0;
    *expire_at = 0;
    if (b->has_expire_at) {
        *expire_at = (int64_t)b->expire_at;
        if (*expire_at == 0) *exp = 0;
    }
}

/* ------------------------------------------------------------------ */
/* Connection and subscription tokens                                  */
/* ------------------------------------------------------------------ */

/* `channels`: array of non-empty strings. */
static int read_channels(json_t *c, conn_token *out, char *err,
                         size_t errlen) {
    json_t *arr = json_object_get(c, "channels");
    if (!arr) return 0;
    if (!json_is_array(arr))
        return fail(-1, err, errlen, "channels is not an array");
    size_t n = json_array_size(arr);
    if (n == 0) return 0;
    if (n > 1000000) return fail(-1, err, errlen, "too many channels");
    out->channels = calloc(n, sizeof(char *));
    if (!out->channels) return fail(-1, err, errlen, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s || !*s)
            return fail(-1, err, errlen, "channels[%zu] is not a channel", i);
        if (!(out->channels[i] = strdup(s)))
            return fail(-1, err, errlen, "out of memory");
        out->nchannels = (int)i + 1;
    }
    return 0;
}

/* Moves the claims both token kinds share into the caller's struct. */
static void take_base(base_claims *b, char **user, char **info, size_t *info_len,
                      int64_t *exp, int64_t *expire_at) {
    *user = b->user;
    *info = b->info;
    *info_len = b->info_len;
    expiry(b, exp, expire_at);
}

int token_verify_conn(const token_keys *k, const char *jwt, int64_t now,
                      conn_token *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (err && errlen) err[0] = '\0';
    json_t *c;
    base_claims b;
    int rc = verify_base(k, jwt, now, &c, &b, err, errlen);
    if (rc != TOKEN_OK) return rc;
    if (json_object_get(c, "channel"))
        rc = fail(TOKEN_INVALID, err, errlen, "channel claim in a connection token");
    else if (read_channels(c, out, err, errlen) != 0)
        rc = TOKEN_INVALID;
    json_decref(c);
    if (rc != TOKEN_OK) {
        base_free(&b);
        conn_token_free(out);
        return rc;
    }
    take_base(&b, &out->user, &out->info, &out->info_len, &out->exp, &out->expire_at);
    return TOKEN_OK;
}

int token_verify_sub(const token_keys *k, const char *jwt, int64_t now,
                     sub_token *out, char *err, size_t errlen) {
    memset(out, 0, sizeof(*out));
    if (err && errlen) err[0] = '\0';
    json_t *c;
    base_claims b;
    int rc = verify_base(k, jwt, now, &c, &b, err, errlen);
    if (rc != TOKEN_OK) return rc;
    const char *channel = json_string_value(json_object_get(c, "channel"));
    const char *client;
    if (!channel || !*channel)
        rc = fail(TOKEN_INVALID, err, errlen, "no channel claim");
    else if (string_claim(c, "client", &client) < 0)
        rc = fail(TOKEN_INVALID, err, errlen, "client is not a string");
    else if (!(out->channel = strdup(channel)) ||
             (client && *client && !(out->client = strdup(client))))
        rc = fail(TOKEN_INVALID, err, errlen, "out of memory");
    json_decref(c);
    if (rc != TOKEN_OK) {
        base_free(&b);
        sub_token_free(out);
        return rc;
    }
    take_base(&b, &out->user, &out->info, &out->info_len, &out->exp, &out->expire_at);
    return TOKEN_OK;
}

void conn_token_free(conn_token *t) {
    if (!t) return;
    free(t->user);
    free(t->info);
    for (int i = 0; i < t->nchannels; i++) free(t->channels[i]);
    free(t->channels);
    memset(t, 0, sizeof(*t));
}

void sub_token_free(sub_token *t) {
    if (!t) return;
    free(t->user);
    free(t->channel);
    free(t->client);
    free(t->info);
    memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

/* Whole file as a NUL-terminated string, at most KEY_FILE_MAX bytes. */
static char *read_small_file(const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(-1, err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, KEY_FILE_MAX + 1, f) : 0;
    int bad = !buf ? 1 : ferror(f) ? 2 : n > KEY_FILE_MAX ? 3 : 0;
    fclose(f);
    if (bad) {
        fail(-1, err, errlen, "%s: %s", path,
             bad == 1 ? "out of memory" : bad == 2 ? "read error"
                                                   : "too large for a key");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Loads a PEM public key file of the given OpenSSL type into *out. */
static int load_public_pem(const char *path, int type, const char *tname,
                           char **out, char *err, size_t errlen) {
    char *pem = read_small_file(path, err, errlen);
    if (!pem) return -1;
    BIO *bio = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    int id = pk ? EVP_PKEY_get_base_id(pk) : 0;
    EVP_PKEY_free(pk);
    BIO_free(bio);
    ERR_clear_error();
    if (!pk || id != type) {
        free(pem);
        if (!pk)
            return fail(-1, err, errlen, "%s: no PEM public key "
                        "(-----BEGIN PUBLIC KEY-----) in file", path);
        return fail(-1, err, errlen, "%s: not an %s public key", path, tname);
    }
    *out = pem;
    return 0;
}

int token_keys_load(token_keys *k, const char *rsa_pem_path,
                    const char *ec_pem_path, char *err, size_t errlen) {
    char *rsa = NULL, *ec = NULL;
    if (rsa_pem_path && *rsa_pem_path &&
        load_public_pem(rsa_pem_path, EVP_PKEY_RSA, "RSA", &rsa, err, errlen))
        return -1;
    if (ec_pem_path && *ec_pem_path &&
        load_public_pem(ec_pem_path, EVP_PKEY_EC, "EC", &ec, err, errlen)) {
        free(rsa);
        return -1;
    }
    if (rsa) { free(k->rsa_public_pem); k->rsa_public_pem = rsa; }
    if (ec) { free(k->ec_public_pem); k->ec_public_pem = ec; }
    return 0;
}

void token_keys_free(token_keys *k) {
    if (!k) return;
    free(k->rsa_public_pem);
    free(k->ec_public_pem);
    k->rsa_public_pem = NULL;
    k->ec_public_pem = NULL;
}

/* ---- signing (POST /v1/sign-in) ---- */

char *token_sign_conn(const char *secret, const char *user, const char *info_json,
                      int64_t exp) {
    jwt_t *jwt = NULL;
    char *out = NULL, *grants = NULL;
    if (jwt_new(&jwt)) return NULL;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) ||
        jwt_add_grant(jwt, "sub", user) || jwt_add_grant_int(jwt, "exp", (long)exp))
        goto out;
    if (info_json) {
        size_t n = strlen(info_json) + 16;
        if (!(grants = malloc(n))) goto out;
        snprintf(grants, n, "{\"info\":%s}", info_json);
        if (jwt_add_grants_json(jwt, grants)) goto out;
    }
    out = jwt_encode_str(jwt);      /* malloc'd (no custom allocator is set) */
out:
    free(grants);
    jwt_free(jwt);
    return out;
}
