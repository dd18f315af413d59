/* http_util: the two read-only helpers declared in http_reader.h that look
 * at a parsed request: header lookup by name and token search in a
 * comma-separated header value (Connection, Upgrade, ...). They do not
 * depend on the reader's state, so they live apart from http_reader.c. */
#include <string.h>
#include <strings.h>

#include "net/http_reader.h"

const http_header *http_request_header(const http_request *req,
                                       const char *name) {
    for (int i = 0; i < req->nheaders; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0)
            return &req->headers[i];
    }
    return NULL;
}

static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

/* Walks the list item by item: skip leading whitespace, take everything up
 * to the next comma, trim trailing whitespace, compare. Empty items (as in
 * "a,,b" or a trailing comma) are skipped, as RFC 9110 5.6.1 asks. */
int http_list_has_token(const char *value, const char *token) {
    size_t toklen = strlen(token);
    const char *p = value;

    if (value == NULL || toklen == 0) return 0;
    while (*p) {
        while (is_ows(*p) || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',') p++;
        const char *end = p;
        while (end > start && is_ows(end[-1])) end--;
        if ((size_t)(end - start) == toklen &&
            strncasecmp(start, token, toklen) == 0)
            return 1;
    }
    return 0;
}
