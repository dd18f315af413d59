/* tls: TLS on a connection with OpenSSL over memory BIOs, so the socket stays
 * a plain libuv stream: ciphertext read from the socket is fed in and
 * plaintext comes out; plaintext to send goes in and ciphertext is taken out
 * for one write. */
#ifndef PLAZA_TLS_H
#define PLAZA_TLS_H

#include <stddef.h>
#include <stdint.h>
#include "core/rcbuf.h"

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

/* Loads cert and key (PEM). Returns NULL with err filled on failure. */
tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err,
                     size_t errlen);
void tls_ctx_free(tls_ctx *ctx);

tls_conn *tls_conn_new(tls_ctx *ctx);
void tls_conn_free(tls_conn *t);

/* Feeds ciphertext; each chunk of plaintext produced is passed to on_plain
 * (using scratch as buffer). Returns 0, or -1 on a TLS failure (the
 * connection must be closed). on_plain returns non-zero to stop. */
int tls_conn_feed(tls_conn *t, const uint8_t *in, size_t len,
                  uint8_t *scratch, size_t scratch_len,
                  int (*on_plain)(void *ud, uint8_t *data, size_t len),
                  void *ud);

/* Encrypts plaintext. Returns 0 or -1. */
int tls_conn_write(tls_conn *t, const uint8_t *data, size_t len);

/* Ciphertext waiting to be sent (handshake records included), or NULL. */
rcbuf *tls_conn_take_output(tls_conn *t);

/* 1 once the handshake is done. */
int tls_conn_ready(const tls_conn *t);

#endif
