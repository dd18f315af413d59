/* sbuf: a growable byte string for building replies and pushes, with JSON
 * string escaping. Out of memory is sticky (sb->oom) so callers check once
 * at the end instead of after every append. */
#ifndef PLAZA_SBUF_H
#define PLAZA_SBUF_H

#include <stddef.h>
#include <stdint.h>

#define SB_MAX 0x7fffffffu  /* at most 2 GiB - 1 bytes: past that, oom */

typedef struct sbuf {     /* 16 bytes: one sits in every client */
    char *p;
    uint32_t len;
    uint32_t cap : 31;
    uint32_t oom : 1;
} sbuf;

void sb_init(sbuf *sb);
void sb_free(sbuf *sb);
void sb_reset(sbuf *sb);                /* len = 0, keeps the memory */
int sb_reserve(sbuf *sb, size_t more);
void sb_append(sbuf *sb, const void *data, size_t len);
void sb_puts(sbuf *sb, const char *s);
void sb_putc(sbuf *sb, char ch);
void sb_u64(sbuf *sb, uint64_t v);
void sb_i64(sbuf *sb, int64_t v);
void sb_printf(sbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s as a quoted JSON string (escaping quotes, backslashes, control
 * characters; U+2028/2029 are left as is, valid in JSON). */
void sb_json_str(sbuf *sb, const char *s, size_t len);

/* Takes the buffer: returns it (NUL-terminated) and empties sb. */
char *sb_take(sbuf *sb, size_t *len);

#endif
