/* static_files: serves the files under the web root for GET and HEAD:
 * content types, ETag / If-None-Match (304), Cache-Control, no path
 * traversal (decoded "..", hidden segments and symlinks out of the root are
 * refused), no directory listing (a directory serves its index.html). */
#ifndef PLAZA_STATIC_FILES_H
#define PLAZA_STATIC_FILES_H

#include <stddef.h>
#include "net/conn.h"
#include "net/http_reader.h"

/* Answers req from root (a realpath). Always produces a response. */
void static_serve(conn *c, const http_request *req, const char *root,
                  int max_age);

/* Decodes %XX escapes of path into out (cap bytes). Returns the length, or
 * -1 for a bad escape, %00 or overflow. */
int static_decode_path(const char *path, size_t len, char *out, size_t cap);

/* 1 if a decoded path is safe to join to the root: absolute, no "." or
 * ".." segment, no segment starting with '.', no backslash. */
int static_path_safe(const char *decoded);

const char *static_content_type(const char *path);

#endif
