/* log: leveled log lines on stderr, as text or as one JSON object per line.
 * Thread-safe (one write(2) per line). Configure once at start. */
#ifndef PLAZA_LOG_H
#define PLAZA_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the threshold and format. Returns -1 for an unknown name. */
int log_set_level(const char *name);
int log_set_format(const char *name);   /* "text" or "json" */
int log_enabled(int level);

/* printf-style message. In JSON mode it becomes the "msg" field. */
void log_write(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_write(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)  log_write(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, __VA_ARGS__)

#endif
