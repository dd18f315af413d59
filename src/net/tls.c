/* tls: OpenSSL over memory BIOs (see tls.h). The server context allows
 * TLS 1.2 and 1.3 only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "net/tls.h"

struct tls_ctx { SSL_CTX *ctx; };
struct tls_conn { SSL *ssl; BIO *rbio, *wbio; };

static void err_text(char *err, size_t errlen, const char *what,
                     const char *path) {
    unsigned long e = ERR_get_error();
    char buf[160];
    ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s %s: %s", what, path, e ? buf : "failed");
}

tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err,
                     size_t errlen) {
    tls_ctx *t = calloc(1, sizeof(*t));
    if (!t) { snprintf(err, errlen, "out of memory"); return NULL; }
    t->ctx = SSL_CTX_new(TLS_server_method());
    if (!t->ctx) { err_text(err, errlen, "TLS context", ""); free(t); return NULL; }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(t->ctx, cert) != 1) {
        err_text(err, errlen, "tls.cert", cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx, key, SSL_FILETYPE_PEM) != 1) {
        err_text(err, errlen, "tls.key", key);
        goto fail;
    }
    if (SSL_CTX_check_private_key(t->ctx) != 1) {
        err_text(err, errlen, "tls.key does not match tls.cert", key);
        goto fail;
    }
    return t;
fail:
    SSL_CTX_free(t->ctx);
    free(t);
    return NULL;
}

void tls_ctx_free(tls_ctx *t) {
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

tls_conn *tls_conn_new(tls_ctx *ctx) {
    tls_conn *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->ssl = SSL_new(ctx->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        return NULL;
    }
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    return t;
}

void tls_conn_free(tls_conn *t) {
    if (!t) return;
    SSL_free(t->ssl);   /* frees both BIOs */
    free(t);
}

int tls_conn_feed(tls_conn *t, const uint8_t *in, size_t len,
                  uint8_t *scratch, size_t scratch_len,
                  int (*on_plain)(void *ud, uint8_t *data, size_t len),
                  void *ud) {
    if (len && BIO_write(t->rbio, in, (int)len) != (int)len) return -1;
    for (;;) {
        int n = SSL_read(t->ssl, scratch, (int)scratch_len);
        if (n > 0) {
            if (on_plain(ud, scratch, (size_t)n)) return 0;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        if (e == SSL_ERROR_ZERO_RETURN) return -1;   /* close_notify */
        ERR_clear_error();
        return -1;
    }
}

int tls_conn_write(tls_conn *t, const uint8_t *data, size_t len) {
    while (len) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = SSL_write(t->ssl, data, chunk);
        if (n <= 0) { ERR_clear_error(); return -1; }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

rcbuf *tls_conn_take_output(tls_conn *t) {
    size_t pending = BIO_ctrl_pending(t->wbio);
    if (!pending) return NULL;
    rcbuf *b = rcbuf_new(pending);
    if (!b) return NULL;
    int n = BIO_read(t->wbio, b->data, (int)pending);
    if (n <= 0) { rcbuf_unref(b); return NULL; }
    b->len = (uint32_t)n;
    return b;
}

int tls_conn_ready(const tls_conn *t) { return SSL_is_init_finished(t->ssl); }
