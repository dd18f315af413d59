/* fuzz_app_paths: libFuzzer target for the apps' path parsers,
 * auction_parse_path (/auctions/<channel>/lots[/<lot>/bids]) and
 * spaces_parse_path (/v1/spaces/<space>/users[/<user>]). The input is the
 * path (up to its first NUL). Any violation of these invariants abort()s:
 *   - the outputs are NUL-terminated within their buffers;
 *   - on success they hold only the characters allowed, and putting the
 *     path back together from them gives the input (spaces: maybe without
 *     a trailing '/' after "users");
 *   - on failure spaces_parse_path names the part and leaves both empty. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/auction.h"
#include "apps/spaces.h"

static int names_only(const char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.'))
            return 0;
    return 1;
}

static void check_auction(const char *path) {
    char channel[256], lot[65], back[600];
    memset(channel, 'x', sizeof(channel));
    memset(lot, 'x', sizeof(lot));
    if (auction_parse_path(path, channel, sizeof(channel), lot, sizeof(lot))) return;
    if (!memchr(channel, '\0', sizeof(channel)) || !memchr(lot, '\0', sizeof(lot))) abort();
    if (!channel[0] || strchr(channel, '/') || !names_only(lot)) abort();
    if (lot[0]) snprintf(back, sizeof(back), "/auctions/%s/lots/%s/bids", channel, lot);
    else snprintf(back, sizeof(back), "/auctions/%s/lots", channel);
    if (strcmp(back, path) != 0) abort();
}

static void check_spaces(const char *path) {
    char space[SPACES_NAME_MAX + 1], user[SPACES_NAME_MAX + 1], back[300];
    const char *err = NULL;
    memset(space, 'x', sizeof(space));
    memset(user, 'x', sizeof(user));
    int rc = spaces_parse_path(path, space, user, &err);
    if (!memchr(space, '\0', sizeof(space)) || !memchr(user, '\0', sizeof(user))) abort();
    if (rc) {
        if (!err || !strchr(err, ':') || space[0] || user[0]) abort();
        return;
    }
    if (!space[0] || !names_only(space) || !names_only(user)) abort();
    if (user[0]) snprintf(back, sizeof(back), "/v1/spaces/%s/users/%s", space, user);
    else snprintf(back, sizeof(back), "/v1/spaces/%s/users", space);
    size_t n = strlen(back);
    if (strcmp(back, path) != 0 && !(user[0] == '\0' && strncmp(back, path, n) == 0 &&
                                     strcmp(path + n, "/") == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *path = malloc(size + 1);
    if (!path) return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    check_auction(path);
    check_spaces(path);
    free(path);
    return 0;
}
