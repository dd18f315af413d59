/* ws_deflate: permessage-deflate (RFC 7692). This file owns three things:
 *
 *  - negotiation: parsing a Sec-WebSocket-Extensions value into offers,
 *    picking the first acceptable permessage-deflate offer, and writing the
 *    response value (always with server_no_context_takeover, 7.1.1.1);
 *  - the receiving side: a raw inflate stream per connection that appends
 *    the 00 00 ff ff tail at each message end (7.2.2) and never produces
 *    more than the caller's limit (zip bombs);
 *  - the sending side: one whole message compressed on its own, with a
 *    per-thread cached deflate stream because deflateInit2 is expensive.
 *
 * Incoming data is checked strictly: invalid deflate data, or a message
 * whose payload stops inside a deflate block, is an error (close 1007). */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "net/ws_deflate.h"

#define WS_DEFLATE_NAME "permessage-deflate"
#define DEFAULT_WINDOW_BITS 15

/* ------------------------------------------------------------------------
 * Negotiation
 *
 * Grammar (RFC 6455 9.1, RFC 7692 5):
 *   extension-list = 1#extension
 *   extension      = token *( ";" param )
 *   param          = token [ "=" ( token / quoted-string ) ]
 * Whitespace is allowed around every separator. An offer is declined when
 * it has an unknown parameter, a duplicate parameter or an invalid value
 * (RFC 7692 5); a syntax error inside one extension skips to the next
 * top-level comma. Names are compared case-insensitively.
 * --------------------------------------------------------------------- */

enum {
    P_SERVER_NO_TAKEOVER = 1,
    P_CLIENT_NO_TAKEOVER = 2,
    P_SERVER_MAX_BITS = 4,
    P_CLIENT_MAX_BITS = 8,
};

#define MAX_VALUE 16   /* longer values are invalid for every parameter */

static void skip_ows(const char **pp) {
    while (**pp == ' ' || **pp == '\t') (*pp)++;
}

static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Reads a token at *pp. Returns its length (0 if there is none). */
static size_t read_token(const char **pp, const char **start) {
    *start = *pp;
    while (is_tchar((unsigned char)**pp)) (*pp)++;
    return (size_t)(*pp - *start);
}

/* Reads a quoted-string at *pp (which points at the opening quote),
 * unescaping into buf. *len gets the full unescaped length even when it
 * exceeds cap. Returns -1 if the string is not terminated. */
static int read_quoted(const char **pp, char *buf, size_t cap, size_t *len) {
    const char *p = *pp + 1;
    size_t n = 0;

    for (;;) {
        char c = *p++;
        if (c == '\0') return -1;
        if (c == '"') break;
        if (c == '\\') {
            c = *p++;
            if (c == '\0') return -1;
        }
        if (n < cap) buf[n] = c;
        n++;
    }
    *pp = p;
    *len = n;
    return 0;
}

/* Reads a parameter value (token or quoted-string) into buf; *len is its
 * full length, which may exceed cap (only cap bytes are stored). Returns -1
 * on a syntax error. */
static int read_value(const char **pp, char *buf, size_t cap, size_t *len) {
    const char *start;
    size_t n;

    if (**pp == '"') return read_quoted(pp, buf, cap, len);
    n = read_token(pp, &start);
    if (n == 0) return -1;
    memcpy(buf, start, n < cap ? n : cap);
    *len = n;
    return 0;
}

/* "8".."15", decimal without leading zeros (RFC 7692 7.1.2). */
static int parse_window_bits(const char *v, size_t len) {
    if (len == 1 && (v[0] == '8' || v[0] == '9')) return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

static int param_id(const char *name, size_t len) {
    static const struct { const char *name; int id; } known[] = {
        {"server_no_context_takeover", P_SERVER_NO_TAKEOVER},
        {"client_no_context_takeover", P_CLIENT_NO_TAKEOVER},
        {"server_max_window_bits", P_SERVER_MAX_BITS},
        {"client_max_window_bits", P_CLIENT_MAX_BITS},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strlen(known[i].name) == len &&
            strncasecmp(known[i].name, name, len) == 0)
            return known[i].id;
    }
    return 0;
}

/* Applies one parameter of a permessage-deflate offer to *d. Returns 1 if
 * the offer is still acceptable, 0 if it must be declined. */
static int apply_param(ws_deflate_params *d, int *seen, int id,
                       int has_value, const char *v, size_t vlen) {
    int bits;

    if (id == 0 || (*seen & id)) return 0;   /* unknown or duplicate */
    *seen |= id;
    switch (id) {
    case P_SERVER_NO_TAKEOVER:
        return !has_value;                   /* we always set it anyway */
    case P_CLIENT_NO_TAKEOVER:
        if (has_value) return 0;
        d->client_no_context_takeover = 1;
        return 1;
    case P_SERVER_MAX_BITS:                  /* value required */
        if (!has_value || (bits = parse_window_bits(v, vlen)) < 0) return 0;
        d->server_max_window_bits = (uint8_t)bits;
        return 1;
    case P_CLIENT_MAX_BITS:                  /* value optional */
        if (!has_value) return 1;
        if ((bits = parse_window_bits(v, vlen)) < 0) return 0;
        d->client_max_window_bits = (uint8_t)bits;
        return 1;
    }
    return 0;
}

/* Reads one ";" param of the extension at *pp, applying it to *d when *ok.
 * Returns -1 on a syntax error. */
static int read_param(const char **pp, ws_deflate_params *d, int *seen,
                      int *ok) {
    const char *name;
    char value[MAX_VALUE];
    size_t nlen, vlen = 0;
    int has_value = 0;

    skip_ows(pp);
    nlen = read_token(pp, &name);
    if (nlen == 0) return -1;
    skip_ows(pp);
    if (**pp == '=') {
        (*pp)++;
        skip_ows(pp);
        if (read_value(pp, value, sizeof value, &vlen) < 0) return -1;
        has_value = 1;
    }
    if (*ok)
        *ok = apply_param(d, seen, param_id(name, nlen), has_value, value,
                          vlen);
    return 0;
}

/* Reads one extension at *pp, leaving *pp at the following ',' or the end.
 * Returns 1 if it is an acceptable permessage-deflate offer (*d filled), 0
 * if not, -1 on a syntax error (*pp is then somewhere inside it). */
static int read_extension(const char **pp, ws_deflate_params *d) {
    const char *name;
    size_t nlen;
    int seen = 0, ok;

    nlen = read_token(pp, &name);
    if (nlen == 0) return -1;
    ok = nlen == strlen(WS_DEFLATE_NAME) &&
         strncasecmp(name, WS_DEFLATE_NAME, nlen) == 0;
    memset(d, 0, sizeof *d);
    d->client_max_window_bits = DEFAULT_WINDOW_BITS;
    d->server_max_window_bits = DEFAULT_WINDOW_BITS;
    for (;;) {
        skip_ows(pp);
        if (**pp == ',' || **pp == '\0') break;
        if (**pp != ';') return -1;
        (*pp)++;
        if (read_param(pp, d, &seen, &ok) < 0) return -1;
    }
    d->enabled = ok;
    return ok;
}

/* After a syntax error: moves *pp to the next top-level ',' (or the end),
 * stepping over quoted strings. Returns -1 if a quote is never closed. */
static int skip_extension(const char **pp) {
    char scratch[1];
    size_t len;

    while (**pp != '\0' && **pp != ',') {
        if (**pp == '"') {
            if (read_quoted(pp, scratch, 0, &len) < 0) return -1;
        } else {
            (*pp)++;
        }
    }
    return 0;
}

int ws_deflate_negotiate(const char *header, ws_deflate_params *out) {
    const char *p = header;
    ws_deflate_params d;

    if (header == NULL) return 0;
    for (;;) {
        skip_ows(&p);
        while (*p == ',') {               /* empty list elements */
            p++;
            skip_ows(&p);
        }
        if (*p == '\0') return 0;
        int rc = read_extension(&p, &d);
        if (rc == 1) {
            *out = d;
            return 1;
        }
        if (rc < 0 && skip_extension(&p) < 0) return 0;
    }
}

/* Window parameters equal to the default (15) are left out: their absence
 * means 15 (RFC 7692 7.1.2.1, 7.1.2.2). client_max_window_bits is below 15
 * only if the client offered it with that value, so we never send it
 * unoffered (7.1.2.2). */
size_t ws_deflate_response(const ws_deflate_params *p, char *out, size_t cap) {
    char smwb[32] = "", cmwb[32] = "";
    int n;

    if (!p->enabled) return 0;
    if (p->server_max_window_bits >= 8 && p->server_max_window_bits < 15)
        snprintf(smwb, sizeof smwb, "; server_max_window_bits=%d",
                 p->server_max_window_bits);
    if (p->client_max_window_bits >= 8 && p->client_max_window_bits < 15)
        snprintf(cmwb, sizeof cmwb, "; client_max_window_bits=%d",
                 p->client_max_window_bits);
    n = snprintf(out, cap, "%s; server_no_context_takeover%s%s%s",
                 WS_DEFLATE_NAME,
                 p->client_no_context_takeover ?
                     "; client_no_context_takeover" : "",
                 smwb, cmwb);
    if (n < 0 || (size_t)n >= cap) return 0;
    return (size_t)n;
}

/* ------------------------------------------------------------------------
 * Receiving side
 * --------------------------------------------------------------------- */

struct ws_inflater {
    z_stream zs;
    int live;           /* zs is initialised */
    int ended;          /* the stream reached a BFINAL block this message */
    int keep_context;   /* the client keeps its LZ77 window across messages */
    int window_bits;    /* raw inflate window, 9..15 */
    size_t msg_in;      /* compressed bytes received for this message */
};

ws_inflater *ws_inflater_new(const ws_deflate_params *p) {
    ws_inflater *inf = calloc(1, sizeof *inf);
    int bits = p ? p->client_max_window_bits : DEFAULT_WINDOW_BITS;

    if (inf == NULL) return NULL;
    if (bits < 8 || bits > 15) bits = DEFAULT_WINDOW_BITS;
    /* zlib cannot deflate with a 256-byte raw window; zlib-based clients
     * that agreed to 8 really compress with 9, so decode with 9. */
    if (bits == 8) bits = 9;
    inf->window_bits = bits;
    inf->keep_context = p ? !p->client_no_context_takeover : 1;
    return inf;
}

void ws_inflater_free(ws_inflater *inf) {
    if (inf == NULL) return;
    if (inf->live) inflateEnd(&inf->zs);
    free(inf);
}

static int inflater_start(ws_inflater *inf) {
    if (inf->live) return 0;
    memset(&inf->zs, 0, sizeof inf->zs);
    if (inflateInit2(&inf->zs, -inf->window_bits) != Z_OK) return -1;
    inf->live = 1;
    return 0;
}

/* Makes room for more output: *out_cap > *out_len afterwards. The buffer
 * never grows past max_out (callers only ask while *out_len < max_out). */
static int out_grow(uint8_t **out, size_t *out_len, size_t *out_cap,
                    size_t max_out) {
    size_t ncap;
    uint8_t *p;

    if (*out_cap > *out_len) return 0;
    ncap = *out_cap < 4096 ? 4096 :
           *out_cap > SIZE_MAX / 2 ? SIZE_MAX : *out_cap * 2;
    if (ncap > max_out) ncap = max_out;
    p = realloc(*out, ncap);
    if (p == NULL) return -1;
    *out = p;
    *out_cap = ncap;
    return 0;
}

/* Inflates zs's current input until it is used up (or the stream ends).
 * Once max_out bytes are out, inflate writes into a 1-byte probe: any byte
 * there means the limit would be passed. */
static int inflate_pending(ws_inflater *inf, uint8_t **out, size_t *out_len,
                           size_t *out_cap, size_t max_out) {
    z_stream *zs = &inf->zs;

    for (;;) {
        uint8_t probe;
        size_t room = 1;
        int full = *out_len >= max_out, rc;

        if (full) {
            zs->next_out = &probe;
        } else {
            if (out_grow(out, out_len, out_cap, max_out) < 0) return -1;
            room = (*out_cap < max_out ? *out_cap : max_out) - *out_len;
            if (room > UINT_MAX) room = UINT_MAX;
            zs->next_out = *out + *out_len;
        }
        zs->avail_out = (uInt)room;
        rc = inflate(zs, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return -1;
        if (full && zs->avail_out == 0) return -2;
        if (!full) *out_len += room - zs->avail_out;
        if (rc == Z_STREAM_END) {
            inf->ended = 1;
            return 0;
        }
        if (zs->avail_out > 0) return 0;  /* input used up, all out */
    }
}

/* Inflates in[0..len), in chunks zlib's 32-bit counters can hold. Bytes
 * after a final (BFINAL) block are ignored: zlib ends the stream there. */
static int inflate_input(ws_inflater *inf, const uint8_t *in, size_t len,
                         uint8_t **out, size_t *out_len, size_t *out_cap,
                         size_t max_out) {
    while (len > 0 && !inf->ended) {
        uInt n = len > UINT_MAX ? UINT_MAX : (uInt)len;
        int rc;

        inf->zs.next_in = (Bytef *)in;
        inf->zs.avail_in = n;
        rc = inflate_pending(inf, out, out_len, out_cap, max_out);
        if (rc != 0) return rc;
        in += n;
        len -= n;
    }
    return 0;
}

int ws_inflater_feed(ws_inflater *inf, const uint8_t *in, size_t len,
                     uint8_t **out, size_t *out_len, size_t *out_cap,
                     size_t max_out) {
    if (len == 0) return 0;
    if (inflater_start(inf) < 0) return -1;
    inf->msg_in += len;
    return inflate_input(inf, in, len, out, out_len, out_cap, max_out);
}

/* A message that ended with a BFINAL block ended zlib's stream; start a
 * new one, carrying the window over when the client keeps its context
 * (RFC 7692 7.2.3.4: such messages decompress "in the same manner"). */
static int inflater_restart(ws_inflater *inf) {
    uInt n = 0;
    uint8_t *dict = malloc((size_t)1 << inf->window_bits);
    int rc;

    if (dict == NULL) return -1;
    rc = inflateGetDictionary(&inf->zs, dict, &n);
    if (rc == Z_OK) rc = inflateReset(&inf->zs);
    if (rc == Z_OK && n > 0) rc = inflateSetDictionary(&inf->zs, dict, n);
    free(dict);
    return rc == Z_OK ? 0 : -1;
}

/* Message boundary: without context takeover the stream is freed (an idle
 * connection holds no zlib memory); with it, the stream is kept. */
static int inflater_end_message(ws_inflater *inf) {
    int ended = inf->ended;

    inf->msg_in = 0;
    inf->ended = 0;
    if (!inf->live) return 0;
    if (!inf->keep_context) {
        inflateEnd(&inf->zs);
        inf->live = 0;
        return 0;
    }
    return ended ? inflater_restart(inf) : 0;
}

/* An empty payload (no compressed bytes at all) is taken as an empty
 * message; strictly it should be the single byte 0x00, but the intent is
 * clear and the tail alone would not be valid deflate. */
int ws_inflater_finish(ws_inflater *inf, uint8_t **out, size_t *out_len,
                       size_t *out_cap, size_t max_out) {
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    int rc = 0;

    if (inf->msg_in > 0 && !inf->ended) {
        rc = inflate_input(inf, tail, sizeof tail, out, out_len, out_cap,
                           max_out);
        /* Bit 128 of data_type: inflate stopped at a block boundary. If
         * not, the payload ended inside a block. */
        if (rc == 0 && !inf->ended && !(inf->zs.data_type & 128)) rc = -1;
    }
    if (rc == 0) rc = inflater_end_message(inf);
    return rc;
}

/* ------------------------------------------------------------------------
 * Sending side
 *
 * deflateInit2 allocates and clears ~260 KiB, so each thread keeps one
 * stream and resets it between messages. The stream hangs off a pthread key
 * whose destructor frees it when the thread exits (a bare _Thread_local
 * pointer would leak it). The key and its once-flag are the only statics,
 * written once.
 * --------------------------------------------------------------------- */

typedef struct deflate_cache {
    z_stream zs;
    int level;
} deflate_cache;

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static int cache_key_ok;

static void cache_free(void *arg) {
    deflate_cache *c = arg;

    deflateEnd(&c->zs);
    free(c);
}

static void cache_key_init(void) {
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

static int deflate_init(z_stream *zs, int level) {
    memset(zs, 0, sizeof *zs);
    return deflateInit2(zs, level, Z_DEFLATED, -DEFAULT_WINDOW_BITS, 8,
                        Z_DEFAULT_STRATEGY) == Z_OK ? 0 : -1;
}

/* This thread's deflate stream at `level`, reset; NULL on failure. */
static z_stream *cached_deflater(int level) {
    deflate_cache *c;

    if (pthread_once(&cache_once, cache_key_init) != 0 || !cache_key_ok)
        return NULL;
    c = pthread_getspecific(cache_key);
    if (c != NULL && c->level != level) {
        pthread_setspecific(cache_key, NULL);
        cache_free(c);
        c = NULL;
    }
    if (c == NULL) {
        if ((c = malloc(sizeof *c)) == NULL) return NULL;
        if (deflate_init(&c->zs, level) < 0) {
            free(c);
            return NULL;
        }
        c->level = level;
        if (pthread_setspecific(cache_key, c) != 0) {
            cache_free(c);
            return NULL;
        }
        return &c->zs;
    }
    return deflateReset(&c->zs) == Z_OK ? &c->zs : NULL;
}

/* Runs deflate over all of in with a final Z_SYNC_FLUSH, growing *buf
 * (`reserve` bytes in front, then *cap bytes) as needed. Returns the output
 * length, or (size_t)-1 on failure. */
static size_t deflate_all(z_stream *zs, const uint8_t *in, size_t len,
                          uint8_t **buf, size_t reserve, size_t *capp) {
    size_t pos = 0, produced = 0, cap = *capp;

    for (;;) {
        size_t chunk = len - pos > UINT_MAX ? UINT_MAX : len - pos;
        size_t room = cap - produced > UINT_MAX ? UINT_MAX : cap - produced;
        int flush = pos + chunk == len ? Z_SYNC_FLUSH : Z_NO_FLUSH, rc;

        zs->next_in = (Bytef *)(in ? in + pos : NULL);
        zs->avail_in = (uInt)chunk;
        zs->next_out = *buf + reserve + produced;
        zs->avail_out = (uInt)room;
        rc = deflate(zs, flush);
        if (rc != Z_OK && rc != Z_BUF_ERROR) return (size_t)-1;
        pos += chunk - zs->avail_in;
        produced += room - zs->avail_out;
        if (flush == Z_SYNC_FLUSH && zs->avail_out > 0) return produced;
        if (produced == cap) {
            uint8_t *p;
            if (cap > (SIZE_MAX - reserve) / 2) return (size_t)-1;
            if ((p = realloc(*buf, reserve + cap * 2)) == NULL)
                return (size_t)-1;
            *buf = p;
            cap *= 2;
            *capp = cap;
        }
    }
}

uint8_t *ws_deflate_message(const uint8_t *in, size_t len, int level,
                            size_t reserve, size_t *out_len) {
    z_stream *zs = cached_deflater(level);
    size_t cap, n;
    uint8_t *buf, *shrunk;

    if (zs == NULL) return NULL;
    cap = deflateBound(zs, len) + 16;    /* + the sync flush marker */
    if (cap < len || reserve > SIZE_MAX - cap) return NULL;
    if ((buf = malloc(reserve + cap)) == NULL) return NULL;
    n = deflate_all(zs, in, len, &buf, reserve, &cap);
    /* A sync flush ends with an empty stored block 00 00 ff ff, which the
     * receiver appends back (RFC 7692 7.2.1). */
    if (n == (size_t)-1 || n < 4 ||
        memcmp(buf + reserve + n - 4, "\x00\x00\xff\xff", 4) != 0) {
        free(buf);
        return NULL;
    }
    n -= 4;
    if (cap - n > 4096 && (shrunk = realloc(buf, reserve + n)) != NULL)
        buf = shrunk;
    *out_len = n;
    return buf;
}
