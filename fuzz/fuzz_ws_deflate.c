/* fuzz_ws_deflate: the permessage-deflate offer parser and the inflater
 * with its size limit. The first byte splits the input: the start is an
 * extension header offer, the rest a compressed message fed in pieces. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "net/ws_deflate.h"

#define LIMIT (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t split = data[0] % (size);
    char *offer = malloc(split + 1);
    if (!offer) return 0;
    memcpy(offer, data + 1, split > 0 ? split - 1 : 0);
    offer[split > 0 ? split - 1 : 0] = '\0';
    ws_deflate_params p;
    char resp[512];
    if (ws_deflate_negotiate(offer, &p)) {
        if (p.client_max_window_bits < 8 || p.client_max_window_bits > 15) abort();
        if (ws_deflate_response(&p, resp, sizeof(resp)) == 0) abort();
    } else {
        memset(&p, 0, sizeof(p));
        p.enabled = 1;
        p.client_max_window_bits = p.server_max_window_bits = 15;
    }
    free(offer);
    ws_inflater *inf = ws_inflater_new(&p);
    if (!inf) return 0;
    uint8_t *out = NULL;
    size_t out_len = 0, out_cap = 0;
    const uint8_t *msg = data + split;
    size_t left = size - split, step = 1 + (data[0] & 7);
    int rc = 0;
    while (left && rc == 0) {
        size_t n = left < step ? left : step;
        rc = ws_inflater_feed(inf, msg, n, &out, &out_len, &out_cap, LIMIT);
        msg += n;
        left -= n;
    }
    if (rc == 0) rc = ws_inflater_finish(inf, &out, &out_len, &out_cap, LIMIT);
    if (out_len > LIMIT) abort();
    free(out);
    ws_inflater_free(inf);
    return 0;
}
