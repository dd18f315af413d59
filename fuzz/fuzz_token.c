/* fuzz_token: libFuzzer target for src/auth/token.c with an HMAC secret
 * configured (and no RSA/EC key).
 *
 * The first input byte picks the mode (seeds use '0' and '1'):
 *   even  the rest is a token string, verified as it is;
 *   odd   the rest is a JWT payload, signed here with the secret under a
 *         fixed HS256 header, so the claim checks are reached too.
 *
 * Each token goes through token_verify_conn and token_verify_sub. Besides
 * "no crash, no leak", the results must hold together: a failure sets err,
 * an accepted token has the fields its kind promises, info is JSON text,
 * and no token is both a connection and a subscription token. Violations
 * abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/token.h"

#define SECRET "fuzz-secret"
#define NOW 1700000000

static void check_info(const char *info, size_t len) {
    if (!info) return;
    if (strlen(info) != len) abort();
    json_t *j = json_loads(info, JSON_DECODE_ANY, NULL);
    if (!j) abort();
    json_decref(j);
}

static void check_result(int rc, const char *err) {
    if (rc != TOKEN_OK && rc != TOKEN_INVALID && rc != TOKEN_EXPIRED) abort();
    if (rc != TOKEN_OK && !err[0]) abort();
}

static void run(const token_keys *k, const char *tok) {
    char err[256];
    conn_token c;
    int rc = token_verify_conn(k, tok, NOW, &c, err, sizeof(err));
    check_result(rc, err);
    if (rc == TOKEN_OK) {
        if (!c.user || c.nchannels < 0 || (c.nchannels && !c.channels)) abort();
        for (int i = 0; i < c.nchannels; i++)
            if (!c.channels[i] || !c.channels[i][0]) abort();
        check_info(c.info, c.info_len);
    }
    conn_token_free(&c);

    sub_token s;
    int rs = token_verify_sub(k, tok, NOW, &s, err, sizeof(err));
    check_result(rs, err);
    if (rs == TOKEN_OK) {
        if (!s.user || !s.channel || !s.channel[0]) abort();
        if (s.client && !s.client[0]) abort();
        check_info(s.info, s.info_len);
    }
    sub_token_free(&s);
    if (rc == TOKEN_OK && rs == TOKEN_OK) abort();
}

static char *b64url(const uint8_t *p, size_t n) {
    char *out = malloc(n / 3 * 4 + 8);
    if (!out) return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    int t = 0;
    for (int i = 0; i < len; i++) {
        if (out[i] == '=') continue;
        out[t++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[t] = '\0';
    return out;
}

/* header.base64url(payload).HMAC, or NULL. */
static char *sign_payload(const uint8_t *p, size_t n) {
    static const char hdr[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
    char *body = b64url(p, n);
    if (!body) return NULL;
    size_t cap = sizeof(hdr) + strlen(body) + 100;
    char *tok = malloc(cap);
    if (!tok) { free(body); return NULL; }
    int len = snprintf(tok, cap, "%s.%s", hdr, body);
    free(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (unsigned char *)tok,
         (size_t)len, mac, &maclen);
    char *sig = b64url(mac, maclen);
    if (sig) snprintf(tok + len, cap - (size_t)len, ".%s", sig);
    free(sig);
    if (!sig) { free(tok); return NULL; }
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 16384) return 0;
    token_keys k = {0};
    k.hmac_secret = SECRET;
    int mode = data[0] & 1;
    data++;
    size--;

    char *tok;
    if (mode == 0) {
        tok = malloc(size + 1);
        if (!tok) return 0;
        memcpy(tok, data, size);
        tok[size] = '\0';
    } else {
        tok = sign_payload(data, size);
        if (!tok) return 0;
    }
    run(&k, tok);
    /* Every second configuration: audience and issuer checks on. */
    k.audience = "plaza";
    k.issuer = "iss";
    run(&k, tok);
    free(tok);
    return 0;
}
