/* log: the process-wide log threshold and format (the only settings here,
 * set once at start-up), and the formatting of one line per message, written
 * to stderr with a single write(2) so that lines from threads never mix.
 * Text:  2026-11-24T08:00:00.123Z INFO message
 * JSON:  {"ts":"2026-11-24T08:00:00.123Z","level":"info","msg":"message"} */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "obs/log.h"

#define LOG_MSG_MAX  4096                    /* longer messages are cut */
#define LOG_LINE_MAX (LOG_MSG_MAX * 6 + 128) /* worst case: every byte \u00XX */

static atomic_int log_level = LOG_INFO;
static atomic_int log_json = 0;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_upper[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int log_set_level(const char *name) {
    for (int i = LOG_DEBUG; name && i <= LOG_ERROR; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            atomic_store_explicit(&log_level, i, memory_order_relaxed);
            return 0;
        }
    }
    return -1;
}

int log_set_format(const char *name) {
    int json;
    if (name && strcasecmp(name, "text") == 0) json = 0;
    else if (name && strcasecmp(name, "json") == 0) json = 1;
    else return -1;
    atomic_store_explicit(&log_json, json, memory_order_relaxed);
    return 0;
}

int log_enabled(int level) {
    return level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* "2026-11-24T08:00:00.123Z" into buf (96 bytes: room for any int fields). */
static size_t format_time(char *buf, size_t size) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000));
    return n < 0 ? 0 : (size_t)n < size ? (size_t)n : size - 1;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t avail) {
    size_t len;
    unsigned min, cp;
    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) len = 2, min = 0x80, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) len = 3, min = 0x800, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) len = 4, min = 0x10000, cp = s[0] & 0x07;
    else return 0;
    if (len > avail) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Appends msg as the contents of a JSON string: quotes, backslashes and
 * control characters escaped, invalid UTF-8 replaced by U+FFFD. */
static size_t json_escape(char *out, const char *msg, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)msg;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = s[i];
        size_t seq = utf8_seq(s + i, len - i);
        if (seq == 0) {
            memcpy(out + o, "\\ufffd", 6), o += 6, i++;
        } else if (seq > 1) {
            memcpy(out + o, s + i, seq), o += seq, i += seq;
        } else if (ch == '"' || ch == '\\') {
            out[o++] = '\\', out[o++] = (char)ch, i++;
        } else if (ch == '\n') {
            memcpy(out + o, "\\n", 2), o += 2, i++;
        } else if (ch == '\r') {
            memcpy(out + o, "\\r", 2), o += 2, i++;
        } else if (ch == '\t') {
            memcpy(out + o, "\\t", 2), o += 2, i++;
        } else if (ch < 0x20 || ch == 0x7F) {
            memcpy(out + o, "\\u00", 4), o += 4;
            out[o++] = hex[ch >> 4], out[o++] = hex[ch & 15], i++;
        } else {
            out[o++] = (char)ch, i++;
        }
    }
    return o;
}

/* Appends msg for a text line, control characters (newlines) as spaces so
 * that one message stays one line. */
static size_t text_copy(char *out, const char *msg, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)msg[i];
        out[i] = ch < 0x20 || ch == 0x7F ? ' ' : (char)ch;
    }
    return len;
}

/* Writes all of buf; a short write of a line can only happen past PIPE_BUF. */
static void write_all(const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        buf += n, len -= (size_t)n;
    }
}

static size_t format_line(char *line, int level, const char *msg, size_t len) {
    char ts[96];
    size_t o;
    format_time(ts, sizeof(ts));
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        o = (size_t)sprintf(line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"",
                            ts, level_names[level]);
        o += json_escape(line + o, msg, len);
        memcpy(line + o, "\"}\n", 3);
        return o + 3;
    }
    o = (size_t)sprintf(line, "%s %s ", ts, level_upper[level]);
    o += text_copy(line + o, msg, len);
    line[o++] = '\n';
    return o;
}

void log_write(int level, const char *fmt, ...) {
    static _Thread_local char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
    int saved_errno = errno;
    if (level < LOG_DEBUG) level = LOG_DEBUG;
    if (level > LOG_ERROR) level = LOG_ERROR;
    if (!log_enabled(level)) return;

    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof(msg)) { /* cut: mark it */
        len = sizeof(msg) - 1;
        memcpy(msg + len - 3, "...", 3);
    }
    write_all(line, format_line(line, level, msg, len));
    errno = saved_errno;
}
