/* utf8: owns UTF-8 validation for text messages: a small table-driven DFA
 * that can stop and resume anywhere inside a code point, with a fast path
 * that skips ASCII 8 bytes at a time.
 *
 * Each byte maps to one of 12 classes; the state is the offset of a row in
 * the transition table (state index * 12), so one step is a single load:
 * state = utf8_next[state + utf8_class[byte]]. The states say what the
 * following bytes must be:
 *
 *   ACC  at a boundary          REJ  invalid (sticky)
 *   N1   1 more 80..BF          N2   2 more 80..BF       N3   3 more 80..BF
 *   E0   A0..BF, then 1 more    ED   80..9F, then 1 more  (no overlong,
 *   F0   90..BF, then 2 more    F4   80..8F, then 2 more   no surrogate,
 *                                                          <= U+10FFFF) */
#include "net/utf8.h"

#include <string.h>

/* Byte classes. */
enum {
    C_ASCII = 0,   /* 00..7F */
    C_CONT_LO,     /* 80..8F */
    C_CONT_MID,    /* 90..9F */
    C_CONT_HI,     /* A0..BF */
    C_BAD,         /* C0, C1 (overlong leads), F5..FF (beyond U+10FFFF) */
    C_LEAD2,       /* C2..DF */
    C_E0,          /* E0: second byte A0..BF */
    C_LEAD3,       /* E1..EC, EE, EF */
    C_ED,          /* ED: second byte 80..9F */
    C_F0,          /* F0: second byte 90..BF */
    C_LEAD4,       /* F1..F3 */
    C_F4,          /* F4: second byte 80..8F */
    C_COUNT
};

/* States, premultiplied by C_COUNT. */
enum {
    ACC = 0 * C_COUNT,
    REJ = 1 * C_COUNT,
    N1 = 2 * C_COUNT,
    N2 = 3 * C_COUNT,
    N3 = 4 * C_COUNT,
    SE0 = 5 * C_COUNT,
    SED = 6 * C_COUNT,
    SF0 = 7 * C_COUNT,
    SF4 = 8 * C_COUNT,
};

static const uint8_t utf8_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 00..0F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 10..1F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 20..2F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 30..3F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 40..4F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 50..5F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 60..6F */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 70..7F */
     1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 80..8F */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 90..9F */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  /* A0..AF */
     3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  /* B0..BF */
     4,  4,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  /* C0..CF */
     5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  5,  /* D0..DF */
     6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  7,  /* E0..EF */
     9, 10, 10, 10, 11,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* F0..FF */
};

/* utf8_next[state + class]. Columns follow the class enum:
 *         ASCII 80-8F 90-9F A0-BF  bad  C2-DF  E0   E1-EF  ED   F0  F1-F3  F4 */
static const uint8_t utf8_next[9 * C_COUNT] = {
    /* ACC */ ACC, REJ, REJ, REJ, REJ, N1,  SE0, N2,  SED, SF0, N3,  SF4,
    /* REJ */ REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* N1  */ REJ, ACC, ACC, ACC, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* N2  */ REJ, N1,  N1,  N1,  REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* N3  */ REJ, N2,  N2,  N2,  REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* SE0 */ REJ, REJ, REJ, N1,  REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* SED */ REJ, N1,  N1,  REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* SF0 */ REJ, REJ, N2,  N2,  REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
    /* SF4 */ REJ, N2,  REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ, REJ,
};

/* Number of leading ASCII bytes in d[0..n), counted 8 at a time; stops at
 * the 8-byte word holding the first non-ASCII byte. */
static size_t utf8_ascii_run(const uint8_t *d, size_t n) {
    size_t i = 0;
    uint64_t w;
    for (; n - i >= 16; i += 16) {
        uint64_t w2;
        memcpy(&w, d + i, 8);
        memcpy(&w2, d + i + 8, 8);
        if ((w | w2) & 0x8080808080808080ULL) break;
    }
    for (; n - i >= 8; i += 8) {
        memcpy(&w, d + i, 8);
        if (w & 0x8080808080808080ULL) break;
    }
    return i;
}

void utf8_init(utf8_state *s) {
    s->state = ACC;
}

int utf8_feed(utf8_state *s, const uint8_t *data, size_t len) {
    uint32_t st = s->state;
    size_t i = 0;

    if (st == REJ) return -1;
    while (i < len) {
        /* At a boundary in front of ASCII: skip whole ASCII words. */
        if (st == ACC && data[i] < 0x80) {
            i += utf8_ascii_run(data + i, len - i);
            if (i == len) break;
        }
        st = utf8_next[st + utf8_class[data[i++]]];
        if (st == REJ) break;
    }
    s->state = st;
    return st == REJ ? -1 : 0;
}

int utf8_done(const utf8_state *s) {
    return s->state == ACC;
}

int utf8_valid(const uint8_t *data, size_t len) {
    utf8_state s;
    utf8_init(&s);
    return utf8_feed(&s, data, len) == 0 && utf8_done(&s);
}
