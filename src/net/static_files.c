/* static_files: files from the web root over GET/HEAD (see
 * static_files.h). Files are read whole into one response buffer; the web
 * root holds pages and scripts, not large downloads. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include "net/http_conn.h"
#include "net/static_files.h"

#define MAX_FILE (64u << 20)

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int static_decode_path(const char *path, size_t len, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)path[i];
        if (ch == '%') {
            if (len - i < 3) return -1;
            int hi = hexval(path[i + 1]), lo = hexval(path[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= cap) return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

int static_path_safe(const char *p) {
    if (p[0] != '/') return 0;
    if (strchr(p, '\\')) return 0;
    const char *seg = p + 1;
    while (*seg) {
        if (seg[0] == '.') return 0;        /* ".", "..", hidden files */
        const char *slash = strchr(seg, '/');
        if (!slash) break;
        seg = slash + 1;
    }
    return 1;
}

static const struct { const char *ext, *type; } TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".htm", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".txt", "text/plain; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".wasm", "application/wasm"},
    {".woff2", "font/woff2"},
    {".woff", "font/woff"},
};

const char *static_content_type(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
            if (strcasecmp(dot, TYPES[i].ext) == 0) return TYPES[i].type;
    return "application/octet-stream";
}

/* 1 if the If-None-Match list names etag (or is "*"). */
static int etag_matches(const char *inm, const char *etag) {
    if (!inm) return 0;
    size_t el = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '*') return 1;
        if (p[0] == 'W' && p[1] == '/') p += 2;   /* weak comparison */
        if (strncmp(p, etag, el) == 0 && (p[el] == ',' || p[el] == ' ' || !p[el]))
            return 1;
        while (*p && *p != ',') p++;
    }
    return 0;
}

/* Resolves the request path to a regular file inside root. Returns an open
 * fd and fills st and the file path, or -1 (404) / -2 (400). */
static int resolve(const http_request *req, const char *root, char *file,
                   size_t cap, struct stat *st) {
    char decoded[PATH_MAX];
    if (static_decode_path(req->path, req->path_len, decoded, sizeof(decoded)) < 0)
        return -2;
    if (!static_path_safe(decoded)) return -1;
    int n = snprintf(file, cap, "%s%s", root, decoded);
    if (n < 0 || (size_t)n >= cap) return -1;
    if (stat(file, st) == 0 && S_ISDIR(st->st_mode)) {
        size_t l = strlen(file);
        if (snprintf(file + l, cap - l, "%sindex.html",
                     file[l - 1] == '/' ? "" : "/") >= (int)(cap - l))
            return -1;
    }
    char real[PATH_MAX];
    size_t rl = strlen(root);
    if (!realpath(file, real) || strncmp(real, root, rl) != 0 ||
        (real[rl] != '/' && real[rl] != '\0'))
        return -1;                                  /* missing or outside */
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > MAX_FILE) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_file(conn *c, const http_request *req, int fd,
                      const struct stat *st, const char *file, int max_age) {
    char etag[64], headers[256];
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"",
             (unsigned long long)st->st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st->st_mtim.tv_nsec,
             (unsigned long long)st->st_size);
    const char *type = static_content_type(file);
    int html = strncmp(type, "text/html", 9) == 0;
    char cache[64];
    if (html) snprintf(cache, sizeof(cache), "no-cache");
    else snprintf(cache, sizeof(cache), "public, max-age=%d", max_age);
    snprintf(headers, sizeof(headers), "ETag: %s\r\nCache-Control: %s\r\n",
             etag, cache);
    const http_header *inm = http_request_header(req, "If-None-Match");
    if (etag_matches(inm ? inm->value : NULL, etag)) {
        /* RFC 9110 8.6: a 304's Content-Length, if any, is the 200's. */
        http_respond(c, req, 304, NULL, headers, NULL, (size_t)st->st_size);
        return;
    }
    size_t size = (size_t)st->st_size;
    char *body = malloc(size ? size : 1);
    size_t got = 0;
    while (body && got < size) {
        ssize_t r = read(fd, body + got, size - got);
        if (r <= 0) { if (r < 0 && errno == EINTR) continue; break; }
        got += (size_t)r;
    }
    if (!body || got != size) {
        free(body);
        http_respond_error(c, req, 500, "cannot read file", 0);
        return;
    }
    http_respond(c, req, 200, type, headers, body, size);
    free(body);
}

void static_serve(conn *c, const http_request *req, const char *root,
                  int max_age) {
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_respond(c, req, 405, "text/plain; charset=utf-8",
                     "Allow: GET, HEAD\r\n", "method not allowed\n", 19);
        return;
    }
    char file[PATH_MAX];
    struct stat st;
    int fd = resolve(req, root, file, sizeof(file), &st);
    if (fd == -2) { http_respond_error(c, req, 400, "bad path", 0); return; }
    if (fd < 0) { http_respond_error(c, req, 404, "not found", 0); return; }
    send_file(c, req, fd, &st, file, max_age);
    close(fd);
}
