/* Unit tests for src/auth/token.c: tokens are minted here with libjwt (or
 * by hand, for headers libjwt would never write) using HMAC secrets and
 * RSA/EC keys generated at start-up, so no key material is committed.
 * Covers every algorithm family, `none` and algorithm confusion, malformed
 * tokens, each claim's type and validity rules, and key file loading. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "auth/token.h"

#define NOW 1700000000LL
#define SECRET "test-secret-0123456789"

/* Key material generated once for the whole run. */
static char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static char *bio_text(BIO *bio) {
    char *p;
    long n = BIO_get_mem_data(bio, &p);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    return s;
}

static void pem_pair(EVP_PKEY *pk, char **priv, char **pub) {
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL), 1);
    *priv = bio_text(b);
    BIO_free(b);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(b, pk), 1);
    *pub = bio_text(b);
    BIO_free(b);
}

static int setup_keys(void **state) {
    (void)state;
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    if (!rsa || !ec) return -1;
    pem_pair(rsa, &rsa_priv, &rsa_pub);
    pem_pair(ec, &ec_priv, &ec_pub);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}

static int teardown_keys(void **state) {
    (void)state;
    free(rsa_priv);
    free(rsa_pub);
    free(ec_priv);
    free(ec_pub);
    return 0;
}

/* Signs claims (JSON object text) with libjwt. */
static char *mint(jwt_alg_t alg, const char *key, const char *claims) {
    jwt_t *j = NULL;
    assert_int_equal(jwt_new(&j), 0);
    if (claims) assert_int_equal(jwt_add_grants_json(j, claims), 0);
    assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)key,
                                 key ? (int)strlen(key) : 0), 0);
    char *tok = jwt_encode_str(j);
    assert_non_null(tok);
    jwt_free(j);
    return tok;
}

static char *hs256(const char *claims) { return mint(JWT_ALG_HS256, SECRET, claims); }

static char *b64url(const void *p, size_t n) {
    char *out = malloc(n / 3 * 4 + 8);
    assert_non_null(out);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    int t = 0;
    for (int i = 0; i < len; i++) {
        if (out[i] == '=') continue;
        out[t++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[t] = '\0';
    return out;
}

/* Builds header.payload.signature by hand; HMAC-SHA256 with secret, or an
 * empty signature when secret is NULL. */
static char *raw_token(const char *header, const char *payload,
                       const char *secret) {
    char *h = b64url(header, strlen(header));
    char *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 200;
    char *tok = malloc(n);
    assert_non_null(tok);
    snprintf(tok, n, "%s.%s", h, p);
    char *sig = strdup("");
    if (secret) {
        unsigned char mac[64];
        unsigned int maclen = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret),
             (const unsigned char *)tok, strlen(tok), mac, &maclen);
        free(sig);
        sig = b64url(mac, maclen);
    }
    strcat(tok, ".");
    strcat(tok, sig);
    free(sig);
    free(h);
    free(p);
    return tok;
}

static token_keys hmac_keys(void) {
    token_keys k = {0};
    k.hmac_secret = SECRET;
    return k;
}

static int conn(const token_keys *k, const char *tok, conn_token *out) {
    char err[200];
    int rc = token_verify_conn(k, tok, NOW, out, err, sizeof(err));
    if (rc != TOKEN_OK) assert_true(err[0] != '\0');
    if (rc != TOKEN_OK && getenv("TOKEN_VERBOSE")) fprintf(stderr, "  %d %s\n", rc, err);
    return rc;
}

/* Verifies as a connection token and frees; the return code only. */
static int conn_rc(const token_keys *k, const char *tok) {
    conn_token t;
    int rc = conn(k, tok, &t);
    conn_token_free(&t);
    return rc;
}

static int hs_conn_rc(const char *claims) {
    token_keys k = hmac_keys();
    char *tok = hs256(claims);
    int rc = conn_rc(&k, tok);
    free(tok);
    return rc;
}

static int sub_rc(const token_keys *k, const char *tok, sub_token *out) {
    char err[200];
    int rc = token_verify_sub(k, tok, NOW, out, err, sizeof(err));
    if (rc != TOKEN_OK) assert_true(err[0] != '\0');
    if (rc != TOKEN_OK && getenv("TOKEN_VERBOSE")) fprintf(stderr, "  %d %s\n", rc, err);
    return rc;
}

/* The `info` a HS256 connection token with these claims yields. */
static void expect_info(const char *claims, const char *want) {
    token_keys k = hmac_keys();
    char *tok = hs256(claims);
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    if (!want) {
        assert_null(t.info);
    } else {
        assert_non_null(t.info);
        assert_string_equal(t.info, want);
        assert_int_equal(t.info_len, strlen(want));
    }
    conn_token_free(&t);
    free(tok);
}

/* ------------------------------------------------------------------ */
/* HMAC                                                                */
/* ------------------------------------------------------------------ */

static void test_hs256_conn_valid(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = hs256("{\"sub\":\"42\",\"info\":{\"n\":1,\"name\":\"Ann\"},"
                      "\"channels\":[\"news\",\"chat:1\"],\"exp\":1700003600}");
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_string_equal(t.user, "42");
    assert_string_equal(t.info, "{\"n\":1,\"name\":\"Ann\"}");
    assert_int_equal(t.nchannels, 2);
    assert_string_equal(t.channels[0], "news");
    assert_string_equal(t.channels[1], "chat:1");
    assert_int_equal(t.exp, 1700003600);
    assert_int_equal(t.expire_at, 0);
    conn_token_free(&t);
    assert_null(t.user);
    conn_token_free(&t);            /* twice is harmless */
    free(tok);
}

static void test_hs384_hs512_valid(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    jwt_alg_t algs[] = {JWT_ALG_HS384, JWT_ALG_HS512};
    for (int i = 0; i < 2; i++) {
        char *tok = mint(algs[i], SECRET, "{\"sub\":\"u\"}");
        conn_token t;
        assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
        assert_string_equal(t.user, "u");
        assert_int_equal(t.exp, 0);
        assert_null(t.info);
        assert_int_equal(t.nchannels, 0);
        conn_token_free(&t);
        free(tok);
    }
}

static void test_no_sub_is_anonymous(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = hs256("{\"exp\":1700000100}");
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_string_equal(t.user, "");
    conn_token_free(&t);
    free(tok);
    assert_int_equal(hs_conn_rc("{\"sub\":42}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"sub\":null}"), TOKEN_INVALID);
}

static void test_expired(void **state) {
    (void)state;
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"exp\":1699999999}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"exp\":1700000000}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"exp\":0}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"exp\":-5}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"exp\":1700000001}"), TOKEN_OK);
}

static void test_numeric_claims(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = hs256("{\"exp\":1.7000036e9,\"nbf\":1.6e9,\"iat\":1.6e9}");
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_int_equal(t.exp, 1700003600);
    conn_token_free(&t);
    free(tok);
    assert_int_equal(hs_conn_rc("{\"exp\":1700000000.5}"), TOKEN_OK);
    assert_int_equal(hs_conn_rc("{\"exp\":1699999999.5}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"exp\":\"1800000000\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"exp\":true}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"exp\":null}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"exp\":1e300}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"nbf\":\"x\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"iat\":[]}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"expire_at\":{}}"), TOKEN_INVALID);
}

static void test_nbf(void **state) {
    (void)state;
    assert_int_equal(hs_conn_rc("{\"nbf\":1700000060}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"nbf\":1700000000}"), TOKEN_OK);
    assert_int_equal(hs_conn_rc("{\"nbf\":1699990000}"), TOKEN_OK);
}

static void test_wrong_secret(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = mint(JWT_ALG_HS256, "another-secret", "{\"sub\":\"1\"}");
    assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
    free(tok);
    token_keys none = {0};
    tok = hs256("{\"sub\":\"1\"}");
    assert_int_equal(conn_rc(&none, tok), TOKEN_INVALID);
    none.hmac_secret = "";
    assert_int_equal(conn_rc(&none, tok), TOKEN_INVALID);
    free(tok);
}

/* ------------------------------------------------------------------ */
/* Algorithm attacks                                                   */
/* ------------------------------------------------------------------ */

static void test_alg_none(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    const char *payload = "{\"sub\":\"admin\",\"exp\":1800000000}";
    const char *hdrs[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
                          "{\"alg\":\"None\",\"typ\":\"JWT\"}",
                          "{\"alg\":\"NONE\"}"};
    for (size_t i = 0; i < 3; i++) {
        char *tok = raw_token(hdrs[i], payload, NULL);
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        free(tok);
        /* With a stray signature, too. */
        tok = raw_token(hdrs[i], payload, SECRET);
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        free(tok);
    }
    /* libjwt's own `none` token (no signature at all). */
    char *tok = mint(JWT_ALG_NONE, NULL, payload);
    assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
    sub_token s;
    assert_int_equal(sub_rc(&k, tok, &s), TOKEN_INVALID);
    free(tok);
}

/* HS256 "signed" with the RSA public key text as the HMAC secret: a
 * verifier that lets the header pick the algorithm would accept it. */
static void test_alg_confusion(void **state) {
    (void)state;
    token_keys k = {0};
    k.rsa_public_pem = rsa_pub;
    const char *claims = "{\"sub\":\"admin\",\"exp\":1800000000}";
    char *tok = mint(JWT_ALG_HS256, rsa_pub, claims);
    assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
    sub_token s;
    assert_int_equal(sub_rc(&k, tok, &s), TOKEN_INVALID);
    /* The same with both RSA and an (unrelated) HMAC secret configured. */
    k.hmac_secret = SECRET;
    assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
    /* Sanity: the forged token is well formed — it passes when the PEM
     * text really is the configured HMAC secret. */
    token_keys h = {0};
    h.hmac_secret = rsa_pub;
    assert_int_equal(conn_rc(&h, tok), TOKEN_OK);
    free(tok);
    /* And with the EC key. */
    token_keys e = {0};
    e.ec_public_pem = ec_pub;
    tok = mint(JWT_ALG_HS512, ec_pub, claims);
    assert_int_equal(conn_rc(&e, tok), TOKEN_INVALID);
    free(tok);
}

static void test_alg_names(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    const char *payload = "{\"sub\":\"1\"}";
    const char *bad[] = {
        "{\"alg\":\"hs256\",\"typ\":\"JWT\"}", "{\"alg\":\"Hs256\"}",
        "{\"alg\":\"PS256\"}", "{\"alg\":\"EdDSA\"}", "{\"alg\":\"HS256 \"}",
        "{\"typ\":\"JWT\"}", "{\"alg\":256}", "{\"alg\":null}",
        "{\"alg\":\"\"}", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "[\"HS256\"]", "\"HS256\"",
        "{\"alg\":\"HS256\"", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *tok = raw_token(bad[i], payload, SECRET);
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        free(tok);
    }
    /* A hand-made header without `typ` is fine. */
    char *tok = raw_token("{\"alg\":\"HS256\"}", payload, SECRET);
    assert_int_equal(conn_rc(&k, tok), TOKEN_OK);
    free(tok);
}

/* ------------------------------------------------------------------ */
/* RSA and ECDSA                                                       */
/* ------------------------------------------------------------------ */

static void test_rs256(void **state) {
    (void)state;
    token_keys k = {0};
    k.rsa_public_pem = rsa_pub;
    jwt_alg_t algs[] = {JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512};
    for (int i = 0; i < 3; i++) {
        char *tok = mint(algs[i], rsa_priv, "{\"sub\":\"rsa\",\"exp\":1700000600}");
        conn_token t;
        assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
        assert_string_equal(t.user, "rsa");
        assert_int_equal(t.exp, 1700000600);
        conn_token_free(&t);
        free(tok);
    }
    /* Refused when only HMAC (or only EC) is configured. */
    char *tok = mint(JWT_ALG_RS256, rsa_priv, "{\"sub\":\"rsa\"}");
    token_keys h = hmac_keys();
    assert_int_equal(conn_rc(&h, tok), TOKEN_INVALID);
    token_keys e = {0};
    e.ec_public_pem = ec_pub;
    assert_int_equal(conn_rc(&e, tok), TOKEN_INVALID);
    /* An EC key in the RSA slot cannot verify it either. */
    token_keys wrong = {0};
    wrong.rsa_public_pem = ec_pub;
    assert_int_equal(conn_rc(&wrong, tok), TOKEN_INVALID);
    free(tok);
}

static void test_es256(void **state) {
    (void)state;
    token_keys k = {0};
    k.ec_public_pem = ec_pub;
    char *tok = mint(JWT_ALG_ES256, ec_priv, "{\"sub\":\"ec\",\"channels\":[\"a\"]}");
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_string_equal(t.user, "ec");
    assert_int_equal(t.nchannels, 1);
    conn_token_free(&t);
    token_keys r = {0};
    r.rsa_public_pem = rsa_pub;
    r.hmac_secret = SECRET;
    assert_int_equal(conn_rc(&r, tok), TOKEN_INVALID);
    free(tok);
}

/* ------------------------------------------------------------------ */
/* Malformed and tampered tokens                                       */
/* ------------------------------------------------------------------ */

static void test_malformed(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *good = hs256("{\"sub\":\"1\"}");
    assert_int_equal(conn_rc(&k, good), TOKEN_OK);
    char buf[2048];

    const char *lits[] = {"", ".", "..", "...", "a.b", "a.b.c", "garbage",
                          "eyJhbGciOiJIUzI1NiJ9", "\xff\xfe.\x01.x"};
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++)
        assert_int_equal(conn_rc(&k, lits[i]), TOKEN_INVALID);
    assert_int_equal(conn_rc(&k, NULL), TOKEN_INVALID);

    /* Two parts: drop the signature. */
    snprintf(buf, sizeof(buf), "%s", good);
    *strrchr(buf, '.') = '\0';
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    /* Four parts. */
    snprintf(buf, sizeof(buf), "%s.e30", good);
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    /* Padding and foreign characters. */
    const char *dot = strchr(good, '.');
    snprintf(buf, sizeof(buf), "%.*s=%s", (int)(dot - good), good, dot);
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    snprintf(buf, sizeof(buf), "%.*s*%s", (int)(dot - good), good, dot + 1);
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    snprintf(buf, sizeof(buf), "%s", good);
    buf[3] = '+';
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    /* Whitespace around the token. */
    snprintf(buf, sizeof(buf), " %s", good);
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    snprintf(buf, sizeof(buf), "%s\n", good);
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    free(good);

    /* Payload that is not an object, or not JSON. */
    const char *payloads[] = {"[1,2]", "\"sub\"", "42", "null", "{", "",
                              "{\"sub\":\"a\",\"sub\":\"b\"}"};
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *tok = raw_token("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payloads[i], SECRET);
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        free(tok);
    }
}

/* Every single-character change anywhere in the token must be refused. */
static void test_tampered(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = hs256("{\"sub\":\"user\",\"exp\":1800000000,\"info\":{\"role\":\"x\"}}");
    assert_int_equal(conn_rc(&k, tok), TOKEN_OK);
    size_t n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        char orig = tok[i];
        if (orig == '.') continue;
        tok[i] = orig == 'A' ? 'B' : 'A';
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        tok[i] = orig;
    }
    free(tok);
    /* A payload swapped in from another validly signed token. */
    char *a = hs256("{\"sub\":\"alice\"}");
    char *b = hs256("{\"sub\":\"mallory\"}");
    char buf[1024];
    const char *a1 = strchr(a, '.'), *a2 = strrchr(a, '.');
    const char *b1 = strchr(b, '.'), *b2 = strrchr(b, '.');
    snprintf(buf, sizeof(buf), "%.*s%.*s%s", (int)(a1 - a), a,
             (int)(b2 - b1), b1, a2);
    assert_int_equal(conn_rc(&k, buf), TOKEN_INVALID);
    free(a);
    free(b);
}

/* ------------------------------------------------------------------ */
/* Claims                                                              */
/* ------------------------------------------------------------------ */

static void test_conn_channel_claim(void **state) {
    (void)state;
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"channel\":\"news\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"sub\":\"1\",\"channel\":\"\"}"), TOKEN_INVALID);
}

static void test_channels_claim(void **state) {
    (void)state;
    assert_int_equal(hs_conn_rc("{\"channels\":\"news\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"channels\":[\"a\",1]}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"channels\":[\"a\",\"\"]}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"channels\":[\"a\",null]}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"channels\":[]}"), TOKEN_OK);
}

static void test_info_kinds(void **state) {
    (void)state;
    expect_info("{\"info\":{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}}",
                "{\"a\":[1,2,{\"b\":null}],\"c\":\"d\"}");
    expect_info("{\"info\":\"just text\"}", "\"just text\"");
    expect_info("{\"info\":12.5}", "12.5");
    expect_info("{\"info\":7}", "7");
    expect_info("{\"info\":[true,false]}", "[true,false]");
    expect_info("{\"info\":\"\\u00e9\\n\"}", "\"\xc3\xa9\\n\"");
    expect_info("{\"info\":null}", NULL);
    /* Whitespace is dropped and member order kept (libjwt sorts the keys
     * it writes, so this token is made by hand). */
    token_keys k = hmac_keys();
    char *tok = raw_token("{\"alg\":\"HS256\"}",
                          "{ \"info\" : { \"z\" : 1 ,\n \"a\" : [ 2 ] } }", SECRET);
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_string_equal(t.info, "{\"z\":1,\"a\":[2]}");
    conn_token_free(&t);
    free(tok);
    expect_info("{\"sub\":\"x\"}", NULL);
}

static void test_b64info(void **state) {
    (void)state;
    /* base64('{"name": "Bob"}') */
    expect_info("{\"b64info\":\"eyJuYW1lIjogIkJvYiJ9\"}", "{\"name\":\"Bob\"}");
    /* b64info wins over info. */
    expect_info("{\"info\":{\"x\":1},\"b64info\":\"eyJuYW1lIjogIkJvYiJ9\"}",
                "{\"name\":\"Bob\"}");
    /* Empty b64info is absent. */
    expect_info("{\"info\":1,\"b64info\":\"\"}", "1");
    /* base64('[1]') padded and unpadded, base64('"s"'). */
    expect_info("{\"b64info\":\"WzFd\"}", "[1]");
    expect_info("{\"b64info\":\"InMi\"}", "\"s\"");
    /* base64('{"a":1}') needs padding: "eyJhIjoxfQ==". */
    expect_info("{\"b64info\":\"eyJhIjoxfQ==\"}", "{\"a\":1}");
    expect_info("{\"b64info\":\"eyJhIjoxfQ\"}", "{\"a\":1}");
    /* base64('not json'), bad alphabet, bad padding, not a string. */
    assert_int_equal(hs_conn_rc("{\"b64info\":\"bm90IGpzb24=\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"b64info\":\"eyJhIjoxfQ*=\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"b64info\":\"eyJhIjoxfQ=\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"b64info\":\"e\"}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"b64info\":{\"a\":1}}"), TOKEN_INVALID);
}

static void test_expire_at(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = hs256("{\"exp\":1700000100,\"expire_at\":1700009999}");
    conn_token t;
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_int_equal(t.exp, 1700000100);
    assert_int_equal(t.expire_at, 1700009999);
    conn_token_free(&t);
    free(tok);
    /* expire_at 0: the connection never expires. */
    tok = hs256("{\"exp\":1700000100,\"expire_at\":0}");
    assert_int_equal(conn(&k, tok, &t), TOKEN_OK);
    assert_int_equal(t.exp, 0);
    assert_int_equal(t.expire_at, 0);
    conn_token_free(&t);
    free(tok);
    /* exp is still checked; a past expire_at is expired. */
    assert_int_equal(hs_conn_rc("{\"exp\":1600000000,\"expire_at\":1800000000}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"expire_at\":1699999000}"), TOKEN_EXPIRED);
    assert_int_equal(hs_conn_rc("{\"expire_at\":-1}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"expire_at\":\"0\"}"), TOKEN_INVALID);
}

static void test_audience(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    k.audience = "plaza";
    const char *ok[] = {"{\"aud\":\"plaza\"}", "{\"aud\":[\"web\",\"plaza\"]}"};
    const char *bad[] = {"{\"aud\":\"web\"}", "{\"aud\":[]}", "{\"aud\":[\"Plaza\"]}",
                         "{\"sub\":\"1\"}", "{\"aud\":1}", "{\"aud\":[1,\"plaza\"]}"};
    for (size_t i = 0; i < 2; i++) {
        char *tok = hs256(ok[i]);
        assert_int_equal(conn_rc(&k, tok), TOKEN_OK);
        free(tok);
    }
    for (size_t i = 0; i < 6; i++) {
        char *tok = hs256(bad[i]);
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        free(tok);
    }
    /* Not configured (NULL or ""): not checked, but must be well typed. */
    assert_int_equal(hs_conn_rc("{\"aud\":\"anything\"}"), TOKEN_OK);
    k.audience = "";
    char *tok = hs256("{\"aud\":\"web\"}");
    assert_int_equal(conn_rc(&k, tok), TOKEN_OK);
    free(tok);
    assert_int_equal(hs_conn_rc("{\"aud\":{}}"), TOKEN_INVALID);
}

static void test_issuer(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    k.issuer = "https://auth.example";
    char *tok = hs256("{\"iss\":\"https://auth.example\"}");
    assert_int_equal(conn_rc(&k, tok), TOKEN_OK);
    free(tok);
    const char *bad[] = {"{\"iss\":\"https://evil.example\"}", "{\"sub\":\"1\"}",
                         "{\"iss\":\"https://auth.example/\"}"};
    for (size_t i = 0; i < 3; i++) {
        tok = hs256(bad[i]);
        assert_int_equal(conn_rc(&k, tok), TOKEN_INVALID);
        free(tok);
    }
    assert_int_equal(hs_conn_rc("{\"iss\":\"whoever\"}"), TOKEN_OK);
    assert_int_equal(hs_conn_rc("{\"iss\":5}"), TOKEN_INVALID);
    assert_int_equal(hs_conn_rc("{\"jti\":5}"), TOKEN_INVALID);
}

/* ------------------------------------------------------------------ */
/* Subscription tokens                                                 */
/* ------------------------------------------------------------------ */

static void test_sub_valid(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    char *tok = hs256("{\"sub\":\"42\",\"channel\":\"$private\",\"client\":\"c-1\","
                      "\"exp\":1700000500,\"info\":{\"seat\":3}}");
    sub_token s;
    assert_int_equal(sub_rc(&k, tok, &s), TOKEN_OK);
    assert_string_equal(s.user, "42");
    assert_string_equal(s.channel, "$private");
    assert_string_equal(s.client, "c-1");
    assert_int_equal(s.exp, 1700000500);
    assert_string_equal(s.info, "{\"seat\":3}");
    sub_token_free(&s);
    free(tok);
    /* Minimal, and over RSA. */
    token_keys r = {0};
    r.rsa_public_pem = rsa_pub;
    tok = mint(JWT_ALG_RS256, rsa_priv, "{\"channel\":\"c\",\"expire_at\":1700000700}");
    assert_int_equal(sub_rc(&r, tok, &s), TOKEN_OK);
    assert_string_equal(s.user, "");
    assert_string_equal(s.channel, "c");
    assert_null(s.client);
    assert_null(s.info);
    assert_int_equal(s.expire_at, 1700000700);
    sub_token_free(&s);
    free(tok);
}

static void test_sub_invalid(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    const char *bad[] = {"{\"sub\":\"42\"}", "{\"channel\":\"\"}", "{\"channel\":1}",
                         "{\"channel\":[\"a\"]}", "{\"channel\":\"a\",\"client\":1}",
                         "{\"channel\":\"a\",\"sub\":false}",
                         "{\"channel\":\"a\",\"nbf\":1800000000}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *tok = hs256(bad[i]);
        sub_token s;
        assert_int_equal(sub_rc(&k, tok, &s), TOKEN_INVALID);
        assert_null(s.channel);
        sub_token_free(&s);
        free(tok);
    }
    char *tok = hs256("{\"channel\":\"a\",\"exp\":1600000000}");
    sub_token s;
    assert_int_equal(sub_rc(&k, tok, &s), TOKEN_EXPIRED);
    free(tok);
    tok = mint(JWT_ALG_HS256, "nope", "{\"channel\":\"a\"}");
    assert_int_equal(sub_rc(&k, tok, &s), TOKEN_INVALID);
    free(tok);
    /* A connection-style token (no channel) is not a sub token. */
    tok = hs256("{\"sub\":\"1\",\"channels\":[\"a\"]}");
    assert_int_equal(sub_rc(&k, tok, &s), TOKEN_INVALID);
    free(tok);
}

static void test_err_optional(void **state) {
    (void)state;
    token_keys k = hmac_keys();
    conn_token t;
    assert_int_equal(token_verify_conn(&k, "x.y.z", NOW, &t, NULL, 0), TOKEN_INVALID);
    char err[8];
    assert_int_equal(token_verify_conn(&k, "x.y.z", NOW, &t, err, sizeof(err)), TOKEN_INVALID);
    assert_true(strlen(err) < sizeof(err));
    /* Untrusted alg text is reduced to printable characters. */
    char big[200];
    char *tok = raw_token("{\"alg\":\"\\n\\u001bHS256xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
                          "{}", SECRET);
    assert_int_equal(token_verify_conn(&k, tok, NOW, &t, big, sizeof(big)), TOKEN_INVALID);
    for (const char *p = big; *p; p++) assert_true(*p >= 0x20 && *p < 0x7f);
    free(tok);
}

/* ------------------------------------------------------------------ */
/* Key files                                                           */
/* ------------------------------------------------------------------ */

static char *temp_file(const char *text) {
    char *path = strdup("/tmp/plaza_tok_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void test_keys_load(void **state) {
    (void)state;
    char *rp = temp_file(rsa_pub), *ep = temp_file(ec_pub);
    char *priv = temp_file(rsa_priv), *junk = temp_file("hello\n");
    char err[512];
    token_keys k = {0};
    k.hmac_secret = SECRET;
    assert_int_equal(token_keys_load(&k, rp, ep, err, sizeof(err)), 0);
    assert_string_equal(k.rsa_public_pem, rsa_pub);
    assert_string_equal(k.ec_public_pem, ec_pub);
    assert_string_equal(k.hmac_secret, SECRET);
    /* Loaded keys verify tokens. */
    char *tok = mint(JWT_ALG_ES256, ec_priv, "{\"sub\":\"f\"}");
    assert_int_equal(conn_rc(&k, tok), TOKEN_OK);
    free(tok);
    /* Reloading replaces; NULL/"" paths leave a slot as it is. */
    assert_int_equal(token_keys_load(&k, rp, "", err, sizeof(err)), 0);
    assert_non_null(k.ec_public_pem);
    token_keys_free(&k);
    assert_null(k.rsa_public_pem);
    assert_null(k.ec_public_pem);
    token_keys_free(&k);

    /* Errors name the file and leave the keys untouched. */
    struct { const char *rsa, *ec; } bad[] = {
        {ep, NULL}, {NULL, rp}, {priv, NULL}, {junk, NULL},
        {"/nonexistent/key.pem", NULL}, {rp, junk},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        token_keys z = {0};
        err[0] = '\0';
        assert_int_equal(token_keys_load(&z, bad[i].rsa, bad[i].ec, err, sizeof(err)), -1);
        const char *named = (bad[i].rsa == rp) ? bad[i].ec : bad[i].rsa ? bad[i].rsa : bad[i].ec;
        assert_non_null(strstr(err, named));
        assert_null(z.rsa_public_pem);
        assert_null(z.ec_public_pem);
    }
    assert_int_equal(token_keys_load(&k, NULL, NULL, err, sizeof(err)), 0);
    assert_null(k.rsa_public_pem);
    unlink(rp); unlink(ep); unlink(priv); unlink(junk);
    free(rp); free(ep); free(priv); free(junk);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hs256_conn_valid),
        cmocka_unit_test(test_hs384_hs512_valid),
        cmocka_unit_test(test_no_sub_is_anonymous),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_numeric_claims),
        cmocka_unit_test(test_nbf),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_alg_none),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_alg_names),
        cmocka_unit_test(test_rs256),
        cmocka_unit_test(test_es256),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_conn_channel_claim),
        cmocka_unit_test(test_channels_claim),
        cmocka_unit_test(test_info_kinds),
        cmocka_unit_test(test_b64info),
        cmocka_unit_test(test_expire_at),
        cmocka_unit_test(test_audience),
        cmocka_unit_test(test_issuer),
        cmocka_unit_test(test_sub_valid),
        cmocka_unit_test(test_sub_invalid),
        cmocka_unit_test(test_err_optional),
        cmocka_unit_test(test_keys_load),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
