/* sbuf: growable strings and JSON string escaping (see sbuf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/sbuf.h"

void sb_init(sbuf *sb) { memset(sb, 0, sizeof(*sb)); }

void sb_free(sbuf *sb) {
    free(sb->p);
    sb_init(sb);
}

void sb_reset(sbuf *sb) {
    sb->len = 0;
    sb->oom = 0;
}

int sb_reserve(sbuf *sb, size_t more) {
    if (sb->oom) return -1;
    if (more >= SB_MAX - sb->len) { sb->oom = 1; return -1; }
    size_t need = (size_t)sb->len + more + 1;
    if (need <= sb->cap) return 0;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < need) cap *= 2;
    if (cap > SB_MAX) cap = SB_MAX;
    char *np = realloc(sb->p, cap);
    if (!np) { sb->oom = 1; return -1; }
    sb->p = np;
    sb->cap = (uint32_t)cap;
    return 0;
}

void sb_append(sbuf *sb, const void *data, size_t len) {
    if (sb_reserve(sb, len)) return;
    memcpy(sb->p + sb->len, data, len);
    sb->len += (uint32_t)len;
    sb->p[sb->len] = '\0';
}

void sb_puts(sbuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

void sb_putc(sbuf *sb, char ch) {
    if (sb_reserve(sb, 1)) return;
    sb->p[sb->len++] = ch;
    sb->p[sb->len] = '\0';
}

void sb_u64(sbuf *sb, uint64_t v) {
    char tmp[24];
    int i = sizeof(tmp);
    do { tmp[--i] = (char)('0' + v % 10); v /= 10; } while (v);
    sb_append(sb, tmp + i, sizeof(tmp) - (size_t)i);
}

void sb_i64(sbuf *sb, int64_t v) {
    if (v < 0) { sb_putc(sb, '-'); sb_u64(sb, (uint64_t)0 - (uint64_t)v); }
    else sb_u64(sb, (uint64_t)v);
}

void sb_printf(sbuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || sb_reserve(sb, (size_t)n)) { sb->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (uint32_t)n;
}

void sb_json_str(sbuf *sb, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    if (sb_reserve(sb, len + 2)) return;
    sb_putc(sb, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        sb_append(sb, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': sb_append(sb, "\\\"", 2); break;
        case '\\': sb_append(sb, "\\\\", 2); break;
        case '\n': sb_append(sb, "\\n", 2); break;
        case '\r': sb_append(sb, "\\r", 2); break;
        case '\t': sb_append(sb, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            sb_append(sb, u, 6);
        }
        }
    }
    sb_append(sb, s + run, len - run);
    sb_putc(sb, '"');
}

char *sb_take(sbuf *sb, size_t *len) {
    if (sb_reserve(sb, 0)) { sb_free(sb); if (len) *len = 0; return NULL; }
    char *p = sb->p;
    if (len) *len = sb->len;
    sb_init(sb);
    return p;
}
