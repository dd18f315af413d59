/* utf8: an incremental UTF-8 validator (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF). Text messages are checked as their
 * fragments arrive, so a message is refused at the first bad byte even when
 * a code point is split across frames or reads. ASCII runs take a fast path. */
#ifndef PLAZA_UTF8_H
#define PLAZA_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct utf8_state {
    uint32_t state;  /* 0 = at a code point boundary */
} utf8_state;

void utf8_init(utf8_state *s);

/* Validates len more bytes. Returns 0 if they are valid so far, -1 at the
 * first invalid byte (the state then stays invalid). */
int utf8_feed(utf8_state *s, const uint8_t *data, size_t len);

/* 1 if everything fed so far is complete, valid UTF-8. */
int utf8_done(const utf8_state *s);

/* 1 if the whole buffer is valid UTF-8. */
int utf8_valid(const uint8_t *data, size_t len);

#endif
